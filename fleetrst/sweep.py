"""The orchestrator: every selected host at once, within one deadline each, results as they finish.

Per host: connect (under a cap on concurrent handshakes), run the probe in ONE remote exec (the remote
side sleeps the window), parse, measure, judge, close. Every failure becomes a HostResult value; no
exception from one host reaches another. The whole sweep ends within window (+ baseline) + timeout
plus a little, whatever the hosts do, as long as ``forks`` is at least the number of hosts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import resource
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from .measure.counters import RebootedError, measure_rates
from .measure.probe import ProbeParseError, parse_probe_output, probe_command
from .measure.rules import ThresholdError, effective_thresholds, judge, parse_threshold_overrides
from .model import ErrorKind, FleetReport, HostResult, Rates, Status, Target, Threshold, Verdict
from .transport import TransportSet
from .transport.base import DEFAULT_MAX_OUTPUT, CommandTimeout, Session, TransportError
from .units import seconds

ResultCallback = Callable[[HostResult], None]


@dataclass(frozen=True)
class SweepOptions:
    window_s: float = 10.0
    timeout_s: float = 10.0
    forks: int = 500
    baseline_s: float | None = None
    handshakes: int = 100  # concurrent SSH handshakes across the sweep (CPU-bound on our side)
    handshakes_per_address: int = 8  # below sshd's MaxStartups start (10), so it drops none of ours
    max_output: int = DEFAULT_MAX_OUTPUT
    warn: Mapping[str, float] = field(default_factory=dict)
    crit: Mapping[str, float] = field(default_factory=dict)
    # Per host, baseline rates from earlier audits (``--rules netdata-history``): judged with the
    # spike rule like ``--baseline``, when no baseline reading is taken in this sweep.
    history_baselines: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @property
    def host_budget_s(self) -> float:
        """A host's whole deadline, from its first packet: the sleeps plus the timeout."""
        return self.window_s + (self.baseline_s or 0.0) + self.timeout_s


FILES_PER_HOST = 3  # a socket, and room for the paramiko pool's or a jump host's extra ones
FILES_SPARE = 256  # the interpreter, libraries, known_hosts, output


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


class Investigator(Protocol):
    """What the sweep asks of an investigation (fleetrst.investigate implements it)."""

    def wants(self, target: Target, verdict: Verdict) -> bool:
        """Whether to investigate this host (e.g. only hosts that tripped)."""
        ...

    async def investigate(
        self, session: Session, target: Target, rates: Rates, verdict: Verdict
    ) -> Mapping[str, Any]:
        """Run the runbook over ``session`` within its own deadline; never raise for a host's fault."""
        ...

    def fleet_findings(self, results: Sequence[HostResult]) -> list[Mapping[str, Any]]:
        """What the hosts' investigations show together (e.g. many hosts reset by one peer)."""
        ...


