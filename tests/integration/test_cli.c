/* tests/integration/test_cli.c — `caskd get|put|del|keys|watch|compact`,
 * the command-line client (server/cli_client.c), against the real
 * daemon: what each subcommand prints, and the exit status scripts rely
 * on (0 done, 1 no such key, 2 usage, 3 another answer or none, with the
 * server's message on stderr).
 *
 * Each test starts its own caskd in a fresh temp dir and runs the client
 * as a separate process (CASKD_BIN with a subcommand), capturing its
 * stdout and stderr.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

/* How long one client run may take. */
#define CLI_TIMEOUT_MS 30000
/* Output kept of a run: keys of the paging test fit. */
#define OUT_MAX (256 * 1024)
/* Keys of the paging test: more than two of the client's pages. */
#define PAGED_KEYS 2500
/* --max-value-size of the daemon that refuses a value as the client
 * still sends it. */
#define SMALL_MAX_VALUE 1024
#define BIG_VALUE (1024 * 1024)

TestSuite(it_cli, .init = it_setup, .fini = it_teardown);

static struct it_daemon d;
static char base[64];
static char out[OUT_MAX], err[8192];

static void start(const char *const *extra)
{
	it_start(&d, base, sizeof(base), extra);
}

static void finish(void)
{
	it_stop_clean(&d);
	it_assert_no_leaks();
}

/* Runs `caskd CMD --url http://127.0.0.1:PORT ARGS...` (args NULL-ended;
 * port 0: no --url) for at most ms; returns its exit status, or -1 if it
 * ran that long (it was killed then; out holds what it printed). */
