"""The paramiko transport (``ansible_connection: paramiko`` or ``-c paramiko``).

paramiko blocks, so every call runs in a thread pool of its own, sized to the hosts in flight, and
never on the event loop. Each blocking call carries its own deadline, because a thread cannot be
cancelled from outside. known_hosts and keys are loaded once per sweep, as in the asyncssh transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shlex
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import paramiko

from ..model import ConnectionSettings, Target
from .base import (
    DEFAULT_MAX_LINE,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_STREAM_BUFFER,
    AuthError,
    CommandTimeout,
    ConnectionLost,
    ExecResult,
    HostKeyError,
    OutputTooLarge,
    TransportError,
    Unreachable,
)
from .common import (
    READ_CHUNK,
    STDERR_KEEP,
    LineSplitter,
    classify_os_error,
    decode_output,
    known_hosts_files,
)
from .known_hosts import NewHostKeys, known_hosts_name

T = TypeVar("T")
DEFAULT_KEY_NAMES = ("id_ed25519", "id_ecdsa", "id_rsa")
POLL_S = 0.05


class ParamikoSession:
    def __init__(self, transport: ParamikoTransport, client: paramiko.Transport) -> None:
        self._owner = transport
        self._client = client

    async def run(self, command: str, *, timeout: float, max_output: int = DEFAULT_MAX_OUTPUT) -> ExecResult:
        deadline = time.monotonic() + timeout
        return await self._owner.call(self._run_blocking, command, timeout, deadline, max_output)

    def _run_blocking(self, command: str, timeout: float, deadline: float, max_output: int) -> ExecResult:
        try:
            channel = self._client.open_session(timeout=max(0.1, deadline - time.monotonic()))
        except (paramiko.SSHException, OSError) as exc:
            raise TransportError(f"cannot open a channel: {exc}") from exc
        stdout: list[bytes] = []
        stderr: list[bytes] = []
        out_size = err_size = 0
        try:
            channel.settimeout(POLL_S)
            channel.exec_command(command)
            while True:
                if time.monotonic() > deadline:
                    raise CommandTimeout.after(timeout)
                progressed = False
                while channel.recv_stderr_ready():
                    err_chunk = channel.recv_stderr(READ_CHUNK)
                    if err_size < STDERR_KEEP:
                        stderr.append(err_chunk[: STDERR_KEEP - err_size])
                    err_size += len(err_chunk)
                    progressed = True
                chunk: bytes | None
                try:
                    chunk = channel.recv(READ_CHUNK)
                except TimeoutError:
                    chunk = None
                if chunk:
                    out_size += len(chunk)
                    if out_size > max_output:
                        raise OutputTooLarge.over(max_output)
                    stdout.append(chunk)
                    continue
                if chunk == b"" and not channel.recv_stderr_ready() and channel.exit_status_ready():
                    break
                if chunk == b"" and not self._client.is_active():
                    raise ConnectionLost.no_exit_status()
                if not progressed and chunk == b"":
                    time.sleep(POLL_S)  # stdout closed, waiting for the exit status
            status = channel.recv_exit_status()
        except (paramiko.SSHException, OSError) as exc:
            raise ConnectionLost.during_command(exc) from exc
        finally:
            channel.close()
        return ExecResult(decode_output(b"".join(stdout)), decode_output(b"".join(stderr)), status)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        command: str,
        *,
        max_line: int = DEFAULT_MAX_LINE,
        max_buffer: int = DEFAULT_STREAM_BUFFER,
        keepalive_s: float | None = None,
    ) -> AsyncIterator[AsyncIterator[list[str]]]:
        if keepalive_s:
            self._client.set_keepalive(max(1, round(keepalive_s)))
        channel = await self._owner.call(self._start_stream, command, max_buffer)
        lines = _paramiko_lines(channel, max_line)
        try:
            yield lines
        finally:
            await lines.aclose()
            if channel.exit_status == -1 and _alive(channel):
                await self._owner.call(_send_signal, channel, "TERM")
            await self._owner.call(channel.close)

    def _start_stream(self, command: str, max_buffer: int) -> paramiko.Channel:
        try:
            channel = self._client.open_session(
                window_size=max_buffer, max_packet_size=min(32768, max_buffer), timeout=10
            )
            channel.exec_command(command)
        except (paramiko.SSHException, OSError) as exc:
            raise ConnectionLost.during_command(exc) from exc
        return channel

    async def close(self) -> None:
        await self._owner.call(self._client.close)


async def _paramiko_lines(channel: paramiko.Channel, max_line: int) -> AsyncGenerator[list[str], None]:
    """The channel's output as lines, read on the event loop when paramiko's own thread has put some
    in the channel's buffer (its ``fileno()`` is a pipe that is readable while there is data or once
    the channel has ended): no thread of ours per stream, however long it runs."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    fd = channel.fileno()
    loop.add_reader(fd, ready.set)
    splitter = LineSplitter(max_line)
    try:
        while True:
            await ready.wait()
            ready.clear()
            while channel.recv_stderr_ready():
                channel.recv_stderr(READ_CHUNK)  # read and dropped, so that it cannot fill the window
            while channel.recv_ready():
                if lines := splitter.feed(channel.recv(READ_CHUNK)):
                    yield lines
            if (channel.closed or channel.eof_received) and not channel.recv_ready():
                break
    finally:
        loop.remove_reader(fd)
    if rest := splitter.rest():
        yield rest
    # The output ended: the command ended (its exit status, or a signal, which paramiko does not
    # record, then the channel's close follow at once), or the connection went.
    for _ in range(50):
        if channel.exit_status != -1 or channel.closed:
            break
        await asyncio.sleep(0.02)
    transport = channel.get_transport()
    if channel.exit_status == -1 and (transport is None or not transport.is_active()):
        raise ConnectionLost.no_exit_status()


