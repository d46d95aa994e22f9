"""Audits of a real fleet (network namespaces, one real sshd each), recorded and read back.

Every sweep here is the real CLI over real SSH, recording into a real SQLite file; the resets are real
(connects to a closed port inside one namespace).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from fleetrst.history.store import HistoryStore
from fleetrst.testing import TestFleet
from tests.helpers import run_cli

pytestmark = pytest.mark.fleet

WINDOW = "1"


@pytest.fixture(scope="module")
def fleet(make_fleet: object) -> Iterator[TestFleet]:
    yield make_fleet(3, {"web": ["h001", "h002"]})  # type: ignore[operator]


def sweep(
    fleet: TestFleet, db: Path, env: dict[str, str], cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "sweep", "-i", str(fleet.inventory_path), "--window", WINDOW, "--db", str(db), *args, env=env, cwd=cwd
    )


def test_recorded_sweeps_are_read_back_and_a_host_resetting_from_the_third_audit_is_new(
    fleet: TestFleet, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    db = tmp_path / "h.sqlite"
    for _ in range(2):
        assert sweep(fleet, db, cli_env, tmp_path).returncode == 0
    with fleet.closed_port_storm("h002", rate=100, duration=10):
        third = sweep(fleet, db, cli_env, tmp_path, "-o", "prometheus")
    assert third.returncode == 1, third.stderr
    families = {f.name: f for f in text_string_to_metric_families(third.stdout)}
    status = {s.labels["host"]: s.value for s in families["fleetrst_host_status"].samples}
    assert status == {"h001": 0, "h002": 1, "h003": 0}
    sent = {s.labels["host"]: s.value for s in families["fleetrst_host_resets_sent_per_second"].samples}
    assert sent["h002"] > 50 and sent["h001"] < 5

    hist = run_cli("history", "--db", str(db), "-o", "json", env=cli_env, cwd=tmp_path)
    assert hist.returncode == 0, hist.stderr
    trends = {t["host"]: t for t in json.loads(hist.stdout)}
    assert set(trends) == {"h001", "h002", "h003"}
    assert trends["h002"]["audits"] == 3 and trends["h002"]["tripped"] == 1
    assert trends["h002"]["last"] == trends["h002"]["max"] > 50 and trends["h002"]["min"] < 5
    assert trends["h001"]["tripped"] == 0 and trends["h001"]["last_status"] == "ok"
    table = run_cli("history", "web", "--db", str(db), "--since", "1h", env=cli_env, cwd=tmp_path)
    assert table.returncode == 0 and "h002" in table.stdout and "h003" not in table.stdout

    rep = run_cli("report", "--db", str(db), env=cli_env, cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    new = rep.stdout.split("New offenders in the latest audit")[1].split("Recovered")[0]
    assert "h002  WARNING  resets_" in new and "(was OK at " in new
    assert "h001" not in new and "h003" not in new
    assert rep.stdout.startswith("3 audits of 3 hosts")

    with HistoryStore.open(db) as store:
        sweeps = store.sweeps()
    assert [s.exit_code for s in sweeps] == [0, 0, 1]
    assert sweeps[0].inventories == (str(fleet.inventory_path),) and sweeps[0].window_s == 1.0


def test_kill_9_during_a_sweep_loses_no_earlier_audit(
    fleet: TestFleet, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    db = tmp_path / "h.sqlite"
    for _ in range(2):
        assert sweep(fleet, db, cli_env, tmp_path).returncode == 0
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleetrst.cli",
            "sweep",
            "-i",
            str(fleet.inventory_path),
            "--window",
            "5",
            "--db",
            str(db),
        ],
        env=cli_env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(2.5)  # connected, the hosts sleeping their window; the lock held
    assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL

    with HistoryStore.open(db) as store:
        assert store.integrity_check() == "ok"
        assert len(store.sweeps()) == 2 and len(store.host_rows()) == 6
    hist = run_cli("history", "--db", str(db), "-o", "json", env=cli_env, cwd=tmp_path)
    assert hist.returncode == 0 and all(t["audits"] == 2 for t in json.loads(hist.stdout))
    # the killed run's lock died with it: the next run records at once
    assert sweep(fleet, db, cli_env, tmp_path).returncode == 0
    assert sqlite3.connect(db).execute("SELECT count(*) FROM sweeps").fetchone() == (3,)


def test_netdata_history_flags_a_spike_not_a_host_that_always_resets(
    fleet: TestFleet, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    db = tmp_path / "h.sqlite"
    with fleet.closed_port_storm("h003", rate=80, duration=30):  # h003 always resets ~80/s
        for _ in range(3):
            fixed = sweep(fleet, db, cli_env, tmp_path, "-o", "json")
            assert fixed.returncode == 1, "above the fixed 50/s warning"
        with fleet.closed_port_storm("h001", rate=100, duration=10):  # h001: new, sudden
            judged = sweep(fleet, db, cli_env, tmp_path, "-o", "json", "--rules", "netdata-history")
    doc = json.loads(judged.stdout)
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert hosts["h003"]["status"] == "ok", "its own median (~80/s) puts its limit near 800/s"
    assert hosts["h001"]["status"] == "warning"
    assert {t["rule"] for t in hosts["h001"]["tripped"]} == {"spike"}
    assert all(t["baseline"] < 5 for t in hosts["h001"]["tripped"])
    assert judged.returncode == 1
    with HistoryStore.open(db) as store:
        assert [s.rules for s in store.sweeps()] == ["threshold"] * 3 + ["netdata-history"]


def test_an_interrupted_sweep_is_recorded_with_what_finished(
    fleet: TestFleet, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    inv = tmp_path / "inv.yml"
    doc = yaml.safe_load(fleet.inventory_path.read_text())
    doc["all"]["children"]["fleet"]["hosts"]["refused"] = {
        "ansible_host": fleet.host("h001").address,
        "ansible_port": 2222,
    }
    inv.write_text(yaml.safe_dump(doc))
    db = tmp_path / "h.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetrst.cli", "sweep", "-i", str(inv), "--window", "4", "--db", str(db)],
        env=cli_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    with HistoryStore.open(db) as store:
        [recorded] = store.sweeps()
        statuses = {r.host: r.status for r in store.host_rows()}
    assert recorded.interrupted_by == "SIGTERM" and recorded.exit_code == 143
    assert statuses == {
        "refused": "unreachable",
        "h001": "interrupted",
        "h002": "interrupted",
        "h003": "interrupted",
    }
