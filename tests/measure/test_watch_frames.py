"""The watch loop: its command runs under a real POSIX shell here and its frames parse one at a time."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.measure.probe import _TRAP, ProbeParseError, WatchFrames, watch_command


def _loop_output(every: float = 0.05, rounds: int = 3) -> str:
    return subprocess.run(
        ["sh", "-c", watch_command(every, rounds)], capture_output=True, text=True, timeout=30, check=True
    ).stdout


def _frames(text: str) -> list[tuple[int, float]]:
    reader = WatchFrames()
    out = []
    for line in text.split("\n"):
        got = reader.feed(line)
        if got is not None:
            out.append((got[0], got[1].uptime_s))
    return out


def test_the_loop_prints_a_frame_a_round_with_this_hosts_counters_and_stops_by_itself() -> None:
    frames = _frames(_loop_output(rounds=4))
    assert [index for index, _ in frames] == [0, 1, 2, 3]
    uptimes = [uptime for _, uptime in frames]
    assert uptimes == sorted(uptimes) and uptimes[-1] > uptimes[0], "the host's own clock advances"


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_the_loop_runs_only_cat_and_sleep() -> None:
    proc = subprocess.run(
        ["strace", "-f", "-e", "trace=execve", "-qq", "sh", "-c", watch_command(0.01, 2)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    programs = {
        line.split('"')[1].rsplit("/", 1)[-1] for line in proc.stderr.splitlines() if "execve(" in line
    }
    assert programs <= {"sh", "cat", "sleep"}, programs


def test_text_around_frames_is_ignored_and_a_broken_frame_names_its_sample() -> None:
    text = _loop_output(rounds=2)
    assert _frames("Welcome to host\n" + text + "bye\n") == _frames(text)
    broken = text.replace("@@rc 0", "@@rc 1", 1)
    reader = WatchFrames()
    with pytest.raises(ProbeParseError, match="could not read"):
        for line in broken.split("\n"):
            reader.feed(line)
    # the reader goes on with the next frame
    second = text[text.index("@@fleetrst-watch v2 sample 1") :]
    assert [i for i, _ in _frames(second)] == [1]


def test_a_frame_that_never_ends_is_cut_at_its_line_cap() -> None:
    reader = WatchFrames(max_lines=50)
    reader.feed("@@fleetrst-watch v2 sample 0")
    with pytest.raises(ProbeParseError, match="more than 50 lines"):
        for _ in range(60):
            reader.feed("x" * 10)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), 4000, "10; rm -rf /", True])
def test_the_interval_is_a_checked_number(bad: object) -> None:
    with pytest.raises(ValueError):
        watch_command(bad)  # type: ignore[arg-type]


@given(st.lists(st.text(max_size=40).filter(lambda t: not t.startswith("@@")), max_size=20))
def test_garbage_between_frames_changes_nothing(noise: list[str]) -> None:
    text = _CACHED
    frames = text.split("@@fleetrst-watch")
    damaged = ("\n".join(noise) + "\n").join("@@fleetrst-watch" + f if i else f for i, f in enumerate(frames))
    # noise lands before each header, i.e. after the previous frame's end marker: outside every frame
    assert _frames(damaged) == _frames(text)


_CACHED = _loop_output(every=0.01, rounds=3)


def test_a_signal_between_a_sleeps_start_and_its_pid_being_noted_ends_that_sleep_too() -> None:
    """``sleep N & p=$!``: a SIGTERM (the client leaving) can come after the fork and before ``p`` is
    set; the trap then runs with the last round's ``p``. It kills ``$!`` too, so the new sleep goes
    with the shell instead of running on for up to a round. Here the shell signals itself right there,
    once the sleep has started (a signal in the child's first microseconds, before it has reset the
    trap it inherited and become ``sleep``, is caught there and lost: that window stays open)."""
    marker = "31.4159"  # a sleep of its own, to be looked for
    script = f"{_TRAP}; p=; sleep {marker} & sleep 0.3; kill -TERM $$; p=$!; wait $p"
    assert subprocess.run(["sh", "-c", script], timeout=10, check=False).returncode == 143
    deadline = time.monotonic() + 3
    while (left := _running(f"sleep {marker}")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == [], "the sleep outlived its loop"


def _running(command: str) -> list[str]:
    found = subprocess.run(["pgrep", "-af", command], capture_output=True, text=True, check=False)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]
