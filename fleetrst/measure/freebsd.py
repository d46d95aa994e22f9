"""FreeBSD's TCP statistics: ``netstat -s -p tcp`` (text or libxo JSON), ``kern.boottime`` and ``date``.

Pure: text in, values out. FreeBSD has no ``/proc/net/snmp``; its TCP counters are ``struct tcpstat``
(``sys/netinet/tcp_var.h``), which ``netstat -s -p tcp`` prints one ``xo_emit`` line at a time. The
parser's table, :data:`TCP_STATS`, is those ``xo_emit`` calls of ``tcp_stats()`` in FreeBSD's
``usr.bin/netstat/inet.c``, copied verbatim: the ``tcpstat`` field(s) each call prints, its libxo
format (which holds the JSON key(s) and the words of the text line) and the libxo container it is in.
Derived from:

- FreeBSD main (15-CURRENT), ``usr.bin/netstat/inet.c`` and ``sys/netinet/tcp_var.h`` at commit
  ``2d614aa2fe3e037bd11d351b0b5cfda776e65814`` (as mirrored in github.com/fel1x-developer/freebsd-src);
- plus the lines an older netstat printed that main no longer does, from freebsd/freebsd-src commit
  ``005a443f4372d8a0a60a919fdf90fc98deddcef0`` (an 11-era ``inet.c``, libxo already): ``tcps_rcvmemdrop``
  ("discarded due to memory problems", today a compat alias of ``tcps_rcvreassfull``) and the ECN lines
  before they were split into received/sent (``tcps_ecn_ce``, ``tcps_ecn_ect0``, ``tcps_ecn_ect1``).

``tests/fixtures/freebsd/inet_c_tcp_stats.txt`` holds those source lines; a test re-derives the table
from them. How the versions differ: libxo arrived in FreeBSD 11 (before it, the same words were
``printf``-ed and there is no ``--libxo``); later versions added lines (UDP-tunneled packets, DSACK,
progress-timeout drops, lost SACK retransmissions, received/sent ECN, Accurate-ECN, TIME-WAIT) and
renamed a few fields and keys. So a line that matches no known shape but reads "<number> <words>" is
taken for a newer counter and skipped, and a field netstat did not print is absent, never 0.

When netstat prints: ``p(f, m)``, ``p1a``, ``p2``, ``p2a`` and ``p3`` print their line ``if (tcpstat.f ||
sflag <= 1)``: with one ``-s`` (what the probe runs) every line is printed, zeros included; with
``-ss`` only non-zero ones. The parser takes whatever is there and invents nothing.

Two line shapes occur twice with different fields ("N window update packets", sent and received;
"N bucket overflow", syncache and hostcache): they are told apart by the top-level line they follow,
as netstat prints them in the table's order.

libxo JSON (``netstat --libxo json -s -p tcp``): ``main.c`` opens a ``statistics`` container,
``tcp_stats()`` a ``tcp`` one and inside it ``syncache``, ``hostcache``, ``sack``, ``ecn``,
``tcp-signature``, ``pmtud``, ``tw`` and ``TCP connection count by state`` (connection counts by
state, gauges, not read here); values are unquoted integers, notes and titles are text-only. netstat
sets no libxo version, but a ``__version`` member is accepted.

The snapshot maps the counters to the Linux names fleetrst's rules judge, exactly as Netdata's FreeBSD
collector does (``collectors/freebsd.plugin/freebsd_sysctl.c``, ``do_net_inet_tcp_stats``, netdata
commit ``00c15effbcd16a427865ff62a48e46aa601cc34e``): see :data:`LINUX_NAMES` and, for how exact each
one is, :data:`MAPPING_NOTES`. FreeBSD counts no "RSTs sent": ``tcps_sndctrl`` is "control
(SYN|FIN|RST) packets sent" (``tcp_var.h``), so there is no ``OutRsts``.

The interval clock: FreeBSD keeps ``boottime = realtime - uptime`` and moves ``boottime`` when the
clock is stepped (``settimeofday``, ``ntpd`` stepping, resume from suspend: boottime(9)), so ``now -
boottime`` is the uptime clock, and :func:`freebsd_snapshot` uses it as ``uptime_s``. Its ``boot_id``
is the boot time itself: **a clock step between two samples changes it, and reads as a reboot** (the
window then fails as rebooted, never gives a wrong rate). ``date +%s.%N`` has nanoseconds on FreeBSD
14.1 and later (``%N`` came with FreeBSD commit eeb04a736cb9, review D44905, 2024); older ``date``
prints a literal ``N`` and the clock is then whole seconds, so a window's interval is known to about a
second there.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..model import Snapshot
from ..units import ascii_digits
from .counters import ProbeParseError, shown

NETSTAT_TEXT = "netstat -s -p tcp"
NETSTAT_JSON = "netstat --libxo json -s -p tcp"
BOOTTIME = "kern.boottime"
DATE = "date"

# One sample of the probe on FreeBSD: the host's clock, its boot time, its TCP statistics (libxo JSON
# where netstat has --libxo, FreeBSD 11 and later; text otherwise). Its output is what
# parse_freebsd_sample reads: line 1 date, line 2 kern.boottime, then netstat's output.
SAMPLE_COMMAND = (
    "{ date +%s.%N; sysctl -n kern.boottime; "
    "netstat --libxo json -s -p tcp 2>/dev/null || netstat -s -p tcp; } 2>&1"
)

_U64_MAX = 2**64 - 1
_S64_MAX = 2**63 - 1


# --- the table: tcp_stats()'s xo_emit calls -----------------------------------------------------------


@dataclass(frozen=True)
class Emit:
    """One ``xo_emit`` of ``tcp_stats()``: the macro, the ``tcpstat`` field(s) it prints, its libxo
    format (C escapes resolved) and the libxo container it is in (None: ``tcp`` itself).

    ``source`` is ``"main"`` or ``"legacy"`` (a line only older netstats print). The rest is derived from
    the format: the JSON ``keys`` (one per field), the ``depth`` (leading tabs: 1 a top-level line, 2 a
    sub-line), the text line's regular expression and a word it must contain.
    """

    macro: str
    fields: tuple[str, ...]
    fmt: str
    container: str | None = None
    source: str = "main"
    keys: tuple[str, ...] = field(init=False)
    depth: int = field(init=False)
    regex: str = field(init=False, repr=False, compare=False)
    needle: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys, regex, words = _compile(self.fmt)
        if len(keys) != len(self.fields):
            raise ValueError(f"{self.fields}: {len(keys)} values in {self.fmt!r}")
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "depth", len(self.fmt) - len(self.fmt.lstrip("\t")))
        object.__setattr__(self, "regex", regex)
        object.__setattr__(self, "needle", max(words, key=len))

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """The text line's regular expression, compiled when a FreeBSD host's text is first read (the
        table's ~110 take 9 ms to compile: every sweep's start-up paid them, for Linux hosts too)."""
        return re.compile(self.regex)


_FIELD = re.compile(r"\{([^{}]*)\}")
_PLURAL = "(?:s|es|ies|y)?"  # plural() "s", plurales() "es", pluralies() "ies"/"y"


def _words(text: str) -> str:
    """A literal piece of a line as a regex: spaces match any run of blanks."""
    return r"\s+".join(re.escape(part) for part in text.split(" "))


def _compile(fmt: str) -> tuple[tuple[str, ...], str, list[str]]:
    """A libxo format's value keys, the regex of the text line it prints, and its literal words."""
    body = fmt.strip("\t").removesuffix("\n")
    keys: list[str] = []
    regex: list[str] = []
    literal: list[str] = []
    at = 0
    for match in _FIELD.finditer(body):
        regex.append(_words(body[at : match.start()]))
        literal.append(body[at : match.start()])
        mods, _, rest = match.group(1).partition(":")
        if mods == "":  # a value: {:key/%ju}
            key, _, form = rest.partition("/")
            if form != "%ju":
                raise ValueError(f"value {key!r} is not %ju in {fmt!r}")
            keys.append(key)
            regex.append(r"(\S*)")  # \S*: a line whose number is missing or garbled is caught, not skipped
        else:  # a note: {N:words} or {N:/format} or {N:/format/}
            text = rest.split("/")[1] if rest.startswith("/") else rest
            parts = text.split("%s")
            regex.append(_PLURAL.join(_words(part) for part in parts))
            literal.extend(parts)
        at = match.end()
    regex.append(_words(body[at:]))
    literal.append(body[at:])
    words = [w for piece in literal for w in piece.split() if re.search("[A-Za-z]", w)]
    return tuple(keys), r"^\s*" + "".join(regex) + r"\s*$", words or [""]


