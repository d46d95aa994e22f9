"""The test fleet's network: its address block, bridge, veths and namespaces, and the faults made in them.

Layout: the bridge ``fr<fid>br`` in the root namespace holds the first address of the fleet's block of
10.231.0.0/16; host *i* is the namespace ``fleetrst-<fid>-h00i`` whose ``eth0`` (a veth whose other
end ``fr<fid>v<i>`` is a port of the bridge) holds the next addresses, with loopback up and its own
``sshd`` listening on port 22. The controller (this process, root namespace) reaches every host
directly; hosts reach nothing but each other and the controller (no route out, no forwarding).

A bridge takes at most 1,024 ports, so a fleet of more than ``SEGMENT_HOSTS`` hosts is cut into
segments: bridge *k* (``fr<fid>br``, then ``fr<fid>br1``, ``fr<fid>br2``, ...) holds the first address
of the *k*-th /22 of the block and its hosts the next ones; a host reaches its own segment and the
controller. The kernel's neighbour table is shared by every namespace, and its default hard limit
(``gc_thresh3`` = 1,024 entries) is overflowed by a 1,000-host fleet: :func:`size_neighbour_tables`
raises the limits to what the live fleets need (never lowers them).

Everything here is done with ``ip`` (and ``tc``); the machine-level plumbing (the registry and its
lock, naming, killing) is in :mod:`._system`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import _system as system
from ._system import FleetError

if TYPE_CHECKING:
    from .fleet import FleetHost


@dataclass(frozen=True)
class HostLink:
    """Where one host sits on the fleet's network."""

    name: str
    index: int
    netns: str
    address: str
    veth: str  # the root-namespace end of its veth pair (a port of its segment's bridge)
    gateway: str = ""  # its segment's bridge address: where it sees the controller coming from
    prefixlen: int = 24  # of its segment
    bridge: str = ""


@dataclass(frozen=True)
class Segment:
    """One bridge of the fleet and its block of addresses."""

    bridge: str
    gateway: str
    network: ipaddress.IPv4Network


@dataclass(frozen=True)
class NetworkPlan:
    """The fleet's bridges and hosts in its block of addresses, before anything is made."""

    subnet: ipaddress.IPv4Network
    gateway: str  # the first bridge's address: where its hosts see the controller coming from
    bridge: str  # the first bridge
    hosts: tuple[HostLink, ...]
    segments: tuple[Segment, ...] = ()


def allocate_block(n_hosts: int, record: system.FleetRecord) -> ipaddress.IPv4Network:
    """A free block of 10.231.0.0/16 for ``n_hosts``, written into the fleet's record.

    Call it holding the registry lock, and claim the block (:func:`claim`) before letting go of it.
    """
    subnet = system.allocate_subnet(n_hosts, system.read_records())
    record.subnet = str(subnet)
    record.write()  # from here on cleanup_stale can remove whatever we leave behind
    return subnet


def plan(fid: str, tag: str, names: Sequence[str], subnet: ipaddress.IPv4Network) -> NetworkPlan:
    """Name the bridges, namespaces and veths of fleet ``fid`` (tag ``tag``) and hand out the addresses."""
    count = system.segments_for(len(names))
    blocks = [subnet] if count == 1 else list(subnet.subnets(new_prefix=system.SEGMENT_PREFIX))[:count]
    segments: list[Segment] = []
    hosts: list[HostLink] = []
    for k, block in enumerate(blocks):
        addresses = block.hosts()
        segment = Segment(f"fr{fid}br{k or ''}", str(next(addresses)), block)
        segments.append(segment)
        first = k * system.SEGMENT_HOSTS
        for index, name in enumerate(names[first : first + system.SEGMENT_HOSTS], start=first + 1):
            hosts.append(
                HostLink(
                    name=name,
                    index=index,
                    netns=f"{tag}-{name}",
                    address=str(next(addresses)),
                    veth=f"fr{fid}v{index}",
                    gateway=segment.gateway,
                    prefixlen=block.prefixlen,
                    bridge=segment.bridge,
                )
            )
    return NetworkPlan(
        subnet=subnet,
        gateway=segments[0].gateway,
        bridge=segments[0].bridge,
        hosts=tuple(hosts),
        segments=tuple(segments),
    )


