"""How sources are loaded: the plugin cache, where ``ansible-inventory`` is, deadlines and caps.

The command layer fills these from the settings and flags; the defaults suit a library caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

DEFAULT_CACHE_TTL = 300.0  # seconds a plugin config's result is reused: cron and watch stay off the API
PLUGIN_TIMEOUT = 300.0  # seconds for one run of ansible-inventory (a cloud API can be slow)
SCRIPT_TIMEOUT = 120.0  # seconds for each run of an inventory script (Ansible waits forever)
MAX_OUTPUT = 128 * 1024 * 1024  # what a script or ansible-inventory may print


@dataclass(frozen=True)
class LoadOptions:
    """``cache_ttl``: seconds a plugin config's result is reused (0: run ansible-inventory every time);
    ``cache_dir``: where (default ``$XDG_CACHE_HOME/fleetrst/inventory``); ``ansible_cfg``: the
    ansible.cfg that ansible-inventory will read, part of the cache key; ``ansible_inventory``: the
    program (default: found on PATH); ``stdin``: what ``-i -`` reads (default: standard input)."""

    cache_ttl: float = DEFAULT_CACHE_TTL
    cache_dir: str | None = None
    ansible_cfg: str | None = None
    ansible_inventory: str | None = None
    stdin: BinaryIO | None = None
    script_timeout: float = SCRIPT_TIMEOUT
    plugin_timeout: float = PLUGIN_TIMEOUT
    max_output: int = MAX_OUTPUT
