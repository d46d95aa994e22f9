"""Since the last audit: what a host's kernel counted between two audits, as ``nstat`` and ``sar`` do.

A cron audit every 5 minutes with a 10 s window looks at 3 % of the time; the kernel counted every
reset of the other 97 %. Each audit records the host's last sample (its raw counters, boot_id, uptime
and, when known, the identity of the network namespace); the next audit differences its own last
sample against it. Pure: two samples in, counts and averages out.

Guards (sysstat's and nstat's): the same boot_id (a reboot restarts the counters), the same network
namespace (a recreated one is another series), the host's uptime went forward, and no counter went
down. When one fails there is no interval, only the reason: never a negative or invented number. A
counter that went down between audits is taken as a reset, never as a wrap: 64-bit counters do not
wrap in practice, and over minutes a 32-bit one could wrap more than once without our knowing.

Interval thresholds
===================

The averages over an interval are judged in the form of Netdata's 1-minute averages (an average over
a long span, ``$this > limit``), never with its 10 s spike rule: a storm of 41 resets/s for five
minutes is an event however quiet the window that follows it. The critical limits are the window's:
a host resetting at a steady rate is never judged more severely over the interval than in its window.

===================== ========= ========= ==============================================================
metric                warning   critical  why
===================== ========= ========= ==============================================================
``resets_received``   10/s      250/s     Netdata keeps the 1-minute average of ``AttemptFails`` as the
``resets_sent``                           spike rule's baseline and takes 5/s as its floor (what a host
                                          may do all the time); twice that on average, sustained over a
                                          whole interval, is not normal (3,000 resets in 5 minutes).
                                          Critical: the window's, held on average for the whole interval.
``listen_overflows``  1/s       5/s       Netdata's ``tcp_listen.conf``: exactly its 60 s averages,
``listen_drops``                          warn ``> 1``, crit ``> 5`` (the window's limits too).
``req_q_full_drops``
``estab_resets``      5/s       100/s     A quarter of the window's warning: each is a broken
                                          connection, and an average over minutes dilutes a burst.
``aborts_on_memory``  1/s       5/s       As in the window: any is unusual.
``memory_pressures``
===================== ========= ========= ==============================================================

An interval shorter than a minute is judged by the window's limits instead: it is about as long as a
window, and as noisy (Netdata's averages are a minute long).

Overrides, lowest first: these defaults; the host's ``fleetrst_thresholds`` (a host where resets are
expected, e.g. a load balancer, is expected to reset between audits too); its
``fleetrst_interval_thresholds`` (the same form, for the averages only); ``--interval-warn`` /
``--interval-crit``. The window's ``--warn``/``--crit`` do not apply to the averages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from ..model import (
    HostResult,
    Level,
    NameIndex,
    Packed,
    Rates,
    RecordedSnapshot,
    SinceLast,
    SinceLastMissing,
    Snapshot,
    Status,
    Threshold,
    Trip,
    picker,
)
from .counters import GAUGES, NAMED_RATES
from .rules import DEFAULT_THRESHOLDS, effective_thresholds, judge, parse_threshold_overrides

# Netdata's 1-minute form: the window's limits, with lower warnings for the reset rates (an average
# over minutes is not a spike); the critical limits stay the window's.
INTERVAL_WARNINGS: dict[str, float] = {"resets_received": 10.0, "resets_sent": 10.0, "estab_resets": 5.0}
DEFAULT_INTERVAL_THRESHOLDS: dict[str, Threshold] = {
    metric: replace(threshold, warning=INTERVAL_WARNINGS.get(metric, threshold.warning))
    for metric, threshold in DEFAULT_THRESHOLDS.items()
}
INTERVAL_VARIABLE = "fleetrst_interval_thresholds"
MIN_AVERAGE_S = 60.0  # shorter intervals are judged by the window's limits
WINDOW_VARIABLE = "fleetrst_thresholds"
_SHOWN_DECREASES = 3
# what two samples counted: the counts that moved, the counters that went down, the named rates both have
_Counted = tuple[dict[str, int], list[str], list[tuple[str, str]]]


def span(seconds: float) -> str:
    """An interval as a person says it: ``45s``, ``5 min``, ``2.5 h``, ``3 d``."""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h".replace(".0 h", " h")
    return f"{seconds / 86400:.1f} d".replace(".0 d", " d")


def counts_since(previous: RecordedSnapshot | None, current: Snapshot) -> SinceLast | SinceLastMissing:
    """The counts and average rates from ``previous`` (an earlier audit's last sample) to ``current``
    (this audit's), or why there are none."""
    if previous is None:
        return SinceLastMissing(
            "first_audit",
            "no earlier audit of this host is recorded (its first audit, or the last one was pruned)",
        )
    before = previous.snapshot
    when = f"the audit of {previous.started_at}"
    if before.boot_id != current.boot_id:
        return SinceLastMissing(
            "rebooted", f"rebooted since {when} (boot_id changed): its counters restarted from zero"
        )
    if before.netns != current.netns:
        return SinceLastMissing(
            "namespace_changed",
            f"the network namespace is not the one of {when} ({before.netns or 'the host'} → "
            f"{current.netns or 'the host'}): its counters are another series",
        )
    interval = current.uptime_s - before.uptime_s
    if not interval > 0:
        return SinceLastMissing(
            "uptime",
            f"the host's uptime went from {before.uptime_s:g}s at {when} to {current.uptime_s:g}s: "
            "no interval to count over",
        )
    plan = _plan_of(before, current)
    if plan is not None:
        counts, decreased, named = plan.counts(before, current)
    else:
        counts, decreased, named = _counts_by_name(before, current)
    if decreased:
        more = " ..." if len(decreased) > _SHOWN_DECREASES else ""
        shown = ", ".join(decreased[:_SHOWN_DECREASES]) + more
        return SinceLastMissing(
            "counters_reset",
            f"{len(decreased)} counter{'s' if len(decreased) != 1 else ''} went backwards since {when} "
            f"({shown}): the counters were reset or the network namespace was recreated",
        )
    for friendly, kernel in named:
        counts[friendly] = counts.get(kernel, 0)
    return SinceLast(
        from_at=previous.started_at,
        from_sweep=previous.sweep_id,
        interval_s=interval,
        counts=counts,
        rates={name: count / interval for name, count in counts.items()},
    )


def _counts_by_name(
    before: Snapshot, current: Snapshot
) -> tuple[dict[str, int], list[str], list[tuple[str, str]]]:
    """What each counter in both samples counted (those that moved, under the names Rates uses), the
    counters that went down, and the named rates (friendly name, counter) both samples have."""
    counts: dict[str, int] = {}
    decreased: list[str] = []
    present: set[str] = set()  # counters in both samples, under the names Rates uses
    for old, new, ext in ((before.tcp, current.tcp, False), (before.tcpext, current.tcpext, True)):
        for name, value in new.items():
            was = old.get(name)
            if was is None or (not ext and name in GAUGES):
                continue
            key = f"TcpExt.{name}" if ext and name in current.tcp else name
            present.add(key)
            if value > was:
                counts[key] = value - was
            elif value < was:
                decreased.append(f"{key} {was} → {value}")
    return counts, decreased, [(f, kernel) for f, kernel in NAMED_RATES.items() if kernel in present]


class _SincePlan:
    """Where two packed samples' layouts (an earlier audit's stored one, and this one's) hold each
    counter both have: worked out once per pair of layouts, so that a host's counts since its last
    audit are taken by position, not name by name. The same counts, in the same order, as by name."""

    def __init__(
        self, old_tcp: NameIndex, old_ext: NameIndex, new_tcp: NameIndex, new_ext: NameIndex
    ) -> None:
        at = {(False, name): position for position, name in enumerate(old_tcp.names)}
        at.update({(True, name): len(old_tcp.names) + p for p, name in enumerate(old_ext.names)})
        old: list[int] = []
        new: list[int] = []
        keys: list[str] = []
        for ext, names, base in ((False, new_tcp.names, 0), (True, new_ext.names, len(new_tcp.names))):
            for position, name in enumerate(names):
                was = at.get((ext, name))
                if was is None or (not ext and name in GAUGES):
                    continue
                keys.append(f"TcpExt.{name}" if ext and name in new_tcp.index else name)
                old.append(was)
                new.append(base + position)
        self.old = picker(old)
        self.new = picker(new)
        self.keys = tuple(keys)
        present = set(keys)
        self.named = [(f, kernel) for f, kernel in NAMED_RATES.items() if kernel in present]

    def counts(self, before: Snapshot, current: Snapshot) -> _Counted:
        was = self.old([*_values(before.tcp), *_values(before.tcpext)])
        now = self.new([*_values(current.tcp), *_values(current.tcpext)])
        counts = {key: n - o for key, o, n in zip(self.keys, was, now, strict=True) if n != o}
        decreased: list[str] = []
        if counts and min(counts.values()) < 0:
            decreased = [f"{k} {o} → {n}" for k, o, n in zip(self.keys, was, now, strict=True) if n < o]
        return counts, decreased, self.named


def _values(counters: Mapping[str, int]) -> Sequence[int]:
    assert isinstance(counters, Packed)  # as _plan_of found them
    return counters.packed_values


_PLANS: dict[tuple[NameIndex, NameIndex, NameIndex, NameIndex], _SincePlan] = {}


def _plan_of(before: Snapshot, current: Snapshot) -> _SincePlan | None:
    """The plan for two samples that are both packed, else None (they are counted by name)."""
    tcp, ext, now_tcp, now_ext = before.tcp, before.tcpext, current.tcp, current.tcpext
    if not (
        isinstance(tcp, Packed)
        and isinstance(ext, Packed)
        and isinstance(now_tcp, Packed)
        and isinstance(now_ext, Packed)
    ):
        return None
    key = (tcp.names, ext.names, now_tcp.names, now_ext.names)
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) >= 64:  # a fleet has a handful of kernels
            _PLANS.clear()
        plan = _PLANS[key] = _SincePlan(*key)
    return plan


def judge_interval(
    since: SinceLast,
    thresholds: Mapping[str, Threshold],
    window: Status,
    window_rates: Mapping[str, float] | None = None,
) -> SinceLast:
    """``since`` with what its averages tripped, and, for a host whose window did not trip, the note
    that says so: it reset between audits, where no investigation could see it (``quiet now`` when the
    window's rate is under half the average: the storm is over)."""
    verdict = judge(Rates(interval_s=since.interval_s, per_second=since.rates), thresholds)
    note = None
    if verdict.tripped and window == "ok":
        worst = verdict.tripped[0]
        count = since.counts.get(worst.metric, 0)
        now = (window_rates or {}).get(worst.metric, 0.0)
        state = "quiet now" if now <= worst.value / 2 else f"{now:.1f}/s now, under its window's limit"
        note = (
            f"{state}; {worst.metric} {worst.value:.1f}/s on average over the last "
            f"{span(since.interval_s)} ({count} in all, limit {worst.limit:g}/s): the cause could not "
            "be seen live; run `fleetrst watch` on it, or audit more often"
        )
    return SinceLast(
        from_at=since.from_at,
        from_sweep=since.from_sweep,
        interval_s=since.interval_s,
        counts=since.counts,
        rates=since.rates,
        tripped=verdict.tripped,
        note=note,
    )


def interval_thresholds(
    host_vars: Mapping[str, object], warn: Mapping[str, float], crit: Mapping[str, float], source: str
) -> dict[str, Threshold]:
    """A host's interval thresholds: the defaults, its ``fleetrst_thresholds`` (levels it leaves out
    keep the interval's defaults), its ``fleetrst_interval_thresholds``, then the command line's.
    Raises ``ThresholdError`` naming ``source`` (the host)."""
    limits = dict(DEFAULT_INTERVAL_THRESHOLDS)
    for variable in (WINDOW_VARIABLE, INTERVAL_VARIABLE):
        raw = host_vars.get(variable)
        if raw is not None:
            limits.update(parse_threshold_overrides(raw, source, defaults=limits, variable=variable))
    return effective_thresholds(limits, warn, crit, defaults=DEFAULT_INTERVAL_THRESHOLDS)


def since_last_of(
    host: HostResult,
    previous: RecordedSnapshot | None,
    thresholds: Mapping[str, Threshold],
    window_thresholds: Mapping[str, Threshold] | None = None,
) -> SinceLast | SinceLastMissing:
    """A host's ``since_last`` in this audit: counted from its previous recorded sample and judged,
    by ``thresholds``, or by the window's when the interval is shorter than :data:`MIN_AVERAGE_S`."""
    if host.snapshot is None:
        return SinceLastMissing("not_measured", f"not measured in this audit ({host.status})")
    since = counts_since(previous, host.snapshot)
    if isinstance(since, SinceLastMissing):
        return since
    if since.interval_s < MIN_AVERAGE_S:
        thresholds = DEFAULT_THRESHOLDS if window_thresholds is None else window_thresholds
    return judge_interval(since, thresholds, host.status, host.rates.per_second if host.rates else None)


def interval_level(tripped: tuple[Trip, ...]) -> Level:
    if not tripped:
        return "ok"
    return "critical" if any(t.level == "critical" for t in tripped) else "warning"
