/* server/cli_client.c — `caskd get|put|del|keys|watch|compact`: the
 * store from a shell, over the HTTP API of a running caskd (--url, or
 * $CASKD_URL, or http://127.0.0.1:7070), as redis-cli and etcdctl are
 * for theirs. The HTTP is server/cli_http.c's.
 *
 * Output: get writes the value's bytes as they are (nothing added, so
 * binary values survive a pipe); put and del the version the write got
 * (for If-Match); keys one key a line, percent-encoded as /keys serves
 * them (a key may hold a newline), every page of the listing; watch the
 * server's lines as they come; compact the job's id, and with --wait
 * its record once it ended. Every failure is one line on stderr, the
 * server's own message when it sent one. Exit statuses: cli_client.h.
 *
 * Map: arguments - talking to the server - the subcommands - dispatch.
 */
#include "server/cli_client.h"

#include "engine/num.h"
#include "server/cli_http.h"
#include "server/pct.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_URL "http://127.0.0.1:7070"
/* Where --url comes from when not given, as ETCDCTL_ENDPOINTS for etcdctl. */
#define URL_ENV "CASKD_URL"
/* Connect, send and each receive of a request; not of watch, which is
 * open until someone ends it. A write that waits for an fdatasync is
 * answered in milliseconds; 30 s is a server that is not answering. */
#define REQUEST_TIMEOUT_MS 30000
/* Keys asked for per GET /keys (the server's default page). */
#define KEYS_PAGE 1000
/* How often compact --wait asks for the job's state. */
#define JOB_POLL_MS 200
/* The largest token file read; the server takes no more either. */
#define TOKEN_MAX 4096
/* Room for a server's error message on stderr. */
#define MESSAGE_MAX 1024
#define STATE_MAX 32
#define READ_CHUNK 65536
/* parse_args: --help was asked for and answered. A named code below
 * -4096, clear of errno and of the engine's (engine/errors.h) and the
 * HTTP parser's (server/http_parse.h) ranges. */
#define ARGS_HELP (-4400)

/* --- arguments --------------------------------------------------------------- */

enum opt_bit {
	OPT_PREFIX = 1 << 0,
	OPT_LIMIT = 1 << 1,
	OPT_SINCE = 1 << 2,
	OPT_WAIT = 1 << 3,
	OPT_TOKEN = 1 << 4,
};

struct cli;
struct answer;

struct command {
	const char *name;
	int nargs;        /* arguments it takes, all required */
	unsigned opts;    /* enum opt_bit: options beside --url and --help */
	const char *usage;
	int (*run)(struct cli *c, struct srv_cli_parser *p, struct answer *a);
};

struct cli {
	const struct command *cmd;
	struct srv_cli_url url;
	const char *args[2];
	int nargs;
	const char *prefix, *token_file;
	uint64_t limit, since;
	bool has_limit, has_since, wait;
	char *auth;                  /* an Authorization line, or NULL */
};

static int usage_error(const struct cli *c, const char *fmt, const char *what)
{
	fprintf(stderr, "caskd %s: ", c->cmd->name);
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\nusage: %s\n", c->cmd->usage);
	return SRV_CLI_EXIT_USAGE;
}

static int parse_number(struct cli *c, const char *opt, const char *v, uint64_t *out)
{
	if (eng_parse_u64(v, strlen(v), out) < 0)
		return usage_error(c, "%s takes a whole number", opt);
	return 0;
}

