"""FreeBSD's TCP statistics parsed from real published samples (tests/fixtures/freebsd/PROVENANCE.md).

The parser's table is checked against the FreeBSD source lines it was copied from
(tests/fixtures/freebsd/inet_c_tcp_stats.txt). The text and libxo JSON renderers below interpret those
same ``xo_emit`` formats the way libxo does (text: notes and values in place, ``plural()`` after each
value; JSON: values only, in their containers), so the parser is checked against netstat's own formats
rather than against itself. Samples marked "constructed" were made by these renderers (no libxo JSON
output of ``netstat -s -p tcp`` is published); everything else is text as published.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.measure.counters import ProbeParseError
from fleetrst.measure.freebsd import (
    IN_ERRS_PARTS,
    JSON_FIELDS,
    LINUX_NAMES,
    MAPPING_NOTES,
    NETSTAT_JSON,
    NETSTAT_TEXT,
    SAMPLE_COMMAND,
    STATES_TITLE,
    TCP_STATS,
    Emit,
    freebsd_snapshot,
    locate_tcp_stats_text,
    looks_like_freebsd,
    parse_boottime,
    parse_freebsd_sample,
    parse_now,
    parse_tcp_stats_json,
    parse_tcp_stats_text,
)
from fleetrst.testing.freebsd import SAMPLES_DIR, advance_json, advance_text, load
from tests.helpers import damaged, examples

FIXTURES = Path(__file__).parents[1] / "fixtures" / "freebsd"
U64 = 2**64 - 1

# Real published text, as stored (PROVENANCE.md). The two excerpts start mid-block: the tests give
# them the "tcp:" header line netstat prints first (the one change made to them, marked "derived").
SAMPLE_68 = "netstat-s.freebsd-13-stable.drm-kmod-68.txt"
SAMPLE_154 = "netstat-s.freebsd-14-current.drm-kmod-154.excerpt.txt"
SAMPLE_1995 = "netstat-p-tcp.freebsd-1995.freebsd-questions.excerpt.txt"
SAMPLE_JUNOS = "netstat-s.junos-2009.internet2-seat.txt"
BOOTTIME_SAMPLE = "sysctl-kern.boottime.ohai.txt"
CONSTRUCTED_TEXT = "constructed.netstat-s-p-tcp.main-2d614aa2.txt"
CONSTRUCTED_JSON = "constructed.netstat-libxo-json-s-p-tcp.main-2d614aa2.json"

HEADERLESS = {SAMPLE_154, SAMPLE_1995}


def sample_text(name: str) -> str:
    text = load(name)
    return "tcp:\n" + text if name in HEADERLESS else text  # derived: the header line added


TEXT_SAMPLES = [SAMPLE_68, SAMPLE_154, SAMPLE_1995, SAMPLE_JUNOS, CONSTRUCTED_TEXT]


# --- libxo, as far as tcp_stats() uses it ------------------------------------------------------------

TCP_STATES = (  # sys/netinet/tcp_fsm.h, tcpstates[]
    "CLOSED",
    "LISTEN",
    "SYN_SENT",
    "SYN_RCVD",
    "ESTABLISHED",
    "CLOSE_WAIT",
    "FIN_WAIT_1",
    "CLOSING",
    "LAST_ACK",
    "FIN_WAIT_2",
    "TIME_WAIT",
)
MAIN = [emit for emit in TCP_STATS if emit.source == "main"]
MAIN_FIELDS = [name for emit in MAIN for name in emit.fields]


def plural(n: int) -> str:
    return "" if n == 1 else "s"


def pluralies(n: int) -> str:
    return "y" if n == 1 else "ies"


def _args(emit: Emit, values: list[int]) -> list[object]:
    """The arguments the p/p1a/p2/p2a/p3 macros pass to xo_emit (usr.bin/netstat/inet.c)."""
    if emit.macro == "p":
        return [values[0], plural(values[0])]
    if emit.macro == "p1a":
        return [values[0]]
    if emit.macro == "p2":
        return [values[0], plural(values[0]), values[1], plural(values[1])]
    if emit.macro == "p2a":
        return [values[0], plural(values[0]), values[1]]
    assert emit.macro == "p3"
    return [values[0], pluralies(values[0])]


def _printed(emit: Emit, values: list[int], sflag: int) -> bool:
    return any(values) or sflag <= 1


def xo_text(fmt: str, args: list[object]) -> str:
    """libxo's text style for the fields tcp_stats() uses: values and notes in place, in order."""
    queue = list(args)
    out = []
    at = 0
    for match in re.finditer(r"\{([^{}]*)\}", fmt):
        out.append(fmt[at : match.start()])
        mods, _, rest = match.group(1).partition(":")
        if mods == "":  # {:key/%ju}
            out.append(str(queue.pop(0)))
        elif rest.startswith("/"):  # {N:/format} or {N:/format/}
            form = rest.split("/")[1]
            out.append(form.replace("%s", "{}").format(*[queue.pop(0) for _ in range(form.count("%s"))]))
        else:  # {N:words}
            out.append(rest)
        at = match.end()
    out.append(fmt[at:])
    assert not queue, (fmt, args)
    return "".join(out)


