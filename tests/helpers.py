"""Helpers for the tests: fleet reports built as values, and the CLI run as its own process with
its settings, state and config directories kept inside the test's temporary directory."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st

from fleetrst.model import HEADLINE_RATES, FleetReport, HostResult, Rates, Status, Trip

RATE_NAMES = HEADLINE_RATES


def host(
    name: str,
    status: Status = "ok",
    *,
    sent: float = 0.0,
    received: float | None = None,
    groups: Sequence[str] = ("fleet",),
    investigation: dict[str, object] | None = None,
    error: str | None = None,
) -> HostResult:
    """A host result as the sweep makes it; a warning/critical host trips resets_sent."""
    if status in ("unreachable", "error", "interrupted"):
        return HostResult(
            name,
            f"10.0.0.{len(name)}",
            tuple(groups),
            status,
            error=error or "no route",
            error_kind="timeout",
        )
    per_second = {m: 0.0 for m in RATE_NAMES}
    per_second.update(
        resets_sent=sent,
        resets_received=sent if received is None else received,
        OutRsts=sent,
        AttemptFails=sent if received is None else received,
    )
    tripped: tuple[Trip, ...] = ()
    if status == "warning":
        tripped = (Trip("resets_sent", "warning", sent, 50.0),)
    elif status == "critical":
        tripped = (Trip("resets_sent", "critical", sent, 250.0),)
    return HostResult(
        name,
        "10.0.0.1",
        tuple(groups),
        status,
        rates=Rates(2.0, per_second),
        tripped=tripped,
        investigation=investigation,
        elapsed_s=2.1,
    )


def report(
    hosts: Sequence[HostResult], started_at: str = "2026-11-20T10:00:00+00:00", **kw: object
) -> FleetReport:
    return FleetReport(hosts=tuple(hosts), started_at=started_at, duration_s=2.2, window_s=2.0, **kw)  # type: ignore[arg-type]


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        check=False,
    )


def examples(n: int) -> settings:
    """Hypothesis settings for a test that wants ``n`` examples in an ordinary run: scaled by the
    active profile (``long`` runs many times more; see tests/conftest.py), no deadline (a loaded CI
    machine must not turn a slow example into a failure)."""
    scale = max(1.0, settings.default.max_examples / 100)  # 100: Hypothesis's own default
    return settings(max_examples=int(n * scale), deadline=None)


@st.composite
def damaged(draw: st.DrawFn, texts: Sequence[str]) -> str:
    """One of ``texts`` (real captured output) with a few deletions, insertions, cuts, dropped or
    repeated lines: what a broken pipe, a chatty host or a truncated read can make of it."""
    text = draw(st.sampled_from(list(texts)))
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        kind = draw(st.sampled_from(["delete", "insert", "cut", "drop-line", "repeat-line"]))
        if kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        elif kind == "insert":
            text = text[:at] + draw(st.text(min_size=1, max_size=12)) + text[at:]
        elif kind == "cut":
            text = text[:at]
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines[i : i + 1] = [] if kind == "drop-line" else [lines[i], lines[i]]
            text = "\n".join(lines)
    return text


# Every key of every watch event line and what each may hold (README, "Watching"); `fleetrst history
# --events -o json` has the same but "v", and "causes" (what the history keeps) for "investigation".
_NUMBER = (int, float)
EVENT_LINE_SHAPE: dict[str, tuple[type, ...]] = {
    "v": (int,),
    "event": (str,),
    "time": (str,),
    "host": (str,),
    "groups": (list,),
    "metric": (str, type(None)),
    "level": (str, type(None)),
    "previous": (str, type(None)),
    "value": (*_NUMBER, type(None)),
    "limit": (*_NUMBER, type(None)),
    "baseline": (*_NUMBER, type(None)),
    "rule": (str, type(None)),
    "error": (str, type(None)),
    "error_kind": (str, type(None)),
    "down_s": (*_NUMBER, type(None)),
    "cause": (str, type(None)),
    "summary": (str, type(None)),
    "triggers": (list, type(None)),
    "investigation": (dict, type(None)),
}
