"""Cron-safe runs, through the command line on this machine (local connection): the run lock, -q,
quiet stderr, the textfile."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from fleetrst.cli.lock import RunLock
from tests.helpers import run_cli


def test_a_second_run_exits_3_at_once_while_another_holds_the_lock(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    db, lock = tmp_path / "h.sqlite", tmp_path / "audit.lock"
    with RunLock(lock, what="sweep 'all'"):
        started = time.monotonic()
        proc = run_cli(
            "sweep", "--window", "0.2", "--db", str(db), "--lock", str(lock), env=cli_env, cwd=tmp_path
        )
        assert time.monotonic() - started < 10
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert f"another fleetrst run holds {lock} (pid " in proc.stderr and "sweep 'all'" in proc.stderr
    assert "--lock-wait" in proc.stderr
    assert not db.exists() or sqlite3.connect(db).execute("SELECT count(*) FROM sweeps").fetchone() == (0,)


def test_lock_wait_waits_for_the_other_run(tmp_path: Path, cli_env: dict[str, str]) -> None:
    db, lock = tmp_path / "h.sqlite", tmp_path / "audit.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from fleetrst.cli.lock import RunLock; import pathlib, time\n"
            f"with RunLock(pathlib.Path('{lock}')):\n    print('held', flush=True); time.sleep(1.5)",
        ],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
    proc = run_cli(
        "sweep",
        "--window",
        "0.2",
        "--db",
        str(db),
        "--lock",
        str(lock),
        "--lock-wait",
        "20s",
        env=cli_env,
        cwd=tmp_path,
    )
    holder.wait()
    assert proc.returncode == 0, proc.stderr
    assert sqlite3.connect(db).execute("SELECT count(*) FROM sweeps").fetchone() == (1,)


def test_the_same_command_never_overlaps_itself_but_another_sweep_may_run(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    argv = [sys.executable, "-m", "fleetrst.cli", "sweep", "--window", "3", "-q"]
    first = subprocess.Popen(argv, env=cli_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.5)
    same = run_cli(*argv[3:], env=cli_env, cwd=tmp_path)
    other = run_cli("sweep", "--window", "0.2", "-q", env=cli_env, cwd=tmp_path)
    assert first.wait(timeout=30) == 0
    assert same.returncode == 3 and "another fleetrst run holds" in same.stderr
    assert other.returncode == 0, other.stderr


def test_quiet_prints_nothing_when_every_host_is_ok_and_nothing_on_stderr(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    proc = run_cli("sweep", "--window", "0.2", "-q", env=cli_env, cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    # the default history path, under XDG_STATE_HOME
    assert (tmp_path / "state" / "fleetrst" / "history.sqlite").exists()


def test_quiet_prints_the_hosts_that_are_not_ok(tmp_path: Path, cli_env: dict[str, str]) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text(
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n"
        "    gone:\n      ansible_host: 127.0.0.1\n      ansible_port: 1\n"
    )
    proc = run_cli(
        "sweep",
        "-i",
        str(inv),
        "--window",
        "0.2",
        "--timeout",
        "2",
        "-q",
        "--no-history",
        env=cli_env,
        cwd=tmp_path,
    )
    assert proc.returncode == 3
    assert "gone" in proc.stdout and "UNREACHABLE" in proc.stdout
    assert not any(line.startswith("here ") for line in proc.stdout.splitlines())


def test_the_textfile_is_written_for_node_exporter(tmp_path: Path, cli_env: dict[str, str]) -> None:
    prom = tmp_path / "fleetrst.prom"
    proc = run_cli(
        "sweep", "--window", "0.2", "--textfile", str(prom), "--no-history", env=cli_env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    names = {f.name for f in text_string_to_metric_families(prom.read_text())}
    assert {
        "fleetrst_host_up",
        "fleetrst_host_resets_sent_per_second",
        "fleetrst_sweep_duration_seconds",
    } <= names
    bad = run_cli(
        "sweep", "--window", "0.2", "--textfile", str(tmp_path / "x.txt"), env=cli_env, cwd=tmp_path
    )
    assert bad.returncode == 64 and "only *.prom" in bad.stderr


def test_netdata_history_rules_need_the_history(tmp_path: Path, cli_env: dict[str, str]) -> None:
    proc = run_cli("sweep", "--rules", "netdata-history", "--no-history", env=cli_env, cwd=tmp_path)
    assert proc.returncode == 64 and "drop --no-history" in proc.stderr


def test_reading_history_that_does_not_exist_says_so(tmp_path: Path, cli_env: dict[str, str]) -> None:
    proc = run_cli("history", "--db", str(tmp_path / "none.sqlite"), env=cli_env, cwd=tmp_path)
    assert proc.returncode == 64 and "no history at" in proc.stderr and "Traceback" not in proc.stderr
