"""The store keeps each host's last sample (raw counters, boot_id, uptime, namespace) and the counts
since its previous audit, and reads them back exactly."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.history import counters as stored
from fleetrst.history import store as history
from fleetrst.history.store import HistoryStore
from fleetrst.measure.counters import GAUGES
from fleetrst.model import SinceLast, SinceLastMissing
from tests.helpers import examples

from .simulate import SimHost, audit

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@examples(300)
@given(st.lists(st.integers(0, 2**64 - 1), max_size=200))
def test_counters_are_stored_as_varints_and_read_back_exactly(values: list[int]) -> None:
    data = stored.encode(values)
    assert stored.decode(data, len(values)) == values
    assert len(data) <= sum(max(1, (v.bit_length() + 6) // 7) for v in values)


def test_damaged_counters_are_an_error_not_numbers() -> None:
    with pytest.raises(stored.CorruptCounters):
        stored.decode(b"\x81\x82", 1)  # ends mid-value
    with pytest.raises(stored.CorruptCounters):
        stored.decode(stored.encode([1, 2, 3]), 4)


def test_the_last_sample_is_read_back_as_it_was_taken(tmp_path: Path) -> None:
    h = SimHost("h001")
    with HistoryStore.open(tmp_path / "h.sqlite") as store:
        rep = audit(store, [h, SimHost("h002", boot="not-a-uuid-boot-id")], T0, unreachable=("h002",))
        samples = store.last_samples(["h001", "h002", "h003"])
    assert set(samples) == {"h001"}, "an unmeasured host and an unknown one have no sample"
    got, taken = samples["h001"], rep.hosts[0].snapshot
    assert taken is not None
    assert got.started_at == rep.started_at and got.snapshot.boot_id == taken.boot_id
    assert got.snapshot.uptime_s == taken.uptime_s and got.snapshot.netns is None
    assert got.snapshot.tcp == {k: v for k, v in taken.tcp.items() if k not in GAUGES}, "gauges are not kept"
    assert got.snapshot.tcpext == taken.tcpext


def test_a_boot_id_that_is_not_a_uuid_and_a_namespace_identity_are_kept_as_text(tmp_path: Path) -> None:
    from dataclasses import replace

    h = SimHost("h001", boot="not-a-uuid")
    with HistoryStore.open(tmp_path / "h.sqlite") as store:
        first = audit(store, [h], T0)
        snap = first.hosts[0].snapshot
        assert snap is not None
        withns = replace(
            first, hosts=(replace(first.hosts[0], snapshot=replace(snap, netns="4026532301:812:4400")),)
        )
        store.record(replace(withns, started_at=(T0 + timedelta(minutes=5)).isoformat()), 0)
        got = store.last_samples(["h001"])["h001"].snapshot
    assert (got.boot_id, got.netns) == ("not-a-uuid", "4026532301:812:4400")


def test_each_audit_counts_since_the_hosts_previous_one_and_the_history_keeps_it(tmp_path: Path) -> None:
    hosts = [SimHost("h001"), SimHost("h002")]
    with HistoryStore.open(tmp_path / "h.sqlite") as store:
        first = audit(store, hosts, T0)
        hosts[1].happen(290, received=12_300, sent=12_310)  # a storm between the audits, on h002 only
        hosts[0].happen(290)
        second = audit(store, hosts, T0 + timedelta(minutes=5))
        rows = {(r.sweep_id, r.host): r for r in store.host_rows()}
    assert all(isinstance(h.since_last, SinceLastMissing) for h in first.hosts)
    assert {h.since_last.reason for h in first.hosts if isinstance(h.since_last, SinceLastMissing)} == {
        "first_audit"
    }
    storm = second.hosts[1]
    assert storm.status == "ok", "its window was quiet"
    assert isinstance(storm.since_last, SinceLast)
    assert storm.since_last.counts["resets_sent"] == 12_310 and storm.since_last.interval_s == 300.0
    assert storm.interval_level == "warning" and storm.tripped_between_only
    assert second.exit_code == 1, "a trip between audits counts in the exit code"
    row = rows[(2, "h002")]
    assert row.since_counts == {"resets_received": 12_300, "resets_sent": 12_310}
    assert (
        row.since_s == 300.0
        and row.since_from_ts == T0.timestamp()
        and row.since_rate("resets_sent") == 12_310 / 300
    )
    assert row.quiet_but_tripped_between and row.since_tripped[0]["metric"] == "resets_received"
    assert rows[(1, "h002")].since_counts is None and rows[(1, "h002")].since_reason == "first_audit"
    assert rows[(2, "h001")].since_counts == {}, "counted, and nothing happened"


def test_an_unreachable_audit_in_between_does_not_lose_the_interval(tmp_path: Path) -> None:
    h = SimHost("h001")
    with HistoryStore.open(tmp_path / "h.sqlite") as store:
        audit(store, [h], T0)
        h.happen(295, sent=500)
        missed = audit(store, [h], T0 + timedelta(minutes=5), unreachable=("h001",))
        h.happen(300, sent=700)
        back = audit(store, [h], T0 + timedelta(minutes=10))
    assert isinstance(missed.hosts[0].since_last, SinceLastMissing)
    since = back.hosts[0].since_last
    assert (
        isinstance(since, SinceLast)
        and since.counts["resets_sent"] == 1200
        and since.from_at == T0.isoformat()
    )


def test_a_reboot_between_audits_gives_no_interval(tmp_path: Path) -> None:
    h = SimHost("h001")
    with HistoryStore.open(tmp_path / "h.sqlite") as store:
        audit(store, [h], T0)
        h.boot, h.uptime = "11111111-2222-4333-8444-555555555555", 30.0
        h.tcp = {k: (v if k in GAUGES else 0) for k, v in h.tcp.items()}
        rebooted = audit(store, [h], T0 + timedelta(minutes=5))
        [row] = [r for r in store.host_rows() if r.sweep_id == 2]
    since = rebooted.hosts[0].since_last
    assert isinstance(since, SinceLastMissing) and since.reason == "rebooted"
    assert row.since_counts is None and row.since_reason == "rebooted"


V1_SWEEP = (
    "INSERT INTO sweeps VALUES (1, '2026-11-20T09:00:00+00:00', 1795165200.0, 2.2, 2.0, NULL, 'all', NULL,"
    " '[]', 'threshold', 0, NULL, 1, 1, 0, 0, 0, 0, 0, '0.1.0')"
)
V1_HOST = (
    "INSERT INTO host_results VALUES (1, 'h001', '10.0.0.1', '[\"fleet\"]', 'ok', NULL, NULL, 2.0,"
    " 3.0, 3.0, 0.0, 0.0, 0.0, '{\"resets_sent\": 3.0}', '[]', NULL, 2.1)"
)


def test_a_history_of_the_first_schema_is_taken_forward_and_keeps_what_it_had(tmp_path: Path) -> None:
    """A file as the first released schema wrote it (version 1, its own INSERTs) opens, migrates, and
    its audit reads back; the next audit of the host is a first one (no counters were kept)."""
    path = tmp_path / "h.sqlite"
    db = sqlite3.connect(path)
    for statement in history._statements(history.MIGRATIONS[0]):
        db.execute(statement)
    db.execute(V1_SWEEP)
    db.execute(V1_HOST)
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with HistoryStore.open(path) as store:
        assert store.version == history.schema_version()
        [row] = store.host_rows()
        assert row.rate("resets_sent") == 3.0 and row.since_counts is None and row.since_reason is None
        assert store.last_samples(["h001"]) == {}, "an old audit kept no counters: the next one is a first"
        first = audit(store, [SimHost("h001")], T0)
        assert isinstance(first.hosts[0].since_last, SinceLastMissing)
        assert set(store.last_samples(["h001"])) == {"h001"}
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_the_window_rates_are_kept_as_counts_and_read_back_exactly(tmp_path: Path) -> None:
    h = SimHost("h001")
    with HistoryStore.open(tmp_path / "h.sqlite") as store:
        rep = audit(store, [h], T0, storm={"h001": (1234, 987)})
        [row] = store.host_rows()
        [[stored_rates, window]] = store._db.execute(
            "SELECT rates, window_counts FROM host_results"
        ).fetchall()
    rates = rep.hosts[0].rates
    assert rates is not None and row.rates is not None
    assert stored_rates is None and len(window) < 40, "a few bytes a moving counter, no JSON"
    assert row.rates == pytest.approx({k: v for k, v in rates.per_second.items() if v})
    assert row.rate("resets_sent") == pytest.approx(98.7) and row.rate("InErrs") == 0.0


@examples(200)
@given(
    st.dictionaries(
        st.sampled_from(["AttemptFails", "OutRsts", "InSegs", "ListenDrops", "X9"]), st.integers(0, 10**9)
    )
)
def test_window_counts_give_back_every_rate(counts: dict[str, int]) -> None:
    layout: stored.Layout = (("AttemptFails", "OutRsts", "InSegs"), ("ListenDrops", "X9"))
    interval = 9.87
    per_second = {k: v / interval for k, v in counts.items()}
    back = stored.decode_window(layout, stored.encode_window(layout, per_second, interval), interval)
    expected = {k: v for k, v in per_second.items() if v}
    expected |= {
        f: expected[k]
        for f, k in (
            ("resets_received", "AttemptFails"),
            ("resets_sent", "OutRsts"),
            ("listen_drops", "ListenDrops"),
        )
        if k in expected
    }
    assert back == pytest.approx(expected)


def test_every_named_count_has_a_place_in_the_stored_order() -> None:
    from fleetrst.measure.counters import NAMED_RATES

    assert set(NAMED_RATES) <= set(stored.NAMED_ORDER), "a new named rate is appended to NAMED_ORDER"
    assert stored.NAMED_ORDER[:2] == ("resets_received", "resets_sent"), "the order is a storage format"
    counts = {"resets_sent": 12_310, "challenge_acks": 5, "resets_received": 0}
    assert stored.decode_named(stored.encode_named(counts)) == {"resets_sent": 12_310, "challenge_acks": 5}
    assert stored.encode_named({}) == b"" and stored.decode_named(b"") == {}