def _e(macro: str, fields: str, fmt: str, container: str | None = None, source: str = "main") -> Emit:
    return Emit(macro, tuple(fields.split()), fmt, container, source)


# FreeBSD main, usr.bin/netstat/inet.c, tcp_stats(), in order (legacy lines where older netstats
# printed them). tests/fixtures/freebsd/inet_c_tcp_stats.txt holds the C source they are copied from.
TCP_STATS: tuple[Emit, ...] = (
    _e("p", "tcps_sndtotal", "\t{:sent-packets/%ju} {N:/packet%s sent}\n"),
    _e(
        "p2",
        "tcps_sndpack tcps_sndbyte",
        "\t\t{:sent-data-packets/%ju} {N:/data packet%s} ({:sent-data-bytes/%ju} {N:/byte%s})\n",
    ),
    _e(
        "p2",
        "tcps_sndrexmitpack tcps_sndrexmitbyte",
        "\t\t{:sent-retransmitted-packets/%ju} {N:/data packet%s} "
        "({:sent-retransmitted-bytes/%ju} {N:/byte%s}) {N:retransmitted}\n",
    ),
    _e(
        "p",
        "tcps_sndrexmitbad",
        "\t\t{:sent-unnecessary-retransmitted-packets/%ju} {N:/data packet%s unnecessarily retransmitted}\n",
    ),
    _e(
        "p",
        "tcps_mturesent",
        "\t\t{:sent-resends-by-mtu-discovery/%ju} {N:/resend%s initiated by MTU discovery}\n",
    ),
    _e(
        "p2a",
        "tcps_sndacks tcps_delack",
        "\t\t{:sent-ack-only-packets/%ju} {N:/ack-only packet%s/} "
        "({:sent-packets-delayed/%ju} {N:delayed})\n",
    ),
    _e("p", "tcps_sndurg", "\t\t{:sent-urg-only-packets/%ju} {N:/URG only packet%s}\n"),
    _e("p", "tcps_sndprobe", "\t\t{:sent-window-probe-packets/%ju} {N:/window probe packet%s}\n"),
    _e("p", "tcps_sndwinup", "\t\t{:sent-window-update-packets/%ju} {N:/window update packet%s}\n"),
    _e("p", "tcps_sndctrl", "\t\t{:sent-control-packets/%ju} {N:/control packet%s}\n"),
    _e("p", "tcps_rcvtotal", "\t{:received-packets/%ju} {N:/packet%s received}\n"),
    _e(
        "p2",
        "tcps_rcvackpack tcps_rcvackbyte",
        "\t\t{:received-ack-packets/%ju} {N:/ack%s} {N:(for} {:received-ack-bytes/%ju} {N:/byte%s})\n",
    ),
    _e("p", "tcps_rcvdupack", "\t\t{:received-duplicate-acks/%ju} {N:/duplicate ack%s}\n"),
    _e("p", "tcps_tunneled_pkts", "\t\t{:received-udp-tunneled-pkts/%ju} {N:/UDP tunneled pkt%s}\n"),
    _e(
        "p",
        "tcps_tunneled_errs",
        "\t\t{:received-bad-udp-tunneled-pkts/%ju} {N:/UDP tunneled pkt cnt with error%s}\n",
    ),
    _e("p", "tcps_rcvacktoomuch", "\t\t{:received-acks-for-unsent-data/%ju} {N:/ack%s for unsent data}\n"),
    _e(
        "p2",
        "tcps_rcvpack tcps_rcvbyte",
        "\t\t{:received-in-sequence-packets/%ju} {N:/packet%s} "
        "({:received-in-sequence-bytes/%ju} {N:/byte%s}) {N:received in-sequence}\n",
    ),
    _e(
        "p2",
        "tcps_rcvduppack tcps_rcvdupbyte",
        "\t\t{:received-completely-duplicate-packets/%ju} {N:/completely duplicate packet%s} "
        "({:received-completely-duplicate-bytes/%ju} {N:/byte%s})\n",
    ),
    _e("p", "tcps_pawsdrop", "\t\t{:received-old-duplicate-packets/%ju} {N:/old duplicate packet%s}\n"),
    _e(
        "p2",
        "tcps_rcvpartduppack tcps_rcvpartdupbyte",
        "\t\t{:received-some-duplicate-packets/%ju} {N:/packet%s with some dup. data} "
        "({:received-some-duplicate-bytes/%ju} {N:/byte%s duped/})\n",
    ),
    _e(
        "p2",
        "tcps_rcvoopack tcps_rcvoobyte",
        "\t\t{:received-out-of-order/%ju} {N:/out-of-order packet%s} "
        "({:received-out-of-order-bytes/%ju} {N:/byte%s})\n",
    ),
    _e(
        "p2",
        "tcps_rcvpackafterwin tcps_rcvbyteafterwin",
        "\t\t{:received-after-window-packets/%ju} {N:/packet%s} "
        "({:received-after-window-bytes/%ju} {N:/byte%s}) {N:of data after window}\n",
    ),
    _e("p", "tcps_rcvwinprobe", "\t\t{:received-window-probes/%ju} {N:/window probe%s}\n"),
    _e("p", "tcps_rcvwinupd", "\t\t{:receive-window-update-packets/%ju} {N:/window update packet%s}\n"),
    _e("p", "tcps_dsack_count", "\t\t{:received-with-dsack-packets/%ju} {N:/packet%s received with dsack}\n"),
    _e(
        "p",
        "tcps_dsack_bytes",
        "\t\t{:received-with-dsack-bytes/%ju} {N:/dsack byte%s received (no TLP involved)}\n",
    ),
    _e(
        "p",
        "tcps_dsack_tlp_bytes",
        "\t\t{:received-with-dsack-bytes-tlp/%ju} {N:/dsack byte%s received (TLP responsible)}\n",
    ),
    _e(
        "p",
        "tcps_rcvafterclose",
        "\t\t{:received-after-close-packets/%ju} {N:/packet%s received after close}\n",
    ),
    _e("p", "tcps_rcvbadsum", "\t\t{:discard-bad-checksum/%ju} {N:/discarded for bad checksum%s}\n"),
    _e(
        "p",
        "tcps_rcvbadoff",
        "\t\t{:discard-bad-header-offset/%ju} {N:/discarded for bad header offset field%s}\n",
    ),
    _e("p1a", "tcps_rcvshort", "\t\t{:discard-too-short/%ju} {N:discarded because packet too short}\n"),
    _e(
        "p1a",
        "tcps_rcvreassfull",
        "\t\t{:discard-reassembly-queue-full/%ju} {N:discarded due to full reassembly queue}\n",
    ),
    _e(
        "p1a",
        "tcps_rcvmemdrop",
        "\t\t{:discard-memory-problems/%ju} {N:discarded due to memory problems}\n",
        source="legacy",
    ),
    _e("p", "tcps_connattempt", "\t{:connection-requests/%ju} {N:/connection request%s}\n"),
    _e("p", "tcps_accepts", "\t{:connections-accepts/%ju} {N:/connection accept%s}\n"),
    _e("p", "tcps_badsyn", "\t{:bad-connection-attempts/%ju} {N:/bad connection attempt%s}\n"),
    _e("p", "tcps_listendrop", "\t{:listen-queue-overflows/%ju} {N:/listen queue overflow%s}\n"),
    _e("p", "tcps_badrst", "\t{:ignored-in-window-resets/%ju} {N:/ignored RSTs in the window%s}\n"),
    _e(
        "p",
        "tcps_connects",
        "\t{:connections-established/%ju} {N:/connection%s established (including accepts)}\n",
    ),
    _e("p", "tcps_usedrtt", "\t\t{:connections-hostcache-rtt/%ju} {N:/time%s used RTT from hostcache}\n"),
    _e(
        "p",
        "tcps_usedrttvar",
        "\t\t{:connections-hostcache-rttvar/%ju} {N:/time%s used RTT variance from hostcache}\n",
    ),
    _e(
        "p",
        "tcps_usedssthresh",
        "\t\t{:connections-hostcache-ssthresh/%ju} {N:/time%s used slow-start threshold from hostcache}\n",
    ),
    _e(
        "p2",
        "tcps_closed tcps_drops",
        "\t{:connections-closed/%ju} {N:/connection%s closed (including} "
        "{:connection-drops/%ju} {N:/drop%s})\n",
    ),
    _e(
        "p",
        "tcps_cachedrtt",
        "\t\t{:connections-updated-rtt-on-close/%ju} {N:/connection%s updated cached RTT on close}\n",
    ),
    _e(
        "p",
        "tcps_cachedrttvar",
        "\t\t{:connections-updated-variance-on-close/%ju} "
        "{N:/connection%s updated cached RTT variance on close}\n",
    ),
    _e(
        "p",
        "tcps_cachedssthresh",
        "\t\t{:connections-updated-ssthresh-on-close/%ju} "
        "{N:/connection%s updated cached ssthresh on close}\n",
    ),
    _e("p", "tcps_conndrops", "\t{:embryonic-connections-dropped/%ju} {N:/embryonic connection%s dropped}\n"),
    _e(
        "p2",
        "tcps_rttupdated tcps_segstimed",
        "\t{:segments-updated-rtt/%ju} {N:/segment%s updated rtt (of} "
        "{:segment-update-attempts/%ju} {N:/attempt%s})\n",
    ),
    _e("p", "tcps_rexmttimeo", "\t{:retransmit-timeouts/%ju} {N:/retransmit timeout%s}\n"),
    _e(
        "p",
        "tcps_timeoutdrop",
        "\t\t{:connections-dropped-by-retransmit-timeout/%ju} {N:/connection%s dropped by rexmit timeout}\n",
    ),
    _e("p", "tcps_persisttimeo", "\t{:persist-timeout/%ju} {N:/persist timeout%s}\n"),
    _e(
        "p",
        "tcps_persistdrop",
        "\t\t{:connections-dropped-by-persist-timeout/%ju} {N:/connection%s dropped by persist timeout}\n",
    ),
    _e(
        "p",
        "tcps_finwait2_drops",
        "\t{:connections-dropped-by-finwait2-timeout/%ju} "
        "{N:/Connection%s (fin_wait_2) dropped because of timeout}\n",
    ),
    _e("p", "tcps_keeptimeo", "\t{:keepalive-timeout/%ju} {N:/keepalive timeout%s}\n"),
    _e("p", "tcps_keepprobe", "\t\t{:keepalive-probes/%ju} {N:/keepalive probe%s sent}\n"),
    _e(
        "p",
        "tcps_keepdrops",
        "\t\t{:connections-dropped-by-keepalives/%ju} {N:/connection%s dropped by keepalive}\n",
    ),
    _e(
        "p",
        "tcps_progdrops",
        "\t{:connections-dropped-due-to-progress-time/%ju} "
        "{N:/connection%s dropped due to exceeding progress time}\n",
    ),
    _e("p", "tcps_predack", "\t{:ack-header-predictions/%ju} {N:/correct ACK header prediction%s}\n"),
    _e(
        "p",
        "tcps_preddat",
        "\t{:data-packet-header-predictions/%ju} {N:/correct data packet header prediction%s}\n",
    ),
    _e("p3", "tcps_sc_added", "\t{:entries-added/%ju} {N:/syncache entr%s added}\n", "syncache"),
    _e("p1a", "tcps_sc_retransmitted", "\t\t{:retransmitted/%ju} {N:/retransmitted}\n", "syncache"),
    _e("p1a", "tcps_sc_dupsyn", "\t\t{:duplicates/%ju} {N:/dupsyn}\n", "syncache"),
    _e("p1a", "tcps_sc_dropped", "\t\t{:dropped/%ju} {N:/dropped}\n", "syncache"),
    _e("p1a", "tcps_sc_completed", "\t\t{:completed/%ju} {N:/completed}\n", "syncache"),
    _e("p1a", "tcps_sc_bucketoverflow", "\t\t{:bucket-overflow/%ju} {N:/bucket overflow}\n", "syncache"),
    _e("p1a", "tcps_sc_cacheoverflow", "\t\t{:cache-overflow/%ju} {N:/cache overflow}\n", "syncache"),
    _e("p1a", "tcps_sc_reset", "\t\t{:reset/%ju} {N:/reset}\n", "syncache"),
    _e("p1a", "tcps_sc_stale", "\t\t{:stale/%ju} {N:/stale}\n", "syncache"),
    _e("p1a", "tcps_sc_aborted", "\t\t{:aborted/%ju} {N:/aborted}\n", "syncache"),
    _e("p1a", "tcps_sc_badack", "\t\t{:bad-ack/%ju} {N:/badack}\n", "syncache"),
    _e("p1a", "tcps_sc_unreach", "\t\t{:unreachable/%ju} {N:/unreach}\n", "syncache"),
    _e("p", "tcps_sc_zonefail", "\t\t{:zone-failures/%ju} {N:/zone failure%s}\n", "syncache"),
    _e("p", "tcps_sc_sendcookie", "\t{:sent-cookies/%ju} {N:/cookie%s sent}\n", "syncache"),
    _e("p", "tcps_sc_recvcookie", "\t{:receivd-cookies/%ju} {N:/cookie%s received}\n", "syncache"),
    _e("p3", "tcps_hc_added", "\t{:entries-added/%ju} {N:/hostcache entr%s added}\n", "hostcache"),
    _e("p1a", "tcps_hc_bucketoverflow", "\t\t{:buffer-overflows/%ju} {N:/bucket overflow}\n", "hostcache"),
    _e(
        "p", "tcps_sack_recovery_episode", "\t{:recovery-episodes/%ju} {N:/SACK recovery episode%s}\n", "sack"
    ),
    _e(
        "p",
        "tcps_sack_rexmits",
        "\t{:segment-retransmits/%ju} {N:/segment rexmit%s in SACK recovery episodes}\n",
        "sack",
    ),
    _e(
        "p",
        "tcps_sack_rexmit_bytes",
        "\t{:byte-retransmits/%ju} {N:/byte rexmit%s in SACK recovery episodes}\n",
        "sack",
    ),
    _e(
        "p",
        "tcps_sack_rcv_blocks",
        "\t{:received-blocks/%ju} {N:/SACK option%s (SACK blocks) received}\n",
        "sack",
    ),
    _e(
        "p",
        "tcps_sack_send_blocks",
        "\t{:sent-option-blocks/%ju} {N:/SACK option%s (SACK blocks) sent}\n",
        "sack",
    ),
    _e("p", "tcps_sack_lostrexmt", "\t{:lost-retransmissions/%ju} {N:/SACK retransmission%s lost}\n", "sack"),
    _e(
        "p1a", "tcps_sack_sboverflow", "\t{:scoreboard-overflows/%ju} {N:/SACK scoreboard overflow}\n", "sack"
    ),
    _e(
        "p",
        "tcps_ecn_ce",
        "\t{:ce-packets/%ju} {N:/packet%s with ECN CE bit set}\n",
        "ecn",
        "legacy",
    ),
    _e(
        "p",
        "tcps_ecn_ect0",
        "\t{:ect0-packets/%ju} {N:/packet%s with ECN ECT(0) bit set}\n",
        "ecn",
        "legacy",
    ),
    _e(
        "p",
        "tcps_ecn_ect1",
        "\t{:ect1-packets/%ju} {N:/packet%s with ECN ECT(1) bit set}\n",
        "ecn",
        "legacy",
    ),
    _e(
        "p",
        "tcps_ecn_rcvce",
        "\t{:received-ce-packets/%ju} {N:/packet%s received with ECN CE bit set}\n",
        "ecn",
    ),
    _e(
        "p",
        "tcps_ecn_rcvect0",
        "\t{:received-ect0-packets/%ju} {N:/packet%s received with ECN ECT(0) bit set}\n",
        "ecn",
    ),
    _e(
        "p",
        "tcps_ecn_rcvect1",
        "\t{:received-ect1-packets/%ju} {N:/packet%s received with ECN ECT(1) bit set}\n",
        "ecn",
    ),
    _e(
        "p",
        "tcps_ecn_sndect0",
        "\t{:sent-ect0-packets/%ju} {N:/packet%s sent with ECN ECT(0) bit set}\n",
        "ecn",
    ),
    _e(
        "p",
        "tcps_ecn_sndect1",
        "\t{:sent-ect1-packets/%ju} {N:/packet%s sent with ECN ECT(1) bit set}\n",
        "ecn",
    ),
    _e("p", "tcps_ecn_shs", "\t{:handshakes/%ju} {N:/successful ECN handshake%s}\n", "ecn"),
    _e(
        "p",
        "tcps_ecn_rcwnd",
        "\t{:congestion-reductions/%ju} {N:/time%s ECN reduced the congestion window}\n",
        "ecn",
    ),
    _e("p", "tcps_ace_nect", "\t{:ace-nonect-syn/%ju} {N:/ACE SYN packet%s with Non-ECT}\n", "ecn"),
    _e("p", "tcps_ace_ect0", "\t{:ace-ect0-syn/%ju} {N:/ACE SYN packet%s with ECT0}\n", "ecn"),
    _e("p", "tcps_ace_ect1", "\t{:ace-ect1-syn/%ju} {N:/ACE SYN packet%s with ECT1}\n", "ecn"),
    _e("p", "tcps_ace_ce", "\t{:ace-ce-syn/%ju} {N:/ACE SYN packet%s with CE}\n", "ecn"),
    _e(
        "p",
        "tcps_sig_rcvgoodsig",
        "\t{:received-good-signature/%ju} {N:/packet%s with matching signature received}\n",
        "tcp-signature",
    ),
    _e(
        "p",
        "tcps_sig_rcvbadsig",
        "\t{:received-bad-signature/%ju} {N:/packet%s with bad signature received}\n",
        "tcp-signature",
    ),
    _e(
        "p",
        "tcps_sig_err_buildsig",
        "\t{:failed-make-signature/%ju} {N:/time%s failed to make signature due to no SA}\n",
        "tcp-signature",
    ),
    _e(
        "p",
        "tcps_sig_err_sigopt",
        "\t{:no-signature-expected/%ju} {N:/time%s unexpected signature received}\n",
        "tcp-signature",
    ),
    _e(
        "p",
        "tcps_sig_err_nosigopt",
        "\t{:no-signature-provided/%ju} {N:/time%s no signature provided by segment}\n",
        "tcp-signature",
    ),
    _e(
        "p",
        "tcps_pmtud_blackhole_activated",
        "\t{:pmtud-activated/%ju} {N:/Path MTU discovery black hole detection activation%s}\n",
        "pmtud",
    ),
    _e(
        "p",
        "tcps_pmtud_blackhole_activated_min_mss",
        "\t{:pmtud-activated-min-mss/%ju} "
        "{N:/Path MTU discovery black hole detection min MSS activation%s}\n",
        "pmtud",
    ),
    _e(
        "p",
        "tcps_pmtud_blackhole_failed",
        "\t{:pmtud-failed/%ju} {N:/Path MTU discovery black hole detection failure%s}\n",
        "pmtud",
    ),
    _e(
        "p",
        "tcps_tw_responds",
        "\t{:tw_responds/%ju} {N:/time%s connection in TIME-WAIT responded with ACK}\n",
        "tw",
    ),
    _e(
        "p",
        "tcps_tw_recycles",
        "\t{:tw_recycles/%ju} {N:/time%s connection in TIME-WAIT was actively recycled}\n",
        "tw",
    ),
    _e(
        "p",
        "tcps_tw_resets",
        "\t{:tw_resets/%ju} {N:/time%s connection in TIME-WAIT responded with RST}\n",
        "tw",
    ),
)

