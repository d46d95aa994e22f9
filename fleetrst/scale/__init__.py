"""A sweep beyond one event loop: its hosts cut into shards, each one :class:`~fleetrst.sweep.Sweep`,
on worker processes of this machine (``--procs``, :mod:`.processes`) or on the workers of a Dask
cluster (``--dask``, :mod:`.cluster`). Results come back to this process as shards produce them and
become one report: one table, one JSON, one history record, one exit code.

- ``plan``: which hosts go together (:func:`~.plan.plan_shards`) and each shard's share of the caps;
- ``processes``: worker processes, one event loop each, results streamed over pipes;
- ``cluster``: Dask tasks, a coroutine each on its worker's loop, gathered with ``as_completed``.

:func:`run_fleet_sweep` picks one: Dask when given an address; else worker processes when there are
cores to spare and hosts enough to make them worth it (:func:`default_procs`); else one event loop
here (:func:`fleetrst.sweep.run_sweep`).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Concatenate, ParamSpec, TypeVar

from ..model import FleetReport, HostResult, Target
from ..sweep import (
    Investigator,
    ProgressCallback,
    ResultCallback,
    SweepOptions,
    cores,
    fleet_report,
    run_sweep,
)
from ..transport import import_transports
from ..transport.base import Transports
from .collector import collector_for_sweep
from .plan import plan_shards, shard_options

__all__ = [
    "PROCS_MIN_HOSTS",
    "Scale",
    "collector_for_sweep",
    "default_procs",
    "plan_shards",
    "run_fleet_sweep",
    "shard_options",
]

# Below this many hosts one event loop is best: a worker process costs ~45 MB, and one core handshakes
# ~200 hosts a second (~5 ms of client CPU a host, measured: docs/SCALING.md), so below 500 hosts its
# handshake queue drains within a couple of seconds. From here on a second core shortens it.
PROCS_MIN_HOSTS = 500


@dataclass(frozen=True)
class Scale:
    """Where a sweep runs: ``procs`` worker processes here (None: :func:`default_procs`), or the Dask
    cluster whose scheduler is at ``dask``."""

    procs: int | None = None
    dask: str | None = None


def default_procs(n_hosts: int, n_cores: int | None = None) -> int:
    """Every core once a sweep has :data:`PROCS_MIN_HOSTS` hosts, one process below that."""
    n_cores = cores() if n_cores is None else n_cores
    return max(1, n_cores) if n_hosts >= PROCS_MIN_HOSTS else 1


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _transports_imported_first(
    sweep: Callable[Concatenate[Sequence[Target], _P], _R],
) -> Callable[Concatenate[Sequence[Target], _P], _R]:
    """The targets' transports imported before ``sweep`` (and its collector) starts; a test's own
    transports (``transports=``) import nothing."""

    @functools.wraps(sweep)
    def imported_first(targets: Sequence[Target], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if kwargs.get("transports") is None:
            import_transports(t.connection.connection for t in targets)
        return sweep(targets, *args, **kwargs)

    return imported_first


@_transports_imported_first
@collector_for_sweep()  # the collector set for a sweep, as long as it runs (see scale.collector)
def run_fleet_sweep(
    targets: Sequence[Target],
    options: SweepOptions,
    scale: Scale = Scale(),
    *,
    pattern: str = "all",
    limit: str | None = None,
    inventories: Sequence[str] = (),
    on_result: ResultCallback | None = None,
    on_progress: ProgressCallback | None = None,
    on_note: Callable[[str], None] | None = None,
    investigator: Investigator | None = None,
    transports: Callable[[], Transports] | None = None,
) -> FleetReport:
    """Sweep ``targets`` where ``scale`` says and return one fleet report, as :func:`run_sweep` does.

    ``on_note`` gets the lines to say on stderr (limits that bind, secrets kept back); by default they
    are written there. ``transports`` makes a shard's transports (tests); None for the real ones.
    """
    say = on_note if on_note is not None else _stderr
    procs = scale.procs if scale.procs is not None else default_procs(len(targets))
    if scale.dask is None and min(procs, len(targets)) <= 1:
        return run_sweep(
            targets,
            options,
            pattern=pattern,
            limit=limit,
            inventories=inventories,
            on_result=on_result,
            on_progress=on_progress,
            on_note=say,
            investigator=investigator,
            transports=transports() if transports is not None else None,
        )
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    started = time.monotonic()
    results: list[HostResult]
    if scale.dask is not None:
        from .cluster import sweep_on_dask

        dask = sweep_on_dask(
            scale.dask,
            targets,
            options,
            investigator=investigator,
            on_result=on_result,
            on_progress=on_progress,
            on_note=say,
            transports=transports,
        )
        results, interrupted_by = dask.results, dask.interrupted_by
    else:
        from .processes import sweep_in_processes

        local = sweep_in_processes(
            targets,
            options,
            procs,
            investigator=investigator,
            on_result=on_result,
            on_progress=on_progress,
            on_note=say,
            transports=transports,
        )
        results, interrupted_by = local.results, local.interrupted_by
    return fleet_report(
        results,
        options,
        started_at=started_at,
        started=started,
        investigator=investigator,
        interrupted_by=interrupted_by,
        pattern=pattern,
        limit=limit,
        inventories=inventories,
    )


def _stderr(text: str) -> None:
    sys.stderr.write(f"fleetrst: {text}\n")
