"""bench/report.py — renders the benchmark's results as one report.

Input: the TSV bench/run.sh writes (server, workload, metric, value per
line; see run.sh). Output on stdout: the results table (one column per
server set-up, rows per workload and figure), the caskd-only figures
(recovery, shared memory, compaction, start-up, listing, batch, and the
index alone by number of processes), and the targets (issues 5, 9, 10
and 14) as ratios, each marked met or MISSED, or (info). Sections the run skipped (BENCH_ONLY) show as n/a.
docs/benchmarks.md explains how to read it.

Usage: report.py RESULTS.tsv
"""

import sys
from collections import defaultdict

# (result name, header line 1, header line 2)
COLUMNS = [
    ("caskd-w1-periodic", "caskd w1", "periodic"),
    ("caskd-w1-group", "caskd w1", "group"),
    ("caskd-w2-periodic", "caskd w2", "periodic"),
    ("caskd-w2-group", "caskd w2", "group"),
    ("nginx", "nginx", "static"),
    ("nginx-mem", "nginx", "return 200"),
    ("redis", "redis", "no persist"),
    ("redis-aof", "redis aof", "always"),
    ("naive-shipped", "naive", "as shipped"),
    ("naive-nodelay", "naive", "TCP_NODELAY"),
]
WORKLOADS = [
    ("get100", "GET 100 B"),
    ("put100", "PUT 100 B"),
    ("mix100", "MIX 50/50 100 B"),
    ("get1k", "GET 1 KiB"),
    ("get64k", "GET 64 KiB"),
]
# The caskd set-up the targets are judged on (2 workers on 2 cores).
HEAD_P = "caskd-w2-periodic"
HEAD_G = "caskd-w2-group"

LABEL_W = 24
TARGET_W = 48
COL_W = 12


def load(path):
    res = defaultdict(dict)
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4 or parts[3] == "":
                continue
            try:
                res[(parts[0], parts[1])][parts[2]] = float(parts[3])
            except ValueError:
                pass
    return res


def fmt_rps(v):
    if v is None:
        return "-"
    return "%.1fk" % (v / 1000) if v >= 10000 else "%.0f" % v


def fmt_ms(us):
    if us is None:
        return "-"
    ms = us / 1000
    return "%.2f" % ms if ms < 10 else "%.1f" % ms if ms < 100 else "%.0f" % ms


def row(label, cells):
    return label.ljust(LABEL_W) + "".join(c.rjust(COL_W) for c in cells)


def results_table(res):
    out = [row("", [c[1] for c in COLUMNS]), row("", [c[2] for c in COLUMNS])]
    out.append("-" * (LABEL_W + COL_W * len(COLUMNS)))

    def get(server, workload, metric):
        return res.get((server, workload), {}).get(metric)

    for wl, title in WORKLOADS:
        out.append(row(title + "  req/s",
                       [fmt_rps(get(c[0], wl, "rps")) for c in COLUMNS]))
        for metric, name in (("p50_us", "p50 ms"), ("p99_us", "p99 ms"),
                             ("p999_us", "p99.9 ms")):
            out.append(row("    " + name,
                           [fmt_ms(get(c[0], wl, metric)) for c in COLUMNS]))
        if any(get(c[0], wl, "busiest_worker_pct") is not None for c in COLUMNS):
            out.append(row("    busiest worker %", [
                "-" if get(c[0], wl, "busiest_worker_pct") is None
                else "%.0f%%" % get(c[0], wl, "busiest_worker_pct") for c in COLUMNS]))
    for wl, title in (("paced_get", "paced GET"),
                      ("paced_put", "paced PUT")):
        if not any((c[0], wl) in res for c in COLUMNS):
            continue
        out.append(row(title + "  rate/s", [
            "-" if (c[0], wl) not in res else fmt_rps(get(c[0], wl, "rate"))
            for c in COLUMNS]))
        for metric, name in (("p50_us", "p50 ms"), ("p99_us", "p99 ms"),
                             ("p999_us", "p99.9 ms"), ("max_us", "max ms")):
            out.append(row("    " + name,
                           [fmt_ms(get(c[0], wl, metric)) for c in COLUMNS]))
        out.append(row("    late/errors/non-2xx", [
            "-" if (c[0], wl) not in res else "%d/%d/%d" % (
                get(c[0], wl, "incomplete"), get(c[0], wl, "errors"),
                get(c[0], wl, "non2xx")) for c in COLUMNS]))

    def errors(server):
        st = so = 0
        seen = False
        for wl, _ in WORKLOADS:
            r = res.get((server, wl))
            if r is None:
                continue
            seen = True
            st += r.get("err_status", 0)
            so += sum(r.get(k, 0) for k in
                      ("err_connect", "err_read", "err_write", "err_timeout"))
        return "%d/%d" % (st, so) if seen and any(
            "err_status" in res.get((server, wl), {}) for wl, _ in WORKLOADS) else "-"

    out.append(row("wrk errors: >=400/socket", [errors(c[0]) for c in COLUMNS]))
    out.append(row("server non-2xx/3xx", [
        "%d" % get(c[0], "server", "non2xx")
        if get(c[0], "server", "non2xx") is not None else "-" for c in COLUMNS]))

    out.append(row("server warn/error logs", [
        "%d" % get(c[0], "server", "log_warnings")
        if get(c[0], "server", "log_warnings") is not None else "-" for c in COLUMNS]))

    def stale(server):
        r = res.get((server, "stale"))
        if r is None:
            return "-"
        return "%d/%d" % (r.get("stale", 0) + r.get("notfound", 0), r.get("pairs", 0))

    out.append(row("stale or 404 after PUT", [stale(c[0]) for c in COLUMNS]))
    return out


