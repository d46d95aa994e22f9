"""The runbook as ONE remote shell script, and the parsing of its framed output.

Everything an engineer would type on a host that resets — ``ss``, ``lsof``, a short RST capture with
``tcpdump``, a look at memory, sysctls and logs — runs in one exec over the sweep's own connection.
The script is fixed text; the only values put into it are validated numbers and the ``sudo`` user,
quoted with ``shlex.quote``. Nothing a host or an inventory says reaches the shell otherwise.

Each step is bounded on the host: in time (``timeout``, when the host has it), in size (``head -c``
or ``tail -c``, so the output never grows past its cap whatever the tool prints) and on disk (what is
kept in the temporary directory is already capped). Privileged steps go through ``sudo -n -u USER
--`` when become is on; when sudo refuses (a password is needed, the command is not allowed) the step
runs again unprivileged and the refusal is reported. Output is framed with a random marker per run,
so text from the host cannot forge a frame::

    @@<nonce> begin v1
    @@<nonce> step ss rc=0 bytes=1234 cap=262144
    ...what the step printed (stdout)...
    @@<nonce> sudo                 (only when sudo refused: what sudo said)
    @@<nonce> stderr
    ...the step's stderr, at most 2 KiB...
    @@<nonce> end
    @@<nonce> step lsof missing     (the tool is not installed)
    @@<nonce> end
    @@<nonce> done
"""

from __future__ import annotations

import math
import re
import secrets
import shlex
from dataclasses import dataclass, field

from .errors import InvestigateParseError

FORMAT_VERSION = 1
MAX_CAPTURE_S = 300.0
SNAPLEN = 128  # enough for the SLL2 + IPv6 + TCP headers with options
KIB = 1024

#: per step: (output cap in bytes, runs through sudo when become is on)
CAPS: dict[str, int] = {
    "ss": 192 * KIB,
    "listeners": 32 * KIB,
    "lsof": 64 * KIB,
    "samples": 64 * KIB,
    "context": 16 * KIB,
    "journal": 64 * KIB,
    "syslog": 64 * KIB,
    "capture": 0,  # the pcap stays on the host unless asked for; its size is bounded by -c and -s
    "capture-text": 160 * KIB,
    # FreeBSD's in their place (the sum is the same as ss + listeners + lsof: max_output holds)
    "netstat": 192 * KIB,
    "netstat-listen": 32 * KIB,
    "sockstat": 64 * KIB,
}
# FreeBSD's tunables the context step reads (as `sysctl NAME: VALUE` lines), and the Linux names the
# classifier knows them by where they mean the same thing.
FREEBSD_SYSCTLS = (
    "kern.ipc.somaxconn",
    "kern.ipc.soacceptqueue",
    "net.inet.tcp.syncookies",
    "net.inet.tcp.blackhole",
    "net.inet.tcp.drop_synfin",
    "net.inet.tcp.log_in_vain",
    "net.inet.tcp.msl",
    "net.inet.ip.portrange.first",
    "net.inet.ip.portrange.last",
)
# RST segments, IPv4 and IPv6 (libpcap's tcp[] does not reach into IPv6; no extension headers here)
RST_FILTER = "tcp[tcpflags] & tcp-rst != 0 or (ip6 and ip6[6] == 6 and ip6[53] & 4 != 0)"
CONTEXT_FILES = (
    "/proc/loadavg",
    "/proc/net/sockstat",
    "/proc/net/sockstat6",
    "/proc/sys/net/ipv4/tcp_mem",
    "/proc/sys/net/ipv4/tcp_syn_retries",
    "/proc/sys/net/ipv4/tcp_synack_retries",
    "/proc/sys/net/ipv4/tcp_abort_on_overflow",
    "/proc/sys/net/core/somaxconn",
    "/proc/sys/net/ipv4/tcp_max_syn_backlog",
    "/proc/sys/net/ipv4/tcp_syncookies",
    "/proc/sys/net/ipv4/tcp_rfc1337",
    "/proc/sys/net/ipv4/tcp_tw_reuse",
    "/proc/sys/net/ipv4/tcp_fin_timeout",
    "/proc/sys/net/ipv4/tcp_max_orphans",
    "/proc/sys/net/ipv4/ip_local_port_range",
)
# FreeBSD's sockstat(1): IPv4 and IPv6, connected and listening, TCP only, numeric user ids (no
# directory lookup that could hang), wide (15 cuts addresses to 21 characters without -w), states.
# -n needs FreeBSD 13 (12 is past its end of life and refuses it: the owners are then unseen).
SOCKSTAT_FLAGS = "-46 -c -l -n -s -w -P tcp"
_USER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$")


