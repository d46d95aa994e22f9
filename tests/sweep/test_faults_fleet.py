"""The fault matrix: one real host per fault, all in one sweep, every healthy host's result intact.

Each fault is made for real on the test fleet: a stopped sshd, a namespace that blackholes its
replies, a replaced host key, a wrong client key, a real sshd whose login hangs in
AuthorizedKeysCommand, real sshds whose ForceCommand never returns / prints garbage / floods, a
rate-limited veth, an sshd killed during the window. One is a stand-in and says so: a reboot cannot
happen inside a namespace (boot_id is the kernel's), so that host's ForceCommand runs the real probe
and rewrites the last sample's boot_id, as a reboot would.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetrst.testing import TestFleet, require_fleet_support

pytestmark = pytest.mark.fleet

WINDOW, TIMEOUT = 2.0, 3.0
MARGIN = 1.5  # "window + timeout + a little"

GARBAGE = r"""#!/bin/sh
# Framed like the probe, but the counters are garbage with terminal escape sequences in them.
printf '@@fleetrst-probe v2 sample 0 of 2\n'
printf 'Tcp: \033]0;pwned\007Active \033[2JOpens\nTcp: 1 x\n'
head -c 2000 /etc/services | tr -d '@'
printf '\n12.5 3.0\nnot-a-boot-id\n\n@@rc 0\n@@end 0\n'
"""

FAKE_REBOOT = """#!/bin/sh
# Stand-in for a reboot during the window: the real probe runs; its last boot_id line is replaced.
real=$(cat /proc/sys/kernel/random/boot_id)
/bin/sh -c "$SSH_ORIGINAL_COMMAND" | awk -v id="$real" '
  { line[NR] = $0; if ($0 == id) last = NR }
  END { for (i = 1; i <= NR; i++) print (i == last ? "00000000-0000-4000-8000-000000000000" : line[i]) }'
