"""``--dask ADDRESS``: a sweep's shards as tasks on the workers of a Dask cluster.

Each shard is a coroutine (:func:`sweep_dask_shard`) that Dask runs on its worker's own event loop: an
asyncio :class:`~fleetrst.sweep.Sweep` of the shard's hosts, over the worker's own transports, keys,
agent and known_hosts. This process submits the shards (``pure=False``: every sweep is new); each
shard sends its hosts' results as they finish (with its phase counts, on a Dask ``Queue``, four times a
second) and returns the rest; they are merged into one list in target order; the report, its outputs,
history and exit code are made here, as for one process.

- **Sites.** A host's ``fleetrst_site`` inventory variable pins its shard to workers that declare that
  site as a resource (``dask worker --resources "dc1=1"``): a segment reachable only from inside its
  datacenter is swept from there. A site no worker declares is an ``error`` for its hosts, said at
  once. Hosts without a site go to any worker. Each site's hosts are cut into as many shards as it
  has workers.
- **Secrets.** Passwords and become passwords cross the cluster only when its comms are encrypted
  (a ``tls://`` scheduler); otherwise they are removed from the targets before anything is sent, and
  the hosts that had one log in with the workers' own keys and agent.
- **A worker lost mid-sweep** costs at most its shard's time: Dask runs the shard again on another
  worker that can take it, once (a third run reports its hosts as ``worker_lost`` without trying);
  when no worker for its site is left for a host budget (window + timeout), its hosts are
  ``error`` / ``worker_lost``. Its hosts that had finished keep the results they sent; nothing from
  the other shards is lost.
- **Ctrl-C** sets a Dask ``Event`` that every shard watches: each interrupts its sweep as one process
  would (finished hosts kept, the rest ``interrupted``) and returns. Shards not back within
  ``STOP_GRACE_S`` are cancelled, their hosts ``interrupted``.
- **Progress and results**: shards put their phase counts on a Dask ``Queue`` every quarter of a
  second, with the results of the hosts that finished since (pickled: the queue carries msgpack).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pickle
import secrets
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from .. import __version__
from ..errors import EXIT_UNKNOWN, CommandError, UsageError
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
from ..units import seconds
from .plan import plan_shards, shard_options, without_secrets

SITE_VAR = "fleetrst_site"
POLL_S = 0.1
WORKERS_EVERY_S = 0.5  # how often the scheduler is asked which workers are left
STOP_GRACE_S = 5.0
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class DaskShard:
    """What one task carries to its worker."""

    sweep_id: str
    number: int
    site: str | None
    targets: tuple[Target, ...]
    options: SweepOptions
    investigator: Investigator | None
    version: str = __version__
    # makes the shard's transports on the worker (tests); None: the real ones, the worker's own
    transports: Callable[[], Transports] | None = None


@dataclass(frozen=True)
class DaskShardOutcome:
    """What a shard's task returns: the results it did not send on the queue as its hosts finished,
    each with its host's place in the shard."""

    number: int
    results: tuple[tuple[int, HostResult], ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Names:
    """The Dask Events, Variable and Queue of one sweep, named after it."""

    sweep_id: str

    @property
    def stop(self) -> str:
        return f"fleetrst-{self.sweep_id}-stop"

    @property
    def reason(self) -> str:
        return f"fleetrst-{self.sweep_id}-stop-reason"

    @property
    def progress(self) -> str:
        return f"fleetrst-{self.sweep_id}-progress"

    def ran(self, number: int) -> str:
        return f"fleetrst-{self.sweep_id}-shard{number}-ran"

    def retried(self, number: int) -> str:
        return f"fleetrst-{self.sweep_id}-shard{number}-retried"


# --- on a worker ------------------------------------------------------------------------------------


async def sweep_dask_shard(shard: DaskShard) -> DaskShardOutcome:
    """Sweep one shard on this Dask worker's event loop (a task: Dask calls it, never a user)."""
    dd = _import_distributed()
    Event, Queue, Variable = dd.Event, dd.Queue, dd.Variable

    def all_failed(kind: Any, status: Any, message: str) -> DaskShardOutcome:
        return DaskShardOutcome(
            shard.number,
            tuple((local, failed_result(t, status, kind, message)) for local, t in enumerate(shard.targets)),
        )

    if shard.version != __version__:
        return all_failed(
            "config", "error", f"this host's Dask worker runs fleetrst {__version__}, not {shard.version}"
        )
    names = _Names(shard.sweep_id)
    stop = Event(names.stop)
    if await stop.is_set():
        reason = await Variable(names.reason).get(timeout=5)
        return all_failed("interrupted", "interrupted", f"interrupted by {reason} before this host finished")
    ran, retried = Event(names.ran(shard.number)), Event(names.retried(shard.number))
    if await ran.is_set():  # Dask runs a task again when the worker running it is lost
        if await retried.is_set():
            return all_failed(
                "worker_lost",
                "error",
                "the Dask workers sweeping this host's shard were lost twice: not tried a third time",
            )
        await retried.set()
    else:
        await ran.set()

    options = shard.options
    in_flight, notes = hosts_in_flight(options, len(shard.targets))
    if in_flight < len(shard.targets):
        options = dataclasses.replace(options, forks=in_flight)
    transports = shard.transports() if shard.transports is not None else TransportSet(forks=in_flight)
    sweep = Sweep(options, transports, shard.investigator)
    queue = Queue(names.progress)
    finished = asyncio.Event()
    places: dict[str, list[int]] = {}  # a host's place in the shard (a name may come twice)
    for local, target in enumerate(shard.targets):
        places.setdefault(target.name, []).append(local)
    outbox: list[tuple[int, HostResult]] = []  # finished, not sent yet

    def on_result(result: HostResult) -> None:
        outbox.append((places[result.host].pop(0), result))

    async def watch() -> None:
        """Stop when told; send the phase counts when they change, with the results that came since
        (pickled: the queue carries msgpack). Never cancelled mid-call."""
        last: tuple[int, int, int, int] | None = None
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), PROGRESS_EVERY_S)
            if sweep.interrupted_by is None and await stop.is_set():
                sweep.interrupt(str(await Variable(names.reason).get(timeout=5)))
            counts = sweep.progress.as_tuple()
            if counts != last or outbox:
                last = counts
                batch = outbox[:]
                outbox.clear()
                await queue.put([shard.number, *counts, pickle.dumps(batch) if batch else b""])

    watcher = asyncio.ensure_future(watch())
    try:
        # Results go out as hosts finish, so a worker lost later loses only its unfinished hosts.
        unsent = await sweep.run_streaming(shard.targets, on_result)
    finally:
        finished.set()
        await transports.aclose()
        with contextlib.suppress(Exception):
            await watcher
    return DaskShardOutcome(shard.number, (*outbox, *unsent), tuple(notes))


