"""Every network namespace on a host: the probe's part that lists them, reads them, names them.

``/proc/net/snmp`` counts only the namespace of the process that reads it; every container (every
Kubernetes pod) has a namespace of its own with its own TCP counters. ``/proc/<pid>/net/snmp`` shows
the namespace of ``<pid>`` and is world-readable, so one process in a namespace (its *holder*) is
enough to read it. Finding which namespace a process is in (``/proc/<pid>/ns/net``) needs the same
user or root, hence ``--containers auto``: the listing runs when the probe's user is root (it owns
pid 1) or through ``sudo -n`` with ``-b``; otherwise the host is measured as before and the result
says what could not be seen and why.

What the probe adds, in its ONE exec (all of it bounded, none of it per process)::

    @@fleetrst-netns v1 list                      once, before sample 0
    ...`ls -ln /proc/[0-9]*/ns/net` and the runtimes' directories, reduced by one awk...
    @@fleetrst-netns end list
    @@fleetrst-netns v1 sample 0                  after each of the host's samples
    ...one awk reads every holder's stat, net/snmp and net/netstat...
    @@fleetrst-netns end sample 0

Programs: ``ls`` and ``awk`` once (plus ``sudo`` and ``sh`` under ``-b``; plus one ``nsenter``
running ``sleep`` for each namespace held only by a bind mount, at most :data:`MAX_ENTERED`), then
one ``awk`` per sample. Sizes: at most :data:`MAX_NAMESPACES` namespaces are read, and each sample's
awk stops after :data:`SAMPLE_BUDGET` bytes; the ``Tcp:``/``TcpExt:`` header lines, the same for
every namespace of a kernel, are printed once. Names, cgroup paths and file names a host prints are
printed by awk after a marker, with non-printable characters replaced, so they cannot forge a frame.

The listing's lines (all optional, any order; unknown ones ignored)::

    @@procs <processes seen> <processes whose namespace could not be read>
    @@host <inode>                                the probe's own namespace (the host row)
    @@netns <inode> <holder pid> <start ticks> <processes in it>
    @@comm <pid> <comm>
    @@cgroup <pid> <cgroup path>
    @@entry <inode> <directory> <name>            /run/netns, /run/docker/netns, /run/runc, /var/log/pods
    @@docker <64-hex id> <name>                   from /var/lib/docker/containers/<id>/config.v2.json
    @@podman <64-hex id> <name>                   from containers/storage's containers.json
    @@bindonly <inode> <path>                     a namespace with no process, only a bind mount
    @@entered <inode> <holder pid> <path>         ... given a holder (nsenter ... sleep) for the probe
    @@unentered <inode> <path> <why>
    @@cut <namespaces left out>
    @@unseen <why>                                nothing could be listed (not root, sudo refused)
    @@pids <pid> <pid> ...                        the holders the samples read (always the last line)

A sample's lines::

    @@u <uptime> <idle>                           /proc/uptime, read before the namespaces
    @@h Tcp: <names>   @@h TcpExt: <names>        a header, whenever it differs from the last one
    @@ns <pid> <start ticks>                      then that holder's value lines:
    Tcp: <values>
    TcpExt: <values>
    @@gone <pid>                                  the holder has exited
    @@unread <path>                               a file that could not be read
    @@cut <holders left out>                      the sample's output reached its budget
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from ..model import ConnectionSettings, NamespaceResult, Snapshot, Threshold, Trip
from .counters import MeasureError, ProbeParseError, measure_rates, parse_netstat, parse_snmp
from .rules import (
    ContainerOverrides,
    judge,
    namespace_thresholds,
    parse_container_threshold_overrides,
    parse_threshold_overrides,
)

FORMAT_VERSION = 1
MAX_NAMESPACES = 500  # read at most this many namespaces a host (the rest are counted)
NAMESPACE_CHURN = 5  # processes that may exit between the listing and the read, unremarked
MAX_ENTERED = 16  # namespaces held only by a bind mount that get a holder for the probe
MAX_ENTRIES = 1024  # names read from each runtime directory
SAMPLE_BUDGET = 192 * 1024  # bytes a sample's awk prints at most: 3 samples + listing < 1 MiB
MAX_CGROUP_LINES = 4  # distinct cgroup paths kept per holder
NAME_DIRS: tuple[str, ...] = ("/run/netns", "/run/docker/netns", "/run/runc", "/var/log/pods")
DOCKER_CONTAINERS = "/var/lib/docker/containers"
PODMAN_CONTAINERS = "/var/lib/containers/storage/overlay-containers/containers.json"

BEGIN_LIST = f"@@fleetrst-netns v{FORMAT_VERSION} list"
BEGIN_SAMPLE = f"@@fleetrst-netns v{FORMAT_VERSION} sample"
END = "@@fleetrst-netns end"
_USER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$")

# --- the remote side ----------------------------------------------------------------------------------

# Reads `ls -lni` of the holders' ns links and of the runtimes' directories; prints the listing.
# mawk has no regex intervals ({64}): lengths are checked with length().
_LIST_AWK = r"""
function clean(s) { gsub(/[^ -~]/, "?", s); return s }
function stat(p,   f, s, r) {
  f = "/proc/" p "/stat"; s = ""; r = (getline s < f); close(f)
  return r > 0 ? s : ""
}
/^\/.*:$/ { sec = substr($0, 1, length($0) - 1); next }
/^total [0-9]/ || /^$/ { next }
sec == "" {
  procs++
  n = split($0, w, " ")
  if (n < 4 || w[n - 1] != "->" || w[n] !~ /^net:\[[0-9]+\]$/) { denied++; next }
  t = substr(w[n], 6, length(w[n]) - 6); p = w[n - 2]; sub(/\/.*/, "", p)
  if (p == self) { host = t; next }
  cnt[t]++
  if (!(t in hold) || p + 0 < hold[t] + 0) hold[t] = p
  next
}
{
  if (++ents[sec] > E) next
  name = $0
  sub(/^ *[0-9]+ +[^ ]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+,? *[0-9]* +[^ ]+ +[0-9]+ +[^ ]+ /, "", name)
  ino[sec, name] = $1; names[++nent] = sec SUBSEP name
}
END {
  if (procs == 0) { print "@@unseen no process could be listed in /proc"; exit }
  print "@@procs " procs + 0 " " denied + 0
  if (host != "") print "@@host " host
  pids = ""; k = 0
  for (t in hold) {
    if (t == host) continue
    if (++k > M) { cut++; continue }
    p = hold[t]; s = stat(p)
    st = s; sub(/.*\) /, "", st); split(st, F, " ")
    c = s; sub(/^[^(]*\(/, "", c); sub(/\)[^)]*$/, "", c)
    print "@@netns " t " " p " " (F[20] ~ /^[0-9]+$/ ? F[20] : 0) " " cnt[t]
    print "@@comm " p " " clean(c)
    pids = pids " " p
    f = "/proc/" p "/cgroup"; m = 0
    while ((getline l < f) > 0 && m < C) {
      sub(/^[^:]*:[^:]*:/, "", l); l = clean(substr(l, 1, 400))
      if ((p, l) in seen) continue
      seen[p, l] = 1; m++; print "@@cgroup " p " " l
      if (match(l, /docker[-\/][0-9a-f]+/) && RLENGTH == 71) docker[substr(l, RSTART + 7, 64)] = 1
      if (match(l, /libpod-[0-9a-f]+/) && RLENGTH == 71) podman[substr(l, RSTART + 7, 64)] = 1
    }
    close(f)
  }
  for (i = 1; i <= nent; i++) {
    split(names[i], kv, SUBSEP); d = kv[1]; name = kv[2]; t = ino[d, name]
    if (d ~ /netns$/) {
      if (t == host) continue
      if (!(t in hold)) {
        if (bound[t]++) continue
        if (++b > B) { bcut++; continue }
        print "@@bindonly " t " " d "/" clean(name); continue
      }
    }
    print "@@entry " t " " d " " clean(name)
  }
  if (bcut) print "@@unentered-count " bcut
  for (id in docker) {
    f = D "/" id "/config.v2.json"; j = ""; getline j < f; close(f)
    if (match(j, /"Name":"\/[^"]*"/)) print "@@docker " id " " clean(substr(j, RSTART + 9, RLENGTH - 10))
  }
  j = ""
  for (id in podman) {
    if (j == "") { getline j < P; close(P) }
    x = "\"id\":\"" id "\",\"names\":[\""; i = index(j, x)
    if (i) { r = substr(j, i + length(x)); print "@@podman " id " " clean(substr(r, 1, index(r, "\"") - 1)) }
  }
  print "@@cut " cut + 0
  print "@@pids" pids
}
"""

# Reads every holder's stat (is it still the same process?), net/snmp and net/netstat.
_SAMPLE_AWK = r"""
function r(f, t, p,   l, h, rc) {
  h = 0
  while ((rc = (getline l < f)) > 0) {
    if (index(l, t " ") != 1) continue
    if (!h) { h = 1; if (l != H[t]) { H[t] = l; print "@@h " l; out += length(l) + 4 }; continue }
    print l; out += length(l) + 1
  }
  close(f)
  if (rc < 0) print "@@unread " f
}
BEGIN {
  if ((getline u < "/proc/uptime") > 0) print "@@u " u
  close("/proc/uptime")
  n = split(L, P, " ")
  for (i = 1; i <= n; i++) {
    p = P[i]
    if (p !~ /^[0-9]+$/) continue
    if (out > B) { print "@@cut " n - i + 1; break }
    f = "/proc/" p "/stat"; s = ""
    if ((getline s < f) <= 0) { close(f); print "@@gone " p; continue }
    close(f)
    sub(/.*\) /, "", s); split(s, F, " ")
    print "@@ns " p " " F[20]; out += 32
    r("/proc/" p "/net/snmp", "Tcp:", p)
    r("/proc/" p "/net/netstat", "TcpExt:", p)
  }
}
"""


def _listing_inner(hold_s: str) -> str:
    """The listing as a script of its own (run as it is, or through ``sudo -n ... sh -c``)."""
    awk = (
        f"awk -v self=$$ -v M={MAX_NAMESPACES} -v E={MAX_ENTRIES} -v C={MAX_CGROUP_LINES} "
        f"-v B={MAX_ENTERED} -v D={DOCKER_CONTAINERS} -v P={PODMAN_CONTAINERS} {shlex.quote(_LIST_AWK)}"
    )
    dirs = " ".join(NAME_DIRS)
    # A namespace held only by a bind mount has no /proc/<pid>/net: as root, give it a holder that
    # sleeps through the probe (nsenter execs sleep: same pid), and wait until it is inside.
    enter = (
        "case $t in @@bindonly) if [ -O /proc/1 ] && command -v nsenter >/dev/null 2>&1; then "
        f'nsenter --net="$b" sleep {hold_s} </dev/null >/dev/null 2>&1 & h=$!; n=0; '
        'while [ $n -lt 5000 ] && ! [ /proc/$h/ns/net -ef "$b" ] && kill -0 $h 2>/dev/null; '
        "do n=$((n+1)); done; "
        'if [ /proc/$h/ns/net -ef "$b" ]; then echo "@@entered $a $h $b"; x="$x $h"; '
        'else kill $h 2>/dev/null; echo "@@unentered $a $b could not enter"; fi; '
        'else echo "@@unentered $a $b entering a namespace needs root and nsenter"; fi;; '
        '@@pids) x="$a $b$x";; *) printf "%s\\n" "$t $a $b";; esac'
    )
    return (
        f"o=$(cd /proc && ls -lni [0-9]*/ns/net {dirs} 2>/dev/null | {awk}); x=; "
        f"while read -r t a b; do {enter}; done <<EOF\n$o\nEOF\n"
        'echo "@@pids $x"'
    )


def listing_command(hold_s: str, become_user: str | None = None) -> str:
    """The probe's listing step: frames, then the listing as the probe's user (when it is root) or
    through ``sudo -n -u USER`` (``become_user``); sets ``NP`` to the holders' pids for the samples."""
    inner = _listing_inner(hold_s)
    if become_user is not None:
        if not _USER_NAME.match(become_user):
            raise ValueError(f"not a user name sudo could take: {become_user!r}")
        run = (
            f"if command -v sudo >/dev/null 2>&1; then "
            f"NL=$(sudo -n -u {shlex.quote(become_user)} -- sh -c {shlex.quote(inner)} 2>&1); "
            "else NL='@@unseen no sudo on the host (-b)'; fi"
        )
    else:
        run = f"if [ -O /proc/1 ]; then NL=$({inner}\n); else NL='@@unseen not-root'; fi"
    return (
        f"NP=; echo '{BEGIN_LIST}'; {run}; printf '%s\\n' \"$NL\"; "
        "case $NL in *@@pids*) NP=${NL##*@@pids};; esac; "
        f"echo '{END} list'"
    )


