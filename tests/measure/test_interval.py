"""Since the last audit: counts between two audits' samples, their guards, their thresholds, and what
they do to the exit code. Pure: snapshots in, values out."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.errors import EXIT_CRITICAL, EXIT_OK, EXIT_UNKNOWN, EXIT_WARNING
from fleetrst.measure.interval import (
    DEFAULT_INTERVAL_THRESHOLDS,
    counts_since,
    interval_thresholds,
    judge_interval,
    since_last_of,
    span,
)
from fleetrst.measure.rules import ThresholdError
from fleetrst.model import RecordedSnapshot, SinceLast, SinceLastMissing, Snapshot
from tests.helpers import examples, host, report

BOOT = "0e3f2b4c-5d6a-4b7c-8d9e-0f1a2b3c4d5e"


def snap(
    *,
    fails: int = 100,
    rsts: int = 200,
    uptime: float = 1000.0,
    boot: str = BOOT,
    netns: str | None = None,
    estab: int = 7,
    in_segs: int = 5000,
) -> Snapshot:
    return Snapshot(
        tcp={
            "RtoAlgorithm": 1,
            "MaxConn": -1,
            "ActiveOpens": 50,
            "AttemptFails": fails,
            "EstabResets": 3,
            "CurrEstab": estab,
            "InSegs": in_segs,
            "OutRsts": rsts,
        },
        tcpext={"ListenOverflows": 0, "ListenDrops": 0, "TCPAbortOnData": 1},
        uptime_s=uptime,
        boot_id=boot,
        netns=netns,
    )


def previous(s: Snapshot) -> RecordedSnapshot:
    return RecordedSnapshot(sweep_id=7, started_at="2026-11-20T10:00:00+00:00", snapshot=s)


def test_the_counts_are_what_the_kernel_counted_between_the_two_samples() -> None:
    since = counts_since(previous(snap()), snap(fails=12_400, rsts=12_510, uptime=1300.0, in_segs=9000))
    assert isinstance(since, SinceLast)
    assert (
        since.interval_s == 300.0 and since.from_at == "2026-11-20T10:00:00+00:00" and since.from_sweep == 7
    )
    assert since.counts["AttemptFails"] == since.counts["resets_received"] == 12_300
    assert since.counts["OutRsts"] == since.counts["resets_sent"] == 12_310
    assert since.counts["InSegs"] == 4000
    assert since.rates["resets_sent"] == pytest.approx(12_310 / 300)
    assert since.counts["listen_overflows"] == 0, "a named count is there even when 0"
    assert "ActiveOpens" not in since.counts, "a kernel counter that did not move is left out"
    assert "CurrEstab" not in since.counts and "MaxConn" not in since.counts, "gauges are not counted"


@pytest.mark.parametrize(
    ("before", "after", "reason", "words"),
    [
        (None, snap(), "first_audit", "no earlier audit of this host"),
        (
            snap(),
            snap(uptime=5.0, boot="11111111-2222-4333-8444-555555555555"),
            "rebooted",
            "boot_id changed",
        ),
        (
            snap(netns="4026532301:812:4400"),
            snap(uptime=1100.0, netns="4026532301:990:9000"),
            "namespace_changed",
            "",
        ),
        (snap(), snap(uptime=1100.0, netns="4026532301:990:9000"), "namespace_changed", "the host →"),
        (snap(), snap(uptime=1000.0, fails=150), "uptime", "no interval"),
        (snap(rsts=5000), snap(uptime=1100.0, rsts=12), "counters_reset", "OutRsts 5000 → 12"),
    ],
    ids=["first audit", "reboot", "another namespace", "namespace appears", "clock", "counter went down"],
)
def test_no_usable_previous_audit_gives_a_reason_never_a_number(
    before: Snapshot | None, after: Snapshot, reason: str, words: str
) -> None:
    since = counts_since(previous(before) if before else None, after)
    assert isinstance(since, SinceLastMissing)
    assert since.reason == reason and words in since.detail


def test_a_recreated_namespace_is_seen_as_counters_that_went_backwards() -> None:
    """The host's own namespace has no identity the probe can read with cat (boot_id covers it: it is
    not recreated without a reboot); in the test fleet, a recreated one starts from 0 again."""
    old = snap(fails=900, rsts=950, in_segs=80_000)
    fresh = snap(fails=0, rsts=3, in_segs=40, uptime=1500.0)
    since = counts_since(previous(old), fresh)
    assert isinstance(since, SinceLastMissing) and since.reason == "counters_reset"
    assert "3 counters went backwards" in since.detail and "namespace was recreated" in since.detail


@examples(200)
@given(
    st.lists(st.integers(0, 2**64 - 1), min_size=3, max_size=3),
    st.lists(st.integers(0, 2**64 - 1), min_size=3, max_size=3),
    st.floats(0.001, 1e6),
)
def test_counts_are_never_negative_or_invented(before: list[int], after: list[int], seconds: float) -> None:
    a = Snapshot({"AttemptFails": before[0], "OutRsts": before[1]}, {"X": before[2]}, 100.0, BOOT)
    b = Snapshot({"AttemptFails": after[0], "OutRsts": after[1]}, {"X": after[2]}, 100.0 + seconds, BOOT)
    since = counts_since(previous(a), b)
    if any(y < x for x, y in zip(before, after, strict=True)):
        assert isinstance(since, SinceLastMissing) and since.reason == "counters_reset"
    else:
        assert isinstance(since, SinceLast)
        assert since.counts["resets_received"] == after[0] - before[0]
        assert all(v >= 0 for v in since.counts.values())


def test_a_storm_between_audits_trips_the_interval_and_says_the_cause_was_not_seen_live() -> None:
    since = counts_since(previous(snap()), snap(fails=12_400, rsts=12_510, uptime=1300.0))
    assert isinstance(since, SinceLast)
    judged = judge_interval(since, DEFAULT_INTERVAL_THRESHOLDS, "ok")
    assert [(t.metric, t.level) for t in judged.tripped] == [
        ("resets_received", "warning"),
        ("resets_sent", "warning"),
    ], "41/s on average: over 10/s, under 250/s"
    assert judged.note is not None
    assert judged.note.startswith("quiet now; resets_received 41.0/s on average over the last 5 min")
    assert "could not be seen live" in judged.note and "fleetrst watch" in judged.note
    # the same interval for a host whose window tripped too: the investigation saw it live, no note
    assert judge_interval(since, DEFAULT_INTERVAL_THRESHOLDS, "warning").note is None
    # a host that resets at 40/s all the time is not "quiet now": it is under its window's limit
    steady = judge_interval(since, DEFAULT_INTERVAL_THRESHOLDS, "ok", {"resets_received": 40.0})
    assert steady.note is not None and steady.note.startswith("40.0/s now, under its window's limit;")


def test_a_steady_rate_is_never_judged_more_severely_over_the_interval_than_in_its_window() -> None:
    from fleetrst.measure.rules import DEFAULT_THRESHOLDS

    for metric, limits in DEFAULT_INTERVAL_THRESHOLDS.items():
        window = DEFAULT_THRESHOLDS[metric]
        assert limits.critical == window.critical, metric
        assert limits.warning is not None and window.warning is not None and limits.warning <= window.warning


def test_interval_thresholds_are_defaults_then_the_inventory_then_the_command_line() -> None:
    base = interval_thresholds({}, {}, {}, "host h1")
    assert base == DEFAULT_INTERVAL_THRESHOLDS
    inv = {"fleetrst_interval_thresholds": {"resets_sent": {"warning": 100}, "estab_resets": None}}
    got = interval_thresholds(inv, {}, {"resets_sent": 400.0}, "host h1")
    assert (got["resets_sent"].warning, got["resets_sent"].critical) == (100.0, 400.0)
    assert got["resets_received"] == DEFAULT_INTERVAL_THRESHOLDS["resets_received"]
    assert got["estab_resets"].warning is None and got["estab_resets"].critical is None
    lb = {"fleetrst_thresholds": {"resets_sent": {"warning": 500}, "estab_resets": None}}
    got = interval_thresholds(lb, {}, {}, "host lb1")
    assert (got["resets_sent"].warning, got["resets_sent"].critical) == (500.0, 250.0), (
        "a host where resets are expected is expected to reset between audits too; a level left out is the "
        "interval's own"
    )
    assert got["estab_resets"].warning is None
    both = {**lb, "fleetrst_interval_thresholds": {"resets_sent": {"critical": 900}}}
    assert interval_thresholds(both, {}, {}, "host lb1")["resets_sent"].critical == 900.0
    with pytest.raises(ThresholdError, match=r"host h1: fleetrst_interval_thresholds\.resets_sent\.warning"):
        interval_thresholds(
            {"fleetrst_interval_thresholds": {"resets_sent": {"warning": "x"}}}, {}, {}, "host h1"
        )


def test_a_host_not_measured_has_no_interval_and_says_so() -> None:
    since = since_last_of(host("h9", "unreachable"), previous(snap()), DEFAULT_INTERVAL_THRESHOLDS)
    assert isinstance(since, SinceLastMissing) and since.reason == "not_measured"


def _with_interval(status: str, value: float, level: str) -> object:
    from fleetrst.model import Trip

    trip = Trip("resets_sent", level, value, 10.0 if level == "warning" else 50.0)  # type: ignore[arg-type]
    since = SinceLast("2026-11-20T10:00:00+00:00", 1, 300.0, {"resets_sent": int(value * 300)}, {}, (trip,))
    return replace(host("h1", status), since_last=since)  # type: ignore[arg-type]


def test_a_trip_between_audits_counts_in_the_exit_code_at_its_level() -> None:
    quiet = host("h2")
    warn_between = _with_interval("ok", 41.0, "warning")
    crit_between = _with_interval("ok", 80.0, "critical")
    assert report([quiet]).exit_code == EXIT_OK
    assert report([quiet, warn_between]).exit_code == EXIT_WARNING  # type: ignore[list-item]
    assert report([quiet, crit_between]).exit_code == EXIT_CRITICAL  # type: ignore[list-item]
    assert report([host("h3", "unreachable"), warn_between]).exit_code == EXIT_WARNING  # type: ignore[list-item]
    assert report([host("h3", "unreachable"), quiet]).exit_code == EXIT_UNKNOWN
    assert warn_between.tripped_between_only and not warn_between.all_clear  # type: ignore[attr-defined]


def test_spans_read_as_people_say_them() -> None:
    assert [span(s) for s in (45, 300.2, 5400, 90_000, 3 * 86400)] == [
        "45s",
        "5 min",
        "90 min",
        "25 h",
        "3 d",
    ]


def test_an_interval_under_a_minute_is_judged_like_a_window() -> None:
    """Averages over less than a minute are as noisy as a window: the window's limits judge them."""
    h = host("h1")
    short = replace(h, snapshot=snap(fails=100 + 820, rsts=200 + 820, uptime=1020.0))  # 41/s over 20 s
    since = since_last_of(short, previous(snap()), DEFAULT_INTERVAL_THRESHOLDS)
    assert isinstance(since, SinceLast) and since.tripped == (), "41/s is under the window's 50/s"
    storm = replace(h, snapshot=snap(fails=100 + 900, rsts=200 + 900, uptime=1008.0))  # 112.5/s over 8 s
    since = since_last_of(storm, previous(snap()), DEFAULT_INTERVAL_THRESHOLDS)
    assert isinstance(since, SinceLast) and {(t.level, t.limit) for t in since.tripped} == {("warning", 50.0)}
    long = replace(h, snapshot=snap(fails=100 + 2460, rsts=200 + 2460, uptime=1060.0))  # 41/s over 60 s
    since = since_last_of(long, previous(snap()), DEFAULT_INTERVAL_THRESHOLDS)
    assert isinstance(since, SinceLast) and {t.limit for t in since.tripped} == {10.0}
