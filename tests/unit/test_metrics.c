/* tests/unit/test_metrics.c — the numbers of the Prometheus text
 * (server/metrics.c: srv_metrics_fmt_double).
 *
 * A value prints in the shortest form that reads back as the same
 * double: a scraper and a person see 0.328, not 0.32800000000000001,
 * and nothing is lost where 17 digits are needed. Pure.
 */
#include "server/metrics.h"

#include <criterion/criterion.h>
#include <stdlib.h>

static void expect(double v, const char *want)
{
	char buf[32];

	srv_metrics_fmt_double(buf, sizeof(buf), v);
	cr_assert_str_eq(buf, want, "%.17g prints as %s, want %s", v, buf, want);
	cr_assert(strtod(buf, NULL) == v, "%s does not read back as %.17g", buf, v);
}

Test(srv_metrics, values_print_shortest_and_exact, .timeout = 5)
{
	expect(0.328, "0.328");
	expect(328000000 / 1e9, "0.328");
	expect(0, "0");
	expect(5, "5");
	expect(123456789012.0, "123456789012");
	expect(0.000123456789, "0.000123456789");
	/* where 15 digits are not enough, 16 or 17 are used */
	expect(0.1 + 0.2, "0.30000000000000004");
	expect(1.0 / 3, "0.3333333333333333");
	expect(9007199254740993.0, "9007199254740992");
	expect(1e300, "1e+300");
}
