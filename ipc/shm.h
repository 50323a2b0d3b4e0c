/* ipc/shm.h — anonymous shared memory regions.
 *
 * Owns: creating and unmapping MAP_SHARED|MAP_ANONYMOUS regions. A region
 * is created by the master before fork() and inherited by every worker at
 * the same address, so pointers into it are valid in all processes (no
 * offsets needed). Regions are zero-filled by the kernel.
 */
#ifndef CASKD_IPC_SHM_H
#define CASKD_IPC_SHM_H

#include <stddef.h>

/* Maps size bytes of zeroed shared memory into *out. 0 or -errno. */
int ipc_shm_create(size_t size, void **out);
/* Unmaps a region made by ipc_shm_create. */
void ipc_shm_destroy(void *addr, size_t size);

#endif
