"""``--procs N``: a sweep's shards on worker processes of this machine, one event loop each.

One event loop is one core (asyncssh's handshakes are CPU-bound on our side), so past a few hundred
hosts a sweep is cut into shards (:func:`~fleetrst.scale.plan.plan_shards`), each swept by a forked
worker process with a :class:`~fleetrst.sweep.Sweep` of its own. Results stream back over a pipe as
hosts finish (in batches, every tenth of a second), with the phase counts for the progress line; this
process merges them into one list in target order, and everything after that (the report, its
outputs, history, the exit code) is as for one process.

Signals: Ctrl-C reaches this process (the workers ignore SIGINT) and is passed on to every worker as
a "stop" message: each interrupts its sweep as one process would (finished hosts kept, the rest
``interrupted``) and sends what it has. A worker that has not ended ``STOP_GRACE_S`` after the stop is
killed. A worker whose parent goes away sees its pipe close and stops too, so none outlives the sweep.
A worker that dies mid-sweep costs only its unfinished hosts: ``error`` / ``worker_lost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from ..model import HostResult, Target
from ..sweep import (
    PROGRESS_EVERY_S,
    Investigator,
    Progress,
    ProgressCallback,
    ResultCallback,
    Sweep,
    SweepOptions,
    failed_result,
    hosts_in_flight,
)
from ..transport import TransportSet
from ..transport.base import Transports
from .plan import plan_shards, shard_options

TransportsFactory = Callable[[], Transports]
FLUSH_EVERY_S = 0.1  # how often a worker sends the results it has
STOP_GRACE_S = 5.0  # after a stop, how long a worker may take to end before it is killed
JOIN_S = 5.0


@dataclass
class _Worker:
    number: int
    indices: list[int]
    process: Any  # multiprocessing.Process (the context's class)
    conn: multiprocessing.connection.Connection
    progress: Progress = field(default_factory=Progress)
    ended: bool = False  # it sent "end": every host of its shard has a result
    closed: bool = False  # its pipe closed
    crash: str | None = None


@dataclass
class ProcessesOutcome:
    results: list[HostResult]
    interrupted_by: str | None
    notes: list[str]


def sweep_in_processes(
    targets: Sequence[Target],
    options: SweepOptions,
    procs: int,
    *,
    investigator: Investigator | None = None,
    on_result: ResultCallback | None = None,
    on_progress: ProgressCallback | None = None,
    on_note: Callable[[str], None] | None = None,
    transports: TransportsFactory | None = None,
) -> ProcessesOutcome:
    """Sweep ``targets`` over ``procs`` worker processes; results in target order, one per target.

    ``transports`` makes each worker's transports (in the worker); None for the real ones.
    Called by :func:`~fleetrst.scale.run_fleet_sweep`, which has imported the transports (one import,
    shared by the forked workers) and frozen what exists (``scale.collector``: the workers'
    collections do not copy the pages they share with this process).
    """
    shards = plan_shards(targets, procs)
    options_of = shard_options(options, [len(s) for s in shards])
    # fork: the workers start at once with everything already imported (no 0.5 s of imports each)
    context: Any = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    workers: list[_Worker] = []
    for stream in (sys.stdout, sys.stderr):  # a forked worker flushes what it inherited at its exit
        stream.flush()
    stop = _Stop(workers)
    previous = stop.install()
    try:
        parent_ends: list[multiprocessing.connection.Connection] = []
        for number, (indices, shard_opts) in enumerate(zip(shards, options_of, strict=True)):
            parent_end, child_end = context.Pipe()
            parent_ends.append(parent_end)
            process = context.Process(
                target=_worker_main,
                name=f"fleetrst shard {number + 1}/{len(shards)}",
                args=(
                    child_end,
                    list(parent_ends),
                    [targets[i] for i in indices],
                    shard_opts,
                    investigator,
                    transports,
                    len(shards),
                ),
                daemon=True,
            )
            process.start()
            child_end.close()
            workers.append(_Worker(number, indices, process, parent_end, Progress(queued=len(indices))))
        if stop.reason is not None:  # a signal while they started: tell them all
            stop.send(stop.reason)
        return _collect(targets, workers, stop, on_result, on_progress, on_note)
    finally:
        stop.restore(previous)
        _reap(workers)


class _Stop:
    """SIGINT and SIGTERM in this process: remembered, and passed on to every worker as "stop"."""

    def __init__(self, workers: list[_Worker]) -> None:
        self.workers = workers
        self.reason: str | None = None
        self.at = 0.0
        self.again = False  # a second signal: do not wait for the grace period

    def install(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        with contextlib.suppress(ValueError):  # not the main thread: the caller handles signals
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._on_signal)
        return previous

    def restore(self, previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.reason is None:
            self.reason = signal.Signals(signum).name
            self.at = time.monotonic()
        else:
            self.again = True
        self.send(self.reason)

    def send(self, reason: str) -> None:
        for worker in self.workers:
            if not worker.closed:
                with contextlib.suppress(OSError):
                    worker.conn.send(("stop", reason))


def _collect(
    targets: Sequence[Target],
    workers: list[_Worker],
    stop: _Stop,
    on_result: ResultCallback | None,
    on_progress: ProgressCallback | None,
    on_note: Callable[[str], None] | None,
) -> ProcessesOutcome:
    results: list[HostResult | None] = [None] * len(targets)
    notes: list[str] = []
    by_conn = {worker.conn: worker for worker in workers}
    live = list(workers)
    next_tick = 0.0
    while live:
        ready = multiprocessing.connection.wait([w.conn for w in live], timeout=FLUSH_EVERY_S * 2)
        for conn in ready:
            worker = by_conn[conn]  # type: ignore[index]
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                worker.closed = True
                live.remove(worker)
                continue
            kind = message[0]
            if kind == "batch":
                for local, result in message[1]:
                    index = worker.indices[local]
                    if results[index] is None:
                        results[index] = result
                        if on_result is not None:
                            on_result(result)
                worker.progress = Progress(*message[2])
            elif kind == "notes":
                for note in message[1]:
                    if note not in notes:
                        notes.append(note)
                        if on_note is not None:
                            on_note(note)
            elif kind == "end":
                worker.ended = True
            elif kind == "crash":
                worker.crash = message[1]
        if stop.reason is not None and (stop.again or time.monotonic() - stop.at > STOP_GRACE_S):
            for worker in live:  # stopped, and still not done: no more waiting
                with contextlib.suppress(OSError):
                    worker.process.kill()
                worker.closed = True
            live = []
        if on_progress is not None and time.monotonic() >= next_tick:
            on_progress(_total(workers))
            next_tick = time.monotonic() + PROGRESS_EVERY_S
    for worker in workers:
        worker.process.join(JOIN_S)
    for worker in workers:
        for index in worker.indices:
            if results[index] is None:
                result = _unfinished(targets[index], worker, len(workers), stop.reason)
                results[index] = result
                if on_result is not None:
                    on_result(result)
        worker.progress = Progress(done=len(worker.indices))
    if on_progress is not None:
        on_progress(_total(workers))
    done = [r for r in results if r is not None]
    assert len(done) == len(targets)
    return ProcessesOutcome(done, stop.reason, notes)


def _total(workers: Sequence[_Worker]) -> Progress:
    total = Progress()
    for worker in workers:
        total = total + worker.progress
    return total


def _unfinished(target: Target, worker: _Worker, shards: int, stopped_by: str | None) -> HostResult:
    """A host its worker gave no result for: stopped with the sweep, or lost with its worker."""
    if stopped_by is not None:
        return failed_result(
            target, "interrupted", "interrupted", f"interrupted by {stopped_by} before this host finished"
        )
    where = f"the worker process sweeping this host (shard {worker.number + 1} of {shards})"
    if worker.crash is not None:
        return failed_result(target, "error", "internal", f"internal error in {where}: {worker.crash}")
    code = worker.process.exitcode
    if code is None:
        how = "stopped answering"
    elif code < 0:
        how = f"was killed by {_signal_name(-code)}"
    else:
        how = f"exited with status {code}"
    return failed_result(target, "error", "worker_lost", f"{where} {how} before the host finished")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _reap(workers: Sequence[_Worker]) -> None:
    """No worker outlives the sweep: whatever is still running now is killed and waited for."""
    for worker in workers:
        with contextlib.suppress(OSError):
            worker.conn.close()
        if worker.process.is_alive():
            worker.process.join(0.5)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(JOIN_S)


# --- in the worker process -------------------------------------------------------------------------


def _worker_main(
    conn: multiprocessing.connection.Connection,
    inherited: Sequence[multiprocessing.connection.Connection],
    targets: Sequence[Target],
    options: SweepOptions,
    investigator: Investigator | None,
    transports: TransportsFactory | None,
    processes: int,
) -> None:
    """A worker process: sweep its shard, send results as they come, then "end"."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which says "stop"
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for end in inherited:  # the parent's ends of every pipe (ours too): EOF must mean "parent gone"
        end.close()
    try:
        asyncio.run(_sweep_shard(conn, targets, options, investigator, transports, processes))
    except BrokenPipeError:
        pass  # the parent is gone: nobody to tell
    except BaseException as exc:
        with contextlib.suppress(OSError):
            conn.send(("crash", f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        conn.close()


async def _sweep_shard(
    conn: multiprocessing.connection.Connection,
    targets: Sequence[Target],
    options: SweepOptions,
    investigator: Investigator | None,
    transports: TransportsFactory | None,
    processes: int,
) -> None:
    loop = asyncio.get_running_loop()
    in_flight, notes = hosts_in_flight(options, len(targets), processes=processes)
    if in_flight < len(targets):
        options = dataclasses.replace(options, forks=in_flight)
    if notes:
        conn.send(("notes", notes))
    sweep_transports = transports() if transports is not None else TransportSet(forks=in_flight)
    sweep = Sweep(options, sweep_transports, investigator)

    positions: dict[str, list[int]] = {}
    for index, target in enumerate(targets):
        positions.setdefault(target.name, []).append(index)
    outbox: list[tuple[int, HostResult]] = []

    def on_result(result: HostResult) -> None:
        outbox.append((positions[result.host].pop(0), result))

    def flush() -> None:
        batch = outbox[:]
        outbox.clear()
        conn.send(("batch", batch, sweep.progress.as_tuple()))

    def on_message() -> None:
        try:
            while conn.poll():
                message = conn.recv()
                if message[0] == "stop":
                    sweep.interrupt(message[1])
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())
            sweep.interrupt("the end of the parent process")

    async def flush_every() -> None:
        last: tuple[int, int, int, int] | None = None
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            if outbox or sweep.progress.as_tuple() != last:
                last = sweep.progress.as_tuple()
                try:
                    flush()
                except OSError:  # the parent is gone; on_message stops the sweep
                    return

    loop.add_reader(conn.fileno(), on_message)
    loop.add_signal_handler(signal.SIGTERM, sweep.interrupt, "SIGTERM")
    flusher = asyncio.ensure_future(flush_every())
    try:
        unsent = await sweep.run_streaming(targets, on_result)  # a result sent is let go
    finally:
        flusher.cancel()
        loop.remove_reader(conn.fileno())
        loop.remove_signal_handler(signal.SIGTERM)
        await sweep_transports.aclose()
    outbox.extend(unsent)
    flush()
    conn.send(("end", sweep.interrupted_by))
