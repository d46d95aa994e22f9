"""``--procs``: shards on worker processes, over the test transport (no root, a few seconds).

Each worker is a real forked process sweeping its shard on its own event loop; what it stands in for
is only the network and the hosts (``FunctionTransport``, made in the worker). The real fleet's
version of these is ``test_scale_fleet.py``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from collections.abc import Callable

import pytest

from fleetrst.model import FleetReport, HostResult, Target
from fleetrst.scale import Scale, run_fleet_sweep
from fleetrst.sweep import Progress, SweepOptions
from fleetrst.transport.base import ExecResult, Unreachable
from fleetrst.transport.testing import FunctionTransport
from tests.sweep.fake_host import FakeHost
from tests.sweep.test_orchestrator import RESETTING, target

QUIET = FakeHost({"OutRsts": 1.0})
OPTIONS = SweepOptions(window_s=1.0, timeout_s=2.0)


def fleet_of(n: int) -> list[Target]:
    return [target(f"h{i:03}", f"10.231.9.{i}") for i in range(n)]


def answer(target: Target, command: str) -> ExecResult:
    """Hosts h000, h005, h010, ... reset (warning); the rest are quiet; h003 refuses connections."""
    number = int(target.name[1:])
    return (RESETTING if number % 5 == 0 else QUIET).answer(command)


def let_in(target: Target) -> None:
    if target.name == "h003":
        raise Unreachable.refused(target.connection.address, 22)


def transports() -> FunctionTransport:
    return FunctionTransport(answer, connect=let_in, connect_delay=0.01)


def verdicts(report: FleetReport) -> list[tuple[str, str, str | None, tuple[str, ...]]]:
    return [(h.host, h.status, h.error, tuple(t.metric for t in h.tripped)) for h in report.hosts]


def test_two_processes_give_every_host_the_verdict_one_process_gives_and_stream_each_once() -> None:
    targets = fleet_of(30)
    streamed: list[str] = []
    counts: list[Progress] = []
    one = run_fleet_sweep(targets, OPTIONS, Scale(procs=1), transports=transports)
    two = run_fleet_sweep(
        targets,
        OPTIONS,
        Scale(procs=2),
        transports=transports,
        on_result=lambda r: streamed.append(r.host),
        on_progress=counts.append,
    )
    assert verdicts(two) == verdicts(one)
    assert [h.status for h in two.hosts].count("warning") == 6
    assert two.hosts[3].error == "connection refused by 10.231.9.3:22"
    assert sorted(streamed) == [t.name for t in targets], "every host streamed to the parent once"
    assert counts[-1] == Progress(done=30)
    assert two.exit_code == one.exit_code == 1
    assert multiprocessing.active_children() == []


def test_a_worker_that_dies_costs_only_its_unfinished_hosts() -> None:
    async def dying(target: Target, command: str) -> ExecResult:
        if target.name == "doomed":
            await asyncio.sleep(0.5)  # its shard-mate's result is sent meanwhile (every 0.1 s)
            os._exit(9)  # the worker process dies, as under the OOM killer
        return RESETTING.answer(command)

    targets = [
        target("early", "10.231.10.1"),
        target("doomed", "10.231.10.1"),  # same address: same shard as "early"
        target("other1", "10.231.10.2"),
        target("other2", "10.231.10.2"),
    ]
    report = run_fleet_sweep(targets, OPTIONS, Scale(procs=2), transports=lambda: FunctionTransport(dying))
    results = {h.host: h for h in report.hosts}
    for name in ("early", "other1", "other2"):
        assert results[name].status == "warning", results[name].error
    lost = results["doomed"]
    assert (lost.status, lost.error_kind) == ("error", "worker_lost")
    assert lost.error is not None and lost.error.startswith("the worker process sweeping this host (shard ")
    assert lost.error.endswith("exited with status 9 before the host finished")
    assert report.exit_code == 1
    assert multiprocessing.active_children() == []


def hanging(target: Target, command: str) -> ExecResult | asyncio.Future[ExecResult]:
    if target.name.startswith("stuck"):
        return asyncio.get_running_loop().create_future()  # never answers
    return RESETTING.answer(command)


def run_and_signal(sig: signal.Signals, when: Callable[[HostResult], bool]) -> tuple[FleetReport, float]:
    sent: list[float] = []

    def on_result(result: HostResult) -> None:
        if when(result) and not sent:
            sent.append(time.monotonic())
            os.kill(os.getpid(), sig)  # as a user's Ctrl-C, or a service manager's SIGTERM

    targets = [target("web1", "10.231.11.1"), target("stuck1", "10.231.11.2")]
    targets += [target("web2", "10.231.11.3"), target("stuck2", "10.231.11.4")]
    report = run_fleet_sweep(
        targets,
        SweepOptions(window_s=1.0, timeout_s=30.0),
        Scale(procs=2),
        transports=lambda: FunctionTransport(hanging),
        on_result=on_result,
    )
    return report, time.monotonic() - sent[0]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_every_worker_promptly_keeps_finished_hosts_and_leaves_no_process(
    sig: signal.Signals, code: int
) -> None:
    before = signal.getsignal(sig)
    report, took = run_and_signal(sig, lambda r: r.host == "web1")
    assert took < 2.0, f"stopped {took:.2f}s after {sig.name}"
    assert report.interrupted_by == sig.name and report.exit_code == code
    results = {h.host: h for h in report.hosts}
    assert results["web1"].status == "warning", "a host that finished keeps its result"
    for name in ("stuck1", "stuck2"):
        assert results[name].status == "interrupted"
        assert results[name].error == f"interrupted by {sig.name} before this host finished"
    assert multiprocessing.active_children() == []
    assert signal.getsignal(sig) is before, "the parent's signal handlers are put back"


def test_workers_inherit_the_parents_objects_frozen_and_the_parent_gets_them_back(tmp_path) -> None:
    """What a forked worker inherits is out of its garbage collector's reach (no copy-on-write of
    every inherited page at its first full collection); the parent's collector is as it was."""
    import gc

    def counting_transports() -> FunctionTransport:
        (tmp_path / str(os.getpid())).write_text(str(gc.get_freeze_count()))
        return transports()

    assert gc.get_freeze_count() == 0
    report = run_fleet_sweep(fleet_of(4), OPTIONS, Scale(procs=2), transports=counting_transports)
    assert [h.status for h in report.hosts] == ["warning", "ok", "ok", "unreachable"]  # as with one
    frozen = [int(p.read_text()) for p in tmp_path.iterdir()]
    assert len(frozen) == 2, "one count a worker"
    assert all(count > 10_000 for count in frozen), frozen  # the interpreter and every module
    assert gc.get_freeze_count() == 0
