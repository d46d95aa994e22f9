"""``--dask``: the sweep's shards on a real Dask cluster, against the real fleet.

One ``distributed.LocalCluster`` (two worker processes with nannies, both declaring the site ``s1``,
the scheduler listening on every address) serves the module. The sites test adds two ``dask worker``
processes, each inside its own network namespace (that of the first host of a fleet of its own), so
each reaches only its site's segment; the worker-loss test adds one for site ``s2`` and kills it, and
one of the LocalCluster's workers, mid-sweep.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetrst.testing import TestFleet
from fleetrst.testing._system import enter_netns
from tests.conftest import MakeFleet

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.fleet


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    # Everything on loopback, except that the scheduler also listens on the fleets' bridges (every
    # address), where the namespaced workers reach it; nothing is sent to this machine's own address.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        scheduler_kwargs={"host": "0.0.0.0", "port": port, "contact_address": f"tcp://127.0.0.1:{port}"},
        dashboard_address=None,
        resources={"s1": 1},
    ) as cluster:
        yield cluster


def port_of(cluster: Any) -> int:
    return int(cluster.scheduler_address.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def fleet(make_fleet: MakeFleet) -> Iterator[TestFleet]:
    fleet = make_fleet(4)
    with fleet.closed_port_storm("h002", rate=100, duration=300):
        yield fleet


def sweep(*args: str, command: str = "sweep") -> tuple[int, dict[str, Any], str]:
    history = ("--no-history",) if command == "sweep" else ()  # investigate keeps none
    proc = subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", command, "-o", "json", *history, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def verdicts(doc: dict[str, Any]) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {h["host"]: (h["status"], tuple(sorted(t["metric"] for t in h["tripped"]))) for h in doc["hosts"]}


@contextlib.contextmanager
def dask_worker(
    scheduler: str, resources: str, netns: str | None = None, host: str | None = None
) -> Iterator[int]:
    """A ``dask worker`` process without a nanny (killed, it stays dead), optionally in ``netns``."""
    argv = [sys.executable, "-m", "distributed.cli.dask_worker", scheduler, "--nthreads", "1"]
    argv += ["--no-nanny", "--no-dashboard", "--resources", resources, "--death-timeout", "30"]
    if host is not None:
        argv += ["--host", host]
    if netns is not None:
        argv = [*enter_netns(netns), *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(10)


def wait_for_workers(cluster: Any, count: int) -> None:
    with distributed.Client(cluster.scheduler_address) as client:
        client.wait_for_workers(count, timeout=30)


def test_a_sweep_through_the_cluster_equals_a_local_sweep(fleet: TestFleet, cluster: Any) -> None:
    args = ("-i", str(fleet.inventory_path), "--window", "1")
    code_here, here, _ = sweep(*args)
    code_dask, there, err = sweep(*args, "--dask", cluster.scheduler_address)
    assert verdicts(there) == verdicts(here), err
    assert verdicts(there)["h002"] == ("warning", ("resets_received", "resets_sent"))
    assert all(h["rates"] is not None for h in there["hosts"])
    assert code_dask == code_here == 1


def test_an_investigation_through_the_cluster_finds_what_one_here_finds(
    fleet: TestFleet, cluster: Any
) -> None:
    args = ("-i", str(fleet.inventory_path), "--window", "1", "--capture", "1")

    def found(doc: dict[str, Any]) -> dict[str, tuple[str, tuple[str, ...]]]:
        return {
            h["host"]: (h["status"], tuple(c["cause"] for c in h["investigation"]["causes"]))
            for h in doc["hosts"]
        }

    code_here, here, _ = sweep(*args, command="investigate")
    code_dask, there, err = sweep(*args, "--dask", cluster.scheduler_address, command="investigate")
    assert found(there) == found(here), err
    assert found(there)["h002"] == ("warning", ("closed_port",))
    assert code_dask == code_here == 1


def two_site_inventory(a: TestFleet, b: TestFleet, path: Path, sites: dict[str, str]) -> Path:
    groups = {}
    for label, fleet in (("a", a), ("b", b)):
        groups[f"site_{label}"] = {
            "hosts": {f"{label}{h.index}": {"ansible_host": h.address} for h in fleet.hosts},
            "vars": {
                "ansible_user": fleet.user,
                "ansible_ssh_private_key_file": str(fleet.client_key_path),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={fleet.known_hosts_path}",
                "fleetrst_site": sites[label],
            },
        }
    path.write_text(yaml.safe_dump({"all": {"children": groups}}))
    return path


def test_each_host_is_measured_only_through_its_sites_worker(
    make_fleet: MakeFleet, cluster: Any, tmp_path: Path
) -> None:
    # Two segments, each with a Dask worker inside it (in its first host's namespace: it reaches its
    # own segment and the scheduler through its bridge, and nothing of the other segment).
    a, b = make_fleet(3), make_fleet(3)
    port = port_of(cluster)
    with (
        dask_worker(f"tcp://{a.hosts[0].gateway}:{port}", "dcA=1", a.hosts[0].netns, a.hosts[0].address),
        dask_worker(f"tcp://{b.hosts[0].gateway}:{port}", "dcB=1", b.hosts[0].netns, b.hosts[0].address),
    ):
        wait_for_workers(cluster, 4)
        right = two_site_inventory(a, b, tmp_path / "right.yml", {"a": "dcA", "b": "dcB"})
        code, doc, err = sweep("-i", str(right), "--window", "1", "--dask", cluster.scheduler_address)
        assert {h["host"]: h["status"] for h in doc["hosts"]} == dict.fromkeys(
            ["a1", "a2", "a3", "b1", "b2", "b3"], "ok"
        ), err
        assert code == 0
        # The proof that the site decides: swapped, every host is tried from the other segment.
        wrong = two_site_inventory(a, b, tmp_path / "wrong.yml", {"a": "dcB", "b": "dcA"})
        code, doc, err = sweep("-i", str(wrong), "--window", "1", "--dask", cluster.scheduler_address)
        for host in doc["hosts"]:
            assert (host["status"], host["error_kind"]) == ("unreachable", "no_route"), host
        # A site that no worker declares is said at once, for its hosts only.
        none = two_site_inventory(a, b, tmp_path / "none.yml", {"a": "dcA", "b": "dcC"})
        code, doc, err = sweep("-i", str(none), "--window", "1", "--dask", cluster.scheduler_address)
        statuses = {h["host"]: (h["status"], h["error_kind"]) for h in doc["hosts"]}
        assert statuses["a1"] == ("ok", None)
        assert statuses["b1"] == ("error", "config")
        errors = {h["host"]: h["error"] for h in doc["hosts"]}
        assert errors["b1"].startswith(
            "no Dask worker declares the resource 'dcC' (this host's fleetrst_site)"
        )


def sleeping_on(fleet: TestFleet, host: str, window: str) -> bool:
    found = fleet.run_in(host, ["pgrep", "-u", fleet.user, "-f", f"sleep {window}"])
    return bool(found.stdout.strip())


def test_a_worker_killed_mid_sweep_is_retried_elsewhere_or_its_hosts_are_reported_lost(
    fleet: TestFleet, cluster: Any, tmp_path: Path
) -> None:
    doc = yaml.safe_load(fleet.inventory_path.read_text())
    hosts = doc["all"]["children"]["fleet"]["hosts"]
    for name, site in (("h001", "s1"), ("h002", "s1"), ("h003", "s2"), ("h004", "s2")):
        hosts[name]["fleetrst_site"] = site
    # In the s2 shard too, but done at once (refused): sent as it finished, it outlives its worker.
    hosts["refused"] = {
        "ansible_host": fleet.host("h003").address,
        "ansible_port": 2200,
        "fleetrst_site": "s2",
    }
    inventory = tmp_path / "sites.yml"
    inventory.write_text(yaml.safe_dump(doc))
    with distributed.Client(cluster.scheduler_address) as client:
        pids = client.run(os.getpid)  # the LocalCluster's two workers (s1), each with a nanny
    with dask_worker(cluster.scheduler_address, "s2=1", host="127.0.0.1") as s2_worker:  # the only s2 one
        wait_for_workers(cluster, 3)
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "fleetrst.cli", "sweep", "-i", str(inventory), "-o", "json"),
                *("--no-history", "--window", "4", "--timeout", "2", "--dask", cluster.scheduler_address),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while not all(sleeping_on(fleet, h, "4") for h in ("h001", "h002", "h003", "h004")):
            assert time.monotonic() < deadline and proc.poll() is None, "the shards never started"
            time.sleep(0.1)
        time.sleep(0.5)  # two of the shards' sends (every quarter second): the refused host's went
        os.kill(next(iter(pids.values())), signal.SIGKILL)  # one s1 worker: its nanny restarts it
        os.kill(s2_worker, signal.SIGKILL)  # the s2 worker: no other worker can take its shard
        out, err = proc.communicate(timeout=60)
    result = json.loads(out)
    statuses = {h["host"]: (h["status"], h["error_kind"]) for h in result["hosts"]}
    # s1: both measured, one of them by a second run of its shard on another worker
    assert statuses["h001"] == ("ok", None), err
    assert statuses["h002"] == ("warning", None), err
    for name in ("h003", "h004"):
        assert statuses[name] == ("error", "worker_lost")
    assert statuses["refused"] == ("unreachable", "refused"), "its result came before its worker went"
    lost = {h["host"]: h["error"] for h in result["hosts"]}["h003"]
    assert lost == (
        "the Dask worker sweeping this host's shard was lost, and no other worker for site 's2' was "
        "there to retry it within 6s"
    )
    assert result["duration_s"] < 4 + 6 + 10, "lost hosts cost at most a shard's time more"
