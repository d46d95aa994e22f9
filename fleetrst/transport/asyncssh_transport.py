"""The default transport: asyncssh, many hosts on one event loop.

Cost is kept per sweep, not per host: known_hosts files are parsed once per distinct set of files,
client keys once per distinct set of key files (the default keys once), GSSAPI is off, and
``~/.ssh/config`` is handed to asyncssh only when it exists (it then honours Host blocks, HostName,
User, Port, IdentityFile and ProxyJump for us).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import os
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncssh
from asyncssh.public_key import load_default_keypairs

from ..model import ConnectionSettings, Target
from .asyncssh_options import PreparedOptions
from .base import (
    DEFAULT_MAX_LINE,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_STREAM_BUFFER,
    AuthError,
    CommandFailed,
    CommandTimeout,
    ConnectionLost,
    ExecResult,
    HostKeyError,
    OutputTooLarge,
    SettingsError,
    TransportError,
    Unreachable,
)
from .common import (
    STDERR_KEEP,
    LineSplitter,
    classify_os_error,
    decode_output,
    known_hosts_files,
    read_text_files,
)
from .known_hosts import NewHostKeys

_S = TypeVar("_S", bound=asyncssh.SSHClientSession[bytes])  # a streamed command's session


class AsyncsshSession:
    def __init__(self, conn: Any, target: Target) -> None:
        self._conn = conn
        self._target = target

    async def run(self, command: str, *, timeout: float, max_output: int = DEFAULT_MAX_OUTPUT) -> ExecResult:
        try:
            async with asyncio.timeout(timeout):
                channel, session = await self._conn.create_session(
                    lambda: _RunSession(max_output), command, encoding=None
                )
                try:
                    channel.write_eof()  # nothing for its standard input
                    await session.done
                    if session.over:
                        raise OutputTooLarge.over(max_output)
                except BaseException:
                    # Timed out, over the cap, or the sweep was stopped: end the remote command now
                    # (sshd passes the signal on; the probe's trap ends its sleep) rather than leave
                    # it running on the host until it next writes to the closed channel.
                    if not session.closed:
                        with contextlib.suppress(Exception):
                            channel.send_signal("TERM")
                    raise
                finally:
                    channel.close()
        except TimeoutError:
            raise CommandTimeout.after(timeout) from None
        except (asyncssh.Error, OSError) as exc:
            raise _command_error(exc, "running the command") from exc
        _raise_for_end(session.error, channel, "running the command")
        return ExecResult(
            decode_output(b"".join(session.stdout)),
            decode_output(b"".join(session.stderr)),
            channel.get_exit_status(),
        )

    @contextlib.asynccontextmanager
    async def stream(
        self,
        command: str,
        *,
        max_line: int = DEFAULT_MAX_LINE,
        max_buffer: int = DEFAULT_STREAM_BUFFER,
        keepalive_s: float | None = None,
    ) -> AsyncIterator[AsyncIterator[list[str]]]:
        channel, session = await self._start(
            lambda: _StreamSession(max_buffer), command, max_buffer, keepalive_s
        )
        lines = _stream_lines(session, max_line)
        try:
            yield lines
        finally:
            await lines.aclose()
            _end(channel, session.closed)

    async def follow(
        self,
        command: str,
        on_lines: Callable[[list[str]], None],
        *,
        max_line: int = DEFAULT_MAX_LINE,
        keepalive_s: float | None = None,
    ) -> None:
        """:func:`~fleetrst.transport.base.follow`, natively: ``on_lines`` runs in asyncssh's receive
        callback, so a batch costs no task wake-up (a watch of thousands of hosts has one a host a
        round), and the caller's task sleeps until the command ends."""
        channel, session = await self._start(
            lambda: _FollowSession(on_lines, max_line), command, DEFAULT_STREAM_BUFFER, keepalive_s
        )
        try:
            await session.ended
            if session.failure is not None:
                raise session.failure
            with contextlib.suppress(TimeoutError):  # the exit status and the close follow the output
                async with asyncio.timeout(5):
                    await asyncio.shield(session.gone)
            _raise_for_end(session.error, channel)
        finally:
            _end(channel, session.closed)  # the caller cancelled, or reading failed: as stream does

    async def _start(
        self, factory: Callable[[], _S], command: str, window: int, keepalive_s: float | None
    ) -> tuple[Any, _S]:
        """A streamed command started on its own channel, ``window`` bytes the host may send ahead."""
        try:
            if keepalive_s:
                self._conn.set_keepalive(keepalive_s, 3)
            channel, session = await self._conn.create_session(
                factory, command, encoding=None, window=window, max_pktsize=min(32768, window)
            )
            channel.write_eof()  # nothing for its standard input
        except (asyncssh.Error, OSError) as exc:
            raise _command_error(exc, "starting the command") from exc
        return channel, session

    async def close(self) -> None:
        self._conn.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self._conn.wait_closed()