# The state counts after the statistics: a title line, then one line (and one JSON member) per state.
STATES_TITLE = "TCP connection count by state"
STATES_CONTAINER = STATES_TITLE

# (container, JSON key) -> tcpstat field; (None, key) for the members of "tcp" itself.
JSON_FIELDS: dict[tuple[str | None, str], str] = {
    (emit.container, key): name
    for emit in TCP_STATS
    for key, name in zip(emit.keys, emit.fields, strict=True)
}
JSON_CONTAINERS: frozenset[str] = frozenset(e.container for e in TCP_STATS if e.container is not None)


def _parents() -> tuple[int | None, ...]:
    """For each entry, the index of the top-level line it belongs under (None for a top-level line)."""
    out: list[int | None] = []
    top: int | None = None
    for index, emit in enumerate(TCP_STATS):
        if emit.depth <= 1:
            top = index
            out.append(None)
        else:
            out.append(top)
    return tuple(out)


_PARENT = _parents()


# --- the Linux names, as Netdata's FreeBSD collector maps them --------------------------------------

# tcpstat field -> (Linux section, Linux counter): netdata collectors/freebsd.plugin/freebsd_sysctl.c,
# do_net_inet_tcp_stats(). InErrs is a sum (see freebsd_snapshot); there is no OutRsts.
LINUX_NAMES: dict[str, tuple[str, str]] = {
    "tcps_rcvtotal": ("Tcp", "InSegs"),
    "tcps_sndtotal": ("Tcp", "OutSegs"),
    "tcps_sndrexmitpack": ("Tcp", "RetransSegs"),
    "tcps_rcvbadsum": ("Tcp", "InCsumErrors"),
    "tcps_drops": ("Tcp", "EstabResets"),
    "tcps_connattempt": ("Tcp", "ActiveOpens"),
    "tcps_accepts": ("Tcp", "PassiveOpens"),
    "tcps_conndrops": ("Tcp", "AttemptFails"),
    "tcps_listendrop": ("TcpExt", "ListenOverflows"),
    "tcps_rcvpackafterwin": ("TcpExt", "TCPAbortOnData"),
    "tcps_rcvafterclose": ("TcpExt", "TCPAbortOnClose"),
    "tcps_rcvmemdrop": ("TcpExt", "TCPAbortOnMemory"),
    "tcps_persistdrop": ("TcpExt", "TCPAbortOnTimeout"),
    "tcps_finwait2_drops": ("TcpExt", "TCPAbortOnLinger"),
    "tcps_rcvoopack": ("TcpExt", "TCPOFOQueue"),
    "tcps_sc_recvcookie": ("TcpExt", "SyncookiesRecv"),
    "tcps_sc_sendcookie": ("TcpExt", "SyncookiesSent"),
    "tcps_sc_zonefail": ("TcpExt", "SyncookiesFailed"),
}

