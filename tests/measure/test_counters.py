"""Kernel counters parsed by name and turned into rates, on real captures (tests/fixtures/proc/CAPTURED.md).

Tests marked "derived" change a real capture in one stated way (fields reordered, a field dropped, a
wrap) to reach a case the machine cannot produce on demand; everything else is the kernel's own text.
"""

from __future__ import annotations

import contextlib
import itertools
import random
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.measure.counters import (
    GAUGES,
    NAMED_RATES,
    MeasureError,
    ProbeParseError,
    RebootedError,
    measure_rates,
    parse_boot_id,
    parse_netstat,
    parse_snmp,
    parse_uptime,
)
from fleetrst.model import Snapshot
from tests.helpers import examples

PROC = Path(__file__).parents[1] / "fixtures" / "proc"
LOADS = ("idle", "closed-port", "linger-abort", "listen-overflow", "host-idle")
ABORTS = [name for name in NAMED_RATES if name.startswith("aborts_")]


def text(load: str, when: str, name: str) -> str:
    return (PROC / load / when / name).read_text()


def snapshot(load: str, when: str) -> Snapshot:
    return Snapshot(
        tcp=parse_snmp(text(load, when, "snmp")),
        tcpext=parse_netstat(text(load, when, "netstat")),
        uptime_s=parse_uptime(text(load, when, "uptime")),
        boot_id=parse_boot_id(text(load, when, "boot_id")),
    )


def pair(load: str) -> tuple[Snapshot, Snapshot]:
    return snapshot(load, "before"), snapshot(load, "after")


def raw_pair(file_text: str, prefix: str) -> tuple[list[str], list[str]]:
    """The header names and values of a real file, split by hand, to compare the parser against."""
    head, values = [line.split()[1:] for line in file_text.splitlines() if line.startswith(prefix + ": ")]
    return head, values


def rewrite_pair(file_text: str, prefix: str, names: list[str], values: list[str]) -> str:
    """A real file with its ``prefix`` line pair replaced: the rest of the file stays as captured."""
    out, seen = [], 0
    for line in file_text.splitlines(keepends=True):
        if line.startswith(prefix + ": "):
            out.append(f"{prefix}: {' '.join(names if seen == 0 else values)}\n")
            seen += 1
        else:
            out.append(line)
    return "".join(out)


# --- parsing by name --------------------------------------------------------------------------------


@pytest.mark.parametrize("load", LOADS)
def test_every_tcp_and_tcpext_field_is_read_by_its_header_name(load: str) -> None:
    for name, prefix, parse in (("snmp", "Tcp", parse_snmp), ("netstat", "TcpExt", parse_netstat)):
        names, values = raw_pair(text(load, "after", name), prefix)
        assert parse(text(load, "after", name)) == {n: int(v) for n, v in zip(names, values, strict=True)}


def test_maxconn_is_the_one_signed_field_and_reads_minus_one() -> None:
    tcp = parse_snmp(text("idle", "before", "snmp"))
    assert tcp["MaxConn"] == -1
    assert tcp["RtoMin"] == 200


def test_snmp_reads_only_the_tcp_line_not_udp_or_ip() -> None:
    tcp = parse_snmp(text("idle", "before", "snmp"))
    assert "InDatagrams" not in tcp and "Forwarding" not in tcp
    assert {"AttemptFails", "OutRsts", "EstabResets", "CurrEstab"} <= tcp.keys()


def test_netstat_reads_tcpext_and_keeps_fields_fleetrst_has_no_name_for() -> None:
    tcpext = parse_netstat(text("idle", "before", "netstat"))
    assert "TCPAODroppedIcmps" in tcpext  # a 6.x field no rule uses
    assert "InOctets" not in tcpext and "MPCapableSYNRX" not in tcpext  # IpExt, MPTcpExt


def test_fields_in_another_order_parse_to_the_same_counters() -> None:
    # Derived: the real TcpExt pair with names and values shuffled together.
    real = text("linger-abort", "after", "netstat")
    names, values = raw_pair(real, "TcpExt")
    order = list(range(len(names)))
    random.Random(3).shuffle(order)
    shuffled = rewrite_pair(real, "TcpExt", [names[i] for i in order], [values[i] for i in order])
    assert parse_netstat(shuffled) == parse_netstat(real)


def test_an_unknown_new_field_is_kept() -> None:
    # Derived: the real Tcp pair with a field no kernel has (yet) appended.
    real = text("idle", "after", "snmp")
    names, values = raw_pair(real, "Tcp")
    assert parse_snmp(rewrite_pair(real, "Tcp", [*names, "FutureRsts"], [*values, "7"]))["FutureRsts"] == 7


