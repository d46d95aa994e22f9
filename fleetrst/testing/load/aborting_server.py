"""aborting-server: accept every connection and close it at once with SO_LINGER {1, 0}.

The close sends a RST instead of a FIN: on this host EstabResets +1, OutRsts +1 and TCPAbortOnData +1
per connection (and the client's EstabResets +1 when it reads the RST). Process name:
``aborting-server``, listening on ``127.0.0.1:<port>``.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # python -I leaves this directory out
import _common  # type: ignore[import-not-found]  # (mypy checks it as fleetrst.testing.load._common)

NAME = "aborting-server"


def main(argv: list[str] | None = None) -> int:
    args = _common.begin(NAME, "aborting_server", argv, port=9400, extra=[("--max-accepts", 1_000_000)])
    server = _common.listener(args.port, 128)
    server.settimeout(0.2)
    _common.ready(args.port)
    aborted = 0
    start = time.monotonic()
    deadline = start + args.duration
    while aborted < args.max_accepts and time.monotonic() < deadline:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # RST, not FIN
        aborted += 1
    server.close()
    _common.done(start, aborted=aborted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
