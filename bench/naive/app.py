"""bench/naive/app.py — "the naive design" caskd replaces, for the benchmark.

A FastAPI app with a module-level dict, KEY_OFFSET_MAP, of
key -> (offset, length) of the value in an append-only database.bin:
PUT appends the value and records its offset; GET looks the key up and
preads the value. At import (so in every worker process) it rebuilds the
dict by scanning the file, which is how the benchmark preloads it.

It is deliberately as simple as the design it stands for, and has its
flaw: under `uvicorn --workers 2` each worker process has its own dict, so
a PUT answered by one worker is invisible to (404) or stale on the other.
bench/stale.py counts exactly that. Nothing is fsync'ed.

Record format (little-endian): u16 key length, u32 value length, key, value.

Run:   NAIVE_DB=/tmp/x/database.bin python3 -m uvicorn app:app --workers 2 ...
Preload: python3 app.py preload DBFILE PREFIX COUNT VALUE_SIZE
         (appends COUNT records with keys PREFIX%012d, as bench/mkdb does)
"""

import os
import struct
import sys

HDR = struct.Struct("<HI")
DB_PATH = os.environ.get("NAIVE_DB", "database.bin")

# key -> (offset of the value in database.bin, value length)
KEY_OFFSET_MAP = {}


def _scan(fd):
    """Rebuilds KEY_OFFSET_MAP from the file: later records win."""
    data = os.pread(fd, os.fstat(fd).st_size, 0)
    off = 0
    while off + HDR.size <= len(data):
        klen, vlen = HDR.unpack_from(data, off)
        key = data[off + HDR.size:off + HDR.size + klen].decode()
        voff = off + HDR.size + klen
        if voff + vlen > len(data):
            break
        KEY_OFFSET_MAP[key] = (voff, vlen)
        off = voff + vlen


def preload(path, prefix, count, vsize):
    """Appends count records of vsize bytes (bench harness helper)."""
    value = (b"abcdefghijklmnopqrstuvwxyz" * (vsize // 26 + 1))[:vsize]
    with open(path, "ab") as f:
        for i in range(count):
            key = ("%s%012d" % (prefix, i)).encode()
            f.write(HDR.pack(len(key), len(value)) + key + value)


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "preload":
        sys.exit("usage: app.py preload DBFILE PREFIX COUNT VALUE_SIZE")
    preload(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    sys.exit(0)

from fastapi import FastAPI, Request, Response  # noqa: E402

# O_APPEND: each write lands at the end of the file even with two worker
# processes appending; our own file position then tells where it went.
_fd = os.open(DB_PATH, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
_scan(_fd)

app = FastAPI()


@app.get("/kv/{key:path}")
async def get_value(key: str):
    loc = KEY_OFFSET_MAP.get(key)
    if loc is None:
        return Response(b'{"error":"not_found"}', status_code=404,
                        media_type="application/json")
    return Response(os.pread(_fd, loc[1], loc[0]),
                    media_type="application/octet-stream")


@app.put("/kv/{key:path}")
async def put_value(key: str, request: Request):
    value = await request.body()
    kb = key.encode()
    os.write(_fd, HDR.pack(len(kb), len(value)) + kb + value)
    end = os.lseek(_fd, 0, os.SEEK_CUR)
    existed = key in KEY_OFFSET_MAP
    KEY_OFFSET_MAP[key] = (end - len(value), len(value))
    return Response(status_code=204 if existed else 201)


@app.get("/healthz")
async def healthz():
    return Response(b"ok", media_type="text/plain")
