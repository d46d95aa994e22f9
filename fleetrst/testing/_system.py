"""The machine-level plumbing of the test fleet: `ip`, the registry of fleets, locks, processes.

Everything a fleet creates is named after its fleet id ``fid`` (six hex digits):

- network namespaces ``fleetrst-<fid>-<host>`` (e.g. ``fleetrst-3fa2c1-h001``),
- the bridge ``fr<fid>br`` and the root ends of the veth pairs ``fr<fid>v<n>`` (at most 15 characters),
- a record ``/run/fleetrst-testing/<fid>.json`` with the creator's pid and start time, the subnet and
  the fleet's directory, written under ``/run/fleetrst-testing/lock`` before anything else is made,
- ``/run/fleetrst-testing/<fid>.authorized_keys``, the fleet's client key for the login user.

:func:`cleanup_stale` removes what belongs to fleets whose creator is gone, so a crashed run cannot
poison the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

RUN_DIR = Path("/run/fleetrst-testing")
NETNS_DIR = Path("/run/netns")
SYS_NET = Path("/sys/class/net")
POOL = ipaddress.IPv4Network("10.231.0.0/16")  # the only addresses a fleet ever uses
NETNS_PREFIX = "fleetrst-"
FID_RE = re.compile(r"^[0-9a-f]{6}$")
NETNS_RE = re.compile(r"^fleetrst-([0-9a-f]{6})-")
LINK_RE = re.compile(r"^fr([0-9a-f]{6})(?:br\d*|v\d+)$")
BRIDGE_RE = re.compile(r"br\d*$")
# A Linux bridge takes at most 1,024 ports: a fleet bigger than SEGMENT_HOSTS is cut into segments, a
# bridge and a /SEGMENT_PREFIX block each (the controller reaches them all; a host only its own).
SEGMENT_HOSTS = 1000
SEGMENT_PREFIX = 22


class FleetError(RuntimeError):
    """The test fleet could not be built or torn down; the message says what and where."""


def ip_binary() -> str:
    found = shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise FleetError("`ip` (iproute2) not found")
    return found


def enter_netns(netns: str) -> list[str]:
    """The argv prefix that runs a program in the network namespace ``netns`` (and nothing else).

    ``nsenter --net`` only joins the network namespace. ``ip netns exec`` (and ``ip -n``) also make a
    new mount namespace and remount /sys, which copies every mount of the machine, the fleet's own
    /run/netns bind mounts included: with 1,000 hosts that made each start O(hosts), the whole fleet's
    O(hosts²). Both exec the program: its pid is the one started.
    """
    nsenter = shutil.which("nsenter")
    if nsenter is not None:
        return [nsenter, f"--net={NETNS_DIR / netns}", "--"]
    return [ip_binary(), "netns", "exec", netns]


def run_ip_batch(lines: Iterable[str], *, netns: str | None = None, force: bool = False) -> None:
    """Run ``ip [-n NETNS] [-force] -batch -`` with ``lines``; raise FleetError with ip's message."""
    argv = [ip_binary()]
    if netns is not None:
        argv += ["-n", netns]
    if force:
        argv.append("-force")
    argv += ["-batch", "-"]
    text = "".join(line + "\n" for line in lines)
    if not text:
        return
    result = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0 and not force:
        where = f" in {netns}" if netns else ""
        raise FleetError(f"ip -batch{where} failed: {result.stderr.strip()}")


# --- the registry -----------------------------------------------------------------------------------


