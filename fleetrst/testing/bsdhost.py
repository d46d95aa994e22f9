"""A STAND-IN for a FreeBSD host in the test fleet: NOT FreeBSD. No FreeBSD machine can run here.

It is one of the fleet's real hosts (its own network namespace, its own kernel TCP counters, a real
OpenSSH sshd) whose sessions see what a FreeBSD host would show fleetrst's probe:

- no Linux ``/proc/net``: the host's sshd runs in a mount namespace of its own where ``/proc`` is
  mounted with ``subset=pid`` (only the processes' directories), so the probe's one test takes its
  FreeBSD branch, as on FreeBSD where ``/proc/net/snmp`` does not exist;
- FreeBSD's tools, as small programs bind-mounted over ``/usr/local/bin`` (first on sshd's default
  PATH): ``netstat -s -p tcp`` prints a FreeBSD sample (``tests/fixtures/freebsd/``, with its
  provenance: as text, a published FreeBSD 14 excerpt; as libxo JSON, for a newer FreeBSD, one
  constructed from FreeBSD's source, as none is published) in which the
  counters Netdata maps to Linux's advance with the namespace's own **real** kernel counters
  (``tcps_conndrops`` = the sample's value + AttemptFails, ...; the table is
  :data:`fleetrst.measure.freebsd.LINUX_NAMES` read backwards, and RSTs sent go into
  ``tcps_sndctrl``, the control packets they belong to on FreeBSD); ``sysctl -n kern.boottime`` prints
  a boot time fixed when the stand-in was made (now less this machine's uptime); ``sockstat``,
  ``netstat -an -p tcp`` and ``netstat -Lan`` print the namespace's real sockets (from ``ss``) in
  FreeBSD's formats, for the investigation.

So resets caused in the namespace are real, and found on exactly that host; what stands in is only
FreeBSD's user land. Every tool says so in its ``--standin`` output and in this docstring.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..measure.freebsd import LINUX_NAMES
from . import sshd

if TYPE_CHECKING:
    from .fleet import FleetHost

PLACEHOLDER = "@@standin:{}@@"
SHIMS = ("netstat", "sysctl", "sockstat")

# The counters of the stand-in's namespace that drive FreeBSD's: LINUX_NAMES read backwards, plus the
# RSTs a Linux kernel sent, which FreeBSD counts among its control packets (SYN|FIN|RST) sent.
EXTRA_SOURCES: dict[str, tuple[str, str]] = {"tcps_sndctrl": ("Tcp", "OutRsts")}


def _sources() -> dict[str, tuple[str, str]]:
    return {**dict(LINUX_NAMES.items()), **EXTRA_SOURCES}


def template(
    sample: str, advance: Callable[[str, Mapping[str, int]], str], fields: list[str]
) -> tuple[str, dict[str, int]]:
    """The sample with each field's value replaced by a placeholder, and the values it had.

    ``advance(text, {field: n})`` is the sample with the field increased by n
    (:func:`fleetrst.testing.freebsd.advance_text` or ``advance_json``): the placeholder goes exactly
    where that changes the text, so the stand-in prints the sample byte for byte but for those values.
    Fields the sample does not have are left out.
    """
    base: dict[str, int] = {}
    spans: list[tuple[int, int, str]] = []
    for name in fields:
        try:
            moved = advance(sample, {name: 10**15})
        except (KeyError, ValueError):
            continue  # not in this sample
        start = next(i for i, (a, b) in enumerate(zip(sample, moved, strict=False)) if a != b)
        while start > 0 and sample[start - 1].isdigit():
            start -= 1
        end = start
        while end < len(sample) and sample[end].isdigit():
            end += 1
        base[name] = int(sample[start:end])
        spans.append((start, end, PLACEHOLDER.format(name)))
    out = sample
    for start, end, marker in sorted(spans, reverse=True):  # from the end: earlier spans keep their place
        out = out[:start] + marker + out[end:]
    return out, base


SHIM = r"""#!/usr/bin/python3
# fleetrst test fleet: a STAND-IN for FreeBSD's {tool}(1) -- NOT FreeBSD. See fleetrst/testing/bsdhost.py.
# It prints a real published FreeBSD sample whose mapped counters follow this Linux namespace's real
# kernel counters, and the namespace's real sockets in FreeBSD's formats.
import json, os, re, subprocess, sys, time