def sample_command(index: int) -> str:
    """The probe's step after the host's sample ``index``: every holder read by one awk."""
    awk = f'awk -v B={SAMPLE_BUDGET} -v L="$NP" {shlex.quote(_SAMPLE_AWK)} </dev/null'
    return f"echo '{BEGIN_SAMPLE} {index}'; if [ -n \"$NP\" ]; then {awk}; fi; echo '{END} sample {index}'"


# --- the parsed output --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    """One namespace as the listing saw it: its holder, what it is called, what holds it."""

    inode: int
    pid: int
    start_ticks: int  # the holder's start time (field 22 of /proc/<pid>/stat); 0 unknown
    processes: int  # processes seen in it (0: held only by a bind mount)
    comm: str = ""
    cgroups: tuple[str, ...] = ()
    binds: tuple[str, ...] = ()  # bind mounts of it: /run/netns/NAME, /run/docker/netns/ID


@dataclass(frozen=True)
class Names:
    """What the runtimes' directories and files say: the names to give namespaces."""

    pods: Mapping[str, str] = field(default_factory=dict)  # pod uid -> "namespace/pod"
    runc: frozenset[str] = frozenset()
    docker: Mapping[str, str] = field(default_factory=dict)  # container id -> name
    podman: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reading:
    """One holder in one sample: its counters, or why there are none."""

    pid: int
    start_ticks: int
    tcp: Mapping[str, int] = field(default_factory=dict)
    tcpext: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class NamespaceOutput:
    """The namespace part of one probe run."""

    listed: tuple[Listed, ...] = ()
    names: Names = field(default_factory=Names)
    samples: tuple[tuple[float | None, Mapping[int, Reading]], ...] = ()  # (uptime, by pid) a sample
    unseen: tuple[str, ...] = ()  # what could not be seen, and why (one line each)