# Netdata's InErrs on FreeBSD 11 and later: the sum of these three (a uint64_t sum, so modulo 2**64).
IN_ERRS_PARTS: tuple[str, ...] = ("tcps_rcvbadoff", "tcps_rcvreassfull", "tcps_rcvshort")

# tcp_var.h: "#define tcps_rcvmemdrop tcps_rcvreassfull /* compat */": Netdata's TCPAbortOnMemory reads
# tcps_rcvmemdrop, which newer netstats print only as "discarded due to full reassembly queue".
MEMDROP_ALIAS = "tcps_rcvreassfull"

# Linux name -> how exactly the FreeBSD counter behind it means the same thing (one sentence each).
MAPPING_NOTES: dict[str, str] = {
    "InSegs": (
        "tcps_rcvtotal (total packets received) counts every segment handed to tcp_input(), bad ones "
        "included: a close match."
    ),
    "OutSegs": (
        "tcps_sndtotal (total packets sent) counts every segment tcp_output() sends, retransmissions and "
        "control segments included: a close match."
    ),
    "RetransSegs": (
        "tcps_sndrexmitpack counts retransmitted segments that carry data (tcp_var.h: data packets "
        "retransmitted), so retransmitted SYNs and bare FINs are not in it: a close match, slightly low."
    ),
    "InCsumErrors": "tcps_rcvbadsum counts segments discarded for a bad checksum: the same event.",
    "InErrs": (
        "Netdata's sum tcps_rcvbadoff + tcps_rcvreassfull + tcps_rcvshort (bad header offset, reassembly "
        "queue full, too short), given only when netstat printed all three; bad checksums stay in "
        "InCsumErrors: an approximation."
    ),
    "EstabResets": (
        "tcps_drops (connections dropped) counts every synchronized connection that ended in a drop "
        "rather than a close, reset by the peer or given up by FreeBSD (retransmit, keepalive or persist "
        "timeout): broader than resets alone."
    ),
    "ActiveOpens": (
        "tcps_connattempt (connections initiated) counts connect()s that sent a SYN: the same event."
    ),
    "PassiveOpens": (
        "tcps_accepts (connections accepted) counts connections a listening socket took in: the same event."
    ),
    "AttemptFails": (
        "tcps_conndrops (embryonic connections dropped) counts connections dropped before they were "
        "synchronized (refused connects, SYN timeouts), while half-open server-side connections live in "
        "the syncache with counters of their own (tcps_sc_*): close for clients, low for servers."
    ),
    "ListenOverflows": (
        "tcps_listendrop (listen queue overflows) counts connections dropped because a listen queue was "
        "full: the same event."
    ),
    "TCPAbortOnData": (
        "tcps_rcvpackafterwin counts segments with data beyond the receive window, not connections "
        "aborted for data after close: a loose stand-in, as Netdata chose it."
    ),
    "TCPAbortOnClose": (
        "tcps_rcvafterclose counts segments that arrived after the application closed the connection "
        "(each answered with a RST), per segment rather than per connection: a loose match."
    ),
    "TCPAbortOnMemory": (
        "tcps_rcvmemdrop (older netstats: discarded due to memory problems; now an alias of "
        "tcps_rcvreassfull, discarded due to full reassembly queue, which is read when it is all netstat "
        "printed) counts segments dropped, not connections aborted: a loose match."
    ),
    "TCPAbortOnTimeout": (
        "tcps_persistdrop counts only connections dropped by the persist (zero-window) timer; the "
        "retransmit and keepalive timeout drops are kept as tcps_timeoutdrop and tcps_keepdrops: partial."
    ),
    "TCPAbortOnLinger": (
        "tcps_finwait2_drops counts connections dropped when the FIN_WAIT_2 timer ran out after the "
        "application closed: close to the linger-timeout aborts."
    ),
    "TCPOFOQueue": "tcps_rcvoopack counts out-of-order segments received: the same event.",
    "SyncookiesSent": "tcps_sc_sendcookie counts SYN-ACKs sent with a SYN cookie: the same event.",
    "SyncookiesRecv": "tcps_sc_recvcookie counts SYN cookies received back in an ACK: the same event.",
    "SyncookiesFailed": (
        "tcps_sc_zonefail counts syncache entries that could not be allocated, not invalid cookies: a "
        "loose stand-in, as Netdata chose it."
    ),
    "OutRsts": (
        "Not available: FreeBSD counts no RSTs sent on their own, tcps_sndctrl (tcp_var.h: control "
        "(SYN|FIN|RST) packets sent) counts them with SYNs and FINs and is kept under its own name."
    ),
}


