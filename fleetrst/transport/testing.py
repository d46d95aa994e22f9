"""A stand-in transport for tests: every command is answered by a function of yours, no host involved.

Like httpx's ``MockTransport``, it is a real implementation of the seam (``Transport`` and ``Session``
of ``base.py``), not a patch of the orchestrator's internals, so everything above the seam runs for
real: the handshake caps, deadlines, retry, streaming and interrupts of the sweep, the probe's parser,
the rates and the verdict. What it stands in for is the network and the host, and nothing else::

    from fleetrst.sweep import SweepOptions, run_sweep
    from fleetrst.transport.base import ExecResult, Unreachable
    from fleetrst.transport.testing import FunctionTransport

    def host(target, command):              # or ``async def``: it may sleep, wait, ...
        if target.name == "db1":
            raise Unreachable.refused(target.connection.address, 22)
        return ExecResult(stdout=probe_output_of_your_own, stderr="", exit_status=0)

    fake = FunctionTransport(host, connect_delay=0.01)
    report = run_sweep(targets, SweepOptions(window_s=1, timeout_s=1), transports=fake)
    assert fake.peak_opening <= 100

``handler(target, command)`` answers each ``Session.run``: it returns an ``ExecResult`` (or an awaitable
of one) or raises a ``TransportError`` (``CommandTimeout``, ``ConnectionLost``, ...), which reaches the
caller as a real transport's would. ``connect(target)``, if given, is called by each ``open`` after
``connect_delay`` (seconds, or a function of the target): it returns None (or an awaitable of None)
to let the host in, or raises to refuse it (``Unreachable.refused(...)``, ``HostKeyError.mismatch(...)``,
``AuthError.failed(...)``, ``Unreachable.closed_in_handshake(...)`` for a handshake sshd dropped).

The contract of the seam is kept here, not left to the handler:

- ``open(target, timeout=...)``: the delay and ``connect`` together must finish within ``timeout``,
  else ``Unreachable.connect_timeout(address, port, timeout)`` (a host that never answered).
- ``run(command, timeout=..., max_output=...)``: the handler must answer within ``timeout``, else
  ``CommandTimeout.after(timeout)``; stdout over ``max_output`` bytes (UTF-8) raises
  ``OutputTooLarge.over(max_output)``; stderr is cut to what real transports keep.

A plain (non-async) handler runs on the event loop and cannot be timed out while it runs: to make a
host slow, write an ``async`` handler that sleeps or waits on an event.

``streamer(target, command)``, if given, answers each ``Session.stream``: it returns what the command
prints, piece by piece (any pieces: lines, whole frames, parts of lines), as an iterable or an async
iterable (an ``async def`` generator may sleep between pieces, and raise ``ConnectionLost`` to drop the
connection). The transport cuts the pieces into lines as a real one does (``max_line`` enforced). When
the caller leaves the stream while the command still runs, the streamer's generator is closed, as a
real transport signals the remote command. Without a streamer, a stream runs the command once through
``handler`` and yields its lines.

What happened is recorded, for assertions (updated on the event loop): ``opens`` (open calls per
host name, retries included), ``opening``/``peak_opening`` (opens in progress now / at most: the
handshakes in flight), ``peak_opening_by_address``, ``open_sessions``/``peak_open_sessions``,
``running``/``peak_running`` (commands in flight), ``commands`` ((host name, command) in the order
they started), ``closed`` (``aclose`` was called; it does not stop later use); for streams,
``streams`` ((host name, command) as they started), ``streaming``/``peak_streaming``,
``streams_stopped`` (per host name: streams left while their command ran) and ``keepalives`` (the
last ``keepalive_s`` asked for, per host name).

One instance serves every connection kind: ``get(kind)`` returns itself, so it can be handed to
``run_sweep(..., transports=...)`` or ``Sweep(options, transports)`` in place of a ``TransportSet``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable

from ..model import Target
from .base import (
    DEFAULT_MAX_LINE,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_STREAM_BUFFER,
    CommandTimeout,
    ExecResult,
    OutputTooLarge,
    TransportError,
    Unreachable,
)
from .common import STDERR_KEEP, LineSplitter, decode_output

Handler = Callable[[Target, str], ExecResult | Awaitable[ExecResult]]
ConnectHook = Callable[[Target], Awaitable[None] | None]
# What a streamed command prints, piece by piece (whole lines, frames, or parts of lines).
Streamer = Callable[[Target, str], AsyncIterable[str] | Iterable[str]]

__all__ = ["ConnectHook", "FunctionSession", "FunctionTransport", "Handler", "Streamer"]


class FunctionSession:
    """A session of a :class:`FunctionTransport`: each ``run`` asks the transport's handler."""

    def __init__(self, owner: FunctionTransport, target: Target) -> None:
        self._owner = owner
        self.target = target
        self.closed = False

    async def run(self, command: str, *, timeout: float, max_output: int = DEFAULT_MAX_OUTPUT) -> ExecResult:
        if self.closed:
            raise TransportError("run() on a session that was closed")
        owner = self._owner
        owner.commands.append((self.target.name, command))
        owner.running += 1
        owner.peak_running = max(owner.peak_running, owner.running)
        try:
            async with asyncio.timeout(timeout) as within:
                answer = owner.handler(self.target, command)
                result = await answer if inspect.isawaitable(answer) else answer
        except TimeoutError:
            if within.expired():
                raise CommandTimeout.after(timeout) from None
            raise
        finally:
            owner.running -= 1
        if not isinstance(result, ExecResult):
            raise TypeError(f"the handler must return an ExecResult, got {type(result).__name__}")
        if len(result.stdout.encode("utf-8", "surrogateescape")) > max_output:
            raise OutputTooLarge.over(max_output)
        stderr = result.stderr.encode("utf-8", "surrogateescape")
        if len(stderr) > STDERR_KEEP:
            result = ExecResult(result.stdout, decode_output(stderr[:STDERR_KEEP]), result.exit_status)
        return result

    @contextlib.asynccontextmanager
    async def stream(
        self,
        command: str,
        *,
        max_line: int = DEFAULT_MAX_LINE,
        max_buffer: int = DEFAULT_STREAM_BUFFER,
        keepalive_s: float | None = None,
    ) -> AsyncIterator[AsyncIterator[list[str]]]:
        if self.closed:
            raise TransportError("stream() on a session that was closed")
        owner = self._owner
        name = self.target.name
        owner.streams.append((name, command))
        if keepalive_s:
            owner.keepalives[name] = keepalive_s
        source = owner.streamer(self.target, command) if owner.streamer else self._run_once(command)
        ended: list[bool] = []
        lines = self._lines(source, max_line, ended)
        owner.streaming += 1
        owner.peak_streaming = max(owner.peak_streaming, owner.streaming)
        try:
            yield lines
        finally:
            owner.streaming -= 1
            await lines.aclose()
            if not ended:  # left while the command ran: a real transport signals it here
                owner.streams_stopped[name] += 1
                close = getattr(source, "aclose", None) or getattr(source, "close", None)
                if close is not None:
                    done = close()
                    if inspect.isawaitable(done):
                        await done

    async def _run_once(self, command: str) -> AsyncGenerator[str, None]:
        yield (await self.run(command, timeout=3600.0)).stdout

    @staticmethod
    async def _lines(
        source: AsyncIterable[str] | Iterable[str], max_line: int, ended: list[bool]
    ) -> AsyncGenerator[list[str], None]:
        splitter = LineSplitter(max_line)
        if isinstance(source, AsyncIterable):
            async for piece in source:
                if lines := splitter.feed(piece.encode("utf-8", "surrogateescape")):
                    yield lines
        else:
            for piece in source:
                if lines := splitter.feed(piece.encode("utf-8", "surrogateescape")):
                    yield lines
        if rest := splitter.rest():
            yield rest
        ended.append(True)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._owner.open_sessions -= 1


