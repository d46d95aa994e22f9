"""Secure by default, on the real fleet: host keys, quoting, secrets, templates, private files."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
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

from fleetrst.inventory import ConnectionDefaults, load_inventory
from fleetrst.testing import TestFleet, require_fleet_support

pytestmark = pytest.mark.fleet

CANARY = "canary-s3cr3t-7f3a"


@pytest.fixture(scope="module")
def fleet() -> Iterator[TestFleet]:
    require_fleet_support()
    with TestFleet(n_hosts=3) as f:
        yield f


def _inventory(fleet: TestFleet, path: Path, hosts: dict[str, dict[str, Any]], **group_vars: Any) -> Path:
    doc = yaml.safe_load(fleet.inventory_path.read_text())
    group = doc["all"]["children"]["fleet"]
    group["hosts"] = hosts
    group["vars"].update(group_vars)
    path.write_text(yaml.safe_dump(doc))
    return path


def _fleetrst(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_unknown_host_keys_are_refused_by_default(fleet: TestFleet, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    inv = _inventory(
        fleet,
        tmp_path / "inv.yml",
        {"h001": {"ansible_host": fleet.host("h001").address}},
        ansible_ssh_common_args=f"-o UserKnownHostsFile={empty}",
    )
    doc = json.loads(_fleetrst("sweep", "-i", str(inv), "--window", "1", "-o", "json").stdout)
    host = doc["hosts"][0]
    assert (host["status"], host["error_kind"]) == ("error", "host_key")
    assert host["error"].startswith("host key unknown")


def test_accept_new_records_keys_atomically_and_privately_and_still_refuses_changed_ones(
    fleet: TestFleet, tmp_path: Path
) -> None:
    learnt = tmp_path / "ssh" / "learnt_known_hosts"
    hosts = {h.name: {"ansible_host": h.address} for h in fleet.hosts}
    inv = _inventory(
        fleet,
        tmp_path / "inv.yml",
        hosts,
        ansible_ssh_common_args=f"-o UserKnownHostsFile={learnt} -o StrictHostKeyChecking=accept-new",
    )
    # A key the operator already had: kept, and the file holding it is replaced (temp file + rename,
    # a new inode), never rewritten in place (tests/test_security.py races a reader against it).
    learnt.parent.mkdir(mode=0o700)
    known = f"192.0.2.250 {' '.join(fleet.host('h001').host_public_key.split()[:2])}"
    learnt.write_text(known + "\n")
    learnt.chmod(0o600)
    inode = learnt.stat().st_ino
    first = json.loads(_fleetrst("sweep", "-i", str(inv), "--window", "1", "-o", "json").stdout)
    assert first["summary"]["ok"] == 3
    assert stat.S_IMODE(learnt.stat().st_mode) == 0o600
    assert learnt.stat().st_ino != inode, "replaced by a rename, not rewritten in place"
    known_line, *lines = learnt.read_text().splitlines()
    assert known_line == known, "the keys already there are kept, first"
    assert sorted(line.split()[0] for line in lines) == sorted(h.address for h in fleet.hosts)
    for h in fleet.hosts:
        assert f"{h.address} {' '.join(h.host_public_key.split()[:2])}" in lines
    assert not [p for p in learnt.parent.iterdir() if p.name.startswith(".known_hosts.")], "no temp files"

    # The learnt file now serves strict checking, and a changed key is refused even under accept-new.
    fleet.replace_host_key("h002")
    try:
        strict = _inventory(
            fleet, tmp_path / "strict.yml", hosts, ansible_ssh_common_args=f"-o UserKnownHostsFile={learnt}"
        )
        doc = json.loads(_fleetrst("sweep", "-i", str(strict), "--window", "1", "-o", "json").stdout)
        by_host = {h["host"]: h for h in doc["hosts"]}
        assert by_host["h001"]["status"] == "ok"
        assert by_host["h002"]["error_kind"] == "host_key"
        again = json.loads(_fleetrst("sweep", "-i", str(inv), "--window", "1", "-o", "json").stdout)
        assert {h["host"]: h["error_kind"] for h in again["hosts"]}["h002"] == "host_key"
        assert len(learnt.read_text().splitlines()) == 1 + 3, "a changed key is not appended"
    finally:
        # put the fleet's known_hosts back in step for other tests
        fleet_kh = fleet.known_hosts_path.read_text().splitlines()
        address = fleet.host("h002").address
        fixed = [ln for ln in fleet_kh if not ln.startswith(address + " ")]
        fixed.append(f"{address} {' '.join(fleet.host('h002').host_public_key.split()[:2])}")
        fleet.known_hosts_path.write_text("\n".join(fixed) + "\n")


class RemoteProcesses:
    """Every command line run in a host's network namespace while the block runs (polled as root),
    and the file a remote command would touch: a canary in a directory the login user can write."""

    def __init__(self, fleet: TestFleet, host: str) -> None:
        inode = fleet.host(host).netns_inode
        assert inode is not None
        self.netns = f"net:[{inode}]"
        self.canary_dir = Path(tempfile.mkdtemp(prefix="fleetrst-canary-", dir="/tmp"))
        self.canary_dir.chmod(0o1777)  # world-writable like /tmp: the remote shell's user can write here
        self.canary = self.canary_dir / "pwned"
        self.cmdlines: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    with contextlib.suppress(OSError):  # processes come and go
                        if os.readlink(f"/proc/{pid}/ns/net") == self.netns:
                            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                            self.cmdlines.add(raw.replace(b"\0", b" ").decode(errors="replace"))
            time.sleep(0.01)

    def __enter__(self) -> RemoteProcesses:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        shutil.rmtree(self.canary_dir, ignore_errors=True)


def test_names_from_an_inventory_never_reach_a_shell(fleet: TestFleet, tmp_path: Path) -> None:
    with RemoteProcesses(fleet, "h001") as remote:
        marker = remote.canary
        # The canary works: the login user's shell, run as a sweep's would be, can create the marker.
        control = remote.canary_dir / "control"
        subprocess.run(fleet.ssh_argv("h001", f"touch {control}"), check=True, timeout=30)
        assert control.exists() and control.stat().st_uid != 0
        evil = f"web$(touch {marker});`touch {marker}`|touch {marker}"
        inv = _inventory(
            fleet,
            tmp_path / "inv.yml",
            {evil: {"ansible_host": fleet.host("h001").address, "fleetrst_note": f"$(touch {marker})"}},
        )
        for conn in ("ssh", "paramiko"):
            proc = _fleetrst("sweep", "-i", str(inv), "--window", "1", "-o", "json", "-c", conn, "all")
            doc = json.loads(proc.stdout)
            assert doc["hosts"][0]["host"] == evil and doc["hosts"][0]["status"] == "ok", proc.stderr
        assert not marker.exists(), "an inventory name ran as a command on the host"
    probes = [c for c in remote.cmdlines if "@@fleetrst-probe" in c]
    assert probes, f"the watcher never saw the probe run, so it would miss an injection: {remote.cmdlines}"
    assert not [c for c in remote.cmdlines if "touch" in c and str(control) not in c], remote.cmdlines
    assert not [c for c in remote.cmdlines if "web$(" in c], remote.cmdlines


def test_secrets_never_reach_output_or_process_arguments(fleet: TestFleet, tmp_path: Path) -> None:
    wrong_key = tmp_path / "wrong"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_key)], check=True)
    inv = _inventory(
        fleet,
        tmp_path / "inv.yml",
        {
            "h001": {"ansible_host": fleet.host("h001").address},
            # password auth is off on the fleet's sshd: this host fails auth with the password in hand
            "h002": {
                "ansible_host": fleet.host("h002").address,
                "ansible_ssh_private_key_file": str(wrong_key),
            },
        },
        ansible_password=CANARY,
        ansible_become_password=CANARY,
    )
    seen_args: list[str] = []
    stop = threading.Event()

    def watch_cmdlines() -> None:
        while not stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    with contextlib.suppress(OSError):  # processes come and go
                        seen_args.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_cmdlines)
    watcher.start()
    try:
        outputs = [
            _fleetrst("sweep", "-i", str(inv), "--window", "1", "-o", fmt) for fmt in ("table", "json", "csv")
        ]
        outputs.append(_fleetrst("sweep", "-i", str(inv), "--window", "1", "-c", "paramiko"))
    finally:
        stop.set()
        watcher.join()
    for proc in outputs:
        assert CANARY not in proc.stdout and CANARY not in proc.stderr
        assert "authentication failed" in proc.stdout or "auth" in proc.stdout
    assert seen_args and not any(CANARY in args for args in seen_args)
    # The value is there to be used (the Target carries it), yet its repr never shows it.
    target = load_inventory([str(inv)]).targets(["h002"], ConnectionDefaults())[0]
    assert target.connection.password == CANARY and CANARY not in repr(target)


def test_templates_render_in_a_sandbox(fleet: TestFleet, tmp_path: Path) -> None:
    # Unsandboxed, this template renders h001's real address (a str's class is named "str") and the
    # host would be measured "ok"; the sandbox refuses the attribute, in its own words.
    address = fleet.host("h001").address
    payload = f"{{{{ '{address}' if inventory_hostname.__class__.__name__ == 'str' else 'x' }}}}"
    inv = _inventory(
        fleet,
        tmp_path / "inv.yml",
        {"h001": {"ansible_host": payload}, "h002": {"ansible_host": fleet.host("h002").address}},
    )
    doc = json.loads(_fleetrst("sweep", "-i", str(inv), "--window", "1", "-o", "json").stdout)
    by_host = {h["host"]: h for h in doc["hosts"]}
    assert (by_host["h001"]["status"], by_host["h001"]["error_kind"]) == ("error", "config"), by_host["h001"]
    error = by_host["h001"]["error"]
    assert error.startswith("host h001: ansible_host: template ") and error.endswith(
        "access to attribute '__class__' of 'str' object is unsafe."
    ), error
    assert by_host["h002"]["status"] == "ok", "one bad host costs no other its result"
