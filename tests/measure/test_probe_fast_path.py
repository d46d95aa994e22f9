"""A sweep reads a probe's samples at the places a good sample of the same kernel had (``_SampleLayout``)
and takes its rates by position (``_packed_rates``): the same snapshots, the same rates, the same
errors as the full parser and the loop by name, for output real probes printed (the captures in
tests/fixtures/proc/probe, made by tests/fixtures/proc/capture.py, and probes run here by a real shell),
damaged by hand and by hypothesis."""

from __future__ import annotations

import glob
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetrst.measure import probe
from fleetrst.measure.counters import (
    NETSTAT_PATH,
    ProbeParseError,
    _parse_value,
    measure_rates,
    plain_values,
)
from fleetrst.measure.probe import parse_probe_output, probe_command
from fleetrst.model import Packed, PackedRates, Rates, Snapshot
from tests.helpers import damaged, examples

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "proc" / "probe"
CAPTURED = {Path(path).name: Path(path).read_text() for path in sorted(glob.glob(str(FIXTURES / "*.out")))}
LIVE = {
    f"here-{name}": subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    for name, command in {
        "window": probe_command(0.01),
        "baseline": probe_command(0.01, 0.01),
        "containers": probe_command(0.01, containers=True),
    }.items()
}
TEXTS = {**CAPTURED, **LIVE}

Outcome = tuple[str, object]


@pytest.fixture(autouse=True)
def _fresh_layouts() -> Iterator[None]:
    saved = probe._SAMPLE_LAYOUTS
    yield
    probe._SAMPLE_LAYOUTS = saved


def outcome(text: str) -> Outcome:
    try:
        return "ok", parse_probe_output(text)
    except ProbeParseError as error:
        return "error", str(error)


def full(text: str) -> Outcome:
    """What the full parser makes of ``text`` (no layout known: the first call reads it all)."""
    probe._SAMPLE_LAYOUTS = ()
    return outcome(text)


def cheap(text: str) -> Outcome:
    """What a sweep makes of ``text`` once every real capture's layout is known."""
    probe._SAMPLE_LAYOUTS = ()
    for real in TEXTS.values():
        parse_probe_output(real)
    return outcome(text)


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_real_output_read_at_the_known_places_is_what_the_full_parser_reads(name: str) -> None:
    text = TEXTS[name]
    expected = full(text)
    assert expected[0] == "ok"
    assert cheap(text) == expected
    known = probe._parse_known(text)
    assert known is not None, "the cheap path took it"
    assert known == expected[1]
    assert all(isinstance(s.tcp, Packed) and isinstance(s.tcpext, Packed) for s in known)


def test_hosts_of_one_kernel_share_one_layout_and_other_kernels_add_theirs() -> None:
    probe._SAMPLE_LAYOUTS = ()
    parse_probe_output(TEXTS["here-window"])
    parse_probe_output(TEXTS["here-baseline"])
    assert len(probe._SAMPLE_LAYOUTS) == 1
    for text in CAPTURED.values():
        parse_probe_output(text)
    assert 1 <= len(probe._SAMPLE_LAYOUTS) <= probe._MAX_SAMPLE_LAYOUTS


def _body_line(text: str, tag: str) -> str:
    """The value line of ``tag`` (the second line whose first word is ``tag``) in sample 0."""
    return [line for line in text.split("\n") if line.split(" ", 1)[0] == tag][1]


def _value(text: str, tag: str, position: int, value: str) -> str:
    line = _body_line(text, tag)
    tokens = line.split(" ")
    tokens[position] = value
    return text.replace(line, " ".join(tokens), 1)


def _uptime_of_sample_0(text: str, line: str) -> str:
    """``text`` with sample 0's /proc/uptime line (the one before its boot_id, before "@@rc 0") set."""
    lines = text.split("\n")
    end = lines.index("@@end 0")
    assert lines[end - 2 : end] == ["", "@@rc 0"]
    lines[end - 4] = line
    return "\n".join(lines)


def _replace(old: str, new: str) -> Callable[[str], str]:
    def damage(text: str) -> str:
        assert old in text
        return text.replace(old, new, 1)

    return damage


