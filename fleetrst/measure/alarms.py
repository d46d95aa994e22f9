"""Netdata's reset alarms, evaluated continuously over one host's stream of snapshots. Pure.

``fleetrst watch`` feeds each host's samples (one every ``every_s`` seconds, timed by the host's own
uptime) to a :class:`HostAlarms`; each call returns the alarm events it caused. The rules are Netdata's
(``tcp_resets.conf``, ``tcp_listen.conf``; see ``../shared/FACTS.md``), with fleetrst's thresholds:

- ``resets_received`` (``AttemptFails``) and ``resets_sent`` (``OutRsts``): the 10 s average against
  the baseline, the 1-minute average ending 10 s earlier. Raised to warning above
  ``10 × max(5, baseline)``, held while above ``1 × max(5, baseline)``. Netdata evaluates it only
  once its agent has been up a minute; here, once the host has been watched long enough for a
  baseline (70 s) and has been up more than a minute. The fixed critical threshold (250/s by default)
  applies from the first round; a warning switched off (``null``) switches the spike rule off.
- ``listen_overflows``, ``listen_drops``, ``req_q_full_drops``: the 60 s average (what is available,
  until a minute has been watched): warning above the warning threshold (1), critical above the
  critical one (5), and, once critical, held critical while above the warning one — Netdata's
  ``crit: $this > (($status == $CRITICAL) ? (1) : (5))``.
- Every other metric with a threshold (``estab_resets``, ``aborts_on_memory``, ..., and any the
  inventory or the command line adds): the 10 s average against its levels, as ``sweep`` judges.

With samples every 10 s this reproduces Netdata's figures: the 10 s rate is the last delta and the
baseline the six before it. A reboot (a new boot id) or a clock that does not advance starts the
host's series again; a counter that went down counts as Netdata counts it (a small wrap, else 0).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from ..model import Level, Rates, Snapshot, Threshold
from .counters import GAUGES, NAMED_RATES, MeasureError, measure_rates
from .counters import _delta as counter_delta
from .rules import SPIKE_FLOOR, SPIKE_METRICS

SHORT_S = 10.0  # Netdata's "average -10s"
BASELINE_S = 60.0  # "average -1m at -10s"
AVERAGE_METRICS: frozenset[str] = frozenset({"listen_overflows", "listen_drops", "req_q_full_drops"})
MIN_UPTIME_S = 60.0  # Netdata's guard: $netdata.uptime.uptime > (1 * 60)
RAISE_FACTOR = 10.0  # raise above 10 × max(5, baseline) ...
HOLD_FACTOR = 1.0  # ... and hold while above 1 × max(5, baseline)
_SEVERITY: dict[Level, int] = {"ok": 0, "warning": 1, "critical": 2}

EventKind = Literal["raised", "cleared"]
Rule = Literal["spike", "average", "threshold"]


@dataclass(frozen=True, slots=True)
class AlarmState:
    """One metric's alarm on one host: its level, since when, and the figures it was judged on."""

    metric: str
    level: Level = "ok"
    since: float | None = None  # controller time (Unix seconds) of the last change
    value: float = 0.0
    limit: float | None = None
    baseline: float | None = None
    rule: Rule = "threshold"


@dataclass(frozen=True)
class AlarmEvent:
    """An alarm that changed level: ``raised`` (to warning or critical, or between them) or
    ``cleared`` (back to ok)."""

    event: EventKind
    host: str
    metric: str
    level: Level
    previous: Level
    value: float
    limit: float | None
    baseline: float | None
    rule: str
    at: float  # controller time, Unix seconds
    uptime_s: float  # the host's own clock at the sample


