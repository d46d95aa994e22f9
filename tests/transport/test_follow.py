"""``follow``: a command's output handed over batch by batch as it arrives, over a real sshd (asyncssh's
own follow, called from its receive callback) and the local shell (read through ``stream``).

Both must give what ``stream`` gives: the same lines, the same errors, and the command ended (its sleep
too) when the caller stops following or its callback fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

from fleetrst.model import ConnectionSettings, Target
from fleetrst.testing import TestFleet
from fleetrst.transport.asyncssh_transport import AsyncsshTransport
from fleetrst.transport.base import DEFAULT_MAX_LINE, OutputTooLarge, Session, follow
from fleetrst.transport.local import LocalTransport
from tests.conftest import MakeFleet

# As the watch loop does: a SIGTERM (sent when the caller stops following) ends the sleep too.
TRAPPED = "trap 'kill $p; exit 143' TERM; {before}; sleep {marker} & p=$!; wait $p"
PRINTS = "printf 'a\\nb\\n'; echo oops >&2; printf 'c\\nd'"  # stderr dropped, a last line with no newline


@pytest.fixture(scope="module")
def fleet(make_fleet: MakeFleet) -> Iterator[TestFleet]:
    yield make_fleet(1)


def _target(fleet: TestFleet) -> Target:
    host = fleet.hosts[0]
    return Target(
        name=host.name,
        groups=(),
        connection=ConnectionSettings(
            address=host.address,
            user=fleet.user,
            private_keys=(str(fleet.client_key_path),),
            known_hosts=(str(fleet.known_hosts_path),),
        ),
    )


Opener = Callable[[], Awaitable[Session]]


def _openers(fleet: TestFleet) -> dict[str, Opener]:
    return {
        "asyncssh": lambda: AsyncsshTransport().open(_target(fleet), timeout=10),
        "local": lambda: LocalTransport().open(_target(fleet), timeout=10),
    }


def _collect(open_session: Opener, command: str, max_line: int = DEFAULT_MAX_LINE) -> list[list[str]]:
    async def main() -> list[list[str]]:
        session = await open_session()
        batches: list[list[str]] = []
        try:
            await follow(session, command, batches.append, max_line=max_line)
        finally:
            await session.close()
        return batches

    return asyncio.run(main())


def _streamed(open_session: Opener, command: str) -> list[str]:
    async def main() -> list[str]:
        session = await open_session()
        try:
            async with session.stream(command) as batches:
                return [line async for lines in batches for line in lines]
        finally:
            await session.close()

    return asyncio.run(main())


@pytest.mark.fleet
@pytest.mark.parametrize("kind", ["asyncssh", "local"])
def test_follow_gives_the_lines_stream_gives(fleet: TestFleet, kind: str) -> None:
    opener = _openers(fleet)[kind]
    batches = _collect(opener, PRINTS)
    assert all(batches), "no empty batch"
    assert [line for lines in batches for line in lines] == _streamed(opener, PRINTS) == ["a", "b", "c", "d"]


@pytest.mark.fleet
def test_a_frame_written_at_once_comes_as_one_batch_over_ssh(fleet: TestFleet) -> None:
    frame = "printf '@@x\\n%s\\n@@end\\n' \"$(cat /proc/net/snmp)\""
    [batch] = _collect(_openers(fleet)["asyncssh"], frame)
    assert batch[0] == "@@x" and batch[-1] == "@@end" and any(line.startswith("Tcp:") for line in batch)


def _sleeping(fleet: TestFleet, marker: str) -> list[str]:
    """The fleet host's processes whose command line holds ``marker`` (its own namespace's, as root)."""
    found = fleet.run_in(fleet.hosts[0], ["pgrep", "-af", marker]).stdout.splitlines()
    return [line for line in found if "pgrep" not in line]


def _gone(fleet: TestFleet, marker: str, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while _sleeping(fleet, marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.fleet
def test_a_failing_callback_is_raised_and_ends_the_remote_command(fleet: TestFleet) -> None:
    marker = "4242.5"  # a sleep of its own, to be found among the host's processes

    class Stop(Exception):
        pass

    def fail(lines: list[str]) -> None:
        raise Stop(lines[0])

    async def main() -> None:
        session = await _openers(fleet)["asyncssh"]()
        try:
            await follow(session, TRAPPED.format(before="echo first", marker=marker), fail)
        finally:
            await session.close()

    started = time.monotonic()
    with pytest.raises(Stop, match="first"):
        asyncio.run(main())
    assert time.monotonic() - started < 10, "not left waiting for the sleep"
    assert _gone(fleet, marker), _sleeping(fleet, marker)


@pytest.mark.fleet
def test_cancelling_a_follow_ends_the_remote_command_and_its_sleep(fleet: TestFleet) -> None:
    marker = "4343.5"
    got: list[list[str]] = []

    async def main() -> None:
        session = await _openers(fleet)["asyncssh"]()
        try:
            task = asyncio.create_task(
                follow(
                    session,
                    TRAPPED.format(before="echo up", marker=marker),
                    got.append,
                )
            )
            while not got:
                await asyncio.sleep(0.05)
            assert _sleeping(fleet, marker), "the command runs"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await session.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert got == [["up"]]
    assert _gone(fleet, marker), _sleeping(fleet, marker)


@pytest.mark.fleet
def test_a_line_over_the_cap_stops_a_follow_over_ssh(fleet: TestFleet) -> None:
    with pytest.raises(OutputTooLarge, match="a line of output over"):
        _collect(_openers(fleet)["asyncssh"], "head -c 100000 /dev/zero | tr '\\0' a; echo", max_line=1000)


def test_the_last_line_is_kept_when_the_channel_closes_with_no_end_of_file_seen() -> None:
    """asyncssh calls no eof_received when a short command's end of file and close arrive before the
    channel starts reading (the close replaces the pending end of file): seen on the fleet about one
    run in ten of the test above. The line after the last newline is handed over at the close."""
    from fleetrst.transport.asyncssh_transport import _FollowSession

    async def main() -> list[list[str]]:
        batches: list[list[str]] = []
        session = _FollowSession(batches.append, DEFAULT_MAX_LINE)
        session.data_received(b"a\nb\nc\nd", None)
        session.data_received(b"oops\n", 1)  # standard error: dropped
        session.connection_lost(None)
        assert session.ended.done() and session.closed and session.failure is None
        return batches

    assert asyncio.run(main()) == [["a", "b", "c"], ["d"]]