/* One option (a = "--name" or "--name=value"); *i moves past its value. */
static int parse_option(struct cli *c, int argc, char **argv, int *i)
{
	static const struct {
		const char *name;
		unsigned bit; /* 0: every subcommand takes it */
		bool value;
	} opts[] = {
		{ "url", 0, true },          { "prefix", OPT_PREFIX, true },
		{ "limit", OPT_LIMIT, true }, { "since", OPT_SINCE, true },
		{ "wait", OPT_WAIT, false }, { "token-file", OPT_TOKEN, true },
	};
	const char *a = argv[*i], *eq = strchr(a, '='), *v = NULL;
	size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
	char err[600];

	for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]); k++) {
		if (strncmp(a, "--", 2) || strlen(opts[k].name) != nl ||
		    strncmp(a + 2, opts[k].name, nl))
			continue;
		if (opts[k].bit && !(c->cmd->opts & opts[k].bit))
			break;
		if (opts[k].value && eq)
			v = eq + 1;
		else if (opts[k].value && *i + 1 < argc)
			v = argv[++*i];
		else if (opts[k].value || eq)
			return usage_error(c, opts[k].value ? "%s needs a value"
							    : "%s takes no value", a);
		switch (opts[k].bit) {
		case 0:
			if (srv_cli_url_parse(v, &c->url, err, sizeof(err)) < 0)
				return usage_error(c, "%s", err);
			return 0;
		case OPT_PREFIX:
			c->prefix = v;
			return 0;
		case OPT_LIMIT:
			c->has_limit = true;
			if (parse_number(c, "--limit", v, &c->limit))
				return SRV_CLI_EXIT_USAGE;
			return c->limit ? 0 : usage_error(c, "%s takes a number from 1", "--limit");
		case OPT_SINCE:
			c->has_since = true;
			return parse_number(c, "--since", v, &c->since) ? SRV_CLI_EXIT_USAGE : 0;
		case OPT_WAIT:
			c->wait = true;
			return 0;
		default:
			c->token_file = v;
			return 0;
		}
	}
	return usage_error(c, "unknown option '%s' (see --help)", a);
}

/* ARGS_HELP: --help was asked for (usage printed); 0; or an exit status. */
static int parse_args(struct cli *c, int argc, char **argv)
{
	const char *env = getenv(URL_ENV);
	char err[600];
	bool only_args = false;
	int rc;

	if (srv_cli_url_parse(env && *env ? env : DEFAULT_URL, &c->url, err, sizeof(err)) < 0)
		return usage_error(c, "%s (from " URL_ENV ")", err);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!only_args && !strcmp(a, "--")) {
			only_args = true;
		} else if (!only_args && (!strcmp(a, "--help") || !strcmp(a, "-h"))) {
			printf("usage: %s\n", c->cmd->usage);
			return ARGS_HELP;
		} else if (!only_args && a[0] == '-' && a[1]) {
			if ((rc = parse_option(c, argc, argv, &i)))
				return rc;
		} else if (c->nargs == c->cmd->nargs) {
			return usage_error(c, "unexpected argument '%s'", a);
		} else {
			c->args[c->nargs++] = a;
		}
	}
	if (c->nargs < c->cmd->nargs)
		return usage_error(c, "%s", c->nargs ? "a value is missing" : "a key is missing");
	if (c->cmd->nargs && !c->args[0][0])
		return usage_error(c, "%s", "a key is 1 to 1024 bytes; this one is empty");
	return 0;
}

/* The whole of fd into *buf (malloc'd): its length, or -errno. */
static long read_all(int fd, char **buf)
{
	size_t cap = READ_CHUNK, len = 0;
	char *b = malloc(cap);

	if (!b)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
			cap *= 2;
		}
		n = read(fd, b + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(b);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*buf = b;
	return (long)len;
}

/* Reads a file as the server reads --admin-token-file: trailing
 * newlines are not part of the token. */