def render_text(
    counters: Mapping[str, int], states: Mapping[str, int] | None = None, *, sflag: int = 1
) -> str:
    """``netstat -s -p tcp`` (``sflag=2``: ``-ss``) for these counters, main's lines only."""
    out = ["tcp:\n"]
    for emit in MAIN:
        if not all(name in counters for name in emit.fields):
            continue
        values = [counters[name] for name in emit.fields]
        if _printed(emit, values, sflag):
            out.append(xo_text(emit.fmt, _args(emit, values)))
    if states is not None:
        out.append(f"{STATES_TITLE}:\n")
        for state in TCP_STATES:
            n = states[state]
            if sflag > 1 and n == 0:
                continue
            out.append(f"\t{n} {'connection ' if n == 1 else 'connections'} in {state} state\n")
    return "".join(out)


def render_json(
    counters: Mapping[str, int], states: Mapping[str, int] | None = None, *, sflag: int = 1
) -> str:
    """``netstat --libxo json -s -p tcp``: libxo's JSON style (libxo.c: a leaf is ``"key":value``
    after a ``,``; a container is ``"name": {`` after a ``, ``; no spaces otherwise)."""
    groups: dict[str | None, list[str]] = {}
    order: list[str | None] = []
    for emit in MAIN:
        if emit.container not in groups:
            groups[emit.container] = []
            order.append(emit.container)
        if not all(name in counters for name in emit.fields):
            continue
        values = [counters[name] for name in emit.fields]
        if _printed(emit, values, sflag):
            groups[emit.container].extend(f'"{k}":{v}' for k, v in zip(emit.keys, values, strict=True))
    tcp = ",".join(groups[None])
    sep = ", " if tcp else ""
    for container in order[1:]:
        tcp += f'{sep}"{container}": {{' + ",".join(groups[container]) + "}"
        sep = ", "
    if states is not None:
        members = [f'"{s}":{states[s]}' for s in TCP_STATES if not (sflag > 1 and states[s] == 0)]
        tcp += f'{sep}"{STATES_TITLE}": {{' + ",".join(members) + "}"
    return '{"statistics": {"tcp": {' + tcp + "}}}\n"


# The constructed samples' counters: a different value for every field, so a field read in place of
# another shows; states as on a small server.
CONSTRUCTED_COUNTERS = {name: 1000 + 17 * i for i, name in enumerate(MAIN_FIELDS)}
CONSTRUCTED_STATES = dict(zip(TCP_STATES, (0, 12, 1, 0, 37, 2, 0, 0, 1, 3, 118), strict=True))


# --- the table is FreeBSD's source ---------------------------------------------------------------------

_MACRO = re.compile(r"\b(p|p1a|p2|p2a|p3)\((\w+),\s*(?:(\w+),\s*)?((?:\"(?:[^\"\\]|\\.)*\"\s*)+)\);")
_CONTAINER = re.compile(r'xo_(open|close)_container\("([^"]*)"\)')


