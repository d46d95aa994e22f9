"""The remote probe: one shell command that reads the counters, sleeps on the host, reads them again.

Both (or, with a baseline, all three) samples come from one remote exec, so one connection and one
round trip measure a window, and the interval is the host's own uptime, not the controller's clock.
The command needs only a POSIX shell, ``cat`` and ``sleep`` (``echo`` is a builtin). Its output is
framed, one marker per line, with a format version::

    @@fleetrst-probe v1 sample 0 of 2
    @@file /proc/net/snmp
    ...the file as cat printed it, or cat's own error message...

    @@rc 0                                  cat's exit status
    @@file /proc/net/netstat
    ...
    @@end 0
    @@sleep 10

    @@rc 0                                  sleep's exit status (anything sleep printed comes before)
    @@fleetrst-probe v1 sample 1 of 2
    ...
    @@end 1

``echo`` prints an empty line after each file before its ``@@rc`` line, so the marker starts a line
even if a file does not end with a newline. Text before the first frame or after the last one (what a
login shell's rc files may print) is ignored; everything inside the frames is checked.
"""

from __future__ import annotations

import math
import re
from numbers import Real

from .counters import (
    BOOT_ID_PATH,
    NETSTAT_PATH,
    SNMP_PATH,
    UPTIME_PATH,
    ProbeParseError,
    parse_boot_id,
    parse_netstat,
    parse_snmp,
    parse_uptime,
    shown,
)
from .model import Snapshot

__all__ = ["FORMAT_VERSION", "MAX_SLEEP_S", "ProbeParseError", "parse_probe_output", "probe_command"]

FORMAT_VERSION = 1
MAX_SLEEP_S = 3600.0
FILES: tuple[str, ...] = (SNMP_PATH, NETSTAT_PATH, UPTIME_PATH, BOOT_ID_PATH)
_MARK = "@@"

_HEADER = re.compile(r"@@fleetrst-probe v([0-9]{1,6}) sample ([0-9]{1,3}) of ([0-9]{1,3})")
_ANY_HEADER = re.compile(r"@@fleetrst-probe\b.*")
_FILE = re.compile(r"@@file (\S+)")
_RC = re.compile(r"@@rc ([0-9]{1,3})")
_END = re.compile(r"@@end ([0-9]{1,3})")
_SLEEP = re.compile(r"@@sleep ([0-9.]{1,12})")