HERE = "/usr/local/bin"
CONF = json.load(open(os.path.join(HERE, "standin.json")))
TOOL = {tool!r}
args = sys.argv[1:]
if args == ["--standin"]:
    print("fleetrst test fleet: a stand-in for FreeBSD's " + TOOL + ", not FreeBSD")
    sys.exit(0)


def kernel():
    values = {{}}
    for path in ("/proc/self/net/snmp", "/proc/self/net/netstat"):
        lines = open(path).read().split("\n")
        for head, vals in zip(lines[0::2], lines[1::2]):
            tag, names = head.split(":", 1)
            for name, value in zip(names.split(), vals.split(":", 1)[1].split()):
                values[tag + "." + name] = int(value)
    return values


def stats(kind):
    real = kernel()
    text = open(os.path.join(HERE, "netstat-" + kind)).read()
    def fill(m):
        name = m.group(1)
        section, linux = CONF["sources"].get(name, ("", ""))
        return str(CONF["base"][kind][name] + real.get(section + "." + linux, 0))
    sys.stdout.write(re.sub(r"@@standin:(\w+)@@", fill, text))


def ss(*flags):
    out = subprocess.run(["ss", "-H", *flags], capture_output=True, text=True).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


STATES = {{"ESTAB": "ESTABLISHED", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RCVD", "FIN-WAIT-1": "FIN_WAIT_1",
          "FIN-WAIT-2": "FIN_WAIT_2", "TIME-WAIT": "TIME_WAIT", "CLOSE-WAIT": "CLOSE_WAIT",
          "LAST-ACK": "LAST_ACK", "CLOSING": "CLOSING", "LISTEN": "LISTEN", "UNCONN": "CLOSED"}}


def split(endpoint):
    address, _, port = endpoint.rpartition(":")
    address = address.strip("[]").split("%")[0]
    if address in ("0.0.0.0", "*"):
        address = "*"
    return address, port


def dotted(endpoint):
    address, port = split(endpoint)
    return address + "." + port


def coloned(endpoint):  # sockstat writes IPv6 addresses unbracketed: ::1:22
    address, port = split(endpoint)
    return address + ":" + port


def proto(endpoint):
    return "tcp6" if ":" in split(endpoint)[0] else "tcp4"


if TOOL == "sysctl":
    names = [a for a in args if not a.startswith("-")]
    for name in names:
        value = CONF["sysctl"].get(name)
        if value is None:
            print("sysctl: unknown oid '" + name + "'", file=sys.stderr)
            sys.exit(1)
        print(value if "-n" in args else name + ": " + value)
elif TOOL == "netstat" and "-s" in args:
    if "--libxo" in args:
        if CONF["libxo"]:
            stats("json")
        else:
            print("netstat: illegal option -- -", file=sys.stderr)
            sys.exit(1)
    else:
        stats("text")
elif TOOL == "netstat" and "-L" in "".join(args):
    print("Current listen queue sizes (qlen/incqlen/maxqlen)")
    print("Proto Listen                           Local Address")
    for row in ss("-tln"):
        print("%-5s %-32s %s" % (proto(row[3]), row[1] + "/0/" + row[2], dotted(row[3])))
elif TOOL == "netstat":
    print("Active Internet connections (including servers)")
    print("Proto Recv-Q Send-Q Local Address          Foreign Address        (state)")
    for row in ss("-tan"):
        state = STATES.get(row[0], "CLOSED")
        print("%-5s %6s %6s %-22s %-22s %s" % (proto(row[3]), row[1], row[2], dotted(row[3]),
              dotted(row[4]) if row[4] != "*:*" else "*.*", state))
elif TOOL == "sockstat":
    print("USER     COMMAND    PID   FD  PROTO  LOCAL ADDRESS         FOREIGN ADDRESS")
    user = os.environ.get("USER", "fleet")
    for row in ss("-tanp"):
        for command, pid, fd in re.findall(r'\("([^"]*)",pid=(\d+),fd=(\d+)\)', " ".join(row[5:])):
            print("%-8s %-10s %-5s %-3s %-6s %-21s %s" % (user[:8], command[:10], pid, fd, proto(row[3]),
                  coloned(row[3]), coloned(row[4]) if row[4] != "*:*" else "*:*"))
