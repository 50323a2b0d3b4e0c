/* tests/integration/test_keys_restart.c — GET /keys across a clean
 * restart: the workers' ordered views come from database.idx's ordered
 * keys (caskd_key_views_total{source="database.idx"}, and the log says
 * "mapped from"), none is sorted, and the listings are exactly the live
 * keys, writes and deletes made after the start included; a damaged
 * section is refused at the start and the views are sorted instead,
 * with the same listings. No timing is asserted.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.h"
#include "tests/integration/it_assert.h"

#define OLD_KEYS 400
#define NEW_KEYS 60
#define KEY_LEN 48
/* A page smaller than the keys, so listings take several. */
#define PAGE 37
/* Listings on fresh connections, so that every worker serves some. */
#define LISTINGS 4

TestSuite(it_keys_restart, .init = it_setup, .fini = it_teardown);

static struct it_daemon d;
static char base[64];

/* Which keys are live (old keys 0..OLD_KEYS-1, new ones after). */
static int live[OLD_KEYS + NEW_KEYS];

/* Keys sharing their first 16 bytes (and more) with others, so that
 * order needs the records' bytes too. */
static void key_of(int i, char *out)
{
	if (i % 5 == 0)
		snprintf(out, KEY_LEN, "kr-same-first-16-bytes-%05d", i);
	else
		snprintf(out, KEY_LEN, "kr-%05d", i);
}

static void put(int i)
{
	char key[KEY_LEN], path[KEY_LEN + 8];
	struct it_resp r;

	key_of(i, key);
	snprintf(path, sizeof(path), "/kv/%s", key);
	IT_OK(it_request(d.port, "PUT", path, NULL, "v", 1, &r));
	cr_assert(r.status == 201 || r.status == 204, "PUT %s: %s", path, it_resp_brief(&r));
	it_resp_free(&r);
	live[i] = 1;
}

