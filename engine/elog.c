/* engine/elog.c — the engine's log hook (see elog.h). */
#include "engine/elog.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#define ELOG_LINE_BYTES 1024

static eng_log_fn hook;
static void *hook_arg;

void eng_log_set(eng_log_fn fn, void *arg)
{
	hook = fn;
	hook_arg = arg;
}

void eng_log(enum eng_log_level level, const char *fmt, ...)
{
	char line[ELOG_LINE_BYTES];
	int saved = errno, n;
	va_list ap;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		goto out;
	if (hook) {
		hook(level, line, hook_arg);
	} else {
		/* one write per line: lines of several processes never mix */
		char out[ELOG_LINE_BYTES + 16];
		int m = snprintf(out, sizeof(out), "caskd: %s\n", line);
		if (m > (int)sizeof(out) - 1)
			m = (int)sizeof(out) - 1;
		if (write(STDERR_FILENO, out, (size_t)m) < 0) {
			/* nowhere left to report it */
		}
	}
out:
	errno = saved;
}
