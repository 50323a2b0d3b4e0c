/* engine/failpoint.c — named failpoints (see failpoint.h).
 *
 * The table is filled once before fork(), so every worker inherits it; hit
 * counters are per process after that, which is what "crash@3" means: the
 * third time this process passes the point.
 */
#include "engine/failpoint.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FP_MAX 16       /* far more than any drill arms at once */
#define FP_NAME_MAX 48
#define FP_DELAY_MS 200
/* Longer than the master's slowest periodic work (a prezero retry every
 * second): a drill can hold a job while the master ticks. */
#define FP_STALL_MS 2500

enum fp_action { FP_CRASH, FP_EXIT, FP_ENOSPC, FP_EIO, FP_EMFILE, FP_DELAY, FP_STALL };

struct fp {
	char name[FP_NAME_MAX];
	enum fp_action action;
	unsigned long nth;  /* 0: every hit */
	unsigned long hits;
};

int eng_fp_armed;
static struct fp fps[FP_MAX];
static int nfps;

static int parse_action(const char *s, size_t n, enum fp_action *out)
{
	static const struct { const char *name; enum fp_action a; } acts[] = {
		{ "crash", FP_CRASH }, { "exit", FP_EXIT },
		{ "enospc", FP_ENOSPC }, { "eio", FP_EIO }, { "emfile", FP_EMFILE },
		{ "delay", FP_DELAY }, { "stall", FP_STALL },
	};
	for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++)
		if (strlen(acts[i].name) == n && !memcmp(acts[i].name, s, n)) {
			*out = acts[i].a;
			return 0;
		}
	return -EINVAL;
}

static int parse_one(const char *s, size_t n, struct fp *fp)
{
	const char *eq = memchr(s, '=', n), *at;
	size_t anl;

	if (!eq || eq == s || (size_t)(eq - s) >= FP_NAME_MAX)
		return -EINVAL;
	memcpy(fp->name, s, (size_t)(eq - s));
	fp->name[eq - s] = '\0';
	at = memchr(eq, '@', (size_t)(s + n - eq));
	anl = (size_t)((at ? at : s + n) - (eq + 1));
	if (parse_action(eq + 1, anl, &fp->action) < 0)
		return -EINVAL;
	fp->nth = 0;
	if (at) {
		char *end;
		fp->nth = strtoul(at + 1, &end, 10);
		if (end != s + n || fp->nth == 0)
			return -EINVAL;
	}
	fp->hits = 0;
	return 0;
}

int eng_fp_init(void)
{
	const char *spec = getenv("CASKD_FAILPOINTS");

	nfps = 0;
	eng_fp_armed = 0;
	if (!spec || !*spec)
		return 0;
	while (*spec) {
		size_t n = strcspn(spec, ",");
		if (n && (nfps == FP_MAX || parse_one(spec, n, &fps[nfps++]) < 0))
			return -EINVAL;
		spec += n;
		if (*spec == ',')
			spec++;
	}
	eng_fp_armed = nfps > 0;
	return 0;
}

void eng_fp_set_armed(int on)
{
	for (int i = 0; i < nfps; i++)
		fps[i].hits = 0;
	eng_fp_armed = on && nfps > 0;
}

int eng_fp_eval(const char *name)
{
	for (int i = 0; i < nfps; i++) {
		struct fp *fp = &fps[i];
		if (strcmp(fp->name, name))
			continue;
		fp->hits++;
		if (fp->nth && fp->hits != fp->nth)
			return 0;
		switch (fp->action) {
		case FP_CRASH:
			kill(getpid(), SIGKILL);
			_exit(137); /* not reached */
		case FP_EXIT:
			_exit(3);
		case FP_ENOSPC:
			return -ENOSPC;
		case FP_EIO:
			return -EIO;
		case FP_EMFILE:
			return -EMFILE;
		case FP_DELAY:
		case FP_STALL: {
			long ms = fp->action == FP_DELAY ? FP_DELAY_MS : FP_STALL_MS;
			struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };
			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
			return 0;
		}
		}
	}
	return 0;
}
