"""closed-port-storm: connect() at a steady rate to a closed port on 127.0.0.1.

Every attempt is refused: on this host AttemptFails +1 (the client side) and OutRsts +1 (the RST the
kernel sends for the closed port), nothing else. With ``--port 0`` the script reserves a free port by
binding a socket to it without listening, so the port is certainly closed for the whole run.
Process name: ``rst-storm``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time

NAME = "rst-storm"


def set_name(name: str) -> None:
    try:
        with open("/proc/self/comm", "w") as comm:
            comm.write(name)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="closed_port_storm")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--tag", default="")
    args = parser.parse_args(argv)
    set_name(NAME)
    duration = max(0.0, min(args.duration, 3600.0))
    rate = max(0.1, min(args.rate, 20000.0))
    reserved: socket.socket | None = None
    port: int = args.port
    if port == 0:
        reserved = socket.socket()
        reserved.bind(("127.0.0.1", 0))  # bound, never listening: SYNs to it get a RST
        port = reserved.getsockname()[1]
    else:
        with socket.socket() as probe:
            probe.settimeout(1.0)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                print(f"ERROR port {port} is open on 127.0.0.1", file=sys.stderr, flush=True)
                return 2
    print("READY " + json.dumps({"pid": os.getpid(), "port": port}), flush=True)
    total = int(rate * duration)
    refused = other = 0
    start = time.monotonic()
    deadline = start + duration
    for i in range(total):
        due = start + i / rate
        now = time.monotonic()
        if now >= deadline:
            break
        if due > now:
            time.sleep(due - now)
        with socket.socket() as s:
            s.settimeout(1.0)
            try:
                s.connect(("127.0.0.1", port))
                other += 1
            except ConnectionRefusedError:
                refused += 1
            except OSError:
                other += 1
    if reserved is not None:
        reserved.close()
    done = {"refused": refused, "other": other, "seconds": round(time.monotonic() - start, 3)}
    print("DONE " + json.dumps(done), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
