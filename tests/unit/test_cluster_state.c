/* tests/unit/test_cluster_state.c — the pure rules of a group member
 * (server/cluster_state.h): the majority a write needs, the term history
 * that tells a replica which of its writes the group never acknowledged,
 * the durable state file, and the JSON walk over etcd's answers
 * (server/json.h) and base64 (server/b64.h).
 */
#include "server/b64.h"
#include "server/cluster_state.h"
#include "server/json.h"

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct srv_cl_shm *group(unsigned n, int self)
{
	struct srv_cl_shm *c = calloc(1, sizeof(*c));

	cr_assert(c != NULL);
	atomic_store(&c->nmembers, n);
	atomic_store(&c->self, self);
	return c;
}

Test(cluster_state, a_write_needs_a_majority_counting_the_primary, .timeout = 5)
{
	struct srv_cl_shm *c = group(3, 0);

	cr_assert(eq(u64, srv_cl_committed(c, 3), 0));
	srv_cl_ack(c, 1, 10, 1);
	/* primary + member 1 = 2 of 3 */
	cr_assert(eq(u64, srv_cl_committed(c, 3), 10));
	srv_cl_ack(c, 2, 7, 1);
	cr_assert(eq(u64, srv_cl_committed(c, 3), 10));
	/* an ack never moves backwards */
	srv_cl_ack(c, 1, 5, 1);
	cr_assert(eq(u64, srv_cl_committed(c, 3), 10));
	free(c);

	c = group(5, 2);
	srv_cl_ack(c, 0, 9, 1);
	cr_assert(eq(u64, srv_cl_committed(c, 5), 0)); /* 2 of 5 */
	srv_cl_ack(c, 4, 4, 1);
	cr_assert(eq(u64, srv_cl_committed(c, 5), 4)); /* 3 of 5 hold 4 */
	/* our own acks are not counted twice */
	srv_cl_ack(c, 2, 100, 1);
	cr_assert(eq(u64, srv_cl_committed(c, 5), 4));
	free(c);

	c = group(1, 0);
	cr_assert(eq(u64, srv_cl_committed(c, 1), UINT64_MAX));
	free(c);
}

Test(cluster_state, an_ack_wakes_the_waiters_word, .timeout = 5)
{
	struct srv_cl_shm *c = group(3, 0);
	uint32_t g = atomic_load(&c->ack_gen);

	srv_cl_ack(c, 1, 3, 1);
	cr_assert(ne(u32, atomic_load(&c->ack_gen), g));
	g = atomic_load(&c->ack_gen);
	srv_cl_ack(c, 1, 3, 2); /* nothing new: no wake */
	cr_assert(eq(u32, atomic_load(&c->ack_gen), g));
	free(c);
}

Test(cluster_state, versions_carry_their_term, .timeout = 5)
{
	cr_assert(eq(u64, srv_cl_term_of(srv_cl_term_base(7)), 7));
	cr_assert(eq(u64, srv_cl_term_of(srv_cl_term_base(7) + 123456), 7));
	cr_assert(eq(u64, srv_cl_term_of(srv_cl_term_base(8) - 1), 7));
	cr_assert(eq(u64, srv_cl_term_of(42), 0)); /* a single node's data */
}

Test(cluster_state, history_finds_writes_the_group_never_acknowledged, .timeout = 5)
{
	struct srv_cl_history h = { 0 };
	uint64_t t1 = srv_cl_term_base(1), t2 = srv_cl_term_base(2), t4 = srv_cl_term_base(4);

	/* term 1 began after 50 versions of a single node; term 2 took
	 * over at t1+10; term 4 at t2+5 (term 3 never wrote here) */
	cr_assert(eq(int, srv_cl_history_add(&h, 1, 50), 0));
	cr_assert(eq(int, srv_cl_history_add(&h, 2, t1 + 10), 0));
	cr_assert(eq(int, srv_cl_history_add(&h, 4, t2 + 5), 0));
	cr_assert(eq(int, srv_cl_history_add(&h, 3, 0), -EINVAL)); /* terms only grow */

	cr_assert(not(srv_cl_diverged(&h, t4 + 3, 0)));
	cr_assert(not(srv_cl_diverged(&h, t4 + 3, 50)));
	cr_assert(srv_cl_diverged(&h, t4 + 3, 51));         /* past the single node's end */
	cr_assert(not(srv_cl_diverged(&h, t4 + 3, t1 + 10)));
	cr_assert(srv_cl_diverged(&h, t4 + 3, t1 + 11));    /* term 1's unacknowledged tail */
	cr_assert(not(srv_cl_diverged(&h, t4 + 3, t2 + 5)));
	cr_assert(srv_cl_diverged(&h, t4 + 3, t2 + 6));
	cr_assert(srv_cl_diverged(&h, t4 + 3, srv_cl_term_base(3) + 1)); /* a term not ours */
	cr_assert(not(srv_cl_diverged(&h, t4 + 3, t4 + 3)));
	cr_assert(srv_cl_diverged(&h, t4 + 3, t4 + 4));     /* ahead of the primary */
}