class _RunSession(asyncssh.SSHClientSession[bytes]):
    """A command's output kept as it arrives, for :meth:`AsyncsshSession.run`: standard output up to
    ``max_output`` bytes (one byte more and the caller is woken to end the command: OutputTooLarge),
    the first ``STDERR_KEEP`` bytes of standard error, the rest dropped, so memory stays bounded. A
    plain session, not the process, its readers and the tasks reading them that asyncssh's ``run``
    builds: a sweep runs one command a host."""

    def __init__(self, max_output: int) -> None:
        self.max_output = max_output
        self.stdout: list[bytes] = []
        self.stdout_size = 0
        self.stderr: list[bytes] = []
        self.stderr_size = 0
        self.over = False
        self.closed = False
        self.error: Exception | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes, datatype: int | None) -> None:
        if datatype is None:
            if self.over:
                return
            if self.stdout_size + len(data) > self.max_output:
                self.over = True
                self.stdout.clear()
                self._done()
                return
            self.stdout_size += len(data)
            self.stdout.append(data)
        elif self.stderr_size < STDERR_KEEP:
            kept = data[: STDERR_KEEP - self.stderr_size]
            self.stderr_size += len(kept)
            self.stderr.append(kept)

    def eof_received(self) -> bool:
        return True  # stay open for the exit status; the close ends the command

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self._done()

    def _done(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _StreamSession(asyncssh.SSHClientSession[bytes]):
    """A streamed command's output, kept as it arrives until it is read: a plain session, not asyncssh's
    process and stream objects (a watch holds one per host; this costs less memory and CPU a packet).
    Past ``max_buffer`` unread bytes the channel stops reading, and SSH flow control holds the host."""

    def __init__(self, max_buffer: int) -> None:
        self.max_buffer = max_buffer
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.ended = False  # no more output: end of file, or the channel or connection closed
        self.closed = False
        self.error: Exception | None = None
        self.channel: Any = None
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, channel: Any) -> None:
        self.channel = channel

    def data_received(self, data: bytes, datatype: int | None) -> None:
        if datatype is not None:
            return  # standard error: read and dropped
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered >= self.max_buffer and not self.paused:
            self.paused = True
            self.channel.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return True  # stay open for the exit status

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = self.closed = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None


def _end(channel: Any, closed: bool) -> None:
    """A streamed command left: if it still runs, end it now (sshd passes the signal on; the watch
    loop's trap ends its sleep) rather than leave it until its next write to the closed channel."""
    if not closed:
        with contextlib.suppress(Exception):
            channel.send_signal("TERM")
    channel.close()


async def _stream_lines(session: _StreamSession, max_line: int) -> AsyncGenerator[list[str], None]:
    splitter = LineSplitter(max_line)
    chunks = session.chunks
    while True:
        while chunks:
            data = chunks.popleft()
            session.buffered -= len(data)
            if session.paused and session.buffered <= session.max_buffer // 2:
                session.paused = False
                session.channel.resume_reading()
            if lines := splitter.feed(data):
                yield lines
        if session.ended:
            break
        await session.wait()
    if rest := splitter.rest():
        yield rest
    with contextlib.suppress(TimeoutError):  # the exit status and the close follow the end of output
        async with asyncio.timeout(5):
            while not session.closed:
                await session.wait()
    _raise_for_end(session.error, session.channel)