def test_uptime_is_the_first_field_and_boot_id_the_uuid() -> None:
    assert parse_uptime(text("idle", "before", "uptime")) == float(
        text("idle", "before", "uptime").split()[0]
    )
    assert parse_boot_id(text("idle", "before", "boot_id")) == text("idle", "before", "boot_id").strip()


# --- parse errors: one line, naming the file and the line -------------------------------------------


def snmp_with_tcp_values(values: str) -> str:
    real = text("idle", "before", "snmp")
    names, _ = raw_pair(real, "Tcp")
    return rewrite_pair(real, "Tcp", names, values.split())


def tcp_line_number(file_text: str) -> int:
    return [n for n, line in enumerate(file_text.splitlines(), 1) if line.startswith("Tcp: ")][1]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ("1 200 120000 -1 17 2 0 0 0 1378 887 0 0 12", "15 names but 14 values"),
        ("1 200 120000 -1 17 2 0 0 0 1378 887 0 0 12 x", "InCsumErrors is 'x', not an integer"),
        (
            "1 200 120000 -1 17 2 0 0 0 1378 887 0 0 -12 0",
            "OutRsts is -12, out of range for an unsigned long",
        ),
        ("1 200 120000 -1 17 2 0 0 0 1378 887 0 0 18446744073709551616 0", "out of range for an unsigned"),
        ("1 200 120000 -1 17 2 0 0 0 1378 887 0 0 1.5 0", "OutRsts is '1.5', not an integer"),
    ],
)
def test_a_bad_value_line_names_the_file_the_line_and_the_field(values: str, reason: str) -> None:
    bad = snmp_with_tcp_values(values)
    with pytest.raises(ProbeParseError) as caught:
        parse_snmp(bad)
    message = str(caught.value)
    assert message.startswith(f"could not parse /proc/net/snmp line {tcp_line_number(bad)}: ")
    assert reason in message
    assert "\n" not in message


def test_a_duplicated_field_is_an_error_not_a_silent_overwrite() -> None:
    # Derived: the real Tcp header with OutRsts named twice.
    real = text("idle", "before", "snmp")
    names, values = raw_pair(real, "Tcp")
    with pytest.raises(ProbeParseError, match="duplicate field OutRsts"):
        parse_snmp(rewrite_pair(real, "Tcp", [*names, "OutRsts"], [*values, "0"]))


def test_a_file_without_the_tcp_lines_says_so() -> None:
    with pytest.raises(ProbeParseError, match=r'^could not parse /proc/net/snmp: no "Tcp:" header line$'):
        parse_snmp(text("idle", "before", "netstat"))  # the wrong file
    with pytest.raises(ProbeParseError, match=r'^could not parse /proc/net/netstat: no "TcpExt:" header'):
        parse_netstat(text("idle", "before", "snmp"))


def test_a_header_without_its_value_line_is_an_error() -> None:
    header = next(line for line in text("idle", "before", "snmp").splitlines() if line.startswith("Tcp: "))
    with pytest.raises(ProbeParseError, match='line 1: "Tcp:" header line has no value line'):
        parse_snmp(header + "\n")


@pytest.mark.parametrize("bad", ["", "abc 1.0", "-5.00 3.0", "1e9 2", "12.5 1\n13.5 1"])
def test_uptime_that_is_not_seconds_is_an_error(bad: str) -> None:
    with pytest.raises(ProbeParseError, match=r"^could not parse /proc/uptime"):
        parse_uptime(bad)


@pytest.mark.parametrize("bad", ["", "not a boot id", "56fe78fa\n56fe78fa"])
def test_a_boot_id_that_is_not_one_is_an_error(bad: str) -> None:
    with pytest.raises(ProbeParseError, match=r"^could not parse /proc/sys/kernel/random/boot_id"):
        parse_boot_id(bad)


# --- rates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("load", LOADS)
def test_a_rate_is_the_counters_delta_over_the_hosts_own_uptime_interval(load: str) -> None:
    before, after = pair(load)
    rates = measure_rates(before, after)
    assert rates.interval_s == pytest.approx(after.uptime_s - before.uptime_s)
    for name in ("AttemptFails", "OutRsts", "EstabResets", "InSegs"):
        assert rates.per_second[name] == (after.tcp[name] - before.tcp[name]) / rates.interval_s
    for name in ("ListenOverflows", "TCPAbortOnData", "TCPChallengeACK"):
        assert rates.per_second[name] == (after.tcpext[name] - before.tcpext[name]) / rates.interval_s
    assert rates.wrapped == () and rates.reset == ()