_INT = re.compile(r"[0-9]{1,20}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_POD_DIR = re.compile(
    r"^(?P<ns>[^_/]+)_(?P<pod>[^_/]+)_(?P<uid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)
_MAX_LINE = 8192


def _int(text: str) -> int | None:
    return int(text) if _INT.fullmatch(text) else None


def _blocks(text: str) -> tuple[list[str] | None, dict[int, list[str]]]:
    """The listing's lines and each sample's lines, by their frames (the first of each wins)."""
    listing: list[str] | None = None
    samples: dict[int, list[str]] = {}
    current: list[str] | None = None
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if line.startswith(END):
            current = None
        elif line == BEGIN_LIST:
            current = [] if listing is None else None
            if current is not None:
                listing = current
        elif line.startswith(BEGIN_SAMPLE + " "):
            index = _int(line[len(BEGIN_SAMPLE) + 1 :])
            current = [] if index is not None and index not in samples and index < 1000 else None
            if current is not None and index is not None:
                samples[index] = current
        elif current is not None and len(line) <= _MAX_LINE:
            current.append(line)
    return listing, samples


def _one_line(text: str) -> str:
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text[:200] + ("…" if len(text) > 200 else "")


def _parse_listing(lines: list[str]) -> tuple[tuple[Listed, ...], Names, list[str]]:
    netns: dict[int, tuple[int, int, int]] = {}  # inode -> (holder pid, its start ticks, processes)
    comm: dict[int, str] = {}
    cgroups: dict[int, list[str]] = {}
    binds: dict[int, list[str]] = {}
    pods: dict[str, str] = {}
    runc: set[str] = set()
    named: dict[str, dict[str, str]] = {"@@docker": {}, "@@podman": {}}
    unseen: list[str] = []
    said_pids = False
    other: list[str] = []
    for raw in lines:
        line = raw.rstrip()
        word, _, rest = line.partition(" ")
        if word == "@@netns":
            values = [_int(v) for v in rest.split(" ")]
            if len(values) == 4:
                inode, pid, start, count = values
                if inode is not None and pid and start is not None and count is not None:
                    netns.setdefault(inode, (pid, start, count))
        elif word == "@@comm":
            pid_text, _, name = rest.partition(" ")
            if (pid := _int(pid_text)) is not None:
                comm.setdefault(pid, name)
        elif word == "@@cgroup":
            pid_text, _, path = rest.partition(" ")
            if (pid := _int(pid_text)) is not None and len(cgroups.setdefault(pid, [])) < MAX_CGROUP_LINES:
                cgroups[pid].append(path)
        elif word == "@@entry":
            inode_text, _, where = rest.partition(" ")
            directory, _, name = where.partition(" ")
            inode = _int(inode_text)
            if inode is None or not name or "/" in name:
                continue
            if directory == "/var/log/pods" and (pod := _POD_DIR.match(name)):
                pods[pod["uid"]] = f"{pod['ns']}/{pod['pod']}"
            elif directory == "/run/runc":
                runc.add(name)
            elif directory in ("/run/netns", "/run/docker/netns"):
                binds.setdefault(inode, []).append(f"{directory}/{name}")
        elif word in named:
            ident, _, name = rest.partition(" ")
            if _HEX64.fullmatch(ident) and name:
                named[word][ident] = name
        elif word == "@@entered":
            f = rest.split(" ", 2)
            inode, pid = (_int(f[0]), _int(f[1])) if len(f) == 3 else (None, None)
            if inode is not None and pid and inode not in netns:
                netns[inode] = (pid, 0, 0)
                binds.setdefault(inode, []).append(f[2])
        elif word == "@@unentered":
            unseen.append(f"namespace not read: {_one_line(rest)}")
        elif word == "@@unentered-count":
            unseen.append(f"{_one_line(rest)} more namespaces held only by a bind mount were not read")
        elif word == "@@procs":
            f = rest.split(" ")
            procs, denied = (_int(f[0]), _int(f[1])) if len(f) == 2 else (None, None)
            # A few processes always exit between the listing and the read (the probe's own among
            # them): that is churn, not a blind spot. Say so only when it is more than that.
            if procs is not None and denied and denied > max(NAMESPACE_CHURN, procs // 100):
                unseen.append(
                    f"{denied} of {_one_line(f[0])} processes: their namespace could not be identified "
                    "(not permitted, or exited)"
                )
        elif word == "@@cut":
            if cut := _int(rest):
                unseen.append(f"{cut} namespaces not read: more than {MAX_NAMESPACES} on the host")
        elif word == "@@unseen":
            if rest == "not-root":
                unseen.append(
                    "namespaces not listed: the probe's user is not root (use -b to list them through sudo)"
                )
            else:
                unseen.append(f"namespaces not listed: {_one_line(rest)}")
        elif word == "@@pids":
            said_pids = True
        elif word != "@@host" and line.strip():
            other.append(line)
    if not said_pids and not any(u.startswith("namespaces not listed") for u in unseen):
        said = _one_line(" ".join(other)) if other else "the listing ended early"
        if said.startswith("sudo:") or "password is required" in said:
            unseen.append(f"namespaces not listed: sudo refused (-b): {said}")
        else:
            unseen.append(f"namespaces not listed: {said}")
    listed = tuple(
        Listed(
            inode=inode,
            pid=pid,
            start_ticks=start,
            processes=count,
            comm=comm.get(pid, ""),
            cgroups=tuple(cgroups.get(pid, ())),
            binds=tuple(sorted(set(binds.get(inode, ())))),
        )
        for inode, (pid, start, count) in netns.items()
    )
    names = Names(pods=pods, runc=frozenset(runc), docker=named["@@docker"], podman=named["@@podman"])
    return listed, names, unseen


def _parse_sample(lines: list[str]) -> tuple[float | None, dict[int, Reading], bool]:
    uptime: float | None = None
    headers: dict[str, str] = {}
    readings: dict[int, Reading] = {}
    current: tuple[int, int] | None = None
    values: dict[str, str] = {}
    cut = False

    def finish() -> None:
        if current is None:
            return
        pid, start = current
        if "Tcp:" not in values or "TcpExt:" not in values:
            readings[pid] = Reading(pid, start, error="its counters could not be read")
            return
        try:
            tcp = parse_snmp(f"{headers.get('Tcp:', '')}\n{values['Tcp:']}\n")
            tcpext = parse_netstat(f"{headers.get('TcpExt:', '')}\n{values['TcpExt:']}\n")
        except ProbeParseError as exc:
            readings[pid] = Reading(pid, start, error=_one_line(str(exc)))
            return
        readings[pid] = Reading(pid, start, tcp=tcp, tcpext=tcpext)

    for line in lines:
        word, _, rest = line.partition(" ")
        if word == "@@u":
            first = rest.split(" ")[0]
            if uptime is None and re.fullmatch(r"[0-9]{1,15}(?:\.[0-9]{1,9})?", first):
                uptime = float(first)
        elif word == "@@h":
            kind = rest.split(" ", 1)[0]
            if kind in ("Tcp:", "TcpExt:"):
                headers[kind] = rest
        elif word == "@@ns":
            finish()
            f = rest.split(" ")
            pid = _int(f[0]) if f else None
            start = _int(f[1]) if len(f) > 1 else None
            current = (pid, start or 0) if pid is not None and pid not in readings else None
            values = {}
        elif word in ("Tcp:", "TcpExt:") and current is not None:
            values.setdefault(word, line)
        elif word == "@@gone":
            finish()
            current = None
            if (pid := _int(rest)) is not None and pid not in readings:
                readings[pid] = Reading(pid, 0, error="its holder exited")
        elif word == "@@cut":
            cut = True
    finish()
    return uptime, readings, cut


def parse_namespace_output(text: str) -> NamespaceOutput | None:
    """The namespace part of a probe's output; None when it has none (``--containers never``).

    Never raises: garbage makes a namespace an error or an ``unseen`` line, never the host's.
    """
    if not isinstance(text, str) or BEGIN_LIST not in text:
        return None
    lines, sample_lines = _blocks(text)
    if lines is None:
        return None
    listed, names, unseen = _parse_listing(lines)
    samples = []
    for index in range(len(sample_lines)):
        if index not in sample_lines:
            break
        uptime, readings, cut = _parse_sample(sample_lines[index])
        if cut:
            unseen.append(f"sample {index}: the namespaces' output reached its cap ({SAMPLE_BUDGET} bytes)")
        samples.append((uptime, readings))
    return NamespaceOutput(
        listed=listed, names=names, samples=tuple(samples), unseen=tuple(dict.fromkeys(unseen))
    )


# --- names ---------------------------------------------------------------------------------------------

_UID = r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}"
_KUBE = re.compile(r"kubepods.*?pod(" + _UID + r")")
_DOCKER = re.compile(r"(?:/docker/|docker-)([0-9a-f]{64})(?:\.scope)?(?:/|$)")
_PODMAN = re.compile(r"libpod-([0-9a-f]{64})(?:\.scope)?(?:/|$)")
_CRI = re.compile(r"(crio|cri-containerd)-([0-9a-f]{64})(?:\.scope)?(?:/|$)")
_LXC = re.compile(r"(?:lxc\.payload\.|/lxc/)([^/]+)")
_NSPAWN = re.compile(
    r"machine\.slice/(?:systemd-nspawn@([^/]+)\.service|machine-([^/]+)\.scope|([^/]+)\.service)"
)


def _unescape_systemd(name: str) -> str:
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), name)