static int load_token(struct cli *c)
{
	int fd = open(c->token_file, O_RDONLY | O_CLOEXEC);
	char *tok = NULL;
	long n = fd < 0 ? -errno : read_all(fd, &tok);
	bool bad = false;

	if (fd >= 0)
		close(fd);
	if (n < 0) {
		fprintf(stderr, "caskd %s: cannot read --token-file %s: %s\n", c->cmd->name,
			c->token_file, strerror((int)-n));
		return SRV_CLI_EXIT_USAGE;
	}
	while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r'))
		n--;
	for (long i = 0; i < n; i++)
		bad |= (unsigned char)tok[i] < ' ' || tok[i] == 0x7f;
	if (bad || n == 0 || n > TOKEN_MAX ||
	    asprintf(&c->auth, "Authorization: Bearer %.*s\r\n", (int)n, tok) < 0) {
		fprintf(stderr, "caskd %s: --token-file %s: a token is 1 to %d bytes without "
			"control bytes\n", c->cmd->name, c->token_file, TOKEN_MAX);
		c->auth = NULL;
		free(tok);
		return SRV_CLI_EXIT_USAGE;
	}
	free(tok);
	return 0;
}

/* --- talking to the server --------------------------------------------------- */

/* A response body: kept (for errors and pages) or streamed to stdout. */
struct answer {
	char *body;
	size_t len, cap;
	int stream_status; /* bodies of this status go to stdout */
	bool flush;        /* after every piece (watch) */
};

static int on_body(void *arg, const struct srv_cli_parser *p, const char *d, size_t n)
{
	struct answer *a = arg;

	if (p->status == a->stream_status) {
		if (fwrite(d, 1, n, stdout) != n || (a->flush && fflush(stdout)))
			return -errno;
		return 0;
	}
	if (a->len + n + 1 > a->cap) {
		size_t cap = (a->len + n + 1) * 2;
		char *b = realloc(a->body, cap);
		if (!b)
			return -ENOMEM;
		a->body = b;
		a->cap = cap;
	}
	memcpy(a->body + a->len, d, n);
	a->len += n;
	a->body[a->len] = '\0';
	return 0;
}

static void answer_reset(struct answer *a)
{
	a->len = 0;
	if (a->body)
		a->body[0] = '\0';
}

/* One request; 0, or SRV_CLI_EXIT_FAILED with the reason on stderr. */
static int call(struct cli *c, const char *method, const char *target,
		const void *body, size_t len, struct srv_cli_parser *p, struct answer *a)
{
	struct srv_cli_req req = {
		.method = method, .target = target, .headers = c->auth,
		.body = body, .len = len,
		.timeout_ms = a->flush ? 0 : REQUEST_TIMEOUT_MS,
		.on_body = on_body, .arg = a,
	};
	char err[768];

	answer_reset(a);
	if (srv_cli_request(&c->url, &req, p, err, sizeof(err)) < 0) {
		fprintf(stderr, "caskd %s: %s\n", c->cmd->name, err);
		return SRV_CLI_EXIT_FAILED;
	}
	return 0;
}

/* Reports a refusal: the JSON error's message (and code), or the body
 * as sent. SRV_CLI_EXIT_NOT_FOUND for a 404 when not_found_ok. */
static int refused(const struct cli *c, const struct srv_cli_parser *p,
		   const struct answer *a, bool not_found_ok)
{
	char msg[MESSAGE_MAX], code[64];
	const char *body = a->body ? a->body : "";

	if (srv_cli_json_field(body, a->len, "error", code, sizeof(code)) < 0)
		snprintf(code, sizeof(code), "no JSON error");
	if (srv_cli_json_field(body, a->len, "message", msg, sizeof(msg)) >= 0)
		fprintf(stderr, "caskd %s: %s (%d %s)\n", c->cmd->name, msg, p->status, code);
	else
		fprintf(stderr, "caskd %s: the server answered %d: %.*s\n", c->cmd->name,
			p->status, (int)strcspn(body, "\n"), body);
	return p->status == 404 && not_found_ok ? SRV_CLI_EXIT_NOT_FOUND : SRV_CLI_EXIT_FAILED;
}


/* Appends "?name=" (or "&name=") and s to the target *t (malloc'd):
 * percent-encoded, or as it is when it is so already. */
