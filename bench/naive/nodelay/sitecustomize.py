"""bench/naive/nodelay/sitecustomize.py — restores TCP_NODELAY for the
"naive (nodelay)" run of bench/naive/app.py.

Why: asyncio sets TCP_NODELAY on an accepted connection only when the
listening socket's proto is IPPROTO_TCP (asyncio.base_events._set_nodelay).
Under `--workers N`, uvicorn 0.17 (Debian 12 ships 0.17.6) binds the
listening socket itself with socket.socket(family=...), whose proto is 0,
and hands it to the workers; so no accepted connection gets TCP_NODELAY,
and Nagle + delayed ACK stall small responses written in two parts
(headers, then body) by about 40 ms. Without --workers uvicorn lets
asyncio create the socket and the bug does not show.

How: the harness puts this directory first on PYTHONPATH for that run, so
Python imports this module at start-up in the uvicorn master and in every
worker (spawned processes inherit the environment). It replaces the check
with one that ignores proto. The app itself is unchanged.
(Being first on the path, it shadows Debian's own sitecustomize, which
only installs the apport crash hook.)
"""

import asyncio.base_events
import socket


def _set_nodelay_any_proto(sock):
    if sock.family in (socket.AF_INET, socket.AF_INET6) and \
            sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


asyncio.base_events._set_nodelay = _set_nodelay_any_proto
