"""The test fleet's façade: :class:`TestFleet` (a real fleet of Linux hosts on this machine, one network
namespace and one OpenSSH sshd per host) and :class:`FleetHost`, one of its hosts.

::

    with TestFleet(n_hosts=3, groups={"web": ["h001", "h002"]}) as fleet:
        fleet.inventory_path          # an Ansible YAML inventory: group "fleet" + the extra groups
        with fleet.closed_port_storm(fleet.host("h002"), rate=100, duration=5):
            ...                       # h002's AttemptFails and OutRsts rise by ~100/s, nobody else's

This module holds the fleet's life (start, close, the live fleets torn down at exit or on SIGTERM), its
registry record, state file and inventory. The rest is done by the modules it delegates to:
:mod:`.network` (address block, bridge, veths, namespaces; the layout is described there),
:mod:`.sshd` (login user, keys, each host's sshd, known_hosts), :mod:`.faults` (the fault hooks) and
:mod:`.loads` (the reset generators), with :mod:`._system` for the machine-level plumbing.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
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

from . import _system as system
from . import network, sshd
from ._system import FleetError
from .bsdhost import StandinMixin
from .faults import FaultsMixin
from .loads import LoadHandle, LoadsMixin
from .sshd import USER, ensure_user
from .support import fleet_support_problems

GROUP_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_HOSTS = 10000  # 10 segments of 1,000; ~1.5 MB of memory a host (its sshd), 15 GB in all
SPAWN_THREADS = 16  # sshds started at once (each a fork + exec of `ip netns exec ... sshd`)
RESERVED_GROUPS = frozenset({"all", "ungrouped", "fleet"})

__all__ = ["USER", "FleetError", "FleetHost", "LoadHandle", "TestFleet", "ensure_user"]


# --- the fleet ------------------------------------------------------------------------------------------


@dataclass(eq=False)
class FleetHost:
    """One host of the fleet. ``sshd_pid`` is None while its sshd is stopped."""

    name: str
    index: int
    netns: str
    address: str
    veth: str  # the root-namespace end of its veth pair (a port of its segment's bridge)
    dir: Path
    gateway: str = ""  # its segment's bridge address: where it sees the controller coming from
    prefixlen: int = 24  # its address's prefix (its segment's)
    port: int = 22
    sshd_pid: int | None = None
    host_public_key: str = ""  # "ssh-ed25519 AAAA... comment" as sshd serves it now
    netns_inode: int | None = field(default=None, repr=False)
    hidden_tools: tuple[str, ...] = ()  # programs its sessions cannot run (see TestFleet.hide_tools)
    standin_dir: Path | None = None  # a FreeBSD stand-in's tools (see TestFleet.as_freebsd), else None
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


class TestFleet(FaultsMixin, LoadsMixin, StandinMixin):
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
        if not 1 <= n_hosts <= MAX_HOSTS:
            raise ValueError(f"n_hosts must be between 1 and {MAX_HOSTS}, not {n_hosts}")
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
        self.gateway = ""  # the first bridge's address: where its hosts see the controller coming from
        self.bridge = ""  # the first bridge; a fleet of over 1,000 hosts has more (``bridges``)
        self.bridges: list[str] = []
        self.neighbour_limits: dict[str, int] = {}  # the kernel limits this fleet raised (never lowered)
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
        self._sshd_version = sshd.sshd_version()
        self._make_dir()
        client_line = sshd.new_ed25519_key(self.client_key_path, f"fleetrst-test-fleet-{self.id}")
        self._plan_and_claim_network()  # under the registry lock: subnet, record, bridge, netns, veths
        self.authorized_keys_path.write_text(client_line + "\n")
        self.authorized_keys_path.chmod(0o644)  # sshd reads it as the login user
        self.timings["network"] = time.monotonic() - t0
        sshd.write_host_files(self.hosts, self.tag, self.authorized_keys_path, self.user, self._sshd_version)
        self.timings["host_files"] = time.monotonic() - t0
        network.configure_namespaces(self.hosts)
        self.timings["configured"] = time.monotonic() - t0
        with ThreadPoolExecutor(max_workers=min(SPAWN_THREADS, len(self.hosts))) as pool:
            list(pool.map(sshd.spawn_sshd, self.hosts))
        self.timings["spawned"] = time.monotonic() - t0
        sshd.wait_for_sshds(self.hosts, self.start_timeout + len(self.hosts) / 100)
        sshd.write_known_hosts(self.known_hosts_path, self.hosts)
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
            self.subnet = network.allocate_block(self.n_hosts, self._record)
            plan = network.plan(self.id, self.tag, self._names, self.subnet)
            self.gateway = plan.gateway
            self.bridge = plan.bridge
            self.bridges = [segment.bridge for segment in plan.segments]
            for link in plan.hosts:
                host = FleetHost(
                    name=link.name,
                    index=link.index,
                    netns=link.netns,
                    address=link.address,
                    veth=link.veth,
                    dir=self.dir / "hosts" / link.name,
                    gateway=link.gateway,
                    prefixlen=link.prefixlen,
                )
                self.hosts.append(host)
            # every live fleet's hosts (this one's included: its record is written) in the kernel's
            # shared neighbour table
            live = sum(
                ipaddress.IPv4Network(r.subnet).num_addresses for r in system.read_records() if r.subnet
            )
            self.neighbour_limits = network.size_neighbour_tables(live)
            network.claim(plan)
        for h in self.hosts:
            h.netns_inode = system.netns_inode(h.netns)

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
            "bridges": self.bridges,
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
                sshd.kill_sshd(host)
            if self.id:
                network.kill_processes(self.id, self.tag, [h.netns_inode for h in self.hosts])
            for host in self.hosts:
                sshd.reap_sshd(host)
            if self.id:
                network.remove(self.id, [h.netns for h in self.hosts])
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