# --- here: the controller -----------------------------------------------------------------------------


@dataclass
class _Shard:
    number: int
    site: str | None
    indices: list[int]
    progress: Progress = field(default_factory=Progress)
    closed: bool = False
    orphan_since: float | None = None


@dataclass
class DaskOutcome:
    results: list[HostResult]
    interrupted_by: str | None
    notes: list[str]


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise UsageError("--dask needs Dask's distributed package: pip install 'fleetrst[dask]'") from None
    return distributed


def site_of(target: Target) -> tuple[str | None, str | None]:
    """The host's ``fleetrst_site`` (None: any worker), or an error message when it is not a name."""
    raw = target.fleetrst_vars.get(SITE_VAR)
    if raw is None:
        return None, None
    if not isinstance(raw, str) or not raw.strip() or raw != raw.strip():
        return None, f"host {target.name}: {SITE_VAR} must be a site name (a string), got {raw!r}"
    return raw, None


def eligible_workers(workers: Mapping[str, Mapping[str, Any]], site: str | None) -> list[str]:
    """The workers that may run a shard of ``site``: those declaring it as a resource (any, for None)."""
    if site is None:
        return sorted(workers)
    return sorted(a for a, w in workers.items() if (w.get("resources") or {}).get(site, 0) >= 1)