@dataclass(frozen=True)
class Plan:
    """What to run on one host. Every field is validated before it reaches the script."""

    capture_s: float | None = None  # None: no capture
    max_packets: int = 1000
    save_pcap: bool = False
    pcap_max_bytes: int = 256 * KIB
    logs: bool = False
    become_user: str | None = None  # None: nothing through sudo
    step_timeout_s: float = 4.0
    samples: int = 0  # extra quick looks at connected sockets, for short-lived ones

    def __post_init__(self) -> None:
        if self.capture_s is not None and not (
            math.isfinite(self.capture_s) and 0 < self.capture_s <= MAX_CAPTURE_S
        ):
            raise ValueError(f"capture must last more than 0 and at most {MAX_CAPTURE_S:g}s")
        if not 1 <= self.max_packets <= 100_000:
            raise ValueError("max_packets must be between 1 and 100000")
        if not 1024 <= self.pcap_max_bytes <= 64 * KIB * KIB:
            raise ValueError("pcap_max_bytes must be between 1 KiB and 64 MiB")
        if not (math.isfinite(self.step_timeout_s) and 0 < self.step_timeout_s <= 60):
            raise ValueError("step_timeout_s must be in (0, 60]")
        if not 0 <= self.samples <= 50:
            raise ValueError("samples must be between 0 and 50")
        if self.become_user is not None and not _USER_NAME.match(self.become_user):
            raise ValueError(f"not a user name sudo could take: {self.become_user!r}")

    @property
    def deadline_s(self) -> float:
        """How long the whole script may take: the capture runs beside the other steps."""
        steps = 6 + (2 if self.logs else 0) + (2 if self.capture_s else 0)
        return max(self.capture_s or 0.0, steps * self.step_timeout_s) + self.samples * 0.1 + 5.0

    @property
    def max_output(self) -> int:
        """The output cap for the exec: every step's cap, the framing, and the pcap in base64."""
        steps = ["ss", "listeners", "lsof", "context"]
        steps += ["samples"] if self.samples else []
        steps += ["journal", "syslog"] if self.logs else []
        steps += ["capture-text"] if self.capture_s else []
        total = sum(CAPS[s] for s in steps) + 32 * KIB  # + the framing and every step's stderr
        if self.save_pcap:
            total += self.pcap_max_bytes * 4 // 3 + self.pcap_max_bytes // 38 + 4 * KIB
        return total