DAMAGES: dict[str, Callable[[str], str]] = {
    "not a number": lambda t: _value(t, "TcpExt:", 1, "12x"),
    "negative, unsigned": lambda t: _value(t, "TcpExt:", 1, "-5"),
    "minus zero, unsigned": lambda t: _value(t, "TcpExt:", 1, "-0"),
    "plus sign": lambda t: _value(t, "Tcp:", 5, "+5"),
    "non-ASCII digits": lambda t: _value(t, "TcpExt:", 1, "١٢"),
    "21 digits, leading zeros": lambda t: _value(t, "TcpExt:", 2, "000000000000000000007"),
    "2**64": lambda t: _value(t, "TcpExt:", 2, str(2**64)),
    "2**64 - 1": lambda t: _value(t, "TcpExt:", 2, str(2**64 - 1)),
    "2**63 beside MaxConn": lambda t: _value(t, "Tcp:", 5, str(2**63)),
    "MaxConn a lone minus": lambda t: _value(t, "Tcp:", 4, "-"),
    "MaxConn -2**63": lambda t: _value(t, "Tcp:", 4, str(-(2**63))),
    "MaxConn -2**63 - 1": lambda t: _value(t, "Tcp:", 4, str(-(2**63) - 1)),
    "MaxConn 2**63": lambda t: _value(t, "Tcp:", 4, str(2**63)),
    "MaxConn 5": lambda t: _value(t, "Tcp:", 4, "5"),
    "one value too many": lambda t: t.replace(_body_line(t, "TcpExt:"), _body_line(t, "TcpExt:") + " 7", 1),
    "a blank line in the body": _replace("\nTcp: ", "\n\nTcp: "),
    "a spaced line in the body": _replace("\nTcp: ", "\n   \nTcp: "),
    "a marker in the body": _replace("\nTcp: ", "\n@@rc 0\nTcp: "),
    "a third Tcp line": _replace("\nUdp: ", "\nTcp: 1 2\nUdp: "),
    "CRLF": lambda t: t.replace("\n", "\r\n"),
    "cat failed": _replace(
        "\n@@rc 0\n@@end 0", "\ncat: /proc/net/netstat: Permission denied\n@@rc 1\n@@end 0"
    ),
    "sleep failed": _replace(
        "\n\n@@rc 0\n@@fleetrst-probe v2 sample 1", "\n\n@@rc 1\n@@fleetrst-probe v2 sample 1"
    ),
    "sleep said something": _replace(
        "\n\n@@rc 0\n@@fleetrst-probe v2 sample 1", "\nhm\n\n@@rc 0\n@@fleetrst-probe v2 sample 1"
    ),
    "FreeBSD's line 2": lambda t: t.replace("\nIp: ", "\n{ sec = 1, usec = 2 } Ip: ", 1),
    "a boot id that is not one": lambda t: t.replace("\n\n@@rc 0\n@@end 0", "x\n\n@@rc 0\n@@end 0", 1),
    "an uptime that is not one": lambda t: _uptime_of_sample_0(t, "x1.5 2.0"),
    "no end": _replace("\n@@end 1", "\n@@end 7"),
    "cut after sample 0": lambda t: t[: t.index("@@end 0") + len("@@end 0")],
    "a banner first": lambda t: "Welcome!\n@@fleetrst-probe is not a header\n" + t,
    "the header of another total": _replace(" of 2\n", " of 4\n"),
}


@pytest.mark.parametrize("name", sorted(CAPTURED))
@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_output_gets_the_full_parsers_own_answer(name: str, damage: str) -> None:
    text = CAPTURED[name]
    if damage in {"no end", "the header of another total", "sleep failed", "sleep said something"} and (
        name.startswith("baseline")
    ):
        text = TEXTS["here-window"]
    broken = DAMAGES[damage](text)
    assert broken != text
    assert cheap(broken) == full(broken)


@examples(300)
@given(damaged(list(TEXTS.values())))
def test_randomly_damaged_output_gets_the_full_parsers_own_answer(text: str) -> None:
    assert cheap(text) == full(text)


def _rates_both_ways(text: str) -> tuple[Rates, Rates]:
    kind, dicts = full(text)
    assert kind == "ok"
    packed = probe._parse_known(text)
    assert packed is not None
    return measure_rates(dicts[-2], dicts[-1]), measure_rates(packed[-2], packed[-1])  # type: ignore[index]


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_rates_by_position_are_the_rates_by_name(name: str) -> None:
    by_name, by_position = _rates_both_ways(TEXTS[name])
    assert isinstance(by_position.per_second, PackedRates)
    assert by_position == by_name
    assert list(by_position.per_second.items()) == list(by_name.per_second.items())  # the order too
    assert list(by_position.gauges.items()) == list(by_name.gauges.items())