else:
    print(TOOL + ": the stand-in does not do " + " ".join(args), file=sys.stderr)
    sys.exit(64)
"""


def write_standin(
    directory: Path,
    samples: Mapping[str, tuple[str, dict[str, int]]],
    *,
    libxo: bool,
    boottime: tuple[int, int],
) -> None:
    """The stand-in's tools and their data in ``directory`` (to be bind-mounted over /usr/local/bin).

    ``samples``: "text" and "json" -> (template, base values) from :func:`template`.
    """
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    sec, usec = boottime
    when = time.strftime("%a %b %e %H:%M:%S %Y", time.localtime(sec))
    conf = {
        "libxo": libxo,
        "sources": _sources(),
        "base": {kind: base for kind, (_, base) in samples.items()},
        "sysctl": {
            "kern.boottime": f"{{ sec = {sec}, usec = {usec} }} {when}",
            "kern.ostype": "FreeBSD",
            "kern.ipc.somaxconn": "128",
            "kern.ipc.soacceptqueue": "128",
            "net.inet.tcp.syncookies": "1",
            "net.inet.tcp.blackhole": "0",
            "net.inet.tcp.drop_synfin": "0",
            "net.inet.tcp.log_in_vain": "0",
            "net.inet.tcp.msl": "30000",
        },
    }
    (directory / "standin.json").write_text(json.dumps(conf, indent=1))
    for kind, (text, _) in samples.items():
        (directory / f"netstat-{kind}").write_text(text)
    for tool in SHIMS:
        path = directory / tool
        path.write_text(SHIM.format(tool=tool))
        path.chmod(0o755)
    for path in directory.iterdir():
        if path.name not in SHIMS:
            path.chmod(0o644)


def machine_boottime() -> tuple[int, int]:
    """This machine's boot time as FreeBSD's kern.boottime would say it: now less the uptime clock."""
    boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    return int(boot), round((boot % 1) * 1e6) % 1_000_000


class StandinMixin:
    """:meth:`as_freebsd` for :class:`~fleetrst.testing.TestFleet`."""

    if TYPE_CHECKING:  # provided by TestFleet
        dir: Path
        start_timeout: float

        def _resolve(self, host: FleetHost | str) -> FleetHost: ...

    def as_freebsd(self, host: FleetHost | str, *, libxo: bool = True) -> FleetHost:
        """Restart the host's sshd as a FreeBSD STAND-IN (see this module): its sessions see no
        ``/proc/net`` and FreeBSD's ``netstat``/``sysctl``/``sockstat``. ``libxo``: netstat prints
        JSON with ``--libxo json`` (FreeBSD 11 and later); else only text (an older FreeBSD)."""
        from .freebsd import SAMPLES_DIR, advance_json, advance_text

        h = self._resolve(host)
        fields = sorted(_sources())
        text = TEXT_HEADER + (SAMPLES_DIR / STANDIN_SAMPLES["text"]).read_text()
        samples = {"text": template(text, advance_text, fields)}
        if libxo:
            raw = (SAMPLES_DIR / STANDIN_SAMPLES["json"]).read_text()
            samples["json"] = template(raw, advance_json, fields)
        directory = h.dir / "freebsd-standin"
        write_standin(directory, samples, libxo=libxo, boottime=machine_boottime())
        h.standin_dir = directory
        sshd.stop_sshd(h)
        sshd.start_sshd(h, self.start_timeout)
        return h


# What the stand-in prints (tests/fixtures/freebsd/, see PROVENANCE.md there): an older FreeBSD's text
# is the published FreeBSD 14-CURRENT excerpt (drm-kmod issue 154) under netstat's "tcp:" header line;
# a newer FreeBSD's libxo JSON is CONSTRUCTED from FreeBSD's source by libxo's rules (no published
# copy exists), complete, every counter a different value.
STANDIN_SAMPLES = {
    "text": "netstat-s.freebsd-14-current.drm-kmod-154.excerpt.txt",
    "json": "constructed.netstat-libxo-json-s-p-tcp.main-2d614aa2.json",
}
TEXT_HEADER = "tcp:\n"  # netstat's first line, which the published excerpt starts after


__all__ = ["STANDIN_SAMPLES", "StandinMixin", "machine_boottime", "template", "write_standin"]