@dataclass
class HostAlarms:
    """The alarms of one host: feed it snapshots in order with :meth:`add`.

    Each sample judges the thresholds' metrics only: their 10 s rates are taken from the two samples
    alone (:func:`window_rate`, as :func:`measure_rates` takes them), and an alarm whose level and
    figures did not change keeps its :class:`AlarmState`. The window's whole :class:`Rates` (every
    counter) are taken when :attr:`rates` is first read, not every round: a watch of thousands of hosts
    reads them only to show or serve them.
    """

    host: str
    thresholds: Mapping[str, Threshold]
    every_s: float = 10.0
    states: dict[str, AlarmState] = field(default_factory=dict)
    _series: deque[Snapshot] = field(default_factory=deque, repr=False)
    _aged: deque[_Aged] = field(default_factory=deque, repr=False)
    _rates: Rates | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._short = max(1, round(SHORT_S / self.every_s))  # rounds in the 10 s average
        self._minute = max(1, round(BASELINE_S / self.every_s))  # rounds in a 1-minute average
        # Two series: the samples whole, as far back as the 10 s average reaches; and, as far back as
        # the baseline reaches, the samples narrowed to the few counters that the minute's averages
        # and the baseline judge (a watch holds a minute of samples for every host, and takes these
        # rates every round).
        self._series = deque(maxlen=self._short + 1)
        self._aged = deque(maxlen=self._short + self._minute + 1)
        self._aged_metrics, self._aged_counters, self._judged = _plan(tuple(self.thresholds.items()))

    @property
    def level(self) -> Level:
        worst: Level = "ok"
        for state in self.states.values():
            if state.level == "critical":
                return "critical"
            if state.level == "warning":
                worst = "warning"
        return worst

    @property
    def raised(self) -> list[AlarmState]:
        """The alarms not ok, worst first."""
        up = [s for s in self.states.values() if s.level != "ok"]
        return sorted(up, key=lambda s: (-_SEVERITY[s.level], s.metric))

    @property
    def window(self) -> tuple[Snapshot, Snapshot] | None:
        """The two samples the latest 10 s rates are taken between; None before there are two."""
        series = self._series
        return (series[0], series[-1]) if len(series) >= 2 else None

    @property
    def rates(self) -> Rates | None:
        """The latest 10 s rates (:func:`measure_rates` of :attr:`window`), taken when first read."""
        if self._rates is None and len(self._series) >= 2:
            self._rates = measure_rates(self._series[0], self._series[-1])
        return self._rates

    def restart(self) -> None:
        """Forget the series (a reboot, a reconnect after a gap): rates start again from the next two
        samples. Alarm states stay as they were until the data says otherwise."""
        self._series.clear()
        self._aged.clear()
        self._rates = None

    def add(self, snapshot: Snapshot, at: float) -> list[AlarmEvent]:
        """One more sample; the events it causes (none until there are two samples)."""
        series, aged = self._series, self._aged
        if series and (snapshot.boot_id != series[-1].boot_id or snapshot.uptime_s <= series[-1].uptime_s):
            self.restart()
        series.append(snapshot)
        aged.append(_age(snapshot, self._aged_counters))
        self._rates = None
        if len(series) < 2:
            return []
        first = series[0]  # as far back as 10 s, or what there is
        interval = snapshot.uptime_s - first.uptime_s
        try:
            if not 0 < interval < math.inf:  # cannot happen after the guard above
                raise MeasureError(
                    f"no positive interval between uptimes {first.uptime_s:g}s and {snapshot.uptime_s:g}s"
                )
            minute = self._aged_rates(aged[-1 - min(self._minute, len(aged) - 1)], aged[-1])
            baseline = self._baseline(aged)
        except MeasureError:  # never let one host stop the loop
            self.restart()
            return []
        events: list[AlarmEvent] = []
        states = self.states
        uptime_s = snapshot.uptime_s
        for metric, threshold, average, spike, at_aged in self._judged:
            old = states.get(metric)
            current: Level = old.level if old is not None else "ok"
            if average:
                value = minute[at_aged]
            else:
                value = window_rate(first, snapshot, metric, interval)
            if value is None:  # the host has no such rate
                continue
            base = baseline[at_aged] if spike and baseline is not None else None
            level, limit, base, rule = self._judge(threshold, current, value, average, spike, base, uptime_s)
            if old is not None and level == current:
                if value == old.value and limit == old.limit and base == old.baseline and rule == old.rule:
                    continue  # as it was: the same state
                states[metric] = AlarmState(metric, level, old.since, value, limit, base, rule)
                continue
            states[metric] = AlarmState(
                metric, level, at if level != current else None, value, limit, base, rule
            )
            if level != current:
                events.append(
                    AlarmEvent(
                        "cleared" if level == "ok" else "raised",
                        self.host,
                        metric,
                        level,
                        current,
                        value,
                        limit,
                        base,
                        rule,
                        at,
                        uptime_s,
                    )
                )
        return events

    def _baseline(self, aged: Sequence[_Aged]) -> list[float | None] | None:
        """The minute ending 10 s before the latest sample, once the series reaches that far back."""
        if len(aged) < self._short + self._minute + 1:
            return None
        end = len(aged) - 1 - self._short
        return self._aged_rates(aged[end - self._minute], aged[end])

    @staticmethod
    def _aged_rates(before: _Aged, after: _Aged) -> list[float | None]:
        """The aged metrics' rates between two aged samples, as :func:`measure_rates` takes them, in the
        order of ``_aged_metrics`` (None: the kernel has no such counter)."""
        interval = after[0] - before[0]
        if interval <= 0:
            raise MeasureError(f"no positive interval between uptimes {before[0]:g}s and {after[0]:g}s")
        return [
            None
            if old is None or new is None
            else (new - old if new >= old else counter_delta(old, new)[0]) / interval
            for old, new in zip(before[1], after[1], strict=True)
        ]

    @staticmethod
    def _judge(
        threshold: Threshold,
        current: Level,
        value: float,
        average: bool,
        spike: bool,
        base: float | None,
        uptime_s: float,
    ) -> tuple[Level, float | None, float | None, Rule]:
        """The metric's new level, limit, baseline and rule, from its value: its 60 s average for the
        listen queue's metrics (``average``), else its 10 s rate; ``base``: a spike metric's baseline,
        once there is one."""
        if average:
            hold = current == "critical" and threshold.warning is not None
            critical = threshold.warning if hold else threshold.critical
            if critical is not None and value > critical:
                return "critical", critical, None, "average"
            if threshold.warning is not None and value > threshold.warning:
                return "warning", threshold.warning, None, "average"
            return "ok", threshold.warning, None, "average"
        if threshold.critical is not None and value > threshold.critical:
            return "critical", threshold.critical, None, "threshold"
        if spike:
            if threshold.warning is None:
                return "ok", None, None, "threshold"
            if base is None or uptime_s <= MIN_UPTIME_S:
                if current == "critical":  # under the critical limit now, and no baseline for a spike
                    return "ok", threshold.critical, None, "threshold"
                # Not judged yet: keep a raised alarm as it is until a baseline can clear it.
                return current, None, None, "spike"
            factor = HOLD_FACTOR if current != "ok" else RAISE_FACTOR
            limit = factor * max(SPIKE_FLOOR, base)
            return ("warning" if value > limit else "ok"), limit, base, "spike"
        if threshold.warning is not None and value > threshold.warning:
            return "warning", threshold.warning, None, "threshold"
        return "ok", threshold.warning, None, "threshold"


