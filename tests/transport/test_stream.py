"""``Session.stream``: a command's output as lines while it runs, bounded, ended when the caller leaves.

The local transport runs real shells here; the SSH transports are exercised on the real fleet by
``tests/watch/test_watch_fleet.py`` (asyncssh and paramiko, a dropped connection, signals).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.measure.probe import WatchFrames, watch_command
from fleetrst.model import ConnectionSettings, Target
from fleetrst.transport.base import ConnectionLost, ExecResult, OutputTooLarge, Session
from fleetrst.transport.common import LineSplitter
from fleetrst.transport.local import LocalTransport
from fleetrst.transport.testing import FunctionTransport

WEB1 = Target("web1", ("fleet",), ConnectionSettings(address="10.231.0.5"))


async def _lines(session: Session, command: str, **kwargs: object) -> list[str]:
    async with session.stream(command, **kwargs) as batches:  # type: ignore[arg-type]
        return [line async for lines in batches for line in lines]


# --- cutting bytes into lines ---


def test_lines_come_out_whole_however_the_bytes_are_cut() -> None:
    splitter = LineSplitter(100)
    assert splitter.feed(b"one\ntw") == ["one"]
    assert splitter.feed(b"o\n\nthr") == ["two", ""]
    assert splitter.feed("ée\n".encode()[:1]) == []
    assert splitter.feed("ée\n".encode()[1:]) == ["thrée"]
    assert splitter.feed(b"last, no newline") == []
    assert splitter.rest() == ["last, no newline"] and splitter.rest() == []


def test_bad_utf8_is_replaced_and_a_line_over_the_cap_is_refused_even_before_its_newline() -> None:
    assert LineSplitter(100).feed(b"\xff\xfeok\n") == ["\ufffd\ufffdok"]
    with pytest.raises(OutputTooLarge, match="a line of output over"):
        LineSplitter(10).feed(b"x" * 11 + b"\n")
    splitter = LineSplitter(10)
    splitter.feed(b"x" * 6)
    with pytest.raises(OutputTooLarge):
        splitter.feed(b"x" * 6)  # no newline yet, already over: memory must not grow with it
    assert LineSplitter(10).feed(b"x" * 10 + b"\n" + b"y" * 10 + b"\n") == ["x" * 10, "y" * 10]


@given(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=200),
    st.lists(st.integers(min_value=0, max_value=800), max_size=10),
)
def test_any_cut_of_any_text_gives_its_lines(text: str, cuts: list[int]) -> None:
    data = text.encode()
    points = sorted({min(cut, len(data)) for cut in cuts})
    splitter = LineSplitter(1 << 20)
    got: list[str] = []
    for start, end in zip([0, *points], [*points, len(data)], strict=True):
        got += splitter.feed(data[start:end])
    got += splitter.rest()
    expected = text.split("\n")
    if expected[-1] == "":
        expected.pop()
    assert got == expected


# --- the local transport: a real shell ---


def test_the_local_stream_yields_lines_as_the_command_prints_them() -> None:
    async def main() -> list[str]:
        session = await LocalTransport().open(WEB1, timeout=1)
        return await _lines(session, "printf 'a\\nb\\n'; echo oops >&2; printf c")

    assert asyncio.run(main()) == ["a", "b", "c"], "stderr dropped, a last line without newline kept"


def test_leaving_a_local_stream_ends_the_command_and_its_sleep_at_once(tmp_path: Path) -> None:
    every = 0.137  # a sleep nobody else runs

    def sleeping() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if (entry / "cmdline").read_bytes() == f"sleep\0{every}\0".encode():
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    async def main() -> int:
        session = await LocalTransport().open(WEB1, timeout=1)
        frames = WatchFrames()
        got = 0
        async with session.stream(watch_command(every)) as batches:
            async for lines in batches:
                if any(frames.feed(line) is not None for line in lines):
                    got += 1
                    if got == 3:
                        break
        return got

    assert asyncio.run(main()) == 3
    assert sleeping() == [], "the loop's sleep went with it"


def test_a_local_line_over_the_cap_stops_the_stream() -> None:
    async def main() -> None:
        session = await LocalTransport().open(WEB1, timeout=1)
        await _lines(session, "head -c 100000 /dev/zero | tr '\\0' a; echo", max_line=1000)

    with pytest.raises(OutputTooLarge):
        asyncio.run(main())


# --- the test transport keeps the same contract ---


def test_the_test_transport_streams_what_the_streamer_prints_cut_into_lines() -> None:
    async def host(target: Target, command: str) -> AsyncIterator[str]:
        yield "hello "
        yield f"{target.name}\nsecond line\npart"
        await asyncio.sleep(0)
        yield "ial\n"

    async def main() -> list[str]:
        fake = FunctionTransport(lambda t, c: ExecResult("", "", 0), streamer=host)
        session = await fake.open(WEB1, timeout=1)
        lines = await _lines(session, "loop", keepalive_s=15.0)
        assert fake.streams == [("web1", "loop")] and fake.keepalives == {"web1": 15.0}
        assert fake.streams_stopped == {} and fake.streaming == 0 and fake.peak_streaming == 1
        return lines

    assert asyncio.run(main()) == ["hello web1", "second line", "partial"]


def test_leaving_a_test_stream_early_closes_the_streamers_generator_as_a_signal_would() -> None:
    closed: list[str] = []

    async def forever(target: Target, command: str) -> AsyncIterator[str]:
        try:
            while True:
                yield "tick\n"
                await asyncio.sleep(0)
        finally:
            closed.append(target.name)

    async def main() -> FunctionTransport:
        fake = FunctionTransport(lambda t, c: ExecResult("", "", 0), streamer=forever)
        session = await fake.open(WEB1, timeout=1)
        async with session.stream("loop") as batches:
            async for _ in batches:
                break
        return fake

    fake = asyncio.run(main())
    assert closed == ["web1"] and fake.streams_stopped == {"web1": 1}


def test_a_streamer_that_drops_the_connection_or_prints_a_huge_line_fails_as_a_real_one_would() -> None:
    async def drops(target: Target, command: str) -> AsyncIterator[str]:
        yield "one\n"
        raise ConnectionLost.during_command("Connection lost")

    async def main(streamer: object, **kwargs: object) -> list[str]:
        fake = FunctionTransport(lambda t, c: ExecResult("", "", 0), streamer=streamer)  # type: ignore[arg-type]
        session = await fake.open(WEB1, timeout=1)
        return await _lines(session, "loop", **kwargs)

    with pytest.raises(ConnectionLost, match="the connection was lost while the command ran"):
        asyncio.run(main(drops))
    with pytest.raises(OutputTooLarge):
        asyncio.run(main(lambda t, c: ["x" * 2000 + "\n"], max_line=1000))


def test_without_a_streamer_a_stream_runs_the_command_once_through_the_handler() -> None:
    async def main() -> list[str]:
        fake = FunctionTransport(lambda t, c: ExecResult(f"{c}\nbye\n", "", 0))
        session = await fake.open(WEB1, timeout=1)
        return await _lines(session, "hi")

    assert asyncio.run(main()) == ["hi", "bye"]