"""

FAULTS = {
    "h003": "refused",
    "h004": "silent drop",
    "h005": "changed host key",
    "h006": "failed auth",
    "h007": "login hangs",
    "h008": "command never returns",
    "h009": "garbage output",
    "h010": "400 MB of output",
    "h011": "slow link",
    "h012": "sshd killed in the window",
    "h013": "reboot in the window (stand-in)",
    "h014": "bad ansible_port",
    "h015": "a login that prints a banner first",
    "h016": "ss, lsof and tcpdump missing (investigated: it resets)",
    "h017": "sudo that wants a password (investigated: it resets)",
}

NOISY = """#!/bin/sh
# A login that talks before the command runs (a motd, an rc file's echo): the probe must not care.
echo 'Welcome to h015! Last login: yesterday'
printf 'Tcp: 1 2 3\\n@@end 7\\n'
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
"""


def _peak_rss_kib(pid: int, done: threading.Event, seen: list[int]) -> None:
    """Follow the process's VmHWM (its own peak RSS since exec) until it exits.

    Not wait4's ru_maxrss: that also counts the pages a fork shares with its parent before exec, so
    a child of a large pytest process would report pytest's size, not its own.
    """
    status = Path(f"/proc/{pid}/status")
    while not done.is_set():
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    seen.append(int(line.split()[1]))
        time.sleep(0.02)


def _sweep(inventory: Path, *extra: str) -> tuple[int, dict[str, Any], str, float, int]:
    """Sweep in a child process: exit code, JSON, stderr, wall seconds, its peak RSS (KiB)."""
    argv = [
        sys.executable,
        "-m",
        "fleetrst.cli",
        "sweep",
        "-i",
        str(inventory),
        "-o",
        "json",
        "--window",
        str(WINDOW),
        "--timeout",
        str(TIMEOUT),
        *extra,
    ]
    start = time.monotonic()
    done, seen = threading.Event(), [0]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
        watcher = threading.Thread(target=_peak_rss_kib, args=(proc.pid, done, seen))
        watcher.start()
        out, _ = proc.communicate(timeout=120)
        done.set()
        watcher.join()
        wall = time.monotonic() - start
        err.seek(0)
        return proc.returncode, json.loads(out), err.read().decode(), wall, max(seen)


@pytest.fixture(scope="module")
def faulty_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestFleet, Path, Path]]:
    require_fleet_support()
    with TestFleet(n_hosts=len(FAULTS) + 2) as fleet:
        tmp = tmp_path_factory.mktemp("faults")
        wrong_key = tmp / "wrong_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_key)], check=True)
        fleet.stop_sshd("h003")
        fleet.drop_replies("h004")
        fleet.replace_host_key("h005")
        fleet.reconfigure_sshd(
            "h007",
            [
                "AuthorizedKeysFile none",
                "AuthorizedKeysCommand /bin/sleep 3600",
                "AuthorizedKeysCommandUser nobody",
            ],
        )
        fleet.reconfigure_sshd("h008", ["ForceCommand /bin/sleep 3600"])
        fleet.reconfigure_sshd("h009", [f"ForceCommand {fleet.write_script('garbage', GARBAGE)}"])
        fleet.reconfigure_sshd("h010", ["ForceCommand head -c 400000000 /dev/zero"])
        fleet.slow_link("h011", "128kbit")
        fleet.reconfigure_sshd("h013", [f"ForceCommand {fleet.write_script('fake-reboot', FAKE_REBOOT)}"])
        fleet.reconfigure_sshd("h015", [f"ForceCommand {fleet.write_script('noisy', NOISY)}"])
        fleet.hide_tools("h016", ["ss", "lsof", "tcpdump"])

        doc = yaml.safe_load(fleet.inventory_path.read_text())
        hosts = doc["all"]["children"]["fleet"]["hosts"]
        hosts["h006"]["ansible_ssh_private_key_file"] = str(wrong_key)
        hosts["h014"]["ansible_port"] = "ssh"
        hosts["h017"]["ansible_become"] = True  # and no sudoers rule for the login user
        faulty = tmp / "faulty.yml"
        faulty.write_text(yaml.safe_dump(doc))
        yield fleet, faulty, fleet.inventory_path


def test_every_fault_is_reported_as_what_it_is_and_healthy_hosts_are_intact(
    faulty_fleet: tuple[TestFleet, Path, Path],
) -> None:
    fleet, inventory, _ = faulty_fleet
    killer = threading.Timer(1.2, fleet.stop_sshd, args=("h012",), kwargs={"kill_sessions": True})
    with (
        fleet.closed_port_storm("h002", rate=100, duration=15),
        fleet.closed_port_storm("h016", rate=100, duration=15),
        fleet.closed_port_storm("h017", rate=100, duration=15),
    ):
        killer.start()
        try:
            code, doc, err, wall, rss_kib = _sweep(inventory, "--capture", "1")
        finally:
            killer.join()
            fleet.start_sshd("h012")
    hosts = {h["host"]: h for h in doc["hosts"]}
    print(f"\nfault sweep: {wall:.2f}s wall, peak RSS {rss_kib / 1024:.0f} MiB")

    def expect(host: str, status: str, kind: str, words: str) -> None:
        got = hosts[host]
        assert (got["status"], got["error_kind"]) == (status, kind), f"{FAULTS.get(host, host)}: {got}"
        assert words in got["error"], f"{FAULTS.get(host, host)}: {got['error']!r}"

    assert hosts["h001"]["status"] == "ok" and hosts["h001"]["rates"]["resets_received"] < 5
    assert hosts["h002"]["status"] == "warning" and 60 < hosts["h002"]["rates"]["resets_sent"] < 140
    expect("h003", "unreachable", "refused", "connection refused")
    expect("h004", "unreachable", "timeout", "no answer from")
    expect("h005", "error", "host_key", "host key mismatch")
    expect("h006", "error", "auth", "authentication failed for user fleetrst-test")
    expect("h007", "error", "timeout", "SSH login timed out")
    expect("h008", "error", "timeout", "timed out after 5s (window 2s + timeout 3s) waiting for the probe")
    expect("h009", "error", "parse", "could not parse /proc/net/snmp")
    expect("h010", "error", "output_cap", "output over 1 MiB")
    assert hosts["h011"]["status"] == "ok", f"a slow link is still measured: {hosts['h11']}"
    expect("h012", "error", "lost", "connection was lost")
    expect("h013", "error", "rebooted", "rebooted during the window")
    expect("h014", "error", "config", "ansible_port must be an integer")
    assert hosts["h015"]["status"] == "ok", f"noise before the probe's frames is ignored: {hosts['h015']}"
    # Faults in the investigation are findings of a host that was measured, never a failure.
    missing = hosts["h016"]
    assert missing["status"] == "warning" and missing["investigation"] is not None
    unseen = " ".join(missing["investigation"]["unseen"])
    assert "ss (iproute2) is not installed" in unseen and "lsof is not installed" in unseen, unseen
    assert "tcpdump" in json.dumps(missing["investigation"]["capture"]), missing["investigation"]["capture"]
    sudo = hosts["h017"]
    assert sudo["status"] == "warning"
    assert any("sudo needs a password" in line for line in sudo["investigation"]["unseen"]), sudo[
        "investigation"
    ]
    assert code == 1, "a warning (h02) wins over the unknowns"
    assert "Traceback" not in err
    assert wall < WINDOW + TIMEOUT + MARGIN + 1.0, f"{wall:.2f}s: window + timeout + a little (+ start-up)"
    assert doc["duration_s"] < WINDOW + TIMEOUT + MARGIN
    assert rss_kib < 200 * 1024, f"memory stays bounded with a 400 MB flood: {rss_kib} KiB"


def test_escape_sequences_from_a_host_never_reach_the_terminal(
    faulty_fleet: tuple[TestFleet, Path, Path],
) -> None:
    _, inventory, _ = faulty_fleet
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetrst.cli",
            "sweep",
            "-i",
            str(inventory),
            "h009",
            "--window",
            "1",
            "--timeout",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "h009" in proc.stdout and "ERROR" in proc.stdout
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout


def test_the_same_fleet_without_faults_for_comparison() -> None:
    # The figure the fault sweep is compared with: as many hosts, none faulty, one storming.
    with TestFleet(n_hosts=len(FAULTS) + 2) as fleet, fleet.closed_port_storm("h002", rate=100, duration=15):
        code, doc, _, wall, rss_kib = _sweep(fleet.inventory_path)
    print(f"\nhealthy sweep: {wall:.2f}s wall, peak RSS {rss_kib / 1024:.0f} MiB")
    assert code == 1 and doc["summary"]["ok"] == len(FAULTS) + 1 and doc["summary"]["warning"] == 1
