"""Test support for FreeBSD hosts: the published samples, with chosen counters moved forward.

``tests/fixtures/freebsd/`` holds real published ``netstat -s -p tcp`` output (and a libxo JSON sample
built by libxo's rules from FreeBSD's source, as none is published), each with its origin in
``PROVENANCE.md`` there. :func:`advance_text` and :func:`advance_json` return a sample with some
``tcpstat`` fields increased, every other byte as it was: the stand-in FreeBSD host of the test fleet
(:mod:`fleetrst.testing.bsdhost`) prints them, so its counters advance as a real host's would.

The product never imports this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from ..measure.freebsd import JSON_FIELDS, locate_tcp_stats_text, parse_tcp_stats_json

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "freebsd"

_U64_MAX = 2**64 - 1


def _apply(text: str, spans: Mapping[str, tuple[int, int]], add: Mapping[str, int]) -> str:
    edits: list[tuple[int, int, str]] = []
    for name, amount in add.items():
        if name not in spans:
            raise KeyError(f"{name} is not in this sample")
        start, end = spans[name]
        value = int(text[start:end]) + amount
        if not 0 <= value <= _U64_MAX:
            raise ValueError(f"{name} would be {value}, out of range for a 64-bit counter")
        edits.append((start, end, str(value)))
    out = text
    for start, end, number in sorted(edits, reverse=True):  # from the end: earlier spans keep their place
        out = out[:start] + number + out[end:]
    return out


def advance_text(text: str, add: Mapping[str, int]) -> str:
    """``netstat -s -p tcp`` text with each field in ``add`` increased by its amount, in place.

    Raises KeyError for a field the sample does not print, ValueError (ProbeParseError is one) for a
    sample that does not parse or a value that would leave 0..2**64-1.
    """
    return _apply(text, locate_tcp_stats_text(text), add)


# --- where the numbers are in a JSON text ---------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


def _string(text: str, i: int) -> tuple[str, int]:
    """The JSON string that starts at ``text[i]`` (a quote): its value and the index after it."""
    match = _STRING.match(text, i)
    if match is None:
        raise ValueError(f"unterminated string at {i}")
    value = json.loads(match.group())
    assert isinstance(value, str)
    return value, match.end()


def _number_spans(text: str) -> dict[tuple[str, ...], tuple[int, int]]:
    """Every number in a JSON text by its path of member names (list items by their index)."""
    spans: dict[tuple[str, ...], tuple[int, int]] = {}

    def skip(i: int) -> int:
        match = _WS.match(text, i)
        assert match is not None
        return match.end()

    def value(i: int, path: tuple[str, ...]) -> int:
        i = skip(i)
        char = text[i]
        if char in "{[":
            close = "}" if char == "{" else "]"
            i = skip(i + 1)
            index = 0
            while text[i] != close:
                if char == "{":
                    key, i = _string(text, i)
                    i = skip(i)
                    if text[i] != ":":
                        raise ValueError(f"expected ':' at {i}")
                    i = value(i + 1, (*path, key))
                else:
                    i = value(i, (*path, str(index)))
                    index += 1
                i = skip(i)
                if text[i] == ",":
                    i = skip(i + 1)
            return i + 1
        if char == '"':
            return _string(text, i)[1]
        number = _NUMBER.match(text, i)
        if number is not None:
            spans[path] = (number.start(), number.end())
            return number.end()
        for word in ("true", "false", "null"):
            if text.startswith(word, i):
                return i + len(word)
        raise ValueError(f"unexpected {text[i]!r} at {i}")

    value(0, ())
    return spans


def advance_json(text: str, add: Mapping[str, int]) -> str:
    """``netstat --libxo json -s -p tcp`` output with each field in ``add`` increased, in place.

    Raises KeyError for a field the sample does not have, ValueError for a sample that does not parse
    or a value that would leave 0..2**64-1.
    """
    present = parse_tcp_stats_json(text)  # checks the sample first
    numbers = _number_spans(text)
    spans: dict[str, tuple[int, int]] = {}
    for (container, key), name in JSON_FIELDS.items():
        if name not in present:
            continue
        path = ("statistics", "tcp", key) if container is None else ("statistics", "tcp", container, key)
        if path in numbers:
            spans[name] = numbers[path]
    return _apply(text, spans, add)


def load(name: str) -> str:
    """A sample file's text, exactly as stored."""
    return (SAMPLES_DIR / name).read_text(encoding="utf-8")


__all__ = ["SAMPLES_DIR", "advance_json", "advance_text", "load"]
