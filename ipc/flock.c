/* ipc/flock.c — OFD byte-range locks (see flock.h). */
#include "ipc/flock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

static void fill(struct flock *fl, short type, uint64_t off, uint64_t len)
{
	memset(fl, 0, sizeof(*fl)); /* l_pid must be 0 for OFD locks */
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = (off_t)off;
	fl->l_len = (off_t)len;
}

int ipc_flock(int fd, enum ipc_flock_mode mode, uint64_t off, uint64_t len,
	      int wait)
{
	static const short types[] = {
		[IPC_FLOCK_READ] = F_RDLCK,
		[IPC_FLOCK_WRITE] = F_WRLCK,
		[IPC_FLOCK_UNLOCK] = F_UNLCK,
	};
	struct flock fl;
	int cmd = wait ? F_OFD_SETLKW : F_OFD_SETLK;

	fill(&fl, types[mode], off, len);
	for (;;) {
		if (fcntl(fd, cmd, &fl) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		return errno == EACCES ? -EAGAIN : -errno;
	}
}

pid_t ipc_flock_holder(int fd, uint64_t off, uint64_t len)
{
	struct flock fl;

	fill(&fl, F_WRLCK, off, len);
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
		return 0;
	return fl.l_pid;
}
