"""asyncssh's connection options, prepared once for the hosts that differ only by address.

``asyncssh.connect`` prepares a new options object for every connection, in a thread of the default
executor: about 170 µs of Python (the user name's stringprep, paths, the algorithm lists) plus the
thread hand-off, 0.35 ms of CPU a host measured here, a tenth of what a whole host costs. A sweep's
hosts mostly share every option but the address, so their preparations differ only in where the
address is kept.

:class:`PreparedOptions` prepares the first host of each set of options as asyncssh does, and the
second both ways: asyncssh's own preparation for that host, and a copy of the first with the address
put in its four places (:func:`_rehosted`). Only where the two are equal, attribute by attribute, do
later hosts get copies; anywhere else (another asyncssh that keeps the host somewhere new, a set of
options whose preparation depends on the host) every host is prepared by asyncssh, as before. It is
used only without ``~/.ssh/config`` (whose Host blocks make options depend on the host), a jump host
or a proxy command; those connect through ``asyncssh.connect``.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Hashable
from typing import Any

import asyncssh
from asyncssh.connection import SSHClientConnection, _connect

_CONNECT_MESSAGE = "Opening SSH connection to"  # asyncssh.connect's, for its log
_MAX_TEMPLATES = 64  # distinct sets of options kept (a sweep has a handful)


class PreparedOptions:
    def __init__(self) -> None:
        # by the options but the address: (the first host's preparation, verified) where verified is
        # None until a second host has been prepared both ways
        self._templates: dict[Hashable, tuple[Any, bool | None]] = {}

    def for_host(self, host: str, options: dict[str, Any]) -> Any:
        """``options`` (asyncssh.connect's keyword arguments, ``client_factory`` included) prepared
        for ``host``, synchronously: asyncssh's preparation, or a verified copy of an earlier one."""
        loop = asyncio.get_running_loop()
        key = _key_of(options)
        found = self._templates.get(key)
        if found is not None and found[1]:
            return _rehosted(found[0], host, options["client_factory"])
        fresh = _prepare(loop, host, options)
        if found is None:
            if len(self._templates) < _MAX_TEMPLATES:
                # a copy of its own: the first host's connection sets its ``waiter`` on ``fresh``
                self._templates[key] = (_rehosted(fresh, host, options["client_factory"]), None)
        elif found[1] is None:
            copied = _rehosted(found[0], host, options["client_factory"])
            self._templates[key] = (found[0], _equivalent(_prepared_state(copied), _prepared_state(fresh)))
        return fresh

    @staticmethod
    async def connect(options: Any) -> Any:
        """A connection made with prepared ``options``, as ``asyncssh.connect`` makes it after its
        preparation (the caller's deadline governs: these options have no connect timeout)."""
        loop = asyncio.get_running_loop()

        def conn_factory() -> SSHClientConnection:
            return SSHClientConnection(loop, options, wait="auth")

        return await _connect(options, (), loop, 0, None, conn_factory, _CONNECT_MESSAGE)


def _prepare(loop: asyncio.AbstractEventLoop, host: str, options: dict[str, Any]) -> Any:
    """What ``asyncssh.connect(host, **options)`` prepares (in its executor), here in the caller."""
    return asyncssh.SSHClientConnectionOptions(
        None,
        loop=loop,
        host=host,
        port=options.get("port", ()),
        tunnel=(),
        family=(),
        local_addr=(),
        **{k: v for k, v in options.items() if k != "port"},
    )


def _rehosted(template: Any, host: str, client_factory: Callable[[], Any]) -> Any:
    """A copy of ``template`` prepared for ``host``: asyncssh keeps the address in the options (host,
    orig_host), the arguments they were prepared from, and the host's config; and the client object
    is each connection's own. Nothing else a copy shares is changed by a connection."""
    options = copy.copy(template)
    options.host = options.orig_host = host
    options.kwargs = {**template.kwargs, "host": host, "client_factory": client_factory}
    options.protocol_factory = client_factory  # where asyncssh keeps the client factory
    config = copy.copy(template.config)
    config._orig_host = host
    options.config = config
    return options


def _prepared_state(options: Any) -> dict[str, Any]:
    """What a preparation made: its attributes but the one a connection sets on them (``waiter``)."""
    return {name: value for name, value in vars(options).items() if name != "waiter"}


_BY_VALUE = (str, int, float, tuple, type(None))  # a tuple, not ``str | int | ...``, made anew per call


def _key_of(options: dict[str, Any]) -> Hashable:
    """The options but the per-connection client factory: values by equality, objects by identity."""
    return tuple(
        (name, value if isinstance(value, _BY_VALUE) else id(value))
        for name, value in sorted(options.items())
        if name != "client_factory"
    )


def _equivalent(a: Any, b: Any, depth: int = 0) -> bool:
    """``a`` and ``b`` the same: equal, or objects of one asyncssh class without an equality of its
    own and with equivalent attributes (two preparations' config objects compare by what they hold;
    anything else, a function included, by its own equality)."""
    if a is b:
        return True
    if depth > 4 or type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equivalent(a[k], b[k], depth + 1) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_equivalent(x, y, depth + 1) for x, y in zip(a, b, strict=True))
    plain = type(a).__eq__ is object.__eq__  # type: ignore[comparison-overlap]
    if plain and type(a).__module__.startswith("asyncssh."):
        return _equivalent(vars(a), vars(b), depth + 1)
    try:
        return bool(a == b)
    except Exception:
        return False