# --- netstat -s -p tcp, text ------------------------------------------------------------------------

_NUMBER_WORDS = re.compile(r"\s*[0-9]+\s+\S.*")
_STATE_LINE = re.compile(r"\s*(\S+)\s+connections?\s+in\s+\S+\s+state\s*")
_HEADER = re.compile(r"[^\s0-9][^:]*:\s*")
_WARNING = "netstat:"  # xo_warn()'s lines on stderr (the probe merges it with 2>&1)


@dataclass(frozen=True)
class Found:
    """One counter in netstat's text: its value, the line (1-based) and the value's span in the text."""

    value: int
    line: int
    start: int
    end: int


def _value(name: str, token: str, path: str, line: int | None) -> int:
    if not (ascii_digits(token) and len(token) <= 20):
        raise ProbeParseError(f"{name} is {shown(token)}, not an unsigned integer", path, line)
    value = int(token)
    if value > _U64_MAX:
        raise ProbeParseError(f"{name} is {token}, out of range for a 64-bit counter", path, line)
    return value


def _choose(candidates: list[int], parent: int | None, last: int) -> int:
    """Of several entries whose shape the line has, the one in the current block (under the top-level
    line last read, or the one the last sub-line read belongs to); else the first after the last one
    read (netstat prints in the table's order); else the first."""
    if len(candidates) == 1:
        return candidates[0]
    under = [i for i in candidates if _PARENT[i] == parent]
    if len(under) == 1:
        return under[0]
    after = [i for i in (under or candidates) if i > last]
    return after[0] if after else candidates[0]


