"""Shared fixtures: the real test fleet (``fleetrst.testing``).

- Every test marked ``@pytest.mark.fleet`` first checks that a fleet can run here (root, ``ip``,
  ``sshd``). Outside CI a missing piece skips the test with the reason; with ``CI=true`` it is a
  failure, never a skip: in CI the fleet tests must run.
- ``make_fleet(n_hosts=3, groups=None, **kwargs)`` (module-scoped) brings a fleet up; every fleet it
  made is torn down when the module ends.
- Hypothesis profiles: ``dev`` (the default: random inputs, a new draw every run), ``ci`` (chosen by
  ``CI=true``: derandomized, so CI replays the same fixed examples every run and a red build is never
  luck) and ``long`` (``benchmarks/fuzz_long.py``: many times more examples, random, for exploring new
  inputs; failures it finds are kept in ``.hypothesis/`` and replayed first). ``FLEETRST_HYPOTHESIS_PROFILE``
  picks one by name. Tests that set their own count use ``tests.helpers.examples(n)``, which scales
  ``n`` with the profile. Under ``long`` only the property tests are collected.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from fleetrst.testing import TestFleet, cleanup_stale, fleet_support_problems
from fleetrst.testing.support import ci

LONG_EXAMPLES = int(os.environ.get("FLEETRST_FUZZ_EXAMPLES", "10000"))
settings.register_profile("dev")
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile(
    "long",
    max_examples=LONG_EXAMPLES,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = os.environ.get("FLEETRST_HYPOTHESIS_PROFILE") or ("ci" if ci() else "dev")
settings.load_profile(PROFILE)

MakeFleet = Callable[..., TestFleet]

_checked: dict[str, str | None] = {}


def _fleet_problem() -> str | None:
    """Why no fleet can run here (None: it can); checked once per session, stale fleets removed."""
    if "problem" not in _checked:
        problems = fleet_support_problems()
        reason = "a real test fleet cannot run here: " + "; ".join(problems)
        _checked["problem"] = reason if problems else None
        if not problems:
            cleanup_stale()  # a crashed earlier run must not poison this one
    return _checked["problem"]


def check_fleet_support() -> None:
    problem = _fleet_problem()
    if problem is None:
        return
    if ci():
        pytest.fail(f"{problem} (CI=true: the fleet tests must run, not skip)", pytrace=False)
    pytest.skip(problem)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PROFILE != "long":
        return
    # A long fuzz run is for the property tests only: the rest would only repeat what CI runs.
    keep = [item for item in items if getattr(getattr(item, "obj", None), "is_hypothesis_test", False)]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("fleet") is not None:
        check_fleet_support()


@pytest.fixture(scope="session")
def fleet_support() -> None:
    """Skip (outside CI) or fail (CI=true) when no fleet can run here."""
    check_fleet_support()


@pytest.fixture(scope="module")
def make_fleet(fleet_support: None) -> Iterator[MakeFleet]:
    """A factory: ``make_fleet(3, {"web": ["h001"]})`` -> a started TestFleet, torn down after the module."""
    fleets: list[TestFleet] = []

    def make(n_hosts: int = 3, groups: Mapping[str, Sequence[str]] | None = None, **kwargs: Any) -> TestFleet:
        fleet = TestFleet(n_hosts, groups, **kwargs)
        fleets.append(fleet)
        return fleet.start()

    yield make
    for fleet in reversed(fleets):
        fleet.close()


@pytest.fixture(autouse=True)
def _private_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own history database and settings (XDG dirs), which its fleetrst
    subprocesses inherit: no test reads or writes the real ~/.local/state/fleetrst, and sweeps in
    different tests never wait on each other's history lock."""
    base = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_STATE_HOME", str(base / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base / "config"))


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no settings of the user's: XDG dirs and HOME inside tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEETRST_", "ANSIBLE_", "XDG_"))}
    home = tmp_path / "home"
    home.mkdir()
    env.update(
        HOME=str(home), XDG_STATE_HOME=str(tmp_path / "state"), XDG_CONFIG_HOME=str(tmp_path / "config")
    )
    return env
