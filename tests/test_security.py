"""Secure by default, without a fleet: what an inventory says never becomes shell text, and the
known_hosts file is replaced atomically. (tests/test_security_fleet.py shows the same on real sshds.)"""

from __future__ import annotations

import inspect
import os
import re
import stat
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetrst.inventory import ConnectionDefaults, load_inventory
from fleetrst.investigate.runner import InvestigateOptions, RunbookInvestigator
from fleetrst.investigate.script import Plan, build_script
from fleetrst.measure.probe import probe_command
from fleetrst.model import ConnectionSettings, Target
from fleetrst.sweep import SweepOptions, run_sweep
from fleetrst.transport.base import DEFAULT_MAX_OUTPUT, ExecResult
from fleetrst.transport.known_hosts import NewHostKeys

ROOT = Path(__file__).parent
PROBE_OUT = (ROOT / "fixtures" / "proc" / "probe" / "closed-port.out").read_text()
RUNBOOK_OUT = (ROOT / "investigate" / "fixtures" / "runbook-h001.out").read_text()
RUNBOOK_NONCE = "0123456789abcdef"  # the nonce the captured runbook ran with
MARK = "zqcanary"  # in every string the inventory below holds, and in nothing fleetrst writes


# --- the builders take numbers, never names ---------------------------------------------------------


def test_the_probe_builder_takes_durations_a_switch_and_at_most_a_checked_sudo_user() -> None:
    # A new parameter here is a new way for inventory text to reach the remote shell: this test is the
    # place to say why it is safe (a number, or a name checked against a pattern and quoted).
    params = inspect.signature(probe_command).parameters
    assert {name: str(p.annotation) for name, p in params.items()} == {
        "window_s": "float",
        "baseline_s": "float | None",
        "containers": "bool",
        "become_user": "str | None",
    }
    for evil in (f"{MARK}$(reboot)", f"root; touch /tmp/{MARK}", f"'{MARK}'", "a b", ""):
        with pytest.raises(ValueError, match="user name"):
            probe_command(1, containers=True, become_user=evil)
    assert "sudo -n -u svc.user-1 -- sh -c " in probe_command(1, containers=True, become_user="svc.user-1")


def test_the_runbook_builder_takes_a_plan_of_numbers_and_a_hex_nonce() -> None:
    params = inspect.signature(build_script).parameters
    assert {name: str(p.annotation) for name, p in params.items()} == {"plan": "Plan", "nonce": "str"}
    # The one text field, the sudo user, is checked against a user-name pattern (test_runbook.py).
    assert {f.name: str(f.type) for f in fields(Plan)} == {
        "capture_s": "float | None",
        "max_packets": "int",
        "save_pcap": "bool",
        "pcap_max_bytes": "int",
        "logs": "bool",
        "become_user": "str | None",
        "step_timeout_s": "float",
        "samples": "int",
    }
    with pytest.raises(ValueError, match="nonce"):
        build_script(Plan(), f"{MARK}$(reboot)")


class Recorder:
    """A transport for every connection kind that records each command and answers it with real
    captured output (the probe's, the runbook's): a stand-in for hosts, and it says so."""

    name = "recorder"

    def __init__(self) -> None:
        self.commands: list[tuple[str, str]] = []  # (host, command)

    def get(self, kind: str) -> Recorder:
        return self

    async def aclose(self) -> None:
        return None

    async def open(self, target: Target, *, timeout: float) -> _Session:
        return _Session(self, target.name)


class _Session:
    def __init__(self, recorder: Recorder, host: str) -> None:
        self.recorder, self.host = recorder, host

    async def run(self, command: str, *, timeout: float, max_output: int = DEFAULT_MAX_OUTPUT) -> ExecResult:
        self.recorder.commands.append((self.host, command))
        if "M=@@" in command:
            nonce = command.split("M=@@", 1)[1].split("\n", 1)[0]
            return ExecResult(RUNBOOK_OUT.replace(RUNBOOK_NONCE, nonce), "", 0)
        return ExecResult(PROBE_OUT, "", 0)

    async def close(self) -> None:
        return None


EVIL = [f"web$(touch /tmp/{MARK})", f"db`id`;{MARK}|sh", f"'{MARK}' && reboot #", f'x"{MARK}"\\$HOME']


