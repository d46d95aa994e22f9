"""listen-flooder: non-blocking connect()s at a steady rate to a listener that never accepts.

At most ``--max-open`` sockets are kept open (the oldest is closed first), so file descriptors stay
bounded. Process name: ``listen-flooder``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import socket
import sys
import time

NAME = "listen-flooder"


def set_name(name: str) -> None:
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="listen_flooder")
    parser.add_argument("--port", type=int, default=9401)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-open", type=int, default=256)
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    set_name(NAME)
    duration = max(0.0, min(args.duration, 3600.0))
    rate = max(0.1, min(args.rate, 20000.0))
    max_open = max(1, min(args.max_open, 768))
    print("READY " + json.dumps({"pid": os.getpid(), "port": args.port}), flush=True)
    open_sockets: collections.deque[socket.socket] = collections.deque()
    attempts = 0
    start = time.monotonic()
    deadline = start + duration
    for i in range(int(rate * duration)):
        due = start + i / rate
        now = time.monotonic()
        if now >= deadline:
            break
        if due > now:
            time.sleep(due - now)
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", args.port))
        attempts += 1
        open_sockets.append(s)
        while len(open_sockets) > max_open:
            open_sockets.popleft().close()
    while open_sockets:
        open_sockets.popleft().close()
    print("DONE " + json.dumps({"attempts": attempts, "seconds": round(time.monotonic() - start, 3)}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
