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

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..model import Level, Rates, Snapshot, Threshold
from .counters import NAMED_RATES, MeasureError, measure_rates
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
_Judged = tuple[Level, float, float | None, float | None, Rule]


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
    """The alarms of one host: feed it snapshots in order with :meth:`add`."""

    host: str
    thresholds: Mapping[str, Threshold]
    every_s: float = 10.0
    states: dict[str, AlarmState] = field(default_factory=dict)
    rates: Rates | None = None  # the latest 10 s rates
    _series: deque[Snapshot] = field(default_factory=deque, repr=False)
    _aged: deque[_Aged] = field(default_factory=deque, repr=False)

    def __post_init__(self) -> None:
        self._short = max(1, round(SHORT_S / self.every_s))  # rounds in the 10 s average
        self._minute = max(1, round(BASELINE_S / self.every_s))  # rounds in a 1-minute average
        # Two series: the samples whole, as far back as the 10 s average reaches; and, as far back as
        # the baseline reaches, the samples narrowed to the few counters that the minute's averages
        # and the baseline judge (a watch holds a minute of samples for every host, and takes these
        # rates every round).
        self._series = deque(maxlen=self._short + 1)
        self._aged = deque(maxlen=self._short + self._minute + 1)
        self._aged_metrics = tuple(m for m in self.thresholds if m in AVERAGE_METRICS or m in SPIKE_METRICS)
        self._aged_counters = tuple(NAMED_RATES.get(m, m) for m in self._aged_metrics)

    @property
    def level(self) -> Level:
        return max((s.level for s in self.states.values()), key=_SEVERITY.__getitem__, default="ok")

    @property
    def raised(self) -> list[AlarmState]:
        """The alarms not ok, worst first."""
        up = [s for s in self.states.values() if s.level != "ok"]
        return sorted(up, key=lambda s: (-_SEVERITY[s.level], s.metric))

    def restart(self) -> None:
        """Forget the series (a reboot, a reconnect after a gap): rates start again from the next two
        samples. Alarm states stay as they were until the data says otherwise."""
        self._series.clear()
        self._aged.clear()
        self.rates = None

    def add(self, snapshot: Snapshot, at: float) -> list[AlarmEvent]:
        """One more sample; the events it causes (none until there are two samples)."""
        if self._series and (
            snapshot.boot_id != self._series[-1].boot_id or snapshot.uptime_s <= self._series[-1].uptime_s
        ):
            self.restart()
        self._series.append(snapshot)
        self._aged.append(_age(snapshot, self._aged_counters))
        series, aged = self._series, self._aged
        if len(series) < 2:
            return []
        try:
            short = measure_rates(series[0], series[-1])  # as far back as 10 s, or what there is
            minute = self._aged_rates(aged[-1 - min(self._minute, len(aged) - 1)], aged[-1])
            baseline = self._baseline(aged)
        except MeasureError:  # cannot happen after the guard above; never let one host stop the loop
            self.restart()
            return []
        self.rates = short
        events: list[AlarmEvent] = []
        for metric, threshold in self.thresholds.items():
            old = self.states.get(metric)
            current: Level = old.level if old is not None else "ok"
            judged = self._judge(metric, threshold, current, short, minute, baseline, snapshot.uptime_s)
            if judged is None:
                continue
            level, value, limit, base, rule = judged
            since = old.since if old is not None else None
            if level != current:
                since = at
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
                        snapshot.uptime_s,
                    )
                )
            self.states[metric] = AlarmState(metric, level, since, value, limit, base, rule)
        return events

    def _baseline(self, aged: Sequence[_Aged]) -> Mapping[str, float] | None:
        """The minute ending 10 s before the latest sample, once the series reaches that far back."""
        if len(aged) < self._short + self._minute + 1:
            return None
        end = len(aged) - 1 - self._short
        return self._aged_rates(aged[end - self._minute], aged[end])

    def _aged_rates(self, before: _Aged, after: _Aged) -> dict[str, float]:
        """The judged metrics' rates between two aged samples, as :func:`measure_rates` takes them."""
        interval = after[0] - before[0]
        if interval <= 0:
            raise MeasureError(f"no positive interval between uptimes {before[0]:g}s and {after[0]:g}s")
        rates: dict[str, float] = {}
        for metric, old, new in zip(self._aged_metrics, before[1], after[1], strict=True):
            if old is not None and new is not None:
                rates[metric] = counter_delta(old, new)[0] / interval
        return rates

    def _judge(
        self,
        metric: str,
        threshold: Threshold,
        current: Level,
        short: Rates,
        minute: Mapping[str, float],
        baseline: Mapping[str, float] | None,
        uptime_s: float,
    ) -> _Judged | None:
        """The metric's new level, value, limit, baseline and rule; None when the host has no such rate."""
        if metric in AVERAGE_METRICS:
            value = minute.get(metric)
            if value is None:
                return None
            hold = current == "critical" and threshold.warning is not None
            critical = threshold.warning if hold else threshold.critical
            if critical is not None and value > critical:
                return "critical", value, critical, None, "average"
            if threshold.warning is not None and value > threshold.warning:
                return "warning", value, threshold.warning, None, "average"
            return "ok", value, threshold.warning, None, "average"
        value = short.per_second.get(metric)
        if value is None:
            return None
        if threshold.critical is not None and value > threshold.critical:
            return "critical", value, threshold.critical, None, "threshold"
        if metric in SPIKE_METRICS:
            if threshold.warning is None:
                return "ok", value, None, None, "threshold"
            base = baseline.get(metric) if baseline is not None else None
            if base is None or uptime_s <= MIN_UPTIME_S:
                if current == "critical":  # under the critical limit now, and no baseline for a spike
                    return "ok", value, threshold.critical, None, "threshold"
                # Not judged yet: keep a raised alarm as it is until a baseline can clear it.
                return current, value, None, None, "spike"
            factor = HOLD_FACTOR if current != "ok" else RAISE_FACTOR
            limit = factor * max(SPIKE_FLOOR, base)
            level: Level = "warning" if value > limit else "ok"
            return level, value, limit, base, "spike"
        if threshold.warning is not None and value > threshold.warning:
            return "warning", value, threshold.warning, None, "threshold"
        return "ok", value, threshold.warning, None, "threshold"


# An aged sample: the host's uptime and the judged counters' values (None: the kernel has no such
# counter), in the order of HostAlarms._aged_counters. A few hundred bytes, where a Snapshot is kilobytes.
_Aged = tuple[float, tuple[int | None, ...]]


def _age(snapshot: Snapshot, counters: tuple[str, ...]) -> _Aged:
    tcp, tcpext = snapshot.tcp, snapshot.tcpext
    return snapshot.uptime_s, tuple(tcp[c] if c in tcp else tcpext.get(c) for c in counters)


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
    """The kernel counters to keep of each sample of a host judged by ``thresholds``."""
    judged = {NAMED_RATES.get(metric, metric) for metric in thresholds}
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
