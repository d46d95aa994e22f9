"""The test transport keeps the seam's contract itself: deadlines, output cap, what it records."""

from __future__ import annotations

import asyncio
import time

import pytest

from fleetrst.model import ConnectionSettings, Target
from fleetrst.transport.base import (
    DEFAULT_MAX_OUTPUT,
    CommandTimeout,
    ExecResult,
    HostKeyError,
    OutputTooLarge,
    Transport,
    Transports,
    Unreachable,
)
from fleetrst.transport.common import STDERR_KEEP
from fleetrst.transport.testing import FunctionTransport

WEB1 = Target("web1", ("fleet",), ConnectionSettings(address="10.231.0.5"))
DONE = ExecResult("done\n", "", 0)


def answer(target: Target, command: str) -> ExecResult:
    return ExecResult(f"{target.name} ran {command}\n", "", 0)


def test_a_plain_or_async_handler_answers_each_command_and_both_are_recorded() -> None:
    async def later(target: Target, command: str) -> ExecResult:
        await asyncio.sleep(0)
        return answer(target, command)

    async def main() -> None:
        for handler in (answer, later):
            fake = FunctionTransport(handler)
            session = await fake.open(WEB1, timeout=1)
            assert await session.run("uptime", timeout=1) == ExecResult("web1 ran uptime\n", "", 0)
            assert await session.run("id", timeout=1) == ExecResult("web1 ran id\n", "", 0)
            await session.close()
            assert fake.commands == [("web1", "uptime"), ("web1", "id")]
            assert fake.opens == {"web1": 1} and fake.open_sessions == 0 and fake.peak_open_sessions == 1

    asyncio.run(main())


def test_it_is_a_transport_and_a_whole_transport_set() -> None:
    fake = FunctionTransport(answer)
    transport: Transport = fake
    transports: Transports = fake
    assert transports.get("ssh") is transports.get("paramiko") is transport


def test_a_handshake_longer_than_the_open_timeout_is_a_host_that_never_answered() -> None:
    fake = FunctionTransport(answer, connect_delay=60)

    async def main() -> None:
        started = time.monotonic()
        with pytest.raises(Unreachable) as raised:
            await fake.open(WEB1, timeout=0.1)
        assert time.monotonic() - started < 0.5
        assert raised.value.message == "connect timed out after 0.1s: no answer from 10.231.0.5:22"
        assert raised.value.kind == "timeout" and fake.opening == 0 and fake.open_sessions == 0

    asyncio.run(main())


def test_connect_refuses_a_host_with_the_error_it_raises_after_the_delay() -> None:
    def let_in(target: Target) -> None:
        raise HostKeyError.mismatch(target.connection.address)

    fake = FunctionTransport(answer, connect=let_in, connect_delay=lambda target: 0.05)

    async def main() -> None:
        started = time.monotonic()
        with pytest.raises(HostKeyError) as raised:
            await fake.open(WEB1, timeout=1)
        assert raised.value.message.startswith("host key mismatch: 10.231.0.5 presented")
        assert time.monotonic() - started >= 0.05
        assert fake.peak_opening == 1 and fake.peak_opening_by_address == {"10.231.0.5": 1}

    asyncio.run(main())


def test_a_handler_slower_than_the_run_timeout_is_a_command_timeout() -> None:
    async def slow(target: Target, command: str) -> ExecResult:
        await asyncio.sleep(60)
        return DONE

    async def main() -> None:
        session = await FunctionTransport(slow).open(WEB1, timeout=1)
        with pytest.raises(CommandTimeout) as raised:
            await session.run("sleep 60", timeout=0.1)
        assert raised.value.message == "timed out after 0.1s waiting for the command"

    asyncio.run(main())


def test_a_timeout_error_of_the_handlers_own_is_not_taken_for_the_deadline() -> None:
    def broken(target: Target, command: str) -> ExecResult:
        raise TimeoutError("the handler's own")

    async def main() -> None:
        session = await FunctionTransport(broken).open(WEB1, timeout=1)
        with pytest.raises(TimeoutError, match="the handler's own"):
            await session.run("x", timeout=1)

    asyncio.run(main())


def test_stdout_over_the_cap_is_output_too_large_and_stderr_is_cut_as_real_transports_cut_it() -> None:
    def chatty(target: Target, command: str) -> ExecResult:
        size = int(command)
        return ExecResult("é" * (size // 2), "e" * (STDERR_KEEP + 10), 1)

    async def main() -> None:
        session = await FunctionTransport(chatty).open(WEB1, timeout=1)
        with pytest.raises(OutputTooLarge) as raised:
            await session.run(str(DEFAULT_MAX_OUTPUT + 2), timeout=1)  # bytes, not characters
        assert raised.value.message == "output over 1 MiB"
        result = await session.run(str(DEFAULT_MAX_OUTPUT), timeout=1)
        assert len(result.stdout.encode()) == DEFAULT_MAX_OUTPUT
        assert len(result.stderr) == STDERR_KEEP and result.exit_status == 1
        with pytest.raises(OutputTooLarge) as over:
            await session.run("1002", timeout=1, max_output=1000)
        assert over.value.message == "output over 1000 bytes"

    asyncio.run(main())


def test_a_handler_that_returns_something_else_is_a_type_error_naming_it() -> None:
    async def main() -> None:
        session = await FunctionTransport(lambda target, command: "text").open(WEB1, timeout=1)  # type: ignore[arg-type,return-value]
        with pytest.raises(TypeError, match="must return an ExecResult, got str"):
            await session.run("x", timeout=1)

    asyncio.run(main())


def test_a_closed_session_runs_nothing_and_closing_twice_counts_once() -> None:
    async def main() -> None:
        fake = FunctionTransport(answer)
        session = await fake.open(WEB1, timeout=1)
        await session.close()
        await session.close()
        assert fake.open_sessions == 0
        with pytest.raises(Exception, match="closed"):
            await session.run("x", timeout=1)
        await fake.aclose()
        assert fake.closed

    asyncio.run(main())