def sweep_on_dask(
    address: str,
    targets: Sequence[Target],
    options: SweepOptions,
    *,
    investigator: Investigator | None = None,
    on_result: ResultCallback | None = None,
    on_progress: ProgressCallback | None = None,
    on_note: Callable[[str], None] | None = None,
    transports: Callable[[], Transports] | None = None,
) -> DaskOutcome:
    """Sweep ``targets`` on the Dask cluster at ``address``; results in target order, one per target.

    ``transports`` makes each shard's transports on its worker (it must pickle); None for the real ones.
    """
    distributed = _import_distributed()
    try:
        client = distributed.Client(address, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise CommandError(
            f"--dask {address}: cannot reach the Dask scheduler: {exc}", EXIT_UNKNOWN
        ) from None
    try:
        controller = _Controller(distributed, client, address, targets, options, investigator, transports)
        return controller.run(on_result, on_progress, on_note)
    finally:
        with contextlib.suppress(Exception):
            client.close()


class _Controller:
    def __init__(
        self,
        distributed: Any,
        client: Any,
        address: str,
        targets: Sequence[Target],
        options: SweepOptions,
        investigator: Investigator | None,
        transports: Callable[[], Transports] | None = None,
    ) -> None:
        self.transports = transports
        self.distributed = distributed
        self.client = client
        self.address = address
        self.targets = list(targets)
        self.options = options
        self.investigator = investigator
        self.names = _Names(secrets.token_hex(6))
        self.results: list[HostResult | None] = [None] * len(targets)
        self.shards: list[_Shard] = []
        self.notes: list[str] = []
        self.on_result: ResultCallback | None = None
        self.on_note: Callable[[str], None] | None = None
        self.stop_reason: str | None = None
        self.stop_at = 0.0
        self.stop_again = False

    # --- results ---

    def settle(self, index: int, result: HostResult) -> None:
        if self.results[index] is None:
            self.results[index] = result
            if self.on_result is not None:
                self.on_result(result)

    def settle_shard(self, shard: _Shard, status: Any, kind: Any, message: str) -> None:
        shard.closed = True
        shard.progress = Progress(done=len(shard.indices))
        for index in shard.indices:
            self.settle(index, failed_result(self.targets[index], status, kind, message))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            if self.on_note is not None:
                self.on_note(text)

    # --- the sweep ---

    def run(
        self,
        on_result: ResultCallback | None,
        on_progress: ProgressCallback | None,
        on_note: Callable[[str], None] | None,
    ) -> DaskOutcome:
        self.on_result, self.on_note = on_result, on_note
        info = self.client.scheduler_info()
        scheduler = str(info.get("address") or self.address)
        if not scheduler.startswith("tls://"):
            self.targets, stripped = without_secrets(self.targets)
            if stripped:
                shown = ", ".join(stripped[:5]) + (
                    f" and {len(stripped) - 5} more" if len(stripped) > 5 else ""
                )
                self.note(
                    f"--dask {self.address}: the cluster's comms are not encrypted, so no password crosses "
                    f"it: {shown} log in and become with the workers' own keys, agent and sudo rules "
                    "(a tls:// scheduler would carry their passwords)"
                )
        futures = self.submit(info.get("workers") or {})
        stop_handlers = self.install_signals()
        try:
            self.gather(futures, on_progress)
        finally:
            self.restore_signals(stop_handlers)
            self.cleanup()
        if on_progress is not None:
            on_progress(self.total())
        done = [r for r in self.results if r is not None]
        assert len(done) == len(self.targets)
        return DaskOutcome(done, self.stop_reason, self.notes)

    def submit(self, workers: Mapping[str, Mapping[str, Any]]) -> dict[Any, _Shard]:
        by_site: dict[str | None, list[int]] = {}
        for index, target in enumerate(self.targets):
            site, problem = site_of(target)
            if problem is not None:
                self.settle(index, failed_result(target, "error", "config", problem))
            else:
                by_site.setdefault(site, []).append(index)
        for site, indices in by_site.items():
            eligible = eligible_workers(workers, site)
            if not eligible:
                message = (
                    f"the Dask scheduler at {self.address} has no workers"
                    if site is None or not workers
                    else f"no Dask worker declares the resource {site!r} (this host's {SITE_VAR}); "
                    f"start one with: dask worker {self.address} --resources '{site}=1'"
                )
                for index in indices:
                    self.settle(index, failed_result(self.targets[index], "error", "config", message))
                continue
            group = [self.targets[i] for i in indices]
            for part in plan_shards(group, len(eligible)):
                self.shards.append(_Shard(len(self.shards), site, [indices[i] for i in part]))
        options_of = shard_options(self.options, [len(s.indices) for s in self.shards])
        futures: dict[Any, _Shard] = {}
        for shard, options in zip(self.shards, options_of, strict=True):
            shard.progress = Progress(queued=len(shard.indices))
            job = DaskShard(
                self.names.sweep_id,
                shard.number,
                shard.site,
                tuple(self.targets[i] for i in shard.indices),
                options,
                self.investigator,
                transports=self.transports,
            )
            future = self.client.submit(
                sweep_dask_shard,
                job,
                pure=False,
                key=f"fleetrst-{self.names.sweep_id}-shard{shard.number}",
                resources={shard.site: 1} if shard.site is not None else None,
            )
            futures[future] = shard
        return futures

    def gather(self, futures: dict[Any, _Shard], on_progress: ProgressCallback | None) -> None:
        queue = self.distributed.Queue(self.names.progress, client=self.client)
        self._gather(futures, on_progress, queue)
        self.receive(queue)  # what a shard sent just before its end, after the last look

    def _gather(self, futures: dict[Any, _Shard], on_progress: ProgressCallback | None, queue: Any) -> None:
        distributed = self.distributed
        completed = distributed.as_completed(list(futures), loop=self.client.loop)
        stop_sent = False
        next_workers = next_tick = 0.0
        while not completed.is_empty():
            # What the shards sent first: a shard's queue items are there before its task's end is.
            self.receive(queue)
            if completed.has_ready():
                for future in completed.next_batch(block=False):
                    self.collect(future, futures[future])
            now = time.monotonic()
            if self.stop_reason is not None:
                if not stop_sent:
                    distributed.Variable(self.names.reason, client=self.client).set(self.stop_reason)
                    distributed.Event(self.names.stop, client=self.client).set()
                    stop_sent = True
                if self.stop_again or now - self.stop_at > STOP_GRACE_S:
                    self.abandon(
                        futures,
                        "interrupted",
                        "interrupted",
                        f"interrupted by {self.stop_reason} before this host finished",
                    )
                    return
            if now >= next_workers:
                self.check_workers(futures)
                next_workers = now + WORKERS_EVERY_S
            if now >= next_tick:
                if on_progress is not None:
                    on_progress(self.total())
                next_tick = now + PROGRESS_EVERY_S
            if all(shard.closed for shard in futures.values()):
                return
            time.sleep(POLL_S)

    def receive(self, queue: Any) -> None:
        """The shards' phase counts, and the results of the hosts that finished since they last sent."""
        for item in queue.get(batch=True):
            number, *counts, sent = item
            shard = self.shards[number]
            if sent:
                for local, result in pickle.loads(sent):
                    self.settle(shard.indices[local], result)
            if not shard.closed:
                shard.progress = Progress(*counts)

    def collect(self, future: Any, shard: _Shard) -> None:
        if shard.closed:
            return
        if future.status == "finished":
            outcome: DaskShardOutcome = future.result()
            for local, result in outcome.results:
                self.settle(shard.indices[local], result)
            for text in outcome.notes:
                self.note(text)
            shard.closed = True
            shard.progress = Progress(done=len(shard.indices))
            return
        if future.status == "cancelled":
            self.settle_shard(shard, "interrupted", "interrupted", "its Dask task was cancelled")
            return
        error = future.exception()
        if isinstance(error, self.distributed.KilledWorker):
            self.settle_shard(
                shard,
                "error",
                "worker_lost",
                "the Dask workers sweeping this host's shard were lost, again and again (Dask gave up)",
            )
        else:
            self.settle_shard(
                shard,
                "error",
                "internal",
                f"the shard failed on its Dask worker: {type(error).__name__}: {error}",
            )

    def check_workers(self, futures: dict[Any, _Shard]) -> None:
        """Shards whose site has no worker left: lost, once no worker came back within a host budget."""
        workers = self.client.scheduler_info().get("workers") or {}
        now = time.monotonic()
        for future, shard in futures.items():
            if shard.closed:
                continue
            if eligible_workers(workers, shard.site):
                shard.orphan_since = None
                continue
            if shard.orphan_since is None:
                shard.orphan_since = now
            elif now - shard.orphan_since > self.options.host_budget_s:
                self.client.cancel(future)
                where = f" for site {shard.site!r}" if shard.site else ""
                self.settle_shard(
                    shard,
                    "error",
                    "worker_lost",
                    f"the Dask worker sweeping this host's shard was lost, and no other worker{where} "
                    f"was there to retry it within {seconds(self.options.host_budget_s)}",
                )

    def abandon(self, futures: dict[Any, _Shard], status: Any, kind: Any, message: str) -> None:
        for future, shard in futures.items():
            if not shard.closed:
                if future.status == "finished":
                    self.collect(future, shard)
                    continue
                self.client.cancel(future)
                self.settle_shard(shard, status, kind, message)

    def total(self) -> Progress:
        total = Progress(done=len(self.targets) - sum(len(shard.indices) for shard in self.shards))
        for shard in self.shards:  # the hosts in no shard (a bad site, none for it) are done already
            total = total + shard.progress
        return total

    # --- signals, and what the sweep leaves on the scheduler ---

    def install_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self.stop_reason is None:
                self.stop_reason = signal.Signals(signum).name
                self.stop_at = time.monotonic()
            else:
                self.stop_again = True

        with contextlib.suppress(ValueError):  # not the main thread: the caller handles signals
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, on_signal)
        return previous

    def restore_signals(self, previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def cleanup(self) -> None:
        distributed, client = self.distributed, self.client
        with contextlib.suppress(Exception):
            for shard in self.shards:
                distributed.Event(self.names.ran(shard.number), client=client).clear()
                distributed.Event(self.names.retried(shard.number), client=client).clear()
            distributed.Event(self.names.stop, client=client).clear()
            distributed.Variable(self.names.reason, client=client).delete()
            distributed.Queue(self.names.progress, client=client).close()