def name_namespace(ns: Listed, names: Names) -> tuple[str, str]:
    """``(runtime, name)`` as the operator knows it: Kubernetes ``namespace/pod``, a Docker, podman,
    LXC or systemd-nspawn container's name, a runc container's id, an ``ip netns`` name; else
    ``("unknown", "netns:<inode> (<pid> <comm>)")``. From the holder's cgroup paths, the runtimes'
    directories and the namespace's bind mounts, without asking any API."""
    for path in ns.cgroups:
        if kube := _KUBE.search(path):
            uid = kube.group(1).replace("_", "-")
            return "kubernetes", names.pods.get(uid, f"pod {uid}")
    for path in ns.cgroups:
        if docker := _DOCKER.search(path):
            ident = docker.group(1)
            return "docker", names.docker.get(ident, ident[:12])
        if podman := _PODMAN.search(path):
            ident = podman.group(1)
            return "podman", names.podman.get(ident, ident[:12])
        if cri := _CRI.search(path):
            return ("cri-o" if cri.group(1) == "crio" else "containerd"), cri.group(2)[:12]
        if lxc := _LXC.search(path):
            return "lxc", lxc.group(1)
        if nspawn := _NSPAWN.search(path):
            return "nspawn", _unescape_systemd(next(g for g in nspawn.groups() if g))
    for path in ns.cgroups:
        for part in reversed(path.split("/")):
            if part in names.runc:
                return "runc", part
    for bind in ns.binds:
        if bind.startswith("/run/netns/"):
            return "netns", bind.rsplit("/", 1)[1]
    for bind in ns.binds:
        if bind.startswith("/run/docker/netns/"):
            return "docker", "sandbox " + bind.rsplit("/", 1)[1]
    who = f"{ns.pid} {ns.comm}".strip() if ns.processes else "no process"
    return "unknown", f"netns:{ns.inode} ({who})"


