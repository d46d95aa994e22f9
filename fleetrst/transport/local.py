"""The local connection: no SSH, the command runs here through /bin/sh (Ansible's ``-c local``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncGenerator, AsyncIterator

from ..model import Target
from .base import (
    DEFAULT_MAX_LINE,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_STREAM_BUFFER,
    CommandTimeout,
    ExecResult,
    TransportError,
)
from .common import READ_CHUNK, STDERR_KEEP, LineSplitter, decode_output, read_capped


class LocalSession:
    async def run(self, command: str, *, timeout: float, max_output: int = DEFAULT_MAX_OUTPUT) -> ExecResult:
        try:
            process = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # so that a timeout kills the whole command, sleep included
            )
        except OSError as exc:
            raise TransportError(f"cannot run /bin/sh: {exc.strerror}") from exc
        assert process.stdout is not None and process.stderr is not None
        try:
            async with asyncio.timeout(timeout):
                stdout, stderr = await asyncio.gather(
                    read_capped(process.stdout, max_output, fail=True),
                    read_capped(process.stderr, STDERR_KEEP, fail=False),
                )
                await process.wait()
        except TimeoutError:
            raise CommandTimeout.after(timeout) from None
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        return ExecResult(decode_output(stdout), decode_output(stderr), process.returncode)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        command: str,
        *,
        max_line: int = DEFAULT_MAX_LINE,
        max_buffer: int = DEFAULT_STREAM_BUFFER,
        keepalive_s: float | None = None,  # no connection to keep alive
    ) -> AsyncIterator[AsyncIterator[list[str]]]:
        try:
            process = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # so that ending the stream ends the whole command, sleep included
                limit=max_buffer,
            )
        except OSError as exc:
            raise TransportError(f"cannot run /bin/sh: {exc.strerror}") from exc
        lines = _local_lines(process, max_line)
        try:
            yield lines
        finally:
            await lines.aclose()
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    async with asyncio.timeout(2):
                        await process.wait()
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()

    async def close(self) -> None:
        return None


async def _local_lines(process: asyncio.subprocess.Process, max_line: int) -> AsyncGenerator[list[str], None]:
    assert process.stdout is not None
    splitter = LineSplitter(max_line)
    while chunk := await process.stdout.read(READ_CHUNK):
        if lines := splitter.feed(chunk):
            yield lines
    if rest := splitter.rest():
        yield rest
    await process.wait()


class LocalTransport:
    name = "local"

    async def open(self, target: Target, *, timeout: float) -> LocalSession:
        return LocalSession()

    async def aclose(self) -> None:
        return None
