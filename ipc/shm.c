/* ipc/shm.c — anonymous shared memory regions (see shm.h). */
#include "ipc/shm.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels say EINVAL */
#endif

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
	/* Best effort (see shm.h): EINVAL without THP support, and with
	 * shmem_enabled "never" the advice is kept but has no effect. */
	(void)madvise(p, size, MADV_HUGEPAGE);
	*out = p;
	return 0;
}

int ipc_shm_populate(void *addr, size_t size)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)addr, end = a + size;

	if (page <= 0 || !size)
		return 0;
	/* madvise wants a page-aligned start; the end may fall anywhere */
	a &= ~((uintptr_t)page - 1);
	if (madvise((void *)a, end - a, MADV_POPULATE_WRITE) < 0)
		return -errno;
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
