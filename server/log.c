/* server/log.c — log lines (see log.h). */
#include "server/log.h"

#include "engine/elog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 2048
#define ACCESS_PATH_MAX 1024  /* longer paths are cut in the access log */
#define TIME_BYTES 64   /* room for any year the compiler can imagine */
#define ROLE_MAX 32

static enum srv_log_level threshold = SRV_LOG_INFO;
static int journal;
static char role[ROLE_MAX] = "caskd";

/* JOURNAL_STREAM is "device:inode" of the journal's stream; it only counts
 * if our stderr is still that stream (not redirected since). */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

_Static_assert((int)ENG_LOG_DEBUG == (int)SRV_LOG_DEBUG &&
	       (int)ENG_LOG_INFO == (int)SRV_LOG_INFO &&
	       (int)ENG_LOG_WARN == (int)SRV_LOG_WARN &&
	       (int)ENG_LOG_ERROR == (int)SRV_LOG_ERROR,
	       "engine and server log levels are the same scale");

/* Engine lines get the same format, level filter and journald prefix. */
static void engine_line(enum eng_log_level level, const char *msg, void *arg)
{
	(void)arg;
	srv_log((enum srv_log_level)level, "%s", msg);
}

void srv_log_init(enum srv_log_level level)
{
	threshold = level;
	journal = stderr_is_journal();
	eng_log_set(engine_line, NULL);
}

void srv_log_set_level(enum srv_log_level level)
{
	threshold = level;
}

void srv_log_set_role(const char *r)
{
	snprintf(role, sizeof(role), "%s", r);
}

int srv_log_parse_level(const char *s, enum srv_log_level *out)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i])) {
			*out = (enum srv_log_level)i;
			return 0;
		}
	return -EINVAL;
}

/* Now as 2026-12-02T17:36:24.755Z. */
static void format_time(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 ts.tv_nsec / 1000000);
}

void srv_log(enum srv_log_level level, const char *fmt, ...)
{
	/* syslog priorities: debug 7, info 6, warning 4, err 3 */
	static const int prio[] = { 7, 6, 4, 3 };
	static const char *const names[] = { "debug", "info", "warn", "error" };
	char line[LINE_MAX_BYTES];
	int n = 0, saved = errno;
	va_list ap;

	if (level < threshold)
		return;
	if (journal) {
		n = snprintf(line, sizeof(line), "<%d>%s: ", prio[level], role);
	} else {
		char now[TIME_BYTES];
		format_time(now, sizeof(now));
		n = snprintf(line, sizeof(line), "%s %s[%d] %s: ", now, role,
			     (int)getpid(), names[level]);
	}
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write() per line, so lines of different processes never mix. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
	errno = saved;
}

int srv_access_open(const char *path)
{
	int fd;

	if (!strcmp(path, "-"))
		fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
	else
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	return fd < 0 ? -errno : fd;
}

void srv_access_write(int fd, const struct srv_access *a)
{
	char line[LINE_MAX_BYTES], now[TIME_BYTES];
	int n;

	format_time(now, sizeof(now));
	n = snprintf(line, sizeof(line), "%s %s %s %.*s %d %zu %.3fms worker=%d\n", now,
		     a->peer, a->method, ACCESS_PATH_MAX, a->path, a->status, a->bytes,
		     (double)a->duration_ns / 1e6, a->worker);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	if (write(fd, line, (size_t)n) < 0) {
		/* a full disk must not stop requests; the log just loses it */
	}
}
