/* ipc/shm.c — anonymous shared memory regions (see shm.h). */
#include "ipc/shm.h"

#include <errno.h>
#include <sys/mman.h>

int ipc_shm_create(size_t size, void **out)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

int ipc_shm_reserve(size_t size, void **out)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

int ipc_shm_release(void *addr, size_t size)
{
	/* Shared anonymous memory is shmem: MADV_REMOVE frees its pages
	 * for every process that maps it (MADV_DONTNEED would only drop
	 * this process's view). */
	return madvise(addr, size, MADV_REMOVE) < 0 ? -errno : 0;
}

void ipc_shm_destroy(void *addr, size_t size)
{
	if (addr)
		munmap(addr, size);
}