def window_rate(before: Snapshot, after: Snapshot, metric: str, interval: float) -> float | None:
    """``measure_rates(before, after).per_second.get(metric)``, for one metric, without the others
    (``interval``: ``after.uptime_s - before.uptime_s``, positive): a friendly name's kernel counter
    (``resets_sent``: ``OutRsts``), else a counter's own name; a ``Tcp`` gauge has no rate, and a
    ``TcpExt`` counter whose name the ``Tcp`` line also has is ``TcpExt.<name>``."""
    kernel = NAMED_RATES.get(metric)
    if kernel is not None:
        rate = _counter_rate(before, after, kernel, interval)
        if rate is not None:
            return rate
    return _counter_rate(before, after, metric, interval)


def _counter_rate(before: Snapshot, after: Snapshot, key: str, interval: float) -> float | None:
    """The rate :func:`measure_rates` gives under ``key`` (its own name, or ``TcpExt.<name>``)."""
    old_tcp, new_tcp = before.tcp, after.tcp
    if key in new_tcp:  # a Tcp counter (a TcpExt one of that name is TcpExt.<name>)
        if key in GAUGES or key not in old_tcp:
            return None
        old, new = old_tcp[key], new_tcp[key]
    else:
        old_ext, new_ext = before.tcpext, after.tcpext
        if key in new_ext and key in old_ext and key not in old_tcp:
            old, new = old_ext[key], new_ext[key]
        elif key.startswith("TcpExt."):
            name = key[7:]
            if name not in new_ext or name not in old_ext or (name not in old_tcp and name not in new_tcp):
                return None
            old, new = old_ext[name], new_ext[name]
        else:
            return None
    return (new - old if new >= old else counter_delta(old, new)[0]) / interval


_Plan = tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, Threshold, bool, bool, int], ...]]