# Friendly name -> kernel counter, written out here rather than read from the code, so that a swapped
# or re-pointed entry of NAMED_RATES fails this test. Sources: resets_received and resets_sent are
# Netdata's reference alarms (netdata/netdata src/health/health.d/tcp_resets.conf: AttemptFails and
# OutRsts; ../shared/FACTS.md); every other name is the kernel's own counter spelled in snake case, as
# /proc/net/snmp (Tcp:) and /proc/net/netstat (TcpExt:) print it (include/uapi/linux/snmp.h, e.g.
# LINUX_MIB_TCPABORTONLINGER -> "TCPAbortOnLinger"; ../shared/DESIGN.md, "What the kernel gives us").
EXPECTED_NAMED_RATES = {
    "resets_received": "AttemptFails",
    "resets_sent": "OutRsts",
    "estab_resets": "EstabResets",
    "listen_overflows": "ListenOverflows",
    "listen_drops": "ListenDrops",
    "aborts_on_data": "TCPAbortOnData",
    "aborts_on_close": "TCPAbortOnClose",
    "aborts_on_memory": "TCPAbortOnMemory",
    "aborts_on_timeout": "TCPAbortOnTimeout",
    "aborts_on_linger": "TCPAbortOnLinger",
    "aborts_failed": "TCPAbortFailed",
    "memory_pressures": "TCPMemoryPressures",
    "req_q_full_drops": "TCPReqQFullDrop",
    "challenge_acks": "TCPChallengeACK",
}


def test_each_friendly_name_is_the_kernel_counter_netdata_and_the_kernel_name() -> None:
    assert NAMED_RATES == EXPECTED_NAMED_RATES


def test_every_named_rate_reads_a_counter_a_real_kernel_prints_and_is_that_counters_rate() -> None:
    before, after = pair("linger-abort")
    printed = after.tcp.keys() | after.tcpext.keys()
    assert set(EXPECTED_NAMED_RATES.values()) <= printed, "every source is a real counter name"
    rates = measure_rates(before, after).per_second
    for friendly, kernel in EXPECTED_NAMED_RATES.items():
        table = after.tcp if kernel in after.tcp else after.tcpext
        other = before.tcp if kernel in before.tcp else before.tcpext
        assert rates[friendly] == (table[kernel] - other[kernel]) / (after.uptime_s - before.uptime_s)


def test_gauges_are_levels_from_the_second_sample_not_rates() -> None:
    before, after = pair("idle")
    rates = measure_rates(before, after)
    assert rates.gauges == {name: after.tcp[name] for name in GAUGES}
    assert rates.gauges["MaxConn"] == -1
    assert not GAUGES & rates.per_second.keys()


def test_connects_to_a_closed_port_are_resets_received_and_sent_without_aborts() -> None:
    rates = measure_rates(*pair("closed-port")).per_second
    assert rates["resets_received"] > 100 and rates["resets_sent"] > 100
    assert rates["resets_received"] == rates["resets_sent"]  # client and server share the namespace
    assert rates["estab_resets"] == 0
    assert all(rates[name] == 0 for name in ABORTS)


def test_a_server_aborting_with_linger_zero_shows_as_aborts_on_data_and_established_resets() -> None:
    rates = measure_rates(*pair("linger-abort")).per_second
    assert rates["aborts_on_data"] > 100
    assert rates["resets_sent"] == rates["aborts_on_data"]
    assert rates["estab_resets"] == 2 * rates["aborts_on_data"]  # both ends leave ESTABLISHED
    assert rates["resets_received"] == 0


def test_a_flooded_listener_that_never_accepts_overflows_its_listen_queue() -> None:
    rates = measure_rates(*pair("listen-overflow")).per_second
    assert rates["listen_overflows"] > 100
    assert rates["listen_drops"] == rates["listen_overflows"]


@pytest.mark.parametrize("load", ["idle", "host-idle"])
def test_a_quiet_host_has_no_resets(load: str) -> None:
    rates = measure_rates(*pair(load)).per_second
    assert all(rates[name] == 0 for name in NAMED_RATES)


def test_a_host_that_reboots_between_samples_is_an_error_not_a_negative_rate() -> None:
    # Derived: the real "after" snapshot with a new boot_id (and the counters a fresh boot would have).
    before, after = pair("closed-port")
    rebooted = replace(after, boot_id="0" * 8 + after.boot_id[8:], uptime_s=3.0)
    with pytest.raises(RebootedError, match=r"^rebooted during the window$"):
        measure_rates(before, rebooted)