def _scan_text(text: str) -> dict[str, Found]:
    path = NETSTAT_TEXT
    lines = text.split("\n")  # only "\n": str.splitlines() would split on \x0b, \u2028 ... and shift lines
    offsets: list[int] = []
    at = 0
    for line in lines:
        offsets.append(at)
        at += len(line) + 1
    number = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r")
        if line.strip() == "" or line.startswith(_WARNING):
            continue
        if line.rstrip() != "tcp:":
            raise ProbeParseError(f'no "tcp:" header line: starts with {shown(line)}', path, number)
        break
    else:
        raise ProbeParseError('no "tcp:" header line: no output', path, number or None)

    found: dict[str, Found] = {}
    states = False
    parent: int | None = None
    last = -1
    for index in range(number, len(lines)):
        line_no = index + 1
        line = lines[index].rstrip("\r")
        if line.strip() == "":
            continue
        if _HEADER.fullmatch(line):
            title = line.rstrip()[:-1]
            if title == STATES_TITLE and not states:
                states = True
                continue
            if title == "tcp":
                raise ProbeParseError('a second "tcp:" header line', path, line_no)
            break  # the next protocol's block (netstat -s without -p): the tcp block has ended
        if states:
            state = _STATE_LINE.fullmatch(line)
            if state is not None:
                _value("a connection count", state.group(1), path, line_no)
            elif not _NUMBER_WORDS.fullmatch(line):
                raise ProbeParseError(f"not a connection count by state: {shown(line)}", path, line_no)
            continue
        candidates = [
            i for i, emit in enumerate(TCP_STATS) if emit.needle in line and emit.pattern.fullmatch(line)
        ]
        if not candidates:
            if _NUMBER_WORDS.fullmatch(line):
                continue  # a counter this table does not know (a newer netstat): skipped
            raise ProbeParseError(f"not a line of TCP statistics: {shown(line)}", path, line_no)
        chosen = _choose(candidates, parent, last)
        emit = TCP_STATS[chosen]
        match = emit.pattern.fullmatch(line)
        assert match is not None
        for group, name in enumerate(emit.fields, start=1):
            if name in found:
                raise ProbeParseError(
                    f"{name} printed twice (line {found[name].line} and line {line_no})", path, line_no
                )
            value = _value(name, match.group(group), path, line_no)
            start = offsets[index] + match.start(group)
            found[name] = Found(value, line_no, start, offsets[index] + match.end(group))
        last = chosen
        parent = chosen if emit.depth <= 1 else _PARENT[chosen]  # the block the line is in
    return found


