"""asyncssh's options prepared once for hosts that differ only by address (``asyncssh_options``).

A copy for another host must be, attribute by attribute, what asyncssh itself prepares for that host;
the check that decides it must see a copy that kept the first host anywhere; and on the real fleet the
copies must connect each to its own host and check each its own host key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from fleetrst.model import ConnectionSettings, Target
from fleetrst.testing import TestFleet
from fleetrst.transport import asyncssh_options
from fleetrst.transport.asyncssh_options import (
    PreparedOptions,
    _equivalent,
    _key_of,
    _prepare,
    _prepared_state,
    _rehosted,
)
from fleetrst.transport.asyncssh_transport import CIPHERS, AsyncsshTransport
from fleetrst.transport.base import HostKeyError
from tests.conftest import MakeFleet

KEY = asyncssh.generate_private_key("ssh-ed25519")
KNOWN = asyncssh.import_known_hosts(
    f"10.0.0.1 {KEY.export_public_key().decode().strip()}\n"
    f"10.0.0.2 {KEY.export_public_key().decode().strip()}\n"
)

# The kinds of options AsyncsshTransport._connect hands asyncssh (client_factory added per host).
OPTION_SETS: dict[str, dict[str, Any]] = {
    "key and known_hosts": {
        "connect_timeout": None,
        "login_timeout": 10,
        "gss_auth": False,
        "gss_kex": False,
        "request_pty": False,
        "encryption_algs": CIPHERS,
        "config": None,
        "password_auth": False,
        "kbdint_auth": False,
        "username": "fleetrst-test",
        "client_keys": [KEY],
        "known_hosts": KNOWN,
    },
    "password, a port, no host key check": {
        "connect_timeout": None,
        "login_timeout": 3.5,
        "gss_auth": False,
        "gss_kex": False,
        "request_pty": False,
        "encryption_algs": CIPHERS,
        "config": None,
        "password_auth": True,
        "kbdint_auth": True,
        "password": "s3cret",
        "port": 2222,
        "username": "ops",
        "known_hosts": None,
    },
    "the defaults": {"config": None, "known_hosts": None},
}


def _with_factory(options: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    client = asyncssh.SSHClient()

    def factory() -> asyncssh.SSHClient:
        return client

    return {**options, "client_factory": factory}, factory


@pytest.mark.parametrize("name", list(OPTION_SETS))
def test_a_copy_for_another_host_is_what_asyncssh_prepares_for_that_host(name: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        first_options, _ = _with_factory(OPTION_SETS[name])
        first = _prepare(loop, "10.0.0.1", first_options)
        second_options, factory = _with_factory(OPTION_SETS[name])
        fresh = _prepare(loop, "10.0.0.2", second_options)
        copied = _rehosted(first, "10.0.0.2", factory)
        assert _equivalent(_prepared_state(copied), _prepared_state(fresh))
        assert (copied.host, copied.orig_host, copied.kwargs["host"]) == ("10.0.0.2",) * 3
        assert copied.protocol_factory is factory is fresh.protocol_factory
        assert first.host == "10.0.0.1" and first.config is not copied.config  # the template is untouched

    asyncio.run(main())


@pytest.mark.parametrize("left", ["host", "orig_host", "kwargs", "config", "protocol_factory"])
def test_the_check_sees_a_copy_that_kept_the_first_host_or_its_client_anywhere(left: str) -> None:
    """Each of the places _rehosted changes, left as the first host had it: not equivalent."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        first = _prepare(loop, "10.0.0.1", _with_factory(OPTION_SETS["key and known_hosts"])[0])
        second_options, factory = _with_factory(OPTION_SETS["key and known_hosts"])
        fresh = _prepare(loop, "10.0.0.2", second_options)
        copied = _rehosted(first, "10.0.0.2", factory)
        setattr(copied, left, getattr(first, left))
        assert not _equivalent(_prepared_state(copied), _prepared_state(fresh))

    asyncio.run(main())


