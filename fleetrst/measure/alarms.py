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
from .counters import MeasureError, measure_rates
from .rules import SPIKE_FLOOR, SPIKE_METRICS

SHORT_S = 10.0  # Netdata's "average -10s"
BASELINE_S = 60.0  # "average -1m at -10s"
AVERAGE_METRICS: frozenset[str] = frozenset({"listen_overflows", "listen_drops", "req_q_full_drops"})
MIN_UPTIME_S = 60.0  # Netdata's guard: $netdata.uptime.uptime > (1 * 60)
RAISE_FACTOR = 10.0  # raise above 10 × max(5, baseline) ...
HOLD_FACTOR = 1.0  # ... and hold while above 1 × max(5, baseline)
_SEVERITY: dict[Level, int] = {"ok": 0, "warning": 1, "critical": 2}

EventKind = Literal["raised", "cleared"]


@dataclass(frozen=True)
class AlarmState:
    """One metric's alarm on one host: its level, since when, and the figures it was judged on."""

    metric: str
    level: Level = "ok"
    since: float | None = None  # controller time (Unix seconds) of the last change
    value: float = 0.0
    limit: float | None = None
    baseline: float | None = None
    rule: Literal["spike", "average", "threshold"] = "threshold"


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

    def __post_init__(self) -> None:
        self._short = max(1, round(SHORT_S / self.every_s))  # rounds in the 10 s average
        self._minute = max(1, round(BASELINE_S / self.every_s))  # rounds in a 1-minute average
        self._series = deque(maxlen=self._short + self._minute + 1)

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
        self.rates = None

    def add(self, snapshot: Snapshot, at: float) -> list[AlarmEvent]:
        """One more sample; the events it causes (none until there are two samples)."""
        if self._series and (
            snapshot.boot_id != self._series[-1].boot_id or snapshot.uptime_s <= self._series[-1].uptime_s
        ):
            self.restart()
        self._series.append(snapshot)
        series = list(self._series)
        if len(series) < 2:
            return []
        try:
            short = measure_rates(series[-1 - min(self._short, len(series) - 1)], series[-1])
            minute = measure_rates(series[-1 - min(self._minute, len(series) - 1)], series[-1])
            baseline = self._baseline(series)
        except MeasureError:  # cannot happen after the guard above; never let one host stop the loop
            self.restart()
            return []
        self.rates = short
        events: list[AlarmEvent] = []
        for metric, threshold in self.thresholds.items():
            state = self._judge(metric, threshold, short, minute, baseline, snapshot.uptime_s)
            if state is None:
                continue
            old = self.states.get(metric, AlarmState(metric))
            if state.level != old.level:
                state = _with_since(state, at)
                events.append(
                    AlarmEvent(
                        "cleared" if state.level == "ok" else "raised",
                        self.host,
                        metric,
                        state.level,
                        old.level,
                        state.value,
                        state.limit,
                        state.baseline,
                        state.rule,
                        at,
                        snapshot.uptime_s,
                    )
                )
            else:
                state = _with_since(state, old.since)
            self.states[metric] = state
        return events

    def _baseline(self, series: Sequence[Snapshot]) -> Rates | None:
        """The minute ending 10 s before the latest sample, once the series reaches that far back."""
        if len(series) < self._short + self._minute + 1:
            return None
        end = len(series) - 1 - self._short
        return measure_rates(series[end - self._minute], series[end])

    def _judge(
        self,
        metric: str,
        threshold: Threshold,
        short: Rates,
        minute: Rates,
        baseline: Rates | None,
        uptime_s: float,
    ) -> AlarmState | None:
        current = self.states.get(metric, AlarmState(metric)).level
        if metric in AVERAGE_METRICS:
            value = minute.per_second.get(metric)
            if value is None:
                return None
            hold = current == "critical" and threshold.warning is not None
            critical = threshold.warning if hold else threshold.critical
            if critical is not None and value > critical:
                return AlarmState(metric, "critical", value=value, limit=critical, rule="average")
            if threshold.warning is not None and value > threshold.warning:
                return AlarmState(metric, "warning", value=value, limit=threshold.warning, rule="average")
            return AlarmState(metric, "ok", value=value, limit=threshold.warning, rule="average")
        value = short.per_second.get(metric)
        if value is None:
            return None
        if threshold.critical is not None and value > threshold.critical:
            return AlarmState(metric, "critical", value=value, limit=threshold.critical)
        if metric in SPIKE_METRICS:
            if threshold.warning is None:
                return AlarmState(metric, "ok", value=value)
            base = baseline.per_second.get(metric) if baseline is not None else None
            if base is None or uptime_s <= MIN_UPTIME_S:
                # Not judged yet: keep a raised alarm as it is until a baseline can clear it.
                return AlarmState(
                    metric, current if current != "critical" else "ok", value=value, rule="spike"
                )
            factor = HOLD_FACTOR if current != "ok" else RAISE_FACTOR
            limit = factor * max(SPIKE_FLOOR, base)
            level: Level = "warning" if value > limit else "ok"
            return AlarmState(metric, level, value=value, limit=limit, baseline=base, rule="spike")
        if threshold.warning is not None and value > threshold.warning:
            return AlarmState(metric, "warning", value=value, limit=threshold.warning)
        return AlarmState(metric, "ok", value=value, limit=threshold.warning)


def _with_since(state: AlarmState, since: float | None) -> AlarmState:
    return AlarmState(state.metric, state.level, since, state.value, state.limit, state.baseline, state.rule)
