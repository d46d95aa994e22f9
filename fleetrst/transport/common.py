"""What every transport shares: which known_hosts files apply, how socket errors read, output caps."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import Protocol

from ..model import ConnectionSettings
from .base import OutputTooLarge, TransportError, Unreachable

GLOBAL_KNOWN_HOSTS = Path("/etc/ssh/ssh_known_hosts")


def user_known_hosts() -> Path:
    return Path("~/.ssh/known_hosts").expanduser()


def known_hosts_files(settings: ConnectionSettings) -> tuple[str, ...]:
    """The known_hosts files for a host: the system and user files plus the host's own extra files.

    OpenSSH's ``UserKnownHostsFile`` replaces the user file; we add it instead, so that a key the user
    already trusts in ``~/.ssh/known_hosts`` is never refused because an inventory named another file.
    Files that do not exist are left out (an empty set of keys trusts nothing).
    """
    paths: list[str] = []
    for path in (GLOBAL_KNOWN_HOSTS, user_known_hosts(), *map(Path, settings.known_hosts)):
        expanded = str(path.expanduser())
        if expanded not in paths and os.path.isfile(expanded):
            paths.append(expanded)
    return tuple(paths)


def read_text_files(paths: Iterable[str]) -> str:
    """Concatenate files as text; unreadable files are a configuration error naming the file."""
    chunks: list[str] = []
    for path in paths:
        try:
            chunks.append(Path(path).read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            raise TransportError(f"cannot read known_hosts file {path}: {exc.strerror}") from exc
    return "\n".join(chunks)


def classify_os_error(exc: OSError, address: str, port: int) -> TransportError:
    """Map a socket-level failure onto ``unreachable`` with a message that says which."""
    if isinstance(exc, socket.gaierror):
        return Unreachable.unresolved(address, exc.strerror)
    code = exc.errno
    if code == errno.ECONNREFUSED:
        return Unreachable.refused(address, port)
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
        return Unreachable.no_route(address, port)
    if code == errno.ETIMEDOUT:
        return Unreachable.timed_out(address, port)
    if code in (errno.ECONNRESET, errno.EPIPE):
        return Unreachable.reset(address, port)
    return Unreachable.cannot_connect(address, port, exc.strerror or exc)


def decode_output(data: bytes) -> str:
    """Host output as text: invalid UTF-8 is replaced, never an exception."""
    return data.decode("utf-8", errors="replace")


READ_CHUNK = 64 * 1024
STDERR_KEEP = 64 * 1024  # stderr beyond this is read and dropped


class ByteStream(Protocol):
    def read(self, n: int = ..., /) -> Awaitable[bytes]: ...


async def read_capped(stream: ByteStream, limit: int, *, fail: bool) -> bytes:
    """Read a stream to its end, keeping at most ``limit`` bytes; memory stays bounded either way.

    With ``fail`` the first byte over the limit raises OutputTooLarge (the caller then closes the
    channel); otherwise the rest is read and dropped, so that a chatty stderr cannot stall stdout.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(READ_CHUNK):
        if size + len(chunk) > limit:
            if fail:
                raise OutputTooLarge.over(limit)
            chunk = chunk[: max(0, limit - size)]
        size += len(chunk)
        if chunk:
            chunks.append(chunk)
    return b"".join(chunks)


class LineSplitter:
    """Bytes in as they arrive, complete lines out (decoded, without the newline): what every
    transport's ``stream`` yields. A line longer than ``max_line`` bytes raises OutputTooLarge, so an
    endless line cannot grow memory; ``rest()`` gives a last line that had no newline."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._tail = b""

    def feed(self, data: bytes) -> list[str]:
        if self._tail:
            data = self._tail + data
        end = data.rfind(b"\n")
        if end < 0:
            self._tail = data
            if len(data) > self.max_line:
                raise OutputTooLarge.line_over(self.max_line)
            return []
        self._tail = data[end + 1 :]
        lines = decode_output(data[:end]).split("\n")
        if len(self._tail) > self.max_line or (
            end > self.max_line and max(map(len, data[:end].split(b"\n"))) > self.max_line
        ):
            raise OutputTooLarge.line_over(self.max_line)
        return lines

    def rest(self) -> list[str]:
        tail, self._tail = self._tail, b""
        return [decode_output(tail)] if tail else []
