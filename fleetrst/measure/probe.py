"""The remote probe: one shell command that reads the counters, sleeps on the host, reads them again.

Both (or, with a baseline, all three) samples come from one remote exec, so one connection and one
round trip measure a window, and the interval is the host's own uptime, not the controller's clock.
The command needs only a POSIX shell, ``cat`` and ``sleep`` (``echo`` is a builtin), and starts one
``cat`` per sample and one ``sleep`` per interval: on a host that runs many probes at once, every
fork+exec counts. Its output is framed, one marker per line, with a format version::

    @@fleetrst-probe v2 sample 0 of 2
    ...what `cat /proc/net/snmp /proc/net/netstat /proc/uptime /proc/sys/kernel/random/boot_id 2>&1`
    printed: the four files one after the other, or cat's own error line for a file it could not read...

    @@rc 0                                  cat's exit status
    @@end 0
    @@sleep 10

    @@rc 0                                  sleep's exit status (anything sleep printed comes before)
    @@fleetrst-probe v2 sample 1 of 2
    ...
    @@end 1

``echo`` prints an empty line before each ``@@rc`` line, so the marker starts a line even if the output
does not end with a newline. The parser splits cat's output back into the four files by their content,
so an error names the right file and the line within it: the files come in that order,
``/proc/net/netstat`` starts at the first line whose first word is ``TcpExt:`` (``IpExt:`` or
``MPTcpExt:`` if there is no ``TcpExt:``), and the last two non-empty lines are ``/proc/uptime`` then
the boot id. When cat fails, the file it names in its message is the one reported. Text before the
first frame or after the last one (what a login shell's rc files may print) is ignored; everything
inside the frames is checked.
"""

from __future__ import annotations

import math
import re
from numbers import Real

from ..model import Snapshot
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

__all__ = [
    "FORMAT_VERSION",
    "MAX_SLEEP_S",
    "ProbeParseError",
    "WatchFrames",
    "parse_probe_output",
    "probe_command",
    "watch_command",
]

FORMAT_VERSION = 2
MAX_SLEEP_S = 3600.0
FILES: tuple[str, ...] = (SNMP_PATH, NETSTAT_PATH, UPTIME_PATH, BOOT_ID_PATH)
_MARK = "@@"

_HEADER = re.compile(r"@@fleetrst-probe v([0-9]{1,6}) sample ([0-9]{1,3}) of ([0-9]{1,3})")
_ANY_HEADER = re.compile(r"@@fleetrst-probe\b.*")
# Where /proc/net/netstat starts in cat's output: its first TcpExt line, else its first IpExt/MPTcpExt one.
_NETSTAT_FIRST = "TcpExt:"
_NETSTAT_OTHERS = frozenset({"IpExt:", "MPTcpExt:"})
# A path of ours as cat names it: "cat: /proc/uptime: ..." (GNU), "cat: can't open '/proc/uptime': ..."
# (busybox). Not a prefix of a longer path.
_NAMED_PATH = re.compile(r"(?<![\w/.-])(" + "|".join(re.escape(path) for path in FILES) + r")(?![\w/.-])")
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
    return [
        f"echo '@@fleetrst-probe v{FORMAT_VERSION} sample {index} of {total}'",
        f'cat {" ".join(FILES)} 2>&1; s=$?; echo; echo "@@rc $s"',
        f"echo '@@end {index}'",
    ]


def _sleep_script(seconds: str) -> list[str]:
    # In the background and waited for, so that the trap below can end it at once.
    return [f"echo '@@sleep {seconds}'; sleep {seconds} 2>&1 & p=$!; wait $p; s=$?; echo; echo \"@@rc $s\""]


# A stopped sweep signals the remote command (SIGTERM over the channel) and closes the connection:
# the shell then ends its sleep too, instead of leaving it for the rest of the window.
_TRAP = "trap 'kill $p 2>/dev/null; exit 143' HUP INT TERM PIPE"


def probe_command(window_s: float, baseline_s: float | None = None) -> str:
    """The one shell command that takes the samples: t0, sleep window, t1 — or, with ``baseline_s``,
    t0, sleep baseline, t1, sleep window, t2 (Netdata's spike rule compares the window with the
    baseline interval just before it). Durations: finite, > 0, at most an hour; ``ValueError`` else.
    """
    window = _seconds(window_s, "the window")
    sleeps = [window] if baseline_s is None else [_seconds(baseline_s, "the baseline"), window]
    total = len(sleeps) + 1
    parts = [_TRAP, *_sample_script(0, total)]
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


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def _split_files(lines: list[str]) -> dict[str, str]:
    """cat's output of the four files, back as one text per file (line 1 is each file's first line)."""
    filled = [number for number, line in enumerate(lines) if line.strip()]
    boot_at = filled[-1] if filled else len(lines)
    uptime_at = filled[-2] if len(filled) >= 2 else boot_at
    netstat_at = other_at = uptime_at
    for number in range(uptime_at):
        word = lines[number].split(" ", 1)[0]
        if word == _NETSTAT_FIRST:
            netstat_at = number
            break
        if word in _NETSTAT_OTHERS and other_at == uptime_at:
            other_at = number
    else:
        netstat_at = other_at
    return {
        SNMP_PATH: _text(lines[:netstat_at]),
        NETSTAT_PATH: _text(lines[netstat_at:uptime_at]),
        UPTIME_PATH: _text(lines[uptime_at:boot_at]),
        BOOT_ID_PATH: _text(lines[boot_at:]),
    }


