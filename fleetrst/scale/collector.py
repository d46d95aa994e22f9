"""Python's garbage collector, set for a sweep: the process's long-lived objects out of its reach, and
its young generation collected less often.

A sweep's process holds the interpreter, asyncssh, cryptography and fleetrst (some 300,000 objects
once imported), then allocates and frees a few hundred objects a host, most of them freed by their
reference counts as soon as the host is done. With the collector's defaults (a young collection every
700 net allocations) a 1,000-host sweep in one process ran ~280 young, ~25 middle and 2 full
collections, 0.26–0.33 s of its ~3.4 s of CPU; frozen (:func:`gc.freeze`: what exists when the sweep
starts is never traversed again) and with a young generation of 50,000, it ran 2–8 collections in
0.05–0.17 s, and its peak memory was the same (74–85 MB in both). Forked workers inherit the frozen
objects, so their collections do not write to (and copy) the pages they share with the parent.

What is frozen stays until the sweep ends, so a sweep's imports come before it (asyncssh's left
35 MB of passing garbage frozen in a one-host sweep: ``transport.import_transports``), and the young
generations are collected first. Cycles are still collected: a young collection every 50,000 net
allocations (a few hundred hosts), a middle one every second young one, which bounds the garbage that
waits to ~100,000 objects.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

YOUNG = 50_000  # net allocations of container objects between two young collections (default 700)
MIDDLE = 2  # young collections between two middle ones (default 10)
OLD = 10  # middle collections between two considerations of a full one (the default)

_held = 0  # how many collector_for_sweep() are open: only the outermost sets and restores


@contextlib.contextmanager
def collector_for_sweep() -> Iterator[None]:
    """Freeze what exists now and collect the young generation less often, until the block ends
    (then the collector is as it was). Nested blocks freeze what was made since the outer one and
    leave the rest to it."""
    global _held
    outermost = _held == 0
    before = gc.get_threshold()
    _held += 1
    gc.collect(1)  # the young garbage of what came before (an inventory's load), not frozen with it
    gc.freeze()
    if outermost:
        gc.set_threshold(YOUNG, MIDDLE, OLD)
    try:
        yield
    finally:
        _held -= 1
        if outermost:
            gc.set_threshold(*before)
            gc.unfreeze()
