"""Can a real test fleet run here? (root, `ip`, OpenSSH's `sshd`, network namespaces)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ._system import FleetError

SSHD = "/usr/sbin/sshd"


class FleetSupportError(FleetError):
    """This machine cannot run a test fleet; the message lists every missing piece."""


def fleet_support_problems() -> list[str]:
    """What is missing for a test fleet, in words; empty when everything is there."""
    problems: list[str] = []
    if not sys.platform.startswith("linux"):
        return [f"network namespaces need Linux (this is {sys.platform})"]
    if os.geteuid() != 0:
        problems.append("not running as root (namespaces, veths and sshd need root: run the tests as root)")
    if shutil.which("ip") is None and not any(
        os.access(p, os.X_OK) for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip")
    ):
        problems.append("`ip` not found (apt-get install iproute2)")
    if not os.access(SSHD, os.X_OK):
        problems.append(f"{SSHD} not found (apt-get install openssh-server)")
    if not Path("/proc/self/ns/net").exists():
        problems.append("this kernel has no network namespaces (/proc/self/ns/net is missing)")
    if shutil.which("useradd") is None and not os.access("/usr/sbin/useradd", os.X_OK):
        problems.append("`useradd` not found (needed once, to create the login user fleetrst-test)")
    return problems


def ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_fleet_support() -> None:
    """Return if a test fleet can run here; otherwise fail clearly.

    Under pytest and outside CI (``CI`` is not ``true``) a missing piece skips the calling test with
    the reason. With ``CI=true``, or outside pytest, it raises :class:`FleetSupportError`: in CI the
    fleet tests must run, never be skipped.
    """
    problems = fleet_support_problems()
    if not problems:
        return
    message = "a real test fleet cannot run here: " + "; ".join(problems)
    if ci() or "pytest" not in sys.modules:
        raise FleetSupportError(message + (" (CI=true: fleet tests must run)" if ci() else ""))
    import pytest

    pytest.skip(message)
