/* engine/elog.h — the engine's log hook, as SQLite's sqlite3_log.
 *
 * Owns: how the engine reports what an operator should read (recovery
 * truncated a torn tail, a worker's unfinished write was wiped, an fdatasync
 * failed). The engine knows nothing of the server's logger; the server
 * installs a hook once, before fork, so every line goes through its
 * format (timestamp, level, journald priority, --log-level). Without a
 * hook lines go to stderr prefixed "caskd: ", for tools and tests.
 */
#ifndef CASKD_ENGINE_ELOG_H
#define CASKD_ENGINE_ELOG_H

/* Same order and meaning as the server's levels. */
enum eng_log_level {
	ENG_LOG_DEBUG,
	ENG_LOG_INFO,
	ENG_LOG_WARN,
	ENG_LOG_ERROR,
};

/* msg is one line without its newline. */
typedef void (*eng_log_fn)(enum eng_log_level level, const char *msg,
			   void *arg);

/* Installs the hook (NULL: back to stderr). Not thread-safe: call before
 * any engine call that may log. */
void eng_log_set(eng_log_fn fn, void *arg);
void eng_log(enum eng_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
