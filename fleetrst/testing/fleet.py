"""A real fleet of Linux hosts on this machine: one network namespace and one OpenSSH sshd per host.

::

    with TestFleet(n_hosts=3, groups={"web": ["h001", "h002"]}) as fleet:
        fleet.inventory_path          # an Ansible YAML inventory: group "fleet" + the extra groups
        with fleet.closed_port_storm(fleet.host("h002"), rate=100, duration=5):
            ...                       # h002's AttemptFails and OutRsts rise by ~100/s, nobody else's

Layout: the bridge ``fr<fid>br`` in the root namespace holds the first address of the fleet's block of
10.231.0.0/16; host *i* is the namespace ``fleetrst-<fid>-h00i`` whose ``eth0`` (a veth whose other
end ``fr<fid>v<i>`` is a port of the bridge) holds the next addresses, with loopback up and its own
``sshd`` listening on port 22. The controller (this process, root namespace) reaches every host
directly; hosts reach nothing but each other and the controller (no route out, no forwarding).
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import json
import os
import pwd
import re
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import _system as system
from .load import MAX_DURATION_S, script_path
from .support import SSHD, fleet_support_problems

USER = "fleetrst-test"
USER_HOME = Path("/home") / USER
USER_SHELL = "/bin/sh"
GROUP_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_GROUPS = frozenset({"all", "ungrouped", "fleet"})


FleetError = system.FleetError


# --- keys ---------------------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def new_ed25519_key(path: Path, comment: str) -> str:
    """Write a new ed25519 key (OpenSSH format, mode 0600) and ``path.pub``; return the public line."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = f"{public.decode()} {comment}"
    _write_private(path, private)
    Path(f"{path}.pub").write_text(line + "\n")
    return line


# --- the login user -------------------------------------------------------------------------------------