def parse_tcp_stats_text(text: str) -> dict[str, int]:
    """The ``tcp:`` block of ``netstat -s -p tcp``, by ``tcpstat`` field name (``tcps_conndrops``, ...).

    Lines before the ``tcp:`` header may only be blank or netstat's own warnings (``netstat: ...``);
    the block ends at its last line or at the next protocol's header. The connection counts by state
    (levels, not counters) are checked but not returned. Raises :class:`ProbeParseError` only.
    """
    return {name: found.value for name, found in _scan_text(text).items()}


def locate_tcp_stats_text(text: str) -> dict[str, tuple[int, int]]:
    """Where each counter's number is in the text: ``field -> (start, end)`` offsets into ``text``."""
    return {name: (found.start, found.end) for name, found in _scan_text(text).items()}


# --- netstat --libxo json -s -p tcp ------------------------------------------------------------------


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _json_value(name: str, value: object) -> int:
    path = NETSTAT_JSON
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ProbeParseError(f"{name} is {shown(json.dumps(value))}, not an unsigned integer", path)
    if isinstance(value, str):  # a quoted number: accepted, libxo quotes when told to
        return _value(name, value, path, None)
    if not 0 <= value <= _U64_MAX:
        raise ProbeParseError(f"{name} is {shown(str(value))}, out of range for a 64-bit counter", path)
    return value


def parse_tcp_stats_json(text: str) -> dict[str, int]:
    """``netstat --libxo json -s -p tcp``: ``{"statistics": {"tcp": {...}}}``, by ``tcpstat`` field name.

    Members this table does not know (a newer netstat) are skipped; a known member whose value is not
    an unsigned 64-bit integer, a duplicate member or text that is not JSON raise
    :class:`ProbeParseError`, the only exception this raises.
    """
    path = NETSTAT_JSON
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except _Duplicate as error:
        raise ProbeParseError(f"member {shown(str(error))} appears twice in one object", path) from None
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError; so are huge ints
        reason = error.msg if isinstance(error, json.JSONDecodeError) else type(error).__name__
        raise ProbeParseError(f"not JSON: {reason}", path) from None
    if not isinstance(data, dict):
        raise ProbeParseError("not a JSON object", path)
    statistics = data.get("statistics")
    if not isinstance(statistics, dict):
        raise ProbeParseError('no "statistics" object', path)
    tcp = statistics.get("tcp")
    if not isinstance(tcp, dict):
        raise ProbeParseError('no "tcp" object in "statistics"', path)
    counters: dict[str, int] = {}
    for key, value in tcp.items():
        if isinstance(value, dict):
            if key == STATES_CONTAINER:
                for state, count in value.items():
                    _json_value(f"the {state} connection count", count)
                continue
            if key not in JSON_CONTAINERS:
                continue  # a container this table does not know (a newer netstat)
            for member, inner in value.items():
                name = JSON_FIELDS.get((key, member))
                if name is not None:
                    counters[name] = _json_value(name, inner)
            continue
        name = JSON_FIELDS.get((None, key))
        if name is not None:
            counters[name] = _json_value(name, value)
    return counters