def _num(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    assert re.fullmatch(r"[0-9]+(\.[0-9]+)?", text), text
    return text


_PRELUDE = r"""PATH="$PATH:/usr/sbin:/sbin:/usr/bin:/bin"; export PATH
LC_ALL=C; export LC_ALL
M=@@{nonce}
echo "$M begin v{version}"
d=$(mktemp -d 2>/dev/null) || {{
  echo "$M fatal cannot make a temporary directory (mktemp -d)"; echo "$M done"; exit 0
}}
trap 'rm -rf "$d"' EXIT
trap 'exit 1' HUP INT TERM
BU={become}
if command -v timeout >/dev/null 2>&1; then HT=1; else HT=; fi
if [ -r /proc/net/snmp ]; then LX=1; TI='-i any'; else LX=; TI=; fi  # Linux; else FreeBSD
bounded() {{ if [ -n "$HT" ] && [ -n "$TO" ]; then timeout "$TO" "$@"; else "$@"; fi; }}
run() {{
  p=$1; shift
  if [ "$p" = 1 ] && [ -n "$BU" ]; then
    bounded sudo -n -u "$BU" -- "$@" 2>"$E"; rc=$?
    if [ "$rc" -ne 0 ] && grep -q -e '^sudo:' -e 'not allowed to execute' -e 'password is required' \
        "$E" 2>/dev/null; then
      mv "$E" "$E.sudo"; bounded "$@" 2>"$E"; rc=$?
    fi
  else
    bounded "$@" 2>"$E"; rc=$?
  fi
  echo "$rc" >"$R"
}}
emit() {{
  echo "$M step $1 rc=$(cat "$R" 2>/dev/null || echo x) bytes=$(wc -c <"$O" | tr -d ' ') cap=$2"
  if [ "$3" = show ]; then cat "$O"; echo; fi
  if [ -s "$E.sudo" ]; then echo "$M sudo"; head -c 1024 "$E.sudo"; echo; fi
  echo "$M stderr"; head -c 2048 "$E" 2>/dev/null; echo
  echo "$M end"
}}
has() {{ command -v "$1" >/dev/null 2>&1; }}
missing() {{ echo "$M step $1 missing $2"; echo "$M end"; }}
cutstep() {{
  keep=$1; n=$2; cap=$3; p=$4; shift 4
  if ! has "$1"; then missing "$n" "$1"; return; fi
  E="$d/$n.e"; R="$d/$n.rc"; O="$d/$n.o"
  {{ run "$p" "$@"; }} | "$keep" -c "$cap" >"$O"
  emit "$n" "$cap" show
}}
step() {{ cutstep head "$@"; }}      # keep the first CAP bytes
tailstep() {{ cutstep tail "$@"; }}  # keep the last CAP bytes (logs: the newest lines)
context() {{
  for f in {context_files}; do
    if [ -r "$f" ]; then printf '%s ' "$f"; tr '\n' ' ' <"$f"; echo; fi
  done
  grep -e '^MemTotal:' -e '^MemAvailable:' /proc/meminfo 2>/dev/null
  if [ -z "$LX" ]; then sysctl {freebsd_sysctls} 2>/dev/null | sed 's/^/sysctl /'; fi
  id -un 2>/dev/null | sed 's/^/user /'
}}
TO={step_timeout}
"""

_CAPTURE_START = r"""if has tcpdump; then
  cap_ok=1
  ( E="$d/capture.e"; R="$d/capture.rc"; TO={capture_s}
    run 1 tcpdump $TI -nn -U -s {snaplen} -c {max_packets} -w - {rst_filter} \
  ) | head -c {pcap_cap} >"$d/capture.pcap" &
  cap_pid=$!
else
  cap_ok=
fi
"""

_CAPTURE_END = r"""if [ -n "$cap_ok" ]; then
  wait "$cap_pid"
  E="$d/capture.e"; R="$d/capture.rc"; O="$d/capture.pcap"
  emit capture 0 hide
  TO={step_timeout}
  if [ -s "$d/capture.pcap" ]; then
    step capture-text {text_cap} 0 tcpdump -nn -r "$d/capture.pcap"
{pcap}  fi
else
  missing capture tcpdump
fi
"""

_PCAP = r"""    if has base64; then
      echo "$M pcap bytes=$(wc -c <"$d/capture.pcap" | tr -d ' ')"; base64 <"$d/capture.pcap"; echo "$M end"
    else
      missing pcap base64
    fi
"""


def new_nonce() -> str:
    return secrets.token_hex(8)


def build_script(plan: Plan, nonce: str) -> str:
    """The runbook for one host, as POSIX shell text (run by the login shell, like the probe)."""
    if not re.fullmatch(r"[0-9a-f]{8,32}", nonce):
        raise ValueError("nonce must be 8 to 32 lowercase hex digits")
    parts = [
        _PRELUDE.format(
            nonce=nonce,
            version=FORMAT_VERSION,
            become=shlex.quote(plan.become_user) if plan.become_user else "''",
            context_files=" ".join(shlex.quote(f) for f in CONTEXT_FILES),
            freebsd_sysctls=" ".join(FREEBSD_SYSCTLS),
            step_timeout=_num(plan.step_timeout_s),
        )
    ]
    if plan.capture_s:
        parts.append(
            _CAPTURE_START.format(
                capture_s=_num(plan.capture_s),
                snaplen=SNAPLEN,
                max_packets=int(plan.max_packets),
                rst_filter=shlex.quote(RST_FILTER),
                pcap_cap=int(plan.pcap_max_bytes),
            )
        )
    parts.append(
        'if [ -n "$LX" ]; then\n'
        f"step ss {CAPS['ss']} 1 ss -tanp\n"
        f"step listeners {CAPS['listeners']} 0 ss -tln\n"
        # lsof only where ss is missing or could name no owner at all
        f"if ! has ss || ! grep -q 'users:' \"$d/ss.o\" 2>/dev/null; then\n"
        f"  step lsof {CAPS['lsof']} 1 lsof +c 15 -i -P -n\nfi\n"
        "else\n"  # FreeBSD: netstat for states and queues, sockstat for the owners
        # -W: IPv6 addresses whole (cut to 16 characters without it); -a: -L skips listeners without it
        f"step netstat {CAPS['netstat']} 0 netstat -anW -p tcp\n"
        f"step netstat-listen {CAPS['netstat-listen']} 0 netstat -LanW -p tcp\n"
        f"step sockstat {CAPS['sockstat']} 1 sockstat {SOCKSTAT_FLAGS}\n"
        "fi\n"
    )
    if plan.samples:
        parts.append(
            f'E="$d/samples.e"; R="$d/samples.rc"; O="$d/samples.o"\n'
            f"if has ss; then\n"
            f'  {{ i=0; while [ "$i" -lt {int(plan.samples)} ]; do run 1 ss -tanp state connected; '
            f'sleep 0.05; i=$((i+1)); done; }} | head -c {CAPS["samples"]} >"$O"\n'
            f"  emit samples {CAPS['samples']} show\nfi\n"
        )
    parts.append(
        'E="$d/context.e"; R="$d/context.rc"; O="$d/context.o"\n'
        f'{{ context 2>"$E"; echo $? >"$R"; }} | head -c {CAPS["context"]} >"$O"\n'
        f"emit context {CAPS['context']} show\n"
    )
    if plan.logs:
        parts.append(
            "if has journalctl; then\n"
            f"  tailstep journal {CAPS['journal']} 1 journalctl -k -n 400 --no-pager -q -o short-iso\n"
            f"else\n  tailstep journal {CAPS['journal']} 1 dmesg\nfi\n"
            "for f in /var/log/kern.log /var/log/syslog /var/log/messages /var/log/system.log; do\n"
            f'  if [ -e "$f" ]; then tailstep syslog {CAPS["syslog"]} 1 tail -n 2000 "$f"; break; fi\n'
            "done\n"
        )
    if plan.capture_s:
        parts.append(
            _CAPTURE_END.format(
                step_timeout=_num(plan.step_timeout_s),
                text_cap=CAPS["capture-text"],
                pcap=_PCAP if plan.save_pcap else "",
            )
        )
    parts.append('echo "$M done"\n')
    return "".join(parts)


# --- the output ------------------------------------------------------------------------------------


@dataclass
class StepOutput:
    name: str
    rc: int | None = None  # None: no exit status (the step did not finish)
    stdout: str = ""
    stderr: str = ""
    sudo_error: str | None = None  # what sudo said when it refused (the step then ran unprivileged)
    missing: str | None = None  # the tool that is not installed
    bytes: int = 0
    cap: int = 0

    @property
    def truncated(self) -> bool:
        return self.cap > 0 and self.bytes >= self.cap

    @property
    def timed_out(self) -> bool:
        return self.rc == 124  # timeout(1)'s status when it had to stop the command


@dataclass
class RunbookOutput:
    steps: dict[str, StepOutput] = field(default_factory=dict)
    pcap_base64: str | None = None
    complete: bool = False  # the "done" line was seen
    fatal: str | None = None


_STEP = re.compile(
    r"step ([a-z-]{1,20})(?: rc=([0-9]{1,3}|x) bytes=([0-9]{1,12}) cap=([0-9]{1,12})| missing (\S{1,40}))$"
)


def parse_runbook_output(text: str, nonce: str) -> RunbookOutput:
    """Split the script's output back into steps. Text outside the frames (login banners) is ignored.

    Raises InvestigateParseError when the frames themselves are broken (the begin line is missing,
    a step never ends); a step cut short by the deadline is simply absent.
    """
    marker = f"@@{nonce} "
    out = RunbookOutput()
    lines = text.split("\n")
    begun = False
    current: StepOutput | None = None
    section = ""  # "stdout", "sudo", "stderr", "pcap"
    buffers: dict[str, list[str]] = {}
    for line_no, line in enumerate(lines, start=1):
        if line.startswith(marker):
            word = line[len(marker) :].rstrip("\r")
            if word.startswith("begin "):
                if word != f"begin v{FORMAT_VERSION}":
                    raise InvestigateParseError("runbook", f"unknown format {word[6:]!r}", line_no)
                begun = True
                continue
            if not begun:
                raise InvestigateParseError("runbook", "a frame before the begin line", line_no)
            if word.startswith("fatal "):
                out.fatal = word[6:]
                continue
            if word == "done":
                out.complete = True
                continue
            if word.startswith("step "):
                if current is not None:
                    raise InvestigateParseError("runbook", f"step {current.name} never ended", line_no)
                match = _STEP.match(word)
                if not match:
                    raise InvestigateParseError("runbook", "a step line it cannot read", line_no, line)
                name, rc, size, cap, missing = match.groups()
                current = StepOutput(name)
                if missing:
                    current.missing = missing
                else:
                    current.rc = None if rc == "x" else int(rc)
                    current.bytes, current.cap = int(size), int(cap)
                section, buffers = "stdout", {"stdout": [], "sudo": [], "stderr": []}
                continue
            if word.startswith("pcap bytes="):
                if current is not None:
                    raise InvestigateParseError("runbook", f"step {current.name} never ended", line_no)
                current = StepOutput("pcap")
                section, buffers = "pcap", {"pcap": []}
                continue
            if word in ("sudo", "stderr") and current is not None:
                section = word
                continue
            if word == "end" and current is not None:
                if current.name == "pcap":
                    out.pcap_base64 = "".join(buffers["pcap"])
                else:
                    current.stdout = _joined(buffers["stdout"])
                    current.stderr = _joined(buffers["stderr"])
                    sudo = _joined(buffers["sudo"]).strip()
                    current.sudo_error = sudo or None
                    out.steps[current.name] = current
                current = None
                continue
            raise InvestigateParseError("runbook", "a frame line it cannot read", line_no, line)
        if current is not None:
            buffers[section].append(line)
    if current is not None and out.complete:
        raise InvestigateParseError("runbook", f"step {current.name} never ended")
    if not begun:
        raise InvestigateParseError("runbook", "no begin line: the script did not run")
    return out


def _joined(lines: list[str]) -> str:
    """A section's text; the ``echo`` after each section adds one line break of ours."""
    text = "\n".join(lines)
    return text[:-1] if text.endswith("\n") else text
