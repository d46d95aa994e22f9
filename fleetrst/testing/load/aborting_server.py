"""aborting-server: accept every connection and close it at once with SO_LINGER {1, 0}.

The close sends a RST instead of a FIN: on this host EstabResets +1, OutRsts +1 and TCPAbortOnData +1
per connection (and the client's EstabResets +1 when it reads the RST). Process name:
``aborting-server``, listening on ``127.0.0.1:<port>``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
import time

NAME = "aborting-server"


def set_name(name: str) -> None:
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aborting_server")
    parser.add_argument("--port", type=int, default=9400)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-accepts", type=int, default=1_000_000)
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    set_name(NAME)
    duration = max(0.0, min(args.duration, 3600.0))
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", args.port))
    server.listen(128)
    server.settimeout(0.2)
    print("READY " + json.dumps({"pid": os.getpid(), "port": args.port}), flush=True)
    aborted = 0
    start = time.monotonic()
    deadline = start + duration
    while aborted < args.max_accepts and time.monotonic() < deadline:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # RST, not FIN
        aborted += 1
    server.close()
    print("DONE " + json.dumps({"aborted": aborted, "seconds": round(time.monotonic() - start, 3)}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
