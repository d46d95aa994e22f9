"""FreeBSD's netstat and sockstat parsers (fleetrst.investigate.bsd) on published output and on output
constructed from the tools' format strings (tests/fixtures/freebsd/investigate/PROVENANCE.md says which
sample is which and where it comes from), on the forms the tools print, on the joins, and on garbage:
a clear one-line parse error, never a crash."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.investigate.bsd import (
    ANY,
    STATE_NAMES,
    parse_bsd_endpoint,
    parse_netstat_an,
    parse_netstat_listen,
    parse_sockstat,
    with_owners,
)
from fleetrst.investigate.errors import InvestigateParseError
from fleetrst.investigate.ss import STATES, Endpoint, Owner, SocketRow
from tests.helpers import damaged, examples

FIXTURES = Path(__file__).parents[1] / "fixtures" / "freebsd" / "investigate"
NETSTAT_AN = (
    "netstat-an-p-tcp-listen-freebsd-14.3.txt",
    "netstat-anW-p-tcp-freebsd-14-constructed.txt",
)
NETSTAT_L = (
    "netstat-Lan-nginx-normal.txt",
    "netstat-Lan-nginx-overflow.txt",
    "netstat-LanW-freebsd-14-constructed.txt",
)
SOCKSTAT = (
    "sockstat-Ptcp-freebsd-9.txt",
    "sockstat-46s-freebsd-2021.txt",
    "sockstat-4-l-freebsd-14.3.txt",
    "sockstat-46clnsw-P-tcp-freebsd-14-constructed.txt",
    "sockstat-46clnsw-P-tcp-freebsd-15-constructed.txt",
)


def sample(name: str) -> str:
    return (FIXTURES / name).read_text()


def tcp_section(name: str) -> str:
    """A ``netstat -an`` sample cut where its TCP table ends: what ``netstat -an -p tcp`` prints."""
    lines = sample(name).splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("udp"))
    return "\n".join(lines[:end]) + "\n"


def ep(address: str, port: int | None) -> Endpoint:
    return Endpoint(address, port)


def test_every_sample_has_its_provenance() -> None:
    provenance = sample("PROVENANCE.md")
    for path in FIXTURES.glob("*.txt"):
        assert f"`{path.name}`" in provenance, path.name


# --- netstat -an -p tcp --------------------------------------------------------------------------


def test_netstat_an_freebsd_10_1() -> None:
    rows = parse_netstat_an(tcp_section("netstat-an-freebsd-10.1.txt"))
    assert len(rows) == 23
    assert rows[0] == SocketRow("CLOSE-WAIT", 0, 0, ep("192.168.1.33", 780), ep("192.168.1.10", 2049))
    assert rows[1] == SocketRow("CLOSE", 0, 0, ep("192.168.1.33", 632), ep("192.168.1.10", 2049))
    assert rows[2] == SocketRow("LISTEN", 0, 0, ep("127.0.0.1", 6012), ANY)
    assert rows[3] == SocketRow("LISTEN", 0, 0, ep("::1", 6012), ANY)
    assert rows[4] == SocketRow("ESTAB", 0, 52, ep("192.168.1.33", 22), ep("192.168.1.10", 41487))
    assert rows[13] == rows[14] == SocketRow("LISTEN", 0, 0, ep("*", 22), ANY), "tcp4 and tcp6 *.22"
    assert all(not r.owners for r in rows), "netstat names no process"


def test_netstat_an_freebsd_9_2() -> None:
    rows = parse_netstat_an(tcp_section("netstat-an-freebsd-9.2.txt"))
    assert len(rows) == 24
    assert rows[1] == SocketRow("CLOSE", 0, 0, ep("192.168.1.21", 764), ep("192.168.1.10", 2049))
    assert rows[6] == SocketRow("ESTAB", 0, 52, ep("192.168.1.21", 22), ep("192.168.1.10", 58271))


def test_netstat_an_without_p_tcp_is_an_error_naming_the_first_udp_row() -> None:
    with pytest.raises(InvestigateParseError, match=r"netstat output line 26: not a TCP row \('udp4'\)"):
        parse_netstat_an(sample("netstat-an-freebsd-10.1.txt"))


def test_netstat_an_freebsd_14_3_listeners() -> None:
    rows = parse_netstat_an(sample("netstat-an-p-tcp-listen-freebsd-14.3.txt"))
    assert len(rows) == 19 and {r.state for r in rows} == {"LISTEN"}
    assert rows[2] == SocketRow("LISTEN", 0, 0, ep("*", 143), ANY), "tcp46 *.143"
    assert rows[5].local == ep("127.0.0.1", 3306)
    assert rows[13].local == ep("fe80::1", 53), "fe80::1%lo0.53: the zone dropped, as ss drops it"
    assert rows[17].local == ep("10.1.6.1", 53)


def test_netstat_an_constructed_has_every_state_spelled_as_ss_does() -> None:
    rows = parse_netstat_an(sample("netstat-anW-p-tcp-freebsd-14-constructed.txt"))
    assert len(rows) == 24
    assert {r.state for r in rows} == set(STATE_NAMES.values())
    assert rows[4] == SocketRow("LISTEN", 0, 0, ep("2001:db8:85a3::8a2e:370:7334", 443), ANY)
    assert rows[5].peer == ep("2001:db8:1::77", 50322)
    assert rows[9] == SocketRow("CLOSE-WAIT", 517, 0, ep("192.0.2.10", 8080), ep("203.0.113.9", 40112))
    assert rows[10] == SocketRow("SYN-SENT", 0, 0, ep("192.0.2.10", 31337), ep("198.51.100.7", 5432))
    assert rows[14] == SocketRow("FIN-WAIT-1", 0, 1448, ep("192.0.2.10", 80), ep("203.0.113.20", 61000))
    assert rows[18].state == "SYN-RECV" and rows[19].state == "CLOSE"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("ESTABLISHED", "ESTAB"),
        ("SYN_RCVD", "SYN-RECV"),
        ("SYN_SENT*", "SYN-SENT"),  # T/TCP's hidden state
        ("FIN_WAIT_2", "FIN-WAIT-2"),
        ("CLOSED", "CLOSE"),
        ("11", "UNKNOWN"),  # "%d": outside tcpstates[]
        ("-1", "UNKNOWN"),
    ],
)
def test_netstat_states(state: str, expected: str) -> None:
    (row,) = parse_netstat_an(f"tcp4       0      0 10.0.0.1.22            10.0.0.2.50000         {state}")
    assert row.state == expected


def test_state_names_are_tcpstates_spelled_as_ss_spells_them() -> None:
    tcpstates = (
        "CLOSED LISTEN SYN_SENT SYN_RCVD ESTABLISHED CLOSE_WAIT FIN_WAIT_1 CLOSING LAST_ACK FIN_WAIT_2"
    )
    assert sorted(STATE_NAMES) == sorted([*tcpstates.split(), "TIME_WAIT"])
    assert set(STATE_NAMES.values()) <= STATES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1.22", ep("10.0.0.1", 22)),
        ("*.22", ep("*", 22)),
        ("*.*", ANY),
        ("::1.22", ep("::1", 22)),
        ("fe80::1%lo0.22", ep("fe80::1", 22)),
        ("::ffff:10.0.0.1.443", ep("::ffff:10.0.0.1", 443)),
        ("2001:db8:85a3::8.443", ep("2001:db8:85a3::8", 443)),  # without -W: the host cut to 16
        ("10.0.0.1.65535", ep("10.0.0.1", 65535)),
    ],
)
def test_bsd_endpoint_forms(text: str, expected: Endpoint) -> None:
    assert parse_bsd_endpoint(text, "netstat") == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        ".",
        "22",
        "10.0.0.1",
        "10.0.0.1.",
        "10.0.0.1.65536",
        "localhost.ssh",
        "*.ssh",
        "%lo0.22",
        "1.2.\u00b2",
    ],
)
def test_bsd_endpoint_rejects_what_netstat_n_does_not_print(bad: str) -> None:
    with pytest.raises(InvestigateParseError, match="could not parse netstat output: "):
        parse_bsd_endpoint(bad, "netstat")


@pytest.mark.parametrize(
    "bad",
    [
        "udp4       0      0 *.514                  *.*",
        "tcp4       0      0 10.0.0.1.22            10.0.0.2.50000",
        "tcp4       x      0 10.0.0.1.22            10.0.0.2.50000         ESTABLISHED",
        "tcp4       0      0 localhost.ssh          10.0.0.2.50000         ESTABLISHED",
        "tcp4       0      0 10.0.0.1.22            10.0.0.2.50000         BOGUS",
        "tcp4       0      0 10.0.0.1.22            10.0.0.2.50000         ESTABLISHED  extra",
        "Active UNIX domain sockets",
    ],
)
def test_netstat_an_garbage_is_a_parse_error_naming_the_line(bad: str) -> None:
    with pytest.raises(InvestigateParseError, match=r"could not parse netstat output line 2: "):
        parse_netstat_an("Proto Recv-Q Send-Q Local Address          Foreign Address        (state)\n" + bad)


# --- netstat -Lan ---------------------------------------------------------------------------------


def test_netstat_listen_nginx_samples_queue_and_backlog() -> None:
    normal = parse_netstat_listen(sample("netstat-Lan-nginx-normal.txt"))
    assert normal == [
        SocketRow("LISTEN", 10, 128, ep("*", 80), ANY),
        SocketRow("LISTEN", 0, 128, ep("*", 22), ANY),
    ]
    overflow = parse_netstat_listen(sample("netstat-Lan-nginx-overflow.txt"))
    assert overflow[0] == SocketRow("LISTEN", 192, 128, ep("*", 80), ANY), (
        "as ss -tln: Recv-Q queue, Send-Q limit"
    )


def test_netstat_listen_constructed_skips_unix_listeners() -> None:
    rows = parse_netstat_listen(sample("netstat-LanW-freebsd-14-constructed.txt"))
    assert len(rows) == 11 and all(r.state == "LISTEN" and r.peer == ANY for r in rows)
    assert rows[6] == SocketRow("LISTEN", 193, 128, ep("192.0.2.10", 8080), ANY)
    assert rows[7] == SocketRow("LISTEN", 0, 4096, ep("*", 9100), ANY), "tcp46"
    assert rows[3].local == ep("2001:db8:85a3::8a2e:370:7334", 443)
    assert rows[8].local == ep("fe80::1", 53)


def test_netstat_listen_macos_rows_without_proto() -> None:
    text = (
        "Current listen queue sizes (qlen/incqlen/maxqlen)\n"
        "Listen         Local Address\n"
        "0/0/128        ::1.8082\n"
    )
    assert parse_netstat_listen(text) == [SocketRow("LISTEN", 0, 128, ep("::1", 8082), ANY)]


@pytest.mark.parametrize(
    "bad",
    [
        "tcp4  0/0                            *.22",
        "tcp4  0/0/128",
        "tcp4  0/0/128                        *.22 extra",
        "tcp4  a/0/128                        *.22",
        "tcp4       0      0 *.22                   *.*                    LISTEN",
    ],
)
def test_netstat_listen_garbage_is_a_parse_error(bad: str) -> None:
    with pytest.raises(InvestigateParseError, match=r"could not parse netstat output line 1: "):
        parse_netstat_listen(bad)


# --- sockstat ---------------------------------------------------------------------------------------


def test_sockstat_freebsd_9_overflowed_columns() -> None:
    found = parse_sockstat(sample("sockstat-Ptcp-freebsd-9.txt"))
    assert len(found) == 29, "31 rows, the 2 '?' rows left out"
    assert found[0] == (Owner(63210, "spc in nam"), ep("*", 9000), ANY), "COMMAND with spaces, run into PID"
    assert found[1] == (Owner(63210, "spc in nam"), ep("192.168.123.5", 9000), ep("192.168.123.21", 49866))
    assert found[5] == (Owner(62928, "really-lon"), ep("192.168.123.5", 8000), ep("192.168.123.21", 49826))
    assert found[10] == (Owner(10941, "camlistore"), ep("*", 3179), ANY), "camlistore10941 ... tcp4 6"
    assert found[2] == found[3] == (Owner(62982, "nginx"), ep("*", 80), ANY)
    assert found[17] == (Owner(2076, "python2.7"), ep("127.0.0.1", 9042), ANY)
    assert {local.port for _, local, _ in found}.isdisjoint({895, 777})


def test_sockstat_freebsd_2021_state_columns() -> None:
    assert parse_sockstat(sample("sockstat-46s-freebsd-2021.txt")) == [
        (Owner(10942, "firefox"), ep("192.168.15.2", 21084), ep("162.159.130.234", 443))
    ]


def test_sockstat_freebsd_14_3_keeps_tcp_rows_only() -> None:
    found = parse_sockstat(sample("sockstat-4-l-freebsd-14.3.txt"))
    assert len(found) == 21
    assert found[0] == (Owner(10282, "httpd"), ep("*", 80), ANY)
    assert found[11] == (Owner(2020, "couriertcp"), ep("*", 143), ANY), "tcp46"
    assert found[15] == (Owner(749, "sshd"), ep("*", 22), ANY)
    assert found[-1] == (Owner(641, "named"), ep("127.0.0.1", 953), ANY)


def test_sockstat_14_and_15_layouts_read_the_same() -> None:
    old = parse_sockstat(sample("sockstat-46clnsw-P-tcp-freebsd-14-constructed.txt"))
    new = parse_sockstat(sample("sockstat-46clnsw-P-tcp-freebsd-15-constructed.txt"))
    assert old == new and len(old) == 22
    assert old[6] == (Owner(1200, "nginx"), ep("2001:db8:85a3::8a2e:370:7334", 443), ANY)
    assert old[14] == (Owner(5120, "python3.11"), ep("192.0.2.10", 31337), ep("198.51.100.7", 5432))
    assert old[17] == (Owner(640, "local-unbo"), ep("192.0.2.10", 44022), ep("192.0.2.53", 53))
    assert old[19] == (Owner(640, "local-unbo"), ep("fe80::1", 53), ANY)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("longusername1 python3.1212345 3 tcp4 *:80 *:*", []),  # PID and digits of COMMAND: unknowable
        ("averylongusername nginx 1201 7 tcp4 10.0.0.1:2210.0.0.2:5000", []),  # :2 210.0.0.2 or :22 10.0.0.2?
        (
            "averylongusername nginx 1201 7 tcp4 192.0.2.10:80192.0.2.21:49826",
            [],
        ),  # :80 192... or :801 92...?
        (
            "averylongusername nginx 1201 7 tcp4 192.0.2.10:80 192.0.2.21:49826ESTABLISHED",
            [(Owner(1201, "nginx"), ep("192.0.2.10", 80), ep("192.0.2.21", 49826))],
        ),
        (
            "averylongusername nginx 1201 7 tcp4 192.0.2.10:8080203.0.113.9:40112CLOSE_WAIT",
            [(Owner(1201, "nginx"), ep("192.0.2.10", 8080), ep("203.0.113.9", 40112))],
        ),
        ("??    ??           ?? ?? tcp4  192.0.2.10:8080 203.0.113.9:40110 TIME_WAIT", []),
        ("root     ntpd         696 21  udp4   *:123                 *:*", []),
        ("root     sshd       45933 8  stream (not connected)", []),
        ("USER     COMMAND    PID   FD PROTO  LOCAL ADDRESS         FOREIGN ADDRESS", []),
        (
            "0 ?? 812 4 tcp4 10.0.0.1:22 10.0.0.2:5000",
            [(Owner(812, "??"), ep("10.0.0.1", 22), ep("10.0.0.2", 5000))],
        ),
    ],
)
def test_sockstat_row_forms(line: str, expected: list[tuple[Owner, Endpoint, Endpoint]]) -> None:
    assert parse_sockstat(line) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "root sshd 811",
        "root sshd 811 4 tcp4 *:22",
        "root 811 4 tcp4 *:22 *:*",
        "root sshd abc 4 tcp4 *:22 *:*",
        "root sshd 811 4 tcp4 *:99999 *:*",
        "root sshd 811 4 tcp4 1.2.3.4:5:6 *:*",
        "root averylongcommand811 4 tcp4 *:22 *:*",
    ],
)
def test_sockstat_garbage_is_a_parse_error_naming_the_line(bad: str) -> None:
    with pytest.raises(InvestigateParseError, match=r"could not parse sockstat output line 1: "):
        parse_sockstat(bad)


# --- with_owners ------------------------------------------------------------------------------------


def owners_of(rows: Sequence[SocketRow], local: Endpoint, peer: Endpoint = ANY) -> list[tuple[int, str]]:
    (row,) = [r for r in rows if r.local == local and r.peer == peer]
    return [(o.pid, o.command) for o in row.owners]


def test_join_freebsd_14_3_listeners_with_sockstat() -> None:
    rows = with_owners(
        parse_netstat_an(sample("netstat-an-p-tcp-listen-freebsd-14.3.txt")),
        parse_sockstat(sample("sockstat-4-l-freebsd-14.3.txt")),
    )
    port80 = [r for r in rows if r.local == ep("*", 80)]
    assert [o.pid for o in port80[0].owners] == [
        10282,
        10280,
        9638,
        9636,
        9635,
        9632,
        2027,
        2026,
        2024,
        2023,
        1985,
    ]
    assert owners_of(rows[:6], ep("127.0.0.1", 3306)) == [(1963, "mysqld")]
    assert owners_of(rows, ep("*", 33060)) == [(1963, "mysqld")], "tcp46 in both"
    assert owners_of(rows, ep("::1", 953)) == [], "sockstat -4 lists no IPv6 socket"
    # both tools write the IPv4 and the IPv6 any address as "*": the tcp6 *.22 row gets the tcp4 owner
    assert {o.pid for r in rows if r.local == ep("*", 22) for o in r.owners} == {749}


def test_join_constructed_host() -> None:
    sockets = parse_sockstat(sample("sockstat-46clnsw-P-tcp-freebsd-14-constructed.txt"))
    rows = with_owners(parse_netstat_an(sample("netstat-anW-p-tcp-freebsd-14-constructed.txt")), sockets)
    assert owners_of(rows, ep("2001:db8:85a3::8a2e:370:7334", 443)) == [
        (1200, "nginx"),
        (1201, "nginx"),
        (1202, "nginx"),
    ]
    assert owners_of(rows, ep("192.0.2.10", 8080), ep("203.0.113.9", 40112)) == [(4711, "java")]
    assert owners_of(rows, ep("fe80::1", 53)) == [(640, "local-unbo")]
    assert owners_of(rows, ep("*", 9100)) == [(1500, "node_expor")]
    assert all(
        not r.owners
        for r in rows
        if r.state in ("TIME-WAIT", "FIN-WAIT-2", "LAST-ACK", "CLOSING", "SYN-RECV")
    )
    assert sum(bool(r.owners) for r in rows) == 18
    listeners = with_owners(parse_netstat_listen(sample("netstat-LanW-freebsd-14-constructed.txt")), sockets)
    assert owners_of(listeners, ep("192.0.2.10", 8080)) == [(4711, "java")]
    assert all(r.owners for r in listeners)


def test_join_unifies_any_and_ipv4_mapped_addresses_and_keeps_existing_owners() -> None:
    rows = [
        SocketRow("LISTEN", 0, 0, ep("0.0.0.0", 22), ep("0.0.0.0", None)),
        SocketRow("ESTAB", 0, 0, ep("::ffff:10.0.0.1", 443), ep("::FFFF:10.0.0.2", 5000), (Owner(9, "x"),)),
        SocketRow("TIME-WAIT", 0, 0, ep("10.0.0.1", 443), ep("10.0.0.3", 5001)),
    ]
    sockets = [
        (Owner(1, "sshd"), ep("*", 22), ANY),
        (Owner(1, "sshd"), ep("::", 22), ANY),
        (Owner(2, "nginx"), ep("10.0.0.1", 443), ep("10.0.0.2", 5000)),
        (Owner(9, "x"), ep("10.0.0.1", 443), ep("10.0.0.2", 5000)),
    ]
    joined = with_owners(rows, sockets)
    assert joined[0].owners == (Owner(1, "sshd"),)
    assert joined[1].owners == (Owner(9, "x"), Owner(2, "nginx"))
    assert joined[2] == rows[2]
    assert joined[0].local == ep("0.0.0.0", 22), "the rows' own endpoints are left as written"


def test_100k_lines_parse_and_join_in_linear_time() -> None:
    n = 100_000
    addresses = [(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1024 + i % 60000) for i in range(n)]
    netstat = "".join(
        netstat_line("tcp4", 0, 0, f"{a}.80", f"192.0.2.1.{p}", "ESTABLISHED", wide=False) + "\n"
        for a, p in addresses
    )
    sockstat = "".join(
        f"80 nginx {1000 + i % 90000} {i % 900} tcp4 {a}:80 192.0.2.1:{p}\n"
        for i, (a, p) in enumerate(addresses)
    )
    started = time.perf_counter()
    rows = with_owners(parse_netstat_an(netstat), parse_sockstat(sockstat))
    assert time.perf_counter() - started < 30, "a quadratic join would take hours here"
    assert len(rows) == n and all(len(r.owners) == 1 for r in rows)


# --- the tools' formats, rendered from random rows, parse back ------------------------------------

V4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
V6 = st.integers(0, 2**128 - 1).map(lambda n: ipaddress.IPv6Address(n).compressed)
PORT = st.one_of(st.none(), st.integers(1, 65535))


def port_text(port: int | None) -> str:
    return "*" if port is None else str(port)


def netstat_line(proto: str, recv: int, send: int, local: str, foreign: str, state: str, wide: bool) -> str:
    """One ``netstat -an`` row as protopr() prints it (inetprint/inet6print, ``-W`` or not)."""

    def address(text: str) -> str:
        if ":" in text:  # inet6print: "%.*s." of the host (16 wide, 39 with -W), "%-22.22s" / "%-45.45s"
            host, _, port = text.rpartition(".")
            line = f"{host[: 39 if wide else 16]}.{port}"
            return f"{line:<45.45s} " if wide else f"{line:<22.22s} "
        return f"{text + ' ':<45s} " if wide else f"{text + ' ':<22.22s} "  # inetprint: "%d " then pad

    head = f"{proto[:3]:<3.3s}{proto[3:]:<2.2s} {recv:6d} {send:6d} "
    return head + address(local) + address(foreign) + f"{state:<11s}"


@st.composite
def netstat_rows(draw: st.DrawFn) -> tuple[str, SocketRow, bool]:
    wide = draw(st.booleans())
    family = draw(st.sampled_from(["4", "6", "46"]))
    host = V6 if family == "6" else V4
    local, peer = (draw(st.one_of(st.just("*"), host)) for _ in range(2))
    lport, pport = draw(PORT), draw(PORT)
    state = draw(st.sampled_from(sorted(STATE_NAMES)))
    recv, send = draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1))
    line = netstat_line(
        draw(st.sampled_from(["tcp", "toe"])) + family,
        recv,
        send,
        f"{local}.{port_text(lport)}",
        f"{peer}.{port_text(pport)}",
        state + draw(st.sampled_from(["", "*"])),
        wide,
    )
    cut = 39 if wide else 16  # what inet6print keeps of an IPv6 host
    row = SocketRow(
        STATE_NAMES[state],
        recv,
        send,
        Endpoint(local[:cut] if family == "6" else local, lport),
        Endpoint(peer[:cut] if family == "6" else peer, pport),
    )
    return line, row, wide


@examples(300)
@given(netstat_rows())
def test_netstat_rows_rendered_from_the_printf_formats_parse_back(case: tuple[str, SocketRow, bool]) -> None:
    line, row, _wide = case
    assert parse_netstat_an(line) == [row]


@examples(200)
@given(
    st.sampled_from(["tcp4", "tcp6", "tcp46"]),
    st.integers(0, 99999),
    st.integers(0, 99999),
    st.integers(0, 99999),
    st.one_of(st.just("*"), V4, V6),
    PORT,
    st.sampled_from([14, 32]),
)
def test_netstat_listen_rows_rendered_from_the_printf_formats_parse_back(
    proto: str, qlen: int, incqlen: int, maxqlen: int, host: str, port: int | None, width: int
) -> None:
    """``%-14.14s`` (FreeBSD 7-10) or ``%-32.32s`` (11 on) for the queues; ``-W`` for the address."""
    queues = f"{qlen}/{incqlen}/{maxqlen}"
    line = f"{proto[:3]:<3.3s}{proto[3:]:<2.2s} {queues:<{width}.{width}s} {host}.{port_text(port)}"
    if len(queues) > width:
        return  # cut by netstat itself: not a row it can print
    assert parse_netstat_listen(line) == [SocketRow("LISTEN", qlen, maxqlen, Endpoint(host, port), ANY)]


NAME = "abcdefghijklmnopqrstuvwxyz_-"
WORD = st.integers(1, 10).flatmap(lambda n: st.text(NAME + ".", min_size=n, max_size=n))
LONG_V4 = st.tuples(*[st.integers(100, 255)] * 4).map(lambda t: ".".join(map(str, t)))


def sockstat_14(
    user: str,
    command: str,
    pid: int,
    fd: int,
    proto: str,
    local: str,
    foreign: str,
    wide: bool,
    state: str | None,
) -> tuple[str, bool]:
    """One row as sockstat.c lays it out up to FreeBSD 14 (display()/displaysock(), 14.x offsets);
    and whether the two addresses came out separated."""
    line = f"{user} "
    line += " " * (9 - len(line)) + command[:10]
    line += " " * (20 - len(line)) + f"{pid:5d} "
    line += " " * (26 - len(line)) + f"{fd:<3d} "
    line += " " * (30 - len(line)) + proto + " "
    line += " " * (37 - len(line)) + local
    if proto == "tcp6" and len(line) >= 58:
        line += " "
    offset = 37 + (46 if wide else 22)
    separated = len(line) < offset or line.endswith(" ")
    line += " " * (offset - len(line)) + foreign
    if state is not None:
        line += " " * (offset + (46 if wide else 22) + 13 - len(line)) + state
    return line, separated


def sockstat_15(user: str, command: str, pid: int, fd: int, proto: str, local: str, foreign: str) -> str:
    """One row of the libxo sockstat (FreeBSD 15) with ``-w``: fields one space apart."""
    return f"{user:<4} {command[:10]:<10} {pid:>3} {fd:>2} {proto:<5} {local:<13} {foreign:<15}"


@st.composite
def sockstat_rows(draw: st.DrawFn) -> tuple[str, Owner, Endpoint, Endpoint, bool]:
    proto = draw(st.sampled_from(["tcp4", "tcp6", "tcp46"]))
    host = V6 if proto == "tcp6" else st.one_of(V4, LONG_V4)  # long ones overflow their column
    local = Endpoint(draw(st.one_of(st.just("*"), host)), draw(st.one_of(PORT, st.integers(10000, 65535))))
    foreign = Endpoint(draw(st.one_of(st.just("*"), host)), draw(PORT))
    size = draw(st.integers(1, 24))  # user names of 9 characters and more push the row past its columns
    user = draw(st.one_of(st.integers(0, 2**32 - 2).map(str), st.text(NAME, min_size=size, max_size=size)))
    command = " ".join(draw(st.lists(WORD, min_size=1, max_size=3)))
    pid, fd = draw(st.one_of(st.integers(1, 99999), st.integers(10000, 99999))), draw(st.integers(0, 9999))
    shown = (f"{a.address}:{port_text(a.port)}" for a in (local, foreign))
    local_text, foreign_text = shown
    if draw(st.booleans()):
        line = sockstat_15(user, command, pid, fd, proto, local_text, foreign_text)
        separated = True
    else:
        state = draw(st.one_of(st.none(), st.sampled_from(sorted(STATE_NAMES))))
        line, separated = sockstat_14(
            user, command, pid, fd, proto, local_text, foreign_text, draw(st.booleans()), state
        )
    owner = Owner(pid, " ".join(command[:10].split()))
    return line, owner, local, foreign, separated


@examples(300)
@given(sockstat_rows())
def test_sockstat_rows_rendered_from_the_printf_formats_parse_back(
    case: tuple[str, Owner, Endpoint, Endpoint, bool],
) -> None:
    """What is read is what was written; a row is left out only when its two IPv4 addresses ran
    together in more than one readable way."""
    line, owner, local, foreign, separated = case
    found = parse_sockstat(line)
    assert found == [(owner, local, foreign)] or (not separated and found == []), line


# --- garbage: a clean error, or rows that are all in the text ----------------------------------------


def endpoint_in(endpoint: Endpoint, text: str) -> bool:
    return endpoint.address in text and (endpoint.port is None or str(endpoint.port) in text)


def netstat_row_in(row: SocketRow, line: str) -> bool:
    fields = line.split()
    state = fields[5].rstrip("*")
    return (
        [int(fields[1]), int(fields[2])] == [row.recv_q, row.send_q]
        and endpoint_in(row.local, fields[3])
        and endpoint_in(row.peer, fields[4])
        and (STATE_NAMES.get(state) == row.state or (row.state == "UNKNOWN" and state.lstrip("-").isdigit()))
        and not row.owners
    )


def listen_row_in(row: SocketRow, line: str) -> bool:
    return (
        f"{row.recv_q}/" in line
        and f"/{row.send_q}" in line
        and endpoint_in(row.local, line)
        and row.peer == ANY
    )


def sockstat_row_in(found: tuple[Owner, Endpoint, Endpoint], line: str) -> bool:
    owner, local, foreign = found
    return (
        str(owner.pid) in line
        and all(word in line for word in owner.command.split())
        and endpoint_in(local, line)
        and endpoint_in(foreign, line)
    )


PARSERS: list[tuple[Callable[[str], Any], Callable[[Any, str], bool]]] = [
    (parse_netstat_an, netstat_row_in),
    (parse_netstat_listen, listen_row_in),
    (parse_sockstat, sockstat_row_in),
]


def check_line_by_line(parse: Callable[[str], Any], text: str, row_in: Callable[[Any, str], bool]) -> None:
    """``text`` gives a clean one-line error, or exactly the rows its lines give one at a time, each
    of them written in its own line: the parser reads no state across lines and invents nothing."""
    try:
        rows = parse(text)
    except InvestigateParseError as exc:
        assert str(exc).startswith("could not parse") and "\n" not in str(exc)
        return
    per_line = [(row, line) for line in text.splitlines() for row in parse(line)]
    assert rows == [row for row, _ in per_line]
    for row, line in per_line:
        assert row_in(row, line), (row, line)


@examples(300)
@given(st.text(max_size=300))
def test_fuzz_random_text_fails_cleanly_or_reads_only_what_is_written(text: str) -> None:
    for parse, row_in in PARSERS:
        check_line_by_line(parse, text, row_in)


@examples(200)
@given(damaged([sample(name) for name in NETSTAT_AN] + [tcp_section("netstat-an-freebsd-10.1.txt")]))
def test_fuzz_damaged_netstat_an(text: str) -> None:
    check_line_by_line(parse_netstat_an, text, netstat_row_in)


@examples(200)
@given(damaged([sample(name) for name in NETSTAT_L]))
def test_fuzz_damaged_netstat_listen(text: str) -> None:
    check_line_by_line(parse_netstat_listen, text, listen_row_in)


@examples(200)
@given(damaged([sample(name) for name in SOCKSTAT]))
def test_fuzz_damaged_sockstat(text: str) -> None:
    check_line_by_line(parse_sockstat, text, sockstat_row_in)


@examples(100)
@given(damaged([sample(name) for name in SOCKSTAT]), damaged([sample(name) for name in NETSTAT_AN]))
def test_fuzz_join_only_adds_owners_sockstat_named(sock_text: str, netstat_text: str) -> None:
    try:
        rows, sockets = parse_netstat_an(netstat_text), parse_sockstat(sock_text)
    except InvestigateParseError:
        return
    joined = with_owners(rows, sockets)
    named = {owner for owner, _, _ in sockets}
    assert [replace_owners(r) for r in joined] == [replace_owners(r) for r in rows]
    assert all(set(r.owners) <= named for r in joined)


def replace_owners(row: SocketRow) -> SocketRow:
    return SocketRow(row.state, row.recv_q, row.send_q, row.local, row.peer)
