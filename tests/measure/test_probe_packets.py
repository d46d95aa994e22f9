"""The probe's output leaves a real sshd as one SSH data packet a segment (the lines between two sleeps).

Every packet the client receives is decrypted, checked and dispatched on its own, which is most of a
sweep's client CPU per host: a sample written as a ``cat`` of four files and a few echos left sshd as
six or more packets. The probe gathers each segment through dd into one write (see ``_GATHER`` in
:mod:`fleetrst.measure.probe`). Counted here as asyncssh's session sees them, over the test fleet's
real OpenSSH, with the same command ungathered beside it to show the count can tell them apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncssh
import pytest

from fleetrst.measure.probe import parse_probe_output, probe_command
from fleetrst.testing import TestFleet
from tests.conftest import MakeFleet


@pytest.fixture(scope="module")
def fleet(make_fleet: MakeFleet) -> Iterator[TestFleet]:
    yield make_fleet(1)


class _Counting(asyncssh.SSHClientSession[bytes]):
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype is None:  # stdout only
            self.packets.append(data)


def _packets(fleet: TestFleet, command: str) -> list[bytes]:
    async def main() -> list[bytes]:
        options = asyncssh.SSHClientConnectionOptions(
            username=fleet.user,
            client_keys=[str(fleet.client_key_path)],
            known_hosts=str(fleet.known_hosts_path),
            config=None,
        )
        async with asyncssh.connect(fleet.hosts[0].address, options=options) as conn:
            channel, session = await conn.create_session(_Counting, command, encoding=None)
            await asyncio.wait_for(channel.wait_closed(), 30)
            return session.packets

    return asyncio.run(main())


@pytest.mark.parametrize(("baseline", "segments"), [(None, 2), (0.1, 3)])
def test_each_segment_of_the_probe_is_one_packet(
    fleet: TestFleet, baseline: float | None, segments: int
) -> None:
    command = probe_command(0.1, baseline_s=baseline)
    gathered = _packets(fleet, command)
    assert len(gathered) == segments, [len(p) for p in gathered]
    assert len(parse_probe_output(b"".join(gathered).decode())) == segments

    ungathered = _packets(fleet, command.replace(" | w", ""))
    assert len(ungathered) >= 2 * segments, [len(p) for p in ungathered]
    assert len(parse_probe_output(b"".join(ungathered).decode())) == segments