def _sample_1_value(text: str, tag: str, position: int, value: int) -> str:
    """``text`` with a value of sample 1 (the last value line of ``tag``) set."""
    line = [line for line in text.split("\n") if line.split(" ", 1)[0] == tag][-1]
    tokens = line.split(" ")
    tokens[position] = str(value)
    at = text.rindex(line)
    return text[:at] + " ".join(tokens) + text[at + len(line) :]


@pytest.mark.parametrize(
    ("tag", "position", "value", "change"),
    [
        ("TcpExt:", 3, 0, "reset"),  # went down a long way: reset, rate 0
        ("Tcp:", 6, 0, "reset"),
        ("TcpExt:", 5, 2**64 - 1, None),  # went up past 2**63
    ],
)
def test_a_counter_that_went_down_is_told_a_reset_either_way(
    tag: str, position: int, value: int, change: str | None
) -> None:
    text = _value(TEXTS["here-window"], tag, position, str(10**12))  # sample 0
    text = _sample_1_value(text, tag, position, value)
    by_name, by_position = _rates_both_ways(text)
    assert by_position == by_name
    assert (by_name.wrapped, by_name.reset) == (by_position.wrapped, by_position.reset)
    assert bool(by_name.reset) == (change == "reset")


def test_a_wrapped_32_bit_counter_is_a_wrap_either_way() -> None:
    base = TEXTS["here-window"]
    line = [line for line in base.split("\n") if line.split(" ", 1)[0] == "TcpExt:"][1]
    before = _value(base, "TcpExt:", 3, str(2**32 - 10))  # sample 0 (its first value line)
    text = _sample_1_value(before, "TcpExt:", 3, 5)
    assert line != _body_line(text, "TcpExt:")
    by_name, by_position = _rates_both_ways(text)
    assert by_name.wrapped and by_position == by_name and by_position.wrapped == by_name.wrapped


def _per_value(names: tuple[str, ...], numbers: list[str]) -> object:
    try:
        return [
            _parse_value(name, number, NETSTAT_PATH, 2) for name, number in zip(names, numbers, strict=True)
        ]
    except ProbeParseError as error:
        return str(error)


NUMBER = st.one_of(
    st.integers(0, 2**64 + 5).map(str),
    st.integers(-(2**63) - 5, 5).map(str),
    st.integers(0, 99).map(lambda n: "0" * 19 + str(n)),
    st.sampled_from(["-", "-0", "+1", "1e3", "١", "0x1f", "00", "-00", "--1"]),
    st.text(min_size=1, max_size=4).filter(lambda t: t.split() == [t]),  # a token, as split() gives
)


@examples(500)
@given(st.lists(st.tuples(st.sampled_from(["MaxConn", "A", "B", "C"]), NUMBER), min_size=1, max_size=4))
def test_plain_values_are_the_values_read_one_by_one(pairs: list[tuple[str, str]]) -> None:
    names = tuple(dict.fromkeys(name for name, _ in pairs))
    numbers = [number for _, number in pairs][: len(names)]
    names = names[: len(numbers)]
    plain = plain_values(names, numbers)
    if plain is not None:  # the fast path never takes what the careful one refuses, nor reads it otherwise
        assert plain == _per_value(names, numbers)


def test_the_fast_path_takes_what_every_linux_prints() -> None:
    # MaxConn is -1 on every Linux: the Tcp line is not sent value by value for it.
    line = _body_line(TEXTS["here-window"], "Tcp:")
    header = next(h for h in TEXTS["here-window"].split("\n") if h.startswith("Tcp: "))
    names = tuple(header.split()[1:])
    assert plain_values(names, line.split()[1:]) is not None
    assert "-1" in line.split()


def test_snapshots_compare_equal_packed_or_not() -> None:
    kind, dicts = full(TEXTS["here-window"])
    packed = probe._parse_known(TEXTS["here-window"])
    assert kind == "ok" and packed is not None
    assert isinstance(dicts, list) and isinstance(dicts[0], Snapshot) and isinstance(dicts[0].tcp, dict)
    assert packed == dicts
