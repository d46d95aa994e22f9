"""Transports: one small interface (``base``), three implementations, created once per sweep."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from .base import Session, Transport, TransportError
from .local import LocalTransport

__all__ = ["Session", "Transport", "TransportError", "TransportSet", "import_transports"]

_MODULES = {"ssh": "asyncssh_transport", "paramiko": "paramiko_transport"}  # what each kind imports


def import_transports(kinds: Iterable[str]) -> None:
    """Import now the transports these connection kinds need (asyncssh and cryptography: ~0.15 s of
    CPU), not at a sweep's first connection: before the sweep sets the garbage collector
    (``scale.collector``), so that the import's passing garbage is collected as usual, not kept
    through the sweep (35 MB for one host), and before workers fork, so that they share one import."""
    for kind in sorted(set(kinds)):
        if kind in _MODULES:
            importlib.import_module(f"{__name__}.{_MODULES[kind]}")


class TransportSet:
    """One transport per connection kind, created on first use and closed together."""

    def __init__(self, *, forks: int) -> None:
        self._forks = forks
        self._made: dict[str, Transport] = {}

    def get(self, kind: str) -> Transport:
        transport = self._made.get(kind)
        if transport is None:
            transport = self._make(kind)
            self._made[kind] = transport
        return transport

    def _make(self, kind: str) -> Transport:
        if kind == "ssh":
            from .asyncssh_transport import AsyncsshTransport

            return AsyncsshTransport()
        if kind == "paramiko":
            from .paramiko_transport import ParamikoTransport

            return ParamikoTransport(max_workers=min(self._forks, 1024))
        if kind == "local":
            return LocalTransport()
        raise TransportError(f"unknown connection type {kind!r} (ssh, paramiko or local)")

    async def aclose(self) -> None:
        for transport in self._made.values():
            await transport.aclose()
