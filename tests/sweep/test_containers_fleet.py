"""``--containers`` on the real fleet: test hosts that are machines, with real runc containers in them.

h001 and h002 are machines (``fleetrst.testing.containers``: each its own PID and mount namespace, so
its sessions see only its own processes; sshd is its pid 1, in the host's network namespace). In
h001 run, with Debian's runc from a busybox-static root filesystem:

- ``storm``: a runc container with its own network namespace, running a closed-port storm on itself
  (busybox ``nc`` to a closed port of 127.0.0.1, ~100-300 refused connects a second);
- the pod ``shop/cart-7d9f``: a pause container holding its namespace and an app container joining
  it, in kubelet's cgroupfs paths, with kubelet's ``/var/log/pods`` directory (the containers,
  namespaces and cgroups are real; the Kubernetes layout is made by the test, no kubelet runs);
- ``blue``: an ``ip netns`` namespace with a process in it.

h002 runs nothing. The login user is not root: the listing goes through ``sudo -n`` (``-b``), allowed
for ``sh`` by a sudoers drop-in for the module. One sweep with ``-b``, one without, one ``never``.
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
from fleetrst.testing.containers import (
    STORM,
    Containers,
    container_support_problems,
    make_machine,
)
from fleetrst.testing.support import ci
from tests.conftest import MakeFleet

pytestmark = pytest.mark.fleet

POD_UID = "3f1c2a9e-5b7d-4e21-9c0a-7d2e8b6f4a11"


def sweep(fleet: TestFleet, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", "sweep", "-i", str(fleet.inventory_path), "--window", "2",
         "--no-history", "-o", "json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert proc.stdout, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    doc["exit_code_seen"] = proc.returncode
    return doc


@contextlib.contextmanager
def sudo_sh(user: str) -> Iterator[None]:
    """``user`` may run ``sh`` as root without a password (what the listing under -b runs)."""
    shells = ", ".join(sorted({p for p in (shutil.which("sh"), "/bin/sh", "/usr/bin/sh") if p}))
    path = Path("/etc/sudoers.d") / f"fleetrst-containers-test-{secrets.token_hex(4)}"
    tmp = path.with_name("." + path.name)  # sudo skips names with a dot while we write and check
    tmp.write_text(f"{user} ALL=(root) NOPASSWD: {shells}\n")
    os.chmod(tmp, 0o440)
    try:
        check = subprocess.run(["visudo", "-cf", str(tmp)], capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        tmp.rename(path)
        yield
    finally:
        for p in (tmp, path):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


@pytest.fixture(scope="module")
def fleet(make_fleet: MakeFleet) -> Iterator[TestFleet]:
    problems = container_support_problems()
    if problems:
        reason = "no containers can run here: " + "; ".join(problems)
        if ci():
            pytest.fail(f"{reason} (CI=true: this test must run, not skip)", pytrace=False)
        pytest.skip(reason)
    fleet = make_fleet(2)
    machine = make_machine(fleet, "h001")
    make_machine(fleet, "h002")
    containers = Containers(machine, fleet.dir / "containers")
    try:
        containers.run("storm", ["sh", "-c", STORM])
        containers.pod("shop", "cart-7d9f", POD_UID, {"app": ["sleep", "100000"]})
        containers.netns("blue")
        yield fleet
    finally:
        containers.close()  # before the fleet ends the machines: runc's cgroups are on this box


@pytest.fixture(scope="module")
def with_become(fleet: TestFleet) -> dict[str, Any]:
    with sudo_sh(fleet.user):
        return sweep(fleet, "-b")


def hosts(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in doc["hosts"]}


def test_a_storm_inside_one_container_is_found_on_exactly_that_container_of_that_host(
    with_become: dict[str, Any],
) -> None:
    found = [
        (h["host"], n["runtime"], n["name"])
        for h in with_become["hosts"]
        for n in h["namespaces"] or []
        if n["status"] in ("warning", "critical")
    ]
    assert found == [("h001", "runc", "storm")]
    storm = hosts(with_become)["h001"]["namespaces"][0]  # worst first
    assert storm["name"] == "storm" and storm["rates"]["resets_sent"] > 50
    assert {t["metric"] for t in storm["tripped"]} >= {"resets_sent", "resets_received"}
    assert with_become["exit_code_seen"] == with_become["exit_code"] in (1, 2)


def test_the_hosts_own_row_stays_quiet_the_row_netdata_and_node_exporter_would_show(
    with_become: dict[str, Any],
) -> None:
    h001 = hosts(with_become)["h001"]
    assert h001["status"] == "ok" and h001["tripped"] == []
    assert h001["rates"]["resets_sent"] < 5


def test_every_namespace_of_the_machine_is_named_as_its_runtime_knows_it(with_become: dict[str, Any]) -> None:
    h001, h002 = hosts(with_become)["h001"], hosts(with_become)["h002"]
    assert {(n["runtime"], n["name"]) for n in h001["namespaces"]} == {
        ("runc", "storm"),
        ("kubernetes", "shop/cart-7d9f"),
        ("netns", "blue"),
    }
    assert h001["namespaces_unseen"] == []
    assert h002["namespaces"] == [] and h002["status"] == "ok"  # a machine with no containers


def test_the_table_shows_the_container_under_its_host(fleet: TestFleet) -> None:
    with sudo_sh(fleet.user):
        proc = subprocess.run(
            [sys.executable, "-m", "fleetrst.cli", "sweep", "-i", str(fleet.inventory_path), "--window", "1",
             "--no-history", "-b", "-q"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    lines = proc.stdout.splitlines()
    host_row = next(i for i, line in enumerate(lines) if line.startswith("h001 "))
    assert lines[host_row + 1].startswith("h001 › storm ")  # right under its host, host row kept
    assert "OK" in lines[host_row].split()[1] and lines[host_row + 1].split()[3] in ("WARNING", "CRITICAL")
    assert not any("h002" in line for line in lines[:host_row])  # -q: the quiet host is left out


def test_without_become_the_host_is_measured_and_the_json_says_why_no_container_was_seen(
    fleet: TestFleet,
) -> None:
    doc = sweep(fleet)
    h001 = hosts(doc)["h001"]
    assert h001["status"] == "ok" and h001["namespaces"] == []
    assert h001["namespaces_unseen"] == [
        "namespaces not listed: the probe's user is not root (use -b to list them through sudo)"
    ]
    assert doc["exit_code_seen"] == 0


def test_never_skips_the_namespaces(fleet: TestFleet) -> None:
    with sudo_sh(fleet.user):
        doc = sweep(fleet, "-b", "--containers", "never")
    assert all(h["namespaces"] is None and h["namespaces_unseen"] == [] for h in doc["hosts"])
    assert doc["exit_code_seen"] == 0
