"""How a sweep is cut into shards: which hosts go together, and each shard's share of the caps.

Pure: targets and options in, shards out.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Sequence

from ..model import Target
from ..sweep import SweepOptions


def shard_key(target: Target) -> str:
    """Hosts with the same key stay in one shard: those behind one address (the per-address handshake
    cap keeps sshd's MaxStartups from dropping ours, and holds only within one event loop), and
    those behind one jump host (they share one connection to it)."""
    return target.connection.proxy_jump or target.connection.address


def plan_shards(targets: Sequence[Target], n: int) -> list[list[int]]:
    """The indices of ``targets`` in at most ``n`` shards of near-equal size, each in target order.

    Hosts that share a :func:`shard_key` go to the same shard; the biggest groups are placed first,
    each on the smallest shard so far. No shard is empty.
    """
    groups: dict[str, list[int]] = {}
    for index, target in enumerate(targets):
        groups.setdefault(shard_key(target), []).append(index)
    n = max(1, min(n, len(groups)))
    shards: list[list[int]] = [[] for _ in range(n)]
    sizes = [(0, k) for k in range(n)]
    for group in sorted(groups.values(), key=len, reverse=True):
        size, k = heapq.heappop(sizes)
        shards[k].extend(group)
        heapq.heappush(sizes, (size + len(group), k))
    return [sorted(shard) for shard in shards if shard]


def shard_options(options: SweepOptions, sizes: Sequence[int]) -> list[SweepOptions]:
    """Each shard's options. ``forks``, the user's cap on hosts in flight, is the sweep's: it is split
    over the shards by their size (at least one each). The handshake caps are per event loop, since
    what they protect is that loop's CPU (and, per address, sshd's MaxStartups: addresses do not
    span shards), so each shard keeps them whole."""
    if options.forks is None:
        return [options for _ in sizes]
    total = sum(sizes) or 1
    return [dataclasses.replace(options, forks=max(1, options.forks * size // total)) for size in sizes]


def without_secrets(targets: Sequence[Target]) -> tuple[list[Target], list[str]]:
    """The targets with their passwords and become passwords removed, and the names of the hosts
    that had one (for a cluster whose comms are not encrypted)."""
    out: list[Target] = []
    stripped: list[str] = []
    for target in targets:
        conn = target.connection
        if conn.password is None and conn.become_password is None:
            out.append(target)
            continue
        stripped.append(target.name)
        out.append(
            dataclasses.replace(
                target, connection=dataclasses.replace(conn, password=None, become_password=None)
            )
        )
    return out, stripped