# --- rates and verdicts ---------------------------------------------------------------------------------

ThresholdsFor = Callable[[str], Mapping[str, Threshold]]


def _snapshot(reading: Reading, uptime: float, boot_id: str) -> Snapshot:
    return Snapshot(tcp=reading.tcp, tcpext=reading.tcpext, uptime_s=uptime, boot_id=boot_id)


def measure_namespaces(
    output: NamespaceOutput,
    boot_id: str,
    thresholds_for: ThresholdsFor,
    *,
    baseline: bool = False,
) -> tuple[NamespaceResult, ...]:
    """Every listed namespace's rates over the window (the last two samples) and its verdict against
    ``thresholds_for(name)``, worst first. A namespace whose holder exited or changed between samples,
    or whose counters could not be read, is an ``error`` with the reason, never the host's."""
    results: list[NamespaceResult] = []
    samples = output.samples
    for ns in output.listed:
        runtime, name = name_namespace(ns, output.names)
        base = NamespaceResult(
            inode=ns.inode,
            pid=ns.pid,
            start_ticks=ns.start_ticks,
            runtime=runtime,
            name=name,
            status="error",
            processes=ns.processes,
            binds=ns.binds,
        )
        results.append(_measure_one(base, ns, samples, boot_id, thresholds_for, baseline))
    order = {"critical": 0, "warning": 1, "error": 2, "ok": 3}

    def key(r: NamespaceResult) -> tuple[int, float, str]:
        peak = max((r.rates.per_second.get(m, 0.0) for m in _PEAK_RATES), default=0.0) if r.rates else 0.0
        return (order[r.status], -peak, r.name)

    return tuple(sorted(results, key=key))