@pytest.mark.parametrize("uptime_delta", [0.0, -1.0])
def test_an_interval_that_is_not_positive_is_an_error(uptime_delta: float) -> None:
    before, after = pair("idle")
    with pytest.raises(MeasureError, match="no positive interval"):
        measure_rates(before, replace(after, uptime_s=before.uptime_s + uptime_delta))


def with_tcp(snap: Snapshot, **values: int) -> Snapshot:
    return replace(snap, tcp={**snap.tcp, **values})


def test_a_32_bit_counter_that_wraps_counts_the_distance_through_the_wrap() -> None:
    # Derived: OutRsts set near 2**32 before and just past 0 after, as on a 32-bit kernel.
    before, after = pair("idle")
    rates = measure_rates(with_tcp(before, OutRsts=2**32 - 10), with_tcp(after, OutRsts=5))
    assert rates.per_second["OutRsts"] == 15 / rates.interval_s
    assert rates.per_second["resets_sent"] == rates.per_second["OutRsts"]
    assert rates.wrapped == ("OutRsts",) and rates.reset == ()


def test_a_64_bit_counter_that_wraps_counts_the_distance_through_the_wrap() -> None:
    # Derived: OutRsts above 2**32, so only a 64-bit wrap can explain the decrease.
    before, after = pair("idle")
    rates = measure_rates(with_tcp(before, OutRsts=2**64 - 4), with_tcp(after, OutRsts=6))
    assert rates.per_second["OutRsts"] == 10 / rates.interval_s
    assert rates.wrapped == ("OutRsts",)


def test_a_counter_that_drops_far_was_reset_and_gets_rate_zero() -> None:
    # Derived: a counter going from 1,000,000 to 3 is no wrap (the wrapped delta would be ~4e9).
    before, after = pair("closed-port")
    rates = measure_rates(with_tcp(before, OutRsts=1_000_000), with_tcp(after, OutRsts=3))
    assert rates.per_second["OutRsts"] == 0
    assert rates.reset == ("OutRsts",) and rates.wrapped == ()


def test_a_counter_in_only_one_snapshot_is_skipped_and_its_named_rate_is_absent() -> None:
    # Derived: TCPChallengeACK dropped from the second snapshot, as after a kernel that lacks it.
    before, after = pair("idle")
    tcpext = {k: v for k, v in after.tcpext.items() if k != "TCPChallengeACK"}
    rates = measure_rates(before, replace(after, tcpext=tcpext))
    assert "TCPChallengeACK" not in rates.per_second
    assert "challenge_acks" not in rates.per_second  # absent, not 0
    assert rates.per_second["resets_sent"] == 0


# --- properties -------------------------------------------------------------------------------------

COUNTER = st.integers(min_value=0, max_value=2**64 - 1)


@given(before=COUNTER, after=COUNTER, interval=st.floats(min_value=0.01, max_value=3600))
def test_a_rate_is_never_negative_whatever_the_counters_do(before: int, after: int, interval: float) -> None:
    base = snapshot("idle", "before")
    rates = measure_rates(
        with_tcp(base, OutRsts=before),
        replace(with_tcp(base, OutRsts=after), uptime_s=base.uptime_s + interval),
    )
    assert rates.per_second["OutRsts"] >= 0
    assert ("OutRsts" in rates.wrapped) + ("OutRsts" in rates.reset) == (after < before)


@given(
    start=st.integers(min_value=0, max_value=2**32 - 1),
    moved=st.integers(min_value=0, max_value=2**32 // 10 - 1),
)
def test_a_32_bit_counter_moving_under_a_tenth_of_its_range_is_measured_exactly(
    start: int, moved: int
) -> None:
    base = snapshot("idle", "before")
    after = replace(with_tcp(base, OutRsts=(start + moved) % 2**32), uptime_s=base.uptime_s + 2)
    rates = measure_rates(with_tcp(base, OutRsts=start), after)
    assert rates.per_second["OutRsts"] == moved / 2
    assert rates.reset == ()


REAL_FILES = [(parse_snmp, text(load, when, "snmp")) for load in LOADS for when in ("before", "after")] + [
    (parse_netstat, text(load, when, "netstat")) for load in LOADS for when in ("before", "after")
]


@given(garbage=st.text())
def test_any_text_gives_counters_or_a_parse_error_never_another_exception(garbage: str) -> None:
    for parse in (parse_snmp, parse_netstat):
        try:
            parse(garbage)
        except ProbeParseError as error:
            assert str(error).isprintable()


@st.composite
def mutated(draw: st.DrawFn) -> tuple[object, str]:
    parse, real = draw(st.sampled_from(REAL_FILES))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(real)))
        kind = draw(st.sampled_from(["delete", "insert", "swap-lines", "cut"]))
        if kind == "delete":
            real = real[:at] + real[at + draw(st.integers(1, 30)) :]
        elif kind == "insert":
            real = real[:at] + draw(st.text(min_size=1, max_size=10)) + real[at:]
        elif kind == "cut":
            real = real[:at]
        else:
            lines = real.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            real = "\n".join(lines)
    return parse, real