def hostile_inventory(path: Path) -> Path:
    hosts: dict[str, Any] = {}
    for i, name in enumerate(EVIL):
        hosts[name] = {
            "ansible_host": f"192.0.2.{i + 1}",
            "ansible_user": f"u{MARK}{i}",
            "ansible_port": 2200 + i,
            "ansible_ssh_private_key_file": f"/keys/{MARK}$(id)",
            "fleetrst_note": f"$(touch /tmp/{MARK}-var)",
            "ansible_become": True,
            "ansible_become_user": f"{MARK}$(id)",
            "unused": f"{{{{ '{MARK}' }}}}",
        }
    doc = {"all": {"children": {f"g{MARK}": {"hosts": hosts, "vars": {"other": f";{MARK}"}}}}}
    path.write_text(yaml.safe_dump(doc))
    return path


def test_no_inventory_text_reaches_a_remote_command(tmp_path: Path) -> None:
    # Every host name, group, address, user, key path and variable below holds MARK; the sweep runs
    # the probe and the whole runbook (with a capture) on each host through a recording transport.
    inventory = hostile_inventory(tmp_path / "hosts.yml")
    inv = load_inventory([str(inventory)])
    targets = inv.targets(inv.select("all"), ConnectionDefaults())
    assert sorted(t.name for t in targets) == sorted(EVIL) and not any(t.error for t in targets)
    recorder = Recorder()
    options = SweepOptions(window_s=1.0, timeout_s=5.0)
    investigator = RunbookInvestigator(InvestigateOptions(mode="always", capture_s=1.0, logs=True))
    report = run_sweep(targets, options, investigator=investigator, transports=recorder)
    assert {h.host for h in report.hosts} == set(EVIL) and all(h.rates for h in report.hosts)

    assert len(recorder.commands) == 2 * len(EVIL), "one probe and one runbook per host"
    for host, command in recorder.commands:
        assert MARK not in command, f"inventory text of {host!r} reached the remote shell"
    probes = {c for _, c in recorder.commands if "M=@@" not in c}
    runbooks = {re.sub(r"@@[0-9a-f]{16}", "@@NONCE", c) for _, c in recorder.commands if "M=@@" in c}
    assert len(probes) == 1, "every host gets the same probe, whatever its name"
    assert len(runbooks) == 1, "every host gets the same runbook but for its random nonce"


# --- known_hosts: replaced atomically --------------------------------------------------------------


def test_learnt_host_keys_replace_the_file_atomically_and_privately(tmp_path: Path) -> None:
    # docs/SECURITY.md: "written once, atomically (temp file + rename), mode 0600". A reader that
    # reads the file over and over while keys are saved sees the old file or the new one, never a
    # part; the file is a new inode (renamed into place, not rewritten) and private.
    path = tmp_path / "ssh" / "known_hosts"
    path.parent.mkdir(mode=0o700)
    old = "".join(f"old{i:05d}.example ssh-ed25519 AAAA{'k' * 60}{i:05d}\n" for i in range(20_000))
    path.write_text(old)
    path.chmod(0o600)
    states = [old]
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add(path.read_text())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(20):
            inode = path.stat().st_ino
            keys = NewHostKeys()
            keys.add(
                ConnectionSettings(address=f"192.0.2.{i}", known_hosts=(str(path),)), f"ssh-ed25519 K{i}"
            )
            keys.save()
            states.append(states[-1] + f"192.0.2.{i} ssh-ed25519 K{i}\n")
            assert path.stat().st_ino != inode, "a new file renamed into place, not the old one rewritten"
    finally:
        stop.set()
        thread.join()
    assert path.read_text() == states[-1]
    assert seen <= set(states), "a reader never sees a half-written known_hosts"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    left = sorted(set(os.listdir(path.parent)) - {"known_hosts", ".known_hosts.lock"})  # the lock may stay
    assert left == [], "no temporary file left behind"


def test_a_known_hosts_that_does_not_exist_yet_is_created_private_in_a_private_directory(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new" / "known_hosts"
    keys = NewHostKeys()
    keys.add(ConnectionSettings(address="192.0.2.9", port=2222, known_hosts=(str(path),)), "ssh-ed25519 K")
    keys.save()
    assert path.read_text() == "[192.0.2.9]:2222 ssh-ed25519 K\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
