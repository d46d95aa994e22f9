"""Reset generators run inside one host of the fleet: starting them, and :class:`LoadHandle`, one running.

The generators themselves are the scripts in :mod:`fleetrst.testing.load`; :class:`LoadsMixin` starts
them as methods of :class:`~fleetrst.testing.TestFleet` (its only user)::

    with fleet.closed_port_storm("h002", rate=100, duration=5) as storm:
        ...                           # h002's AttemptFails and OutRsts rise by ~100/s, nobody else's
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from . import _system as system
from ._system import FleetError
from .load import MAX_DURATION_S, script_path

if TYPE_CHECKING:
    from .fleet import FleetHost, TestFleet


class LoadsMixin:
    """The reset generators of :class:`~fleetrst.testing.TestFleet`."""

    if TYPE_CHECKING:  # provided by TestFleet
        dir: Path
        hosts: list[FleetHost]
        _loads: list[LoadHandle]
        _load_seq: int
        _closed: bool

        @property
        def tag(self) -> str: ...

        def _resolve(self, host: FleetHost | str) -> FleetHost: ...

    def _spawn(
        self, host: FleetHost, role: str, args: Sequence[str], user: str | None
    ) -> tuple[subprocess.Popen[bytes], Path]:
        self._load_seq += 1
        err_path = self.dir / "load" / f"{host.name}-{role}-{self._load_seq}.err"
        script = script_path(role)
        python = sys.executable
        prefix: list[str] = []
        if user is not None:  # run as another user: it must be able to run python and read the script
            entry = pwd.getpwnam(user)
            python = next(
                (p for p in (sys.executable, "/usr/bin/python3") if _others_can(Path(p), 0o001)), ""
            )
            if not python or not _others_can(script, 0o004):
                raise FleetError(f"{user} cannot run {sys.executable} or read {script} (not world-readable)")
            prefix = [
                shutil.which("setpriv") or "/usr/bin/setpriv",
                f"--reuid={entry.pw_uid}",
                f"--regid={entry.pw_gid}",
                "--init-groups",
                "--",
            ]
        argv = [
            system.ip_binary(),
            "netns",
            "exec",
            host.netns,
            *prefix,
            python,
            "-I",
            "-S",
            str(script),
            *args,
            "--tag",
            self.tag,
        ]
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, start_new_session=True
            )
        return proc, err_path

    def _start_load(
        self,
        host: FleetHost | str,
        kind: str,
        parts: Sequence[tuple[str, list[str]]],
        duration: float,
        user: str | None,
    ) -> LoadHandle:
        if self._closed or not self.hosts:
            raise FleetError("the fleet is not up")
        if not 0 < duration <= MAX_DURATION_S:
            raise ValueError(f"duration must be in (0, {MAX_DURATION_S:.0f}] seconds, not {duration}")
        h = self._resolve(host)
        handle = LoadHandle(cast("TestFleet", self), h, kind, duration)  # only TestFleet mixes this in
        self._loads.append(handle)
        try:
            for role, args in parts:  # in order: a server is listening before its client starts
                proc, err_path = self._spawn(h, role, args, user)
                handle._add(role, proc, err_path)
                info = handle._wait_ready(role, timeout=15)
                if role == parts[0][0]:
                    handle.port = int(info["port"])
        except BaseException:
            handle.stop()
            raise
        return handle

    def closed_port_storm(
        self,
        host: FleetHost | str,
        rate: float = 100,
        duration: float = 10,
        port: int | None = None,
        *,
        user: str | None = None,
    ) -> LoadHandle:
        """connect() ``rate`` times a second to a closed port of 127.0.0.1 in the host for ``duration`` s.

        AttemptFails and OutRsts rise by about ``rate`` per second on that host only. With
        ``port=None`` a free port is reserved (bound, never listening) for the run; ``handle.port``.
        Every generator runs as root unless ``user`` names another (e.g. ``fleet.user``, so that an
        unprivileged ``ss -tanp`` over ssh can see its processes).
        """
        args = ["--port", str(port or 0), "--rate", str(rate), "--duration", str(duration)]
        return self._start_load(host, "closed-port-storm", [("closed-port-storm", args)], duration, user)

    def aborting_server(
        self,
        host: FleetHost | str,
        port: int = 9400,
        rate: float = 100,
        duration: float = 10,
        *,
        user: str | None = None,
    ) -> LoadHandle:
        """A server on 127.0.0.1:``port`` that aborts every connection (SO_LINGER {1,0}), and a client
        hitting it ``rate`` times a second: EstabResets, OutRsts and TCPAbortOnData rise.

        ``handle.pid`` is the server's pid (process name ``aborting-server``), ``handle.client_pid``
        the client's (``abort-client``).
        """
        return self._start_load(
            host,
            "aborting-server",
            [
                # servers outlive their clients by half a second, so the last client finds them still there
                (
                    "aborting-server",
                    [
                        "--port",
                        str(port),
                        "--duration",
                        str(duration + 0.5),
                        "--max-accepts",
                        str(int(rate * duration) + 1000),
                    ],
                ),
                ("aborting-client", ["--port", str(port), "--rate", str(rate), "--duration", str(duration)]),
            ],
            duration,
            user,
        )

    def listen_queue_flood(
        self,
        host: FleetHost | str,
        port: int = 9401,
        duration: float = 10,
        rate: float = 200,
        *,
        user: str | None = None,
    ) -> LoadHandle:
        """A listener on 127.0.0.1:``port`` with backlog 1 that never accepts, flooded with ``rate``
        non-blocking connects a second: ListenOverflows and ListenDrops rise.

        ``handle.pid`` is the listener's pid (process name ``stuck-listener``), ``handle.client_pid``
        the flooder's (``listen-flooder``).
        """
        return self._start_load(
            host,
            "listen-queue-flood",
            [
                ("stuck-listener", ["--port", str(port), "--duration", str(duration + 0.5)]),
                ("listen-flooder", ["--port", str(port), "--rate", str(rate), "--duration", str(duration)]),
            ],
            duration,
            user,
        )

    def load_handles(self) -> list[LoadHandle]:
        return list(self._loads)


def _others_can(path: Path, bit: int) -> bool:
    """Whether any user may reach ``path`` (o+x on every parent) and has ``bit`` (0o001/0o004) on it."""
    try:
        real = path.resolve(strict=True)
        if not real.stat().st_mode & bit:
            return False
        return all(parent.stat().st_mode & 0o001 for parent in real.parents)
    except OSError:
        return False


class LoadHandle:
    """A running reset generator: one or two processes inside one host's namespace.

    A context manager: leaving it stops the processes. They also stop by themselves after
    ``duration`` seconds, and are killed when the fleet goes down. ``pid`` is the server's pid (the
    storm's own for a closed-port storm), ``port`` the port involved, ``results`` what each process
    reported when it ended (``wait()``).
    """

    def __init__(self, fleet: TestFleet, host: FleetHost, kind: str, duration: float) -> None:
        self.fleet = fleet
        self.host = host
        self.kind = kind
        self.duration = duration
        self.port = 0
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self._buffers: dict[str, bytes] = {}
        self._err_paths: dict[str, Path] = {}
        self.started_at = time.monotonic()

    def __repr__(self) -> str:
        return f"<LoadHandle {self.kind} on {self.host.name} port {self.port} pids {self.pids}>"

    @property
    def pids(self) -> dict[str, int]:
        return {role: p.pid for role, p in self.processes.items()}

    @property
    def pid(self) -> int:
        return next(iter(self.processes.values())).pid

    @property
    def client_pid(self) -> int | None:
        procs = list(self.processes.values())
        return procs[1].pid if len(procs) > 1 else None

    @property
    def running(self) -> bool:
        return any(p.poll() is None for p in self.processes.values())

    def _add(self, role: str, proc: subprocess.Popen[bytes], err_path: Path) -> None:
        self.processes[role] = proc
        self._buffers[role] = b""
        self._err_paths[role] = err_path

    def _stderr(self, role: str) -> str:
        try:
            return self._err_paths[role].read_text(errors="replace").strip()[-2000:]
        except OSError:
            return ""

    def _wait_ready(self, role: str, timeout: float) -> dict[str, Any]:
        proc = self.processes[role]
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffers[role]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FleetError(f"{role} on {self.host.name} did not start within {timeout:.0f}s")
                if not sel.select(remaining):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    proc.wait(timeout=5)
                    raise FleetError(
                        f"{role} on {self.host.name} exited with status {proc.returncode} "
                        f"before it ran: {self._stderr(role) or 'no message'}"
                    )
                self._buffers[role] += chunk
        line, _, rest = self._buffers[role].partition(b"\n")
        self._buffers[role] = rest
        text = line.decode(errors="replace")
        if not text.startswith("READY "):
            raise FleetError(f"{role} on {self.host.name} said {text!r} instead of READY")
        info: dict[str, Any] = json.loads(text[6:])
        return info

    def _collect(self) -> None:
        for role, proc in self.processes.items():
            if role in self.results or proc.poll() is None or proc.stdout is None:
                continue
            with contextlib.suppress(OSError, ValueError):
                self._buffers[role] += proc.stdout.read()
                proc.stdout.close()
            result: dict[str, Any] = {"returncode": proc.returncode}
            for line in self._buffers[role].decode(errors="replace").splitlines():
                if line.startswith("DONE "):
                    with contextlib.suppress(ValueError):
                        result.update(json.loads(line[5:]))
            if proc.returncode not in (0, None) and (err := self._stderr(role)):
                result["stderr"] = err
            self.results[role] = result
        if len(self.results) == len(self.processes):  # all ended: the fleet need not stop it any more
            with contextlib.suppress(ValueError):
                self.fleet._loads.remove(self)

    def wait(self, timeout: float | None = None) -> dict[str, dict[str, Any]]:
        """Wait until the processes end by themselves (after ``duration``); return ``results``."""
        limit = self.duration + 15 if timeout is None else timeout
        deadline = time.monotonic() + limit
        for proc in self.processes.values():
            remaining = max(0.0, deadline - time.monotonic())
            try:
                proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                raise FleetError(f"{self.kind} on {self.host.name} still runs after {limit:.0f}s") from None
        self._collect()
        return self.results

    def stop(self) -> dict[str, dict[str, Any]]:
        """Kill the processes (clients first) and reap them; return what they reported."""
        for proc in reversed(list(self.processes.values())):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._collect()
        return self.results

    def __enter__(self) -> LoadHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