@examples(300)
@given(case=mutated())
def test_a_damaged_real_capture_gives_counters_or_a_parse_error_never_another_exception(
    case: tuple[object, str],
) -> None:
    parse, damaged = case
    assert callable(parse)
    try:
        counters = parse(damaged)
    except ProbeParseError as error:
        assert str(error).isprintable()
    else:
        assert all(isinstance(value, int) for value in counters.values())


def written_pairs(text: str, tag: str) -> list[dict[str, set[int]]]:
    """Every (header line, the line after it) pair of ``tag`` lines in ``text``, read naively: each
    name with the values written under it (a name may appear twice in a damaged header)."""
    lines = [line.rstrip("\r") for line in text.split("\n")]
    pairs: list[dict[str, set[int]]] = []
    for head, values in itertools.pairwise(lines):
        if head.split(" ", 1)[0] == tag and values.split(" ", 1)[0] == tag:
            found: dict[str, set[int]] = {}
            for name, value in zip(head.split()[1:], values.split()[1:], strict=False):
                with contextlib.suppress(ValueError):
                    found.setdefault(name, set()).add(int(value))
            pairs.append(found)
    return pairs


@st.composite
def token_damaged(draw: st.DrawFn) -> tuple[object, str]:
    """A real capture whose Tcp/TcpExt header or value line lost, repeated, swapped or replaced a field."""
    parse, real = draw(st.sampled_from(REAL_FILES))
    tag = "Tcp:" if parse is parse_snmp else "TcpExt:"
    lines = real.split("\n")
    tagged = [i for i, line in enumerate(lines) if line.split(" ", 1)[0] == tag]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        i = draw(st.sampled_from(tagged))
        fields = lines[i].split(" ")
        j = draw(st.integers(1, len(fields) - 1))
        kind = draw(st.sampled_from(["drop", "repeat", "swap", "replace"]))
        if kind == "drop":
            del fields[j]
        elif kind == "repeat":
            fields.insert(j, fields[j])
        elif kind == "swap":
            k = draw(st.integers(1, len(fields) - 1))
            fields[j], fields[k] = fields[k], fields[j]
        else:
            fields[j] = draw(st.one_of(st.integers(-(2**64), 2**65).map(str), st.text(max_size=6)))
        lines[i] = " ".join(fields)
    return parse, "\n".join(lines)


@examples(300)
@given(case=st.one_of(mutated(), token_damaged()))
def test_every_counter_parsed_from_a_damaged_capture_is_written_under_its_name(
    case: tuple[object, str],
) -> None:
    # The parser invents nothing: each (name, value) it returns is a name of a header line and the
    # number written in the same column of the line under it.
    parse, damaged = case
    assert callable(parse)
    try:
        counters = parse(damaged)
    except ProbeParseError:
        return
    tag = "Tcp:" if parse is parse_snmp else "TcpExt:"
    assert any(
        all(value in pair.get(name, ()) for name, value in counters.items())
        for pair in written_pairs(damaged, tag)
    ), counters


# Lines that are not the parsed pair's: anything whose first word is not its tag.
_OTHER_LINE = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=40),
    st.sampled_from(
        ["Udp: InDatagrams NoPorts", "Udp: 1 2", "IpExt: InNoRoutes", "Tcp:x 1", "TcpExt:", "Tcp"]
    ),
)


@examples(200)
@given(
    case=st.sampled_from(REAL_FILES),
    before=st.lists(_OTHER_LINE, max_size=5),
    after=st.lists(_OTHER_LINE, max_size=5),
)
def test_lines_of_other_protocols_around_the_counters_never_change_them(
    case: tuple[object, str], before: list[str], after: list[str]
) -> None:
    parse, real = case
    assert callable(parse)
    tag = "Tcp:" if parse is parse_snmp else "TcpExt:"
    assert real.endswith("\n")

    def lines(chosen: list[str]) -> str:
        return "".join(line + "\n" for line in chosen if line.rstrip("\r").split(" ", 1)[0] != tag)

    noisy = lines(before) + real + lines(after)
    assert parse(noisy) == parse(real)