Test(cluster_state, history_header_round_trips_and_refuses_junk, .timeout = 5)
{
	struct srv_cl_history h = { 0 }, back;
	char buf[SRV_CL_HISTORY_MAX * 44 + 1];

	srv_cl_history_add(&h, 1, 0);
	srv_cl_history_add(&h, 9, 123);
	cr_assert(eq(int, srv_cl_history_format(&h, buf, sizeof(buf)), 0));
	cr_assert(eq(str, buf, "1:0,9:123"));
	cr_assert(eq(int, srv_cl_history_parse(buf, &back), 0));
	cr_assert(eq(u32, back.n, 2));
	cr_assert(eq(u64, back.t[1].prev_end, 123));
	cr_assert(eq(int, srv_cl_history_parse("", &back), 0));
	cr_assert(eq(u32, back.n, 0));
	cr_assert(eq(int, srv_cl_history_parse("2:0,1:0", &back), -EINVAL));
	cr_assert(eq(int, srv_cl_history_parse("1:", &back), -EINVAL));
	cr_assert(eq(int, srv_cl_history_parse("1:2,", &back), -EINVAL));
	cr_assert(eq(int, srv_cl_history_parse("99999999999999999999:1", &back), -EINVAL));
}

Test(cluster_state, a_full_history_drops_its_oldest_term, .timeout = 5)
{
	struct srv_cl_history h = { 0 };

	for (uint64_t t = 1; t <= SRV_CL_HISTORY_MAX; t++)
		cr_assert(eq(int, srv_cl_history_add(&h, t, t), 0));
	cr_assert(eq(int, srv_cl_history_add(&h, 1000, 5), -E2BIG));
	cr_assert(eq(u32, h.n, SRV_CL_HISTORY_MAX));
	cr_assert(eq(u64, h.t[0].term, 2));
	cr_assert(eq(u64, h.t[h.n - 1].term, 1000));
}

Test(cluster_state, state_file_round_trips_and_catches_damage, .timeout = 10)
{
	char dir[] = "/tmp/caskd-clstate-XXXXXX", why[256], path[300], buf[8192];
	struct srv_cl_state st = { .group_size = 3, .max_term = 12 }, back;
	FILE *f;
	size_t n;

	cr_assert(mkdtemp(dir) != NULL);
	snprintf(st.cluster, sizeof(st.cluster), "prod");
	snprintf(st.node, sizeof(st.node), "n2");
	srv_cl_history_add(&st.hist, 3, 77);
	srv_cl_history_add(&st.hist, 12, srv_cl_term_base(3) + 9);
	cr_assert(eq(int, srv_cl_state_load(dir, &back, why, sizeof(why)), -ENOENT));
	cr_assert(eq(int, srv_cl_state_save(dir, &st), 0));
	cr_assert(eq(int, srv_cl_state_load(dir, &back, why, sizeof(why)), 0));
	cr_assert(eq(str, back.cluster, "prod"));
	cr_assert(eq(str, back.node, "n2"));
	cr_assert(eq(u32, back.group_size, 3));
	cr_assert(eq(u64, back.max_term, 12));
	cr_assert(eq(u32, back.hist.n, 2));
	cr_assert(eq(u64, back.hist.t[1].prev_end, srv_cl_term_base(3) + 9));

	/* one flipped byte: refused with a reason, never half-read */
	snprintf(path, sizeof(path), "%s/%s", dir, SRV_CL_STATE_FILE);
	f = fopen(path, "r+");
	cr_assert(f != NULL);
	n = fread(buf, 1, sizeof(buf), f);
	buf[30] ^= 1;
	rewind(f);
	fwrite(buf, 1, n, f);
	fclose(f);
	cr_assert(eq(int, srv_cl_state_load(dir, &back, why, sizeof(why)), -EINVAL));
	cr_assert(gt(sz, strlen(why), 0));
	/* cut short */
	cr_assert(eq(int, srv_cl_state_parse(buf, n / 2, &back, why, sizeof(why)), -EINVAL));
	unlink(path);
	rmdir(dir);
}

