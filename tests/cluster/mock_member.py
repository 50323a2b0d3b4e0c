#!/usr/bin/env python3
"""tests/cluster/mock_member.py — a stand-in for a caskd group member, to
test the drill itself (rig, workload, dumps, checker) before and apart from
the real cluster code: `make cluster-selftest`.

It takes caskd's command line (only --listen, --data-dir and --node are
used) and serves the part of the HTTP API the drill uses: PUT/GET /kv/,
POST /incr/, POST /batch, GET /keys, /cluster/primary, /cluster/replica.

MOCK_MODE=shared (default): a correct "group": every member reads and
writes one JSON file beside the data dirs under flock, so every write is
on every member at once; the primary is the lowest-numbered member whose
process runs (not stopped, not dead), read from the rig's pid files. The
drill must pass against it.

MOCK_MODE=local: a broken one, the "acknowledges before replicating"
build of issue 19: the same choice of primary, but each member keeps its
own file and nothing is replicated, so a failover loses acknowledged
writes. The drill must fail against it, quoting the history.
"""
import fcntl
import json
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
HOST, PORT = args["--listen"].rsplit(":", 1)
DATA = args["--data-dir"]
NODE = args["--node"]
STATE = os.path.dirname(os.path.abspath(DATA))
MODE = os.environ.get("MOCK_MODE", "shared")
DB = os.path.join(STATE, "mock-shared.json") if MODE == "shared" else os.path.join(DATA, "mock.json")


def alive(node):
    try:
        pid = open(os.path.join(STATE, node + ".pid")).read().strip()
        st = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()[0]
        return st not in ("Z", "X", "T", "t")
    except OSError:
        return False


def is_primary():
    for n in ("n1", "n2", "n3"):
        if alive(n):
            return n == NODE
    return False


class Store:
    def __enter__(self):
        self.lock = open(DB + ".lock", "a")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        try:
            self.d = json.load(open(DB))
        except (OSError, ValueError):
            self.d = {"ver": 0, "kv": {}}
        return self

    def save(self):
        tmp = DB + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.d, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, DB)

    def __exit__(self, *a):
        fcntl.flock(self.lock, fcntl.LOCK_UN)
        self.lock.close()


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body=b"", etag=None, ctype="application/octet-stream"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", ctype)
        if etag is not None:
            self.send_header("ETag", '"%d"' % etag)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def err(self, code, short):
        self.reply(code, json.dumps({"error": short, "message": short}), ctype="application/json")

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n).decode("latin-1")

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/cluster/primary":
            return self.reply(200 if is_primary() else 503, "")
        if u.path == "/cluster/replica":
            return self.reply(503 if is_primary() else 200, "")
        if u.path == "/keys":
            with Store() as s:
                keys = sorted(s.d["kv"])
            return self.reply(200, "".join(urllib.parse.quote(k, safe="") + "\n" for k in keys),
                              ctype="text/plain")
        if u.path.startswith("/kv/"):
            k = urllib.parse.unquote(u.path[4:])
            with Store() as s:
                e = s.d["kv"].get(k)
            if not e:
                return self.err(404, "not_found")
            return self.reply(200, e[1].encode("latin-1"), etag=e[0])
        self.err(404, "not_found")

    def do_PUT(self):
        k = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path[4:])
        v = self.body()
        if not is_primary():
            return self.err(503, "not_primary")
        im = self.headers.get("If-Match")
        with Store() as s:
            d = s.d
            e = d["kv"].get(k)
            if im is not None and (not e or '"%d"' % e[0] != im.strip()):
                return self.err(412, "precondition_failed")
            d["ver"] += 1
            d["kv"][k] = [d["ver"], v]
            s.save()
            ver = d["ver"]
        self.reply(204 if e else 201, "", etag=ver)

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        body = self.body()
        if not is_primary():
            return self.err(503, "not_primary")
        with Store() as s:
            d = s.d
            if u.path.startswith("/incr/"):
                k = urllib.parse.unquote(u.path[6:])
                by = int(urllib.parse.parse_qs(u.query).get("by", ["1"])[0])
                e = d["kv"].get(k)
                n = (int(e[1]) if e else 0) + by
                d["ver"] += 1
                d["kv"][k] = [d["ver"], str(n)]
                s.save()
                return self.reply(200, str(n), etag=d["ver"])
            if u.path == "/batch":
                d["ver"] += 1
                for line in body.splitlines():
                    w = line.split(" ")
                    if w[0] == "put":
                        d["kv"][urllib.parse.unquote(w[1])] = [d["ver"], urllib.parse.unquote(w[2])]
                s.save()
                return self.reply(200, json.dumps({"version": d["ver"], "applied": 2}),
                                  etag=d["ver"], ctype="application/json")
        self.err(404, "not_found")


ThreadingHTTPServer.daemon_threads = True
os.makedirs(DATA, exist_ok=True)
srv = ThreadingHTTPServer((HOST, int(PORT)), H)
srv.serve_forever()
