"""The sweep on a real fleet: network namespaces, one real sshd each, real resets in one namespace.

Every assertion here is about what the kernel counted inside a namespace and what fleetrst made of it
over real SSH; nothing is simulated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetrst.testing import TestFleet, require_fleet_support

pytestmark = pytest.mark.fleet

WINDOW = "2"
STORM_RATE = 100  # connects/s to a closed port: ~100 resets received and ~100 sent per second


def fleetrst(*args: str, timeout: float = 60, netns: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "fleetrst.cli", *args]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def sweep_json(*args: str, netns: str | None = None) -> tuple[int, dict[str, Any]]:
    proc = fleetrst("sweep", "--window", WINDOW, "-o", "json", *args, netns=netns)
    assert proc.stdout, f"no output; stderr: {proc.stderr}"
    return proc.returncode, json.loads(proc.stdout)


def by_host(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in doc["hosts"]}


@pytest.fixture(scope="module")
def fleet() -> Iterator[TestFleet]:
    require_fleet_support()
    with TestFleet(n_hosts=4, groups={"web": ["h001", "h002"], "db": ["h003", "h004"]}) as f:
        yield f


def test_a_quiet_fleet_is_all_ok(fleet: TestFleet) -> None:
    code, doc = sweep_json("-i", str(fleet.inventory_path))
    hosts = by_host(doc)
    assert code == 0, doc
    assert sorted(hosts) == ["h001", "h002", "h003", "h004"]
    for h in hosts.values():
        assert h["status"] == "ok" and h["error"] is None
        assert 1.5 < h["interval_s"] < 3.0, "the interval comes from the host's own uptime"
        assert h["rates"]["resets_received"] < 5 and h["rates"]["resets_sent"] < 5
        assert h["address"] == fleet.host(h["host"]).address
    assert hosts["h003"]["groups"] == ["db", "fleet"]


def test_a_closed_port_storm_flags_exactly_that_host(fleet: TestFleet) -> None:
    with fleet.closed_port_storm("h002", rate=STORM_RATE, duration=15):
        code, doc = sweep_json("-i", str(fleet.inventory_path))
    hosts = by_host(doc)
    assert code == 1, "a warning and nothing worse"
    storm = hosts["h002"]
    assert storm["status"] == "warning"
    for metric in ("resets_received", "resets_sent"):
        assert 0.6 * STORM_RATE < storm["rates"][metric] < 1.4 * STORM_RATE, storm["rates"]
    assert {t["metric"] for t in storm["tripped"]} == {"resets_received", "resets_sent"}
    assert storm["rates"]["aborts_on_data"] == 0
    for quiet in ("h001", "h003", "h004"):
        assert hosts[quiet]["status"] == "ok", hosts[quiet]
        assert hosts[quiet]["rates"]["resets_received"] < 5
    assert doc["hosts"][0]["host"] == "h002", "worst first"


def test_local_and_paramiko_transports_agree_with_asyncssh(fleet: TestFleet) -> None:
    inv = str(fleet.inventory_path)
    with fleet.closed_port_storm("h002", rate=STORM_RATE, duration=20):
        results: dict[str, dict[str, dict[str, Any]]] = {}

        def run(name: str, *args: str, netns: str | None = None) -> None:
            # Four sweeps at once: without history, which would serialise them on its lock.
            results[name] = by_host(sweep_json("--no-history", *args, netns=netns)[1])

        # The local transport runs the probe on "this machine": inside a namespace, that is the host.
        threads = [
            threading.Thread(target=run, args=("ssh", "-i", inv, "web")),
            threading.Thread(target=run, args=("paramiko", "-i", inv, "web", "-c", "paramiko")),
            threading.Thread(target=run, args=("local-h002",), kwargs={"netns": fleet.host("h002").netns}),
            threading.Thread(target=run, args=("local-h001",), kwargs={"netns": fleet.host("h001").netns}),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results["ssh"]["h002"]["status"] == "warning"
    assert results["paramiko"]["h002"]["status"] == "warning"
    assert results["local-h002"]["localhost"]["status"] == "warning"
    assert results["ssh"]["h001"]["status"] == "ok"
    assert results["paramiko"]["h001"]["status"] == "ok"
    assert results["local-h001"]["localhost"]["status"] == "ok"
    for name in ("ssh", "paramiko"):
        assert results[name]["h002"]["tripped"] and results[name]["h001"]["tripped"] == []


def _write_inventory(path: Path, hosts: dict[str, dict[str, Any]], group_vars: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump({"all": {"children": {"fleet": {"hosts": hosts, "vars": group_vars}}}}))
    return str(path)


def _fleet_vars(fleet: TestFleet) -> dict[str, Any]:
    doc = yaml.safe_load(fleet.inventory_path.read_text())
    found: dict[str, Any] = {}

    def walk(group: dict[str, Any]) -> None:
        found.update(group.get("vars") or {})
        for child in (group.get("children") or {}).values():
            walk(child or {})

    walk(doc["all"])
    return found


def test_failures_are_values_that_say_which(fleet: TestFleet, tmp_path: Path) -> None:
    wrong_key = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_key)], check=True)
    stranger_kh = tmp_path / "stranger_known_hosts"
    stranger_kh.write_text(f"{fleet.host('h004').address} " + (tmp_path / "wrong_key.pub").read_text())
    free = str(fleet.subnet.broadcast_address - 1)  # inside the fleet's own subnet, no host there
    assert free not in {h.address for h in fleet.hosts}
    inv = _write_inventory(
        tmp_path / "faults.yml",
        {
            "good": {"ansible_host": fleet.host("h001").address},
            "badauth": {
                "ansible_host": fleet.host("h002").address,
                "ansible_ssh_private_key_file": str(wrong_key),
            },
            "nobody": {"ansible_host": free},
            "badkey": {
                "ansible_host": fleet.host("h004").address,
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={stranger_kh}",
            },
            "refused": {"ansible_host": fleet.host("h003").address, "ansible_port": 2222},
        },
        _fleet_vars(fleet),
    )
    code, doc = sweep_json("-i", inv, "--timeout", "3")
    hosts = by_host(doc)
    assert code == 3, "unknown: some hosts could not be measured and none warned"
    assert hosts["good"]["status"] == "ok"
    assert hosts["badauth"]["status"] == "error" and hosts["badauth"]["error_kind"] == "auth"
    assert "authentication failed" in hosts["badauth"]["error"]
    assert hosts["badkey"]["status"] == "error" and hosts["badkey"]["error_kind"] == "host_key"
    assert "host key mismatch" in hosts["badkey"]["error"]
    assert hosts["refused"]["status"] == "unreachable" and hosts["refused"]["error_kind"] == "refused"
    assert "connection refused" in hosts["refused"]["error"]
    assert hosts["nobody"]["status"] == "unreachable"
    assert hosts["nobody"]["error_kind"] in ("timeout", "no_route"), hosts["nobody"]
    assert doc["duration_s"] < float(WINDOW) + 3 + 2, "window + timeout + a little"


def test_exit_codes(fleet: TestFleet) -> None:
    inv = str(fleet.inventory_path)
    assert fleetrst("sweep", "-i", inv, "--window", "1", "h001").returncode == 0
    with fleet.closed_port_storm("h003", rate=STORM_RATE, duration=15):
        assert fleetrst("sweep", "-i", inv, "--window", WINDOW, "db").returncode == 1
        crit = fleetrst("sweep", "-i", inv, "--window", WINDOW, "h003", "--crit", "resets_sent=60")
        assert crit.returncode == 2, crit.stdout
        assert "CRITICAL" in crit.stdout
    bad = fleetrst("sweep", "-i", inv, "nosuchgroup")
    assert bad.returncode == 64 and "matches no host" in bad.stderr and "Traceback" not in bad.stderr
    usage = fleetrst("sweep", "-i", inv, "--window", "ten")
    assert usage.returncode == 64 and "not a duration" in usage.stderr


def test_thresholds_from_the_inventory_and_the_command_line(fleet: TestFleet, tmp_path: Path) -> None:
    lenient = {"resets_received": {"warning": 500}, "resets_sent": {"warning": 500, "critical": 1000}}
    inv = _write_inventory(
        tmp_path / "thresholds.yml",
        {"h001": {"ansible_host": fleet.host("h001").address, "fleetrst_thresholds": lenient}},
        _fleet_vars(fleet),
    )
    with fleet.closed_port_storm("h001", rate=STORM_RATE, duration=20):
        code, doc = sweep_json("-i", inv)
        assert code == 0 and by_host(doc)["h001"]["status"] == "ok", "the host's own thresholds are laxer"
        code, doc = sweep_json("-i", inv, "--warn", "resets_sent=20")
        h = by_host(doc)["h001"]
        assert code == 1 and [t["metric"] for t in h["tripped"]] == ["resets_sent"], "the flag beats it"


def test_baseline_spike_rule_flags_a_new_storm_not_a_steady_one(fleet: TestFleet) -> None:
    inv = str(fleet.inventory_path)
    # A storm that runs through baseline and window: 10 × max(5, ~100) = ~1000/s is not reached.
    with fleet.closed_port_storm("h001", rate=STORM_RATE, duration=20):
        code, doc = sweep_json("-i", inv, "h001", "--baseline", "2")
    assert code == 0, doc["hosts"][0]["tripped"]
    steady = by_host(doc)["h001"]
    assert steady["status"] == "ok", steady["tripped"]
    assert steady["baseline_rates"]["resets_received"] > 50
    # A storm that starts after the baseline: the spike rule warns. It starts when the host's own
    # window sleep ("sleep 3", after the baseline's "sleep 2") begins, whatever start-up took.
    result: dict[str, Any] = {}

    def storm_when_the_window_starts() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if fleet.run_in("h004", ["pgrep", "-x", "-f", "sleep 3"]).returncode == 0:
                result["storm"] = fleet.closed_port_storm("h004", rate=STORM_RATE, duration=6)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=storm_when_the_window_starts)
    watcher.start()
    try:
        code, doc = sweep_json("-i", inv, "h004", "--baseline", "2", "--window", "3")
        h004 = doc["hosts"][0]
        assert code == 1, (
            result.keys(),
            h004["baseline_rates"]["resets_received"],
            h004["rates"]["resets_received"],
        )
    finally:
        watcher.join()
        if "storm" in result:
            result["storm"].stop()
    spiked = by_host(doc)["h004"]
    assert spiked["status"] == "warning", spiked
    assert spiked["baseline_rates"]["resets_received"] < 5
    assert any(t["rule"] == "spike" for t in spiked["tripped"])


def test_list_hosts_connects_to_nothing(fleet: TestFleet) -> None:
    proc = fleetrst("sweep", "-i", str(fleet.inventory_path), "web:db:!h004", "--list-hosts")
    assert proc.returncode == 0
    assert proc.stdout.split() == ["hosts", "(3):", "h001", "h002", "h003"]


def test_no_inventory_sweeps_this_machine_locally() -> None:
    proc = fleetrst("sweep", "--window", "1", "-o", "json")
    doc = json.loads(proc.stdout)
    assert [h["host"] for h in doc["hosts"]] == ["localhost"]
    assert doc["hosts"][0]["status"] in ("ok", "warning", "critical")
    assert os.path.exists("/proc/net/snmp")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env.update(extra)
    return env


def _run_env(env: dict[str, str], *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", "sweep", "--window", "1", "-o", "json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.stdout, proc.stderr
    return by_host(json.loads(proc.stdout))


def test_proxyjump_reaches_a_host_the_controller_cannot(tmp_path: Path) -> None:
    with TestFleet(n_hosts=2) as fleet:
        fleet.drop_replies("h002")  # h002 answers h001, never the controller
        jump = f"{fleet.user}@{fleet.host('h001').address}"
        common = f"-o UserKnownHostsFile={fleet.known_hosts_path}"
        hosts = {
            "direct": {"ansible_host": fleet.host("h002").address},
            "jumped": {
                "ansible_host": fleet.host("h002").address,
                "ansible_ssh_common_args": f"{common} -o ProxyJump={jump}",
            },
            "jumped-J": {
                "ansible_host": fleet.host("h002").address,
                "ansible_ssh_common_args": f"{common} -J {jump}",
            },
        }
        inv = _write_inventory(tmp_path / "jump.yml", hosts, _fleet_vars(fleet))
        result = _run_env(_env(), "-i", inv, "--timeout", "3")
    assert result["direct"]["status"] == "unreachable"
    assert result["jumped"]["status"] == "ok" and result["jumped-J"]["status"] == "ok", result


def test_ssh_agent_keys_are_used(fleet: TestFleet, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    sock = tmp_path / "agent.sock"
    agent = subprocess.run(["ssh-agent", "-a", str(sock)], capture_output=True, text=True, check=True)
    agent_pid = int(agent.stdout.split("SSH_AGENT_PID=")[1].split(";")[0])
    try:
        with_agent = _env(HOME=str(home), SSH_AUTH_SOCK=str(sock))
        subprocess.run(
            ["ssh-add", str(fleet.client_key_path)], env=with_agent, capture_output=True, check=True
        )
        fleet_vars = {k: v for k, v in _fleet_vars(fleet).items() if k != "ansible_ssh_private_key_file"}
        inv = _write_inventory(
            tmp_path / "agent.yml", {"h001": {"ansible_host": fleet.host("h001").address}}, fleet_vars
        )
        assert _run_env(with_agent, "-i", inv)["h001"]["status"] == "ok"
        without = _run_env(_env(HOME=str(home)), "-i", inv)["h001"]
        assert without["error_kind"] == "auth", "the key came from the agent, not from a file"
    finally:
        os.kill(agent_pid, 15)


def test_ssh_config_host_blocks_are_honoured(fleet: TestFleet, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        "Host web-alias\n"
        f"  HostName {fleet.host('h003').address}\n"
        f"  User {fleet.user}\n"
        f"  IdentityFile {fleet.client_key_path}\n"
        f"  UserKnownHostsFile {fleet.known_hosts_path}\n"
    )
    inv = tmp_path / "plain.ini"
    inv.write_text("[web]\nweb-alias\n")
    result = _run_env(_env(HOME=str(home)), "-i", str(inv))
    assert result["web-alias"]["status"] == "ok", result["web-alias"]
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    (home / ".ssh" / "config").write_text(
        (home / ".ssh" / "config").read_text().replace(str(fleet.known_hosts_path), str(empty))
    )
    refused = _run_env(_env(HOME=str(home)), "-i", str(inv))["web-alias"]
    assert refused["error_kind"] == "host_key", refused["error"]  # the config's known_hosts is the one used
    (home / ".ssh" / "config").write_text(
        (home / ".ssh" / "config").read_text().replace(str(empty), str(tmp_path / "missing"))
    )
    missing = _run_env(_env(HOME=str(home)), "-i", str(inv))["web-alias"]
    assert missing["error_kind"] == "config" and str(tmp_path / "missing") in missing["error"]


def test_a_progress_line_only_on_a_terminal(fleet: TestFleet) -> None:
    command = (
        f"{sys.executable} -m fleetrst.cli sweep -i {fleet.inventory_path} --window 1 -o json --no-history"
    )
    on_tty = subprocess.run(
        ["script", "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=60
    )
    assert "4/4 hosts done" in on_tty.stdout
    piped = subprocess.run(command.split(), capture_output=True, text=True, timeout=60)
    assert piped.stderr == "" and "hosts done" not in piped.stdout
