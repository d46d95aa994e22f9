"""Test hosts that are machines, with real containers in them: what ``--containers`` is proved on.

A host of the ordinary fleet is a network namespace on this machine: its sessions see every process
of the machine in ``/proc``. A :class:`Machine` is more like a host: a PID and a mount namespace of its
own (its own ``/proc``: it sees only its own processes), with empty ``/run/netns``, ``/run/runc`` and
``/var/log`` (and ``/var/log/pods``) of its own. :func:`make_machine` turns a fleet host into one (its
sshd restarted as the machine's pid 1, in the host's network namespace); :class:`Containers` runs real
containers in a machine with Debian's ``runc``, from a ``busybox-static`` root filesystem (no image,
no registry):

- :meth:`Containers.run`: a runc container with its own network namespace (loopback up, as runc
  makes it), named by its runc id; its cgroup where runc puts it (``/<id>``, under this run's root);
- :meth:`Containers.pod`: a Kubernetes-shaped pod: a pause container holding the network namespace
  and app containers joining it, in the cgroup path kubelet's cgroupfs driver uses
  (``/kubepods/besteffort/pod<uid>/<id>``) and with the ``/var/log/pods/<ns>_<pod>_<uid>`` directory
  kubelet keeps. The containers, namespaces and cgroups are real; the Kubernetes layout is made
  here (no kubelet runs);
- :meth:`Containers.netns`: an ``ip netns`` namespace inside the machine, with a process in it or
  held only by its bind mount.

``STORM`` is a closed-port storm a busybox container runs on itself: ``nc`` to a closed port of
127.0.0.1 in a loop, about 100-200 refused connects a second (AttemptFails and OutRsts of that
container's namespace only).

Everything is removed by :meth:`Containers.close` (containers, cgroup directories) and by ending the
machine (its pid 1 ends, the kernel ends every process in its PID namespace).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _system as system
from ._system import FleetError

if TYPE_CHECKING:
    from .fleet import FleetHost, TestFleet

CONTAINER_PACKAGES = ("runc", "busybox-static")  # what tests/run must apt-get install
BUSYBOX = "/bin/busybox"
CGROUP_ROOT = Path("/sys/fs/cgroup")
STORM = "while :; do nc 127.0.0.1 9 </dev/null 2>/dev/null; usleep 2000; done"
_APPLETS = ("sh", "sleep", "nc", "usleep", "cat", "ls")

# Run as the machine's pid 1 before it execs its program: its own /run/netns, /run/runc and /var/log.
_SETUP = (
    "mkdir -p /run/netns /run/runc && "
    "mount -t tmpfs -o mode=755 fleetrst-netns /run/netns && "
    "mount -t tmpfs -o mode=700 fleetrst-runc /run/runc && "
    "mount -t tmpfs -o mode=755 fleetrst-log /var/log && mkdir /var/log/pods && "
    'exec "$@"'
)


def container_support_problems() -> list[str]:
    """What is missing to run containers in a test machine, in words; empty when nothing is."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not running as root")
    for tool, package in (("runc", "runc"), ("unshare", "util-linux"), ("nsenter", "util-linux")):
        if shutil.which(tool) is None:
            problems.append(f"`{tool}` not found (apt-get install {package})")
    if not os.access(BUSYBOX, os.X_OK) or b"libc.so" in Path(BUSYBOX).read_bytes()[:65536]:
        problems.append(f"no static {BUSYBOX} (apt-get install busybox-static)")
    return problems


