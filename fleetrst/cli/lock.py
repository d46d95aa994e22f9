"""The run lock: two audits of the same history never overlap.

An advisory ``flock`` on a small file: the kernel drops it when the holder exits, however it exits
(``kill -9`` too), so a crashed run never leaves a stale lock behind. The holder writes its pid, start
time and pattern into the file so that the run that waits or gives up can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from ..errors import CommandError

EXIT_LOCKED = 3  # UNKNOWN, as Nagios has it: this run measured nothing


class LockHeld(CommandError):
    exit_code = EXIT_LOCKED


class RunLock:
    """``with RunLock(path, wait_s=0, what="sweep 'all'"):`` — raises :class:`LockHeld` (exit 3) when
    another run holds it for longer than ``wait_s``."""

    def __init__(self, path: Path, wait_s: float = 0.0, what: str = "") -> None:
        self.path = path
        self.wait_s = wait_s
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        if not self.path.parent.is_dir():
            self.path.parent.mkdir(parents=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.wait_s
        delay = 0.05
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    waited = f"waited {self.wait_s:g}s" if self.wait_s else "did not wait (--lock-wait 0)"
                    raise LockHeld(
                        f"another fleetrst run holds {self.path} ({holder}); {waited}: not sweeping. "
                        "Use --lock-wait DURATION to wait for it"
                    ) from None
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 1.0)
        os.ftruncate(fd, 0)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        os.pwrite(
            fd, f"pid {os.getpid()}, started {started}{', ' + self.what if self.what else ''}\n".encode(), 0
        )
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 300, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown"
