"""What every reset generator shares: its arguments, its process name, its bounds, its READY/DONE lines.

Standard library only, like the scripts: they run as ``python3 -I -S <script>``, which does not put the
script's directory on ``sys.path``, so each script puts it there itself before it imports this module.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
from collections.abc import Iterator, Sequence

MAX_DURATION_S = 3600.0  # as fleetrst.testing.load.MAX_DURATION_S (which the fleet checks first)
MAX_RATE = 20000.0


def set_name(name: str) -> None:
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name)
    except OSError:
        pass


def begin(
    name: str,
    prog: str,
    argv: list[str] | None,
    *,
    port: int,
    rate: float | None = None,
    extra: Sequence[tuple[str, int]] = (),
) -> argparse.Namespace:
    """Parse ``--port [--rate] --duration [extra int options] --tag``, take the process name ``name``,
    and bound ``args.duration`` to [0, MAX_DURATION_S] (and ``args.rate`` to [0.1, MAX_RATE])."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--port", type=int, default=port)
    if rate is not None:
        parser.add_argument("--rate", type=float, default=rate)
    parser.add_argument("--duration", type=float, default=10.0)
    for option, default in extra:
        parser.add_argument(option, type=int, default=default)
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    set_name(name)
    args.duration = max(0.0, min(args.duration, MAX_DURATION_S))
    if rate is not None:
        args.rate = max(0.1, min(args.rate, MAX_RATE))
    return args


def listener(port: int, backlog: int) -> socket.socket:
    """A socket listening on 127.0.0.1:``port`` (SO_REUSEADDR)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(backlog)
    return server


def paced(start: float, rate: float, duration: float) -> Iterator[int]:
    """Yield 0, 1, 2, ... on schedule, ``rate`` times a second from ``start`` (sleeping in between),
    at most ``rate * duration`` times and never at or after ``start + duration``."""
    deadline = start + duration
    for i in range(int(rate * duration)):
        due = start + i / rate
        now = time.monotonic()
        if now >= deadline:
            break
        if due > now:
            time.sleep(due - now)
        yield i


def try_connect(port: int, *, read: bool = False) -> OSError | None:
    """One blocking connect() to 127.0.0.1:``port`` (1 s timeout), then a recv(1) if ``read``; the error
    it ended with, or None."""
    with socket.socket() as s:
        s.settimeout(1.0)
        try:
            s.connect(("127.0.0.1", port))
            if read:
                s.recv(1)
        except OSError as error:
            return error
    return None


def ready(port: int) -> None:
    print("READY " + json.dumps({"pid": os.getpid(), "port": port}), flush=True)


def done(start: float, **counts: int) -> None:
    """The ``DONE`` line: ``counts`` in order, then ``seconds`` since ``start``."""
    print("DONE " + json.dumps({**counts, "seconds": round(time.monotonic() - start, 3)}), flush=True)
