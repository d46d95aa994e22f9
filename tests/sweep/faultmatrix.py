"""The fault matrix: one real host per fault on one test fleet, and a sweep of all of them at once.

Shared by ``tests/sweep/test_faults_fleet.py`` (what each host is reported as, with a generous hang
guard) and ``benchmarks/bench_faults.py`` (how long the same sweep takes and how much memory, against
a fleet of as many healthy hosts: the tight figures).

Each fault is made for real on the test fleet: a stopped sshd, a namespace that blackholes its
replies, a replaced host key, a wrong client key, a real sshd whose login hangs in
AuthorizedKeysCommand, real sshds whose ForceCommand never returns / prints garbage / floods, a
rate-limited veth, an sshd killed during the window (when the probe's ``sleep`` is seen running on
that host, not on a timer). One is a stand-in and says so: a reboot cannot happen inside a namespace
(boot_id is the kernel's), so that host's ForceCommand runs the real probe and rewrites the last
sample's boot_id, as a reboot would.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleetrst.testing import TestFleet

WINDOW, TIMEOUT = 2.0, 3.0

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

NOISY = """#!/bin/sh
# A login that talks before the command runs (a motd, an rc file's echo): the probe must not care.
echo 'Welcome to h015! Last login: yesterday'
printf 'Tcp: 1 2 3\\n@@end 7\\n'
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
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
N_HOSTS = len(FAULTS) + 2  # h001 healthy and quiet, h002 healthy and storming
KILLED_IN_WINDOW = "h012"
STORMING = ("h002", "h016", "h017")


def make_faults(fleet: TestFleet, tmp: Path) -> Path:
    """Apply every fault of FAULTS to ``fleet``; the inventory that sweeps them all."""
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
    return faulty


def processes_in(fleet: TestFleet, host: str) -> list[list[str]]:
    """The argv of every process running in the host's network namespace (read as root)."""
    inode = fleet.host(host).netns_inode
    found: list[list[str]] = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):  # processes come and go
                if os.readlink(f"/proc/{pid}/ns/net") == f"net:[{inode}]":
                    found.append(
                        Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
                    )
    return found


class KillSshdWhenTheProbeSleeps:
    """Watches a host's processes; once the probe's window ``sleep`` runs there, kills the host's sshd
    and its sessions: the connection is lost in the middle of the window, whatever the machine's speed.
    ``killed_after_s``: when that happened (None: the sleep was never seen)."""

    def __init__(self, fleet: TestFleet, host: str, window: float, give_up_s: float = 60.0) -> None:
        self.fleet, self.host = fleet, host
        self.sleep_argv = ["sleep", f"{window:g}"]
        self.give_up_s = give_up_s
        self.killed_after_s: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch)

    def _watch(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set() and time.monotonic() - start < self.give_up_s:
            if any(argv[:2] == self.sleep_argv for argv in processes_in(self.fleet, self.host)):
                self.fleet.stop_sshd(self.host, kill_sessions=True)
                self.killed_after_s = time.monotonic() - start
                return
            time.sleep(0.01)

    def __enter__(self) -> KillSshdWhenTheProbeSleeps:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.fleet.start_sshd(self.host)


@dataclass(frozen=True)
class SweepRun:
    code: int
    doc: dict[str, Any]
    stderr: str
    wall_s: float
    peak_rss_kib: int

    @property
    def hosts(self) -> dict[str, dict[str, Any]]:
        return {h["host"]: h for h in self.doc["hosts"]}


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


def sweep(inventory: Path, *extra: str, hang_guard_s: float = 120.0) -> SweepRun:
    """``fleetrst sweep -o json`` in a child process (window WINDOW, timeout TIMEOUT)."""
    argv = [sys.executable, "-m", "fleetrst.cli", "sweep", "-i", str(inventory), "-o", "json"]
    argv += ["--window", str(WINDOW), "--timeout", str(TIMEOUT), *extra]
    start = time.monotonic()
    done, seen = threading.Event(), [0]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
        watcher = threading.Thread(target=_peak_rss_kib, args=(proc.pid, done, seen))
        watcher.start()
        try:
            out, _ = proc.communicate(timeout=hang_guard_s)
        finally:
            proc.kill()
            proc.wait()
            done.set()
            watcher.join()
        wall = time.monotonic() - start
        err.seek(0)
        return SweepRun(proc.returncode, json.loads(out), err.read().decode(), wall, max(seen))


@contextlib.contextmanager
def storms(fleet: TestFleet, hosts: tuple[str, ...] = STORMING) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for host in hosts:
            stack.enter_context(fleet.closed_port_storm(host, rate=100, duration=15))
        yield


def sweep_the_faults(
    fleet: TestFleet, inventory: Path, hang_guard_s: float = 120.0
) -> tuple[SweepRun, float | None]:
    """The fault sweep (with a 1 s capture for the investigated hosts) while three hosts storm and
    h012's sshd is killed once its probe sleeps; the run, and when the kill happened."""
    with storms(fleet), KillSshdWhenTheProbeSleeps(fleet, KILLED_IN_WINDOW, WINDOW) as killer:
        run = sweep(inventory, "--capture", "1", hang_guard_s=hang_guard_s)
    return run, killer.killed_after_s
