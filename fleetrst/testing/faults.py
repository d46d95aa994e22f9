"""The faults a test applies to one host of the fleet: its sshd stopped, re-keyed or misconfigured, its
tools hidden, its replies dropped, its link slowed.

:class:`FaultsMixin` holds them as methods of :class:`~fleetrst.testing.TestFleet` (its only user); the
sshd and network work itself is done by :mod:`.sshd` and :mod:`.network`.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import network, sshd
from ._system import FleetError

if TYPE_CHECKING:
    from .fleet import FleetHost


class FaultsMixin:
    """The fault hooks of :class:`~fleetrst.testing.TestFleet` (issue 6)."""

    if TYPE_CHECKING:  # provided by TestFleet
        dir: Path
        user: str
        gateway: str
        start_timeout: float
        _sshd_version: tuple[int, int]

        @property
        def tag(self) -> str: ...

        @property
        def authorized_keys_path(self) -> Path: ...

        def _resolve(self, host: FleetHost | str) -> FleetHost: ...

    def stop_sshd(self, host: FleetHost | str, *, kill_sessions: bool = False) -> None:
        """Stop the host's sshd (SIGTERM, then SIGKILL): new connections are refused.

        Established sessions survive, as with a real sshd; ``kill_sessions=True`` kills them too
        (every sshd process in the namespace, and with them the login shells).
        """
        sshd.stop_sshd(self._resolve(host), kill_sessions=kill_sessions)

    def start_sshd(self, host: FleetHost | str) -> None:
        """Start the host's sshd again (same config and host key) and wait until it answers."""
        sshd.start_sshd(self._resolve(host), self.start_timeout)

    def replace_host_key(self, host: FleetHost | str) -> str:
        """Give the host a new host key (sshd restarted if it was running); known_hosts is left stale.

        Returns the new public key line.
        """
        h = self._resolve(host)
        running = h._sshd is not None and h._sshd.poll() is None
        if running:
            self.stop_sshd(h)
        h.host_public_key = sshd.new_ed25519_key(h.host_key_path, f"{h.name}@{self.tag}-replaced")
        if running:
            self.start_sshd(h)
        return h.host_public_key

    def reconfigure_sshd(self, host: FleetHost | str, extra: Sequence[str]) -> None:
        """Restart the host's sshd with ``extra`` config lines (e.g. ``ForceCommand ...``) put first
        (sshd takes the first value it reads for a keyword, so these override the fleet's own).

        This is how the fault tests make a real sshd misbehave: a command that never returns, output
        that is garbage or a flood, a login that hangs in ``AuthorizedKeysCommand``.
        """
        h = self._resolve(host)
        text = sshd.sshd_config_text(h, self.authorized_keys_path, self.user, self._sshd_version)
        h.sshd_config_path.write_text("".join(f"{line}\n" for line in extra) + text)
        problem = sshd.config_problem(h.sshd_config_path)
        if problem is not None:
            raise FleetError(f"sshd rejects the extra configuration for {h.name}: {problem}")
        self.stop_sshd(h)
        self.start_sshd(h)

    def slow_login(self, host: FleetHost | str, delay_s: float) -> None:
        """Restart the host's sshd so that every login takes ``delay_s`` seconds longer: sshd asks an
        ``AuthorizedKeysCommand`` that sleeps, then prints the fleet's key (a slow directory, as
        LDAP- or Vault-backed keys can be). The handshake itself, and everything after it, is as fast
        as before."""
        if not 0 < delay_s <= 60:
            raise ValueError(f"delay_s must be in (0, 60], not {delay_s}")
        command = f'/bin/sh -c "sleep {delay_s:g}; exec cat {self.authorized_keys_path}"'
        self.reconfigure_sshd(
            host,
            [
                "AuthorizedKeysFile none",
                f"AuthorizedKeysCommand {command}",
                "AuthorizedKeysCommandUser nobody",
            ],
        )

    def write_script(self, name: str, text: str) -> Path:
        """A script in the fleet's directory that the login user can run (for ``ForceCommand``)."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError(f"bad script name {name!r}")
        directory = self.dir / "scripts"
        directory.mkdir(mode=0o755, exist_ok=True)
        os.chmod(self.dir, self.dir.stat().st_mode | 0o011)  # the login user may traverse, not list
        path = directory / name
        path.write_text(text)
        path.chmod(0o755)
        return path

    def hide_tools(self, host: FleetHost | str, tools: Sequence[str]) -> None:
        """Restart the host's sshd so that its sessions cannot run ``tools`` (e.g. ss, lsof, tcpdump)."""
        h = self._resolve(host)
        for tool in tools:
            if not re.fullmatch(r"[a-z0-9_.-]+", tool) or shutil.which(tool) is None:
                raise ValueError(f"cannot hide {tool!r}: not a program on this machine")
        h.hidden_tools = tuple(tools)
        self.stop_sshd(h)
        self.start_sshd(h)

    def drop_replies(self, host: FleetHost | str) -> None:
        """The host silently drops everything it would send the controller (a blackhole route in its
        namespace): connects to it get no answer at all, as behind a firewall that drops."""
        h = self._resolve(host)
        network.add_blackhole(h.netns, h.gateway or self.gateway)

    def slow_link(self, host: FleetHost | str, rate: str = "64kbit") -> None:
        """Limit what the host sends to ``rate`` (a token bucket on its side of the veth)."""
        network.limit_rate(self._resolve(host).netns, rate)