def test_the_options_are_keyed_by_value_and_their_objects_by_identity() -> None:
    base = _with_factory(OPTION_SETS["key and known_hosts"])[0]
    assert _key_of(base) == _key_of(_with_factory(OPTION_SETS["key and known_hosts"])[0])  # factory aside
    assert _key_of(base) != _key_of({**base, "username": "other"})
    assert _key_of(base) != _key_of({**base, "client_keys": [KEY]})  # another list: another set of keys
    assert _key_of(base) != _key_of({**base, "login_timeout": 11})


# --- on the real fleet -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet(make_fleet: MakeFleet) -> Iterator[TestFleet]:
    yield make_fleet(4)


def _target(fleet: TestFleet, name: str, known_hosts: Path | None = None) -> Target:
    host = fleet.host(name)
    return Target(
        name=name,
        groups=(),
        connection=ConnectionSettings(
            address=host.address,
            user=fleet.user,
            private_keys=(str(fleet.client_key_path),),
            known_hosts=(str(known_hosts or fleet.known_hosts_path),),
        ),
    )


def _server_addresses(transport: AsyncsshTransport, targets: list[Target]) -> list[str]:
    """Each target opened in turn: the address its sshd says it was reached on (SSH_CONNECTION)."""

    async def main() -> list[str]:
        seen = []
        for target in targets:
            session = await transport.open(target, timeout=10)
            try:
                result = await session.run('echo "$SSH_CONNECTION"', timeout=10)
            finally:
                await session.close()
            seen.append(result.stdout.split()[2])
        return seen

    return asyncio.run(main())


@pytest.fixture
def preparations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The hosts asyncssh prepared options for (the rest were copies)."""
    prepared: list[str] = []
    real = asyncssh_options._prepare

    def counted(loop: Any, host: str, options: dict[str, Any]) -> Any:
        prepared.append(host)
        return real(loop, host, options)

    monkeypatch.setattr(asyncssh_options, "_prepare", counted)
    return prepared


@pytest.mark.fleet
def test_hosts_after_the_second_connect_with_copies_each_to_its_own_host(
    fleet: TestFleet, preparations: list[str]
) -> None:
    targets = [_target(fleet, h.name) for h in fleet.hosts]
    assert _server_addresses(AsyncsshTransport(), targets) == [h.address for h in fleet.hosts]
    assert preparations == [h.address for h in fleet.hosts[:2]]  # the first, and the second to verify


@pytest.mark.fleet
def test_a_copy_checks_its_own_hosts_key(fleet: TestFleet, tmp_path: Path) -> None:
    """The last host's known_hosts line carries the first host's key: refused, after copies worked."""
    lines = fleet.known_hosts_path.read_text().splitlines()
    first_key = lines[0].split(None, 1)[1]
    last = fleet.hosts[-1]
    known = tmp_path / "known_hosts"
    known.write_text(
        "".join(line + "\n" for line in lines if not line.startswith(last.address + " "))
        + f"{last.address} {first_key}\n"
    )
    transport = AsyncsshTransport()
    good = [_target(fleet, h.name, known) for h in fleet.hosts[:-1]]
    assert _server_addresses(transport, good) == [h.address for h in fleet.hosts[:-1]]
    with pytest.raises(HostKeyError, match=r"^host key mismatch: "):
        _server_addresses(transport, [_target(fleet, last.name, known)])


@pytest.mark.fleet
def test_when_a_copy_is_not_what_asyncssh_prepares_every_host_is_prepared_by_asyncssh(
    fleet: TestFleet, preparations: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if another asyncssh kept the host in a new place: the copy differs, so no copies are used."""
    real = asyncssh_options._rehosted

    def stale(template: Any, host: str, client_factory: Any) -> Any:
        copied = real(template, host, client_factory)
        copied.kwargs = dict(template.kwargs)  # the first host left in the arguments
        return copied

    monkeypatch.setattr(asyncssh_options, "_rehosted", stale)
    targets = [_target(fleet, h.name) for h in fleet.hosts]
    assert _server_addresses(AsyncsshTransport(), targets) == [h.address for h in fleet.hosts]
    assert preparations == [h.address for h in fleet.hosts]


def test_prepared_options_outside_a_running_loop_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        PreparedOptions().for_host("10.0.0.1", _with_factory(OPTION_SETS["the defaults"])[0])
