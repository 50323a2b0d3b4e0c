/* tests/unit/test_api_query.c — the query strings of the API's routes
 * (server/api_query.c: srv_api_query_check, srv_api_query_param).
 *
 * A route takes a fixed set of parameters: one it does not know (a typo
 * such as prefx=) or one given twice must be refused naming it, never
 * passed over; empty parameters (a=1&&b=2) are nothing. Pure functions.
 */
#include "server/api_query.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

static const char *const keys[] = SRV_QUERY_KEYS;
static const char *const watch[] = SRV_QUERY_WATCH;
static const char *const none[] = SRV_QUERY_NONE;

static void expect(const char *q, const char *const *names, int want, const char *name)
{
	char bad[SRV_QUERY_NAME_SHOWN + 1] = "";
	int got = srv_api_query_check(q, names, bad, sizeof(bad));

	cr_assert_eq(got, want, "query '%s': got %d, want %d", q ? q : "(none)", got, want);
	if (name)
		cr_assert_str_eq(bad, name, "query '%s' names '%s', not '%s'", q, bad, name);
}

Test(srv_api_query, takes_what_the_route_takes_each_once, .timeout = 5)
{
	expect(NULL, keys, SRV_QUERY_OK, NULL);
	expect("", keys, SRV_QUERY_OK, NULL);
	expect("prefix=a&start_after=a%2Fb&limit=10", keys, SRV_QUERY_OK, NULL);
	expect("&limit=10&&prefix=&", keys, SRV_QUERY_OK, NULL);
	expect("prefix=users/&since=7&values=1", watch, SRV_QUERY_OK, NULL);
	expect("", none, SRV_QUERY_OK, NULL);
}

Test(srv_api_query, refuses_an_unknown_parameter_by_name, .timeout = 5)
{
	expect("prefx=users/", keys, SRV_QUERY_UNKNOWN, "prefx");
	expect("limit=1&Prefix=a", keys, SRV_QUERY_UNKNOWN, "Prefix");
	expect("prefix=a&since=3", keys, SRV_QUERY_UNKNOWN, "since");
	expect("x", none, SRV_QUERY_UNKNOWN, "x");
	expect("=v", keys, SRV_QUERY_UNKNOWN, "");
	expect("by=1", watch, SRV_QUERY_UNKNOWN, "by");
}

Test(srv_api_query, refuses_a_parameter_given_twice, .timeout = 5)
{
	expect("prefix=a&prefix=b", keys, SRV_QUERY_REPEATED, "prefix");
	expect("limit=1&prefix=a&limit", keys, SRV_QUERY_REPEATED, "limit");
	expect("since=1&since=1", watch, SRV_QUERY_REPEATED, "since");
}

Test(srv_api_query, names_a_long_parameter_cut, .timeout = 5)
{
	char q[200], bad[8];

	memset(q, 'x', sizeof(q) - 1);
	q[sizeof(q) - 1] = '\0';
	cr_assert_eq(srv_api_query_check(q, keys, bad, sizeof(bad)), SRV_QUERY_UNKNOWN);
	cr_assert_str_eq(bad, "xxxxxxx");
}

Test(srv_api_query, param_reads_the_named_value_decoded, .timeout = 5)
{
	char out[16];

	cr_assert_eq(srv_api_query_param("prefix=a%2Fb&limit=3", "prefix", out, sizeof(out)), 3);
	cr_assert_str_eq(out, "a/b");
	cr_assert_eq(srv_api_query_param("&&limit=3", "limit", out, sizeof(out)), 1);
	cr_assert_str_eq(out, "3");
	cr_assert_eq(srv_api_query_param("limit", "limit", out, sizeof(out)), 0);
	cr_assert_eq(srv_api_query_param("limits=3", "limit", out, sizeof(out)), -ENOENT);
	cr_assert_eq(srv_api_query_param(NULL, "limit", out, sizeof(out)), -ENOENT);
	cr_assert_eq(srv_api_query_param("prefix=%zz", "prefix", out, sizeof(out)), -EINVAL);
}
