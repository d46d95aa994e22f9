"""Running a program that prints an inventory (a script, ``ansible-inventory``): bounded and shell-free.

The program gets its arguments as a list (no shell ever sees them), standard input from /dev/null,
and a session of its own, so that a deadline or an output cap stops it and everything it started.
When the program itself has exited, whatever it left running may hold its pipes open; we read what
is already there for a moment and stop, rather than wait on a stray child until the deadline (the
child is left alone: a program that succeeded may mean it to go on).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..units import human_bytes, seconds

STDERR_KEEP = 64 * 1024  # the end of standard error is what explains a failure
_CHUNK = 65536
_AFTER_EXIT_S = 0.5  # how long pipes held open by a program's leftover children are still read


class ProgramError(Exception):
    """The program could not be run, or did not finish in time or within the output cap."""


@dataclass(frozen=True)
class ProgramResult:
    stdout: bytes
    stderr: bytes
    returncode: int  # negative: killed by that signal

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")


def run_program(
    argv: Sequence[str],
    *,
    timeout: float,
    max_output: int,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> ProgramResult:
    """Run ``argv`` (no shell); raise ProgramError when it cannot start, is too slow or too verbose."""
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        raise ProgramError(_start_error(argv[0], exc)) from None
    assert proc.stdout is not None and proc.stderr is not None
    out = bytearray()
    err = bytearray()
    deadline = time.monotonic() + timeout
    too_slow = f"did not finish within {seconds(timeout)} (stopped)"
    exited_at: float | None = None
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ, out)
            sel.register(proc.stderr, selectors.EVENT_READ, err)
            while sel.get_map():
                now = time.monotonic()
                if now >= deadline:
                    raise ProgramError(too_slow)
                if exited_at is None and _exited(proc.pid):
                    exited_at = now
                if exited_at is not None and now - exited_at > _AFTER_EXIT_S:
                    break  # the program is gone; a child of its own still holds the pipes
                for key, _ in sel.select(timeout=min(deadline - now, 0.1)):
                    chunk = os.read(key.fd, _CHUNK)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    buffer: bytearray = key.data
                    buffer += chunk
                    if buffer is out and len(out) > max_output:
                        raise ProgramError(f"printed more than {human_bytes(max_output)} (stopped)")
                    if buffer is err and len(err) > 2 * STDERR_KEEP:
                        del err[:-STDERR_KEEP]
        while not _exited(proc.pid):  # its output is closed; it may still be finishing
            if time.monotonic() >= deadline:
                raise ProgramError(too_slow)
            time.sleep(0.01)
    except BaseException:
        _stop(proc)  # too slow, too verbose or interrupted: end it and whatever it started
        raise
    finally:
        for pipe in (proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                pipe.close()
    return ProgramResult(bytes(out), bytes(err[-STDERR_KEEP:]), proc.wait())


def _exited(pid: int) -> bool:
    """Whether the program has exited, without reaping it: until it is reaped its pid, and so its
    process group's id, cannot be given to another program, so ``_stop`` can never hit a stranger."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the program's whole session (it may have started others), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)


def _start_error(program: str, exc: OSError) -> str:
    import errno

    if exc.errno == errno.ENOENT and os.path.exists(program):
        interpreter = _interpreter(program)
        if interpreter:
            return f"cannot run it: its interpreter {interpreter} is not installed"
    if exc.errno == errno.ENOEXEC:
        return "cannot run it: not a program this system can execute (no #! line?)"
    return f"cannot run it: {exc.strerror or exc}"


def _interpreter(path: str) -> str | None:
    try:
        with open(path, "rb") as fh:
            first = fh.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if not words:
        return None
    if os.path.basename(words[0]) == "env" and len(words) > 1:
        return words[-1]  # "#!/usr/bin/env php": the program env looks for
    return words[0]
