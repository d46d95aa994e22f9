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

On FreeBSD (no ``/proc/net/snmp``: the command tells the two systems apart with one ``test``, no
program started) a sample is instead the host's clock (``date``), its boot time (``sysctl -n
kern.boottime``) and its TCP statistics (``netstat -s -p tcp``, in libxo's JSON where netstat has it),
in the same frames: :mod:`fleetrst.measure.freebsd` reads them and maps them to the Linux names the
rules judge, as Netdata's FreeBSD collector does. The interval is the host's uptime clock there too
(its time now less its boot time).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from numbers import Real

from ..model import NameIndex, Packed, Snapshot, names_of, packed_ints, picker
from .counters import (
    _U64_MAX,
    _UPTIME,
    BOOT_ID_PATH,
    NETSTAT_PATH,
    SNMP_PATH,
    UPTIME_PATH,
    ProbeParseError,
    parse_boot_id,
    parse_netstat,
    parse_snmp,
    parse_uptime,
    plain_values,
    shown,
)
from .freebsd import SAMPLE_COMMAND as FREEBSD_SAMPLE
from .freebsd import looks_like_freebsd, parse_freebsd_sample
from .namespaces import BEGIN_LIST, listing_command, sample_command
from .namespaces import END as NETNS_END

NETNS_FRAME = BEGIN_LIST.rsplit(" ", 2)[0] + " v"  # "@@fleetrst-netns v": where a namespace block starts

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
_END = re.compile(r"@@end ([0-9]{1,9})")  # the watch loop counts past 999 (the probe: 3 at most)
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


# Which system: one test, no program started. Linux has /proc/net/snmp; FreeBSD has no /proc/net (its
# linprocfs, where mounted, is under /compat/linux/proc and has no net/snmp). ``r`` then reads one sample:
# on Linux the four files with one ``cat``; on FreeBSD the clock, the boot time and the TCP statistics
# (``netstat -s -p tcp``, as libxo JSON where netstat has it). See :mod:`fleetrst.measure.freebsd`.
_LINUX = f"[ -r {SNMP_PATH} ]"
_READER = f"if {_LINUX}; then r() {{ cat {' '.join(FILES)} 2>&1; }}; else r() {{ {FREEBSD_SAMPLE}; }}; fi"
_NO_NAMESPACES = "@@unseen not Linux: FreeBSD jails with a network stack of their own (VNET) are not read"


def _sample_script(index: int, total: int) -> list[str]:
    return [
        f"echo '@@fleetrst-probe v{FORMAT_VERSION} sample {index} of {total}'",
        'r; s=$?; echo; echo "@@rc $s"',
        f"echo '@@end {index}'",
    ]


def _sleep_script(seconds: str) -> list[str]:
    # In the background and waited for, so that the trap below can end it at once.
    return [f"echo '@@sleep {seconds}'; sleep {seconds} 2>&1 & p=$!; wait $p; s=$?; echo; echo \"@@rc $s\""]


# A stopped sweep signals the remote command (SIGTERM over the channel) and closes the connection:
# the shell then ends its sleep too, instead of leaving it for the rest of the window. ``$!`` as well
# as ``p``: a signal that comes between ``sleep N &`` and ``p=$!`` finds ``p`` still the last sleep's.
_TRAP = "trap 'kill $p $! 2>/dev/null; exit 143' HUP INT TERM PIPE"


def probe_command(
    window_s: float,
    baseline_s: float | None = None,
    *,
    containers: bool = False,
    become_user: str | None = None,
) -> str:
    """The one shell command that takes the samples: t0, sleep window, t1 — or, with ``baseline_s``,
    t0, sleep baseline, t1, sleep window, t2 (Netdata's spike rule compares the window with the
    baseline interval just before it). Durations: finite, > 0, at most an hour; ``ValueError`` else.

    With ``containers``, the same exec also lists the host's other network namespaces before the
    first sample and reads them after each sample (:mod:`fleetrst.measure.namespaces`): as the
    probe's user when it is root, else through ``sudo -n -u become_user`` when that is given.
    Without it the command is exactly what it always was.
    """
    window = _seconds(window_s, "the window")
    sleeps = [window] if baseline_s is None else [_seconds(baseline_s, "the baseline"), window]
    total = len(sleeps) + 1
    parts = [_TRAP, _READER]
    if containers:
        hold = sum(float(s) for s in sleeps) + 10.0  # a bind-only namespace's holder outlives the probe
        listing = listing_command(f"{hold:.0f}", become_user)
        parts.append(
            f"if {_LINUX}; then {listing}; else NP=; echo '{BEGIN_LIST}'; echo '{_NO_NAMESPACES}'; "
            f"echo '{NETNS_END} list'; fi"
        )
    parts += _sample_script(0, total)
    if containers:
        parts.append(sample_command(0))
    for index, seconds in enumerate(sleeps, start=1):
        parts += _sleep_script(seconds)
        parts += _sample_script(index, total)
        if containers:
            parts.append(sample_command(index))
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


def _file_starts(lines: list[str]) -> tuple[int, int, int]:
    """Where cat's output of the four files has /proc/net/netstat, /proc/uptime and boot_id begin."""
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
    return netstat_at, uptime_at, boot_at


def _split_files(lines: list[str]) -> dict[str, str]:
    """cat's output of the four files, back as one text per file (line 1 is each file's first line)."""
    netstat_at, uptime_at, boot_at = _file_starts(lines)
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
    freebsd = looks_like_freebsd(body)
    if rc.group(1) != "0":
        if freebsd:
            raise ProbeParseError(f"netstat -s -p tcp failed (status {rc.group(1)}): {_one_line(body[2:])}")
        raise _cat_failed(body, rc.group(1))
    line = reader.next()
    if line is None:
        raise ProbeParseError(f"sample {index} is cut short before its end marker")
    end = _END.fullmatch(line)
    if not end or int(end.group(1)) != index:
        raise ProbeParseError(f"sample {index}: expected '@@end {index}', got {shown(line)}")
    try:
        if freebsd:
            return parse_freebsd_sample(body)
        texts = _split_files(body)
        snapshot = Snapshot(
            tcp=parse_snmp(texts[SNMP_PATH]),
            tcpext=parse_netstat(texts[NETSTAT_PATH]),
            uptime_s=parse_uptime(texts[UPTIME_PATH]),
            boot_id=parse_boot_id(texts[BOOT_ID_PATH]),
        )
        _learn_sample_layout(body)
        return snapshot
    except ProbeParseError as error:
        if total == 1:
            raise
        raise ProbeParseError(f"{error} (sample {index})") from None


def _read_sleep(reader: _Reader, after: int) -> None:
    line = reader.next()
    while line is not None and line.startswith(NETNS_FRAME):  # the namespaces' block: read elsewhere
        while (line := reader.next()) is not None and not line.startswith(NETNS_END):
            pass
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
    known = _parse_known(text)
    if known is not None:
        return known
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


# --- the cheap path: a probe's samples read at the places of a good sample of the same kernel ---------


@dataclass(frozen=True, eq=False)
class _SampleLayout:
    """Where a probe sample (cat's output of the four files) has what the full parser reads, learnt from
    one it accepted: the hosts of one kernel print the same lines in the same places. A sample of the
    same layout is read there with the same checks, and gives the same snapshot; anything else (another
    line, another header, a value that is not plain) goes through the full parser, which says what is
    wrong. The first word of every line but the last two is part of the layout: it is what the full
    parser finds the files and the ``Tcp:``/``TcpExt:`` lines by."""

    lines: int
    words: list[str]  # the first word (up to the first space) of every line but uptime's and boot_id's
    tcp_at: int  # the Tcp: header line; its value line follows
    tcp_head: str
    tcp_names: NameIndex
    tcpext_at: int
    tcpext_head: str
    tcpext_names: NameIndex


# The layouts last learnt, newest first: a fleet has a handful of kernels. A tuple, replaced whole (a
# Dask worker may parse in several threads).
_SAMPLE_LAYOUTS: tuple[_SampleLayout, ...] = ()
_MAX_SAMPLE_LAYOUTS = 8


def _first_words(lines: list[str]) -> list[str]:
    return [line.split(" ", 1)[0] for line in lines]


def _learn_sample_layout(body: list[str]) -> None:
    """Keep the layout of a Linux sample the full parser has just read (``body``: cat's lines)."""
    global _SAMPLE_LAYOUTS
    n = len(body)
    if n < 4 or not all(map(str.strip, body)):
        return  # no kernel prints a blank line there: such a sample is left to the full parser
    netstat_at, uptime_at, _ = _file_starts(body)
    words = _first_words(body[: n - 2])
    tcp_at = next((i for i in range(netstat_at) if words[i] == "Tcp:"), None)
    tcpext_at = next((i for i in range(netstat_at, uptime_at) if words[i] == "TcpExt:"), None)
    if tcp_at is None or tcpext_at is None or uptime_at != n - 2:
        return
    layout = _SampleLayout(
        lines=n,
        words=words,
        tcp_at=tcp_at,
        tcp_head=body[tcp_at],
        tcp_names=names_of(body[tcp_at].split()[1:]),
        tcpext_at=tcpext_at,
        tcpext_head=body[tcpext_at],
        tcpext_names=names_of(body[tcpext_at].split()[1:]),
    )
    same = (layout.lines, layout.words, layout.tcp_head, layout.tcpext_head)
    others = [k for k in _SAMPLE_LAYOUTS if (k.lines, k.words, k.tcp_head, k.tcpext_head) != same]
    _SAMPLE_LAYOUTS = (layout, *others[: _MAX_SAMPLE_LAYOUTS - 1])


def _known_sample(layout: _SampleLayout, body: list[str]) -> Snapshot | None:
    """``body`` read at ``layout``'s places: the full parser's snapshot, or None (then it reads it).

    Where the files start depends on which lines are blank only through the last two (uptime and
    boot_id), and a blank one of those is refused below; the first words place the rest."""
    if (
        len(body) != layout.lines
        or body[layout.tcp_at] != layout.tcp_head
        or body[layout.tcpext_at] != layout.tcpext_head
        or looks_like_freebsd(body)
        or _first_words(body[:-2]) != layout.words
    ):
        return None
    tcp_names, tcpext_names = layout.tcp_names.names, layout.tcpext_names.names
    tcp_numbers = body[layout.tcp_at + 1].split()[1:]
    tcpext_numbers = body[layout.tcpext_at + 1].split()[1:]
    if len(tcp_numbers) != len(tcp_names) or len(tcpext_numbers) != len(tcpext_names):
        return None
    tcp = plain_values(tcp_names, tcp_numbers)
    tcpext = plain_values(tcpext_names, tcpext_numbers)
    if tcp is None or tcpext is None:
        return None
    try:
        uptime_s = parse_uptime(body[-2] + "\n")
        boot_id = parse_boot_id(body[-1] + "\n")
    except ProbeParseError:
        return None
    return Snapshot(
        tcp=Packed(layout.tcp_names, packed_ints(tcp)),
        tcpext=Packed(layout.tcpext_names, packed_ints(tcpext)),
        uptime_s=uptime_s,
        boot_id=boot_id,
    )


def _probe_header(index: int, total: int) -> str:
    return f"@@fleetrst-probe v{FORMAT_VERSION} sample {index} of {total}"


_HEADERS_0 = {_probe_header(0, total): total for total in (2, 3)}  # the probes fleetrst sends


def _parse_known(text: str) -> list[Snapshot] | None:
    """What :func:`parse_probe_output` gives, for output framed as the probe frames it and samples of
    a known layout; None for anything else (then the full parser reads it)."""
    layouts = _SAMPLE_LAYOUTS
    if not layouts or "\r" in text:
        return None
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith("@@fleetrst-probe")), None)
    if start is None or (total := _HEADERS_0.get(lines[start])) is None:
        return None
    at = start + 1
    snapshots: list[Snapshot] = []
    for index in range(total):
        snapshot = None
        for layout in layouts:
            end = at + layout.lines
            if lines[end : end + 3] == ["", "@@rc 0", f"@@end {index}"]:
                snapshot = _known_sample(layout, lines[at:end])
                if snapshot is not None:
                    at = end + 3
                    break
        if snapshot is None:
            return None
        snapshots.append(snapshot)
        if index == total - 1:
            return snapshots
        while at < len(lines) and lines[at].startswith(NETNS_FRAME):  # the namespaces' block
            at += 1
            while at < len(lines) and not lines[at].startswith(NETNS_END):
                at += 1
            at += 1
        if (
            at >= len(lines)
            or not _SLEEP.fullmatch(lines[at])
            or lines[at + 1 : at + 4] != ["", "@@rc 0", _probe_header(index + 1, total)]
        ):
            return None
        at += 4
    return None


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

    Each frame is gathered in a command substitution and printed by one ``printf``: with dash (Debian's
    ``/bin/sh``) that is one write, so sshd sends it as one SSH packet and the controller wakes once a
    round per host, not once per line (this is most of a watched host's client CPU).
    """
    every = _seconds(every_s, "the interval")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_WATCH_ROUNDS:
        raise ValueError(f"rounds must be a whole number from 1 to {MAX_WATCH_ROUNDS}, got {rounds!r}")
    return "; ".join(
        [
            _TRAP,
            _READER,
            "i=0",
            f"while [ $i -lt {rounds} ]; do "
            f'f=$(echo "@@fleetrst-watch v{FORMAT_VERSION} sample $i"; '
            f'r; s=$?; echo; echo "@@rc $s"; echo "@@end $i"); '
            "printf '%s\\n' \"$f\"; "
            f"sleep {every} & p=$!; wait $p; i=$((i + 1)); done",
        ]
    )


# A picker of the kept values of a value line (its tokens): they come out as a tuple, whatever their number.
_Picker = Callable[[Sequence[str]], tuple[str, ...]]


@dataclass(frozen=True)
class _Layout:
    """Where a host's frames keep their values, learnt from a frame the full parser accepted.

    The kernel prints the same lines in the same places every round, so the next frames of the same
    host are read at these places: only the values that are kept, checked as the full parser checks
    them. Anything else (another line count, another header line, a value that is not a plain number)
    sends the frame through the full parser, which says what is wrong.
    """

    lines: int
    tcp_at: int
    tcp_head: str
    tcp_fields: int
    tcp_names: tuple[str, ...]  # the kept Tcp counters ...
    tcp_columns: tuple[int, ...]  # ... and where their values are on the value line
    tcpext_at: int
    tcpext_head: str
    tcpext_fields: int
    tcpext_names: tuple[str, ...]
    tcpext_columns: tuple[int, ...]
    uptime_at: int
    boot_at: int
    # How the values are read: a picker of the kept columns, and a dict of the kept names to copy and
    # fill (a copy of a dict of the same keys is made whole, where a new dict grows as it is filled).
    tcp_pick: _Picker = field(init=False, repr=False, compare=False)
    tcpext_pick: _Picker = field(init=False, repr=False, compare=False)
    tcp_template: dict[str, int] = field(init=False, repr=False, compare=False)
    tcpext_template: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tcp_pick", picker(self.tcp_columns))
        object.__setattr__(self, "tcpext_pick", picker(self.tcpext_columns))
        object.__setattr__(self, "tcp_template", dict.fromkeys(self.tcp_names, 0))
        object.__setattr__(self, "tcpext_template", dict.fromkeys(self.tcpext_names, 0))


def _first_line(lines: list[str], tag: str, end: int) -> int | None:
    for number in range(end):
        if lines[number].split(" ", 1)[0] == tag:
            return number
    return None


# Layouts by everything they are made of: the hosts of one kernel share one (a watch of thousands of
# hosts holds a handful). Bounded: a fleet has few kernels, a hostile host cannot grow it without end.
_LAYOUTS: dict[tuple[object, ...], _Layout] = {}
_MAX_LAYOUTS = 256


def _learn_layout(lines: list[str], keep: frozenset[str] | None) -> _Layout | None:
    """The layout of a frame the full parser accepted (``lines``: header excluded, ``@@end`` included)."""
    n = len(lines)
    if n < 6 or lines[-2] != "@@rc 0" or lines[-3] != "":
        return None
    body = n - 3  # the cat output: lines[:body]
    filled = [number for number in range(body) if lines[number].strip()]
    if len(filled) < 2 or any(line.startswith(_MARK) for line in lines[:body]):
        return None
    tcp_at = _first_line(lines, "Tcp:", body - 1)
    tcpext_at = _first_line(lines, "TcpExt:", body - 1)
    if tcp_at is None or tcpext_at is None:
        return None

    key = (n, tcp_at, tcpext_at, filled[-2], filled[-1], lines[tcp_at], lines[tcpext_at], keep)
    known = _LAYOUTS.get(key)
    if known is not None:
        return known

    def kept(at: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
        names = [sys.intern(name) for name in lines[at].split()[1:]]
        pairs = [(name, column) for column, name in enumerate(names, 1) if keep is None or name in keep]
        return tuple(name for name, _ in pairs), tuple(column for _, column in pairs)

    tcp_names, tcp_columns = kept(tcp_at)
    tcpext_names, tcpext_columns = kept(tcpext_at)

    if len(_LAYOUTS) >= _MAX_LAYOUTS:
        _LAYOUTS.clear()
    _LAYOUTS[key] = layout = _Layout(
        lines=n,
        tcp_at=tcp_at,
        tcp_head=lines[tcp_at],
        tcp_fields=len(lines[tcp_at].split()),
        tcp_names=tcp_names,
        tcp_columns=tcp_columns,
        tcpext_at=tcpext_at,
        tcpext_head=lines[tcpext_at],
        tcpext_fields=len(lines[tcpext_at].split()),
        tcpext_names=tcpext_names,
        tcpext_columns=tcpext_columns,
        uptime_at=filled[-2],
        boot_at=filled[-1],
    )
    return layout


def _plain_values(
    line: str, tag: str, fields: int, names: tuple[str, ...], pick: _Picker, template: dict[str, int]
) -> dict[str, int] | None:
    """The kept values of a value line when they are all plain numbers (ASCII digits, at most 20, at
    most 2**64 - 1); None for anything else (a sign, a letter, one value too many): the full parser
    then reads the frame and says what is wrong, or takes a signed value (MaxConn) as it should."""
    tokens = line.split()
    if len(tokens) != fields or tokens[0] != tag:
        return None
    picked = pick(tokens)
    if not picked:
        return {}
    # Plain digits (the full parser's fast path), at most 20 of them, at most 2**64 - 1: only leading
    # zeros make a number of more than 20 digits that is not over 2**64 - 1.
    joined = "".join(picked)
    if not (joined.isascii() and joined.isdigit()):
        return None
    values = [*map(int, picked)]
    if max(values) > _U64_MAX or (len(joined) > 20 and max(map(len, picked)) > 20):
        return None
    counters = template.copy()
    counters.update(zip(names, values, strict=True))
    return counters


class WatchFrames:
    """The watch loop's output, fed line by line as it arrives; each complete frame comes out as a
    snapshot. Text outside frames (a login banner) is ignored; a frame that cannot be parsed raises
    :class:`ProbeParseError` naming the sample, and the next frame is read afresh. A frame is at most
    ``max_lines`` lines (the four files are about 30): more is garbage, not a frame.

    ``keep``: the ``Tcp``/``TcpExt`` counters the snapshots hold (None: all of them). A watch keeps a
    few dozen of the ~150 a kernel prints: what its rules judge and what it serves, so that a host's
    minute of samples stays small and its rates are quick to take. The first frame is read by the
    probe's full parser; later frames with the same layout are read at the places it found (see
    :class:`_Layout`), with the same checks on the values they take.

    :meth:`feed` runs for every line of every host's every round: a line of a frame's body is only
    kept as it came (a ``\\r`` before its newline is dropped where the full parser reads it, or where
    the fast path compares or splits it, to the same effect), and the frame is read when it ends.
    """

    def __init__(self, max_lines: int = 2000, keep: Collection[str] | None = None) -> None:
        self.max_lines = max_lines
        self.keep = frozenset(keep) if keep is not None else None
        self._lines: list[str] | None = None
        self._index = -1
        self._end = ""  # the end marker of the frame being read: "@@end <index>"
        self._layout: _Layout | None = None
        self._boot_line = ""
        self._boot_id = ""

    def feed(self, line: str) -> tuple[int, Snapshot] | None:
        """One line (without its newline); a ``(sample index, snapshot)`` when it ends a frame."""
        frame = self._lines
        if line[:1] != "@":  # the body of a frame (no marker starts otherwise), or text outside one
            if frame is not None:
                frame.append(line)
                if len(frame) > self.max_lines:
                    self._lines = None
                    raise ProbeParseError(
                        f"sample {self._index}: more than {self.max_lines} lines in one frame"
                    )
            return None
        line = line.rstrip("\r")
        if line.startswith("@@fleetrst-watch"):
            header = WATCH_HEADER.fullmatch(line)
            if header:
                if int(header.group(1)) != FORMAT_VERSION:
                    raise ProbeParseError(
                        f"unsupported watch output format v{header.group(1)} (this fleetrst reads "
                        f"v{FORMAT_VERSION})"
                    )
                self._index = int(header.group(2))
                self._lines, self._end = [], f"@@end {self._index}"
                return None
        if frame is None:
            return None  # outside a frame
        frame.append(line)
        if len(frame) > self.max_lines:
            self._lines = None
            raise ProbeParseError(f"sample {self._index}: more than {self.max_lines} lines in one frame")
        if line != self._end and (not line.startswith("@@end") or not _END.fullmatch(line)):
            return None
        self._lines = None
        snapshot = self._read_known(frame) if line == self._end else None
        if snapshot is None:
            self._layout = None
            lines = [line.rstrip("\r") for line in frame]
            reader = _Reader("\n".join(lines) + "\n")
            snapshot = self._kept(_read_sample(reader, self._index, 2))
            self._layout = _learn_layout(lines, self.keep)
        return self._index, snapshot

    def whole(self, lines: list[str]) -> tuple[int, Snapshot] | None:
        """What feeding ``lines`` one by one gives, when they are exactly one whole frame of the known
        layout (how a frame usually arrives: one write on the host, one packet); None otherwise, and
        nothing has changed: feed them one by one. The same checks as :meth:`feed`, but per frame."""
        layout = self._layout
        if layout is None or self._lines is not None or not 3 < len(lines) <= self.max_lines + 1:
            return None
        header = WATCH_HEADER.fullmatch(lines[0].rstrip("\r"))
        if header is None or int(header.group(1)) != FORMAT_VERSION:
            return None
        index = int(header.group(2))
        end = f"@@end {index}"
        # feed() reads a body line starting with "@" as a possible marker: none but "@@rc" may be there.
        if lines[-1] != end or any(map(str.startswith, lines[1:-2], repeat("@"))):
            return None
        snapshot = self._read_known(lines[1:])
        if snapshot is None:
            return None
        self._index, self._end = index, end
        return index, snapshot

    def _kept(self, snapshot: Snapshot) -> Snapshot:
        if self.keep is None:
            return snapshot
        keep = self.keep
        return Snapshot(
            tcp={sys.intern(k): v for k, v in snapshot.tcp.items() if k in keep},
            tcpext={sys.intern(k): v for k, v in snapshot.tcpext.items() if k in keep},
            uptime_s=snapshot.uptime_s,
            boot_id=snapshot.boot_id,
        )

    def _read_known(self, lines: list[str]) -> Snapshot | None:
        """The frame read at the places of the last good frame's layout; None to use the full parser.
        (``lines`` as they came: a line with a ``\\r`` the full parser would drop does not match a line
        of the layout, and ``split()`` drops it from the others, as the full parser does.)"""
        layout = self._layout
        if (
            layout is None
            or len(lines) != layout.lines
            or lines[-2] != "@@rc 0"
            or lines[-3] != ""
            or lines[layout.tcp_at] != layout.tcp_head
            or lines[layout.tcpext_at] != layout.tcpext_head
        ):
            return None
        tcp = _plain_values(
            lines[layout.tcp_at + 1],
            "Tcp:",
            layout.tcp_fields,
            layout.tcp_names,
            layout.tcp_pick,
            layout.tcp_template,
        )
        if tcp is None:
            return None
        tcpext = _plain_values(
            lines[layout.tcpext_at + 1],
            "TcpExt:",
            layout.tcpext_fields,
            layout.tcpext_names,
            layout.tcpext_pick,
            layout.tcpext_template,
        )
        if tcpext is None:
            return None
        # /proc/uptime as parse_uptime reads a line: its first word, a plain number of seconds.
        words = lines[layout.uptime_at].split(None, 1)
        if not words or not _UPTIME.fullmatch(words[0]):
            return None
        boot_line = lines[layout.boot_at]
        if boot_line != self._boot_line:
            try:
                self._boot_id = parse_boot_id(boot_line)
            except ProbeParseError:
                return None
            self._boot_line = boot_line
        return Snapshot(tcp=tcp, tcpext=tcpext, uptime_s=float(words[0]), boot_id=self._boot_id)