static int cli_for(int ms, int port, const char *cmd, const char *const *args)
{
	const char *argv[16];
	char url[64];
	int n = 0, st, rc;

	argv[n++] = getenv("CASKD_BIN");
	argv[n++] = cmd;
	if (port) {
		snprintf(url, sizeof(url), "--url=http://127.0.0.1:%d", port);
		argv[n++] = url;
	}
	for (; args && *args && n < 15; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	cr_assert_not_null(argv[0], "CASKD_BIN is not set");
	rc = it_run_capture(argv, ms, out, sizeof(out), err, sizeof(err), &st);
	if (rc == -ETIMEDOUT)
		return -1;
	IT_OK(rc);
	cr_assert(WIFEXITED(st), "caskd %s was killed (status 0x%x); stderr: %s", cmd, st, err);
	return WEXITSTATUS(st);
}

static int cli(int port, const char *cmd, const char *const *args)
{
	return cli_for(CLI_TIMEOUT_MS, port, cmd, args);
}

/* The same through sh -c, for a pipe into the client's stdin. */
static int cli_sh(const char *script)
{
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	int st;

	IT_OK(it_run_capture(argv, CLI_TIMEOUT_MS, out, sizeof(out), err, sizeof(err), &st));
	cr_assert(WIFEXITED(st), "sh -c '%s' was killed (status 0x%x)", script, st);
	return WEXITSTATUS(st);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* path holds data[0..len), then zeros up to size bytes. */
static void write_file(const char *path, const void *data, size_t len, off_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	cr_assert_eq(ftruncate(fd, size), 0);
	close(fd);
}

static void expect_exit(int got, int want, const char *what)
{
	cr_assert_eq(got, want, "%s: exit %d, want %d; stdout: %.200s; stderr: %s", what,
		     got, want, out, err);
}

Test(it_cli, put_get_del_print_what_they_did_and_exit_0_or_1, .timeout = 60)
{
	char version[32];
	uint64_t v;
	struct it_resp r;

	start(NULL);
	expect_exit(cli(d.port, "put", ARGS("users/42 name", "Ada")), 0, "put");
	snprintf(version, sizeof(version), "%.31s", out);
	/* the version the write got, as the ETag says */
	it_do(d.port, "GET", "/kv/users/42%20name", NULL, NULL, 0, &r, 200);
	v = it_version(&r, "GET after caskd put");
	it_resp_free(&r);
	cr_assert_eq(strtoull(version, NULL, 10), v, "put printed '%s', the ETag is %llu",
		     version, (unsigned long long)v);

	expect_exit(cli(d.port, "get", ARGS("users/42 name")), 0, "get of a key put");
	cr_assert_str_eq(out, "Ada", "get printed '%s': the value, as stored, nothing added",
			 out);

	expect_exit(cli(d.port, "del", ARGS("users/42 name")), 0, "del");
	cr_assert_gt(strtoull(out, NULL, 10), v, "del printed '%s', not a newer version", out);
	expect_exit(cli(d.port, "get", ARGS("users/42 name")), 1, "get of a deleted key");
	cr_assert_str_eq(out, "", "get of an absent key printed '%s' on stdout", out);
	cr_assert(strstr(err, "no such key") && strstr(err, "404"),
		  "get of an absent key: stderr does not carry the server's message: %s", err);
	expect_exit(cli(d.port, "del", ARGS("users/42 name")), 1, "del of an absent key");
	finish();
}

Test(it_cli, put_takes_the_value_from_a_file_or_stdin_byte_for_byte, .timeout = 60)
{
	static const char bin[] = "a\0b\r\n\xff end";
	char path[300], script[1024];
	struct it_resp r;

	start(NULL);
	snprintf(path, sizeof(path), "%s/value.bin", base);
	write_file(path, bin, sizeof(bin) - 1, sizeof(bin) - 1);
	snprintf(script, sizeof(script), "@%s", path);
	expect_exit(cli(d.port, "put", ARGS("file", script)), 0, "put @FILE");
	it_do(d.port, "GET", "/kv/file", NULL, NULL, 0, &r, 200);
	cr_assert(r.body_len == sizeof(bin) - 1 && !memcmp(r.body, bin, r.body_len),
		  "put @FILE stored %s", it_resp_brief(&r));
	it_resp_free(&r);

	snprintf(script, sizeof(script),
		 "printf 'line one\\nline two\\n' | '%s' put --url http://127.0.0.1:%d piped -",
		 getenv("CASKD_BIN"), d.port);
	expect_exit(cli_sh(script), 0, "put - from a pipe");
	expect_exit(cli(d.port, "get", ARGS("piped")), 0, "get of the piped value");
	cr_assert_str_eq(out, "line one\nline two\n", "get of the piped value printed '%s'", out);

	snprintf(script, sizeof(script), "@%s/no-such-file", base);
	expect_exit(cli(d.port, "put", ARGS("k", script)), 2, "put @FILE of a missing file");
	cr_assert(strstr(err, "no-such-file"), "the error does not name the file: %s", err);
	finish();
}

/* PAGED_KEYS keys "k/00000".."k/02499" in one batch, and "other". */
static void put_many(void)
{
	size_t cap = PAGED_KEYS * 32, n = 0;
	char *body = malloc(cap);
	struct it_resp r;

	cr_assert_not_null(body);
	for (int i = 0; i < PAGED_KEYS; i++)
		n += (size_t)snprintf(body + n, cap - n, "put k/%05d v\n", i);
	n += (size_t)snprintf(body + n, cap - n, "put other v\n");
	it_do(d.port, "POST", "/batch", NULL, body, n, &r, 200);
	it_resp_free(&r);
	free(body);
}

static void expect_keys(int from, int count, const char *what)
{
	const char *s = out;

	for (int i = from; i < from + count; i++) {
		char want[16];
		int len = snprintf(want, sizeof(want), "k/%05d\n", i);

		cr_assert(!strncmp(s, want, (size_t)len), "%s: line %d is not %.*s: %.40s", what,
			  i - from + 1, len - 1, want, s);
		s += len;
	}
	cr_assert_str_eq(s, "", "%s: more after the last key: %.80s", what, s);
}

Test(it_cli, keys_follows_every_page_and_takes_prefix_and_limit, .timeout = 60)
{
	start(NULL);
	put_many();
	expect_exit(cli(d.port, "keys", ARGS("--prefix", "k/")), 0, "keys --prefix k/");
	expect_keys(0, PAGED_KEYS, "keys --prefix k/ (three pages)");
	expect_exit(cli(d.port, "keys", ARGS("--prefix=k/", "--limit", "1500")), 0,
		    "keys --limit 1500");
	expect_keys(0, 1500, "keys --limit 1500 (two pages)");
	expect_exit(cli(d.port, "keys", ARGS("--prefix", "oth")), 0, "keys --prefix oth");
	cr_assert_str_eq(out, "other\n", "keys --prefix oth printed '%s'", out);
	expect_exit(cli(d.port, "keys", ARGS("--prefix", "nothing")), 0,
		    "keys of a prefix nothing has");
	cr_assert_str_eq(out, "", "keys of a prefix nothing has printed '%s'", out);
	finish();
}

Test(it_cli, compact_prints_the_job_and_waits_for_its_end, .timeout = 60)
{
	char id[32];

	start(NULL);
	it_put(d.port, "/kv/a", "1", 1, 201);
	it_put(d.port, "/kv/a", "2", 1, 204);
	expect_exit(cli(d.port, "compact", NULL), 0, "compact");
	snprintf(id, sizeof(id), "%.31s", out);
	id[strcspn(id, "\n")] = '\0';
	cr_assert(id[0] && strspn(id, "0123456789") == strlen(id),
		  "compact printed '%s', not a job id", out);
	expect_exit(cli(d.port, "compact", ARGS("--wait")), 0, "compact --wait");
	cr_assert(strstr(out, "\"state\":\"done\"") && strstr(out, "\"kind\":\"compact\""),
		  "compact --wait printed no done job record: %s", out);
	finish();
}

Test(it_cli, compact_sends_the_token_of_token_file, .timeout = 60)
{
	char tok[300];

	IT_OK(it_tmpdir(base, sizeof(base)));
	snprintf(tok, sizeof(tok), "%s/token", base);
	write_file(tok, "s3cret-token\n", 13, 13);
	{
		char data[300];
		const char *extra[] = { "--admin-token-file", tok, NULL };

		snprintf(data, sizeof(data), "%s/data", base);
		it_restart(&d, data, extra);
	}
	expect_exit(cli(d.port, "compact", NULL), 3, "compact without the token");
	cr_assert(strstr(err, "401") && strstr(err, "Bearer"),
		  "compact without the token: stderr does not carry the 401's message: %s", err);
	expect_exit(cli(d.port, "compact", ARGS("--token-file", tok, "--wait")), 0,
		    "compact --token-file");
	finish();
}

/* watch prints the server's lines as they come, and runs until
 * stopped; against a server without /watch (here: a --url whose path
 * leads nowhere) it says so. */
Test(it_cli, watch_streams_changes_and_says_when_there_is_no_watch, .timeout = 60)
{
	char url[96];

	start(NULL);
	it_put(d.port, "/kv/users/1", "a", 1, 201);
	it_put(d.port, "/kv/other", "b", 1, 201);
	expect_exit(cli_for(2000, d.port, "watch", ARGS("--prefix", "users/", "--since", "0")),
		    -1, "watch (runs until stopped)");
	cr_assert(strstr(out, "\"op\":\"put\",\"key\":\"users/1\"") && !strstr(out, "other"),
		  "watch --prefix users/ --since 0 printed: %s", out);
	snprintf(url, sizeof(url), "--url=http://127.0.0.1:%d/nowhere", d.port);
	expect_exit(cli(0, "watch", ARGS(url)), 3, "watch where there is none");
	cr_assert(strstr(err, "not supported by this server"), "%s", err);
	expect_exit(cli(d.port, "watch", ARGS("--since", "x")), 2, "watch --since x");
	finish();
}

Test(it_cli, refusals_exit_3_with_the_servers_message, .timeout = 60)
{
	const char *extra[] = { "--max-value-size", "1024", NULL };
	char big[2048], path[300], arg[310];

	start(extra);
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_exit(cli(d.port, "get", ARGS(big)), 3, "get of a 2047-byte key");
	cr_assert(strstr(err, "400 bad_key") && strstr(err, "1024"),
		  "get of a too long key: stderr does not carry the server's message: %s", err);

	/* refused (413) while the client still sends the value */
	snprintf(path, sizeof(path), "%s/big", base);
	write_file(path, "", 0, BIG_VALUE);
	snprintf(arg, sizeof(arg), "@%s", path);
	expect_exit(cli(d.port, "put", ARGS("big", arg)), 3, "put of a value over the limit");
	cr_assert(strstr(err, "413 value_too_large"),
		  "put of a value over --max-value-size %d: stderr: %s", SMALL_MAX_VALUE, err);
	finish();
}

Test(it_cli, no_server_exits_3_and_bad_arguments_exit_2, .timeout = 60)
{
	int port = it_free_port();

	cr_assert_gt(port, 0);
	expect_exit(cli(port, "get", ARGS("k")), 3, "get with nothing listening");
	cr_assert(strstr(err, "cannot connect") && strstr(err, "Connection refused"),
		  "get with nothing listening: %s", err);

	expect_exit(cli(0, "get", NULL), 2, "get without a key");
	cr_assert(strstr(err, "usage: caskd get"), "no usage line: %s", err);
	expect_exit(cli(0, "put", ARGS("k")), 2, "put without a value");
	expect_exit(cli(0, "get", ARGS("a", "b")), 2, "get of two keys");
	expect_exit(cli(0, "get", ARGS("--limit", "3", "k")), 2, "get --limit");
	cr_assert(strstr(err, "--limit"), "the error does not name the option: %s", err);
	expect_exit(cli(0, "keys", ARGS("--limit", "0")), 2, "keys --limit 0");
	expect_exit(cli(0, "get", ARGS("--url", "https://example.com", "k")), 2,
		    "an https --url");
	cr_assert(strstr(err, "only http://"), "https --url: %s", err);
	expect_exit(cli(0, "get", ARGS("--url", "http://h:99999", "k")), 2, "a bad port");
	/* CASKD_URL stands for --url; --url wins */
	setenv("CASKD_URL", "http://127.0.0.1:1", 1);
	expect_exit(cli(0, "get", ARGS("k")), 3, "get with CASKD_URL naming a closed port");
	cr_assert(strstr(err, "127.0.0.1:1:"), "CASKD_URL was not used: %s", err);
	expect_exit(cli(port, "get", ARGS("k")), 3, "get with --url and CASKD_URL");
	cr_assert(!strstr(err, "127.0.0.1:1:"), "--url did not win over CASKD_URL: %s", err);
	setenv("CASKD_URL", "ftp://x", 1);
	expect_exit(cli(0, "get", ARGS("k")), 2, "a bad CASKD_URL");
	cr_assert(strstr(err, "CASKD_URL"), "the error does not name CASKD_URL: %s", err);
	unsetenv("CASKD_URL");
	expect_exit(cli(0, "get", ARGS("--help")), 0, "get --help");
	cr_assert(strstr(out, "usage: caskd get"), "get --help printed: %s", out);
	it_assert_no_leaks();
}

Test(it_cli, daemon_help_lists_the_subcommands, .timeout = 30)
{
	expect_exit(cli(0, "--help", NULL), 0, "caskd --help");
	for (const char *const *c = ARGS("caskd get", "caskd put", "caskd del", "caskd keys",
					 "caskd watch", "caskd compact");
	     *c; c++)
		cr_assert(strstr(out, *c), "caskd --help does not list %s:\n%s", *c, out);
	cr_assert(strstr(out, "1 no such key"), "caskd --help does not give the exit "
		  "statuses:\n%s", out);
	it_assert_no_leaks();
}
