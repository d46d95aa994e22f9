"""The test fleet's OpenSSH side: the login user, keys, each host's sshd and the controller's known_hosts.

Each host runs ``/usr/sbin/sshd -D`` inside its namespace with a configuration of its own (written
here), a host key of its own, and the fleet's client key as the only authorized key of the login user
:data:`USER`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import _system as system
from ._system import FleetError
from .support import SSHD

if TYPE_CHECKING:
    from .fleet import FleetHost

USER = "fleetrst-test"
USER_HOME = Path("/home") / USER
USER_SHELL = "/bin/sh"


# --- keys ---------------------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def new_ed25519_key(path: Path, comment: str) -> str:
    """Write a new ed25519 key (OpenSSH format, mode 0600) and ``path.pub``; return the public line."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = f"{public.decode()} {comment}"
    _write_private(path, private)
    Path(f"{path}.pub").write_text(line + "\n")
    return line


# --- the login user -------------------------------------------------------------------------------------


def ensure_user(name: str = USER) -> pwd.struct_passwd:
    """Create the login user if missing (shell /bin/sh, an empty home, no start-up files); leave it there.

    The password field is ``*`` (no password, but not "locked": sshd without PAM refuses logins to
    accounts whose password starts with ``!``).
    """
    with system.registry_lock():
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            result = subprocess.run(
                [
                    useradd,
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    str(USER_HOME),
                    "--shell",
                    USER_SHELL,
                    "--password",
                    "*",
                    "--comment",
                    "fleetrst test fleet login",
                    name,
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if result.returncode not in (0, 9):  # 9: the user exists (made meanwhile by someone else)
                raise FleetError(f"useradd {name} failed: {result.stderr.strip()}") from None
            entry = pwd.getpwnam(name)
        home = Path(entry.pw_dir)
        if not home.is_dir():
            home.mkdir(mode=0o755, parents=True)
            os.chown(home, entry.pw_uid, entry.pw_gid)
        _unlock_password(name)
        return entry


def _unlock_password(name: str) -> None:
    try:
        lines = Path("/etc/shadow").read_text().splitlines()
    except OSError:
        return
    for line in lines:
        fields = line.split(":")
        if fields[0] == name and len(fields) > 1 and fields[1].startswith("!"):
            usermod = shutil.which("usermod") or "/usr/sbin/usermod"
            subprocess.run([usermod, "--password", "*", name], capture_output=True, timeout=60, check=False)


# --- configuration --------------------------------------------------------------------------------------


def sshd_version() -> tuple[int, int]:
    result = subprocess.run([SSHD, "-V"], capture_output=True, text=True, timeout=10, check=False)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", result.stderr + result.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def sshd_config_text(host: FleetHost, authorized_keys: Path, user: str, version: tuple[int, int]) -> str:
    lines = [
        f"# sshd for test-fleet host {host.name} ({host.netns}), written by fleetrst.testing",
        "Port 22",
        f"ListenAddress {host.address}",
        "AddressFamily inet",
        f"HostKey {host.host_key_path}",
        f"PidFile {host.dir / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized_keys}",
        "StrictModes no",
        "UsePAM no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        "PubkeyAuthentication yes",
        f"AllowUsers {user}",
        "X11Forwarding no",
        "LogLevel ERROR",
        "Subsystem sftp internal-sftp",
    ]
    if version >= (9, 8):  # one client failing auth on purpose must not get the controller penalised
        lines.append("PerSourcePenalties no")
    return "\n".join(lines) + "\n"


def config_problem(config: Path) -> str | None:
    """What ``sshd -t`` says against the configuration file ``config``; None when it accepts it."""
    check = subprocess.run(
        [SSHD, "-t", "-f", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return check.stderr.strip() if check.returncode != 0 else None


def write_host_files(
    hosts: Sequence[FleetHost], tag: str, authorized_keys: Path, user: str, version: tuple[int, int]
) -> None:
    """Give every host its directory, a new host key and its sshd configuration (checked once)."""
    for host in hosts:
        host.dir.mkdir(mode=0o700)
        host.host_public_key = new_ed25519_key(host.host_key_path, f"{host.name}@{tag}")
        host.sshd_config_path.write_text(sshd_config_text(host, authorized_keys, user, version))
    run_dir = Path("/run/sshd")  # sshd's privilege separation directory
    if not run_dir.is_dir():
        run_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    problem = config_problem(hosts[0].sshd_config_path)
    if problem is not None:
        raise FleetError(f"sshd rejects the configuration {hosts[0].sshd_config_path}: {problem}")


def write_known_hosts(path: Path, hosts: Sequence[FleetHost]) -> None:
    """The controller's known_hosts: every host's address with the host key its sshd serves."""
    lines = []
    for host in hosts:
        keytype, blob = host.host_public_key.split()[:2]
        lines.append(f"{host.address} {keytype} {blob}")
    path.write_text("\n".join(lines) + "\n")


# --- running sshd ---------------------------------------------------------------------------------------


def standin_mounts(directory: Path) -> str:
    """The shell text that makes a FreeBSD stand-in's mount namespace before its sshd starts: /proc
    with only the processes' directories (no /proc/net: the probe takes its FreeBSD branch) and the
    stand-in's tools over /usr/local/bin, first on sshd's default PATH (see bsdhost.py)."""
    quoted = str(directory).replace("'", "'\\''")
    return f"mount -t proc -o subset=pid proc /proc && mount --bind '{quoted}' /usr/local/bin && "


def spawn_sshd(host: FleetHost) -> None:
    sshd = [SSHD, "-D", "-f", str(host.sshd_config_path), "-E", str(host.sshd_log_path)]
    if host.hidden_tools or host.standin_dir is not None:
        # A mount namespace of its own where each hidden program is /dev/null (not executable):
        # the host's sessions find no such tool, as on a machine where it is not installed. A FreeBSD
        # stand-in's has no /proc/net and FreeBSD's tools first on the PATH (see bsdhost.py).
        binds = "".join(f'mount --bind /dev/null "$(command -v {t})" && ' for t in host.hidden_tools)
        if host.standin_dir is not None:
            binds += standin_mounts(host.standin_dir)
        sshd = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            binds + 'exec "$@"',
            "sshd",
            *sshd,
        ]
    argv = [*system.enter_netns(host.netns), *sshd]
    host._sshd = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    host.sshd_pid = host._sshd.pid  # nsenter (or `ip netns exec`) execs sshd: same pid


def wait_for_sshd(host: FleetHost, deadline: float, start_timeout: float, check_banner: bool = True) -> None:
    """Wait until the host's sshd listens, then (with ``check_banner``) until it answers with its SSH banner
    (bounded polls).

    The first poll reads the namespace's own socket table (``/proc/<sshd pid>/net/tcp``): dialling
    a port that is not listening yet would make the host send a RST, a reset nobody asked for.
    """
    delay = 0.01
    last_error = "no answer yet"
    while True:
        proc = host._sshd
        if proc is None or proc.poll() is not None:
            code = None if proc is None else proc.returncode
            raise FleetError(
                f"sshd for {host.name} ({host.netns}) exited with status {code}: "
                f"{host.sshd_log().strip() or 'no log'}"
            )
        if not _listening(proc.pid, host.address, host.port):
            last_error = "not listening yet"
        elif not check_banner:
            return
        else:
            try:
                with socket.create_connection((host.address, host.port), timeout=2.0) as s:
                    banner = b""
                    while b"\n" not in banner and len(banner) < 256:
                        chunk = s.recv(256)
                        if not chunk:
                            break
                        banner += chunk
                    if banner.startswith(b"SSH-"):
                        return  # closing after the banner, without sending ours: no RST
                    last_error = f"unexpected banner {banner[:60]!r}"
            except OSError as exc:
                last_error = str(exc)
        if time.monotonic() > deadline:
            raise FleetError(
                f"sshd for {host.name} at {host.address}:22 did not answer within "
                f"{start_timeout:.0f}s ({last_error}); log: {host.sshd_log().strip()}"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


BANNER_CHECKS = 64  # hosts whose banner is awaited; the others, once listening, are ready


def wait_for_sshds(hosts: Sequence[FleetHost], start_timeout: float) -> None:
    """Wait until every host's sshd listens, and (for up to BANNER_CHECKS of them, spread over the
    fleet) answers with its banner. A banner costs the host a whole sshd session (a fork and, since
    OpenSSH 9.8, an exec of sshd-session): checking all of 1,000 hosts took 20 s of CPU, while an sshd
    that listens has its configuration and keys loaded already, and accepts what the kernel queues."""
    deadline = time.monotonic() + start_timeout
    if len(hosts) == 1:
        wait_for_sshd(hosts[0], deadline, start_timeout)
        return
    step = max(1, len(hosts) // BANNER_CHECKS)
    with ThreadPoolExecutor(max_workers=min(32, len(hosts))) as pool:
        futures = [
            pool.submit(wait_for_sshd, h, deadline, start_timeout, i % step == 0) for i, h in enumerate(hosts)
        ]
        for future in futures:
            future.result()


def start_sshd(host: FleetHost, start_timeout: float) -> None:
    """Start the host's sshd unless it runs, and wait until it answers."""
    if host._sshd is not None and host._sshd.poll() is None:
        return
    spawn_sshd(host)
    wait_for_sshds([host], start_timeout)


def stop_sshd(host: FleetHost, *, kill_sessions: bool = False) -> None:
    """Stop the host's sshd (SIGTERM, then SIGKILL); with ``kill_sessions``, every sshd process in
    the host's namespace too (the sessions' own)."""
    proc = host._sshd
    if proc is not None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        host._sshd = None
    host.sshd_pid = None
    if kill_sessions and host.netns_inode is not None:
        for _ in range(10):
            pids = [p for p in system.pids_matching({host.netns_inode}, ()) if _comm(p).startswith("sshd")]
            if not pids:
                break
            system.kill_pids(pids)
            time.sleep(0.02)


def kill_sshd(host: FleetHost) -> None:
    """SIGKILL the host's sshd if it runs (the fleet is going down); :func:`reap_sshd` collects it."""
    if host._sshd is not None and host._sshd.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            host._sshd.kill()


def reap_sshd(host: FleetHost) -> None:
    if host._sshd is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            host._sshd.wait(timeout=5)
        host._sshd = None
    host.sshd_pid = None


def _listening(pid: int, address: str, port: int) -> bool:
    """Whether a socket in ``pid``'s network namespace listens on ``address:port`` (IPv4)."""
    want = f"{socket.inet_aton(address)[::-1].hex().upper()}:{port:04X}"
    try:
        table = Path(f"/proc/{pid}/net/tcp").read_text()
    except OSError:
        return False
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1] == want and fields[3] == "0A":  # 0A: LISTEN
            return True
    return False


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
