"""A host's deadlines are its own: they start with its turn (a handshake slot), never while it waits.

Over the test transport (no root, no network, about two seconds): hosts queued behind slow handshakes,
hosts in flight by default, the phase counts of the progress line, and the bound on the whole sweep.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from fleetrst import sweep as sweep_module
from fleetrst.model import HostResult, Target
from fleetrst.sweep import Progress, Sweep, SweepOptions, hosts_in_flight, run_sweep
from fleetrst.transport.base import ExecResult
from fleetrst.transport.testing import FunctionTransport

from .test_orchestrator import RESETTING, assert_measured, resetting, sweep, target


def test_hosts_queued_behind_slow_handshakes_are_all_measured_with_a_timeout_shorter_than_the_queue() -> None:
    # 20 handshakes of 0.1 s, two at a time: the queue takes 1 s. Each host's budget (window 0.1 s +
    # timeout 0.3 s) is shorter than that, and is enough, because it starts with the host's turn.
    fake = FunctionTransport(resetting, connect_delay=0.1)
    targets = [target(f"h{n:03}", f"10.231.4.{n}") for n in range(20)]
    report = sweep(targets, fake, window_s=0.1, timeout_s=0.3, handshakes=2)
    for result in report.hosts:
        assert_measured_window(result)
        assert result.elapsed_s < 0.4, "a host's elapsed time is its own turn: the queue is left out"
    assert fake.peak_opening == 2
    assert report.duration_s >= 1.0, "the queue really was longer than a host's budget"


def assert_measured_window(result: HostResult) -> None:
    assert (result.status, result.error) == ("warning", None), result.error
    assert result.rates is not None and result.rates.per_second["resets_sent"] == pytest.approx(120.0)


def test_a_hosts_connect_timeout_counts_from_its_turn() -> None:
    # Every handshake takes 0.2 s and may take 0.5 s (ansible_timeout); the last of five, one at a
    # time, starts 0.8 s after the first and still has its whole 0.5 s.
    fake = FunctionTransport(resetting, connect_delay=0.2)
    targets = [target(f"h{n}", f"10.231.5.{n}", connect_timeout=0.5) for n in range(5)]
    report = sweep(targets, fake, handshakes=1)
    for result in report.hosts:
        assert_measured(result)


def test_hosts_that_never_answer_each_end_at_their_own_budget_so_the_sweep_is_queue_plus_budget() -> None:
    async def stuck(target: Target, command: str) -> ExecResult:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    fake = FunctionTransport(stuck, connect_delay=0.1)
    targets = [target(f"s{n}", f"10.231.6.{n}") for n in range(5)]
    report = sweep(targets, fake, window_s=0.1, timeout_s=0.3, handshakes=1)
    assert {r.error_kind for r in report.hosts} == {"timeout"}
    for result in report.hosts:
        assert result.error == "timed out after 0.4s (window 0.1s + timeout 0.3s) waiting for the probe"
        assert 0.4 <= result.elapsed_s < 0.8
    # the queue (5 handshakes of 0.1 s) plus one budget (0.4 s), not 5 budgets one after another (2.5 s)
    assert 0.8 <= report.duration_s < 1.8


def test_every_host_is_in_flight_at_once_by_default() -> None:
    async def slow(target: Target, command: str) -> ExecResult:
        await asyncio.sleep(0.2)
        return RESETTING.answer(command)

    fake = FunctionTransport(slow)
    report = sweep([target(f"h{n:03}", f"10.231.7.{n}") for n in range(150)], fake)
    assert SweepOptions().forks is None
    assert fake.peak_running == 150, "no batches: a host in its window is one idle channel"
    assert all(result.status == "warning" for result in report.hosts)


def test_the_progress_counts_say_queued_connecting_sampling_and_done() -> None:
    gate = asyncio.Event()
    seen: dict[str, tuple[int, int, int, int]] = {}

    async def let_in(target: Target) -> None:
        if target.name == "first":
            seen["first connecting"] = running.progress.as_tuple()
            await gate.wait()

    async def answer(target: Target, command: str) -> ExecResult:
        if target.name == "first":
            seen["first sampling"] = running.progress.as_tuple()
        return RESETTING.answer(command)

    fake = FunctionTransport(answer, connect=let_in)
    running = Sweep(replace(SweepOptions(window_s=1.0, timeout_s=2.0), handshakes=1), fake)

    async def main() -> list[HostResult]:
        task = asyncio.ensure_future(running.run([target("first"), target("second"), target("third")]))
        await asyncio.sleep(0.05)
        gate.set()
        return await task

    results = asyncio.run(asyncio.wait_for(main(), 5))
    assert [r.status for r in results] == ["warning"] * 3
    # (queued, connecting, sampling, done)
    assert seen["first connecting"] == (2, 1, 0, 0)
    assert seen["first sampling"] == (2, 0, 1, 0)
    assert running.progress.as_tuple() == (0, 0, 0, 3)


def test_run_sweep_hands_on_progress_the_counts_and_the_last_call_has_every_host_done() -> None:
    calls: list[Progress] = []

    async def answer(target: Target, command: str) -> ExecResult:
        await asyncio.sleep(0.3)
        return RESETTING.answer(command)

    targets = [target(f"h{n}", f"10.231.8.{n}") for n in range(4)]
    fake = FunctionTransport(answer)
    run_sweep(targets, SweepOptions(window_s=1.0, timeout_s=2.0), on_progress=calls.append, transports=fake)
    assert any(c.sampling == 4 for c in calls), calls
    assert calls[-1] == Progress(done=4)
    assert all(c.queued + c.connecting + c.sampling + c.done == 4 for c in calls)


def test_a_user_given_forks_still_caps_the_hosts_in_flight() -> None:
    async def slow(target: Target, command: str) -> ExecResult:
        await asyncio.sleep(0.05)
        return RESETTING.answer(command)

    fake = FunctionTransport(slow)
    sweep([target(f"h{n:03}") for n in range(12)], fake, forks=4)
    assert fake.peak_open_sessions == 4


@pytest.mark.parametrize(
    ("forks", "memory", "expected"),
    [
        (None, None, (300, [])),
        (50, None, (50, [])),
        # 16 MiB available: the sweep keeps to half of it, 160 KiB a host
        (
            None,
            16 << 20,
            (
                51,
                ["memory (16 MiB available) allows 51 hosts in flight, not 300: the sweep will take longer"],
            ),
        ),
        (100, 16 << 20, (100, [])),  # a cap the user gave is theirs: memory is not second-guessed
    ],
)
def test_hosts_in_flight_are_every_host_within_memory_and_a_bound_that_binds_is_said(
    monkeypatch: pytest.MonkeyPatch, forks: int | None, memory: int | None, expected: Any
) -> None:
    monkeypatch.setattr(sweep_module, "memory_available", lambda: memory)
    assert hosts_in_flight(SweepOptions(forks=forks), 300) == expected