class _FollowSession(asyncssh.SSHClientSession[bytes]):
    """A followed command's output, cut into lines and handed to ``on_lines`` as it arrives, from
    asyncssh's receive callback: nothing is kept, no task is woken (see :meth:`AsyncsshSession.follow`).
    What ``on_lines`` raises (and a line over ``max_line``) ends the command and is raised by follow."""

    def __init__(self, on_lines: Callable[[list[str]], None], max_line: int) -> None:
        self.on_lines = on_lines
        self.splitter = LineSplitter(max_line)
        self.channel: Any = None
        self.closed = False
        self.error: Exception | None = None  # the connection's
        self.failure: Exception | None = None  # what reading the output raised
        loop = asyncio.get_running_loop()
        self.ended: asyncio.Future[None] = loop.create_future()  # end of output (or the close)
        self.gone: asyncio.Future[None] = loop.create_future()  # the channel closed

    def connection_made(self, channel: Any) -> None:
        self.channel = channel

    def data_received(self, data: bytes, datatype: int | None) -> None:
        if datatype is not None or self.ended.done():
            return  # standard error: read and dropped; or after a failure: dropped
        try:
            if lines := self.splitter.feed(data):
                self.on_lines(lines)
        except Exception as exc:  # raised by follow(), not into asyncssh's receive path
            self.failure = exc  # follow() signals the command and closes the channel
            self._end()

    def eof_received(self) -> bool:
        ok = self._last_line()
        self._end()
        return ok  # True: stay open for the exit status

    def connection_lost(self, exc: Exception | None) -> None:
        # asyncssh may never call eof_received: a short command's end of file and close can arrive
        # before the channel starts reading, and the close then replaces the pending end of file.
        self._last_line()
        self.closed = True
        if self.error is None:
            self.error = exc
        self._end()
        if not self.gone.done():
            self.gone.set_result(None)

    def _last_line(self) -> bool:
        """The output's last line if it has no newline, handed over once, when the output ends."""
        if self.ended.done():
            return True
        try:
            if rest := self.splitter.rest():
                self.on_lines(rest)
        except Exception as exc:  # as in data_received
            self.failure = exc
            return False
        return True

    def _end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


def _command_error(exc: asyncssh.Error | OSError, doing: str) -> TransportError:
    """What asyncssh or the socket raised while ``doing`` something with a command, as ours."""
    if isinstance(exc, asyncssh.ConnectionLost | asyncssh.DisconnectError):
        return ConnectionLost.during_command(exc.reason)
    if isinstance(exc, asyncssh.Error):
        return CommandFailed(f"ssh error while {doing}: {exc.reason}")
    return ConnectionLost.during_command(exc)


def _raise_for_end(
    error: Exception | None, channel: Any, doing: str = "reading the command's output"
) -> None:
    """After a command's output ended: what went wrong with the connection (``error``, as its session
    was told at the close) or the command (no exit status or signal), if anything, as ours."""
    if isinstance(error, asyncssh.Error | OSError):
        raise _command_error(error, doing) from error
    if channel.get_exit_status() is None:  # -1 when it ended by a signal
        raise ConnectionLost.no_exit_status()


# AES-GCM first: one OpenSSL AEAD call a packet with hardware AES, where asyncssh's default
# chacha20-poly1305 takes several Python-level cipher calls a packet (measured in the README's
# benchmark). All of these are what OpenSSH itself offers by default.
CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)


class _Stage(asyncssh.SSHClient):
    """Tells a silent host (no TCP connection) from one that connects and then stalls."""

    tcp_connected = False

    def connection_made(self, conn: Any) -> None:
        self.tcp_connected = True


