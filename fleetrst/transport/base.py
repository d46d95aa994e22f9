"""The one seam between fleetrst and the network.

A transport opens a session to a target; a session runs a command with a deadline and an output cap
(or streams a long-running command's output line by line, for ``fleetrst watch``), and closes. That
is all the probe, the watch and the investigation need, so they are written once, above this seam,
for every transport (asyncssh, paramiko, local). Failures come out as a small vocabulary of
exceptions, each mapping onto a host status and an error kind that users can grep for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from ..model import ErrorKind, Target
from ..units import human_bytes, seconds

DEFAULT_MAX_OUTPUT = 1 << 20  # 1 MiB: a probe prints about 10 KiB
DEFAULT_MAX_LINE = 64 * 1024  # a streamed line: the longest the kernel prints is ~4 KiB (TcpExt's names)
DEFAULT_STREAM_BUFFER = 256 * 1024  # a stream's output received and not yet read (the SSH window)


@dataclass(frozen=True)
class ExecResult:
    stdout: str
    stderr: str
    exit_status: int | None


class TransportError(Exception):
    """A failure to reach or talk to a host. ``kind`` is the error kind reported for the host.

    The user-facing messages that more than one transport can meet are spelled once, here, by the
    classmethods of each class (``Unreachable.refused(address, port)``, ``AuthError.failed(user)``,
    ...): a transport picks the constructor and never formats the same failure its own way. The README's
    fault table quotes these texts, and ``tests/transport/test_errors.py`` pins them.
    """

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

    @classmethod
    def refused(cls, address: str, port: int) -> Unreachable:
        return cls(f"connection refused by {address}:{port}", "refused")

    @classmethod
    def connect_timeout(cls, address: str, port: int, timeout_s: float) -> Unreachable:
        """Nothing answered at all (no TCP connection) within the connect timeout."""
        return cls(
            f"connect timed out after {seconds(timeout_s)}: no answer from {address}:{port}", "timeout"
        )

    @classmethod
    def timed_out(cls, address: str, port: int) -> Unreachable:
        """The kernel gave up on the connection (ETIMEDOUT), before our own deadline."""
        return cls(f"connection to {address}:{port} timed out", "timeout")

    @classmethod
    def no_route(cls, address: str, port: int) -> Unreachable:
        return cls(f"no route to {address}:{port}", "no_route")

    @classmethod
    def unresolved(cls, address: str, reason: str | None) -> Unreachable:
        return cls(f"could not resolve host name {address!r}: {reason}", "dns")

    @classmethod
    def reset(cls, address: str, port: int) -> Unreachable:
        return cls(f"connection to {address}:{port} was reset", "refused", retriable=True)

    @classmethod
    def cannot_connect(cls, address: str, port: int, reason: object) -> Unreachable:
        return cls(f"cannot connect to {address}:{port}: {reason}", "refused")

    @classmethod
    def closed_in_handshake(cls, reason: object) -> Unreachable:
        """The server dropped the connection before login (sshd's MaxStartups does so at random)."""
        return cls(f"connection closed during the handshake: {reason}", "refused", retriable=True)


class HostKeyError(TransportError):
    kind = "host_key"

    @classmethod
    def mismatch(cls, host: str) -> HostKeyError:
        return cls(f"host key mismatch: {host} presented a key other than the one in known_hosts")

    @classmethod
    def unknown(cls, host: str) -> HostKeyError:
        return cls(
            f"host key unknown: {host} is not in known_hosts "
            "(StrictHostKeyChecking=yes; use accept-new to trust it on first use)"
        )

    @classmethod
    def not_verified(cls, host: str) -> HostKeyError:
        """Checked by ~/.ssh/config's files too, so unknown and changed cannot be told apart."""
        return cls(
            f"host key not verified: {host} is unknown or its key changed (checked "
            "against known_hosts and any UserKnownHostsFile in ~/.ssh/config)"
        )


class AuthError(TransportError):
    kind = "auth"

    @classmethod
    def failed(cls, user: str) -> AuthError:
        return cls(f"authentication failed for user {user}")

    @classmethod
    def unreadable_key(cls, paths: str, reason: object) -> AuthError:
        return cls(f"cannot load private key {paths}: {reason}")


class CommandTimeout(TransportError):
    kind = "timeout"

    @classmethod
    def after(cls, timeout_s: float) -> CommandTimeout:
        """The command ran past its deadline."""
        return cls(f"timed out after {seconds(timeout_s)} waiting for the command")

    @classmethod
    def login_timeout(cls, timeout_s: float) -> CommandTimeout:
        """The host answered, then stalled before login finished: not unreachable, misbehaving (so a
        CommandTimeout, status ``error``, not an ``Unreachable``)."""
        return cls(
            f"SSH login timed out after {seconds(timeout_s)}: connected, but the handshake or "
            "authentication did not finish"
        )


class CommandFailed(TransportError):
    kind = "command"


class ConnectionLost(TransportError):
    kind = "lost"

    @classmethod
    def during_command(cls, reason: object) -> ConnectionLost:
        return cls(f"the connection was lost while the command ran: {reason}")

    @classmethod
    def no_exit_status(cls) -> ConnectionLost:
        return cls("the connection was lost while the command ran (no exit status)")


class OutputTooLarge(TransportError):
    kind = "output_cap"

    @classmethod
    def over(cls, limit: int) -> OutputTooLarge:
        return cls(f"output over {human_bytes(limit)}")

    @classmethod
    def line_over(cls, limit: int) -> OutputTooLarge:
        """A streamed line longer than the stream's ``max_line``."""
        return cls(f"a line of output over {human_bytes(limit)}")


class SettingsError(TransportError):
    """A connection setting that cannot be used (a key file that cannot be read, ...)."""

    kind = "config"


class Session(Protocol):
    async def run(self, command: str, *, timeout: float, max_output: int = DEFAULT_MAX_OUTPUT) -> ExecResult:
        """Run ``command`` through the remote POSIX shell; raise CommandTimeout/OutputTooLarge."""
        ...

    def stream(
        self,
        command: str,
        *,
        max_line: int = DEFAULT_MAX_LINE,
        max_buffer: int = DEFAULT_STREAM_BUFFER,
        keepalive_s: float | None = None,
    ) -> AbstractAsyncContextManager[AsyncIterator[list[str]]]:
        """Start ``command`` (through the remote POSIX shell) and read its standard output as it comes.

        ``async with session.stream(cmd) as batches: async for lines in batches: ...`` gives the lines
        as soon as they are complete, decoded (invalid UTF-8 replaced), without their newlines, in
        batches: each a non-empty list of the lines that one read completed (a host's one write, such
        as a watch frame, usually comes as one batch: one wake of the reader, not one per line). The
        iteration ends when the command ends (a last line without a newline comes out too). Standard error is
        read and dropped. Memory is bounded: a line over ``max_line`` bytes raises
        :class:`OutputTooLarge`, and at most ``max_buffer`` bytes are received ahead of the reader (the
        host is then made to wait: SSH flow control, or a full pipe). A connection that drops raises
        :class:`ConnectionLost`. ``keepalive_s``: from now on, send the server a keepalive after that
        long without traffic (asyncssh drops the connection after three unanswered; paramiko only
        sends them; the local transport has no connection to keep).

        Leaving the ``async with`` while the command runs ends it: it is sent SIGTERM where the
        transport can signal (asyncssh; paramiko; local: its process group), and its channel is closed.
        """
        ...

    async def close(self) -> None: ...


async def follow(
    session: Session,
    command: str,
    on_lines: Callable[[list[str]], None],
    *,
    max_line: int = DEFAULT_MAX_LINE,
    keepalive_s: float | None = None,
) -> None:
    """Run ``command`` as :meth:`Session.stream` does, handing each batch of lines to ``on_lines`` as it
    comes; return when the command ends, raise what the stream's iteration (or ``on_lines``) raises.
    Cancelling the caller ends the command as leaving the stream does.

    A session with a ``follow`` method of its own (asyncssh's) calls ``on_lines`` straight from its
    receive callback: no task is woken a batch, which a watch of thousands of hosts, a batch a host a
    round, pays for. The others are read through :meth:`Session.stream`.
    """
    native = getattr(session, "follow", None)
    if native is not None:
        await native(command, on_lines, max_line=max_line, keepalive_s=keepalive_s)
        return
    async with session.stream(command, max_line=max_line, keepalive_s=keepalive_s) as batches:
        async for lines in batches:
            on_lines(lines)


class Transport(Protocol):
    """Created once per sweep: shared state (known_hosts, keys) is loaded once, not per host."""

    name: str

    async def open(self, target: Target, *, timeout: float) -> Session:
        """Connect and authenticate within ``timeout`` seconds or raise a TransportError."""
        ...

    async def aclose(self) -> None: ...


class Transports(Protocol):
    """The transports of one sweep, one per connection kind; the sweep closes them when it ends.

    ``TransportSet`` makes the real ones (asyncssh, paramiko, local) on first use; a test hands the
    sweep its own (``fleetrst.transport.testing.FunctionTransport`` is one for every kind).
    """

    def get(self, kind: str) -> Transport:
        """The transport for ``kind`` (``ansible_connection``); a TransportError if there is none."""
        ...

    async def aclose(self) -> None: ...