static void del(int i)
{
	char key[KEY_LEN], path[KEY_LEN + 8];
	struct it_resp r;

	key_of(i, key);
	snprintf(path, sizeof(path), "/kv/%s", key);
	IT_OK(it_request(d.port, "DELETE", path, NULL, NULL, 0, &r));
	cr_assert_eq(r.status, 204, "DELETE %s: %s", path, it_resp_brief(&r));
	it_resp_free(&r);
	live[i] = 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The live keys, sorted; returns how many. */
static size_t expected(char (*keys)[KEY_LEN])
{
	char *p[OLD_KEYS + NEW_KEYS];
	static char tmp[OLD_KEYS + NEW_KEYS][KEY_LEN];
	size_t n = 0;

	for (int i = 0; i < OLD_KEYS + NEW_KEYS; i++)
		if (live[i]) {
			key_of(i, tmp[n]);
			p[n] = tmp[n];
			n++;
		}
	qsort(p, n, sizeof(*p), str_cmp);
	for (size_t i = 0; i < n; i++)
		memcpy(keys[i], p[i], KEY_LEN);
	return n;
}

/* Lists every key with prefix kr-, PAGE a page, each page on a fresh
 * connection, and compares with the model. */
static void expect_listing(void)
{
	static char want[OLD_KEYS + NEW_KEYS][KEY_LEN];
	size_t nwant = expected(want), got = 0;
	char after[KEY_LEN] = "";

	for (;;) {
		char path[2 * KEY_LEN + 64], *line, *save = NULL;
		struct it_resp r;
		const char *tr;
		int more;

		snprintf(path, sizeof(path), "/keys?prefix=kr-&limit=%d%s%s", PAGE,
			 after[0] ? "&start_after=" : "", after);
		IT_OK(it_request(d.port, "GET", path, NULL, NULL, 0, &r));
		cr_assert_eq(r.status, 200, "GET %s: %s", path, it_resp_brief(&r));
		tr = it_resp_header(&r, "X-Truncated");
		more = tr && !strcmp(tr, "true");
		for (line = strtok_r(r.body ? r.body : (char *)"", "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			cr_assert_lt(got, nwant, "listed more keys than the %zu live: %s",
				     nwant, line);
			cr_assert_str_eq(line, want[got], "key %zu", got);
			snprintf(after, sizeof(after), "%s", line);
			got++;
		}
		it_resp_free(&r);
		if (!more)
			break;
	}
	cr_assert_eq(got, nwant, "listed %zu keys of %zu live", got, nwant);
}

static double views(const char *source)
{
	char want[96];
	const char *p;
	struct it_resp r;
	double v = -1;

	IT_OK(it_request(d.port, "GET", "/metrics", NULL, NULL, 0, &r));
	cr_assert_eq(r.status, 200);
	snprintf(want, sizeof(want), "caskd_key_views_total{source=\"%s\"} ", source);
	if ((p = strstr(r.body, want)))
		v = strtod(p + strlen(want), NULL);
	it_resp_free(&r);
	cr_assert_geq(v, 0, "no %s in /metrics", want);
	return v;
}

static int log_has(const char *what)
{
	size_t n = 1 << 20;
	char *buf = malloc(n);
	int found;

	cr_assert_not_null(buf);
	IT_OK(it_read_tail(d.log, buf, n));
	found = strstr(buf, what) != NULL;
	free(buf);
	return found;
}

/* Keys, a listing (each worker that serves one sorts its view), then a
 * clean stop: database.idx with its ordered keys. */
static void fill_and_stop(char *data, size_t n)
{
	it_start(&d, base, sizeof(base), NULL);
	snprintf(data, n, "%s", d.dir);
	for (int i = 0; i < OLD_KEYS; i++)
		put(i);
	for (int i = 0; i < LISTINGS; i++)
		expect_listing();
	it_stop_clean(&d);
}

/* After the start: new keys, a third of the old ones deleted. */
static void change(void)
{
	for (int i = OLD_KEYS; i < OLD_KEYS + NEW_KEYS; i++)
		put(i);
	for (int i = 0; i < OLD_KEYS; i += 3)
		del(i);
}

Test(it_keys_restart, a_clean_restart_lists_from_database_idx, .timeout = 120)
{
	char data[300];

	fill_and_stop(data, sizeof(data));
	it_restart(&d, data, NULL);
	change();
	for (int i = 0; i < LISTINGS; i++)
		expect_listing();
	cr_assert_geq(views("database.idx"), 1, "no view came from database.idx");
	cr_assert_eq(views("built"), 0, "a view was sorted after a clean restart");
	cr_assert(log_has("keys mapped from"), "the log does not say where the view came from");
	/* and the next stop writes them again, with the changes */
	it_stop_clean(&d);
	it_restart(&d, data, NULL);
	for (int i = 0; i < LISTINGS; i++)
		expect_listing();
	cr_assert_eq(views("built"), 0, "a view was sorted after a clean restart");
	it_stop_clean(&d);
	it_assert_no_leaks();
}

Test(it_keys_restart, a_damaged_ordered_section_is_sorted_instead, .timeout = 120)
{
	char data[300], path[400];
	struct stat st;
	unsigned char b;
	FILE *f;

	fill_and_stop(data, sizeof(data));
	/* a bit of the last ordered key's 16th byte (the file ends with
	 * them): only their checksum tells */
	snprintf(path, sizeof(path), "%s/database.idx", data);
	cr_assert_eq(stat(path, &st), 0);
	f = fopen(path, "r+b");
	cr_assert_not_null(f);
	cr_assert_eq(fseek(f, st.st_size - 16, SEEK_SET), 0);
	cr_assert_eq(fread(&b, 1, 1, f), 1);
	b ^= 0x01;
	cr_assert_eq(fseek(f, st.st_size - 16, SEEK_SET), 0);
	cr_assert_eq(fwrite(&b, 1, 1, f), 1);
	cr_assert_eq(fclose(f), 0);
	it_restart(&d, data, NULL);
	cr_assert(log_has("not using the ordered keys"), "the damage was not reported");
	cr_assert(log_has("index from database.idx"), "the entries should still be used");
	change();
	for (int i = 0; i < LISTINGS; i++)
		expect_listing();
	cr_assert_eq(views("database.idx"), 0, "a damaged section was mapped");
	cr_assert_geq(views("built"), 1);
	it_stop_clean(&d);
	it_assert_no_leaks();
}
