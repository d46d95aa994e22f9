"""The investigation on the real fleet: real resets inside one namespace each, real sshd, real sudo.

h001 storms a closed port, h002 runs a server that aborts every connection (SO_LINGER 0) on port
9400, h003 a listener that never accepts on port 9401, flooded; h004 and h005 are quiet. The
generators run as the login user, so that an unprivileged ``ss -p`` sees their processes too.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetrst.testing import TestFleet

pytestmark = pytest.mark.fleet

ABORT_PORT, FLOOD_PORT = 9400, 9401
SUDO_COMMANDS = ("ss", "lsof", "tcpdump")


def fleetrst(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def sweep(fleet: TestFleet, *args: str) -> dict[str, dict[str, Any]]:
    proc = fleetrst("sweep", "-i", str(fleet.inventory_path), "--window", "1.5", "-o", "json", *args)
    assert proc.stdout, proc.stderr
    return {h["host"]: h for h in json.loads(proc.stdout)["hosts"]}


@contextlib.contextmanager
def sudoers(user: str, *, nopasswd: bool) -> Iterator[Path]:
    """A sudoers drop-in for ``user`` (the runbook's commands only), removed afterwards."""
    paths = ", ".join(shutil.which(c) or f"/usr/bin/{c}" for c in SUDO_COMMANDS)
    tag = "NOPASSWD: " if nopasswd else ""
    path = Path("/etc/sudoers.d") / f"fleetrst-investigate-test-{secrets.token_hex(4)}"
    tmp = path.with_name("." + path.name)  # sudo skips names with a dot while we write and check
    tmp.write_text(f"{user} ALL=(root) {tag}{paths}\n")
    os.chmod(tmp, 0o440)
    try:
        check = subprocess.run(["visudo", "-cf", str(tmp)], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        tmp.rename(path)
        yield path
    finally:
        for p in (tmp, path):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


@pytest.fixture(scope="module")
def fleet() -> Iterator[TestFleet]:
    with (
        TestFleet(n_hosts=5) as f,
        f.closed_port_storm("h001", rate=100, duration=120, user=f.user),
        f.aborting_server("h002", port=ABORT_PORT, rate=100, duration=120, user=f.user),
        f.listen_queue_flood("h003", port=FLOOD_PORT, duration=120, user=f.user),
    ):
        yield f


@pytest.fixture(scope="module")
def with_sudo(fleet: TestFleet) -> dict[str, dict[str, Any]]:
    """One sweep with -b (sudo allowed without a password) and a 2 s capture."""
    with sudoers(fleet.user, nopasswd=True):
        return sweep(fleet, "-b", "--capture", "2")


def test_quiet_hosts_are_not_investigated_under_auto(with_sudo: dict[str, dict[str, Any]]) -> None:
    for quiet in ("h004", "h005"):
        assert with_sudo[quiet]["status"] == "ok" and with_sudo[quiet]["investigation"] is None


def test_a_closed_port_storm_is_closed_port_and_the_capture_shows_its_port(
    fleet: TestFleet, with_sudo: dict[str, dict[str, Any]]
) -> None:
    inv = with_sudo["h001"]["investigation"]
    assert inv["become"]["ok"] and inv["privileged"], inv["unseen"]
    assert inv["causes"][0]["cause"] == "closed_port", inv["causes"]
    storm_port = next(h.port for h in fleet.load_handles() if h.kind == "closed-port-storm")
    flows = inv["capture"]["flows"]
    assert flows[0]["local_port"] == storm_port and flows[0]["count"] > 50, flows
    assert inv["causes"][0]["port"] == storm_port


def test_an_aborting_server_is_aborted_connection_with_its_pid_command_and_port(
    fleet: TestFleet, with_sudo: dict[str, dict[str, Any]]
) -> None:
    server = next(h for h in fleet.load_handles() if h.kind == "aborting-server")
    inv = with_sudo["h002"]["investigation"]
    cause = inv["causes"][0]
    assert cause["cause"] == "aborted_connection", inv["causes"]
    assert cause["port"] == ABORT_PORT
    assert {"pid": server.pid, "command": "aborting-server", "port": ABORT_PORT} in cause["processes"]
    assert {"pid": server.pid, "command": "aborting-server", "port": ABORT_PORT} in inv["processes"]
    assert all(c["cause"] != "closed_port" for c in inv["causes"]), "the RSTs are the aborts"


def test_a_flooded_listener_is_listen_queue_full_with_its_port(with_sudo: dict[str, dict[str, Any]]) -> None:
    inv = with_sudo["h003"]["investigation"]
    cause = inv["causes"][0]
    assert cause["cause"] == "listen_queue_full" and cause["port"] == FLOOD_PORT, inv["causes"]
    assert cause["processes"][0]["command"] == "stuck-listener"
    listener = next(lf for lf in inv["listeners"] if lf["port"] == FLOOD_PORT)
    assert listener["queue"] >= listener["backlog"]
    assert inv["states"].get("SYN-SENT", 0) > 10


def test_without_privileges_it_says_what_it_could_not_see(fleet: TestFleet) -> None:
    inv = sweep(fleet, "h003", "--capture", "1")["h003"]["investigation"]
    assert inv["causes"][0]["cause"] == "listen_queue_full", "own processes are visible without root"
    assert inv["capture"]["error"].startswith("tcpdump is not permitted"), inv["capture"]
    assert any("-b/--become" in u for u in inv["unseen"])


def test_sudo_that_wants_a_password_is_a_clear_finding(fleet: TestFleet) -> None:
    with sudoers(fleet.user, nopasswd=False):
        inv = sweep(fleet, "h003", "-b")["h003"]["investigation"]
    assert inv["become"]["ok"] is False
    assert inv["become"]["error"].startswith("sudo needs a password"), inv["become"]
    assert inv["causes"][0]["cause"] == "listen_queue_full", "the runbook went on unprivileged"


def test_investigate_command_reports_a_quiet_host_with_a_capture_and_saves_the_pcap(
    fleet: TestFleet, tmp_path: Path
) -> None:
    with sudoers(fleet.user, nopasswd=True):
        proc = fleetrst(
            "investigate",
            "h001:h004",
            "-i",
            str(fleet.inventory_path),
            "--window",
            "1",
            "--capture",
            "2",
            "-b",
            "--save-pcap",
            str(tmp_path),
            "--logs",
        )
    assert proc.returncode == 1, proc.stderr  # h001 warns
    text = proc.stdout
    assert "== h004" in text and "== h001" in text
    assert "closed_port" in text and "capture (2s)" in text
    pcap = tmp_path / "h001.pcap"
    data = pcap.read_bytes()
    assert data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4") and 24 < len(data) <= 256 * 1024
    read = subprocess.run(["tcpdump", "-nn", "-r", str(pcap)], capture_output=True, text=True, check=False)
    assert "Flags [R" in read.stdout
    assert (tmp_path / "h004.pcap").exists()