class FunctionTransport:
    """A transport that answers from ``handler(target, command)``; a stand-in for tests (see module)."""

    name = "function"

    def __init__(
        self,
        handler: Handler,
        *,
        connect: ConnectHook | None = None,
        connect_delay: float | Callable[[Target], float] = 0.0,
        streamer: Streamer | None = None,
    ) -> None:
        self.handler = handler
        self.streamer = streamer
        self.streams: list[tuple[str, str]] = []
        self.streaming = 0
        self.peak_streaming = 0
        self.streams_stopped: Counter[str] = Counter()
        self.keepalives: dict[str, float] = {}
        self.connect = connect
        self.connect_delay = connect_delay
        self.opens: Counter[str] = Counter()
        self.opening = 0
        self.peak_opening = 0
        self._opening_by_address: Counter[str] = Counter()
        self.peak_opening_by_address: dict[str, int] = {}
        self.open_sessions = 0
        self.peak_open_sessions = 0
        self.running = 0
        self.peak_running = 0
        self.commands: list[tuple[str, str]] = []
        self.closed = False

    def get(self, kind: str) -> FunctionTransport:
        """Itself, for every connection kind: it stands in for a whole ``TransportSet``."""
        return self

    async def open(self, target: Target, *, timeout: float) -> FunctionSession:
        address = target.connection.address
        self.opens[target.name] += 1
        self.opening += 1
        self._opening_by_address[address] += 1
        self.peak_opening = max(self.peak_opening, self.opening)
        self.peak_opening_by_address[address] = max(
            self.peak_opening_by_address.get(address, 0), self._opening_by_address[address]
        )
        try:
            async with asyncio.timeout(timeout) as within:
                delay = self.connect_delay(target) if callable(self.connect_delay) else self.connect_delay
                if delay > 0:
                    await asyncio.sleep(delay)
                if self.connect is not None:
                    let_in = self.connect(target)
                    if inspect.isawaitable(let_in):
                        await let_in
        except TimeoutError:
            if within.expired():
                raise Unreachable.connect_timeout(address, target.connection.port or 22, timeout) from None
            raise
        finally:
            self.opening -= 1
            self._opening_by_address[address] -= 1
        self.open_sessions += 1
        self.peak_open_sessions = max(self.peak_open_sessions, self.open_sessions)
        return FunctionSession(self, target)

    async def aclose(self) -> None:
        self.closed = True