static int query_add(char **t, const char *name, const char *s, size_t n,
		     bool encoded)
{
	size_t tl = strlen(*t), nl = strlen(name);
	char *b = realloc(*t, tl + nl + 2 + (encoded ? n : srv_pct_encoded_len(s, n)) + 1);

	if (!b)
		return -ENOMEM;
	tl += (size_t)sprintf(b + tl, "%s%s=", strchr(b, '?') ? "&" : "?", name);
	if (encoded)
		memcpy(b + tl, s, n);
	b[tl + (encoded ? n : srv_pct_encode(s, n, b + tl))] = '\0';
	*t = b;
	return 0;
}

static int out_of_memory(const struct cli *c)
{
	fprintf(stderr, "caskd %s: out of memory\n", c->cmd->name);
	return SRV_CLI_EXIT_FAILED;
}

/* One request on /kv/ and the key (the first argument), percent-encoded
 * but for '/': 0 once answered, or an exit status. */
static int call_key(struct cli *c, const char *method, const void *body, size_t len,
		    struct srv_cli_parser *p, struct answer *a)
{
	size_t kl = strlen(c->args[0]);
	char *t = malloc(sizeof("/kv/") + srv_pct_encoded_len(c->args[0], kl));
	int rc;

	if (!t)
		return out_of_memory(c);
	strcpy(t, "/kv/");
	t[4 + srv_pct_encode(c->args[0], kl, t + 4)] = '\0';
	rc = call(c, method, t, body, len, p, a);
	free(t);
	return rc;
}

/* Prints the version in the ETag of a write. */
static void print_version(const struct srv_cli_parser *p)
{
	const char *etag = srv_cli_header(p, "ETag");

	if (etag && etag[0] == '"')
		printf("%.*s\n", (int)strcspn(etag + 1, "\""), etag + 1);
}

/* --- the subcommands --------------------------------------------------------- */

static int run_get(struct cli *c, struct srv_cli_parser *p, struct answer *a)
{
	int rc;

	a->stream_status = 200;
	if ((rc = call_key(c, "GET", NULL, 0, p, a)))
		return rc;
	return p->status == 200 ? SRV_CLI_EXIT_OK : refused(c, p, a, true);
}

/* VALUE, @FILE or - (standard input) into *buf: its length, or -errno
 * after saying why. */
static long put_value(struct cli *c, char **buf)
{
	const char *v = c->args[1];
	int fd = 0;
	long n;

	if (v[0] != '@' && strcmp(v, "-")) {
		*buf = NULL;
		return (long)strlen(v);
	}
	if (v[0] == '@' && (fd = open(v + 1, O_RDONLY | O_CLOEXEC)) < 0) {
		n = -errno;
	} else {
		n = read_all(fd, buf);
		if (fd > 0)
			close(fd);
	}
	if (n < 0)
		fprintf(stderr, "caskd put: cannot read %s: %s\n",
			v[0] == '@' ? v + 1 : "standard input", strerror((int)-n));
	return n;
}

static int run_put(struct cli *c, struct srv_cli_parser *p, struct answer *a)
{
	char *val = NULL;
	long n = put_value(c, &val);
	int rc;

	if (n < 0)
		return SRV_CLI_EXIT_USAGE;
	rc = call_key(c, "PUT", val ? val : c->args[1], (size_t)n, p, a);
	free(val);
	if (rc)
		return rc;
	if (p->status != 201 && p->status != 204)
		return refused(c, p, a, false);
	print_version(p);
	return SRV_CLI_EXIT_OK;
}

static int run_del(struct cli *c, struct srv_cli_parser *p, struct answer *a)
{
	int rc;

	if ((rc = call_key(c, "DELETE", NULL, 0, p, a)))
		return rc;
	if (p->status != 204)
		return refused(c, p, a, true);
	print_version(p);
	return SRV_CLI_EXIT_OK;
}

/* The last line of a page (without its LF): the next page's start_after
 * as the server wants it, percent-encoded. */
