"""A watch's events in the history database: migration 2, ``record_events``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fleetrst.history import store as history
from fleetrst.history.store import HistoryStore
from fleetrst.measure.alarms import WatchEvent

EVENTS = [
    WatchEvent(
        "raised", "h002", 1_795_000_000.5, ("fleet", "web"), "resets_sent", "critical", "ok", 312.5, 250.0
    ),
    WatchEvent("lost", "h003", 1_795_000_001.0, ("fleet",), error="connection refused", error_kind="refused"),
    WatchEvent("back", "h003", 1_795_000_013.0, ("fleet",), down_s=12.0),
]


def test_events_are_recorded_as_they_were_reported(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path / "h.sqlite") as store:
        assert store.record_events([], 1.0) == 0
        assert store.record_events(EVENTS, 1_794_999_990.0) == 3
    db = sqlite3.connect(tmp_path / "h.sqlite")
    rows = db.execute(
        "SELECT ts, at, event, host, groups, metric, level, previous, value, limit_value, error, error_kind,"
        " down_s, watch_started_ts FROM events ORDER BY id"
    ).fetchall()
    db.close()
    assert rows[0] == (
        1_795_000_000.5,
        "2026-11-18T11:06:40.500+00:00",
        "raised",
        "h002",
        '["fleet", "web"]',
        "resets_sent",
        "critical",
        "ok",
        312.5,
        250.0,
        None,
        None,
        None,
        1_794_999_990.0,
    )
    assert rows[1][2:4] == ("lost", "h003") and rows[1][10:12] == ("connection refused", "refused")
    assert rows[2][12] == 12.0


def test_a_history_from_before_watch_gets_the_events_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "h.sqlite"
    with monkeypatch.context() as m:
        m.setattr(history, "MIGRATIONS", history.MIGRATIONS[:1])
        with HistoryStore.open(path) as store:
            assert store.version == 1
    with HistoryStore.open(path) as store:
        assert store.version == len(history.MIGRATIONS)
        assert store.record_events(EVENTS[:1], 0.0) == 1