_PEAK_RATES = ("resets_received", "resets_sent", "estab_resets", "listen_overflows")


def _measure_one(
    base: NamespaceResult,
    ns: Listed,
    samples: tuple[tuple[float | None, Mapping[int, Reading]], ...],
    boot_id: str,
    thresholds_for: ThresholdsFor,
    baseline: bool,
) -> NamespaceResult:
    needed = 3 if baseline else 2
    if len(samples) < needed:
        return replace(base, error=f"only {len(samples)} of {needed} samples of the namespaces were read")
    snaps: list[Snapshot] = []
    for index, (uptime, readings) in enumerate(samples[-needed:]):
        reading = readings.get(ns.pid)
        if reading is None:
            return replace(base, error=f"not read in sample {index}")
        if reading.error is not None:
            return replace(base, error=f"{reading.error} (sample {index})")
        if ns.start_ticks and reading.start_ticks != ns.start_ticks:
            return replace(base, error="its holder was replaced during the window (pid reused)")
        if uptime is None:
            return replace(base, error=f"no uptime in sample {index}")
        snaps.append(_snapshot(reading, uptime, boot_id))
    try:
        rates = measure_rates(snaps[-2], snaps[-1])
        before = measure_rates(snaps[0], snaps[1]) if baseline else None
    except MeasureError as exc:
        return replace(base, error=str(exc))
    verdict = judge(rates, thresholds_for(base.name), before)
    return replace(base, status=verdict.level, rates=rates, tripped=verdict.tripped, error=None)


