"""abort-client: connect at a steady rate to 127.0.0.1:<port> and wait for the server's RST.

Sends no data (so the server's close counts as TCPAbortOnData, not TCPAbortOnClose). Process name:
``abort-client``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time

NAME = "abort-client"


def set_name(name: str) -> None:
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aborting_client")
    parser.add_argument("--port", type=int, default=9400)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    set_name(NAME)
    duration = max(0.0, min(args.duration, 3600.0))
    rate = max(0.1, min(args.rate, 20000.0))
    print("READY " + json.dumps({"pid": os.getpid(), "port": args.port}), flush=True)
    resets = other = 0
    start = time.monotonic()
    deadline = start + duration
    for i in range(int(rate * duration)):
        due = start + i / rate
        now = time.monotonic()
        if now >= deadline:
            break
        if due > now:
            time.sleep(due - now)
        with socket.socket() as s:
            s.settimeout(1.0)
            try:
                s.connect(("127.0.0.1", args.port))
                s.recv(1)
                other += 1
            except ConnectionResetError:
                resets += 1
            except OSError:
                other += 1
    print("DONE " + json.dumps({"resets": resets, "other": other,
                                "seconds": round(time.monotonic() - start, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
