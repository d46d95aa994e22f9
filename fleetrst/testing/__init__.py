"""The real test fleet: network namespaces with their own TCP counters and their own OpenSSH sshd.

Used by the tests, the demo in ``examples/demo-fleet`` and the benchmarks::

    from fleetrst.testing import TestFleet, require_fleet_support

    require_fleet_support()             # root, `ip`, sshd; skips under pytest outside CI
    with TestFleet(n_hosts=3, groups={"web": ["h001", "h002"]}) as fleet:
        print(fleet.inventory_path)     # an Ansible inventory + known_hosts + a client key
        with fleet.closed_port_storm("h002", rate=100, duration=5):
            ...

``python -m fleetrst.testing up --hosts 5`` brings a fleet up from the command line.
"""

from __future__ import annotations

from ._system import FleetError, cleanup_stale
from .fleet import FleetHost, TestFleet
from .loads import LoadHandle
from .sshd import USER, ensure_user
from .support import FleetSupportError, fleet_support_problems, require_fleet_support

__all__ = [
    "USER",
    "FleetError",
    "FleetHost",
    "FleetSupportError",
    "LoadHandle",
    "TestFleet",
    "cleanup_stale",
    "ensure_user",
    "fleet_support_problems",
    "require_fleet_support",
]