def caskd_only(res):
    out = []
    rec = res.get(("caskd", "recovery"))
    if rec:
        out.append("recovery: %d MiB database.bin scanned in %.3f s = %.2f GB/s "
                   "(caskd's log); start to /healthz 200: %.3f s" % (
                       rec.get("file_mib", 0), rec.get("seconds", 0),
                       rec.get("mb_per_s", 0) / 1000,
                       rec.get("start_to_healthz_s", 0)))
    shm = res.get(("caskd", "shm"))
    if shm and shm.get("keys"):
        out.append("shared memory: %d keys stored use %d bytes (%.1f bytes/key now, %d slots; "
                   "Rss of the shared mappings %d); at the table's fullest %.1f bytes/key" % (
                       shm["keys"], shm["bytes"], shm["bytes"] / shm["keys"], shm.get("slots", 0),
                       shm.get("rss", 0), shm.get("fullest_per_key", 0)))
    out += index_table(res)
    return out


def index_ns(res):
    """The N of the index-alone runs (bench/idxbench), in order."""
    return sorted(int(wl[1:]) for (server, wl) in res
                  if server == "caskd-index" and wl[:1] == "n" and wl[1:].isdigit())


def index_table(res):
    ns = index_ns(res)
    if not ns:
        return []
    setup = res.get(("caskd-index", "setup"), {})
    out = ["index alone (bench/idxbench, no HTTP): %d keys x %d B, N reader + N writer "
           "processes, %g s per N, %d CPUs" % (
               setup.get("keys", 0), setup.get("value_bytes", 0),
               setup.get("seconds", 0), setup.get("nproc", 0))]
    cols = ["GET/s/proc", "PUT/s/proc", "GET/s total", "PUT/s total",
            "GET/CPU-s", "PUT/CPU-s", "CPU %", "lock ms"]
    w = 12
    out.append("  N" + "".join(c.rjust(w) for c in cols))
    for n in ns:
        r = res[("caskd-index", "n%d" % n)]
        cells = [fmt_rps(r.get(k)) for k in ("get_per_proc", "put_per_proc",
                                             "get_total", "put_total",
                                             "get_per_cpu_s", "put_per_cpu_s")]
        cells.append("-" if r.get("cpu_pct") is None else "%.0f%%" % r["cpu_pct"])
        cells.append("-" if r.get("lock_wait_ms") is None else "%.1f" % r["lock_wait_ms"])
        out.append("%3d" % n + "".join(c.rjust(w) for c in cells))
    out += ["  /proc: ops per second of wall time, mean over the N readers (or writers);",
            "  /CPU-s: ops per CPU-second they used; CPU %: the 2N children's share of all",
            "  CPUs; lock ms: time all processes waited for the index (and sync) mutex"]
    return out