def make_rootfs(directory: Path) -> Path:
    """A root filesystem for busybox containers: /bin/busybox, its applets, and mount points."""
    rootfs = directory / "rootfs"
    for sub in ("bin", "proc", "dev", "sys", "tmp"):
        (rootfs / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in _APPLETS:
        link = rootfs / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    return rootfs


class Machine:
    """``argv`` run as pid 1 of a new PID and mount namespace (in network namespace ``netns``, or the
    caller's), with its own /proc, /run/netns, /run/runc and /var/log. :meth:`run` runs a command
    inside it (its mount, PID and network namespaces)."""

    def __init__(self, argv: Sequence[str], *, netns: str | None = None) -> None:
        self.argv = list(argv)
        self.netns = netns
        self.proc: subprocess.Popen[bytes] | None = None
        self.init_pid = 0

    def start(self, timeout: float = 10.0) -> Machine:
        unshare = [
            "unshare",
            "--pid",
            "--mount",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            _SETUP,
            "machine-init",
            *self.argv,
        ]
        # nsenter, not `ip netns exec`: that mounts a sysfs of its own over /sys, hiding the cgroup
        # mounts runc needs. nsenter without -p execs unshare: the same pid.
        prefix = ["nsenter", f"--net=/run/netns/{self.netns}"] if self.netns else []
        self.proc = subprocess.Popen(
            [*prefix, *unshare],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        while True:  # unshare (same pid as `ip netns exec`) forks the machine's pid 1
            with contextlib.suppress(OSError, ValueError):
                first = children.read_text().split()
                if first and self._ready(int(first[0])):
                    self.init_pid = int(first[0])
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise FleetError(f"the test machine did not start ({' '.join(self.argv[:3])} ...)")
            time.sleep(0.01)

    @staticmethod
    def _ready(pid: int) -> bool:
        """pid 1 has run its setup (its /var/log/pods exists) and exec'ed its program."""
        try:
            return Path(f"/proc/{pid}/root/var/log/pods").is_dir() and "machine-init" not in Path(
                f"/proc/{pid}/cmdline"
            ).read_text(errors="replace")
        except OSError:
            return False

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["nsenter", "-t", str(self.init_pid), "-m", "-p", "-n", "--", *argv]

    def run(self, argv: Sequence[str], timeout: float = 30.0, check: bool = True) -> str:
        result = subprocess.run(
            self.command(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise FleetError(f"in the test machine, {' '.join(argv[:4])} failed: {result.stderr.strip()}")
        return result.stdout

    def close(self) -> None:
        """End pid 1 (the kernel then ends every process of the machine)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)


def make_machine(fleet: TestFleet, host: FleetHost | str) -> Machine:
    """Restart ``host``'s sshd as pid 1 of a machine of its own (in the host's network namespace):
    from then on its sessions see only the machine's processes. ``fleet.close()`` ends it."""
    h = fleet.host(host) if isinstance(host, str) else host
    fleet.stop_sshd(h, kill_sessions=True)
    from . import sshd
    from .support import SSHD

    argv = [SSHD, "-D", "-f", str(h.sshd_config_path), "-E", str(h.sshd_log_path)]
    machine = Machine(argv, netns=h.netns).start()
    h._sshd = machine.proc  # the fleet stops and kills it like any sshd (pid 1 takes the machine with it)
    h.sshd_pid = machine.proc.pid if machine.proc else None
    sshd.wait_for_sshds([h], fleet.start_timeout)
    return machine


class Containers:
    """Real runc containers in ``machine``; their bundles under ``directory``; their cgroups under
    ``/fleetrst-<id>`` of every hierarchy, removed by :meth:`close`."""

    def __init__(self, machine: Machine, directory: Path) -> None:
        self.machine = machine
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cgroup_root = f"fleetrst-{secrets.token_hex(3)}"
        self.rootfs = make_rootfs(self.dir)
        self.ids: list[str] = []
        self._template: dict[str, Any] | None = None

    def _spec(self) -> dict[str, Any]:
        if self._template is None:
            spec_dir = self.dir / "spec"
            spec_dir.mkdir(exist_ok=True)
            subprocess.run(["runc", "spec", "--bundle", str(spec_dir)], check=True, capture_output=True)
            self._template = json.loads((spec_dir / "config.json").read_text())
        spec: dict[str, Any] = json.loads(json.dumps(self._template))  # a deep copy
        return spec

    def run(
        self,
        ident: str,
        args: Sequence[str],
        *,
        cgroup: str | None = None,
        netns_of: int | None = None,
    ) -> int:
        """Start container ``ident`` running ``args``; its pid (as the machine sees it). ``cgroup``:
        its cgroup path under this run's root (default ``/<ident>``, runc's own); ``netns_of``: join
        the network namespace of that pid (a pod's app containers join the pause container's)."""
        spec = self._spec()
        spec["process"]["terminal"] = False
        spec["process"]["args"] = list(args)
        spec["root"] = {"path": str(self.rootfs), "readonly": True}
        spec["hostname"] = ident
        spec["linux"]["cgroupsPath"] = f"/{self.cgroup_root}/{(cgroup or ident).strip('/')}"
        if netns_of is not None:
            for ns in spec["linux"]["namespaces"]:
                if ns["type"] == "network":
                    ns["path"] = f"/proc/{netns_of}/ns/net"
        bundle = self.dir / ident
        bundle.mkdir()
        (bundle / "config.json").write_text(json.dumps(spec))
        # The container inherits runc's stdio: a file, not a pipe (a pipe would stay open, and a read
        # of it never end, as long as the container runs).
        with open(bundle / "runc.log", "w+") as log:
            started = subprocess.run(
                self.machine.command(["runc", "run", "-d", "--bundle", str(bundle), ident]),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                timeout=30,
                check=False,
            )
            log.seek(0)
            if started.returncode != 0:
                raise FleetError(f"runc could not start {ident}: {log.read().strip()[-500:]}")
        self.ids.append(ident)
        return int(json.loads(self.machine.run(["runc", "state", ident]))["pid"])

    def pod(self, namespace: str, name: str, uid: str, apps: dict[str, Sequence[str]]) -> dict[str, int]:
        """A Kubernetes-shaped pod: a pause container (holding the network namespace) and ``apps``
        (name -> args) joining it, in kubelet's cgroupfs paths, with kubelet's log directory. Returns
        each container's pid (``pause`` included)."""
        self.machine.run(["mkdir", "-p", f"/var/log/pods/{namespace}_{name}_{uid}"])
        base = f"kubepods/besteffort/pod{uid}"
        pause = f"{name}-pause"
        pids = {"pause": self.run(pause, ["sleep", "100000"], cgroup=f"{base}/{pause}")}
        for app, args in apps.items():
            ident = f"{name}-{app}"
            pids[app] = self.run(ident, args, cgroup=f"{base}/{ident}", netns_of=pids["pause"])
        return pids

    def netns(self, name: str, *, with_process: bool = True) -> int | None:
        """An ``ip netns`` namespace in the machine (loopback up), with a sleeping process in it or
        held only by its bind mount; the process's pid, or None."""
        self.machine.run(["ip", "netns", "add", name])
        self.machine.run(["ip", "-n", name, "link", "set", "lo", "up"])
        if not with_process:
            return None
        self.machine.run(["sh", "-c", f"ip netns exec {name} sleep 100000 >/dev/null 2>&1 </dev/null &"])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            out = self.machine.run(["ip", "netns", "pids", name], check=False).split()
            if out:
                return int(out[0])
            time.sleep(0.02)
        raise FleetError(f"no process appeared in the machine's netns {name}")

    def close(self) -> None:
        """Remove every container (kill, delete) and this run's cgroup directories."""
        for ident in reversed(self.ids):
            with contextlib.suppress(Exception):
                self.machine.run(["runc", "delete", "--force", ident], check=False, timeout=15)
        self.ids.clear()
        remove_cgroups(self.cgroup_root)


def remove_cgroups(name: str, timeout: float = 10.0) -> None:
    """rmdir ``/<name>`` and everything under it in every cgroup hierarchy (deepest first; a cgroup
    whose last process is still exiting is retried until ``timeout``)."""
    tops = [p for p in [CGROUP_ROOT / name, *CGROUP_ROOT.glob(f"*/{name}")] if p.is_dir()]
    deadline = time.monotonic() + timeout
    for top in tops:
        for procs in top.rglob("cgroup.procs"):  # what runc could not delete: ours, end it
            with contextlib.suppress(OSError, ValueError):
                system.kill_pids(int(pid) for pid in procs.read_text().split())
        while top.exists():
            dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
            for d in [*dirs, top]:
                with contextlib.suppress(OSError):
                    d.rmdir()
            if top.exists():
                if time.monotonic() > deadline:
                    raise FleetError(f"cannot remove the cgroup {top}")
                time.sleep(0.05)