def _c_string(literals: str) -> str:
    joined = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', literals))
    return joined.replace("\\t", "\t").replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def derive(section: str) -> list[tuple[str | None, str, tuple[str, ...], str]]:
    """(container, macro, fields, format) of each p*() call in one section of the source excerpt."""
    text = (FIXTURES / "inet_c_tcp_stats.txt").read_text()
    parts = re.split(r"^@@ (\w+) .*$", text, flags=re.M)
    body = "".join(parts[i + 1] for i in range(1, len(parts), 2) if parts[i] == section)
    events = sorted(
        [(m.start(), "c", m) for m in _CONTAINER.finditer(body)]
        + [(m.start(), "p", m) for m in _MACRO.finditer(body)],
        key=lambda event: event[0],
    )
    stack: list[str] = []
    out: list[tuple[str | None, str, tuple[str, ...], str]] = []
    for _, kind, m in events:
        if kind == "c":
            if m.group(1) == "open":
                stack.append(m.group(2))
            else:
                assert stack.pop() == m.group(2)
            continue
        fields = (m.group(2),) if m.group(3) is None else (m.group(2), m.group(3))
        container = stack[-1] if stack and stack[-1] != "tcp" else None
        out.append((container, m.group(1), fields, _c_string(m.group(4))))
    return out


def test_the_table_is_tcp_stats_of_freebsd_main_in_order() -> None:
    derived = derive("main")
    assert len(derived) == len(MAIN) > 100
    assert [(e.container, e.macro, e.fields, e.fmt) for e in MAIN] == derived


def test_legacy_lines_are_from_the_older_inet_c() -> None:
    older = set(derive("legacy"))
    legacy = {(e.container, e.macro, e.fields, e.fmt) for e in TCP_STATS if e.source == "legacy"}
    assert legacy and legacy <= older
    everything = {(e.container, e.macro, e.fields, e.fmt) for e in TCP_STATS}
    assert older <= everything  # the older lines main still prints are the same lines


def test_json_keys_are_the_libxo_field_names_of_the_source() -> None:
    pairs = {}
    for section in ("main", "legacy"):
        for container, _, fields, fmt in derive(section):
            keys = re.findall(r"\{:([^/}]+)/%ju\}", fmt)
            assert len(keys) == len(fields)
            pairs.update({(container, k): f for k, f in zip(keys, fields, strict=True)})
    assert pairs == JSON_FIELDS
    assert JSON_FIELDS[(None, "embryonic-connections-dropped")] == "tcps_conndrops"
    assert JSON_FIELDS[("syncache", "receivd-cookies")] == "tcps_sc_recvcookie"  # libxo's key, typo and all


def test_every_field_is_printed_once() -> None:
    names = [name for emit in TCP_STATS for name in emit.fields]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"tcps_\w+", name) for name in names)


# --- real samples ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TEXT_SAMPLES)
def test_every_text_sample_parses(name: str) -> None:
    counters = parse_tcp_stats_text(sample_text(name))
    assert counters
    assert all(0 <= v <= U64 for v in counters.values())


def test_the_13_stable_sample_read_as_printed() -> None:
    counters = parse_tcp_stats_text(sample_text(SAMPLE_68))
    # "\t4 connections closed (including 0 drops)", "\t\t0 discarded due to full reassembly queue"
    assert counters["tcps_closed"] == 4
    assert counters["tcps_drops"] == 0
    assert counters["tcps_rcvreassfull"] == 0
    assert counters["tcps_sndwinup"] == 0 and counters["tcps_rcvwinupd"] == 0  # same words, both found
    assert len(counters) == 50  # 40 lines after the header, 10 of them with two numbers: none skipped
    assert "tcps_conndrops" not in counters  # the published copy stops before that line: absent, not 0


def test_the_14_current_excerpt_read_as_printed() -> None:  # derived: the "tcp:" header added
    counters = parse_tcp_stats_text(sample_text(SAMPLE_154))
    assert counters["tcps_conndrops"] == 0  # "\t0 embryonic connections dropped"
    assert counters["tcps_dsack_count"] == 0  # a 14-era line
    assert counters["tcps_rcvwinupd"] == 0  # under "packets received", though the excerpt starts below it
    assert "tcps_sndwinup" not in counters
    assert counters["tcps_sc_dupsyn"] == 0
    assert len(counters) == 42  # 39 lines, 3 of them with two numbers: none skipped