Test(cluster_json, finds_etcds_fields, .timeout = 5)
{
	const char *d = "{\"header\":{\"revision\":\"42\"},\"kvs\":[{\"key\":\"a2V5\","
			"\"value\":\"dmFs\",\"create_revision\":\"7\"},{\"key\":\"b\"}],"
			"\"succeeded\":true,\"n\":[1,2.5e3,-1,null,false]}";
	char s[32];
	uint64_t v;
	struct srv_json_val jv;

	cr_assert(eq(int, srv_json_u64(d, strlen(d), "header.revision", &v), 0));
	cr_assert(eq(u64, v, 42));
	cr_assert(eq(int, srv_json_str(d, strlen(d), "kvs.0.value", s, sizeof(s)), 0));
	cr_assert(eq(str, s, "dmFs"));
	cr_assert(eq(int, srv_json_u64(d, strlen(d), "kvs.0.create_revision", &v), 0));
	cr_assert(eq(u64, v, 7));
	cr_assert(eq(int, srv_json_str(d, strlen(d), "kvs.1.key", s, sizeof(s)), 0));
	cr_assert(eq(int, srv_json_get(d, strlen(d), "kvs.2", &jv), -ENOENT));
	cr_assert(eq(int, srv_json_get(d, strlen(d), "nope", &jv), -ENOENT));
	cr_assert(srv_json_true(d, strlen(d), "succeeded"));
	cr_assert(not(srv_json_true(d, strlen(d), "failed")));
	cr_assert(eq(int, srv_json_get(d, strlen(d), "n.1", &jv), 0));
	cr_assert(eq(int, jv.type, SRV_JSON_NUMBER));
	cr_assert(eq(int, srv_json_u64(d, strlen(d), "n.2", &v), -EINVAL));
}

Test(cluster_json, refuses_broken_documents, .timeout = 5)
{
	static const char *bad[] = { "{", "{\"a\"", "{\"a\":}", "{\"a\":1,}", "[1 2]",
				     "{\"a\":\"\\x\"}", "{\"a\":tru}", "\"\x01\"" };
	struct srv_json_val v;
	char deep[200];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert(lt(int, srv_json_get(bad[i], strlen(bad[i]), "a.b", &v), 0), "%s", bad[i]);
	memset(deep, '[', sizeof(deep));
	cr_assert(eq(int, srv_json_get(deep, sizeof(deep), "0", &v), -EINVAL));
	/* the value found, even if the rest is never walked */
	cr_assert(eq(int, srv_json_get("{\"a\":1,", 7, "a", &v), 0));
}

Test(cluster_json, escapes_what_a_string_may_not_hold, .timeout = 5)
{
	char out[64];
	long n = srv_json_escape("a\"b\\c\n", 6, out, sizeof(out));

	cr_assert(eq(long, n, 13));
	out[n] = 0;
	cr_assert(eq(str, out, "a\\\"b\\\\c\\u000a"));
	cr_assert(eq(long, srv_json_escape("\"\"\"", 3, out, 4), -ENOSPC));
}

Test(cluster_b64, round_trips_and_is_strict, .timeout = 5)
{
	unsigned char in[64], back[64];
	char enc[100];

	for (size_t n = 0; n < 20; n++) {
		for (size_t i = 0; i < n; i++)
			in[i] = (unsigned char)(i * 37 + n);
		size_t e = srv_b64_encode(in, n, enc);
		cr_assert(eq(sz, e, srv_b64_len(n)));
		cr_assert(eq(long, (long)srv_b64_decode(enc, e, back), (long)n));
		cr_assert(eq(int, memcmp(in, back, n), 0));
	}
	cr_assert(eq(long, (long)srv_b64_decode("abc", 3, back), -EINVAL));
	cr_assert(eq(long, (long)srv_b64_decode("a=bc", 4, back), -EINVAL));
	cr_assert(eq(long, (long)srv_b64_decode("ab!c", 4, back), -EINVAL));
	cr_assert(eq(long, (long)srv_b64_decode("a===", 4, back), -EINVAL));
}