def _cat_failed(lines: list[str], status: str) -> ProbeParseError:
    """cat's own words for the file(s) it could not read, not the text of those it could."""
    said = [line for line in lines if _NAMED_PATH.search(line) or line.startswith("cat:")]
    named = {match.group(1) for line in said for match in _NAMED_PATH.finditer(line)}
    paths = ", ".join(path for path in FILES if path in named)
    if paths:
        return ProbeParseError(f"could not read {paths}: {_one_line(said)}")
    return ProbeParseError(
        f"could not read the counter files (cat's status {status}): {_one_line(said or lines)}"
    )


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
    body, marker = reader.until_marker()
    if marker is None:
        raise ProbeParseError(f"sample {index} is cut short while the counter files are read")
    rc = _RC.fullmatch(marker)
    if not rc:
        raise ProbeParseError(f"sample {index}: unexpected {shown(marker)} among the counter files")
    if body and body[-1] == "":
        body.pop()  # the empty line the probe echoes before @@rc
    if rc.group(1) != "0":
        raise _cat_failed(body, rc.group(1))
    line = reader.next()
    if line is None:
        raise ProbeParseError(f"sample {index} is cut short before its end marker")
    end = _END.fullmatch(line)
    if not end or int(end.group(1)) != index:
        raise ProbeParseError(f"sample {index}: expected '@@end {index}', got {shown(line)}")
    texts = _split_files(body)
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
        raise ProbeParseError(
            f"unreadable probe header (expected '@@fleetrst-probe v{FORMAT_VERSION} sample 0 of N')"
        )
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


# --- the watch loop: the same sample, streamed every few seconds over one exec ---------------------

WATCH_HEADER = re.compile(r"@@fleetrst-watch v([0-9]{1,6}) sample ([0-9]{1,9})")
MAX_WATCH_ROUNDS = 100_000  # the remote loop ends by itself after this many samples (the client restarts it)


def watch_command(every_s: float, rounds: int = MAX_WATCH_ROUNDS) -> str:
    """A remote loop that prints one framed sample every ``every_s`` seconds, ``rounds`` times at most.

    It writes every round, so when the connection goes it dies of SIGPIPE on its next write (a channel
    without a pty gets no SIGHUP), and the trap ends its sleep when the client signals it. Like the
    probe it needs only a POSIX shell, ``cat`` and ``sleep``; the only values in it are numbers checked
    here. A frame is the probe's sample under a watch header::

        @@fleetrst-watch v2 sample 7
        ...cat of the four files...
        @@rc 0
        @@end 7
    """
    every = _seconds(every_s, "the interval")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_WATCH_ROUNDS:
        raise ValueError(f"rounds must be a whole number from 1 to {MAX_WATCH_ROUNDS}, got {rounds!r}")
    return "; ".join(
        [
            _TRAP,
            "i=0",
            f"while [ $i -lt {rounds} ]; do "
            f'echo "@@fleetrst-watch v{FORMAT_VERSION} sample $i"; '
            f'cat {" ".join(FILES)} 2>&1; s=$?; echo; echo "@@rc $s"; echo "@@end $i"; '
            f"sleep {every} & p=$!; wait $p; i=$((i + 1)); done",
        ]
    )


class WatchFrames:
    """The watch loop's output, fed line by line as it arrives; each complete frame comes out as a
    snapshot. Text outside frames (a login banner) is ignored; a frame that cannot be parsed raises
    :class:`ProbeParseError` naming the sample, and the next frame is read afresh. A frame is at most
    ``max_lines`` lines (the four files are about 30): more is garbage, not a frame."""

    def __init__(self, max_lines: int = 2000) -> None:
        self.max_lines = max_lines
        self._lines: list[str] | None = None
        self._index = -1

    def feed(self, line: str) -> tuple[int, Snapshot] | None:
        """One line (without its newline); a ``(sample index, snapshot)`` when it ends a frame."""
        line = line.rstrip("\r")
        header = WATCH_HEADER.fullmatch(line)
        if header:
            if int(header.group(1)) != FORMAT_VERSION:
                raise ProbeParseError(
                    f"unsupported watch output format v{header.group(1)} (this fleetrst reads "
                    f"v{FORMAT_VERSION})"
                )
            self._lines, self._index = [], int(header.group(2))
            return None
        if self._lines is None:
            return None  # outside a frame
        self._lines.append(line)
        if len(self._lines) > self.max_lines:
            self._lines = None
            raise ProbeParseError(f"sample {self._index}: more than {self.max_lines} lines in one frame")
        if not _END.fullmatch(line):
            return None
        lines, self._lines = self._lines, None
        reader = _Reader("\n".join(lines) + "\n")
        return self._index, _read_sample(reader, self._index, 2)