def _seconds(value: object, what: str) -> str:
    """A validated duration as shell text: digits and at most one dot, nothing else can get through."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{what} must be a number of seconds, got {value!r}")
    try:
        seconds = float(value)
    except OverflowError:  # an int too large for a float
        seconds = math.inf
    if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_SLEEP_S:
        raise ValueError(f"{what} must be more than 0 and at most {MAX_SLEEP_S:g} seconds, got {value!r}")
    if seconds.is_integer():
        return str(int(seconds))  # POSIX sleep takes only integers
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")  # GNU and busybox sleep take decimals
    if text == "0":
        raise ValueError(f"{what} must be at least 0.001 seconds, got {value!r}")
    return text


def _sample_script(index: int, total: int) -> list[str]:
    parts = [f"echo '@@fleetrst-probe v{FORMAT_VERSION} sample {index} of {total}'"]
    for path in FILES:
        parts.append(f"echo '@@file {path}'; cat {path} 2>&1; s=$?; echo; echo \"@@rc $s\"")
    parts.append(f"echo '@@end {index}'")
    return parts


def _sleep_script(seconds: str) -> list[str]:
    return [f"echo '@@sleep {seconds}'; sleep {seconds} 2>&1; s=$?; echo; echo \"@@rc $s\""]


def probe_command(window_s: float, baseline_s: float | None = None) -> str:
    """The one shell command that takes the samples: t0, sleep window, t1 — or, with ``baseline_s``,
    t0, sleep baseline, t1, sleep window, t2 (Netdata's spike rule compares the window with the
    baseline interval just before it). Durations: finite, > 0, at most an hour; ``ValueError`` else.
    """
    window = _seconds(window_s, "the window")
    sleeps = [window] if baseline_s is None else [_seconds(baseline_s, "the baseline"), window]
    total = len(sleeps) + 1
    parts = _sample_script(0, total)
    for index, seconds in enumerate(sleeps, start=1):
        parts += _sleep_script(seconds)
        parts += _sample_script(index, total)
    return "; ".join(parts)


class _Reader:
    """The framed output as numbered lines, read front to back."""

    def __init__(self, text: str) -> None:
        self.lines = [line.rstrip("\r") for line in text.split("\n")]
        if self.lines[-1] == "":
            self.lines.pop()  # the final newline ends the last line; it does not start another
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.lines)

    def next(self) -> str | None:
        if self.at_end():
            return None
        line = self.lines[self.pos]
        self.pos += 1
        return line

    def until_marker(self) -> tuple[list[str], str | None]:
        """Lines up to the next marker line, and that marker (None: the output ended first)."""
        body: list[str] = []
        while (line := self.next()) is not None:
            if line.startswith(_MARK):
                return body, line
            body.append(line)
        return body, None


def _body(lines: list[str]) -> str:
    # The probe echoes one empty line before each @@rc: drop it, keep the rest as the file's text.
    if lines and lines[-1] == "":
        lines = lines[:-1]
    return "\n".join(lines) + "\n" if lines else ""


def _one_line(lines: list[str]) -> str:
    said = " ".join(line.strip() for line in lines if line.strip())
    said = "".join(char if char.isprintable() else " " for char in said)
    return said[:200] + ("…" if len(said) > 200 else "") if said else "no message"


def _find_first_header(reader: _Reader) -> str:
    while (line := reader.next()) is not None:
        if _ANY_HEADER.fullmatch(line):
            return line
    raise ProbeParseError("no fleetrst probe output (no '@@fleetrst-probe' line)")


def _read_sample(reader: _Reader, index: int, total: int) -> Snapshot:
    texts: dict[str, str] = {}
    for path in FILES:
        line = reader.next()
        if line is None:
            raise ProbeParseError(f"sample {index} is cut short before {path}")
        match = _FILE.fullmatch(line)
        if not match or match.group(1) != path:
            raise ProbeParseError(f"sample {index}: expected '@@file {path}', got {shown(line)}")
        body, marker = reader.until_marker()
        if marker is None:
            raise ProbeParseError(f"sample {index} is cut short inside {path}")
        rc = _RC.fullmatch(marker)
        if not rc:
            raise ProbeParseError(f"sample {index}: unexpected {shown(marker)} inside {path}")
        if rc.group(1) != "0":
            raise ProbeParseError(f"could not read {path}: {_one_line(body)}")
        texts[path] = _body(body)
    line = reader.next()
    if line is None:
        raise ProbeParseError(f"sample {index} is cut short before its end marker")
    end = _END.fullmatch(line)
    if not end or int(end.group(1)) != index:
        raise ProbeParseError(f"sample {index}: expected '@@end {index}', got {shown(line)}")
    try:
        return Snapshot(
            tcp=parse_snmp(texts[SNMP_PATH]),
            tcpext=parse_netstat(texts[NETSTAT_PATH]),
            uptime_s=parse_uptime(texts[UPTIME_PATH]),
            boot_id=parse_boot_id(texts[BOOT_ID_PATH]),
        )
    except ProbeParseError as error:
        if total == 1:
            raise
        raise ProbeParseError(f"{error} (sample {index})") from None


def _read_sleep(reader: _Reader, after: int) -> None:
    line = reader.next()
    if line is None:
        raise ProbeParseError(f"sample {after + 1} is missing (output ends after sample {after})")
    sleep = _SLEEP.fullmatch(line)
    if not sleep:
        raise ProbeParseError(f"after sample {after}: expected '@@sleep', got {shown(line)}")
    body, marker = reader.until_marker()
    if marker is None:
        raise ProbeParseError(
            f"sample {after + 1} is missing (output ends during the sleep after sample {after})"
        )
    rc = _RC.fullmatch(marker)
    if not rc:
        raise ProbeParseError(f"after sample {after}: unexpected {shown(marker)} during the sleep")
    if rc.group(1) != "0":
        raise ProbeParseError(f"the remote 'sleep {sleep.group(1)}' failed: {_one_line(body)}")


def parse_probe_output(text: str) -> list[Snapshot]:
    """The snapshots in a probe's output, in order (two, or three with a baseline).

    Raises :class:`ProbeParseError` — and nothing else, whatever the text — with one line that says
    what is wrong: a file that could not be read (cat's own message), a file that could not be parsed
    (which file, which line, which sample), or output that ends early.
    """
    if not isinstance(text, str):
        raise ProbeParseError(f"probe output must be text, got {type(text).__name__}")
    reader = _Reader(text)
    header = _HEADER.fullmatch(_find_first_header(reader))
    if not header:
        raise ProbeParseError("unreadable probe header (expected '@@fleetrst-probe v1 sample 0 of N')")
    version, first, total = (int(group) for group in header.groups())
    if version != FORMAT_VERSION:
        raise ProbeParseError(
            f"unsupported probe output format v{version} (this fleetrst reads v{FORMAT_VERSION})"
        )
    if first != 0 or total < 1:
        raise ProbeParseError(f"the first probe sample is 'sample {first} of {total}', not 'sample 0'")
    snapshots = [_read_sample(reader, 0, total)]
    for index in range(1, total):
        _read_sleep(reader, index - 1)
        line = reader.next()
        if line is None:
            raise ProbeParseError(f"sample {index} is missing (output ends after sample {index - 1})")
        header = _HEADER.fullmatch(line)
        if not header or header.groups() != (str(FORMAT_VERSION), str(index), str(total)):
            expected = f"@@fleetrst-probe v{FORMAT_VERSION} sample {index} of {total}"
            raise ProbeParseError(f"expected {expected!r}, got {shown(line)}")
        snapshots.append(_read_sample(reader, index, total))
    return snapshots
