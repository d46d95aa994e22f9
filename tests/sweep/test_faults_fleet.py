"""The fault matrix (tests/sweep/faultmatrix.py): one real host per fault, all in one sweep, every
healthy host's result intact. One test per behaviour, all reading the same sweep, so a miss names
the behaviour that broke. Time is only guarded against hangs here, generously; how long the sweep
takes next to a healthy fleet is measured by benchmarks/bench_faults.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetrst.testing import TestFleet, require_fleet_support

from .faultmatrix import FAULTS, N_HOSTS, SweepRun, make_faults, sweep_the_faults

pytestmark = pytest.mark.fleet

# Far above window + timeout (5 s) and what the sweep takes on a loaded two-core machine: a sweep that
# takes this long hangs somewhere. The tight bound (window + timeout + a little) is a benchmark's.
HANG_GUARD_S = 60.0


@pytest.fixture(scope="module")
def faulty_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestFleet, Path]]:
    require_fleet_support()
    with TestFleet(n_hosts=N_HOSTS) as fleet:
        yield fleet, make_faults(fleet, tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def fault_sweep(faulty_fleet: tuple[TestFleet, Path]) -> tuple[SweepRun, float | None]:
    fleet, inventory = faulty_fleet
    run, killed_after = sweep_the_faults(fleet, inventory, hang_guard_s=HANG_GUARD_S * 2)
    print(f"\nfault sweep: {run.wall_s:.2f}s wall, peak RSS {run.peak_rss_kib / 1024:.0f} MiB")
    return run, killed_after


# (host, status, error kind, words in the error)
ERRORS = [
    ("h003", "unreachable", "refused", "connection refused"),
    ("h004", "unreachable", "timeout", "no answer from"),
    ("h005", "error", "host_key", "host key mismatch"),
    ("h006", "error", "auth", "authentication failed for user fleetrst-test"),
    ("h007", "error", "timeout", "SSH login timed out"),
    ("h008", "error", "timeout", "timed out after 5s (window 2s + timeout 3s) waiting for the probe"),
    ("h009", "error", "parse", "could not parse /proc/net/snmp"),
    ("h010", "error", "output_cap", "output over 1 MiB"),
    ("h012", "error", "lost", "connection was lost"),
    ("h013", "error", "rebooted", "rebooted during the window"),
    ("h014", "error", "config", "ansible_port must be an integer"),
]


@pytest.mark.parametrize(
    ("host", "status", "kind", "words"), ERRORS, ids=[f"{h}-{FAULTS[h]}" for h, *_ in ERRORS]
)
def test_each_fault_is_reported_as_what_it_is(
    fault_sweep: tuple[SweepRun, float | None], host: str, status: str, kind: str, words: str
) -> None:
    run, killed_after = fault_sweep
    if host == "h012":
        assert killed_after is not None, "the probe's sleep never showed on h012: its sshd was not killed"
    got = run.hosts[host]
    assert (got["status"], got["error_kind"]) == (status, kind), f"{FAULTS[host]}: {got}"
    assert words in got["error"], f"{FAULTS[host]}: {got['error']!r}"


def test_healthy_hosts_are_measured_as_if_no_host_were_faulty(
    fault_sweep: tuple[SweepRun, float | None],
) -> None:
    hosts = fault_sweep[0].hosts
    assert hosts["h001"]["status"] == "ok" and hosts["h001"]["rates"]["resets_received"] < 5
    assert hosts["h002"]["status"] == "warning" and 60 < hosts["h002"]["rates"]["resets_sent"] < 140


@pytest.mark.parametrize("host", ["h011", "h015"], ids=["h011-slow link", "h015-banner before the probe"])
def test_a_slow_link_or_a_talkative_login_is_still_measured(
    fault_sweep: tuple[SweepRun, float | None], host: str
) -> None:
    got = fault_sweep[0].hosts[host]
    assert got["status"] == "ok" and got["rates"] is not None, f"{FAULTS[host]}: {got}"


def test_missing_tools_on_a_resetting_host_are_findings_not_a_failure(
    fault_sweep: tuple[SweepRun, float | None],
) -> None:
    missing = fault_sweep[0].hosts["h016"]
    assert missing["status"] == "warning" and missing["investigation"] is not None
    unseen = " ".join(missing["investigation"]["unseen"])
    assert "ss (iproute2) is not installed" in unseen and "lsof is not installed" in unseen, unseen
    assert "tcpdump" in json.dumps(missing["investigation"]["capture"]), missing["investigation"]["capture"]


def test_sudo_that_wants_a_password_is_a_finding_not_a_prompt(
    fault_sweep: tuple[SweepRun, float | None],
) -> None:
    sudo = fault_sweep[0].hosts["h017"]
    assert sudo["status"] == "warning"
    assert any("sudo needs a password" in line for line in sudo["investigation"]["unseen"]), sudo[
        "investigation"
    ]


def test_the_exit_code_is_the_worst_measured_status_and_nothing_crashed(
    fault_sweep: tuple[SweepRun, float | None],
) -> None:
    run = fault_sweep[0]
    assert run.code == 1, "a warning (h002) wins over the unknowns"
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    assert set(run.hosts) == {f"h{i:03d}" for i in range(1, N_HOSTS + 1)}, "every host has a result"


def test_the_sweep_ends_whatever_the_hosts_do(fault_sweep: tuple[SweepRun, float | None]) -> None:
    run = fault_sweep[0]
    assert run.wall_s < HANG_GUARD_S and run.doc["duration_s"] < HANG_GUARD_S, f"{run.wall_s:.1f}s: a hang"


def test_memory_stays_bounded_with_a_400_mb_flood(fault_sweep: tuple[SweepRun, float | None]) -> None:
    assert fault_sweep[0].peak_rss_kib < 200 * 1024, f"{fault_sweep[0].peak_rss_kib} KiB"


def test_escape_sequences_from_a_host_never_reach_the_terminal(faulty_fleet: tuple[TestFleet, Path]) -> None:
    _, inventory = faulty_fleet
    argv = [sys.executable, "-m", "fleetrst.cli", "sweep", "-i", str(inventory), "h009"]
    proc = subprocess.run(
        [*argv, "--window", "1", "--timeout", "3"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    (row,) = [line for line in proc.stdout.splitlines() if line.startswith("h009 ")]
    assert row.split()[1] == "ERROR", f"h009's own status, not the header's column: {row!r}"
    assert "\\x1b" in row or "\\x07" in row, f"the escapes are shown as visible text: {row!r}"
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
