"""stuck-listener: listen on 127.0.0.1:<port> with backlog 1 and never accept.

Once its accept queue is full, every further SYN is dropped: ListenOverflows and ListenDrops rise.
Process name: ``stuck-listener``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time

NAME = "stuck-listener"


def set_name(name: str) -> None:
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stuck_listener")
    parser.add_argument("--port", type=int, default=9401)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    set_name(NAME)
    duration = max(0.0, min(args.duration, 3600.0))
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", args.port))
    server.listen(1)  # never accepted
    print("READY " + json.dumps({"pid": os.getpid(), "port": args.port}), flush=True)
    start = time.monotonic()
    time.sleep(duration)
    server.close()
    print("DONE " + json.dumps({"seconds": round(time.monotonic() - start, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