def test_the_1995_excerpt_read_as_printed() -> None:  # derived: the "tcp:" header added
    counters = parse_tcp_stats_text(sample_text(SAMPLE_1995))
    assert counters == {
        "tcps_closed": 181,
        "tcps_drops": 19,
        "tcps_cachedrtt": 27,
        "tcps_cachedrttvar": 27,
        "tcps_cachedssthresh": 5,
    }


def test_the_junos_sample_read_as_printed() -> None:
    counters = parse_tcp_stats_text(sample_text(SAMPLE_JUNOS))
    assert counters["tcps_conndrops"] == 678657  # "\t678657 embryonic connections dropped"
    assert counters["tcps_sndtotal"] == 2297743863
    assert (counters["tcps_sndpack"], counters["tcps_sndbyte"]) == (1894335235, 4174750982)
    assert (counters["tcps_closed"], counters["tcps_drops"]) == (2662197, 5962)
    assert counters["tcps_sndwinup"] == 1042171 and counters["tcps_rcvwinupd"] == 712953
    # JUNOS words it "(N packets delayed)", FreeBSD "(N delayed)": skipped, not misread
    assert "tcps_sndacks" not in counters and "tcps_delack" not in counters


def test_the_boottime_sample() -> None:
    line = load(BOOTTIME_SAMPLE)
    assert parse_boottime(line) == (1232765114, 823118)
    bare = line.removeprefix("kern.boottime: ")  # what `sysctl -n kern.boottime` prints
    assert parse_boottime(bare) == (1232765114, 823118)
    assert looks_like_freebsd(["1232800000.5", bare.rstrip("\n"), "tcp:"])


# --- the constructed complete samples --------------------------------------------------------------


def test_constructed_samples_are_the_renderers_output() -> None:
    assert load(CONSTRUCTED_TEXT) == render_text(CONSTRUCTED_COUNTERS, CONSTRUCTED_STATES)
    assert load(CONSTRUCTED_JSON) == render_json(CONSTRUCTED_COUNTERS, CONSTRUCTED_STATES)


def test_constructed_samples_read_back() -> None:
    assert parse_tcp_stats_text(load(CONSTRUCTED_TEXT)) == CONSTRUCTED_COUNTERS
    assert parse_tcp_stats_json(load(CONSTRUCTED_JSON)) == CONSTRUCTED_COUNTERS


def test_samples_dir_is_the_fixtures() -> None:
    assert SAMPLES_DIR.resolve() == FIXTURES.resolve()
    assert (SAMPLES_DIR / "PROVENANCE.md").is_file()


# --- text and JSON agree --------------------------------------------------------------------------------

counter_values = st.one_of(st.integers(0, 3), st.integers(0, U64), st.sampled_from([1, U64]))


@st.composite
def counter_sets(draw: st.DrawFn) -> dict[str, int]:
    return {name: draw(counter_values) for name in MAIN_FIELDS}


state_sets = st.fixed_dictionaries({s: st.integers(0, 3) for s in TCP_STATES})


@examples(60)
@given(counter_sets(), state_sets, st.sampled_from([1, 2]))
def test_text_and_json_of_the_same_counters_agree(counters: dict[str, int], states: dict, sflag: int) -> None:
    text = parse_tcp_stats_text(render_text(counters, states, sflag=sflag))
    js = parse_tcp_stats_json(render_json(counters, states, sflag=sflag))
    assert text == js
    if sflag == 1:
        assert text == counters  # every line printed, zeros included
    else:  # -ss: a line only when one of its values is not 0; absent fields are not invented as 0
        printed = {n for e in MAIN if any(counters[f] for f in e.fields) for n in e.fields}
        assert set(text) == printed
        assert all(text[n] == counters[n] for n in printed)


@examples(30)
@given(counter_sets())
def test_text_with_blanks_changed_still_parses(counters: dict[str, int]) -> None:
    text = render_text(counters)
    # a published copy: tabs turned into spaces, a carriage return at each line's end
    copy = text.replace("\t", "    ").replace("\n", "\r\n")
    assert parse_tcp_stats_text(copy) == counters


def test_the_state_lines_with_one_connection() -> None:
    states = dict.fromkeys(TCP_STATES, 1)  # "{Np:/connection ,connections}": "1 connection  in ..."
    text = render_text(CONSTRUCTED_COUNTERS, states)
    assert "\t1 connection  in ESTABLISHED state\n" in text
    assert parse_tcp_stats_text(text) == CONSTRUCTED_COUNTERS