static const char *last_line(const struct answer *a, size_t *n)
{
	size_t end = a->len && a->body[a->len - 1] == '\n' ? a->len - 1 : a->len, s = end;

	while (s && a->body[s - 1] != '\n')
		s--;
	*n = end - s;
	return a->body + s;
}

/* One page of at most want keys after `after` (percent-encoded, as the
 * last line of the page before; or NULL), printed. An exit status;
 * *more says whether more keys follow. */
static int keys_page(struct cli *c, struct srv_cli_parser *p, struct answer *a,
		     const char *after, size_t alen, uint64_t want, bool *more)
{
	char *t = strdup("/keys"), num[24];
	const char *tr;
	int rc;

	snprintf(num, sizeof(num), "%llu", (unsigned long long)want);
	if (!t || query_add(&t, "limit", num, strlen(num), true) ||
	    (c->prefix && query_add(&t, "prefix", c->prefix, strlen(c->prefix), false)) ||
	    (after && query_add(&t, "start_after", after, alen, true))) {
		free(t);
		return out_of_memory(c);
	}
	rc = call(c, "GET", t, NULL, 0, p, a);
	free(t);
	if (rc)
		return rc;
	if (p->status != 200)
		return refused(c, p, a, false);
	if (a->len && fwrite(a->body, 1, a->len, stdout) != a->len)
		return SRV_CLI_EXIT_FAILED; /* said at the end, by the flush */
	tr = srv_cli_header(p, "X-Truncated");
	*more = tr && !strcmp(tr, "true") && a->len;
	return SRV_CLI_EXIT_OK;
}

static int run_keys(struct cli *c, struct srv_cli_parser *p, struct answer *a)
{
	char *after = NULL;
	size_t alen = 0;
	uint64_t left = c->has_limit ? c->limit : UINT64_MAX;
	bool more = false;
	int rc;

	do {
		uint64_t want = left < KEYS_PAGE ? left : KEYS_PAGE;
		const char *last;

		rc = keys_page(c, p, a, after, alen, want, &more);
		free(after);
		after = NULL;
		if (rc)
			return rc;
		left -= want;
		last = last_line(a, &alen);
		if (more && left && !(after = strndup(last, alen)))
			return out_of_memory(c);
	} while (more && left);
	return SRV_CLI_EXIT_OK;
}

static int run_watch(struct cli *c, struct srv_cli_parser *p, struct answer *a)
{
	char *t = strdup("/watch"), num[24];
	int rc = 0;

	if (t && c->prefix)
		rc = query_add(&t, "prefix", c->prefix, strlen(c->prefix), false);
	if (t && !rc && c->has_since) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)c->since);
		rc = query_add(&t, "since", num, strlen(num), true);
	}
	if (!t || rc) {
		free(t);
		return out_of_memory(c);
	}
	a->stream_status = 200;
	a->flush = true;
	rc = call(c, "GET", t, NULL, 0, p, a);
	free(t);
	if (rc)
		return rc;
	if (p->status == 200)
		return SRV_CLI_EXIT_OK;
	if (p->status == 404 || p->status == 405) {
		fprintf(stderr, "caskd watch: not supported by this server (GET /watch "
			"answered %d)\n", p->status);
		return SRV_CLI_EXIT_FAILED;
	}
	return refused(c, p, a, false);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Polls the job until it is neither pending nor running; prints its
 * record. */
static int wait_job(struct cli *c, struct srv_cli_parser *p, struct answer *a,
		    const char *id)
{
	char path[64], state[STATE_MAX], err[MESSAGE_MAX];
	int rc;

	snprintf(path, sizeof(path), "/admin/jobs/%s", id);
	for (;;) {
		if ((rc = call(c, "GET", path, NULL, 0, p, a)))
			return rc;
		if (p->status != 200)
			return refused(c, p, a, false);
		if (srv_cli_json_field(a->body, a->len, "state", state, sizeof(state)) < 0) {
			fprintf(stderr, "caskd compact: job %s: no state in %s\n", id, a->body);
			return SRV_CLI_EXIT_FAILED;
		}
		if (strcmp(state, "pending") && strcmp(state, "running"))
			break;
		sleep_ms(JOB_POLL_MS);
	}
	printf("%s\n", a->body);
	if (!strcmp(state, "done"))
		return SRV_CLI_EXIT_OK;
	if (srv_cli_json_field(a->body, a->len, "error", err, sizeof(err)) < 0)
		snprintf(err, sizeof(err), "no reason given");
	fprintf(stderr, "caskd compact: job %s %s: %s\n", id, state, err);
	return SRV_CLI_EXIT_FAILED;
}

