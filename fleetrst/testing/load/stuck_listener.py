"""stuck-listener: listen on 127.0.0.1:<port> with backlog 1 and never accept.

Once its accept queue is full, every further SYN is dropped: ListenOverflows and ListenDrops rise.
Process name: ``stuck-listener``.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # python -I leaves this directory out
import _common  # type: ignore[import-not-found]  # (mypy checks it as fleetrst.testing.load._common)

NAME = "stuck-listener"


def main(argv: list[str] | None = None) -> int:
    args = _common.begin(NAME, "stuck_listener", argv, port=9401)
    server = _common.listener(args.port, 1)  # never accepted
    _common.ready(args.port)
    start = time.monotonic()
    time.sleep(args.duration)
    server.close()
    _common.done(start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