def test_a_newer_counter_line_is_skipped() -> None:
    text = load(CONSTRUCTED_TEXT).replace("\t\t", "\t\t5 ACKs received for data not yet sent\n\t\t", 1)
    assert parse_tcp_stats_text(text) == CONSTRUCTED_COUNTERS


def test_a_newer_json_member_or_container_is_skipped() -> None:
    raw = load(CONSTRUCTED_JSON).replace(
        '"tcp": {',
        '"tcp": {"received-acks-for-data-never-been-sent":2, "syncookies": {"sent-cookies":1}, ',
        1,
    )
    assert parse_tcp_stats_json(raw) == CONSTRUCTED_COUNTERS


def test_json_with_a_version_and_pretty_printed() -> None:
    raw = load(CONSTRUCTED_JSON).replace("{", '{"__version": "1", ', 1)
    assert parse_tcp_stats_json(raw) == CONSTRUCTED_COUNTERS
    import json

    assert parse_tcp_stats_json(json.dumps(json.loads(raw), indent=2)) == CONSTRUCTED_COUNTERS


def test_older_lines_are_read() -> None:
    text = "tcp:\n\t\t3 discarded due to memory problems\n\t4 packets with ECN CE bit set\n"
    assert parse_tcp_stats_text(text) == {"tcps_rcvmemdrop": 3, "tcps_ecn_ce": 4}


def test_stderr_warnings_before_the_header_are_skipped() -> None:
    text = "netstat: kvm not available: /dev/mem: No such file or directory\n" + load(CONSTRUCTED_TEXT)
    assert parse_tcp_stats_text(text) == CONSTRUCTED_COUNTERS


def test_the_next_protocol_ends_the_block() -> None:
    text = load(CONSTRUCTED_TEXT) + "udp:\n\t5 datagrams received\n"
    assert parse_tcp_stats_text(text) == CONSTRUCTED_COUNTERS


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", 1, 'no "tcp:" header'),
        ("udp:\n\t1 datagram received\n", 1, 'no "tcp:" header'),
        ("hello\n", 1, 'no "tcp:" header'),
        ("tcp:\n\tabc packets sent\n", 2, "tcps_sndtotal is 'abc', not an unsigned integer"),
        ("tcp:\n\t-1 packets sent\n", 2, "not an unsigned integer"),
        ("tcp:\n\t18446744073709551616 packets sent\n", 2, "out of range"),
        ("tcp:\n\t123456789012345678901 packets sent\n", 2, "not an unsigned integer"),
        ("tcp:\n\t1 packet sent\n\t2 packets sent\n", 3, "tcps_sndtotal printed twice"),
        ("tcp:\n\tthis is not netstat\n", 2, "not a line of TCP statistics"),
        ("tcp:\n\t١ packets sent\n", 2, "not an unsigned integer"),
        ("tcp:\ntcp:\n", 2, 'a second "tcp:" header'),
        (f"tcp:\n{STATES_TITLE}:\n\tmany connections in CLOSED state\n", 3, "not an unsigned integer"),
        (f"tcp:\n{STATES_TITLE}:\n\tnothing\n", 3, "not a connection count"),
    ],
)
def test_text_that_is_not_netstat_output(text: str, line: int, words: str) -> None:
    with pytest.raises(ProbeParseError) as caught:
        parse_tcp_stats_text(text)
    assert caught.value.path == NETSTAT_TEXT
    assert caught.value.line == line
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"statistics": {}}', 'no "tcp" object'),
        ('{"tcp": {}}', 'no "statistics" object'),
        ('{"statistics": {"tcp": {"sent-packets":-1}}}', "out of range"),
        ('{"statistics": {"tcp": {"sent-packets":18446744073709551616}}}', "out of range"),
        ('{"statistics": {"tcp": {"sent-packets":1.5}}}', "not an unsigned integer"),
        ('{"statistics": {"tcp": {"sent-packets":true}}}', "not an unsigned integer"),
        ('{"statistics": {"tcp": {"sent-packets":"x1"}}}', "not an unsigned integer"),
        ('{"statistics": {"tcp": {"sent-packets":1,"sent-packets":2}}}', "appears twice"),
        ('{"statistics": {"tcp": {"syncache": {"sent-cookies":null}}}}', "tcps_sc_sendcookie"),
        ('{"statistics": {"tcp": {"sent-packets":1' + "0" * 5000 + "}}}", "not JSON"),
        ("[" * 100_000, "not JSON"),
    ],
)
def test_json_that_is_not_netstat_output(raw: str, words: str) -> None:
    with pytest.raises(ProbeParseError) as caught:
        parse_tcp_stats_json(raw)
    assert caught.value.path == NETSTAT_JSON and caught.value.line is None
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def _one_line_error(parse: object, text: str) -> None:
    try:
        parse(text)  # type: ignore[operator]
    except ProbeParseError as error:
        assert "\n" not in str(error)


