"""The ss, lsof and tcpdump parsers on real captured output (fixtures/CAPTURED.md says how each file
was made), on the older formats where they differ, and on garbage: a clear parse error, never a crash."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.investigate.errors import InvestigateParseError
from fleetrst.investigate.lsof import LSOF_STATES, LsofRow, parse_lsof
from fleetrst.investigate.ss import Endpoint, Owner, SocketRow, parse_endpoint, parse_ss
from fleetrst.investigate.tcpdump import Capture, parse_tcpdump, summarise_rsts
from tests.helpers import examples

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_ss_tan_of_a_flooded_listener_counts_every_state() -> None:
    rows = parse_ss(fixture("ss-tan-flood.txt"))
    states = {r.state for r in rows}
    assert {"LISTEN", "SYN-SENT"} <= states
    listener = next(r for r in rows if r.state == "LISTEN" and r.local.port == 9401)
    assert listener.local == Endpoint("127.0.0.1", 9401)
    assert listener.recv_q >= listener.send_q == 1, "Recv-Q of a listener is its queue, Send-Q the backlog"
    assert sum(r.state == "SYN-SENT" and r.peer.port == 9401 for r in rows) > 50
    assert all(not r.owners for r in rows), "ss -tan names no process"


def test_ss_tanp_names_the_owners() -> None:
    rows = parse_ss(fixture("ss-tanp-flood.txt"))
    listener = next(r for r in rows if r.state == "LISTEN" and r.local.port == 9401)
    assert [o.command for o in listener.owners] == ["stuck-listener"]
    sshd = next(r for r in rows if r.state == "LISTEN" and r.local.port == 22)
    assert sshd.owners[0].command == "sshd" and sshd.owners[0].pid > 1
    abort = parse_ss(fixture("ss-tanp-abort.txt"))
    assert any(o.command == "aborting-server" for r in abort for o in r.owners)


def test_ss_tln_lists_listeners_only() -> None:
    rows = parse_ss(fixture("ss-tln-flood.txt"))
    assert rows and all(r.state == "LISTEN" for r in rows)
    assert {r.local.port for r in rows} >= {22, 9401}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # iproute2 4.x and older: no Process column, IPv6 unbracketed
        (
            "State      Recv-Q Send-Q        Local Address:Port          Peer Address:Port\n"
            "LISTEN     0      128                      :::22                      :::*\n"
            "ESTAB      0      0      ::ffff:10.0.0.5:5432   ::ffff:10.0.0.9:41000\n",
            [
                ("LISTEN", Endpoint("::", 22), Endpoint("::", None)),
                ("ESTAB", Endpoint("::ffff:10.0.0.5", 5432), Endpoint("::ffff:10.0.0.9", 41000)),
            ],
        ),
        # newer: brackets, interface suffix, wildcard address
        (
            "State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n"
            "LISTEN 0      4096   127.0.0.53%lo:53        0.0.0.0:*\n"
            "LISTEN 0      128             [::1]:631         [::]:*\n"
            "LISTEN 0      511                 *:80             *:*\n",
            [
                ("LISTEN", Endpoint("127.0.0.53", 53), Endpoint("0.0.0.0", None)),
                ("LISTEN", Endpoint("::1", 631), Endpoint("::", None)),
                ("LISTEN", Endpoint("*", 80), Endpoint("*", None)),
            ],
        ),
    ],
)
def test_ss_older_and_newer_address_formats(
    text: str, expected: list[tuple[str, Endpoint, Endpoint]]
) -> None:
    assert [(r.state, r.local, r.peer) for r in parse_ss(text)] == expected


def test_ss_process_names_with_spaces_quotes_and_several_owners() -> None:
    line = (
        'ESTAB 0 0 10.0.0.1:22 10.0.0.2:5000 users:(("my \\"srv\\"",pid=10,fd=3),'
        '("sshd",pid=11,fd=4),("sshd",pid=11,fd=5))'
    )
    (row,) = parse_ss(line)
    assert row.owners == (Owner(10, 'my "srv"'), Owner(11, "sshd"))


@pytest.mark.parametrize(
    "bad",
    [
        "ESTAB 0 0 10.0.0.1:22",
        "BOGUS 0 0 1.2.3.4:1 5.6.7.8:2",
        "ESTAB x 0 1.2.3.4:1 5.6.7.8:2",
        "ESTAB 0 0 1.2.3.4:99999 5.6.7.8:2",
        "ESTAB 0 0 nocolon 5.6.7.8:2",
    ],
)
def test_ss_garbage_is_a_parse_error_naming_the_line(bad: str) -> None:
    with pytest.raises(InvestigateParseError, match=r"could not parse ss output line 1"):
        parse_ss(bad)


def test_lsof_default_and_wide_command_names() -> None:
    rows = parse_lsof(fixture("lsof-flood.txt"))
    listener = next(r for r in rows if r.state == "LISTEN" and r.local.port == 9401)
    assert listener.command == "stuck-lis", "lsof cuts COMMAND to 9 characters by default"
    assert listener.user == "fleetrst-test"
    connecting = [r for r in rows if r.state == "SYN-SENT"]
    assert connecting and all(r.peer == Endpoint("127.0.0.1", 9401) for r in connecting)
    wide = parse_lsof(fixture("lsof-c15-abort.txt"))
    assert any(r.command == "aborting-server" and r.local.port == 9400 for r in wide)


def test_lsof_udp_ipv6_and_escaped_names() -> None:
    text = (
        "COMMAND     PID USER   FD   TYPE DEVICE SIZE/OFF NODE NAME\n"
        "my\\x20app  812 root    6u  IPv4  18810      0t0  UDP *:68\n"
        "nginx     900 www     7u  IPv6  18811      0t0  TCP [::1]:8080->[::1]:51000 (CLOSE_WAIT)\n"
    )
    udp, tcp = parse_lsof(text)
    assert udp.command == "my app" and udp.protocol == "UDP" and udp.state is None
    assert tcp.state == "CLOSE-WAIT" and tcp.peer == Endpoint("::1", 51000)


def test_lsof_garbage_is_a_parse_error() -> None:
    with pytest.raises(InvestigateParseError, match="lsof"):
        parse_lsof("sshd notapid root 3u IPv4 1 0t0 TCP 1.2.3.4:22 (LISTEN)")


def test_tcpdump_storm_capture_by_port() -> None:
    capture = parse_tcpdump(fixture("tcpdump-storm.txt"))
    assert len(capture.segments) > 50 and all(s.is_rst for s in capture.segments)
    assert {s.interface for s in capture.segments} == {"lo"}
    flows = summarise_rsts(capture.segments)
    top = flows[0]
    assert top.direction == "loopback" and top.peer_port is None and top.spread > 10
    assert top.count == len(capture.segments), "one closed port, many client ports: one row"
    stats = parse_tcpdump(fixture("tcpdump-storm.stderr"))
    assert stats.counts["captured"] == len(capture.segments)


def test_tcpdump_abort_capture_points_at_the_server_port() -> None:
    flows = summarise_rsts(parse_tcpdump(fixture("tcpdump-abort.txt")).segments)
    assert flows[0].local_port == 9400


def test_tcpdump_old_format_and_directions() -> None:
    text = (
        "12:00:00.000001 IP 10.0.0.7.5432 > 10.0.0.2.41000: Flags [R.], seq 0, ack 1, win 0, length 0\n"
        "12:00:00.000002 IP 10.0.0.7.5432 > 10.0.0.2.41002: Flags [R.], seq 0, ack 1, win 0, length 0\n"
        "12:00:00.000003 eth0  Out IP6 fe80::1.443 > fe80::2.50000: Flags [R], seq 1, win 0, length 0\n"
    )
    capture = parse_tcpdump(text)
    flows = summarise_rsts(capture.segments, frozenset({"10.0.0.2"}))
    by_dir = {f.direction: f for f in flows}
    assert by_dir["received"].peer == "10.0.0.7:5432" and by_dir["received"].local_port is None
    assert by_dir["sent"].local_port == 443 and by_dir["sent"].peer == "[fe80::2]:50000"


def test_tcpdump_garbage_is_a_parse_error() -> None:
    with pytest.raises(InvestigateParseError, match="tcpdump output line 2"):
        parse_tcpdump("listening on any\nthis is not a packet\n")


# --- properties: a clean error or rows that are all in the text ------------------------------------


def endpoint_in(endpoint: Endpoint, line: str) -> bool:
    return endpoint.address in line and (endpoint.port is None or str(endpoint.port) in line)


def ss_row_in(row: SocketRow, line: str) -> bool:
    fields = line.split()
    return (
        fields[0] == row.state
        and [int(fields[1]), int(fields[2])] == [row.recv_q, row.send_q]
        and endpoint_in(row.local, fields[3])
        and endpoint_in(row.peer, fields[4])
        and all(f"pid={o.pid}," in line and o.command in line.replace('\\"', '"') for o in row.owners)
    )


def lsof_row_in(row: LsofRow, line: str) -> bool:
    spelled = {row.state} | {k for k, v in LSOF_STATES.items() if v == row.state}
    return (
        line.split()[0].replace("\\x20", " ") == row.command
        and line.split()[1] == str(row.pid)
        and row.user in line.split()
        and row.protocol in line.split()
        and endpoint_in(row.local, line)
        and (row.peer is None or endpoint_in(row.peer, line))
        and (row.state is None or any(f"({s})" in line for s in spelled))
    )


def tcpdump_in(capture: Capture, lines: Sequence[str]) -> bool:
    packets = [line for line in lines if " Flags [" in line]
    return (
        len(packets) >= len(capture.segments)
        and all(
            endpoint_in(seg.src, line) and endpoint_in(seg.dst, line) and f"[{seg.flags}]" in line
            for seg, line in zip(capture.segments, packets, strict=False)
        )
        and all(any(str(n) in line for line in lines) for n in capture.counts.values())
    )


def check_line_by_line(parse: Callable[[str], Any], text: str, row_in: Callable[[Any, str], bool]) -> None:
    """``text`` gives a clean one-line error, or exactly the rows its lines give one at a time, each of
    them written in its own line: the parser reads no state across lines and invents nothing."""
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
@given(st.text(max_size=400))
def test_fuzz_every_parser_fails_cleanly_or_reads_only_what_is_written(text: str) -> None:
    check_line_by_line(parse_ss, text, ss_row_in)
    check_line_by_line(parse_lsof, text, lsof_row_in)
    try:
        capture = parse_tcpdump(text)
    except InvestigateParseError as exc:
        assert str(exc).startswith("could not parse") and "\n" not in str(exc)
    else:
        assert tcpdump_in(capture, text.splitlines())


def spliced(name: str) -> Any:
    """Real output of one tool, its lines shuffled, repeated or dropped, then cut and spliced with junk."""
    real = fixture(name).splitlines()[:60]
    return st.tuples(
        st.lists(st.sampled_from(real), max_size=20), st.integers(0, 2000), st.text(max_size=8)
    ).map(lambda t: (lambda text: text[: t[1]] + t[2] + text[t[1] :])("\n".join(t[0])))


@examples(200)
@given(spliced("ss-tanp-flood.txt"))
def test_fuzz_cut_and_spliced_real_ss_output_reads_only_what_is_written(text: str) -> None:
    check_line_by_line(parse_ss, text, ss_row_in)


@examples(200)
@given(spliced("lsof-flood.txt"))
def test_fuzz_cut_and_spliced_real_lsof_output_reads_only_what_is_written(text: str) -> None:
    check_line_by_line(parse_lsof, text, lsof_row_in)


@examples(200)
@given(spliced("tcpdump-storm.txt"))
def test_fuzz_cut_and_spliced_real_tcpdump_output_reads_only_what_is_written(text: str) -> None:
    try:
        capture = parse_tcpdump(text)
    except InvestigateParseError as exc:
        assert "\n" not in str(exc)
    else:
        assert tcpdump_in(capture, text.splitlines())


@pytest.mark.parametrize(
    ("parse", "line"),
    [
        (parse_ss, "ESTAB \u00b2 0 10.0.0.1:22 10.0.0.2:40000"),
        (parse_ss, "ESTAB 0 0 10.0.0.1:\u00b2 10.0.0.2:40000"),
        (parse_lsof, "sshd \u00b2 root 4u IPv4 1 0t0 TCP 10.0.0.1:22 (LISTEN)"),
    ],
)
def test_a_digit_that_int_refuses_is_a_parse_error(parse: Callable[[str], Any], line: str) -> None:
    with pytest.raises(InvestigateParseError):
        parse(line)


def test_endpoint_rejects_what_is_not_an_endpoint() -> None:
    for bad in ("", ":", "1.2.3.4:", "1.2.3.4:-1", "[]:80"):
        with pytest.raises(InvestigateParseError):
            parse_endpoint(bad)
