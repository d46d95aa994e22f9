"""Thousands of hosts, proven small on the real fleet: honest deadlines, forks that are not Ansible's, and
``--procs`` (worker processes) giving what one process gives, stopping as one process stops.

One fleet of 14 hosts (namespaces, a real sshd each): h001..h010 log in slowly (their sshd asks an
AuthorizedKeysCommand that sleeps; a login asks it about three times, so it takes ~1 s), h011..h014
as usual, h012 under a closed-port storm.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetrst.testing import TestFleet
from tests.conftest import MakeFleet

pytestmark = pytest.mark.fleet

SLOW = [f"h{n:03}" for n in range(1, 11)]
QUICK = ["h011", "h012", "h013", "h014"]
STORM = "h012"
LOGIN_DELAY_S = 0.3  # a login: ~1 s


@pytest.fixture(scope="module")
def fleet(make_fleet: MakeFleet) -> Iterator[TestFleet]:
    fleet = make_fleet(14, {"slow": SLOW, "quick": QUICK})
    for name in SLOW:
        fleet.slow_login(name, LOGIN_DELAY_S)
    with fleet.closed_port_storm(STORM, rate=100, duration=300):
        yield fleet


def sweep(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, command: str = "sweep"
) -> tuple[int, dict[str, Any], str]:
    history = ("--no-history",) if command == "sweep" else ()  # investigate keeps none
    proc = subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", command, "-o", "json", *history, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=False,
    )
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def verdicts(doc: dict[str, Any]) -> dict[str, tuple[str, str | None, tuple[str, ...]]]:
    return {
        h["host"]: (h["status"], h["error"], tuple(sorted(t["metric"] for t in h["tripped"])))
        for h in doc["hosts"]
    }


def test_hosts_queued_behind_slow_logins_are_all_measured_with_a_timeout_shorter_than_the_queue(
    fleet: TestFleet,
) -> None:
    # Ten logins of ~1 s, two at a time: the handshake queue takes ~5 s, more than a host's whole
    # budget (window 1 s + timeout 2 s). Each host's clock starts with its own turn, so all are
    # measured; with the budget counted from the start of the sweep, the last ones timed out.
    code, doc, err = sweep(
        "-i", str(fleet.inventory_path), "slow", "--window", "1", "--timeout", "2", "--handshakes", "2"
    )
    assert code == 0, err
    assert {h["host"]: h["status"] for h in doc["hosts"]} == dict.fromkeys(SLOW, "ok")
    assert doc["duration_s"] > 1.0 + 2.0 + 1.0, "the queue was longer than a host's budget"
    for host in doc["hosts"]:
        assert 1.0 + 2 * LOGIN_DELAY_S < host["elapsed_s"] < 1.0 + 2.0, host


def test_ansible_cfgs_forks_do_not_throttle_a_sweep_and_f_still_caps(
    fleet: TestFleet, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    (tmp_path / "ansible.cfg").write_text("[defaults]\nforks = 1\n")  # meant for Ansible's processes
    args = ("-i", str(fleet.inventory_path), "quick", "--window", "1")
    code, doc, err = sweep(*args, cwd=tmp_path, env=cli_env)
    assert code == 1, err  # h012's storm: a warning
    assert doc["duration_s"] < 3.0, "all four hosts in one window, not one after another (4 s)"
    code, capped, err = sweep(*args, "-f", "1", cwd=tmp_path, env=cli_env)
    assert capped["duration_s"] > 4.0, "-f 1: one host at a time, four windows"
    assert verdicts(capped) == verdicts(doc)


def test_two_processes_give_each_host_the_verdict_one_process_gives(fleet: TestFleet, tmp_path: Path) -> None:
    doc = yaml.safe_load(fleet.inventory_path.read_text())
    hosts = doc["all"]["children"]["fleet"]["hosts"]
    hosts["closed"] = {"ansible_host": fleet.host("h013").address, "ansible_port": 2200}  # refused
    inventory = tmp_path / "inv.yml"
    inventory.write_text(yaml.safe_dump(doc))
    args = ("-i", str(inventory), "quick:closed", "--window", "1")
    code_one, one, _ = sweep(*args, "--procs", "1")
    code_two, two, err = sweep(*args, "--procs", "2")
    assert verdicts(two) == verdicts(one), err
    assert verdicts(two)[STORM] == ("warning", None, ("resets_received", "resets_sent"))
    assert verdicts(two)["closed"][0] == "unreachable"
    assert code_two == code_one == 1


def test_investigate_on_two_processes_finds_what_one_process_finds(fleet: TestFleet) -> None:
    args = ("-i", str(fleet.inventory_path), "quick", "--window", "1", "--capture", "1")

    def found(doc: dict[str, Any]) -> dict[str, tuple[str, tuple[str, ...]]]:
        return {
            h["host"]: (h["status"], tuple(c["cause"] for c in h["investigation"]["causes"]))
            for h in doc["hosts"]
        }

    code_one, one, _ = sweep(*args, "--procs", "1", command="investigate")
    code_two, two, err = sweep(*args, "--procs", "2", command="investigate")
    assert found(two) == found(one), err
    assert found(two)[STORM] == ("warning", ("closed_port",)), "the storm's cause, found on a worker"
    assert code_two == code_one == 1


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def test_ctrl_c_with_two_processes_stops_promptly_keeps_finished_hosts_and_leaves_no_worker(
    fleet: TestFleet, tmp_path: Path
) -> None:
    doc = yaml.safe_load(fleet.inventory_path.read_text())
    doc["all"]["children"]["fleet"]["hosts"]["h014"]["ansible_port"] = 2200  # refused at once
    inventory = tmp_path / "inv.yml"
    inventory.write_text(yaml.safe_dump(doc))
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "fleetrst.cli", "sweep", "-i", str(inventory), "quick", "-o", "json"),
            *("--window", "20", "--procs", "2", "--no-history"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    time.sleep(2.0)  # the workers are up, sleeping the window on three hosts; h014 refused
    workers = _children(proc.pid)
    assert len(workers) == 2, workers
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group gets it
    out, err = proc.communicate(timeout=20)
    took = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert took < 2.5, f"stopped {took:.2f}s after Ctrl-C"
    result = json.loads(out)
    hosts = {h["host"]: h for h in result["hosts"]}
    assert result["interrupted_by"] == "SIGINT"
    assert hosts["h014"]["status"] == "unreachable", "a host that finished keeps its result"
    for name in ("h011", "h012", "h013"):
        assert hosts[name]["status"] == "interrupted"
        assert hosts[name]["error"] == "interrupted by SIGINT before this host finished"
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} was left behind"
    time.sleep(0.5)
    leftover = fleet.run_in("h011", ["pgrep", "-u", fleet.user, "-f", "sleep 20"])
    assert leftover.stdout.strip() == "", "the remote probe was left running"