def targets(res):
    def v(server, wl, metric):
        return res.get((server, wl), {}).get(metric)

    def ratio(a, b):
        return None if a is None or not b else a / b

    rps = lambda s, wl: v(s, wl, "rps")  # noqa: E731

    def ms(server, wl, metric):
        us = v(server, wl, metric)
        return None if us is None else us / 1000

    def p99_ratio(server, wl_a, wl_b):
        return ratio(v(server, wl_a, "p99_us"), v(server, wl_b, "p99_us"))

    # The index alone: N = the number of CPUs against N = 1.
    cpus = v("caskd-index", "setup", "nproc")
    idx_n = "n%d" % cpus if cpus else None

    def idx_ratio(metric, server="caskd-index"):
        return ratio(v(server, idx_n, metric), v(server, "n1", metric))

    rec = v("caskd", "recovery", "mb_per_s")
    shm_full = v("caskd", "shm", "fullest_per_key")
    stale_c = [v(s, "stale", "stale") + v(s, "stale", "notfound")
               for s in (HEAD_P, HEAD_G) if v(s, "stale", "pairs") is not None]

    # (label, value, comparison, threshold, unit); ">=" or "<="; None = info
    items = [
        ("GET 100 B  caskd w2 / nginx", ratio(rps(HEAD_P, "get100"), rps("nginx", "get100")), ">=", 1.0, "x"),
        ("GET 100 B  caskd w1 / nginx", ratio(rps("caskd-w1-periodic", "get100"), rps("nginx", "get100")), None, 1.0, "x"),
        ("GET 100 B  caskd w2 / nginx return 200", ratio(rps(HEAD_P, "get100"), rps("nginx-mem", "get100")), ">=", 1.0, "x"),
        ("GET 100 B  caskd w2 / redis GET", ratio(rps(HEAD_P, "get100"), rps("redis", "get100")), ">=", 0.8, "x"),
        ("PUT periodic / GET (w2)", ratio(rps(HEAD_P, "put100"), rps(HEAD_P, "get100")), ">=", 0.9, "x"),
        ("PUT group / PUT periodic (w2)", ratio(rps(HEAD_G, "put100"), rps(HEAD_P, "put100")), ">=", 0.9, "x"),
        ("p99 PUT group / p99 PUT periodic (w1)", ratio(v("caskd-w1-group", "put100", "p99_us"), v("caskd-w1-periodic", "put100", "p99_us")), "<=", 2, "x"),
        ("p99 PUT group / p99 PUT periodic (w2)", ratio(v(HEAD_G, "put100", "p99_us"), v(HEAD_P, "put100", "p99_us")), "<=", 2, "x"),
        ("p99 PUT group paced (w2)", ms(HEAD_G, "paced_put", "p99_us"), "<=", 2, " ms"),
        ("p99.9 PUT group (w2, wrk)", ms(HEAD_G, "put100", "p999_us"), None, None, " ms"),
        ("p99.9 MIX group (w2, wrk)", ms(HEAD_G, "mix100", "p999_us"), None, None, " ms"),
        ("PUT group / redis aof SET", ratio(rps(HEAD_G, "put100"), rps("redis-aof", "put100")), ">=", 0.7, "x"),
        ("GET caskd / naive (nodelay)", ratio(rps(HEAD_P, "get100"), rps("naive-nodelay", "get100")), ">=", 60, "x"),
        ("PUT caskd / naive (nodelay)", ratio(rps(HEAD_P, "put100"), rps("naive-nodelay", "put100")), ">=", 60, "x"),
        ("GET caskd / naive (shipped)", ratio(rps(HEAD_P, "get100"), rps("naive-shipped", "get100")), ">=", 60, "x"),
        ("PUT caskd / naive (shipped)", ratio(rps(HEAD_P, "put100"), rps("naive-shipped", "put100")), ">=", 60, "x"),
        ("p99 GET 100 B (wrk, 64 conns)", (v(HEAD_P, "get100", "p99_us") or 0) / 1000 if v(HEAD_P, "get100", "p99_us") is not None else None, "<=", 2, " ms"),
        ("p99 PUT periodic (wrk, 64 c.)", (v(HEAD_P, "put100", "p99_us") or 0) / 1000 if v(HEAD_P, "put100", "p99_us") is not None else None, "<=", 2, " ms"),
        ("p99 GET paced", (v(HEAD_P, "paced_get", "p99_us") or 0) / 1000 if v(HEAD_P, "paced_get", "p99_us") is not None else None, "<=", 2, " ms"),
        ("p99 PUT periodic paced", (v(HEAD_P, "paced_put", "p99_us") or 0) / 1000 if v(HEAD_P, "paced_put", "p99_us") is not None else None, "<=", 2, " ms"),
        ("recovery from page cache", rec / 1000 if rec is not None else None, ">=", 1.0, " GB/s"),
        ("shared memory per key, fullest", shm_full, "<=", 48, " B"),
        ("caskd stale/404 after PUT", sum(stale_c) if stale_c else None, "<=", 0, ""),
        ("compaction, live bytes / s", v("caskd", "compact", "live_mb_s"), ">=", 500, " MB/s"),
        ("p99 GET compacting / not", p99_ratio("caskd-compactlat", "get_cmp", "get"), "<=", 2, "x"),
        ("p99 PUT compacting / not", p99_ratio("caskd-compactlat", "put_cmp", "put"), "<=", 2, "x"),
        ("p99 GET compacting unpaced / not", p99_ratio("caskd-compactlat", "get_off", "get"), None, None, "x"),
        ("p99 PUT compacting unpaced / not", p99_ratio("caskd-compactlat", "put_off", "put"), None, None, "x"),
        ("compaction job under load, paced", v("caskd-compactlat", "compacting_cmp", "job_s"), None, None, " s"),
        ("compaction job under load, unpaced", v("caskd-compactlat", "compacting_off", "job_s"), None, None, " s"),
        ("start-up after clean stop", v("caskd", "startup", "clean_start_s"), "<=", 0.2, " s"),
        ("start-up clean stop / full scan", ratio(v("caskd", "startup", "clean_start_s"), v("caskd", "startup", "scan_start_s")), "<=", 0.5, "x"),
        ("start-up after kill -9", v("caskd", "startup", "crash_start_s"), None, None, " s"),
        ("start-up, full scan (no .idx)", v("caskd", "startup", "scan_start_s"), None, None, " s"),
        ("GET /keys page of 1000 (median)", v("caskd-keys", "page", "p50_ms"), None, None, " ms"),
        ("GET /keys page, 1 M keys / 10 k", ratio(v("caskd-keys", "page", "p50_ms"), v("caskd-keys", "page_ref", "p50_ms")), "<=", 2, "x"),
        ("1st /keys page after restart / warm", ratio(v("caskd-keys", "restart", "max_ms"), v("caskd-keys", "restart", "warm_new_conn_ms")), "<=", 2, "x"),
        ("listing all 1 M keys, 1000 a page", v("caskd-keys", "full", "seconds"), "<=", 1, " s"),
        ("p99 PUT with listings / without", p99_ratio("caskd-keys", "put_lst", "put"), "<=", 2, "x"),
        ("batch keys/s / single PUT req/s", ratio(v("caskd-batch", "batch", "keys_per_s"), rps("caskd-batch", "put100")), None, None, "x"),
        # N readers and N writers share nproc cores: per process, N=nproc
        # is capped near 0.5x by the CPU alone; per CPU-second measures
        # what the index costs each reader.
        ("GET per CPU-second, N=nproc / N=1", idx_ratio("get_per_cpu_s"), ">=", 0.9, "x"),
        ("GET per process, N=nproc / N=1", idx_ratio("get_per_proc"), None, 0.9, "x"),
        ("PUT per process, N=nproc / N=1", idx_ratio("put_per_proc"), None, None, "x"),
        # Writers as a worker writes under load: 16 PUTs a pass (one
        # mutex hold each way, one pwrite), against one at a time.
        ("PUT per CPU-second, N=nproc / N=1, 1 a call", idx_ratio("put_per_cpu_s"), None, 0.9, "x"),
        ("PUT per CPU-second, N=nproc / N=1, 16 a pass", idx_ratio("put_per_cpu_s", "caskd-index-pass"), ">=", 0.9, "x"),
        ("PUT per CPU-second, 16 a pass / 1 a call (N=1)", ratio(v("caskd-index-pass", "n1", "put_per_cpu_s"), v("caskd-index", "n1", "put_per_cpu_s")), None, None, "x"),
    ]
    fmt = "%-" + str(TARGET_W) + "s %12s  %-12s %s"
    out = [fmt % ("target (caskd = w2 unless named)", "measured", "target", "result")]
    met = missed = 0
    for label, val, cmp, thr, unit in items:
        if val is None:
            result = "n/a"
        elif cmp is None:
            result = "(info)"
        elif (val >= thr) if cmp == ">=" else (val <= thr):
            result = "met"
            met += 1
        else:
            result = "MISSED"
            missed += 1
        shown = "-" if val is None else "%d" % val if unit == "" else (
            "%.3f%s" % (val, unit) if unit == " s" else
            "%.2f%s" % (val, unit) if abs(val) < 100 else "%.0f%s" % (val, unit))
        tgt = "" if thr is None else "%s %g%s" % (cmp or "vs", thr, unit)
        out.append(fmt % (label, shown, tgt, result))
    out.append("%d met, %d missed" % (met, missed))
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: report.py RESULTS.tsv")
    res = load(sys.argv[1])
    lines = ["RESULTS (req/s: closed loop, wrk -t2 -c64; latency in ms)"]
    lines += results_table(res)
    lines += [
        "redis columns: redis-benchmark -c64 --threads 2 (PUT row = SET; it reports no p99.9);",
        "nginx static serves every key from one static file, nginx return 200 from memory;",
        "paced = bench/paced at a fixed rate, latency from the scheduled send time;",
        "late = still unanswered 5 s after the run;",
        "busiest worker % = share of the run's requests answered by caskd's busiest worker",
        "(50% = even; 100% = one worker did everything)."]
    lines += ["", "CASKD ONLY"] + caskd_only(res)
    lines += ["", "TARGETS"] + targets(res)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
