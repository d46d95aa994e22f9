"""The local connection: no SSH, the command runs here through /bin/sh (Ansible's ``-c local``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from ..model import Target
from .base import DEFAULT_MAX_OUTPUT, CommandTimeout, ExecResult, TransportError
from .common import STDERR_KEEP, decode_output, read_capped


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

    async def close(self) -> None:
        return None


class LocalTransport:
    name = "local"

    async def open(self, target: Target, *, timeout: float) -> LocalSession:
        return LocalSession()

    async def aclose(self) -> None:
        return None
