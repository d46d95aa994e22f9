"""The garbage collector set for a sweep (fleetrst.scale.collector), and given back as it was."""

from __future__ import annotations

import gc

import pytest

from fleetrst.model import ConnectionSettings, Target
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


def test_the_transports_are_imported_before_the_collector_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """An import's passing garbage (asyncssh's: 35 MB) is collected as usual, not frozen or kept
    through the sweep; a sweep given its transports imports none."""
    import fleetrst.scale as scale

    imported: list[tuple[list[str], tuple[int, int, int], int]] = []

    def record(kinds):  # type: ignore[no-untyped-def]
        imported.append((sorted(kinds), gc.get_threshold(), gc.get_freeze_count()))

    monkeypatch.setattr(scale, "import_transports", record)
    before = gc.get_threshold()
    options = SweepOptions(window_s=0.1, timeout_s=5.0)
    host = FakeHost({"OutRsts": 1.0})
    given = run_fleet_sweep(
        [target("h1", "10.231.11.1")],
        options,
        Scale(procs=1),
        transports=lambda: FunctionTransport(lambda t, command: host.answer(command)),
    )
    assert imported == [] and [h.status for h in given.hosts] == ["ok"]
    this_machine = Target(
        name="localhost", groups=(), connection=ConnectionSettings(address="localhost", connection="local")
    )
    report = run_fleet_sweep([this_machine], options, Scale(procs=1))
    assert imported == [(["local"], before, 0)]
    assert [h.status for h in report.hosts] in (["ok"], ["warning"], ["critical"])