def ensure_user(name: str = USER) -> pwd.struct_passwd:
    """Create the login user if missing (shell /bin/sh, an empty home, no start-up files); leave it there.

    The password field is ``*`` (no password, but not "locked": sshd without PAM refuses logins to
    accounts whose password starts with ``!``).
    """
    with system.registry_lock():
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            result = subprocess.run(
                [
                    useradd,
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    str(USER_HOME),
                    "--shell",
                    USER_SHELL,
                    "--password",
                    "*",
                    "--comment",
                    "fleetrst test fleet login",
                    name,
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if result.returncode not in (0, 9):  # 9: the user exists (made meanwhile by someone else)
                raise FleetError(f"useradd {name} failed: {result.stderr.strip()}") from None
            entry = pwd.getpwnam(name)
        home = Path(entry.pw_dir)
        if not home.is_dir():
            home.mkdir(mode=0o755, parents=True)
            os.chown(home, entry.pw_uid, entry.pw_gid)
        _unlock_password(name)
        return entry


def _unlock_password(name: str) -> None:
    try:
        lines = Path("/etc/shadow").read_text().splitlines()
    except OSError:
        return
    for line in lines:
        fields = line.split(":")
        if fields[0] == name and len(fields) > 1 and fields[1].startswith("!"):
            usermod = shutil.which("usermod") or "/usr/sbin/usermod"
            subprocess.run([usermod, "--password", "*", name], capture_output=True, timeout=60, check=False)


# --- sshd -----------------------------------------------------------------------------------------------


def _sshd_version() -> tuple[int, int]:
    result = subprocess.run([SSHD, "-V"], capture_output=True, text=True, timeout=10, check=False)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", result.stderr + result.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def sshd_config_text(host: FleetHost, authorized_keys: Path, user: str, version: tuple[int, int]) -> str:
    lines = [
        f"# sshd for test-fleet host {host.name} ({host.netns}), written by fleetrst.testing",
        "Port 22",
        f"ListenAddress {host.address}",
        "AddressFamily inet",
        f"HostKey {host.host_key_path}",
        f"PidFile {host.dir / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized_keys}",
        "StrictModes no",
        "UsePAM no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        "PubkeyAuthentication yes",
        f"AllowUsers {user}",
        "X11Forwarding no",
        "LogLevel ERROR",
        "Subsystem sftp internal-sftp",
    ]
    if version >= (9, 8):  # one client failing auth on purpose must not get the controller penalised
        lines.append("PerSourcePenalties no")
    return "\n".join(lines) + "\n"


# --- the fleet ------------------------------------------------------------------------------------------


@dataclass(eq=False)
class FleetHost:
    """One host of the fleet. ``sshd_pid`` is None while its sshd is stopped."""

    name: str
    index: int
    netns: str
    address: str
    veth: str  # the root-namespace end of its veth pair (a port of the fleet's bridge)
    dir: Path
    port: int = 22
    sshd_pid: int | None = None
    host_public_key: str = ""  # "ssh-ed25519 AAAA... comment" as sshd serves it now
    netns_inode: int | None = field(default=None, repr=False)
    hidden_tools: tuple[str, ...] = ()  # programs its sessions cannot run (see TestFleet.hide_tools)
    _sshd: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host_key_path(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def sshd_config_path(self) -> Path:
        # "fleetrst-<fid>" in sshd's argv lets cleanup_stale find a stray sshd by its command line
        return self.dir / f"{self.netns}.sshd_config"

    @property
    def sshd_log_path(self) -> Path:
        return self.dir / "sshd.log"

    def sshd_log(self, limit: int = 4000) -> str:
        try:
            return self.sshd_log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


_LIVE: set[TestFleet] = set()
_LIVE_LOCK = threading.Lock()
_OLD_HANDLERS: dict[int, Any] = {}
_CAUGHT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _close_all_fleets() -> None:
    with _LIVE_LOCK:
        fleets = list(_LIVE)
    for fleet in fleets:
        with contextlib.suppress(Exception):
            fleet.close()


atexit.register(_close_all_fleets)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM/SIGHUP into SystemExit so that every `with TestFleet(...)` unwinds and tears down.
    raise SystemExit(128 + signum)


def _install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread() or _OLD_HANDLERS:
        return
    for sig in _CAUGHT_SIGNALS:
        old = signal.getsignal(sig)
        if old is signal.SIG_DFL:
            _OLD_HANDLERS[sig] = old
            signal.signal(sig, _on_signal)


def _restore_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, old in list(_OLD_HANDLERS.items()):
        if signal.getsignal(sig) is _on_signal:
            signal.signal(sig, old)
        del _OLD_HANDLERS[sig]


class TestFleet:
    """A fleet of ``n_hosts`` real hosts (namespaces + sshd); a context manager that removes it all.

    ``groups`` adds inventory groups (``{"web": ["h001", "h002"]}``) besides ``fleet``. ``dir`` is
    where the fleet's files go (a new temporary directory by default; a given directory is created if
    needed, and at the end only what the fleet wrote there is removed).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        n_hosts: int = 3,
        groups: Mapping[str, Sequence[str]] | None = None,
        *,
        dir: str | os.PathLike[str] | None = None,
        user: str = USER,
        start_timeout: float = 60.0,
    ) -> None:
        if not 1 <= n_hosts <= 4000:
            raise ValueError(f"n_hosts must be between 1 and 4000, not {n_hosts}")
        self.n_hosts = n_hosts
        width = max(3, len(str(n_hosts)))
        self._names = [f"h{i:0{width}d}" for i in range(1, n_hosts + 1)]
        self.groups: dict[str, list[str]] = {}
        for group, members in (groups or {}).items():
            if not GROUP_NAME_RE.match(group) or group in RESERVED_GROUPS:
                raise ValueError(f"bad group name {group!r} (reserved, or not a valid Ansible group name)")
            unknown = [m for m in members if m not in self._names]
            if unknown:
                raise ValueError(f"group {group!r} names hosts the fleet does not have: {unknown}")
            self.groups[group] = list(members)
        self.user = user
        self.start_timeout = start_timeout
        self._given_dir = Path(dir).resolve() if dir is not None else None
        self.dir = Path()
        self.id = ""
        self.hosts: list[FleetHost] = []
        self.subnet = ipaddress.IPv4Network("10.231.0.0/32")
        self.gateway = ""  # the bridge's address: where the hosts see the controller coming from
        self.bridge = ""
        self._record: system.FleetRecord | None = None
        self._loads: list[LoadHandle] = []
        self._load_seq = 0
        self._closed = False
        self._started = False
        self._sshd_version = (0, 0)
        self._lock = threading.RLock()
        self.timings: dict[str, float] = {}

    # --- paths ---

    @property
    def inventory_path(self) -> Path:
        return self.dir / "inventory.yml"

    @property
    def known_hosts_path(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def client_key_path(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def authorized_keys_path(self) -> Path:
        # in /run, not in the fleet's dir: sshd reads it as the login user, who may not be able to
        # reach a directory under a private parent (mktemp -d, pytest's tmp_path)
        return system.authorized_keys_path(self.id)

    @property
    def tag(self) -> str:
        return f"{system.NETNS_PREFIX}{self.id}"

    def host(self, name: str) -> FleetHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no host {name!r} in this fleet (hosts: {self._names[0]}..{self._names[-1]})")

    def _resolve(self, host: FleetHost | str) -> FleetHost:
        return self.host(host) if isinstance(host, str) else host

    # --- up ---

    def __enter__(self) -> TestFleet:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> TestFleet:
        if self._started:
            raise FleetError("this TestFleet was already started (make a new one)")
        problems = fleet_support_problems()
        if problems:
            raise FleetError("a real test fleet cannot run here: " + "; ".join(problems))
        self._started = True
        with _LIVE_LOCK:
            _LIVE.add(self)
        _install_signal_handlers()
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        t0 = time.monotonic()
        with contextlib.suppress(system.FleetError):
            system.cleanup_stale()
        ensure_user(self.user)
        self._sshd_version = _sshd_version()
        self._make_dir()
        client_line = new_ed25519_key(self.client_key_path, f"fleetrst-test-fleet-{self.id}")
        self._plan_and_claim_network()  # under the registry lock: subnet, record, bridge, netns, veths
        self.authorized_keys_path.write_text(client_line + "\n")
        self.authorized_keys_path.chmod(0o644)  # sshd reads it as the login user
        self.timings["network"] = time.monotonic() - t0
        self._write_host_files()
        self._configure_namespaces()
        self.timings["configured"] = time.monotonic() - t0
        for host in self.hosts:
            self._spawn_sshd(host)
        self._wait_for_sshds(self.hosts)
        self._write_known_hosts()
        self._write_inventory()
        self._write_state()
        self.timings["up"] = time.monotonic() - t0

    def _make_dir(self) -> None:
        for _ in range(100):
            fid = secrets.token_hex(3)
            taken = {r.fid for r in system.read_records()}
            if fid not in taken and not system.fleet_netns_names(fid) and not system.fleet_link_names(fid):
                self.id = fid
                break
        else:
            raise FleetError("could not find an unused fleet id")
        if self._given_dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix=f"{self.tag}-"))
            dir_created = True
        else:
            self.dir = self._given_dir
            dir_created = not self.dir.exists()
            self.dir.mkdir(parents=True, exist_ok=True)
            clash = [name for name in system.FLEET_FILES if (self.dir / name).exists()]
            if clash:
                if dir_created:
                    shutil.rmtree(self.dir, ignore_errors=True)
                raise FleetError(
                    f"{self.dir} already holds fleet files ({', '.join(clash)}): "
                    "another fleet uses it, or a crashed one left them (remove them)"
                )
        self._record = system.FleetRecord(
            fid=self.id,
            pid=os.getpid(),
            start_time=system.process_start_time(os.getpid()) or 0,
            subnet="",
            dir=str(self.dir),
            dir_created=dir_created,
        )
        (self.dir / "hosts").mkdir(mode=0o700)
        (self.dir / "load").mkdir(mode=0o700)

    def _plan_and_claim_network(self) -> None:
        assert self._record is not None
        with system.registry_lock():
            self.subnet = system.allocate_subnet(self.n_hosts, system.read_records())
            self._record.subnet = str(self.subnet)
            self._record.write()  # from here on cleanup_stale can remove whatever we leave behind
            addresses = self.subnet.hosts()
            self.gateway = str(next(addresses))
            self.bridge = f"fr{self.id}br"
            for index, name in enumerate(self._names, start=1):
                netns = f"{self.tag}-{name}"
                host = FleetHost(
                    name=name,
                    index=index,
                    netns=netns,
                    address=str(next(addresses)),
                    veth=f"fr{self.id}v{index}",
                    dir=self.dir / "hosts" / name,
                )
                self.hosts.append(host)
            lines = [
                f"link add {self.bridge} type bridge",
                f"addr add {self.gateway}/{self.subnet.prefixlen} dev {self.bridge}",
                f"link set {self.bridge} up",
            ]
            lines += [f"netns add {h.netns}" for h in self.hosts]
            for h in self.hosts:
                lines.append(f"link add {h.veth} type veth peer name eth0 netns {h.netns}")
                lines.append(f"link set {h.veth} master {self.bridge} up")
            system.run_ip_batch(lines)
        for h in self.hosts:
            h.netns_inode = system.netns_inode(h.netns)

    def _write_host_files(self) -> None:
        for host in self.hosts:
            host.dir.mkdir(mode=0o700)
            host.host_public_key = new_ed25519_key(host.host_key_path, f"{host.name}@{self.tag}")
            host.sshd_config_path.write_text(
                sshd_config_text(host, self.authorized_keys_path, self.user, self._sshd_version)
            )
        run_dir = Path("/run/sshd")  # sshd's privilege separation directory
        if not run_dir.is_dir():
            run_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        check = subprocess.run(
            [SSHD, "-t", "-f", str(self.hosts[0].sshd_config_path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if check.returncode != 0:
            raise FleetError(
                f"sshd rejects the configuration {self.hosts[0].sshd_config_path}: {check.stderr.strip()}"
            )

    def _configure_namespaces(self) -> None:
        ip = system.ip_binary()
        procs: list[tuple[FleetHost, subprocess.Popen[str]]] = []
        for chunk_start in range(0, len(self.hosts), 256):
            chunk = self.hosts[chunk_start : chunk_start + 256]
            procs = [
                (
                    h,
                    subprocess.Popen(
                        [ip, "-n", h.netns, "-batch", "-"],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    ),
                )
                for h in chunk
            ]
            failures: list[str] = []
            for h, proc in procs:
                _, err = proc.communicate(
                    f"addr add {h.address}/{self.subnet.prefixlen} dev eth0\n"
                    "link set eth0 up\nlink set lo up\n",
                    timeout=60,
                )
                if proc.returncode != 0:
                    failures.append(f"{h.name}: {err.strip()}")
            if failures:
                raise FleetError("could not configure the namespaces: " + "; ".join(failures[:5]))

    def _spawn_sshd(self, host: FleetHost) -> None:
        sshd = [SSHD, "-D", "-f", str(host.sshd_config_path), "-E", str(host.sshd_log_path)]
        if host.hidden_tools:
            # A mount namespace of its own where each hidden program is /dev/null (not executable):
            # the host's sessions find no such tool, as on a machine where it is not installed.
            binds = "".join(f'mount --bind /dev/null "$(command -v {t})" && ' for t in host.hidden_tools)
            sshd = [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "/bin/sh",
                "-c",
                binds + 'exec "$@"',
                "sshd",
                *sshd,
            ]
        argv = [system.ip_binary(), "netns", "exec", host.netns, *sshd]
        host._sshd = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        host.sshd_pid = host._sshd.pid  # `ip netns exec` execs sshd: same pid

    def _wait_for_sshd(self, host: FleetHost, deadline: float) -> None:
        """Wait until the host's sshd listens, then until it answers with its SSH banner (bounded polls).

        The first poll reads the namespace's own socket table (``/proc/<sshd pid>/net/tcp``): dialling
        a port that is not listening yet would make the host send a RST, a reset nobody asked for.
        """
        delay = 0.01
        last_error = "no answer yet"
        while True:
            proc = host._sshd
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise FleetError(
                    f"sshd for {host.name} ({host.netns}) exited with status {code}: "
                    f"{host.sshd_log().strip() or 'no log'}"
                )
            if not _listening(proc.pid, host.address, host.port):
                last_error = "not listening yet"
            else:
                try:
                    with socket.create_connection((host.address, host.port), timeout=2.0) as s:
                        banner = b""
                        while b"\n" not in banner and len(banner) < 256:
                            chunk = s.recv(256)
                            if not chunk:
                                break
                            banner += chunk
                        if banner.startswith(b"SSH-"):
                            return  # closing after the banner, without sending ours: no RST
                        last_error = f"unexpected banner {banner[:60]!r}"
                except OSError as exc:
                    last_error = str(exc)
            if time.monotonic() > deadline:
                raise FleetError(
                    f"sshd for {host.name} at {host.address}:22 did not answer within "
                    f"{self.start_timeout:.0f}s ({last_error}); log: {host.sshd_log().strip()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _wait_for_sshds(self, hosts: Sequence[FleetHost]) -> None:
        deadline = time.monotonic() + self.start_timeout
        if len(hosts) == 1:
            self._wait_for_sshd(hosts[0], deadline)
            return
        with ThreadPoolExecutor(max_workers=min(32, len(hosts))) as pool:
            for future in [pool.submit(self._wait_for_sshd, h, deadline) for h in hosts]:
                future.result()

    def _write_known_hosts(self) -> None:
        lines = []
        for host in self.hosts:
            keytype, blob = host.host_public_key.split()[:2]
            lines.append(f"{host.address} {keytype} {blob}")
        self.known_hosts_path.write_text("\n".join(lines) + "\n")

    def inventory(self) -> dict[str, Any]:
        """The inventory as data (what ``inventory_path`` holds)."""
        children: dict[str, Any] = {
            "fleet": {
                "hosts": {h.name: {"ansible_host": h.address} for h in self.hosts},
                "vars": {
                    "ansible_user": self.user,
                    "ansible_ssh_private_key_file": str(self.client_key_path),
                    "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.known_hosts_path}",
                },
            }
        }
        for group, members in self.groups.items():
            children[group] = {"hosts": {name: {} for name in members}}
        return {"all": {"children": children}}

    def _write_inventory(self) -> None:
        header = (
            f"# Test fleet {self.id}: {self.n_hosts} hosts in {self.subnet}, made by fleetrst.testing "
            f"(pid {os.getpid()}); removed when the fleet goes down.\n"
        )
        self.inventory_path.write_text(header + yaml.safe_dump(self.inventory(), sort_keys=False))

    def _write_state(self) -> None:
        state = {
            "id": self.id,
            "subnet": str(self.subnet),
            "gateway": self.gateway,
            "bridge": self.bridge,
            "user": self.user,
            "inventory": str(self.inventory_path),
            "known_hosts": str(self.known_hosts_path),
            "client_key": str(self.client_key_path),
            "creator_pid": os.getpid(),
            "hosts": [
                {
                    "name": h.name,
                    "address": h.address,
                    "netns": h.netns,
                    "veth": h.veth,
                    "sshd_pid": h.sshd_pid,
                }
                for h in self.hosts
            ],
        }
        (self.dir / "fleet.json").write_text(json.dumps(state, indent=2) + "\n")

    # --- down ---

    def close(self) -> None:
        """Kill every process of the fleet, delete its namespaces, veths and bridge, remove its files."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        t0 = time.monotonic()
        try:
            for handle in list(self._loads):
                with contextlib.suppress(Exception):
                    handle.stop()
            for host in self.hosts:
                if host._sshd is not None and host._sshd.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        host._sshd.kill()
            if self.id:
                inodes = {h.netns_inode for h in self.hosts if h.netns_inode is not None}
                inodes |= {ino for n in system.fleet_netns_names(self.id) if (ino := system.netns_inode(n))}
                system.kill_everything_in(inodes, (self.tag,))
            for host in self.hosts:
                if host._sshd is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        host._sshd.wait(timeout=5)
                    host._sshd = None
                host.sshd_pid = None
            if self.id:
                system.remove_links_and_namespaces(self.id, [h.netns for h in self.hosts])
            if self._record is not None:
                system.remove_fleet_dir(self.dir, self._record.dir_created)
                with contextlib.suppress(FileNotFoundError):
                    self.authorized_keys_path.unlink()
                self._record.remove()
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(self)
                if not _LIVE:
                    _restore_signal_handlers()
            self.timings["down"] = time.monotonic() - t0

    # --- running things inside a host ---

    def run_in(
        self, host: FleetHost | str, argv: Sequence[str], timeout: float = 10, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the host's network namespace (as root, on this machine's filesystem)."""
        h = self._resolve(host)
        return subprocess.run(
            [system.ip_binary(), "netns", "exec", h.netns, *argv],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ssh_argv(self, host: FleetHost | str, *command: str) -> list[str]:
        """An OpenSSH ``ssh`` command line that logs into the host with strict host key checking."""
        h = self._resolve(host)
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            str(self.client_key_path),
            "-o",
            f"UserKnownHostsFile={self.known_hosts_path}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "IdentitiesOnly=yes",
            f"{self.user}@{h.address}",
            *command,
        ]

    # --- fault hooks (issue 6) ---

    def stop_sshd(self, host: FleetHost | str, *, kill_sessions: bool = False) -> None:
        """Stop the host's sshd (SIGTERM, then SIGKILL): new connections are refused.

        Established sessions survive, as with a real sshd; ``kill_sessions=True`` kills them too
        (every sshd process in the namespace, and with them the login shells).
        """
        h = self._resolve(host)
        proc = h._sshd
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            h._sshd = None
        h.sshd_pid = None
        if kill_sessions and h.netns_inode is not None:
            for _ in range(10):
                pids = [p for p in system.pids_matching({h.netns_inode}, ()) if _comm(p).startswith("sshd")]
                if not pids:
                    break
                system.kill_pids(pids)
                time.sleep(0.02)

    def start_sshd(self, host: FleetHost | str) -> None:
        """Start the host's sshd again (same config and host key) and wait until it answers."""
        h = self._resolve(host)
        if h._sshd is not None and h._sshd.poll() is None:
            return
        self._spawn_sshd(h)
        self._wait_for_sshds([h])

    def replace_host_key(self, host: FleetHost | str) -> str:
        """Give the host a new host key (sshd restarted if it was running); known_hosts is left stale.

        Returns the new public key line.
        """
        h = self._resolve(host)
        running = h._sshd is not None and h._sshd.poll() is None
        if running:
            self.stop_sshd(h)
        h.host_public_key = new_ed25519_key(h.host_key_path, f"{h.name}@{self.tag}-replaced")
        if running:
            self.start_sshd(h)
        return h.host_public_key

    def reconfigure_sshd(self, host: FleetHost | str, extra: Sequence[str]) -> None:
        """Restart the host's sshd with ``extra`` config lines (e.g. ``ForceCommand ...``) put first
        (sshd takes the first value it reads for a keyword, so these override the fleet's own).

        This is how the fault tests make a real sshd misbehave: a command that never returns, output
        that is garbage or a flood, a login that hangs in ``AuthorizedKeysCommand``.
        """
        h = self._resolve(host)
        text = sshd_config_text(h, self.authorized_keys_path, self.user, self._sshd_version)
        h.sshd_config_path.write_text("".join(f"{line}\n" for line in extra) + text)
        check = subprocess.run(
            [SSHD, "-t", "-f", str(h.sshd_config_path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if check.returncode != 0:
            raise FleetError(f"sshd rejects the extra configuration for {h.name}: {check.stderr.strip()}")
        self.stop_sshd(h)
        self.start_sshd(h)

    def write_script(self, name: str, text: str) -> Path:
        """A script in the fleet's directory that the login user can run (for ``ForceCommand``)."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError(f"bad script name {name!r}")
        directory = self.dir / "scripts"
        directory.mkdir(mode=0o755, exist_ok=True)
        os.chmod(self.dir, self.dir.stat().st_mode | 0o011)  # the login user may traverse, not list
        path = directory / name
        path.write_text(text)
        path.chmod(0o755)
        return path

    def hide_tools(self, host: FleetHost | str, tools: Sequence[str]) -> None:
        """Restart the host's sshd so that its sessions cannot run ``tools`` (e.g. ss, lsof, tcpdump)."""
        h = self._resolve(host)
        for tool in tools:
            if not re.fullmatch(r"[a-z0-9_.-]+", tool) or shutil.which(tool) is None:
                raise ValueError(f"cannot hide {tool!r}: not a program on this machine")
        h.hidden_tools = tuple(tools)
        self.stop_sshd(h)
        self.start_sshd(h)

    def drop_replies(self, host: FleetHost | str) -> None:
        """The host silently drops everything it would send the controller (a blackhole route in its
        namespace): connects to it get no answer at all, as behind a firewall that drops."""
        h = self._resolve(host)
        system.run_ip_batch([f"route add blackhole {self.gateway}/32"], netns=h.netns)

    def slow_link(self, host: FleetHost | str, rate: str = "64kbit") -> None:
        """Limit what the host sends to ``rate`` (a token bucket on its side of the veth)."""
        h = self._resolve(host)
        subprocess.run(
            [
                system.ip_binary(),
                "netns",
                "exec",
                h.netns,
                "tc",
                "qdisc",
                "replace",
                "dev",
                "eth0",
                "root",
                "tbf",
                "rate",
                rate,
                "burst",
                "1600",
                "latency",
                "10s",
            ],
            check=True,
            capture_output=True,
            timeout=10,
        )

    # --- reset generators ---

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
        handle = LoadHandle(self, h, kind, duration)
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


def _listening(pid: int, address: str, port: int) -> bool:
    """Whether a socket in ``pid``'s network namespace listens on ``address:port`` (IPv4)."""
    want = f"{socket.inet_aton(address)[::-1].hex().upper()}:{port:04X}"
    try:
        table = Path(f"/proc/{pid}/net/tcp").read_text()
    except OSError:
        return False
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1] == want and fields[3] == "0A":  # 0A: LISTEN
            return True
    return False


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


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