# --- the clock: kern.boottime and date ----------------------------------------------------------------

# sbin/sysctl/sysctl.c, S_timeval(): "{ sec = %jd, usec = %ld } " and ctime() without its newline.
_BOOTTIME = re.compile(r"(?:kern\.boottime: )?\{ sec = ([0-9]{1,19}), usec = ([0-9]{1,6}) \}(?: [^\n]*)?")
# GNU date and FreeBSD 14.1+: seconds.nanoseconds; older FreeBSD prints %N as a literal N.
_NOW = re.compile(r"([0-9]{1,15})(?:\.([0-9]{1,9}|N))?")


def parse_boottime(text: str) -> tuple[int, int]:
    """``sysctl -n kern.boottime`` (``{ sec = 1700000000, usec = 123456 } Tue Nov 14 22:13:20 2023``)
    -> ``(sec, usec)``. Raises :class:`ProbeParseError` naming ``kern.boottime``."""
    line = text.strip(" \r\n")
    match = _BOOTTIME.fullmatch(line)
    if match is None:
        raise ProbeParseError(f"not a boot time: {shown(line)}", BOOTTIME, 1)
    sec, usec = int(match.group(1)), int(match.group(2))
    if sec > _S64_MAX:
        raise ProbeParseError(f"sec = {sec} is out of range", BOOTTIME, 1)
    return sec, usec


def parse_now(text: str) -> float:
    """``date +%s.%N`` -> seconds since the epoch; ``1700000000.N`` (FreeBSD before 14.1, where ``%N``
    is not a conversion) -> whole seconds. Raises :class:`ProbeParseError` naming ``date``."""
    line = text.strip(" \r\n")
    match = _NOW.fullmatch(line)
    if match is None:
        raise ProbeParseError(f"not seconds since the epoch: {shown(line)}", DATE, 1)
    whole, fraction = match.group(1), match.group(2)
    if fraction is None or fraction == "N":
        return float(int(whole))
    return float(f"{whole}.{fraction}")


# --- the snapshot -------------------------------------------------------------------------------------


def freebsd_snapshot(counters: Mapping[str, int], boottime: tuple[int, int], now: float) -> Snapshot:
    """FreeBSD's counters under the Linux names Netdata gives them, and FreeBSD's uptime clock.

    ``tcp``: the mapped ``Tcp`` counters, and ``InErrs`` (Netdata's sum) when all its parts are there.
    ``tcpext``: the mapped ``TcpExt`` counters, and every unmapped ``tcpstat`` field under its own
    name (``tcps_sndctrl``, ``tcps_timeoutdrop``, ...). No ``OutRsts``: FreeBSD has none.
    ``uptime_s``: ``now - boottime``, the uptime clock, as FreeBSD keeps ``boottime = realtime -
    uptime``. ``boot_id``: ``boottime-SEC.USEC``, which a clock step changes too: a step during a
    window reads as a reboot. Raises :class:`ProbeParseError` when the clock is not after the boot time.
    """
    sec, usec = boottime
    booted = sec + usec / 1e6
    uptime = now - booted
    if not math.isfinite(uptime) or uptime <= 0:
        raise ProbeParseError(
            f"the clock ({now}) is not after kern.boottime ({sec}.{usec:06d}): no uptime", DATE, 1
        )
    tcp: dict[str, int] = {}
    tcpext: dict[str, int] = {}
    for name, value in counters.items():
        if name in LINUX_NAMES:
            section, linux = LINUX_NAMES[name]
            (tcp if section == "Tcp" else tcpext)[linux] = value
        else:
            tcpext[name] = value
    if "tcps_rcvmemdrop" not in counters and MEMDROP_ALIAS in counters:
        tcpext["TCPAbortOnMemory"] = counters[MEMDROP_ALIAS]
    if all(part in counters for part in IN_ERRS_PARTS):
        tcp["InErrs"] = sum(counters[part] for part in IN_ERRS_PARTS) % 2**64
    return Snapshot(tcp=tcp, tcpext=tcpext, uptime_s=uptime, boot_id=f"boottime-{sec}.{usec:06d}")


def looks_like_freebsd(lines: list[str]) -> bool:
    """Is this one probe sample's body FreeBSD's (line 2 is ``kern.boottime``) rather than Linux's
    (which starts with ``Ip:``)? A cheap test; :func:`parse_freebsd_sample` checks the rest."""
    return len(lines) >= 2 and lines[1].startswith("{ sec = ")


def parse_freebsd_sample(lines: list[str]) -> Snapshot:
    """One sample's body, the output of :data:`SAMPLE_COMMAND`: line 1 ``date``, line 2
    ``kern.boottime``, then netstat's output, libxo JSON (starts with ``{``) or text (``tcp:``).

    Errors name the part (``date``, ``kern.boottime``, or the netstat command) and the line within it.
    Raises :class:`ProbeParseError` only.
    """
    if len(lines) < 3:
        raise ProbeParseError(
            f"{len(lines)} line(s): a FreeBSD sample is date, kern.boottime, then netstat's output",
            "FreeBSD sample",
        )
    now = parse_now(lines[0])
    boottime = parse_boottime(lines[1])
    rest = "\n".join(lines[2:])
    if rest.lstrip().startswith("{"):
        counters = parse_tcp_stats_json(rest)
    else:
        counters = parse_tcp_stats_text(rest)
    return freebsd_snapshot(counters, boottime, now)


__all__ = [
    "BOOTTIME",
    "DATE",
    "IN_ERRS_PARTS",
    "JSON_FIELDS",
    "LINUX_NAMES",
    "MAPPING_NOTES",
    "NETSTAT_JSON",
    "NETSTAT_TEXT",
    "SAMPLE_COMMAND",
    "STATES_TITLE",
    "TCP_STATS",
    "Emit",
    "Found",
    "freebsd_snapshot",
    "locate_tcp_stats_text",
    "looks_like_freebsd",
    "parse_boottime",
    "parse_freebsd_sample",
    "parse_now",
    "parse_tcp_stats_json",
    "parse_tcp_stats_text",
]
