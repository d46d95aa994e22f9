"""What a watch does per sample to stay cheap, checked against the plain way of doing it: a host's alarms
take only the judged metrics' rates (:func:`~fleetrst.measure.alarms.window_rate`, what
``measure_rates`` gives for that metric) and keep an alarm state that did not change; a view's whole
rates are taken when first read; the frame reader's fast path reads ``\\r\\n`` lines and layouts of one
kept counter as the full parser does."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetrst.measure.alarms import (
    AVERAGE_METRICS,
    BASELINE_S,
    HOLD_FACTOR,
    MIN_UPTIME_S,
    RAISE_FACTOR,
    SHORT_S,
    AlarmEvent,
    AlarmState,
    HostAlarms,
    watched_counters,
    window_rate,
)
from fleetrst.measure.counters import NAMED_RATES, MeasureError, ProbeParseError, measure_rates
from fleetrst.measure.probe import WatchFrames
from fleetrst.measure.rules import DEFAULT_THRESHOLDS, SPIKE_FLOOR, SPIKE_METRICS
from fleetrst.model import Level, Rates, Snapshot, Threshold
from fleetrst.render.watch import HostView
from tests.watch.test_frames_fast_path import TEXT, read  # the loop's real frames, fed a line at a time

# --- window_rate: measure_rates for one metric ------------------------------------------------------------

# Names that make measure_rates' cases: Tcp gauges, a name on both lines (its TcpExt one is
# "TcpExt.<name>"), the named rates' kernel counters, a counter named as a friendly name, others.
_NAMES = [
    "OutRsts",
    "AttemptFails",
    "CurrEstab",
    "MaxConn",
    "ListenOverflows",
    "TCPAbortOnData",
    "Both",
    "resets_sent",
]
_U64 = 2**64 - 1
_counters = st.dictionaries(st.sampled_from(_NAMES), st.integers(0, _U64), max_size=len(_NAMES))
_nearby = st.one_of(
    st.integers(0, 1000), st.integers(2**32 - 1000, 2**32 + 1000), st.integers(_U64 - 1000, _U64)
)


@settings(max_examples=400, deadline=None)
@given(_counters, _counters, _counters, _counters, st.floats(0.001, 1e6), st.booleans())
def test_window_rate_is_the_rate_measure_rates_gives_for_that_metric(
    tcp_before: dict[str, int],
    tcpext_before: dict[str, int],
    tcp_after: dict[str, int],
    tcpext_after: dict[str, int],
    interval: float,
    same_names: bool,
) -> None:
    if same_names:  # one layout, as a host's frames have: the same names before and after
        tcp_after = {k: tcp_after.get(k, v) for k, v in tcp_before.items()}
        tcpext_after = {k: tcpext_after.get(k, v) for k, v in tcpext_before.items()}
    before = Snapshot(tcp=tcp_before, tcpext=tcpext_before, uptime_s=1000.0, boot_id="b")
    after = Snapshot(tcp=tcp_after, tcpext=tcpext_after, uptime_s=1000.0 + interval, boot_id="b")
    whole = measure_rates(before, after).per_second
    for metric in [*_NAMES, *NAMED_RATES, *(f"TcpExt.{name}" for name in _NAMES)]:
        assert window_rate(before, after, metric, after.uptime_s - before.uptime_s) == whole.get(metric), (
            metric
        )


@given(_nearby, _nearby)
def test_window_rate_takes_wraps_and_resets_as_measure_rates_does(old: int, new: int) -> None:
    before = Snapshot(tcp={"OutRsts": old}, tcpext={}, uptime_s=10.0, boot_id="b")
    after = Snapshot(tcp={"OutRsts": new}, tcpext={}, uptime_s=20.0, boot_id="b")
    assert (
        window_rate(before, after, "resets_sent", 10.0)
        == measure_rates(before, after).per_second["resets_sent"]
    )


# --- HostAlarms against the plain way: measure_rates every sample, a new state every sample --------------


@dataclass
class _PlainAlarms:
    """HostAlarms as it was written before it was made cheap: every rate of every sample, every state
    made afresh. The reference the real one must agree with, event for event and state for state."""

    host: str
    thresholds: Mapping[str, Threshold]
    every_s: float
    states: dict[str, AlarmState] = field(default_factory=dict)
    rates: Rates | None = None
    series: list[Snapshot] = field(default_factory=list)

    def add(self, snapshot: Snapshot, at: float) -> list[AlarmEvent]:
        short_n = max(1, round(SHORT_S / self.every_s))
        minute_n = max(1, round(BASELINE_S / self.every_s))
        if self.series and (
            snapshot.boot_id != self.series[-1].boot_id or snapshot.uptime_s <= self.series[-1].uptime_s
        ):
            self.series, self.rates = [], None
        self.series = [*self.series, snapshot][-(short_n + minute_n + 1) :]
        series = self.series
        if len(series) < 2:
            return []
        short = measure_rates(series[-1 - min(short_n, len(series) - 1)], series[-1])
        minute = measure_rates(series[-1 - min(minute_n, len(series) - 1)], series[-1]).per_second
        baseline = None
        if len(series) == short_n + minute_n + 1:
            end = len(series) - 1 - short_n
            baseline = measure_rates(series[end - minute_n], series[end]).per_second
        self.rates = short
        events = []
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
                kind = "cleared" if level == "ok" else "raised"
                events.append(
                    AlarmEvent(
                        kind,
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
            self.states[metric] = AlarmState(metric, level, since, value, limit, base, rule)  # type: ignore[arg-type]
        return events

    @staticmethod
    def _judge(
        metric: str,
        threshold: Threshold,
        current: Level,
        short: Rates,
        minute: Mapping[str, float],
        baseline: Mapping[str, float] | None,
        uptime_s: float,
    ) -> tuple[Level, float, float | None, float | None, str] | None:
        if metric in AVERAGE_METRICS:
            value = minute.get(metric)
            if value is None:
                return None
            critical = (
                threshold.warning
                if current == "critical" and threshold.warning is not None
                else threshold.critical
            )
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
                if current == "critical":
                    return "ok", value, threshold.critical, None, "threshold"
                return current, value, None, None, "spike"
            limit = (HOLD_FACTOR if current != "ok" else RAISE_FACTOR) * max(SPIKE_FLOOR, base)
            return ("warning" if value > limit else "ok"), value, limit, base, "spike"
        if threshold.warning is not None and value > threshold.warning:
            return "warning", value, threshold.warning, None, "threshold"
        return "ok", value, threshold.warning, None, "threshold"


_KERNEL = sorted({*NAMED_RATES.values(), "InSegs"})
_TCP = {"ActiveOpens", "PassiveOpens", "AttemptFails", "EstabResets", "CurrEstab", "InSegs", "OutRsts"}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from(_KERNEL), st.integers(0, 5000), max_size=4),
            st.sampled_from([10.0, 10.0, 10.0, 10.0, 9.9, 0.0, -5.0]),
            st.integers(0, 30),
        ),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from([10.0, 5.0, 2.0]),
    st.sampled_from([30.0, 50.0, 200.0]),
)
def test_host_alarms_agree_with_the_plain_way_event_for_event(
    steps: list[tuple[dict[str, int], float, int]], every: float, uptime0: float
) -> None:
    thresholds = dict(DEFAULT_THRESHOLDS)
    thresholds["OutRsts"] = Threshold(warning=100.0, critical=None)  # a kernel name judged as is
    cheap, plain = HostAlarms("h", thresholds, every), _PlainAlarms("h", thresholds, every)
    counters = dict.fromkeys(_KERNEL, 1000)
    uptime, boot = uptime0, "boot-1"
    for at, (moves, dt, roll) in enumerate(steps):
        for name, moved in moves.items():
            counters[name] += moved
        uptime += dt
        if roll == 0:  # now and then a reboot: the counters start again
            boot, counters = f"boot-{at}", dict.fromkeys(_KERNEL, 0)
        snapshot = Snapshot(
            tcp={k: v for k, v in counters.items() if k in _TCP},
            tcpext={k: v for k, v in counters.items() if k not in _TCP},
            uptime_s=uptime,
            boot_id=boot,
        )
        assert cheap.add(snapshot, float(at)) == plain.add(snapshot, float(at))
        assert cheap.states == plain.states
        assert cheap.rates == plain.rates
        assert cheap.level == max(
            (s.level for s in plain.states.values()), key=["ok", "warning", "critical"].index, default="ok"
        )


def test_an_alarm_that_did_not_change_keeps_its_state_and_rates_are_taken_whenread() -> None:
    alarms = HostAlarms("h", DEFAULT_THRESHOLDS, 10.0)
    snapshots = [
        Snapshot(
            tcp={"OutRsts": 5, "AttemptFails": 1},
            tcpext={"ListenOverflows": 0},
            uptime_s=100.0 + 10 * i,
            boot_id="b",
        )
        for i in range(3)
    ]
    alarms.add(snapshots[0], 0.0)
    assert alarms.rates is None and alarms.window is None
    alarms.add(snapshots[1], 1.0)
    states = dict(alarms.states)
    alarms.add(snapshots[2], 2.0)
    assert all(alarms.states[m] is states[m] for m in states), "nothing moved: the same states"
    assert alarms.window == (snapshots[1], snapshots[2])
    assert alarms.rates == measure_rates(snapshots[1], snapshots[2])
    alarms.restart()
    assert alarms.rates is None and alarms.window is None


def test_hosts_of_the_same_thresholds_share_what_they_read_every_round() -> None:
    one, two = (
        HostAlarms("a", dict(DEFAULT_THRESHOLDS), 10.0),
        HostAlarms("b", dict(DEFAULT_THRESHOLDS), 10.0),
    )
    assert one._judged is two._judged
    assert watched_counters(dict(DEFAULT_THRESHOLDS)) is watched_counters(dict(DEFAULT_THRESHOLDS))
    other = {**DEFAULT_THRESHOLDS, "TCPTimeouts": Threshold(warning=1.0)}
    assert (
        "TCPTimeouts" in watched_counters(other) and HostAlarms("c", other, 10.0)._judged is not one._judged
    )


# --- HostView: rates taken at their first read -----------------------------------------------------------

_BEFORE = Snapshot(
    tcp={"OutRsts": 10, "CurrEstab": 3}, tcpext={"ListenOverflows": 1}, uptime_s=50.0, boot_id="b"
)
_AFTER = Snapshot(
    tcp={"OutRsts": 110, "CurrEstab": 4}, tcpext={"ListenOverflows": 1}, uptime_s=60.0, boot_id="b"
)


def _view(**changes: object) -> HostView:
    return HostView("h1", ("web",), "10.0.0.1", "up", counters=_AFTER, samples=2, **changes)  # type: ignore[arg-type]


def test_a_view_takes_its_windows_rates_when_first_read_and_is_the_view_that_held_them() -> None:
    eager = _view(rates=measure_rates(_BEFORE, _AFTER))
    lazy = _view(window=(_BEFORE, _AFTER))
    assert lazy == eager and repr(lazy) == repr(eager)
    assert lazy.rates == measure_rates(_BEFORE, _AFTER) and lazy.rates is lazy.rates, "taken once"
    again = _view(window=(_BEFORE, _AFTER))
    assert replace(again, state="lost").rates == eager.rates
    assert pickle.loads(pickle.dumps(_view(window=(_BEFORE, _AFTER)))).rates == eager.rates
    assert _view().rates is None and _view(rates=eager.rates, window=(_AFTER, _AFTER)).rates is eager.rates
    with pytest.raises(AttributeError):
        _view(window=(_BEFORE, _AFTER)).no_such_field  # type: ignore[attr-defined]  # noqa: B018


def test_readers_in_other_threads_take_the_same_rates() -> None:
    view = _view(window=(_BEFORE, _AFTER))
    seen: list[Rates | None] = []
    threads = [threading.Thread(target=lambda: seen.append(view.rates)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [measure_rates(_BEFORE, _AFTER)] * 8


def test_a_window_that_cannot_give_rates_gives_none() -> None:
    with pytest.raises(MeasureError):
        measure_rates(_AFTER, _BEFORE)
    assert _view(window=(_AFTER, _BEFORE)).rates is None


# --- the frame reader's fast path -------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [None, {"OutRsts"}, {"OutRsts", "ListenOverflows"}, set()])
def test_crlf_lines_and_layouts_of_one_or_no_kept_counter_read_as_the_full_parser_reads(
    keep: set[str] | None,
) -> None:
    frames = ["@@fleetrst-watch" + part for part in TEXT.split("@@fleetrst-watch")[1:]]
    full = [read(WatchFrames(keep=keep), frame)[0] for frame in frames]
    assert read(WatchFrames(keep=keep), TEXT) == full
    crlf = TEXT.replace("\n", "\r\n")
    assert read(WatchFrames(keep=keep), crlf) == full
    mixed = frames[0] + frames[1].replace("\n", "\r\n", 3) + frames[2] + frames[3]
    assert read(WatchFrames(keep=keep), mixed) == full


def test_a_kept_value_of_more_than_20_digits_gets_the_full_parsers_error_even_when_small() -> None:
    frames = ["@@fleetrst-watch" + part for part in TEXT.split("@@fleetrst-watch")[1:]]
    head, values = [line for line in frames[1].split("\n") if line.startswith("Tcp: ")]
    tokens = values.split(" ")
    at = head.split(" ").index("OutRsts")
    damaged = frames[1].replace(values, " ".join([*tokens[:at], "0" * 21 + "5", *tokens[at + 1 :]]), 1)
    reader = WatchFrames(keep={"OutRsts"})
    read(reader, frames[0])
    with pytest.raises(ProbeParseError, match="OutRsts is '0000"):
        read(reader, damaged)
    assert read(reader, frames[2]) == read(WatchFrames(keep={"OutRsts"}), frames[2]), "and the next is read"