static int run_compact(struct cli *c, struct srv_cli_parser *p, struct answer *a)
{
	char id[32];
	int rc;

	if (c->token_file && (rc = load_token(c)))
		return rc;
	if ((rc = call(c, "POST", "/admin/compact", "", 0, p, a)))
		return rc;
	if (p->status != 202)
		return refused(c, p, a, false);
	if (srv_cli_json_field(a->body, a->len, "job", id, sizeof(id)) <= 0 ||
	    strspn(id, "0123456789") != strlen(id)) {
		fprintf(stderr, "caskd compact: no job id in the answer: %s\n", a->body);
		return SRV_CLI_EXIT_FAILED;
	}
	if (!c->wait) {
		printf("%s\n", id);
		return SRV_CLI_EXIT_OK;
	}
	return wait_job(c, p, a, id);
}

/* --- dispatch ------------------------------------------------------------------ */

#define URL_OPT "[--url URL] "

static const struct command commands[] = {
	{ "get", 1, 0, "caskd get " URL_OPT "KEY", run_get },
	{ "put", 2, 0, "caskd put " URL_OPT "KEY VALUE|@FILE|-", run_put },
	{ "del", 1, 0, "caskd del " URL_OPT "KEY", run_del },
	{ "keys", 0, OPT_PREFIX | OPT_LIMIT, "caskd keys " URL_OPT "[--prefix P] [--limit N]",
	  run_keys },
	{ "watch", 0, OPT_PREFIX | OPT_SINCE, "caskd watch " URL_OPT "[--prefix P] [--since V]",
	  run_watch },
	{ "compact", 0, OPT_TOKEN | OPT_WAIT,
	  "caskd compact " URL_OPT "[--token-file FILE] [--wait]", run_compact },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

int srv_cli_is_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return 1;
	return 0;
}

void srv_cli_usage(FILE *out)
{
	fprintf(out, "\nClient subcommands, over the HTTP API of a running caskd (--url, or\n"
		     "$" URL_ENV ", or " DEFAULT_URL "):\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %s\n", commands[i].usage);
	fprintf(out, "get writes the value as stored; put and del print the version the\n"
		     "write got; keys prints one percent-encoded key a line, every page;\n"
		     "watch prints the server's lines as they come; compact the job id\n"
		     "(--wait: the job's record once it ended). Exit status: 0 done (get:\n"
		     "found), 1 no such key, 2 usage, 3 another answer or no answer (the\n"
		     "server's message on stderr).\n");
}

int srv_cli_main(int argc, char **argv)
{
	struct cli c = { 0 };
	struct answer a = { 0 };
	struct srv_cli_parser *p;
	int rc;

	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(argv[0], commands[i].name))
			c.cmd = &commands[i];
	if (!c.cmd)
		return SRV_CLI_EXIT_USAGE;
	if ((rc = parse_args(&c, argc, argv)))
		return rc == ARGS_HELP ? SRV_CLI_EXIT_OK : rc;
	if (!(p = malloc(sizeof(*p))))
		return out_of_memory(&c);
	rc = c.cmd->run(&c, p, &a);
	free(p);
	free(a.body);
	free(c.auth);
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "caskd %s: writing the output: %s\n", c.cmd->name,
			strerror(errno));
		rc = SRV_CLI_EXIT_FAILED;
	}
	return rc;
}