@lru_cache(maxsize=256)
def _plan(thresholds: tuple[tuple[str, Threshold], ...]) -> _Plan:
    """What a host judged by ``thresholds`` ages and how it judges each metric; one for all the hosts of
    the same thresholds (a watch of thousands of hosts holds a few, and reads them every round).

    The aged metrics (their minute's average or a spike's baseline is judged) and their kernel counters;
    per threshold: its metric, the threshold, whether it is judged on its minute's average or as a
    spike, and where its aged rates are (-1: nowhere)."""
    aged = tuple(metric for metric, _ in thresholds if metric in AVERAGE_METRICS or metric in SPIKE_METRICS)
    aged_at = {metric: at for at, metric in enumerate(aged)}
    judged = tuple(
        (metric, threshold, metric in AVERAGE_METRICS, metric in SPIKE_METRICS, aged_at.get(metric, -1))
        for metric, threshold in thresholds
    )
    return aged, tuple(NAMED_RATES.get(m, m) for m in aged), judged


# An aged sample: the host's uptime and the judged counters' values (None: the kernel has no such
# counter), in the order of HostAlarms._aged_counters. A few hundred bytes, where a Snapshot is kilobytes.
_Aged = tuple[float, tuple[int | None, ...]]


def _age(snapshot: Snapshot, counters: tuple[str, ...]) -> _Aged:
    tcp, tcpext = snapshot.tcp, snapshot.tcpext
    return snapshot.uptime_s, tuple([tcp[c] if c in tcp else tcpext.get(c) for c in counters])


# --- what a watch keeps and reports ---------------------------------------------------------------------

# The counters a watch keeps of each sample (of the ~150 a kernel prints): the Tcp line but its
# constants, and of TcpExt those the rules judge, those node_exporter's netstat collector serves by
# default, and the other evidence of resets. Any other metric a threshold names is kept too.
WATCHED_TCP: tuple[str, ...] = (
    "ActiveOpens",
    "PassiveOpens",
    "AttemptFails",
    "EstabResets",
    "CurrEstab",
    "InSegs",
    "OutSegs",
    "RetransSegs",
    "InErrs",
    "OutRsts",
    "InCsumErrors",
)
WATCHED_TCPEXT: tuple[str, ...] = (
    "ListenOverflows",
    "ListenDrops",
    "SyncookiesSent",
    "SyncookiesRecv",
    "SyncookiesFailed",
    "EmbryonicRsts",
    "TCPTimeouts",
    "TCPSynRetrans",
    "TCPOFOQueue",
    "TCPRcvQDrop",
    "TCPAbortOnData",
    "TCPAbortOnClose",
    "TCPAbortOnMemory",
    "TCPAbortOnTimeout",
    "TCPAbortOnLinger",
    "TCPAbortFailed",
    "TCPMemoryPressures",
    "TCPReqQFullDrop",
    "TCPReqQFullDoCookies",
    "TCPChallengeACK",
)


def watched_counters(thresholds: Mapping[str, Threshold]) -> frozenset[str]:
    """The kernel counters to keep of each sample of a host judged by ``thresholds`` (one set for all
    the hosts that keep the same counters)."""
    return _watched(frozenset(NAMED_RATES.get(metric, metric) for metric in thresholds))


@lru_cache(maxsize=256)
def _watched(judged: frozenset[str]) -> frozenset[str]:
    return frozenset(WATCHED_TCP) | frozenset(WATCHED_TCPEXT) | judged


WatchEventKind = Literal["raised", "cleared", "lost", "back"]


@dataclass(frozen=True)
class WatchEvent:
    """What a watch reports: one of a host's alarms ``raised`` or ``cleared`` (see :class:`AlarmEvent`),
    or the host ``lost`` (it cannot be reached, its stream stopped, or it sends nothing usable: ``error``
    says which) or ``back`` (samples again, ``down_s`` after it was lost). ``at``: controller time."""

    event: WatchEventKind
    host: str
    at: float
    groups: tuple[str, ...] = ()
    metric: str | None = None
    level: Level | None = None
    previous: Level | None = None
    value: float | None = None
    limit: float | None = None
    baseline: float | None = None
    rule: str | None = None
    error: str | None = None
    error_kind: str | None = None
    down_s: float | None = None

    @classmethod
    def of_alarm(cls, alarm: AlarmEvent, groups: tuple[str, ...] = ()) -> WatchEvent:
        return cls(
            alarm.event,
            alarm.host,
            alarm.at,
            groups,
            metric=alarm.metric,
            level=alarm.level,
            previous=alarm.previous,
            value=alarm.value,
            limit=alarm.limit,
            baseline=alarm.baseline,
            rule=alarm.rule,
        )