REAL_TEXTS = [sample_text(name) for name in TEXT_SAMPLES]


@examples(150)
@given(damaged(REAL_TEXTS))
def test_damaged_text_raises_only_probe_parse_error(text: str) -> None:
    _one_line_error(parse_tcp_stats_text, text)


@examples(80)
@given(damaged([load(CONSTRUCTED_JSON)]))
def test_damaged_json_raises_only_probe_parse_error(text: str) -> None:
    _one_line_error(parse_tcp_stats_json, text)


@examples(100)
@given(st.one_of(st.text(), st.binary().map(lambda b: b.decode("latin-1"))))
def test_random_text_raises_only_probe_parse_error(text: str) -> None:
    _one_line_error(parse_tcp_stats_text, text)
    _one_line_error(parse_tcp_stats_json, text)
    _one_line_error(parse_boottime, text)
    _one_line_error(parse_now, text)
    _one_line_error(lambda t: parse_freebsd_sample(t.split("\n")), text)
    _one_line_error(lambda t: parse_tcp_stats_text("tcp:\n" + t), text)


@examples(60)
@given(st.sampled_from(REAL_TEXTS), st.data())
def test_a_number_replaced_by_garbage_or_a_huge_number(text: str, data: st.DataObject) -> None:
    spans = list(locate_tcp_stats_text(text).values())
    start, end = data.draw(st.sampled_from(spans))
    junk = data.draw(
        st.one_of(
            st.just(str(2**64)),
            st.integers(2**64, 10**30).map(str),
            st.text(min_size=0, max_size=8).filter(
                lambda s: not any(c.isspace() for c in s) and not (s.isascii() and s.isdigit())
            ),
        )
    )
    with pytest.raises(ProbeParseError) as caught:
        parse_tcp_stats_text(text[:start] + junk + text[end:])
    assert caught.value.line == text[:start].count("\n") + 1
    assert "\n" not in str(caught.value)


# --- the clock -------------------------------------------------------------------------------------------


def test_parse_now() -> None:
    assert parse_now("1700000000.123456789\n") == pytest.approx(1700000000.123456789)
    assert parse_now("1700000000.N") == 1700000000.0  # FreeBSD before 14.1: %N is no conversion
    assert parse_now("1700000000") == 1700000000.0
    for bad in ("", "N", "1700000000.%N", "-5", "1.2.3", "1e9", "17000000000000000000"):
        with pytest.raises(ProbeParseError) as caught:
            parse_now(bad)
        assert caught.value.path == "date"


def test_parse_boottime_errors() -> None:
    for bad in ("", "{ sec = x, usec = 1 }", "{ sec = 1, usec = 1234567 }", "{sec=1,usec=2}", "1700000000"):
        with pytest.raises(ProbeParseError) as caught:
            parse_boottime(bad)
        assert caught.value.path == "kern.boottime"


# --- the snapshot and the Linux names --------------------------------------------------------------------