class Sweep:
    def __init__(
        self, options: SweepOptions, transports: TransportSet, investigator: Investigator | None = None
    ) -> None:
        self.options = options
        self.transports = transports
        self.investigator = investigator
        self.interrupted_by: str | None = None
        self._tasks: list[asyncio.Future[HostResult]] = []
        self._forks = asyncio.Semaphore(max(1, options.forks))
        self._handshakes = asyncio.Semaphore(max(1, options.handshakes))
        self._per_address: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(max(1, options.handshakes_per_address))
        )
        # Run as given by the login shell, which must be POSIX (sh, bash, dash, zsh, ksh), as Ansible
        # assumes too: wrapping in "sh -c" for csh/fish would cost every host an extra exec.
        self._command = probe_command(options.window_s, options.baseline_s)

    async def run(
        self, targets: Sequence[Target], on_result: ResultCallback | None = None
    ) -> list[HostResult]:
        """Every target at once (``forks`` in flight); results in target order, one per target."""

        async def one(target: Target) -> HostResult:
            async with self._forks:
                result = await self.probe_host(target)
            if on_result is not None:
                on_result(result)
            return result

        self._tasks = [asyncio.ensure_future(one(t)) for t in targets]
        outcomes = await asyncio.gather(*self._tasks, return_exceptions=True)
        results: list[HostResult] = []
        for target, outcome in zip(targets, outcomes, strict=True):
            if isinstance(outcome, HostResult):
                results.append(outcome)
            elif isinstance(outcome, asyncio.CancelledError):
                why = f"interrupted by {self.interrupted_by}" if self.interrupted_by else "cancelled"
                results.append(
                    _failed(target, "interrupted", "interrupted", f"{why} before this host finished")
                )
            else:  # a bug of ours: still only this host's result
                message = f"internal error: {type(outcome).__name__}: {outcome}"
                results.append(_failed(target, "error", "internal", message))
        return results

    def interrupt(self, reason: str) -> None:
        """Stop now: hosts still running are cancelled (their connections closed) and reported as
        ``interrupted``; hosts that finished keep their results."""
        self.interrupted_by = reason
        for task in self._tasks:
            task.cancel()

    async def probe_host(self, target: Target) -> HostResult:
        """One host, start to finish. Never raises: every outcome is a HostResult."""
        started = time.monotonic()
        deadline = started + self.options.host_budget_s

        def failed(status: Status, kind: ErrorKind, message: str) -> HostResult:
            return _failed(target, status, kind, message, time.monotonic() - started)

        if target.error:
            return failed("error", "config", target.error)
        try:
            thresholds = self._thresholds_for(target)
        except ThresholdError as exc:
            return failed("error", "config", str(exc))

        try:
            session = await self._connect(target, deadline)
        except TransportError as exc:
            return failed("unreachable" if exc.unreachable else "error", exc.kind, exc.message)
        try:
            try:
                result = await session.run(
                    self._command,
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
            elapsed_s=time.monotonic() - started,
        )

    @property
    def expected_samples(self) -> int:
        return 3 if self.options.baseline_s else 2

    def _thresholds_for(self, target: Target) -> dict[str, Threshold]:
        raw = target.fleetrst_vars.get("fleetrst_thresholds")
        overrides = parse_threshold_overrides(raw, f"host {target.name}") if raw is not None else None
        return effective_thresholds(overrides, self.options.warn, self.options.crit)

    async def _connect(self, target: Target, deadline: float) -> Session:
        """Open a session under the handshake caps; retry once a handshake the server dropped."""
        transport = self.transports.get(target.connection.connection)
        connect_timeout = target.connection.connect_timeout or self.options.timeout_s
        for attempt in (1, 2):
            async with self._handshakes, self._per_address[target.connection.address]:
                sleeps = self.options.host_budget_s - self.options.timeout_s  # leave the host its sleeps
                budget = min(connect_timeout, deadline - time.monotonic() - sleeps)
                try:
                    return await transport.open(target, timeout=max(0.1, budget))
                except TransportError as exc:
                    # sshd's MaxStartups drops surplus unauthenticated connections at random: one
                    # retry with a short random backoff, if the deadline still allows it.
                    if not exc.retriable or attempt == 2:
                        raise
            await asyncio.sleep(random.uniform(0.1, 0.5))
        raise AssertionError("unreachable")


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


def run_sweep(
    targets: Sequence[Target],
    options: SweepOptions,
    *,
    pattern: str = "all",
    limit: str | None = None,
    inventories: Sequence[str] = (),
    on_result: ResultCallback | None = None,
    investigator: Investigator | None = None,
) -> FleetReport:
    """Sweep ``targets`` and return the fleet report (the synchronous entry point).

    SIGINT and SIGTERM stop the sweep promptly: the report then holds the hosts that finished, the
    rest marked ``interrupted``, and ``interrupted_by`` names the signal.
    """
    in_flight = min(options.forks, len(targets))
    fits = fit_open_file_limit(in_flight)
    if fits < in_flight:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        sys.stderr.write(
            f"fleetrst: the open-file limit (ulimit -n, hard {hard}) allows {fits} hosts in flight, "
            f"not {in_flight}: the sweep will take longer\n"
        )
        options = dataclasses.replace(options, forks=fits)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    interrupted_by: str | None = None

    async def main() -> list[HostResult]:
        nonlocal interrupted_by
        transports = TransportSet(forks=options.forks)
        sweep = Sweep(options, transports, investigator)
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, sweep.interrupt, sig.name)
                installed.append(sig)
            except (ValueError, RuntimeError, NotImplementedError):
                pass  # not the main thread: the caller handles signals
        try:
            results = await sweep.run(targets, on_result)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await transports.aclose()
        interrupted_by = sweep.interrupted_by
        return results

    results = asyncio.run(main())
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
