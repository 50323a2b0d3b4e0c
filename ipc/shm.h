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
/* Reserves size bytes of shared address space that cost memory only for
 * the pages touched (MAP_NORESERVE): room for a table that grows. */
int ipc_shm_reserve(size_t size, void **out);
/* Gives the pages of [addr, addr+size) (page aligned, inside a region)
 * back to the kernel, in every process at once; they read as zeros
 * after. 0 or -errno. */
int ipc_shm_release(void *addr, size_t size);
/* Unmaps a region made by ipc_shm_create or ipc_shm_reserve. */
void ipc_shm_destroy(void *addr, size_t size);

#endif
