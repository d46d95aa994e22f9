"""closed-port-storm: connect() at a steady rate to a closed port on 127.0.0.1.

Every attempt is refused: on this host AttemptFails +1 (the client side) and OutRsts +1 (the RST the
kernel sends for the closed port), nothing else. With ``--port 0`` the script reserves a free port by
binding a socket to it without listening, so the port is certainly closed for the whole run.
Process name: ``rst-storm``.
"""

from __future__ import annotations

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # python -I leaves this directory out
import _common  # type: ignore[import-not-found]  # (mypy checks it as fleetrst.testing.load._common)

NAME = "rst-storm"


def main(argv: list[str] | None = None) -> int:
    args = _common.begin(NAME, "closed_port_storm", argv, port=0, rate=100.0)
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
    _common.ready(port)
    refused = other = 0
    start = time.monotonic()
    for _ in _common.paced(start, args.rate, args.duration):
        if isinstance(_common.try_connect(port), ConnectionRefusedError):
            refused += 1
        else:  # the connect() succeeded (or failed otherwise)
            other += 1
    if reserved is not None:
        reserved.close()
    _common.done(start, refused=refused, other=other)
    return 0


if __name__ == "__main__":
    sys.exit(main())