@dataclass
class FleetRecord:
    fid: str
    pid: int
    start_time: int  # the creator's start time (field 22 of /proc/PID/stat): guards against pid reuse
    subnet: str
    dir: str
    dir_created: bool

    @property
    def path(self) -> Path:
        return RUN_DIR / f"{self.fid}.json"

    def write(self) -> None:
        RUN_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(self.path)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def read_records() -> list[FleetRecord]:
    records: list[FleetRecord] = []
    if not RUN_DIR.is_dir():
        return records
    for path in sorted(RUN_DIR.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            records.append(FleetRecord(**data))
        except (OSError, ValueError, TypeError):
            continue
    return records


def process_start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command may contain spaces and parentheses: fields start after the last ')'
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 overall
    except (IndexError, ValueError):
        return None


def creator_alive(record: FleetRecord) -> bool:
    return process_start_time(record.pid) == record.start_time


@contextlib.contextmanager
def registry_lock() -> Iterator[None]:
    """An exclusive lock over the registry, address allocation and user creation (a flock in /run)."""
    RUN_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    fd = os.open(RUN_DIR / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise FleetError(f"timed out waiting for the lock {RUN_DIR / 'lock'}") from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# --- addresses --------------------------------------------------------------------------------------


def _used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network in the root namespace's addresses and routes that overlaps the pool."""
    used: list[ipaddress.IPv4Network] = []
    ip = ip_binary()
    for argv in ([ip, "-j", "-4", "addr", "show"], [ip, "-j", "-4", "route", "show", "table", "all"]):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        try:
            data = json.loads(result.stdout or "[]")
        except ValueError:
            continue
        for entry in data:
            candidates: list[str] = []
            for info in entry.get("addr_info", []):
                if "local" in info and "prefixlen" in info:
                    candidates.append(f"{info['local']}/{info['prefixlen']}")
            dst = entry.get("dst")
            if isinstance(dst, str) and dst != "default":
                candidates.append(dst)
            for text in candidates:
                try:
                    net = ipaddress.IPv4Network(text, strict=False)
                except ValueError:
                    continue
                if net.overlaps(POOL):
                    used.append(net)
    return used


def segments_for(n_hosts: int) -> int:
    """How many segments (bridges) a fleet of ``n_hosts`` needs."""
    return -(-n_hosts // SEGMENT_HOSTS)


def prefix_for(n_hosts: int) -> int:
    """The longest prefix (at most /24) that holds the bridge and ``n_hosts`` hosts; for a fleet of
    several segments, one that holds a /SEGMENT_PREFIX block for each."""
    segments = segments_for(n_hosts)
    if segments > 1:
        prefix = SEGMENT_PREFIX - (segments - 1).bit_length()
        if prefix < POOL.prefixlen:
            raise FleetError(f"{n_hosts} hosts do not fit in {POOL}")
        return prefix
    needed = n_hosts + 3  # network, bridge, hosts, broadcast
    prefix = 32 - max(8, (needed - 1).bit_length())
    if prefix < POOL.prefixlen:
        raise FleetError(f"{n_hosts} hosts do not fit in {POOL}")
    return prefix


def allocate_subnet(n_hosts: int, records: list[FleetRecord]) -> ipaddress.IPv4Network:
    """A block of the pool that overlaps no address, route or live fleet. Call under the lock.

    Blocks are handed out round-robin (a cursor in RUN_DIR), not first-free: a block that a fleet has
    just given up is not reused at once, because the controller may still hold connections to its old
    addresses (FIN-WAIT, TIME-WAIT) whose last segments would reach the new fleet's hosts and make them
    send RSTs nobody asked for.
    """
    used = _used_networks()
    for record in records:
        with contextlib.suppress(ValueError):
            used.append(ipaddress.IPv4Network(record.subnet))
    candidates = list(POOL.subnets(new_prefix=prefix_for(n_hosts)))
    cursor_file = RUN_DIR / "next-block"
    try:
        cursor = ipaddress.IPv4Address(cursor_file.read_text().strip())
    except (OSError, ValueError):
        cursor = POOL.network_address
    start = next((i for i, c in enumerate(candidates) if c.network_address >= cursor), 0)
    for candidate in candidates[start:] + candidates[:start]:
        if not any(candidate.overlaps(net) for net in used):
            after = candidate.broadcast_address + 1
            nxt = after if after in POOL else POOL.network_address
            with contextlib.suppress(OSError):
                cursor_file.write_text(f"{nxt}\n")
            return candidate
    raise FleetError(f"no free block for {n_hosts} hosts left in {POOL} (too many fleets at once?)")


# --- processes --------------------------------------------------------------------------------------


def netns_inode(name: str) -> int | None:
    try:
        return os.stat(NETNS_DIR / name).st_ino
    except OSError:
        return None


def pids_matching(netns_inodes: set[int], markers: tuple[str, ...]) -> list[int]:
    """Pids in one of the network namespaces, or whose argv contains one of the markers."""
    me = os.getpid()
    links = {f"net:[{ino}]" for ino in netns_inodes}
    found: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == me:
            continue
        try:
            if links and os.readlink(f"/proc/{pid}/ns/net") in links:
                found.append(pid)
                continue
            if markers:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read().decode(errors="replace")
                if any(marker in cmdline for marker in markers):
                    found.append(pid)
        except OSError:
            continue
    return found


def kill_pids(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def kill_everything_in(netns_inodes: set[int], markers: tuple[str, ...]) -> None:
    """SIGKILL every process in the namespaces (or carrying a marker); repeat until none is left."""
    for _ in range(20):
        pids = pids_matching(netns_inodes, markers)
        if not pids:
            return
        kill_pids(pids)
        time.sleep(0.02)


# --- teardown by name -------------------------------------------------------------------------------


def fleet_netns_names(fid: str) -> list[str]:
    try:
        names = os.listdir(NETNS_DIR)
    except OSError:
        return []
    return sorted(n for n in names if n.startswith(f"{NETNS_PREFIX}{fid}-"))


def fleet_link_names(fid: str) -> list[str]:
    try:
        names = os.listdir(SYS_NET)
    except OSError:
        return []
    return sorted(n for n in names if (m := LINK_RE.match(n)) and m.group(1) == fid)


def remove_links_and_namespaces(fid: str, netns_names: Iterable[str], *, timeout: float = 15.0) -> None:
    """Delete the bridge and namespaces (which takes the veths with them); wait until links are gone."""
    names = sorted(set(netns_names) | set(fleet_netns_names(fid)))
    lines = [f"link del {link}" for link in fleet_link_names(fid) if BRIDGE_RE.search(link)]
    lines += [f"netns del {name}" for name in names]
    run_ip_batch(lines, force=True)
    deadline = time.monotonic() + timeout
    while (left := fleet_link_names(fid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if left:  # the namespaces' cleanup is asynchronous; delete what is still there by hand
        run_ip_batch([f"link del {link}" for link in left], force=True)


def teardown_by_name(fid: str, directory: str | None, dir_created: bool) -> None:
    """Remove every trace of fleet ``fid`` using only names (for stale fleets)."""
    names = fleet_netns_names(fid)
    inodes = {ino for name in names if (ino := netns_inode(name)) is not None}
    # every process a fleet starts carries "fleetrst-<fid>" in its argv (sshd's config file name, the
    # generators' --tag), so even one outside the namespaces is found
    kill_everything_in(inodes, (f"{NETNS_PREFIX}{fid}",))
    remove_links_and_namespaces(fid, names)
    with contextlib.suppress(FileNotFoundError):
        authorized_keys_path(fid).unlink()
    if directory:
        remove_fleet_dir(Path(directory), dir_created)


FLEET_FILES = ("inventory.yml", "known_hosts", "id_ed25519", "id_ed25519.pub", "fleet.json", "hosts", "load")


def authorized_keys_path(fid: str) -> Path:
    return RUN_DIR / f"{fid}.authorized_keys"


def remove_fleet_dir(directory: Path, dir_created: bool) -> None:
    if dir_created:
        shutil.rmtree(directory, ignore_errors=True)
        return
    for name in FLEET_FILES:  # a directory the caller gave us: remove only what we wrote
        path = directory / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def cleanup_stale() -> list[str]:
    """Remove the leftovers of every fleet whose creating process is dead; return their ids.

    Also removes namespaces and links named like a fleet's but with no record at all (a record is
    always written, under the lock, before anything is created, so those are leftovers too).
    """
    removed: list[str] = []
    with registry_lock():
        records = read_records()
        live = {r.fid for r in records if creator_alive(r)}
        for record in records:
            if record.fid in live:
                continue
            teardown_by_name(record.fid, record.dir, record.dir_created)
            record.remove()
            removed.append(record.fid)
        known = {r.fid for r in records}
        orphans: set[str] = set()
        with contextlib.suppress(OSError):
            orphans |= {m.group(1) for n in os.listdir(NETNS_DIR) if (m := NETNS_RE.match(n))}
        with contextlib.suppress(OSError):
            orphans |= {m.group(1) for n in os.listdir(SYS_NET) if (m := LINK_RE.match(n))}
        for fid in sorted(orphans - known):
            teardown_by_name(fid, None, False)
            removed.append(fid)
    return removed
