"""The transports' user-facing messages, each spelled once by its error class (``transport/base.py``).

Pinned literally: the README's fault table quotes them, users grep for them, and the asyncssh,
paramiko, local and test transports all raise these constructors rather than format their own.
"""

from __future__ import annotations

import errno
import socket

import pytest

from fleetrst.transport.base import (
    AuthError,
    CommandTimeout,
    ConnectionLost,
    HostKeyError,
    OutputTooLarge,
    TransportError,
    Unreachable,
)
from fleetrst.transport.common import classify_os_error

ADDRESS = "10.231.0.4"

CASES: list[tuple[TransportError, str, str, bool, bool]] = [
    # error, message, kind, unreachable (else status "error"), retriable
    (Unreachable.refused(ADDRESS, 22), "connection refused by 10.231.0.4:22", "refused", True, False),
    (
        Unreachable.connect_timeout("10.231.0.5", 22, 3.0),
        "connect timed out after 3s: no answer from 10.231.0.5:22",
        "timeout",
        True,
        False,
    ),
    (
        Unreachable.connect_timeout("10.231.0.5", 2222, 2.54),
        "connect timed out after 2.5s: no answer from 10.231.0.5:2222",
        "timeout",
        True,
        False,
    ),
    (Unreachable.timed_out(ADDRESS, 22), "connection to 10.231.0.4:22 timed out", "timeout", True, False),
    (Unreachable.no_route(ADDRESS, 22), "no route to 10.231.0.4:22", "no_route", True, False),
    (
        Unreachable.unresolved("web-9.example", "Name or service not known"),
        "could not resolve host name 'web-9.example': Name or service not known",
        "dns",
        True,
        False,
    ),
    (Unreachable.reset(ADDRESS, 22), "connection to 10.231.0.4:22 was reset", "refused", True, True),
    (
        Unreachable.cannot_connect(ADDRESS, 22, "Permission denied"),
        "cannot connect to 10.231.0.4:22: Permission denied",
        "refused",
        True,
        False,
    ),
    (
        Unreachable.closed_in_handshake("Connection lost"),
        "connection closed during the handshake: Connection lost",
        "refused",
        True,
        True,
    ),
    (
        CommandTimeout.login_timeout(3.0),
        "SSH login timed out after 3s: connected, but the handshake or authentication did not finish",
        "timeout",
        False,
        False,
    ),
    (
        HostKeyError.mismatch("10.231.0.6"),
        "host key mismatch: 10.231.0.6 presented a key other than the one in known_hosts",
        "host_key",
        False,
        False,
    ),
    (
        HostKeyError.unknown("10.231.0.6"),
        "host key unknown: 10.231.0.6 is not in known_hosts "
        "(StrictHostKeyChecking=yes; use accept-new to trust it on first use)",
        "host_key",
        False,
        False,
    ),
    (
        HostKeyError.not_verified("10.231.0.6"),
        "host key not verified: 10.231.0.6 is unknown or its key changed "
        "(checked against known_hosts and any UserKnownHostsFile in ~/.ssh/config)",
        "host_key",
        False,
        False,
    ),
    (
        AuthError.failed("fleetrst-test"),
        "authentication failed for user fleetrst-test",
        "auth",
        False,
        False,
    ),
    (
        AuthError.unreadable_key("/home/u/.ssh/id_ed25519", "[Errno 13] Permission denied"),
        "cannot load private key /home/u/.ssh/id_ed25519: [Errno 13] Permission denied",
        "auth",
        False,
        False,
    ),
    (CommandTimeout.after(5.0), "timed out after 5s waiting for the command", "timeout", False, False),
    (CommandTimeout.after(0.25), "timed out after 0.2s waiting for the command", "timeout", False, False),
    (
        ConnectionLost.during_command("Connection lost"),
        "the connection was lost while the command ran: Connection lost",
        "lost",
        False,
        False,
    ),
    (
        ConnectionLost.no_exit_status(),
        "the connection was lost while the command ran (no exit status)",
        "lost",
        False,
        False,
    ),
    (OutputTooLarge.over(1 << 20), "output over 1 MiB", "output_cap", False, False),
    (OutputTooLarge.over(64 * 1024), "output over 64 KiB", "output_cap", False, False),
    (OutputTooLarge.over(1000), "output over 1000 bytes", "output_cap", False, False),
]


@pytest.mark.parametrize(("error", "message", "kind", "unreachable", "retriable"), CASES)
def test_each_error_carries_its_own_message_kind_and_status(
    error: TransportError, message: str, kind: str, unreachable: bool, retriable: bool
) -> None:
    assert error.message == message
    assert str(error) == message
    assert (error.kind, error.unreachable, error.retriable) == (kind, unreachable, retriable)


def test_the_constructors_give_the_class_they_are_called_on() -> None:
    assert type(Unreachable.refused(ADDRESS, 22)) is Unreachable
    assert type(HostKeyError.mismatch(ADDRESS)) is HostKeyError
    assert type(AuthError.failed("u")) is AuthError
    assert type(CommandTimeout.login_timeout(3)) is CommandTimeout
    assert type(ConnectionLost.no_exit_status()) is ConnectionLost
    assert type(OutputTooLarge.over(1)) is OutputTooLarge


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
            "connection refused by 10.231.0.4:22",
        ),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "no route to 10.231.0.4:22"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "no route to 10.231.0.4:22"),
        (OSError(errno.ETIMEDOUT, "Connection timed out"), "connection to 10.231.0.4:22 timed out"),
        (OSError(errno.ECONNRESET, "Connection reset by peer"), "connection to 10.231.0.4:22 was reset"),
        (OSError(errno.EACCES, "Permission denied"), "cannot connect to 10.231.0.4:22: Permission denied"),
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "could not resolve host name '10.231.0.4': Name or service not known",
        ),
    ],
)
def test_socket_errors_become_the_same_messages(error: OSError, message: str) -> None:
    assert classify_os_error(error, ADDRESS, 22).message == message