class AsyncsshTransport:
    name = "ssh"

    def __init__(self, *, ssh_config: str | None = None) -> None:
        default_config = Path("~/.ssh/config").expanduser()
        if ssh_config is None and os.access(default_config, os.R_OK):
            ssh_config = str(default_config)
        self._ssh_config = ssh_config
        self._known_hosts: dict[tuple[str, ...], asyncssh.SSHKnownHosts] = {}  # by the host's extra files
        self._keys: dict[tuple[str, ...], list[Any]] = {}
        self.new_host_keys = NewHostKeys()
        self._jumps: dict[tuple[ConnectionSettings, int], asyncio.Future[Any]] = {}
        self._prepared = PreparedOptions()

    # --- state loaded once per sweep -------------------------------------------------------------

    def _known_hosts_for(self, settings: ConnectionSettings) -> asyncssh.SSHKnownHosts:
        cached = self._known_hosts.get(settings.known_hosts)  # stat the files once per sweep
        if cached is None:
            files = known_hosts_files(settings)
            try:
                cached = asyncssh.import_known_hosts(read_text_files(files))
            except (ValueError, asyncssh.Error) as exc:
                raise TransportError(f"cannot parse known_hosts ({', '.join(files)}): {exc}") from exc
            self._known_hosts[settings.known_hosts] = cached
        return cached

    def _client_keys_for(self, settings: ConnectionSettings) -> list[Any] | None:
        """Loaded key pairs, or None to let asyncssh pick keys (from ~/.ssh/config or the agent)."""
        if not settings.private_keys and self._ssh_config:
            return None
        cached = self._keys.get(settings.private_keys)  # by the paths as given: one lookup a host
        if cached is None:
            paths = tuple(str(Path(p).expanduser()) for p in settings.private_keys)
            try:
                if paths:
                    cached = list(asyncssh.load_keypairs(list(paths)))
                else:
                    cached = list(load_default_keypairs())
            except (OSError, ValueError, asyncssh.Error) as exc:
                raise AuthError.unreadable_key(", ".join(paths), exc) from exc
            self._keys[settings.private_keys] = cached
        return cached

    # --- one host ----------------------------------------------------------------------------------

    async def open(self, target: Target, *, timeout: float) -> AsyncsshSession:
        settings = target.connection
        tunnel = await self._jump_for(settings, timeout) if settings.proxy_jump else None
        return AsyncsshSession(await self._connect(settings, timeout, tunnel), target)

    async def _jump_for(self, settings: ConnectionSettings, timeout: float) -> Any:
        """The (shared) connection to the last jump host, opened hop by hop with our own checks.

        Many hosts behind one bastion share one connection to it, each with a channel of its own.
        """
        assert settings.proxy_jump
        tunnel: Any = None
        for hop in parse_proxy_jump(settings.proxy_jump, settings):
            key = (hop, id(tunnel))
            task = self._jumps.get(key)
            if task is None:
                task = asyncio.ensure_future(self._connect(hop, timeout, tunnel))
                self._jumps[key] = task
            try:
                tunnel = await asyncio.shield(task)
            except TransportError as exc:
                # The task's exception is shared by every host behind this hop: copy, then reword.
                named = copy.copy(exc)
                named.message = f"via jump host {hop.address}: {exc.message}"
                named.args = (named.message,)
                raise named from exc
        return tunnel

    async def _connect(self, settings: ConnectionSettings, timeout: float, tunnel: Any) -> Any:
        port = settings.port or 22
        options: dict[str, Any] = {
            "connect_timeout": None,  # the caller's deadline (asyncio.timeout below) governs
            "login_timeout": timeout,
            "gss_auth": False,
            "gss_kex": False,
            "request_pty": False,
            "encryption_algs": CIPHERS,
            "config": [self._ssh_config] if self._ssh_config else None,
            "password_auth": settings.password is not None,
            "kbdint_auth": settings.password is not None,
        }
        if settings.port is not None:
            options["port"] = settings.port
        if settings.user:
            options["username"] = settings.user
        if settings.password is not None:
            options["password"] = settings.password
        keys = self._client_keys_for(settings)
        if keys is not None:
            options["client_keys"] = keys
        if tunnel is not None:
            options["tunnel"] = tunnel
        elif settings.proxy_command:  # the inventory's, run without a shell; beats ~/.ssh/config's proxies
            options["proxy_command"] = list(settings.proxy_command)
            options["tunnel"] = None

        known = self._known_hosts_for(settings)
        ip = settings.address if _is_ip(settings.address) else ""
        unknown_host = not any(known.match(settings.address, ip, settings.port)[:2])
        # With ~/.ssh/config and no known_hosts file of the host's own, asyncssh reads the defaults
        # plus whatever UserKnownHostsFile the config names for this host (read per connection: the
        # price of honouring the config).
        by_config = (
            bool(self._ssh_config) and not settings.known_hosts and settings.host_key_checking == "yes"
        )
        if settings.host_key_checking == "no" or (
            settings.host_key_checking == "accept-new" and unknown_host
        ):
            options["known_hosts"] = None
        elif not by_config:
            options["known_hosts"] = known

        stage = _Stage()
        options["client_factory"] = lambda: stage
        try:
            async with asyncio.timeout(timeout):
                if self._ssh_config or "tunnel" in options or "proxy_command" in options:
                    conn = await asyncssh.connect(settings.address, **options)
                else:  # options prepared here, once for hosts that differ only by address
                    conn = await self._prepared.connect(self._prepared.for_host(settings.address, options))
        except TimeoutError:
            if stage.tcp_connected:  # the host answered, then stalled: not unreachable, misbehaving
                raise CommandTimeout.login_timeout(timeout) from None
            raise Unreachable.connect_timeout(settings.address, port, timeout) from None
        except asyncssh.HostKeyNotVerifiable:
            if by_config:
                raise HostKeyError.not_verified(settings.address) from None
            if unknown_host:
                raise HostKeyError.unknown(settings.address) from None
            raise HostKeyError.mismatch(settings.address) from None
        except asyncssh.PermissionDenied:
            raise AuthError.failed(settings.user or "(default user)") from None
        except (asyncssh.ConnectionLost, asyncssh.DisconnectError) as exc:
            raise Unreachable.closed_in_handshake(exc.reason) from exc
        except OSError as exc:
            if exc.filename:  # a file the connection needed (a key, a config's known_hosts), not the network
                raise SettingsError(f"cannot read {exc.filename}: {exc.strerror}") from exc
            raise classify_os_error(exc, settings.address, port) from exc
        except (asyncssh.Error, ValueError) as exc:
            raise TransportError(f"ssh connection failed: {exc}") from exc

        if settings.host_key_checking == "accept-new" and unknown_host:
            key = conn.get_server_host_key()
            if key is not None:
                self.new_host_keys.add(settings, key.export_public_key().decode())
        return conn

    async def aclose(self) -> None:
        for task in self._jumps.values():
            if task.done() and not task.cancelled() and task.exception() is None:
                task.result().close()
            else:
                task.cancel()
        self.new_host_keys.save()


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_proxy_jump(spec: str, via: ConnectionSettings) -> list[ConnectionSettings]:
    """``[user@]host[:port][,...]`` as OpenSSH's ProxyJump; each hop checked and keyed like the host."""
    hops: list[ConnectionSettings] = []
    for part in spec.split(","):
        part = part.strip().removeprefix("ssh://")
        if not part or part.lower() == "none":
            continue
        user, _, hostport = part.rpartition("@")
        host, port = hostport, None
        if hostport.startswith("["):
            host, _, rest = hostport[1:].partition("]")
            port = rest.removeprefix(":") or None
        elif hostport.count(":") == 1:
            host, port = hostport.split(":")
        if not host or (port is not None and not port.isdigit()):
            raise TransportError(f"bad ProxyJump {spec!r}: expected [user@]host[:port]")
        hops.append(
            ConnectionSettings(
                address=host,
                port=int(port) if port else None,
                user=user or via.user,
                private_keys=via.private_keys,
                known_hosts=via.known_hosts,
                host_key_checking=via.host_key_checking,
            )
        )
    return hops
