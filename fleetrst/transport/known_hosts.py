"""Trust on first use (StrictHostKeyChecking=accept-new): keys learnt in a sweep, saved once, atomically."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from pathlib import Path

from ..model import ConnectionSettings
from .common import user_known_hosts


def known_hosts_name(address: str, port: int | None) -> str:
    """The host field of a known_hosts line, as OpenSSH writes it."""
    return address if port in (None, 22) else f"[{address}]:{port}"


def learn_into(settings: ConnectionSettings) -> Path:
    """Where OpenSSH would record a new key: the first UserKnownHostsFile, else ~/.ssh/known_hosts."""
    return Path(settings.known_hosts[0]).expanduser() if settings.known_hosts else user_known_hosts()


class NewHostKeys:
    """Host keys accepted during a sweep; ``save`` writes each file once, in one atomic replace.

    Saving once at the end keeps hundreds of concurrent first connections from rewriting a file
    hundreds of times; the replace means a reader never sees a half-written file.
    """

    def __init__(self) -> None:
        self._lines: dict[Path, dict[str, str]] = {}
        self._lock = threading.Lock()  # the paramiko transport adds from worker threads

    def add(self, settings: ConnectionSettings, public_key_line: str) -> None:
        name = known_hosts_name(settings.address, settings.port)
        with self._lock:
            self._lines.setdefault(learn_into(settings), {})[name] = f"{name} {public_key_line.strip()}\n"

    def __len__(self) -> int:
        return sum(len(lines) for lines in self._lines.values())

    def save(self) -> None:
        with self._lock:
            pending, self._lines = self._lines, {}
        for path, lines in pending.items():
            _append_atomically(path, "".join(lines.values()))


def _append_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Several processes may learn keys into one file at once (``--procs``, Dask workers on one
    # machine): the read and the replace happen under a lock, or one's keys would overwrite another's.
    lock = os.open(path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _append_locked(path, text)
    finally:
        os.close(lock)


def _append_locked(path: Path, text: str) -> None:
    try:
        existing = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    fd, tmp = tempfile.mkstemp(prefix=".known_hosts.", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(existing + text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
