/* server/log.h — log lines on stderr, and the access log.
 *
 * Owns: the format of caskd's log. One line per event, with level; when
 * stderr is the journal (JOURNAL_STREAM names our stderr), each line
 * starts with a "<N>" syslog priority prefix that journald understands,
 * and the timestamp is left to journald. The engine's lines come through
 * here too (engine/elog.h), and libevent's. Safe in any process; not
 * async-signal-safe (signal handlers only set flags).
 *
 * Also the access log's format, one line per response (documented in
 * docs/operations.md):
 *   TIME PEER METHOD PATH STATUS BYTES DURATIONms worker=SEAT
 * The master opens the file before it forks, so every worker appends to
 * the same open file (O_APPEND, one write per line: lines never mix).
 */
#ifndef CASKD_SERVER_LOG_H
#define CASKD_SERVER_LOG_H

#include <stddef.h>
#include <stdint.h>

enum srv_log_level {
	SRV_LOG_DEBUG,
	SRV_LOG_INFO,
	SRV_LOG_WARN,
	SRV_LOG_ERROR,
};

/* Sets the threshold and the role shown in each line ("master",
 * "worker 3"); checks JOURNAL_STREAM. */
void srv_log_init(enum srv_log_level level);
void srv_log_set_role(const char *role);
void srv_log_set_level(enum srv_log_level level);
/* Parses "debug|info|warn|error". 0 or -EINVAL. */
int srv_log_parse_level(const char *s, enum srv_log_level *out);
void srv_log(enum srv_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Opens the access log: path, or "-" for stderr. The fd (close-on-exec)
 * or -errno. */
int srv_access_open(const char *path);

struct srv_access {
	const char *peer;     /* "127.0.0.1:5678", or "-" */
	const char *method;   /* "-" for a request that never parsed */
	const char *path;     /* as sent, before '?' */
	int status;
	size_t bytes;         /* body bytes sent */
	uint64_t duration_ns;
	int worker;           /* seat */
};
/* Appends one line to fd; a failed write loses the line, never a request. */
void srv_access_write(int fd, const struct srv_access *a);

#define srv_debug(...) srv_log(SRV_LOG_DEBUG, __VA_ARGS__)
#define srv_info(...) srv_log(SRV_LOG_INFO, __VA_ARGS__)
#define srv_warn(...) srv_log(SRV_LOG_WARN, __VA_ARGS__)
#define srv_error(...) srv_log(SRV_LOG_ERROR, __VA_ARGS__)

#endif
