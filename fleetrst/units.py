"""Durations and sizes, read and written the same way everywhere: flags, settings files, messages.

Pure: text in, numbers out, and back.
"""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S: dict[str | None, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    None: 1.0,
}


def parse_duration(text: str, *, maximum: float = math.inf, allow_zero: bool = False) -> float:
    """``10``, ``10s``, ``1m``, ``500ms``, ``7d``, ``2w`` → seconds. Raises ValueError."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (try 10s, 5m, 24h or 7d)")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if not math.isfinite(seconds) or seconds > maximum or (seconds <= 0 and not allow_zero):
        low = "at least 0" if allow_zero else "more than 0"
        high = f", at most {format_duration(maximum)}" if math.isfinite(maximum) else ""
        raise ValueError(f"duration out of range: {text!r} ({low}{high})")
    return seconds


def format_duration(seconds: float) -> str:
    """A setting's duration as a person would write it: ``2s``, ``5m``, ``24h``, ``7d``, ``0.5s``."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def seconds(value: float) -> str:
    """A measured duration for a message: ``10s``, ``2.5s`` (never ``1.99999s``)."""
    return f"{round(value, 1):g}s"


def human_bytes(n: int) -> str:
    """``1 MiB``, ``64 KiB``, ``1000 bytes``: a size limit as a message states it."""
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return f"{n} bytes"


def ascii_digits(text: str) -> bool:
    """Only the digits 0-9, at least one: what ``int()`` of a tool's number needs. ``str.isdigit``
    also accepts ``²`` and other digits ``int()`` refuses, which would crash a parser."""
    return text.isascii() and text.isdigit()
