"""The one seam between fleetrst and the network.

A transport opens a session to a target; a session runs a command with a deadline and an output cap,
and closes. That is all the probe and the investigation need, so they are written once, above this
seam, for every transport (asyncssh, paramiko, local). Failures come out as a small vocabulary of
exceptions, each mapping onto a host status and an error kind that users can grep for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..model import ErrorKind, Target

DEFAULT_MAX_OUTPUT = 1 << 20  # 1 MiB: a probe prints about 10 KiB


@dataclass(frozen=True)
class ExecResult:
    stdout: str
    stderr: str
    exit_status: int | None


class TransportError(Exception):
    """A failure to reach or talk to a host. ``kind`` is the error kind reported for the host."""

    kind: ErrorKind = "internal"
    unreachable: bool = False  # True: the host's status is "unreachable", else "error"
    retriable: bool = False  # True: dropped during the handshake; one more try may succeed

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unreachable(TransportError):
    unreachable = True

    def __init__(self, message: str, kind: ErrorKind = "refused", *, retriable: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.retriable = retriable


class HostKeyError(TransportError):
    kind = "host_key"


class AuthError(TransportError):
    kind = "auth"


class CommandTimeout(TransportError):
    kind = "timeout"


class CommandFailed(TransportError):
    kind = "command"


class ConnectionLost(TransportError):
    kind = "lost"


class OutputTooLarge(TransportError):
    kind = "output_cap"


class SettingsError(TransportError):
    """A connection setting that cannot be used (a key file that cannot be read, ...)."""

    kind = "config"


class Session(Protocol):
    async def run(self, command: str, *, timeout: float, max_output: int = DEFAULT_MAX_OUTPUT) -> ExecResult:
        """Run ``command`` through the remote POSIX shell; raise CommandTimeout/OutputTooLarge."""
        ...

    async def close(self) -> None: ...


class Transport(Protocol):
    """Created once per sweep: shared state (known_hosts, keys) is loaded once, not per host."""

    name: str

    async def open(self, target: Target, *, timeout: float) -> Session:
        """Connect and authenticate within ``timeout`` seconds or raise a TransportError."""
        ...

    async def aclose(self) -> None: ...