def test_snapshot_maps_as_netdata() -> None:
    counters = parse_tcp_stats_text(load(CONSTRUCTED_TEXT))
    snap = freebsd_snapshot(counters, (1700000000, 250000), 1700000100.75)
    assert snap.tcp["AttemptFails"] == counters["tcps_conndrops"]
    assert snap.tcp["EstabResets"] == counters["tcps_drops"]
    assert snap.tcp["ActiveOpens"] == counters["tcps_connattempt"]
    assert snap.tcp["PassiveOpens"] == counters["tcps_accepts"]
    assert snap.tcp["InSegs"] == counters["tcps_rcvtotal"]
    assert snap.tcp["OutSegs"] == counters["tcps_sndtotal"]
    assert snap.tcp["RetransSegs"] == counters["tcps_sndrexmitpack"]
    assert snap.tcp["InCsumErrors"] == counters["tcps_rcvbadsum"]
    assert snap.tcp["InErrs"] == sum(counters[p] for p in IN_ERRS_PARTS)
    assert snap.tcpext["ListenOverflows"] == counters["tcps_listendrop"]
    assert snap.tcpext["TCPAbortOnData"] == counters["tcps_rcvpackafterwin"]
    assert snap.tcpext["TCPAbortOnClose"] == counters["tcps_rcvafterclose"]
    assert snap.tcpext["TCPAbortOnMemory"] == counters["tcps_rcvreassfull"]  # tcp_var.h's compat alias
    assert snap.tcpext["TCPAbortOnTimeout"] == counters["tcps_persistdrop"]
    assert snap.tcpext["TCPAbortOnLinger"] == counters["tcps_finwait2_drops"]
    assert snap.tcpext["TCPOFOQueue"] == counters["tcps_rcvoopack"]
    assert snap.tcpext["SyncookiesRecv"] == counters["tcps_sc_recvcookie"]
    assert snap.tcpext["SyncookiesSent"] == counters["tcps_sc_sendcookie"]
    assert snap.tcpext["SyncookiesFailed"] == counters["tcps_sc_zonefail"]
    assert "OutRsts" not in snap.tcp and "OutRsts" not in snap.tcpext  # FreeBSD has no RSTs-sent counter
    for name, value in counters.items():  # every unmapped field under its own name
        if name not in LINUX_NAMES:
            assert snap.tcpext[name] == value
    assert "tcps_conndrops" not in snap.tcpext
    assert snap.tcpext["tcps_sndctrl"] == counters["tcps_sndctrl"]
    assert snap.uptime_s == pytest.approx(100.5)
    assert snap.boot_id == "boottime-1700000000.250000"
    assert snap.netns is None


def test_snapshot_with_the_old_memdrop_and_without_all_in_errs_parts() -> None:
    snap = freebsd_snapshot({"tcps_rcvmemdrop": 7, "tcps_rcvbadoff": 1, "tcps_rcvshort": 2}, (10, 0), 20.0)
    assert snap.tcpext["TCPAbortOnMemory"] == 7
    assert "InErrs" not in snap.tcp  # tcps_rcvreassfull not printed: no sum, not a guess
    assert snap.tcpext["tcps_rcvbadoff"] == 1
    wrapped = freebsd_snapshot(dict.fromkeys(IN_ERRS_PARTS, U64), (10, 0), 20.0)
    assert wrapped.tcp["InErrs"] == (3 * U64) % 2**64  # Netdata's uint64_t sum


def test_snapshot_needs_the_clock_after_the_boot_time() -> None:
    for now in (5.0, 10.0, math.inf, math.nan):
        with pytest.raises(ProbeParseError):
            freebsd_snapshot({}, (10, 0), now)


def test_mapping_notes_cover_every_linux_name() -> None:
    names = {linux for _, linux in LINUX_NAMES.values()} | {"InErrs", "OutRsts"}
    assert set(MAPPING_NOTES) == names
    assert all(note.count(". ") == 0 and note.endswith(".") for note in MAPPING_NOTES.values())
    assert all(field in {n for e in TCP_STATS for n in e.fields} for field in LINUX_NAMES)


# --- one sample of the probe -------------------------------------------------------------------------------


def body(netstat: str, date: str = "1700000000.123456789") -> list[str]:
    boot = load(BOOTTIME_SAMPLE).removeprefix("kern.boottime: ").rstrip("\n")
    return [date, boot, *netstat.split("\n")]


def test_sample_command() -> None:
    assert SAMPLE_COMMAND == (
        "{ date +%s.%N; sysctl -n kern.boottime; "
        "netstat --libxo json -s -p tcp 2>/dev/null || netstat -s -p tcp; } 2>&1"
    )


