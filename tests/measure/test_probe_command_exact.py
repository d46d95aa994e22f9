"""The command builders of the probe (one window, with or without the host's other namespaces) and of
the watch loop: what they accept, what they refuse, and what they write, exactly. Every value that
reaches the remote shell is a checked number; these tests are the ones benchmarks/mutation.py needs
so that no change to a builder goes unnoticed."""

from __future__ import annotations

import re

import pytest

from fleetrst.measure.namespaces import listing_command
from fleetrst.measure.probe import MAX_WATCH_ROUNDS, probe_command, watch_command


@pytest.mark.parametrize(
    ("window", "baseline", "hold"),
    [(5, None, "15"), (5, 60, "75"), (0.5, None, "10"), (10, 0.25, "20")],
)
def test_a_namespace_holder_outlives_the_probes_sleeps_by_ten_seconds(
    window: float, baseline: float | None, hold: str
) -> None:
    command = probe_command(window, baseline_s=baseline, containers=True)
    assert listing_command(hold, None) in command
    assert listing_command(hold, "svc") in probe_command(
        window, baseline_s=baseline, containers=True, become_user="svc"
    )


def test_without_containers_the_probe_lists_no_namespace() -> None:
    assert listing_command("15", None) not in probe_command(5)
    assert probe_command(5) == probe_command(5, containers=False, become_user="svc")


def test_the_watch_loops_interval_is_named_in_its_error() -> None:
    with pytest.raises(
        ValueError, match=r"^the interval must be more than 0 and at most 3600 seconds, got 0$"
    ):
        watch_command(0)


@pytest.mark.parametrize("rounds", [0, -1, MAX_WATCH_ROUNDS + 1, True, False, 1.0, 2.5, "3", None])
def test_the_watch_loop_refuses_a_round_count_that_is_not_a_whole_number_in_range(rounds: object) -> None:
    expected = re.escape(f"rounds must be a whole number from 1 to {MAX_WATCH_ROUNDS}, got {rounds!r}")
    with pytest.raises(ValueError, match=f"^{expected}$"):
        watch_command(10, rounds)  # type: ignore[arg-type]


@pytest.mark.parametrize("rounds", [1, 2, MAX_WATCH_ROUNDS - 1, MAX_WATCH_ROUNDS])
def test_the_watch_loop_runs_any_round_count_from_one_to_the_maximum(rounds: int) -> None:
    assert f"while [ $i -lt {rounds} ]; do " in watch_command(10, rounds)
