"""Trust on first use (StrictHostKeyChecking=accept-new): keys learnt in a sweep, saved once, atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path


def known_hosts_name(address: str, port: int | None) -> str:
    """The host field of a known_hosts line, as OpenSSH writes it."""
    return address if port in (None, 22) else f"[{address}]:{port}"


class NewHostKeys:
    """Host keys accepted during a sweep; ``save`` writes them into ``path`` in one atomic replace.

    Saving once at the end keeps hundreds of concurrent first connections from rewriting the file
    hundreds of times; the replace means a reader never sees a half-written file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lines: dict[str, str] = {}
        self._lock = threading.Lock()  # the paramiko transport adds from worker threads

    def add(self, address: str, port: int | None, public_key_line: str) -> None:
        name = known_hosts_name(address, port)
        with self._lock:
            self._lines[name] = f"{name} {public_key_line.strip()}\n"

    def __len__(self) -> int:
        return len(self._lines)

    def save(self) -> None:
        with self._lock:
            if not self._lines:
                return
            lines, self._lines = list(self._lines.values()), {}
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            existing = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            existing = ""
        if existing and not existing.endswith("\n"):
            existing += "\n"
        fd, tmp = tempfile.mkstemp(prefix=".known_hosts.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(existing + "".join(lines))
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
