"""Ansible-compatible inventories: YAML, INI, TOML, directories, group_vars/host_vars, inventory
scripts, plugin configs (through ``ansible-inventory``), its JSON output, and host patterns.

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
from .options import DEFAULT_CACHE_TTL, LoadOptions
from .output import format_list_hosts

__all__ = [
    "DEFAULT_CACHE_TTL",
    "HONOURED",
    "ConnectionDefaults",
    "HonouredVariable",
    "Inventory",
    "InventoryError",
    "LoadOptions",
    "PatternError",
    "format_list_hosts",
    "load_inventory",
]
