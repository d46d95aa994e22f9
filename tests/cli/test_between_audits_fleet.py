"""Between audits, on a real fleet: a storm that runs only between two audits is counted (against the
generator's own count), flagged although the window is quiet, and named by ``fleetrst report``; a
reboot (the stand-in the fault matrix uses: a namespace cannot reboot) and a really recreated network
namespace give no interval, only the reason.

Short on purpose: 1 s windows and a 3 s storm (the whole module takes about half a minute)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetrst.testing import FleetHost, TestFleet
from tests.helpers import run_cli

pytestmark = pytest.mark.fleet

# Stand-in for a reboot between two audits: the real probe runs, and every line holding the host's
# boot_id is given another one (both samples alike, so the window itself is fine).
OTHER_BOOT = """#!/bin/sh
real=$(cat /proc/sys/kernel/random/boot_id)
/bin/sh -c "$SSH_ORIGINAL_COMMAND" | sed "s/^$real\\$/00000000-1111-4222-8333-444444444444/"
"""


@pytest.fixture(scope="module")
def fleet(make_fleet: object) -> Iterator[TestFleet]:
    yield make_fleet(3)  # type: ignore[operator]


def sweep(
    fleet: TestFleet, db: Path, env: dict[str, str], cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "sweep",
        "-i",
        str(fleet.inventory_path),
        "--window",
        "1",
        "--db",
        str(db),
        "-o",
        "json",
        *args,
        env=env,
        cwd=cwd,
    )


def hosts_of(proc: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    return {h["host"]: h for h in json.loads(proc.stdout)["hosts"]}


def test_a_storm_between_two_audits_is_counted_flagged_and_named(
    fleet: TestFleet, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    db = tmp_path / "h.sqlite"
    first = sweep(fleet, db, cli_env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert {h["since_last_missing"]["reason"] for h in hosts_of(first).values()} == {"first_audit"}  # type: ignore[index]

    with fleet.closed_port_storm("h002", rate=300, duration=3) as storm:
        results = storm.wait()
    made = results["closed-port-storm"]["refused"]
    assert made > 600, results

    second = sweep(fleet, db, cli_env, tmp_path)
    hosts = hosts_of(second)
    h002 = hosts["h002"]
    assert h002["status"] == "ok", "the storm was over before this audit's window"
    since = h002["since_last"]
    assert isinstance(since, dict), h002["since_last_missing"]
    for counter in ("AttemptFails", "OutRsts"):
        counted = since["counts"][counter]
        assert abs(counted - made) <= 0.05 * made, f"{counter}: counted {counted}, the storm made {made}"
    print(
        f"\nstorm: {made} refused connects; since_last counted {since['counts']['AttemptFails']} "
        f"AttemptFails, {since['counts']['OutRsts']} OutRsts over {since['interval_s']}s"
    )
    assert {t["metric"] for t in since["tripped"]} == {"resets_received", "resets_sent"}
    assert since["note"].startswith("quiet now;") and "could not be seen live" in since["note"]
    assert {t["level"] for t in since["tripped"]} == {"warning"}, "over 10/s on average, under 250/s"
    assert hosts["h001"]["since_last"]["tripped"] == [], "a quiet host stays quiet"  # type: ignore[index]
    assert second.returncode == 1, "a warning between audits is a warning (README: exit codes)"

    report = run_cli("report", "--db", str(db), env=cli_env, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    quiet = report.stdout.split("Quiet at every audit, yet resetting in between")[1].split("New offenders")[0]
    assert "h002" in quiet and "h001" not in quiet, report.stdout
    history = run_cli("history", "h002", "--db", str(db), "-o", "json", env=cli_env, cwd=tmp_path)
    [trend] = json.loads(history.stdout)
    assert abs(trend["between_audits"]["counted"] - made) <= 0.05 * made
    assert trend["tripped"] == 0 and trend["between_audits"]["quiet_tripped"] == 1


def test_a_reboot_between_audits_gives_no_interval_only_the_reason(
    fleet: TestFleet, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    db = tmp_path / "h.sqlite"
    assert sweep(fleet, db, cli_env, tmp_path, "h003").returncode == 0
    fleet.reconfigure_sshd("h003", [f"ForceCommand {fleet.write_script('other-boot', OTHER_BOOT)}"])
    try:
        after = sweep(fleet, db, cli_env, tmp_path, "h003")
    finally:
        fleet.reconfigure_sshd("h003", [])
    h003 = hosts_of(after)["h003"]
    assert h003["status"] == "ok", h003["error"]
    assert h003["since_last"] is None
    assert h003["since_last_missing"]["reason"] == "rebooted", h003  # type: ignore[index]
    assert "boot_id changed" in h003["since_last_missing"]["detail"]  # type: ignore[index]


def recreate_namespace(fleet: TestFleet, host: FleetHost) -> None:
    """Delete the host's network namespace and make it again, same name, address and sshd: what a
    container restart does to its namespace. Its counters start again from 0."""
    link = json.loads(
        subprocess.run(
            ["ip", "-j", "link", "show", host.veth], capture_output=True, text=True, check=True
        ).stdout
    )
    bridge = link[0]["master"]
    fleet.stop_sshd(host, kill_sessions=True)
    pids = subprocess.run(
        ["ip", "netns", "pids", host.netns], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in pids:
        subprocess.run(["kill", "-9", pid], check=False)
    subprocess.run(["ip", "netns", "del", host.netns], check=True)
    for _ in range(100):  # the veth goes with the last reference to the namespace
        if subprocess.run(["ip", "link", "show", host.veth], capture_output=True, check=False).returncode:
            break
        time.sleep(0.05)
    for argv in (
        ["ip", "netns", "add", host.netns],
        ["ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns],
        ["ip", "link", "set", host.veth, "master", bridge, "up"],
        ["ip", "-n", host.netns, "addr", "add", f"{host.address}/{host.prefixlen}", "dev", "eth0"],
        ["ip", "-n", host.netns, "link", "set", "eth0", "up"],
        ["ip", "-n", host.netns, "link", "set", "lo", "up"],
    ):
        subprocess.run(argv, check=True, capture_output=True)
    # The controller still has the old eth0's MAC for the address: forget it, or the next connect
    # waits for the kernel to find out (seconds of SYN retries).
    subprocess.run(["ip", "neigh", "flush", "to", host.address], check=False, capture_output=True)
    host.netns_inode = os.stat(f"/run/netns/{host.netns}").st_ino
    fleet.start_sshd(host)


def test_a_recreated_namespace_gives_no_interval_only_the_reason(
    fleet: TestFleet, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    db = tmp_path / "h.sqlite"
    for _ in range(2):  # some traffic in the old namespace's counters
        assert sweep(fleet, db, cli_env, tmp_path, "h001").returncode == 0
    recreate_namespace(fleet, fleet.host("h001"))
    after = sweep(fleet, db, cli_env, tmp_path, "h001")
    h001 = hosts_of(after)["h001"]
    assert h001["status"] == "ok", h001["error"]
    assert h001["since_last"] is None
    missing = h001["since_last_missing"]
    assert missing["reason"] == "counters_reset", missing  # type: ignore[index]
    assert "went backwards" in missing["detail"] and "namespace was recreated" in missing["detail"]  # type: ignore[index]
    again = hosts_of(sweep(fleet, db, cli_env, tmp_path, "h001"))["h001"]
    assert isinstance(again["since_last"], dict), "the new namespace is a new series from its first audit on"