@pytest.mark.parametrize("name", [CONSTRUCTED_JSON, CONSTRUCTED_TEXT])
def test_parse_freebsd_sample(name: str) -> None:
    snap = parse_freebsd_sample(body(load(name)))
    assert snap.tcp["AttemptFails"] == CONSTRUCTED_COUNTERS["tcps_conndrops"]
    assert snap.uptime_s == pytest.approx(1700000000.123456789 - 1232765114.823118)
    assert snap.boot_id == "boottime-1232765114.823118"
    old = parse_freebsd_sample(body(load(name), date="1700000000.N"))
    assert old.uptime_s == pytest.approx(1700000000 - 1232765114.823118)


def test_sample_errors_name_the_part_and_line() -> None:
    lines = body(load(CONSTRUCTED_TEXT))
    cases = [
        ([*lines[:1]], "FreeBSD sample", None),
        (["soon", *lines[1:]], "date", 1),
        ([lines[0], "{ sec = soon }", *lines[2:]], "kern.boottime", 1),
        ([*lines[:4], "\tthree packets received", *lines[5:]], NETSTAT_TEXT, 3),
        ([*lines[:2], '{"statistics": {"tcp": {"sent-packets":"x"}}}'], NETSTAT_JSON, None),
    ]
    for sample, path, line in cases:
        with pytest.raises(ProbeParseError) as caught:
            parse_freebsd_sample(sample)
        assert (caught.value.path, caught.value.line) == (path, line), sample[:5]


def test_looks_like_freebsd() -> None:
    assert looks_like_freebsd(body(load(CONSTRUCTED_TEXT)))
    assert not looks_like_freebsd(["Ip: Forwarding DefaultTTL", "Ip: 1 64"])
    assert not looks_like_freebsd(["1700000000.1"])


# --- advancing a sample ---------------------------------------------------------------------------


def test_advance_text_changes_exactly_the_requested_values() -> None:
    for name in TEXT_SAMPLES:
        text = sample_text(name)
        before = parse_tcp_stats_text(text)
        add = {field: 10**k for k, field in enumerate(sorted(before)[:5])}
        moved = advance_text(text, add)
        after = parse_tcp_stats_text(moved)
        assert after == {f: v + add.get(f, 0) for f, v in before.items()}
        assert re.sub(r"\d+", "#", moved) == re.sub(r"\d+", "#", text)  # every other byte as it was


def test_advance_json_changes_exactly_the_requested_values() -> None:
    raw = load(CONSTRUCTED_JSON)
    add = {"tcps_conndrops": 5, "tcps_sc_recvcookie": 1, "tcps_hc_bucketoverflow": 12345678901}
    moved = advance_json(raw, add)
    assert parse_tcp_stats_json(moved) == {f: v + add.get(f, 0) for f, v in CONSTRUCTED_COUNTERS.items()}
    assert re.sub(r"\d+", "#", moved) == re.sub(r"\d+", "#", raw)
    assert moved.replace(str(CONSTRUCTED_COUNTERS["tcps_conndrops"] + 5), "") != raw  # in place


@examples(40)
@given(counter_sets().map(lambda c: {k: min(v, 2**62) for k, v in c.items()}), st.data())
def test_advance_agrees_with_rendering_the_advanced_counters(counters: dict, data: st.DataObject) -> None:
    fields = data.draw(st.lists(st.sampled_from(MAIN_FIELDS), min_size=1, max_size=6, unique=True))
    add = {f: data.draw(st.integers(0, 2**62)) for f in fields}
    advanced = {f: v + add.get(f, 0) for f, v in counters.items()}
    assert parse_tcp_stats_json(advance_json(render_json(counters), add)) == advanced
    assert parse_tcp_stats_text(advance_text(render_text(counters), add)) == advanced


def test_advance_raises_for_a_field_not_in_the_sample() -> None:
    with pytest.raises(KeyError):
        advance_text(sample_text(SAMPLE_1995), {"tcps_conndrops": 1})
    with pytest.raises(ValueError):
        advance_text(sample_text(SAMPLE_68), {"tcps_closed": U64})
    with pytest.raises(KeyError):
        advance_json('{"statistics": {"tcp": {"sent-packets":1}}}', {"tcps_conndrops": 1})
