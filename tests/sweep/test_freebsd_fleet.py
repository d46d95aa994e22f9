"""FreeBSD hosts in the real fleet, through a STAND-IN (no FreeBSD machine can run here).

h002 and h003 are the fleet's real hosts (own network namespace, own kernel counters, real sshd) made
FreeBSD stand-ins by :meth:`TestFleet.as_freebsd` (``fleetrst/testing/bsdhost.py`` says what that
is): their sessions see no ``/proc/net`` and FreeBSD's ``netstat``/``sysctl``/``sockstat``, which print
real published FreeBSD samples whose mapped counters follow the namespace's real kernel counters. h002
is a FreeBSD whose netstat speaks libxo JSON, h003 an older one with text only. h001 stays Linux.

The resets are real: a closed-port storm in h003's namespace must be found on h003 alone, as FreeBSD's
``tcps_conndrops`` (Netdata's AttemptFails on FreeBSD), and the table, JSON and history treat the
stand-ins as any host.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleetrst.testing import TestFleet
from tests.conftest import MakeFleet

pytestmark = pytest.mark.fleet


@pytest.fixture(scope="module")
def fleet(make_fleet: MakeFleet) -> Iterator[TestFleet]:
    made = make_fleet(3, {"bsd": ["h002", "h003"]})
    made.as_freebsd("h002", libxo=True)
    made.as_freebsd("h003", libxo=False)
    yield made


def cli(fleet: TestFleet, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", *args, "-i", str(fleet.inventory_path)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ssh(fleet: TestFleet, host: str, command: str) -> str:
    proc = subprocess.run(
        fleet.ssh_argv(host, command), capture_output=True, text=True, timeout=30, check=False
    )
    return proc.stdout + proc.stderr


def test_a_stand_in_says_what_it_is_and_has_no_linux_proc(fleet: TestFleet) -> None:
    said = ssh(
        fleet, "h002", "netstat --standin; sysctl --standin; [ -r /proc/net/snmp ] || echo no-proc-net"
    )
    assert "a stand-in for FreeBSD's netstat, not FreeBSD" in said
    assert "a stand-in for FreeBSD's sysctl, not FreeBSD" in said
    assert "no-proc-net" in said
    assert "no-proc-net" not in ssh(fleet, "h001", "[ -r /proc/net/snmp ] || echo no-proc-net")


def test_a_storm_on_a_freebsd_host_is_found_there_alone(fleet: TestFleet, tmp_path: Path) -> None:
    history = tmp_path / "history.db"
    with fleet.closed_port_storm("h003", rate=150, duration=6):
        proc = cli(fleet, "sweep", "--window", "3", "-o", "json", "--db", str(history))
    assert proc.returncode in (1, 2), proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert set(hosts) == {"h001", "h002", "h003"}
    storm = hosts["h003"]
    assert storm["status"] in ("warning", "critical"), storm
    # FreeBSD's embryonic connections dropped, under the name Netdata's FreeBSD collector gives it
    assert storm["rates"]["resets_received"] >= 100, storm["rates"]
    assert storm["rates"]["AttemptFails"] == storm["rates"]["resets_received"]
    assert "OutRsts" not in storm["rates"] and "resets_sent" not in storm["rates"]  # FreeBSD has none
    for quiet in ("h001", "h002"):
        assert hosts[quiet]["status"] == "ok", hosts[quiet]
        assert hosts[quiet]["rates"]["resets_received"] < 5
    assert "tcps_sndctrl" in hosts["h002"]["rates"]  # FreeBSD's own names for the rest
    assert "tcps_sndctrl" not in hosts["h001"]["rates"]
    assert "OutRsts" in hosts["h001"]["rates"]
    # the history holds the stand-ins as any host
    with sqlite3.connect(history) as db:
        stored = dict(db.execute("SELECT host, resets_received FROM host_results"))
    assert stored["h003"] == pytest.approx(storm["rates"]["resets_received"], abs=0.01)  # JSON rounds
    assert stored["h002"] is not None and stored["h002"] < 5


def test_a_storm_on_a_freebsd_host_speaking_libxo_json_is_found_there_alone(fleet: TestFleet) -> None:
    with fleet.closed_port_storm("h002", rate=150, duration=6):
        proc = cli(fleet, "sweep", "bsd", "--window", "3", "-o", "json", "--no-history")
    assert proc.returncode in (1, 2), proc.stderr
    hosts = {h["host"]: h for h in json.loads(proc.stdout)["hosts"]}
    assert set(hosts) == {"h002", "h003"}
    storm = hosts["h002"]["rates"]
    assert storm["resets_received"] >= 100, storm
    assert storm["tcps_sndctrl"] >= 100  # the RSTs h002 sent went among its control packets
    assert hosts["h003"]["status"] == "ok" and hosts["h003"]["rates"]["resets_received"] < 5


def test_the_table_shows_freebsd_hosts_as_any_other(fleet: TestFleet) -> None:
    proc = cli(fleet, "sweep", "--window", "1", "--no-history")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.startswith("h0")}
    assert rows["h001"][1:6] == ["OK", "0.0", "0.0", "0.0", "0.0"], rows
    # a FreeBSD host counts no RSTs sent on their own: its cell says so ("-"), it is not a zero
    for name in ("h002", "h003"):
        assert rows[name][1] == "OK" and rows[name][2] == "0.0", rows[name]
        assert rows[name][3] == "-", rows[name]


def test_a_flooded_listener_on_freebsd_is_found_through_netstat_and_sockstat(fleet: TestFleet) -> None:
    """The runbook's FreeBSD branch: netstat -an for the states, netstat -Lan for the listen queue,
    sockstat for the owner, FreeBSD's sysctls for the context."""
    port = 9411
    with fleet.listen_queue_flood("h003", port=port, duration=8, user=fleet.user):
        proc = cli(
            fleet, "sweep", "h003", "--window", "2", "-o", "json", "--no-history", "--investigate", "always"
        )
    assert proc.returncode in (1, 2), proc.stderr
    host = json.loads(proc.stdout)["hosts"][0]
    assert host["rates"]["listen_overflows"] > 10, host["rates"]  # tcps_listendrop
    inv = host["investigation"]
    assert not inv["errors"], inv["errors"]
    cause = inv["causes"][0]
    assert cause["cause"] == "listen_queue_full" and cause["port"] == port, inv["causes"]
    assert cause["processes"][0]["command"] == "stuck-list"  # sockstat cuts COMMAND to 10 characters
    listener = next(lf for lf in inv["listeners"] if lf["port"] == port)
    assert listener["queue"] >= listener["backlog"] >= 1, listener
    assert inv["states"].get("SYN-SENT", 0) > 10, inv["states"]
    assert inv["context"]["sysctls"]["kern.ipc.somaxconn"] == "128"


def test_a_watch_raises_a_freebsd_hosts_storm(fleet: TestFleet) -> None:
    """The watch loop's frames take the same FreeBSD branch: a storm on h003 is raised there alone."""
    with fleet.closed_port_storm("h003", rate=150, duration=10):
        proc = cli(
            fleet, "watch", "bsd", "--every", "1", "--duration", "8", "--crit", "resets_received=40",
            "-o", "jsonl", "--no-history",
        )  # fmt: skip
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    raised = [e for e in events if e["event"] == "raised"]
    assert raised and {e["host"] for e in raised} == {"h003"}, proc.stdout + proc.stderr
    assert raised[0]["metric"] == "resets_received" and raised[0]["value"] > 50
    assert not [e for e in events if e["event"] == "lost"], events