@dataclass(frozen=True)
class NamespaceJudge:
    """How one host's namespaces are judged: its inventory's thresholds and container patterns, and
    the command line's limits. :func:`namespace_judge` makes one (and checks the inventory's values)."""

    host: Mapping[str, Threshold] | None = None
    containers: ContainerOverrides = ()
    warn: Mapping[str, float] = field(default_factory=dict)
    crit: Mapping[str, float] = field(default_factory=dict)

    def thresholds_for(self, name: str) -> dict[str, Threshold]:
        return namespace_thresholds(name, self.host, self.containers, self.warn, self.crit)

    def results(
        self, stdout: str, boot_id: str, *, baseline: bool = False
    ) -> tuple[tuple[NamespaceResult, ...] | None, tuple[str, ...]]:
        """The namespaces in a probe's output, measured and judged, and what could not be seen; None
        when the output has no namespace part."""
        output = parse_namespace_output(stdout)
        if output is None:
            return None, ()
        return measure_namespaces(output, boot_id, self.thresholds_for, baseline=baseline), output.unseen


def namespace_judge(
    fleetrst_vars: Mapping[str, object], source: str, warn: Mapping[str, float], crit: Mapping[str, float]
) -> NamespaceJudge:
    """The judge for a host with these ``fleetrst_*`` variables; raises ``ThresholdError`` naming
    ``source`` when ``fleetrst_thresholds`` or ``fleetrst_container_thresholds`` cannot be used."""
    raw = fleetrst_vars.get("fleetrst_thresholds")
    host = parse_threshold_overrides(raw, source) if raw is not None else None
    containers = parse_container_threshold_overrides(
        fleetrst_vars.get("fleetrst_container_thresholds"), source
    )
    return NamespaceJudge(host=host, containers=containers, warn=dict(warn), crit=dict(crit))


def summary_of(results: Iterable[NamespaceResult]) -> dict[str, int]:
    """How many namespaces in each status."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return counts


__all__ = [
    "BEGIN_LIST",
    "FORMAT_VERSION",
    "MAX_NAMESPACES",
    "Listed",
    "Names",
    "NamespaceJudge",
    "NamespaceOutput",
    "Reading",
    "Trip",
    "listing_command",
    "measure_namespaces",
    "name_namespace",
    "namespace_judge",
    "parse_namespace_output",
    "sample_command",
]


def become_user_for(connection: ConnectionSettings) -> str | None:
    """Whom the listing runs as through ``sudo -n`` for this host: the become user under ``-b``
    (sudo only, and not when it is the login user, as Ansible skips it); None: no sudo."""
    if not connection.become or connection.become_method != "sudo":
        return None
    if connection.user is not None and connection.become_user == connection.user:
        return None
    return connection.become_user if _USER_NAME.match(connection.become_user) else None
