"""listen-flooder: non-blocking connect()s at a steady rate to a listener that never accepts.

At most ``--max-open`` sockets are kept open (the oldest is closed first), so file descriptors stay
bounded. Process name: ``listen-flooder``.
"""

from __future__ import annotations

import collections
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # python -I leaves this directory out
import _common  # type: ignore[import-not-found]  # (mypy checks it as fleetrst.testing.load._common)

NAME = "listen-flooder"


def main(argv: list[str] | None = None) -> int:
    args = _common.begin(NAME, "listen_flooder", argv, port=9401, rate=200.0, extra=[("--max-open", 256)])
    max_open = max(1, min(args.max_open, 768))
    _common.ready(args.port)
    open_sockets: collections.deque[socket.socket] = collections.deque()
    attempts = 0
    start = time.monotonic()
    for _ in _common.paced(start, args.rate, args.duration):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", args.port))
        attempts += 1
        open_sockets.append(s)
        while len(open_sockets) > max_open:
            open_sockets.popleft().close()
    while open_sockets:
        open_sockets.popleft().close()
    _common.done(start, attempts=attempts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
