/* server/log.h — log lines on stderr.
 *
 * Owns: the format of caskd's log. One line per event, with level; when
 * stderr is the journal (JOURNAL_STREAM names our stderr), each line
 * starts with a "<N>" syslog priority prefix that journald understands,
 * and the timestamp is left to journald. Safe in any process; not
 * async-signal-safe (signal handlers only set flags).
 */
#ifndef CASKD_SERVER_LOG_H
#define CASKD_SERVER_LOG_H

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

#define srv_debug(...) srv_log(SRV_LOG_DEBUG, __VA_ARGS__)
#define srv_info(...) srv_log(SRV_LOG_INFO, __VA_ARGS__)
#define srv_warn(...) srv_log(SRV_LOG_WARN, __VA_ARGS__)
#define srv_error(...) srv_log(SRV_LOG_ERROR, __VA_ARGS__)

#endif
