"""The test fleet is real: own kernel counters per namespace, real sshd logins, real resets, clean teardown.

Everything here runs on a real fleet (``fleetrst.testing.TestFleet``): network namespaces with veths
into a bridge, one OpenSSH sshd each, and reset generators running inside one namespace at a time. The
counters are read from each namespace's own /proc/net/snmp and /proc/net/netstat.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetrst.testing import (
    USER,
    FleetError,
    FleetHost,
    FleetSupportError,
    TestFleet,
    cleanup_stale,
    require_fleet_support,
)
from fleetrst.testing import _system as system

MakeFleet = Callable[..., TestFleet]
GROUPS = {"web": ["h001", "h002"], "db": ["h003"]}


@pytest.fixture(scope="module")
def fleet(make_fleet: MakeFleet) -> TestFleet:
    return make_fleet(3, GROUPS)


def counters(fleet: TestFleet, host: FleetHost) -> dict[str, int]:
    """Every Tcp: and TcpExt: counter of the host's namespace, by name (``Tcp:OutRsts``)."""
    result = fleet.run_in(host, ["cat", "/proc/net/snmp", "/proc/net/netstat"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    values: dict[str, int] = {}
    for header, row in zip(lines[::2], lines[1::2], strict=False):
        prefix, *names = header.split()
        _, *numbers = row.split()
        if prefix in ("Tcp:", "TcpExt:"):
            values.update({f"{prefix}{n}": int(v) for n, v in zip(names, numbers, strict=True)})
    return values


def deltas(before: dict[str, int], after: dict[str, int], *names: str) -> dict[str, int]:
    return {n: after[n] - before[n] for n in names}


def snapshot_all(fleet: TestFleet) -> dict[str, dict[str, int]]:
    return {h.name: counters(fleet, h) for h in fleet.hosts}


def gone(pid: int) -> bool:
    """The process no longer runs (absent, or a zombie waiting for someone else to reap it)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return text[text.rfind(")") + 2 :].split()[0] in ("Z", "X")


def wait_gone(pids: list[int], timeout: float = 3.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (alive := [p for p in pids if not gone(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def ssh(fleet: TestFleet, host: FleetHost, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        fleet.ssh_argv(host, command), capture_output=True, text=True, timeout=30, check=False
    )


def netns_pids(netns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


ALL_RESET_COUNTERS = (
    "Tcp:AttemptFails",
    "Tcp:OutRsts",
    "Tcp:EstabResets",
    "TcpExt:TCPAbortOnData",
    "TcpExt:ListenOverflows",
    "TcpExt:ListenDrops",
)
QUIET = dict.fromkeys(ALL_RESET_COUNTERS, 0)


# --- what the fleet is ---------------------------------------------------------------------------------


@pytest.mark.fleet
def test_hosts_namespaces_and_addresses(fleet: TestFleet) -> None:
    assert [h.name for h in fleet.hosts] == ["h001", "h002", "h003"]
    assert fleet.host("h002") is fleet.hosts[1]
    pool = ipaddress.IPv4Network("10.231.0.0/16")
    assert fleet.subnet.subnet_of(pool)
    assert ipaddress.IPv4Address(fleet.gateway) == next(fleet.subnet.hosts())
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    inodes = set()
    for host in fleet.hosts:
        assert ipaddress.IPv4Address(host.address) in fleet.subnet
        assert host.netns in listed
        assert len(host.veth) <= 15 and len(fleet.bridge) <= 15
        inodes.add(os.stat(f"/run/netns/{host.netns}").st_ino)
        addr = fleet.run_in(host, ["ip", "-br", "-4", "addr"]).stdout
        assert f"{host.address}/{fleet.subnet.prefixlen}" in addr and "127.0.0.1/8" in addr
        routes = fleet.run_in(host, ["ip", "-4", "route"]).stdout
        assert "default" not in routes, "a host must reach nothing outside the fleet"
        master = Path(f"/sys/class/net/{host.veth}/master").resolve().name
        assert master == fleet.bridge
        assert host.sshd_pid is not None and Path(f"/proc/{host.sshd_pid}/exe").resolve().name == "sshd"
    assert len(inodes) == 3, "one network namespace per host"
    for name, values in snapshot_all(fleet).items():  # bringing the fleet up caused no reset anywhere
        assert {k: values[k] for k in ALL_RESET_COUNTERS} == QUIET, name
    bridge_addr = subprocess.run(
        ["ip", "-br", "-4", "addr", "show", fleet.bridge], capture_output=True, text=True, check=True
    ).stdout
    assert f"{fleet.gateway}/{fleet.subnet.prefixlen}" in bridge_addr


@pytest.mark.fleet
def test_inventory_known_hosts_and_client_key(fleet: TestFleet) -> None:
    inventory: dict[str, Any] = yaml.safe_load(fleet.inventory_path.read_text())
    children = inventory["all"]["children"]
    assert children["fleet"]["hosts"] == {h.name: {"ansible_host": h.address} for h in fleet.hosts}
    assert children["fleet"]["vars"] == {
        "ansible_user": USER,
        "ansible_ssh_private_key_file": str(fleet.client_key_path),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={fleet.known_hosts_path}",
    }
    assert {g: sorted(body["hosts"]) for g, body in children.items() if g != "fleet"} == GROUPS
    known = fleet.known_hosts_path.read_text().splitlines()
    assert known == [f"{h.address} {' '.join(h.host_public_key.split()[:2])}" for h in fleet.hosts]
    assert len({line.split()[2] for line in known}) == 3, "each host has its own host key"
    assert stat.S_IMODE(fleet.client_key_path.stat().st_mode) == 0o600
    assert fleet.user == USER


@pytest.mark.fleet
def test_ssh_login_with_strict_host_key_checking(fleet: TestFleet) -> None:
    shell = subprocess.run(["getent", "passwd", USER], capture_output=True, text=True, check=True)
    assert shell.stdout.strip().split(":")[6] == "/bin/sh"
    for host in fleet.hosts:
        result = ssh(fleet, host, "echo $0; ls -A ~")
        assert result.returncode == 0, f"{host.name}: {result.stderr}"
        assert result.stdout == "sh\n", "the login shell is /bin/sh and the home holds no start-up files"
    # and the session really runs inside that host's namespace
    result = ssh(fleet, fleet.hosts[1], "cat /proc/net/snmp")
    assert result.stdout.count("Tcp:") == 2


# --- own counters, real resets ---------------------------------------------------------------------------


@pytest.mark.fleet
def test_closed_port_storm_counts_on_its_host_only(fleet: TestFleet) -> None:
    rate, duration = 100, 3.0
    before = snapshot_all(fleet)
    with fleet.closed_port_storm(fleet.host("h002"), rate=rate, duration=duration) as storm:
        assert storm.port > 0 and storm.running
        results = storm.wait()
    after = snapshot_all(fleet)
    expected = rate * duration
    h002 = deltas(before["h002"], after["h002"], *ALL_RESET_COUNTERS)
    assert 0.8 * expected <= h002["Tcp:AttemptFails"] <= 1.1 * expected, h002
    assert 0.8 * expected <= h002["Tcp:OutRsts"] <= 1.1 * expected, h002
    assert h002["Tcp:EstabResets"] == 0 and h002["TcpExt:TCPAbortOnData"] == 0, h002
    assert results["closed-port-storm"]["refused"] == h002["Tcp:AttemptFails"]
    for quiet in ("h001", "h003"):
        assert deltas(before[quiet], after[quiet], *ALL_RESET_COUNTERS) == QUIET


@pytest.mark.fleet
def test_aborting_server_is_identifiable_and_aborts(fleet: TestFleet) -> None:
    host = fleet.host("h003")
    rate, duration = 100, 2.0
    before = snapshot_all(fleet)
    with fleet.aborting_server(host, port=9400, rate=rate, duration=duration) as server:
        assert server.port == 9400
        assert Path(f"/proc/{server.pid}/comm").read_text().strip() == "aborting-server"
        assert b"aborting_server.py" in Path(f"/proc/{server.pid}/cmdline").read_bytes()
        listeners = fleet.run_in(host, ["ss", "-tlnpH", "sport = :9400"]).stdout
        assert f'"aborting-server",pid={server.pid}' in listeners and "127.0.0.1:9400" in listeners
        results = server.wait()
    after = snapshot_all(fleet)
    aborted = results["aborting-server"]["aborted"]
    assert aborted >= 0.8 * rate * duration
    h003 = deltas(before["h003"], after["h003"], *ALL_RESET_COUNTERS)
    assert h003["TcpExt:TCPAbortOnData"] == aborted, h003
    assert h003["Tcp:EstabResets"] == 2 * aborted, "both ends of each connection count it"
    assert h003["Tcp:OutRsts"] >= aborted
    for quiet in ("h001", "h002"):
        assert deltas(before[quiet], after[quiet], *ALL_RESET_COUNTERS) == QUIET


@pytest.mark.fleet
def test_listen_queue_flood_overflows(fleet: TestFleet) -> None:
    host = fleet.host("h001")
    before = counters(fleet, host)
    with fleet.listen_queue_flood(host, port=9401, duration=2.0) as flood:
        assert Path(f"/proc/{flood.pid}/comm").read_text().strip() == "stuck-listener"
        listeners = fleet.run_in(host, ["ss", "-tlnH", "sport = :9401"]).stdout.split()
        assert listeners[0] == "LISTEN" and listeners[2] == "1", "backlog 1"
        flood.wait()
    d = deltas(before, counters(fleet, host), *ALL_RESET_COUNTERS)
    assert d["TcpExt:ListenOverflows"] >= 100 and d["TcpExt:ListenDrops"] >= 100, d


@pytest.mark.fleet
def test_generators_are_bounded_and_stoppable(fleet: TestFleet) -> None:
    host = fleet.host("h001")
    long = fleet.closed_port_storm(host, rate=10, duration=600)
    assert long.running and not gone(long.pid)
    long.stop()
    assert gone(long.pid) and not long.running
    short = fleet.closed_port_storm(host, rate=10, duration=0.5)
    started = time.monotonic()
    short.wait(timeout=10)
    assert time.monotonic() - started < 3, "stops by itself after `duration`"
    with fleet.aborting_server(host, port=9410, duration=5), pytest.raises(FleetError, match="Address"):
        fleet.aborting_server(host, port=9410, duration=5)  # the port is taken: a clear error
    with pytest.raises(ValueError):
        fleet.closed_port_storm(host, duration=100_000)
    # as the login user, an unprivileged `ss -p` over ssh sees the server behind the port
    with fleet.aborting_server(host, port=9411, rate=5, duration=5, user=fleet.user) as server:
        assert Path(f"/proc/{server.pid}/status").read_text().count(f"\t{pwd.getpwnam(USER).pw_uid}\t") >= 1
        seen = ssh(fleet, host, "ss -tlnpH 'sport = :9411'").stdout
        assert f'"aborting-server",pid={server.pid}' in seen
    assert fleet.load_handles() == []


# --- fault hooks -------------------------------------------------------------------------------------------


@pytest.mark.fleet
def test_stop_start_sshd_and_replace_host_key(make_fleet: MakeFleet) -> None:
    fleet = make_fleet(2)
    h1, h2 = fleet.hosts
    old_pid = h1.sshd_pid
    assert old_pid is not None
    fleet.stop_sshd(h1)
    assert h1.sshd_pid is None and gone(old_pid)
    with pytest.raises(ConnectionRefusedError), socket.create_connection((h1.address, 22), timeout=5):
        pass
    fleet.start_sshd(h1)
    assert h1.sshd_pid not in (None, old_pid)
    assert ssh(fleet, h1, "echo back").stdout == "back\n"

    fleet.replace_host_key(h2)
    refused = ssh(fleet, h2, "true")
    assert refused.returncode == 255 and "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused.stderr
    assert ssh(fleet, h1, "echo fine").stdout == "fine\n", "the other host is untouched"


# --- teardown ------------------------------------------------------------------------------------------


def _leftovers(fid: str) -> dict[str, list[str]]:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True).stdout
    return {
        "netns": [line for line in netns.splitlines() if f"fleetrst-{fid}-" in line],
        "links": [line for line in links.splitlines() if line.startswith(f"fr{fid}")],
    }


@pytest.mark.fleet
def test_teardown_leaves_nothing(fleet_support: None) -> None:
    fleet = TestFleet(2).start()
    try:
        fid, directory = fleet.id, fleet.dir
        assert _leftovers(fid)["links"] and len(_leftovers(fid)["netns"]) == 2
        storm = fleet.closed_port_storm("h001", rate=10, duration=600)
        session = subprocess.Popen(
            fleet.ssh_argv("h002", "sleep 60"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while len(netns_pids(fleet.hosts[1].netns)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)  # the listener, the session's sshd(s) and its shell
        pids = [storm.pid, *netns_pids(fleet.hosts[0].netns), *netns_pids(fleet.hosts[1].netns)]
        assert len(pids) >= 4
    finally:
        fleet.close()
    try:
        assert _leftovers(fid) == {"netns": [], "links": []}
        assert wait_gone(pids) == [], "every process of the fleet is gone"
        assert not directory.exists()
        assert not (system.RUN_DIR / f"{fid}.json").exists()
        assert not system.authorized_keys_path(fid).exists()
        assert session.wait(timeout=10) != 0, "the ssh session was cut"
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()


CRASHING_CREATOR = """
import os, signal
from fleetrst.testing import TestFleet
fleet = TestFleet(2).start()
storm = fleet.closed_port_storm("h001", rate=10, duration=600)
print(fleet.id, fleet.dir, storm.pid, *(h.sshd_pid for h in fleet.hosts), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no teardown at all
"""


@pytest.mark.fleet
def test_cleanup_stale_removes_a_crashed_fleet(fleet_support: None) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING_CREATOR], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    fid, directory, *pid_texts = proc.stdout.split()
    pids = [int(p) for p in pid_texts]
    assert len(_leftovers(fid)["netns"]) == 2 or not Path(directory).exists()  # (unless someone cleaned)
    cleanup_stale()
    assert _leftovers(fid) == {"netns": [], "links": []}
    assert wait_gone(pids) == []
    assert not Path(directory).exists()


@pytest.mark.fleet
def test_cli_up_prints_inventory_and_tears_down_on_sigterm(fleet_support: None, tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleetrst.testing",
            "up",
            "--hosts",
            "2",
            "--dir",
            str(workdir),
            "--group",
            "web=h002",
            "--storm",
            "h001:20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        inventory = Path(proc.stdout.readline().strip())
        assert inventory == workdir / "inventory.yml" and inventory.exists()
        doc = yaml.safe_load(inventory.read_text())
        assert sorted(doc["all"]["children"]) == ["fleet", "web"]
        fid = json.loads((workdir / "fleet.json").read_text())["id"]
        assert len(_leftovers(fid)["netns"]) == 2
        login = subprocess.run(  # tmp_path is private (0700): the login user must not need to reach it
            [
                "ssh",
                "-F",
                "/dev/null",
                "-i",
                str(workdir / "id_ed25519"),
                "-o",
                f"UserKnownHostsFile={workdir / 'known_hosts'}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                f"{USER}@{doc['all']['children']['fleet']['hosts']['h002']['ansible_host']}",
                "echo in",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert login.stdout == "in\n", login.stderr
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "down in" in err
        assert _leftovers(fid) == {"netns": [], "links": []}
        assert not inventory.exists() and not workdir.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


ABANDONING_CREATOR = """
import sys, time
from fleetrst.testing import TestFleet
fleet = TestFleet(2).start()  # never closed by this script: atexit / the SIGTERM handler must do it
fleet.closed_port_storm("h001", rate=10, duration=600)
print(fleet.id, fleet.dir, flush=True)
if sys.argv[1] == "exit":
    sys.exit(3)
time.sleep(60)
"""


@pytest.mark.fleet
@pytest.mark.parametrize("how", ["exit", "sigterm"])
def test_a_fleet_left_open_is_torn_down_at_exit_and_on_sigterm(fleet_support: None, how: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", ABANDONING_CREATOR, how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        fid, directory = proc.stdout.readline().split()
        assert len(_leftovers(fid)["netns"]) == 2
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == (3 if how == "exit" else 128 + signal.SIGTERM), err
        assert _leftovers(fid) == {"netns": [], "links": []}
        assert not Path(directory).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.fleet
def test_fleets_made_at_once_get_their_own_block_and_bridge(fleet: TestFleet) -> None:
    made: list[TestFleet] = []
    errors: list[BaseException] = []

    def bring_up() -> None:
        try:
            made.append(TestFleet(2).start())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bring_up) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert not errors and len(made) == 3
        fleets = [fleet, *made]
        for i, a in enumerate(fleets):
            for b in fleets[i + 1 :]:
                assert not a.subnet.overlaps(b.subnet) and a.bridge != b.bridge and a.id != b.id
        for f in made:  # each one works
            assert ssh(f, f.hosts[1], "echo $0").stdout == "sh\n"
    finally:
        for f in made:
            f.close()


# --- without a fleet -------------------------------------------------------------------------------------


def test_require_fleet_support_fails_in_ci_and_skips_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    import fleetrst.testing.support as support

    monkeypatch.setattr(support, "fleet_support_problems", lambda: ["not running as root"])
    monkeypatch.setenv("CI", "true")
    with pytest.raises(FleetSupportError, match="not running as root"):
        require_fleet_support()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="not running as root"):
        require_fleet_support()


def test_bad_groups_are_refused_before_anything_is_built() -> None:
    with pytest.raises(ValueError, match="h009"):
        TestFleet(3, {"web": ["h009"]})
    with pytest.raises(ValueError, match="reserved"):
        TestFleet(3, {"fleet": ["h001"]})
    with pytest.raises(ValueError):
        TestFleet(0)