def claim(plan: NetworkPlan) -> None:
    """Make the bridges (holding their gateway addresses), the namespaces and the veths between them."""
    lines: list[str] = []
    for segment in plan.segments:
        lines += [
            f"link add {segment.bridge} type bridge",
            f"addr add {segment.gateway}/{segment.network.prefixlen} dev {segment.bridge}",
            f"link set {segment.bridge} up",
        ]
    lines += [f"netns add {h.netns}" for h in plan.hosts]
    for h in plan.hosts:
        lines.append(f"link add {h.veth} type veth peer name eth0 netns {h.netns}")
        lines.append(f"link set {h.veth} master {h.bridge} up")
    system.run_ip_batch(lines)


NEIGH = Path("/proc/sys/net/ipv4/neigh/default")


def size_neighbour_tables(hosts: int) -> dict[str, int]:
    """Raise the kernel's neighbour-table limits (shared by every namespace) for ``hosts`` hosts in all
    live fleets: each host's namespace holds an entry for its gateway, and the controller one for each
    host. Never lowers them. Returns the values set (empty when they already sufficed)."""
    wanted = {"gc_thresh1": hosts, "gc_thresh2": 2 * hosts + 512, "gc_thresh3": 4 * hosts + 1024}
    changed: dict[str, int] = {}
    for name in ("gc_thresh3", "gc_thresh2", "gc_thresh1"):  # thresh3 first: it bounds the others
        path = NEIGH / name
        try:
            current = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if current < wanted[name]:
            with contextlib.suppress(OSError):
                path.write_text(f"{wanted[name]}\n")
                changed[name] = wanted[name]
    return changed


def configure_namespaces(hosts: Sequence[FleetHost]) -> None:
    """Inside every host's namespace: its address on ``eth0``, ``eth0`` and loopback up."""
    ip = system.ip_binary()
    procs: list[tuple[FleetHost, subprocess.Popen[str]]] = []
    for chunk_start in range(0, len(hosts), 256):
        chunk = hosts[chunk_start : chunk_start + 256]
        procs = [
            (
                h,
                subprocess.Popen(
                    [*system.enter_netns(h.netns), ip, "-batch", "-"],
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
                f"addr add {h.address}/{h.prefixlen} dev eth0\nlink set eth0 up\nlink set lo up\n",
                timeout=60,
            )
            if proc.returncode != 0:
                failures.append(f"{h.name}: {err.strip()}")
        if failures:
            raise FleetError("could not configure the namespaces: " + "; ".join(failures[:5]))


# --- faults ---------------------------------------------------------------------------------------------


def add_blackhole(netns: str, address: str) -> None:
    """A blackhole route to ``address`` in ``netns``: what the namespace sends there vanishes."""
    system.run_ip_batch([f"route add blackhole {address}/32"], netns=netns)


def limit_rate(netns: str, rate: str) -> None:
    """A token bucket of ``rate`` on ``eth0`` in ``netns``: what the namespace sends is slowed down."""
    subprocess.run(
        [
            system.ip_binary(),
            "netns",
            "exec",
            netns,
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


# --- down -----------------------------------------------------------------------------------------------


def kill_processes(fid: str, tag: str, netns_inodes: Iterable[int | None]) -> None:
    """Kill every process in the fleet's namespaces (those given and any still named after the fleet)
    and every process carrying the fleet's ``tag`` in its argv."""
    inodes = {ino for ino in netns_inodes if ino is not None}
    inodes |= {ino for n in system.fleet_netns_names(fid) if (ino := system.netns_inode(n))}
    system.kill_everything_in(inodes, (tag,))


def remove(fid: str, netns_names: Iterable[str]) -> None:
    """Delete the fleet's bridge and namespaces (the veths go with them)."""
    system.remove_links_and_namespaces(fid, netns_names)
