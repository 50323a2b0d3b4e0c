"""bench/stale.py — read-your-write check for the benchmark table.

THREADS writer threads run at once. Each owns KEYS keys of its own (no
other thread writes them) and, OPS times, PUTs a new value (its thread id
and a counter) to one of them, waits for the answer, then GETs the key
on a *fresh* connection. Nobody else writes that key, so the GET must
return exactly the value just written: a 404 or any other value is a
stale read. A fresh connection per request lets the kernel hand it to
any worker process, which is where the naive design fails (each uvicorn
worker has its own key -> offset dict) and caskd must not.

Usage: stale.py PORT [OPS_PER_THREAD] [THREADS] [KEYS]
Prints: STALE pairs=N stale=S notfound=F errors=E
(stale counts wrong values only; notfound counts 404s; errors counts
failed requests and unexpected statuses.)
"""

import http.client
import sys
import threading
import time


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def writer(port, tid, ops, nkeys, run_id, counts, lock):
    mine = {"pairs": 0, "stale": 0, "notfound": 0, "errors": 0}
    for i in range(ops):
        path = "/kv/stale-%s-%d-%d" % (run_id, tid, i % nkeys)
        value = ("t%d-n%d" % (tid, i)).encode()
        try:
            status, _ = request(port, "PUT", path, value)
            if status not in (200, 201, 204):
                mine["errors"] += 1
                continue
            status, body = request(port, "GET", path)
        except (OSError, http.client.HTTPException):
            mine["errors"] += 1
            continue
        mine["pairs"] += 1
        if status == 404:
            mine["notfound"] += 1
        elif status != 200:
            mine["errors"] += 1
        elif body != value:
            mine["stale"] += 1
    with lock:
        for k, v in mine.items():
            counts[k] += v


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: stale.py PORT [OPS_PER_THREAD] [THREADS] [KEYS]")
    port = int(sys.argv[1])
    ops = int(sys.argv[2]) if len(sys.argv) > 2 else 250
    nthreads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    nkeys = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    run_id = "%x" % int(time.time() * 1000)
    counts = {"pairs": 0, "stale": 0, "notfound": 0, "errors": 0}
    lock = threading.Lock()
    threads = [threading.Thread(target=writer,
                                args=(port, t, ops, nkeys, run_id, counts, lock))
               for t in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("STALE pairs=%(pairs)d stale=%(stale)d notfound=%(notfound)d "
          "errors=%(errors)d" % counts)


if __name__ == "__main__":
    main()
