"""Ansible-compatible inventories: YAML, INI, directories, group_vars/host_vars, host patterns.

Point fleetrst at the files Ansible already reads and get the same hosts, groups and variables::

    inv = load_inventory(["inventory/prod.yml"])
    names = inv.select("web:&prod", limit="web[0:2]")
    targets = inv.targets(names, ConnectionDefaults(user="ops"))

Every failure is an ``InventoryError`` (``PatternError`` for patterns) whose ``str()`` is one line
naming the file and line, or the pattern.
"""

from __future__ import annotations

from .connection import HONOURED, ConnectionDefaults, HonouredVariable
from .errors import InventoryError, PatternError
from .inventory import Inventory, load_inventory
from .output import format_list_hosts

__all__ = [
    "HONOURED",
    "ConnectionDefaults",
    "HonouredVariable",
    "Inventory",
    "InventoryError",
    "PatternError",
    "format_list_hosts",
    "load_inventory",
]
