"""abort-client: connect at a steady rate to 127.0.0.1:<port> and wait for the server's RST.

Sends no data (so the server's close counts as TCPAbortOnData, not TCPAbortOnClose). Process name:
``abort-client``.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # python -I leaves this directory out
import _common  # type: ignore[import-not-found]  # (mypy checks it as fleetrst.testing.load._common)

NAME = "abort-client"


def main(argv: list[str] | None = None) -> int:
    args = _common.begin(NAME, "aborting_client", argv, port=9400, rate=100.0)
    _common.ready(args.port)
    resets = other = 0
    start = time.monotonic()
    for _ in _common.paced(start, args.rate, args.duration):
        if isinstance(_common.try_connect(args.port, read=True), ConnectionResetError):
            resets += 1
        else:  # the recv() returned (or another error)
            other += 1
    _common.done(start, resets=resets, other=other)
    return 0


if __name__ == "__main__":
    sys.exit(main())
