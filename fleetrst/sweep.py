"""The orchestrator: a shard of hosts on one event loop, each within deadlines of its own.

Per host: wait for its turn (a slot among the hosts in flight, then a handshake slot: at most
``handshakes`` at once, ``handshakes_per_address`` to one address), connect, run the probe in ONE
remote exec (the remote side sleeps the window), parse, measure, judge, close. Every failure becomes a
HostResult value; no exception from one host reaches another.

A host's clock starts when its turn does, never while it waits: it gets its connect timeout for the
handshake, and window (+ baseline) + timeout from that moment for everything. So a host is never
reported as failed because others were slow, and the sweep as a whole ends within the time its
handshake queue takes to drain, plus window (+ baseline) + timeout. ``Sweep.progress`` counts the hosts
in each phase (queued, connecting, sampling, done) as it goes.

Hosts in flight are not Ansible's forks: a host sleeping its window costs one idle channel, so by
default every host is in flight at once, bounded only by the open-file limit and memory
(:func:`hosts_in_flight` says when either binds). ``SweepOptions.forks`` caps them when a user asks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import resource
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, Protocol

from .measure.counters import RebootedError, measure_rates, packed_snapshot
from .measure.namespaces import NamespaceJudge, become_user_for, namespace_judge
from .measure.probe import ProbeParseError, parse_probe_output, probe_command
from .measure.rules import ThresholdError, effective_thresholds, judge, parse_threshold_overrides
from .model import (
    ErrorKind,
    FleetReport,
    HostResult,
    NamespaceResult,
    Rates,
    Status,
    Target,
    Threshold,
    Verdict,
)
from .transport import TransportSet
from .transport.base import DEFAULT_MAX_OUTPUT, CommandTimeout, Session, TransportError, Transports
from .units import seconds

if TYPE_CHECKING:
    from .investigate.result import Finding, Investigation

ResultCallback = Callable[[HostResult], None]


@dataclass(frozen=True)
class SweepOptions:
    window_s: float = 10.0
    timeout_s: float = 10.0
    # Hosts in flight at once. None: every host (bounded by the open-file limit and memory). A host in
    # its window costs one idle channel, not a process: Ansible's forks do not apply.
    forks: int | None = None
    baseline_s: float | None = None
    handshakes: int = 100  # concurrent SSH handshakes on this event loop (CPU-bound on our side)
    handshakes_per_address: int = 8  # below sshd's MaxStartups start (10), so it drops none of ours
    max_output: int = DEFAULT_MAX_OUTPUT
    warn: Mapping[str, float] = field(default_factory=dict)
    crit: Mapping[str, float] = field(default_factory=dict)
    # Per host, baseline rates from earlier audits (``--rules netdata-history``): judged with the
    # spike rule like ``--baseline``, when no baseline reading is taken in this sweep.
    history_baselines: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # Every other network namespace of each host, in the same exec (--containers): "auto" lists them
    # when the probe's user is root or -b can sudo; "never" keeps the probe as it was.
    containers: Literal["auto", "never"] = "never"

    @property
    def host_budget_s(self) -> float:
        """A host's whole deadline, from the start of its turn: the sleeps plus the timeout."""
        return self.window_s + (self.baseline_s or 0.0) + self.timeout_s


Phase = Literal["queued", "connecting", "sampling", "done"]


@dataclass
class Progress:
    """How many hosts are in each phase now: waiting for their turn, in their handshake, connected
    (the window, then any investigation), finished."""

    queued: int = 0
    connecting: int = 0
    sampling: int = 0
    done: int = 0

    def __add__(self, other: Progress) -> Progress:
        return Progress(
            self.queued + other.queued,
            self.connecting + other.connecting,
            self.sampling + other.sampling,
            self.done + other.done,
        )

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.queued, self.connecting, self.sampling, self.done)


ProgressCallback = Callable[[Progress], None]
PROGRESS_EVERY_S = 0.25  # how often run_sweep hands on_progress the counts


class _HostPhase:
    """One host's place in ``Progress``: moving it keeps the counts in step."""

    __slots__ = ("current", "progress")

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.current: Phase = "queued"
        progress.queued += 1

    def to(self, phase: Phase) -> None:
        if phase != self.current:
            setattr(self.progress, self.current, getattr(self.progress, self.current) - 1)
            setattr(self.progress, phase, getattr(self.progress, phase) + 1)
            self.current = phase


