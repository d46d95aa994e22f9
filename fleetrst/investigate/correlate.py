"""Fleet-level correlation: what several hosts' investigations show together. Pure.

No single-host tool can see that twelve hosts are all reset by the same ``10.0.3.7:5432``: a service
there may have crashed, or a firewall in front of it resets. Peers are taken from captures (RSTs
received from a peer address:port) and from socket tables (many sockets to one peer stuck in SYN-SENT).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from ..model import HostResult
from .result import Finding

MIN_HOSTS = 2
LOCAL = ("127.", "::1", "[::1]")


def fleet_findings(results: Sequence[HostResult], min_hosts: int = MIN_HOSTS) -> list[Finding]:
    """Peers that reset (or refuse) several hosts at once, most hosts first."""
    by_peer: defaultdict[str, dict[str, int]] = defaultdict(dict)
    source: defaultdict[str, set[str]] = defaultdict(set)
    for h in results:
        inv = h.investigation
        if inv is None:
            continue
        for flow in inv.capture.flows if inv.capture is not None else ():
            peer = flow.peer
            if flow.direction == "received" and not peer.startswith(LOCAL) and not peer.endswith(":*"):
                by_peer[peer][h.host] = by_peer[peer].get(h.host, 0) + flow.count
                source[peer].add("capture")
        for peer, n in inv.stuck_peers.items():
            if not peer.startswith(LOCAL):
                by_peer[peer][h.host] = by_peer[peer].get(h.host, 0) + n
                source[peer].add("sockets")
    findings: list[Finding] = []
    for peer, hosts in by_peer.items():
        if len(hosts) < min_hosts:
            continue
        names = tuple(sorted(hosts))
        findings.append(
            Finding(
                kind="common_peer",
                peer=peer,
                hosts=names,
                count=sum(hosts.values()),
                seen_in=tuple(sorted(source[peer])),
                summary=f"{len(names)} hosts get resets from {peer} — a service there may have crashed "
                "(or a firewall in front of it resets connections)",
                next_step=f"look at {peer} itself: is the service on that port running and accepting? "
                "the hosts are: " + ", ".join(names[:10]) + (" ..." if len(names) > 10 else ""),
            )
        )
    findings.sort(key=lambda f: (-len(f.hosts), f.peer))
    return findings