def _alive(channel: paramiko.Channel) -> bool:
    transport = channel.get_transport()
    return transport is not None and transport.is_active() and not channel.closed


def _send_signal(channel: paramiko.Channel, name: str) -> None:
    """RFC 4254's "signal" request, which paramiko has no method for (OpenSSH's sshd honours it)."""
    from paramiko.common import cMSG_CHANNEL_REQUEST

    message = paramiko.Message()
    message.add_byte(cMSG_CHANNEL_REQUEST)
    message.add_int(channel.remote_chanid)
    message.add_string("signal")
    message.add_boolean(False)
    message.add_string(name)
    transport = channel.get_transport()
    with contextlib.suppress(Exception):
        transport._send_user_message(message)  # type: ignore[attr-defined]


class ParamikoTransport:
    name = "paramiko"

    def __init__(self, *, max_workers: int = 64) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, max_workers), thread_name_prefix="fleetrst-paramiko"
        )
        self._host_keys: dict[tuple[str, ...], paramiko.HostKeys] = {}
        self._keys: dict[tuple[str, ...], list[paramiko.PKey]] = {}
        self.new_host_keys = NewHostKeys()

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _host_keys_for(self, settings: ConnectionSettings) -> paramiko.HostKeys:
        cached = self._host_keys.get(settings.known_hosts)  # stat and read the files once per sweep
        if cached is None:
            files = known_hosts_files(settings)
            cached = paramiko.HostKeys()
            for path in files:
                try:
                    cached.load(path)
                except (OSError, paramiko.SSHException) as exc:
                    raise TransportError(f"cannot read known_hosts file {path}: {exc}") from exc
            self._host_keys[settings.known_hosts] = cached
        return cached

    def _client_keys_for(self, settings: ConnectionSettings) -> list[paramiko.PKey]:
        if settings.private_keys:
            paths = tuple(str(Path(p).expanduser()) for p in settings.private_keys)
        else:
            home = Path("~/.ssh").expanduser()
            paths = tuple(str(home / n) for n in DEFAULT_KEY_NAMES if (home / n).is_file())
        cached = self._keys.get(paths)
        if cached is None:
            cached = []
            for path in paths:
                try:
                    cached.append(paramiko.PKey.from_path(path))
                except (OSError, paramiko.SSHException, ValueError) as exc:
                    if settings.private_keys:
                        raise AuthError.unreadable_key(path, exc) from exc
            if "SSH_AUTH_SOCK" in os.environ:
                with contextlib.suppress(paramiko.SSHException, OSError):
                    cached.extend(paramiko.Agent().get_keys())
            self._keys[paths] = cached
        return cached

    async def open(self, target: Target, *, timeout: float) -> ParamikoSession:
        settings = target.connection
        if settings.proxy_jump:
            raise TransportError("the paramiko transport does not support ProxyJump; use -c ssh")
        host_keys = self._host_keys_for(settings)
        keys = self._client_keys_for(settings)
        deadline = time.monotonic() + timeout
        client = await self.call(self._open_blocking, settings, host_keys, keys, timeout, deadline)
        return ParamikoSession(self, client)

    def _open_blocking(
        self,
        settings: ConnectionSettings,
        host_keys: paramiko.HostKeys,
        keys: list[paramiko.PKey],
        timeout: float,
        deadline: float,
    ) -> paramiko.Transport:
        port = settings.port or 22

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CommandTimeout.login_timeout(timeout)
            return left

        try:
            sock: socket.socket | paramiko.ProxyCommand = (
                # the inventory's ProxyCommand, run without a shell: its stdin/stdout carry the connection
                paramiko.ProxyCommand(shlex.join(settings.proxy_command))
                if settings.proxy_command
                else socket.create_connection((settings.address, port), timeout=remaining())
            )
        except TimeoutError:
            raise Unreachable.connect_timeout(settings.address, port, timeout) from None
        except OSError as exc:
            raise classify_os_error(exc, settings.address, port) from exc
        client = paramiko.Transport(sock)
        try:
            name = known_hosts_name(settings.address, settings.port)
            known = host_keys.lookup(name) or host_keys.lookup(settings.address)
            if known and settings.host_key_checking != "no":
                # Ask for a key type we already know, as OpenSSH does, so a host with several keys
                # is not refused for offering another one first.
                options = client.get_security_options()
                options.key_types = [t for t in options.key_types if t in known] + [
                    t for t in options.key_types if t not in known
                ]
            client.banner_timeout = client.auth_timeout = timeout
            client.start_client(timeout=remaining())
            server_key = client.get_remote_server_key()
            self._check_host_key(settings, name, known, server_key)
            self._authenticate(client, settings, keys, remaining)
        except BaseException as exc:
            client.close()
            if isinstance(exc, TransportError):
                raise
            if isinstance(exc, (paramiko.SSHException, EOFError, OSError)):
                if time.monotonic() >= deadline - 0.05:  # it stalled until the deadline
                    raise CommandTimeout.login_timeout(timeout) from exc
                raise Unreachable.closed_in_handshake(exc) from exc
            raise
        return client

    def _check_host_key(
        self,
        settings: ConnectionSettings,
        name: str,
        known: Mapping[str, paramiko.PKey] | None,
        server_key: paramiko.PKey,
    ) -> None:
        if settings.host_key_checking == "no":
            return
        if not known:
            if settings.host_key_checking == "accept-new":
                self.new_host_keys.add(settings, f"{server_key.get_name()} {server_key.get_base64()}")
                return
            raise HostKeyError.unknown(settings.address)
        expected = known.get(server_key.get_name())
        if expected is None or expected != server_key:
            raise HostKeyError.mismatch(settings.address)

    @staticmethod
    def _authenticate(
        client: paramiko.Transport,
        settings: ConnectionSettings,
        keys: list[paramiko.PKey],
        remaining: Callable[[], float],
    ) -> None:
        user = settings.user or getpass.getuser()
        for key in keys:
            remaining()
            try:
                client.auth_publickey(user, key)
            except paramiko.AuthenticationException:
                continue
            if client.is_authenticated():
                return
        if settings.password is not None:
            remaining()
            with contextlib.suppress(paramiko.AuthenticationException):
                client.auth_password(user, settings.password)
            if client.is_authenticated():
                return
        remaining()  # a server that stalled until the deadline is a timeout, not a refusal
        raise AuthError.failed(user)

    async def aclose(self) -> None:
        self.new_host_keys.save()
        self._pool.shutdown(wait=False, cancel_futures=True)
