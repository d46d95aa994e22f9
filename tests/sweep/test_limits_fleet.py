"""Limits and recovery on the real fleet: sshd's MaxStartups, the open-file limit, SIGINT and SIGTERM."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetrst.testing import TestFleet, require_fleet_support

pytestmark = pytest.mark.fleet


@pytest.fixture(scope="module")
def fleet() -> Iterator[TestFleet]:
    require_fleet_support()
    with TestFleet(n_hosts=3) as f:
        yield f


def _aliases(fleet: TestFleet, path: Path, count: int) -> Path:
    """An inventory of ``count`` names that all dial h001's one sshd."""
    doc = yaml.safe_load(fleet.inventory_path.read_text())
    group = doc["all"]["children"]["fleet"]
    address = fleet.host("h001").address
    group["hosts"] = {f"alias{i:03d}": {"ansible_host": address} for i in range(count)}
    path.write_text(yaml.safe_dump(doc))
    return path


def _sweep(*args: str, limits: tuple[int, int] | None = None) -> tuple[int, dict[str, Any], str]:
    def preexec() -> None:
        if limits:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)

    proc = subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", "sweep", "-o", "json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=preexec,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def test_many_hosts_behind_one_sshd_are_not_dropped_by_maxstartups(fleet: TestFleet, tmp_path: Path) -> None:
    # sshd's MaxStartups 10:30:100 drops unauthenticated connections at random past 10; fleetrst keeps
    # at most 8 handshakes per address (and retries one dropped handshake once).
    inventory = _aliases(fleet, tmp_path / "aliases.yml", 60)
    code, doc, err = _sweep("-i", str(inventory), "--window", "1", "--timeout", "20")
    statuses = [h["status"] for h in doc["hosts"]]
    assert statuses.count("ok") == 60, (err, [h["error"] for h in doc["hosts"] if h["error"]])
    assert code == 0


def test_a_low_open_file_limit_is_raised_to_what_the_sweep_needs(fleet: TestFleet, tmp_path: Path) -> None:
    inventory = _aliases(fleet, tmp_path / "aliases.yml", 40)
    # soft 40: too few for 40 sockets and the interpreter; the hard limit lets fleetrst raise it.
    code, doc, err = _sweep("-i", str(inventory), "--window", "1", "--timeout", "20", limits=(40, 4096))
    assert code == 0 and doc["summary"]["ok"] == 40, err
    assert "open-file limit" not in err


def test_a_hard_limit_too_low_keeps_fewer_hosts_in_flight_and_says_so(
    fleet: TestFleet, tmp_path: Path
) -> None:
    inventory = _aliases(fleet, tmp_path / "aliases.yml", 40)
    code, doc, err = _sweep("-i", str(inventory), "--window", "1", "--timeout", "20", limits=(40, 300))
    assert "open-file limit (ulimit -n, hard 300) allows 14 hosts in flight, not 40" in err
    assert code == 0 and doc["summary"]["ok"] == 40, "slower, but every host measured"


@pytest.mark.parametrize(
    ("sig", "code", "name"), [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_a_signal_stops_the_sweep_promptly_and_keeps_what_finished(
    fleet: TestFleet, tmp_path: Path, sig: signal.Signals, code: int, name: str
) -> None:
    doc = yaml.safe_load(fleet.inventory_path.read_text())
    doc["all"]["children"]["fleet"]["hosts"]["h003"]["ansible_port"] = 2200  # refused at once
    inventory = tmp_path / "inv.yml"
    inventory.write_text(yaml.safe_dump(doc))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetrst.cli", "sweep", "-i", str(inventory), "-o", "json", "--window", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)  # connected and sleeping the window on h001, h002; h003 refused
    sent = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    took = time.monotonic() - sent
    assert proc.returncode == code, err
    assert took < 2.0, f"stopped {took:.2f}s after {name}"
    result = json.loads(out)
    hosts = {h["host"]: h for h in result["hosts"]}
    assert result["interrupted_by"] == name
    assert hosts["h003"]["status"] == "unreachable", "a host that finished keeps its result"
    for host in ("h001", "h002"):
        assert hosts[host]["status"] == "interrupted"
        assert hosts[host]["error"] == f"interrupted by {name} before this host finished"
    assert f"interrupted by {name}" in err
    # The remote side is cleaned up too: no probe left sleeping on the hosts.
    time.sleep(0.5)
    leftover = fleet.run_in("h001", ["pgrep", "-u", fleet.user, "-f", "sleep 20"])
    assert leftover.stdout.strip() == "", "the remote probe was left running"