FILES_PER_HOST = 3  # a socket, and room for the paramiko pool's or a jump host's extra ones
FILES_SPARE = 256  # the interpreter, libraries, known_hosts, output
# Client memory a host in flight may take, for the bound on hosts in flight: measured at ~41 KB at the
# peak on the stand-in (its connection and channel, ~36 KB, asyncssh's own, and its packed result,
# ~2-3 KB; ~50 KB in one process while -o json is rendered; docs/SCALING.md), taken at three to four
# times that (a real host's first sample also waits in its buffer through the window), and the sweep
# keeps to half of the memory available.
MEMORY_PER_HOST = 160 * 1024


def fit_open_file_limit(hosts_in_flight: int) -> int:
    """Raise the soft open-file limit to what ``hosts_in_flight`` need; return how many fit.

    The default soft limit (1,024) breaks sweeps of ~1,000 hosts. The hard limit is the ceiling: when
    it is too low, fewer hosts are kept in flight (the sweep then takes longer, and says why).
    """
    wanted = hosts_in_flight * FILES_PER_HOST + FILES_SPARE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return hosts_in_flight
    new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return max(1, min(hosts_in_flight, (new - FILES_SPARE) // FILES_PER_HOST))


def memory_available() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes (None where there is no such file)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def hosts_in_flight(options: SweepOptions, n_hosts: int, *, processes: int = 1) -> tuple[int, list[str]]:
    """How many of ``n_hosts`` this process keeps in flight at once, and why fewer than asked (lines
    for stderr): ``forks`` if given, else every host, within the open-file limit and memory (this
    process's share of it, when ``processes`` sweep on this machine at once)."""
    wanted = n_hosts if options.forks is None else min(options.forks, n_hosts)
    wanted = max(1, wanted)
    notes: list[str] = []
    fits = fit_open_file_limit(wanted)
    if fits < wanted:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        notes.append(
            f"the open-file limit (ulimit -n, hard {hard}) allows {fits} hosts in flight, "
            f"not {wanted}: the sweep will take longer"
        )
    available = memory_available()
    if options.forks is None and available is not None:
        by_memory = max(1, available // 2 // max(1, processes) // MEMORY_PER_HOST)
        if by_memory < fits:
            notes.append(
                f"memory ({available >> 20} MiB available) allows {by_memory} hosts in flight, "
                f"not {fits}: the sweep will take longer"
            )
            fits = by_memory
    return fits, notes


class Investigator(Protocol):
    """What the sweep asks of an investigation (fleetrst.investigate implements it)."""

    def wants(self, target: Target, verdict: Verdict) -> bool:
        """Whether to investigate this host (e.g. only hosts that tripped)."""
        ...

    async def investigate(
        self, session: Session, target: Target, rates: Rates, verdict: Verdict
    ) -> Investigation:
        """Run the runbook over ``session`` within its own deadline; never raise for a host's fault."""
        ...

    def fleet_findings(self, results: Sequence[HostResult]) -> list[Finding]:
        """What the hosts' investigations show together (e.g. many hosts reset by one peer)."""
        ...


class Sweep:
    """One sweep on one event loop, over the transports it is given (it does not close them)."""

    def __init__(
        self, options: SweepOptions, transports: Transports, investigator: Investigator | None = None
    ) -> None:
        self.options = options
        self.transports = transports
        self.investigator = investigator
        self.interrupted_by: str | None = None
        self.progress = Progress()
        self._tasks: list[asyncio.Future[HostResult | None]] = []
        self._forks = asyncio.Semaphore(options.forks) if options.forks is not None else None
        self._handshakes = asyncio.Semaphore(max(1, options.handshakes))
        self._per_address: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(max(1, options.handshakes_per_address))
        )
        # Run as given by the login shell, which must be POSIX (sh, bash, dash, zsh, ksh), as Ansible
        # assumes too: wrapping in "sh -c" for csh/fish would cost every host an extra exec.
        self._command = probe_command(options.window_s, options.baseline_s)
        self._container_commands: dict[str | None, str] = {}
        self._thresholds = MappingProxyType(effective_thresholds(None, options.warn, options.crit))

    async def run(
        self, targets: Sequence[Target], on_result: ResultCallback | None = None
    ) -> list[HostResult]:
        """Every target at once (at most ``forks`` in flight); results in target order, one per target."""
        results = await self._run(targets, on_result, keep=True)
        return [result for _, result in results]

    async def run_streaming(
        self, targets: Sequence[Target], on_result: ResultCallback
    ) -> list[tuple[int, HostResult]]:
        """As :meth:`run`, each result handed to ``on_result`` as its host finishes and then let go (a
        worker process sends it on: holding it too would keep every host twice); returned, with their
        positions, only the results that never reached ``on_result`` (hosts interrupted, a bug)."""
        return await self._run(targets, on_result, keep=False)

    async def _run(
        self, targets: Sequence[Target], on_result: ResultCallback | None, *, keep: bool
    ) -> list[tuple[int, HostResult]]:
        async def one(target: Target, phase: _HostPhase) -> HostResult | None:
            try:
                if self._forks is None:
                    result = await self.probe_host(target, phase)
                else:
                    async with self._forks:
                        result = await self.probe_host(target, phase)
            finally:
                phase.to("done")
            if on_result is not None:
                on_result(result)
                if not keep:
                    return None
            return result

        phases = [_HostPhase(self.progress) for _ in targets]  # all queued before the first turn
        self._tasks = [asyncio.ensure_future(one(t, p)) for t, p in zip(targets, phases, strict=True)]
        outcomes = await asyncio.gather(*self._tasks, return_exceptions=True)
        results: list[tuple[int, HostResult]] = []
        for index, (target, outcome) in enumerate(zip(targets, outcomes, strict=True)):
            if outcome is None:
                continue  # handed over already
            if isinstance(outcome, HostResult):
                results.append((index, outcome))
            elif isinstance(outcome, asyncio.CancelledError):
                why = f"interrupted by {self.interrupted_by}" if self.interrupted_by else "cancelled"
                results.append(
                    (index, _failed(target, "interrupted", "interrupted", f"{why} before this host finished"))
                )
            else:  # a bug of ours: still only this host's result
                message = f"internal error: {type(outcome).__name__}: {outcome}"
                results.append((index, _failed(target, "error", "internal", message)))
        return results

    def interrupt(self, reason: str) -> None:
        """Stop now: hosts still running are cancelled (their connections closed) and reported as
        ``interrupted``; hosts that finished keep their results."""
        self.interrupted_by = reason
        current = asyncio.current_task()  # called from on_result: that host has finished, keep it
        for task in self._tasks:
            if task is not current:
                task.cancel()

    async def probe_host(self, target: Target, phase: _HostPhase | None = None) -> HostResult:
        """One host, start to finish. Never raises: every outcome is a HostResult.

        The host is ``queued`` until its turn (a handshake slot); its clock starts then. ``elapsed_s``
        is the time from its turn to the close, the queue left out.
        """
        phase = phase if phase is not None else _HostPhase(self.progress)
        turn: float | None = None

        def failed(status: Status, kind: ErrorKind, message: str) -> HostResult:
            elapsed = time.monotonic() - turn if turn is not None else 0.0
            return _failed(target, status, kind, message, elapsed)

        if target.error:
            return failed("error", "config", target.error)
        try:
            thresholds = self._thresholds_for(target)
            namespace_judge = self._namespace_judge(target)
        except ThresholdError as exc:
            return failed("error", "config", str(exc))

        try:
            session, turn, this_turn = await self._connect(target, phase)
        except _FailedTurn as failure:
            turn, error = failure.turn, failure.error
            return failed("unreachable" if error.unreachable else "error", error.kind, error.message)
        phase.to("sampling")
        deadline = this_turn + self.options.host_budget_s
        try:
            try:
                result = await session.run(
                    self._command_for(target),
                    timeout=max(0.1, deadline - time.monotonic()),
                    max_output=self.options.max_output,
                )
            except CommandTimeout:
                o = self.options
                sleeps = f"window {seconds(o.window_s)}" + (
                    f" + baseline {seconds(o.baseline_s)}" if o.baseline_s else ""
                )
                return failed(
                    "error",
                    "timeout",
                    f"timed out after {seconds(o.host_budget_s)} ({sleeps} + timeout {seconds(o.timeout_s)}) "
                    "waiting for the probe",
                )
            except TransportError as exc:
                return failed("unreachable" if exc.unreachable else "error", exc.kind, exc.message)

            try:
                snapshots = parse_probe_output(result.stdout)
                if len(snapshots) < self.expected_samples:
                    raise ProbeParseError(f"expected {self.expected_samples} samples, got {len(snapshots)}")
                rates = measure_rates(snapshots[-2], snapshots[-1])
                baseline = measure_rates(snapshots[0], snapshots[1]) if self.options.baseline_s else None
            except RebootedError as exc:
                return failed("error", "rebooted", str(exc))
            except ProbeParseError as exc:
                message = str(exc)
                if result.exit_status:
                    first = result.stderr.strip().splitlines()[:1]
                    message += f" (exit status {result.exit_status}{': ' + first[0] if first else ''})"
                return failed("error", "parse", message)

            if baseline is None and target.name in self.options.history_baselines:
                baseline = Rates(interval_s=0.0, per_second=self.options.history_baselines[target.name])
            verdict: Verdict = judge(rates, thresholds, baseline)
            namespaces, unseen = _namespaces(
                namespace_judge, result.stdout, snapshots[-1].boot_id, self.options.baseline_s is not None
            )
            investigation = None
            if self.investigator is not None and self.investigator.wants(target, verdict):
                # Over the connection we already have, after the samples, within its own deadline.
                investigation = await self.investigator.investigate(session, target, rates, verdict)
        finally:
            await session.close()
        return HostResult(
            host=target.name,
            address=target.connection.address,
            groups=target.groups,
            status=verdict.level,
            rates=rates,
            baseline=baseline,
            tripped=verdict.tripped,
            investigation=investigation,
            elapsed_s=time.monotonic() - turn,
            # An audit records it (the next one counts from here): packed, as kept until the report.
            snapshot=packed_snapshot(snapshots[-1]),
            namespaces=namespaces,
            namespaces_unseen=unseen,
        )

    @property
    def expected_samples(self) -> int:
        return 3 if self.options.baseline_s else 2

    def _command_for(self, target: Target) -> str:
        """The probe for this host: the same for every host but for its namespace part's sudo user."""
        if self.options.containers == "never":
            return self._command
        become = become_user_for(target.connection)
        if become not in self._container_commands:
            self._container_commands[become] = probe_command(
                self.options.window_s, self.options.baseline_s, containers=True, become_user=become
            )
        return self._container_commands[become]

    def _namespace_judge(self, target: Target) -> NamespaceJudge | None:
        if self.options.containers == "never":
            return None
        return namespace_judge(
            target.fleetrst_vars, f"host {target.name}", self.options.warn, self.options.crit
        )

    def _thresholds_for(self, target: Target) -> Mapping[str, Threshold]:
        raw = target.fleetrst_vars.get("fleetrst_thresholds")
        if raw is None:  # most hosts: one mapping for them all, not one each while they are in flight
            return self._thresholds
        overrides = parse_threshold_overrides(raw, f"host {target.name}")
        return effective_thresholds(overrides, self.options.warn, self.options.crit)

    async def _connect(self, target: Target, phase: _HostPhase) -> tuple[Session, float, float]:
        """Wait for a turn, then open a session within the connect timeout; retry once a handshake the
        server dropped (a new turn). Returns the session, when the first turn and this one began.

        The per-address slot is taken before the global one, so that hosts waiting behind a busy
        address never hold a global slot idle.
        """
        transport = self.transports.get(target.connection.connection)
        connect_timeout = min(
            target.connection.connect_timeout or self.options.timeout_s, self.options.timeout_s
        )
        first: float | None = None
        for attempt in (1, 2):
            async with self._per_address[target.connection.address], self._handshakes:
                turn = time.monotonic()
                first = turn if first is None else first
                phase.to("connecting")
                try:
                    return await transport.open(target, timeout=connect_timeout), first, turn
                except TransportError as exc:
                    # sshd's MaxStartups drops surplus unauthenticated connections at random: one
                    # retry, after a short random backoff, in a new turn.
                    if not exc.retriable or attempt == 2:
                        raise _FailedTurn(exc, first) from exc
            phase.to("queued")
            await asyncio.sleep(random.uniform(0.1, 0.5))
        raise AssertionError("unreachable")


class _FailedTurn(Exception):
    """A host's handshake failed for good; ``turn`` is when its first turn began."""

    def __init__(self, error: TransportError, turn: float) -> None:
        super().__init__(error.message)
        self.error = error
        self.turn = turn


def _failed(
    target: Target, status: Status, kind: ErrorKind, message: str, elapsed: float = 0.0
) -> HostResult:
    return HostResult(
        host=target.name,
        address=target.connection.address,
        groups=target.groups,
        status=status,
        error=message,
        error_kind=kind,
        elapsed_s=elapsed,
    )


def _namespaces(
    judge_ns: NamespaceJudge | None, stdout: str, boot_id: str, baseline: bool
) -> tuple[tuple[NamespaceResult, ...] | None, tuple[str, ...]]:
    """The host's other namespaces, judged; never the host's failure (a bug here is a line in
    ``namespaces_unseen``)."""
    if judge_ns is None:
        return None, ()
    try:
        return judge_ns.results(stdout, boot_id, baseline=baseline)
    except Exception as exc:
        return (), (f"internal error reading the namespaces: {type(exc).__name__}: {exc}",)


def failed_result(target: Target, status: Status, kind: ErrorKind, message: str) -> HostResult:
    """A host's result when it was not measured (for the sweeps that shard this one)."""
    return _failed(target, status, kind, message)


def run_sweep(
    targets: Sequence[Target],
    options: SweepOptions,
    *,
    pattern: str = "all",
    limit: str | None = None,
    inventories: Sequence[str] = (),
    on_result: ResultCallback | None = None,
    on_progress: ProgressCallback | None = None,
    on_note: Callable[[str], None] | None = None,
    investigator: Investigator | None = None,
    transports: Transports | None = None,
) -> FleetReport:
    """Sweep ``targets`` on one event loop and return the fleet report (the synchronous entry point).

    SIGINT and SIGTERM stop the sweep promptly: the report then holds the hosts that finished, the
    rest marked ``interrupted``, and ``interrupted_by`` names the signal.

    ``on_progress`` is handed the phase counts every quarter of a second, and once at the end;
    ``on_note`` a line to say when a limit binds (by default it goes to stderr).
    ``transports``: None for the real ones (a ``TransportSet``); a test passes its own, e.g. a
    ``fleetrst.transport.testing.FunctionTransport``. Either way they serve this one sweep, on its
    event loop, and are closed when it ends.
    """
    in_flight, notes = hosts_in_flight(options, len(targets))
    for note in notes:
        if on_note is not None:
            on_note(note)
        else:
            sys.stderr.write(f"fleetrst: {note}\n")
    if in_flight < len(targets):
        options = dataclasses.replace(options, forks=in_flight)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    interrupted_by: str | None = None

    async def main() -> list[HostResult]:
        nonlocal interrupted_by
        sweep_transports = transports if transports is not None else TransportSet(forks=in_flight)
        sweep = Sweep(options, sweep_transports, investigator)
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, sweep.interrupt, sig.name)
                installed.append(sig)
            except (ValueError, RuntimeError, NotImplementedError):
                pass  # not the main thread: the caller handles signals
        ticker = asyncio.ensure_future(_tick(sweep.progress, on_progress)) if on_progress else None
        try:
            results = await sweep.run(targets, on_result)
        finally:
            if ticker is not None:
                ticker.cancel()
            for sig in installed:
                loop.remove_signal_handler(sig)
            await sweep_transports.aclose()
        if on_progress is not None:
            on_progress(dataclasses.replace(sweep.progress))
        interrupted_by = sweep.interrupted_by
        return results

    results = asyncio.run(main())
    return fleet_report(
        results,
        options,
        started_at=started_at,
        started=started,
        investigator=investigator,
        interrupted_by=interrupted_by,
        pattern=pattern,
        limit=limit,
        inventories=inventories,
    )


def fleet_report(
    results: Sequence[HostResult],
    options: SweepOptions,
    *,
    started_at: str,
    started: float,
    investigator: Investigator | None,
    interrupted_by: str | None,
    pattern: str,
    limit: str | None,
    inventories: Sequence[str],
) -> FleetReport:
    """The hosts' results as one report, with what the investigations show together: the same
    whether the sweep ran on one event loop, on worker processes or on a cluster."""
    findings = investigator.fleet_findings(results) if investigator is not None else []
    return FleetReport(
        hosts=tuple(results),
        started_at=started_at,
        duration_s=time.monotonic() - started,
        window_s=options.window_s,
        baseline_s=options.baseline_s,
        pattern=pattern,
        limit=limit,
        inventories=tuple(inventories),
        findings=tuple(findings),
        interrupted_by=interrupted_by,
    )


async def _tick(progress: Progress, on_progress: ProgressCallback) -> None:
    while True:
        on_progress(dataclasses.replace(progress))
        await asyncio.sleep(PROGRESS_EVERY_S)


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
