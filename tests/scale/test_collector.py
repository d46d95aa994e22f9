"""The garbage collector set for a sweep (fleetrst.scale.collector), and given back as it was."""

from __future__ import annotations

import gc

import pytest

from fleetrst.scale import Scale, collector_for_sweep, run_fleet_sweep
from fleetrst.scale.collector import MIDDLE, OLD, YOUNG
from fleetrst.sweep import SweepOptions
from fleetrst.transport.testing import FunctionTransport
from tests.sweep.fake_host import FakeHost
from tests.sweep.test_orchestrator import target


def test_a_sweep_freezes_what_exists_and_collects_less_often_then_gives_the_collector_back() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with collector_for_sweep():
        assert gc.get_threshold() == (YOUNG, MIDDLE, OLD)
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the interpreter, pytest and every module imported
        made = [[] for _ in range(100)]  # what the sweep makes is not frozen
        assert gc.get_freeze_count() == frozen
        assert gc.is_tracked(made[0])
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_nested_block_leaves_the_collector_to_the_outer_one() -> None:
    before = gc.get_threshold()
    with collector_for_sweep():
        with collector_for_sweep():  # as sweep_in_processes inside run_fleet_sweep inside the CLI
            pass
        assert gc.get_threshold() == (YOUNG, MIDDLE, OLD), "the outer block still holds it"
        assert gc.get_freeze_count() > 0
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)


def test_an_error_in_the_block_still_gives_the_collector_back() -> None:
    before = gc.get_threshold()
    with pytest.raises(KeyboardInterrupt), collector_for_sweep():
        raise KeyboardInterrupt
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)
    with collector_for_sweep():  # and the next sweep is the outermost again
        assert gc.get_threshold() == (YOUNG, MIDDLE, OLD)


def test_run_fleet_sweep_runs_with_it_and_gives_it_back() -> None:
    seen: list[tuple[tuple[int, int, int], int]] = []
    host = FakeHost({"OutRsts": 1.0})

    def answer(t, command):  # type: ignore[no-untyped-def]
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return host.answer(command)

    before = gc.get_threshold()
    report = run_fleet_sweep(
        [target("h1", "10.231.11.1")],
        SweepOptions(window_s=1.0, timeout_s=2.0),
        Scale(procs=1),
        transports=lambda: FunctionTransport(answer),
    )
    assert [h.status for h in report.hosts] == ["ok"]
    assert seen and all(threshold == (YOUNG, MIDDLE, OLD) and frozen > 0 for threshold, frozen in seen)
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)
