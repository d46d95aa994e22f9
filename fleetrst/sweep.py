"""The orchestrator: every selected host at once, within one deadline each, results as they finish.

Per host: connect (under a cap on concurrent handshakes), run the probe in ONE remote exec (the remote
side sleeps the window), parse, measure, judge, close. Every failure becomes a HostResult value; no
exception from one host reaches another. The whole sweep ends within window (+ baseline) + timeout
plus a little, whatever the hosts do, as long as ``forks`` is at least the number of hosts.
"""

from __future__ import annotations

import asyncio
import random
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .counters import RebootedError, measure_rates
from .model import ErrorKind, FleetReport, HostResult, Status, Target, Threshold, Verdict
from .probe import ProbeParseError, parse_probe_output, probe_command
from .rules import ThresholdError, effective_thresholds, judge, parse_threshold_overrides
from .transport import TransportSet
from .transport.base import DEFAULT_MAX_OUTPUT, Session, TransportError

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

    @property
    def host_budget_s(self) -> float:
        """A host's whole deadline, from its first packet: the sleeps plus the timeout."""
        return self.window_s + (self.baseline_s or 0.0) + self.timeout_s


def raise_open_file_limit(hosts_in_flight: int) -> None:
    """Raise the soft open-file limit to what the sweep needs (each host holds a socket or two).

    The default soft limit of 1,024 breaks sweeps of ~1,000 hosts; the hard limit is the ceiling.
    """
    wanted = hosts_in_flight * 3 + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


class Sweep:
    def __init__(self, options: SweepOptions, transports: TransportSet) -> None:
        self.options = options
        self.transports = transports
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
        async def one(target: Target) -> HostResult:
            async with self._forks:
                result = await self.probe_host(target)
            if on_result is not None:
                on_result(result)
            return result

        return list(await asyncio.gather(*(one(t) for t in targets)))

    async def probe_host(self, target: Target) -> HostResult:
        """One host, start to finish. Never raises: every outcome is a HostResult."""
        started = time.monotonic()
        deadline = started + self.options.host_budget_s

        def failed(status: Status, kind: ErrorKind, message: str) -> HostResult:
            return HostResult(
                host=target.name,
                address=target.connection.address,
                groups=target.groups,
                status=status,
                error=message,
                error_kind=kind,
                elapsed_s=time.monotonic() - started,
            )

        if target.error:
            return failed("error", "config", target.error)
        try:
            thresholds = self._thresholds_for(target)
        except ThresholdError as exc:
            return failed("error", "config", str(exc))

        try:
            session = await self._connect(target, deadline)
            try:
                result = await session.run(
                    self._command,
                    timeout=max(0.1, deadline - time.monotonic()),
                    max_output=self.options.max_output,
                )
            finally:
                await session.close()
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

        verdict: Verdict = judge(rates, thresholds, baseline)
        return HostResult(
            host=target.name,
            address=target.connection.address,
            groups=target.groups,
            status=verdict.level,
            rates=rates,
            baseline=baseline,
            tripped=verdict.tripped,
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
                budget = min(connect_timeout, deadline - time.monotonic() - self.options.window_s)
                try:
                    return await transport.open(target, timeout=max(0.1, budget))
                except TransportError as exc:
                    # sshd's MaxStartups drops surplus unauthenticated connections at random: one
                    # retry with a short random backoff, if the deadline still allows it.
                    if not exc.retriable or attempt == 2:
                        raise
            await asyncio.sleep(random.uniform(0.1, 0.5))
        raise AssertionError("unreachable")


def run_sweep(
    targets: Sequence[Target],
    options: SweepOptions,
    *,
    pattern: str = "all",
    limit: str | None = None,
    inventories: Sequence[str] = (),
    on_result: ResultCallback | None = None,
) -> FleetReport:
    """Sweep ``targets`` and return the fleet report (the synchronous entry point)."""
    raise_open_file_limit(min(options.forks, len(targets)))
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.monotonic()

    async def main() -> list[HostResult]:
        transports = TransportSet(forks=options.forks)
        try:
            return await Sweep(options, transports).run(targets, on_result)
        finally:
            await transports.aclose()

    results = asyncio.run(main())
    return FleetReport(
        hosts=tuple(results),
        started_at=started_at,
        duration_s=time.monotonic() - started,
        window_s=options.window_s,
        baseline_s=options.baseline_s,
        pattern=pattern,
        limit=limit,
        inventories=tuple(inventories),
    )
