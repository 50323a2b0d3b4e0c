/* ipc/shm.h — anonymous shared memory regions.
 *
 * Owns: creating and unmapping MAP_SHARED|MAP_ANONYMOUS regions. A region
 * is created by the master before fork() and inherited by every worker at
 * the same address, so pointers into it are valid in all processes (no
 * offsets needed). Regions are zero-filled by the kernel.
 *
 * Reserved regions ask for transparent huge pages where the kernel gives
 * them to shared memory (shmem_enabled "advise" or "always"): a table
 * touched at random then costs a TLB entry and a fault per 2 MiB, not per
 * 4 KiB. Elsewhere the request is refused or ignored and 4 KiB pages are
 * used, as before.
 */
#ifndef CASKD_IPC_SHM_H
#define CASKD_IPC_SHM_H

#include <stddef.h>

/* Maps size bytes of zeroed shared memory into *out. 0 or -errno. */
int ipc_shm_create(size_t size, void **out);
/* Reserves size bytes of shared address space that cost memory only for
 * the pages touched (MAP_NORESERVE): room for a table that grows. */
int ipc_shm_reserve(size_t size, void **out);
/* Allocates the pages of [addr, addr+size) (inside a region) now, in
 * one call, rather than one fault at a time as they are first written:
 * where page faults are dear (a VM whose faults go through the
 * hypervisor) filling a fresh table costs several times less. Best
 * effort: a kernel without MADV_POPULATE_WRITE (before 5.14) returns
 * -EINVAL and the pages are faulted in as they are touched, which is
 * correct, only slower. 0 or -errno (-ENOMEM: no memory for them now;
 * the caller may go on, and fault them in later or fail then). */
int ipc_shm_populate(void *addr, size_t size);
/* Gives the pages of [addr, addr+size) (page aligned, inside a region)
 * back to the kernel, in every process at once; they read as zeros
 * after. 0 or -errno. */
int ipc_shm_release(void *addr, size_t size);
/* Unmaps a region made by ipc_shm_create or ipc_shm_reserve. */
void ipc_shm_destroy(void *addr, size_t size);

#endif
