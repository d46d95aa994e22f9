"""The history store: what a sweep leaves behind, and that nothing breaks it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fleetrst.history import store as history
from fleetrst.history.store import HistoryError, HistoryStore
from fleetrst.investigate.result import CauseResult, Evidence, Investigation, Listener, Process, ProcessRef
from tests.helpers import host, report


def test_a_sweep_and_every_host_are_read_back(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path / "h.sqlite") as store:
        sweep_id = store.record(
            report(
                [host("h001"), host("h002", "warning", sent=120.0), host("h003", "unreachable")],
                pattern="web",
                inventories=("inv.yml",),
            ),
            exit_code=1,
        )
        [sweep] = store.sweeps()
        rows = {r.host: r for r in store.host_rows()}
    assert sweep.id == sweep_id and sweep.exit_code == 1 and sweep.pattern == "web"
    assert sweep.inventories == ("inv.yml",)
    assert sweep.counts == {
        "hosts": 3,
        "ok": 1,
        "warning": 1,
        "critical": 0,
        "unreachable": 1,
        "error": 0,
        "interrupted": 0,
    }
    assert rows["h002"].status == "warning" and rows["h002"].rate("resets_sent") == 120.0
    assert rows["h002"].tripped[0]["metric"] == "resets_sent"
    assert rows["h001"].rate("estab_resets") == 0.0, "a rate not stored was 0"
    assert rows["h003"].rates is None and rows["h003"].error == "no route"


def test_the_file_is_private_and_its_directory_too(tmp_path: Path) -> None:
    path = tmp_path / "state" / "fleetrst" / "history.sqlite"
    old = os.umask(0o022)
    try:
        with HistoryStore.open(path) as store:
            store.record(report([host("h001")]), 0)
            wal = Path(f"{path}-wal")
            assert wal.exists(), "write-ahead log mode"
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600, "SQLite gives the WAL the database's mode"
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_only_causes_of_an_investigation_are_kept_never_command_lines(tmp_path: Path) -> None:
    investigation = Investigation(
        causes=(
            CauseResult(
                "closed_port",
                "nothing listens on 5432",
                "start the service",
                5432,
                (ProcessRef(9, "psql --password=swordfish", 5432),),
                Evidence({"resets_sent": 90.0}, {"listener": "10.0.0.1:5432 by svc --token=opensesame"}),
            ),
            CauseResult("half_open", "segments for forgotten connections", "look for a middlebox"),
        ),
        processes=(ProcessRef(7, "mysql -uroot -phunter2", 3306),),
        listeners=(Listener("0.0.0.0", 3306, 0, 128, (Process(7, "mysql -uroot -phunter2"),)),),
    )
    path = tmp_path / "h.sqlite"
    with HistoryStore.open(path) as store:
        store.record(report([replace(host("h001", "warning", sent=90), investigation=investigation)]), 1)
        [row] = store.host_rows()
        [[causes]] = store._db.execute("SELECT causes FROM host_results").fetchall()
    assert row.causes == ("closed_port", "half_open")
    assert json.loads(causes)[0] == {
        "cause": "closed_port",
        "summary": "nothing listens on 5432",
        "port": 5432,
        "next_step": "start the service",
    }, "a cause's name, summary, port and next step: nothing else"
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"nothing listens on 5432" in raw
    assert b"hunter2" not in raw and b"swordfish" not in raw and b"opensesame" not in raw


def test_a_recorded_cause_is_read_back_by_its_name_only(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    with HistoryStore.open(path) as store:
        store.record(report([host("h001", "warning", sent=90)]), 1)
        store._db.execute(
            "UPDATE host_results SET causes = ?",
            (json.dumps([{"cause": "closed_port", "summary": "s"}, {"summary": "edited by hand"}]),),
        )
        [row] = store.host_rows()
    assert row.causes == ("closed_port", '{"summary": "edited by hand"}')


def test_an_interrupted_sweep_is_recorded_with_what_finished(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path / "h.sqlite") as store:
        store.record(report([host("h001"), host("h002", "interrupted")], interrupted_by="SIGTERM"), 143)
        [sweep] = store.sweeps()
        statuses = {r.host: r.status for r in store.host_rows()}
    assert sweep.interrupted_by == "SIGTERM" and sweep.exit_code == 143
    assert statuses == {"h001": "ok", "h002": "interrupted"}


def test_the_schema_migrates_forward_and_keeps_what_was_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "h.sqlite"
    with HistoryStore.open(path) as store:
        assert store.version == history.schema_version() == len(history.MIGRATIONS)
        store.record(report([host("h001", sent=3.0)]), 0)
    # A later fleetrst adds a migration: the old file is taken forward on open, its data intact.
    monkeypatch.setattr(
        history, "MIGRATIONS", [*history.MIGRATIONS, "ALTER TABLE sweeps ADD COLUMN note TEXT"]
    )
    with HistoryStore.open(path) as store:
        assert store.version == len(history.MIGRATIONS)
        assert [r.rate("resets_sent") for r in store.host_rows()] == [3.0]
        store.record(report([host("h001")]), 0)
        assert len(store.sweeps()) == 2


def test_a_database_from_a_newer_fleetrst_is_refused_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    HistoryStore.open(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    known = history.schema_version()
    with pytest.raises(HistoryError, match=rf"schema version 99, newer than this fleetrst knows \({known}\)"):
        HistoryStore.open(path)


def test_a_file_that_is_not_a_database_gets_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    path.write_text("not sqlite\n" * 100)
    with pytest.raises(HistoryError, match="is not a usable fleetrst history database"):
        HistoryStore.open(path)
    with pytest.raises(HistoryError, match="no history at"):
        HistoryStore.open(tmp_path / "missing.sqlite", create=False)


def test_baselines_come_from_each_hosts_latest_audits(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path / "h.sqlite") as store:
        for i, sent in enumerate([100.0, 1.0, 2.0, 3.0]):
            store.record(
                report(
                    [host("h001", sent=sent), host("h002", "unreachable")],
                    started_at=f"2026-11-20T10:0{i}:00+00:00",
                ),
                0,
            )
        recent = store.recent_rates(["h001", "h002", "h009"], ["resets_sent"], 3)
    assert recent == {"h001": [{"resets_sent": 3.0}, {"resets_sent": 2.0}, {"resets_sent": 1.0}]}, (
        "the latest three measured audits only; unmeasured and unknown hosts have none"
    )


WRITER = textwrap.dedent(
    """
    import sys
    from fleetrst.history.store import HistoryStore
    from tests.helpers import host, report
    hosts = [host(f"h{i:04d}", sent=float(i)) for i in range(300)]
    with HistoryStore.open(sys.argv[1]) as store:
        print("ready", flush=True)
        while True:
            store.record(report(hosts), 0)
    """
)


def test_kill_9_while_writing_leaves_every_committed_sweep_whole(tmp_path: Path) -> None:
    """A writer recording 300-host sweeps as fast as it can is killed with SIGKILL at arbitrary moments
    (mid-transaction, most likely); each time the file opens, passes SQLite's integrity check, and
    every sweep in it has all of its 300 hosts: a sweep is all there or not there at all."""
    path = tmp_path / "h.sqlite"
    root = Path(__file__).resolve().parents[2]
    seen = 0
    for delay in (0.3, 0.45, 0.6, 0.75):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=root, stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with HistoryStore.open(path) as store:
            assert store.integrity_check() == "ok"
            sweeps = store.sweeps()
            per_sweep = store._db.execute(
                "SELECT sweep_id, count(*) FROM host_results GROUP BY sweep_id"
            ).fetchall()
        assert len(sweeps) >= seen, "no committed sweep is ever lost"
        assert {n for _, n in per_sweep} <= {300} and len(per_sweep) == len(sweeps)
        seen = len(sweeps)
    assert seen > 4, "the writer committed sweeps between the kills"
