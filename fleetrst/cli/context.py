"""What every command is given besides its arguments: the settings, resolved once per run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..settings import Resolved


@dataclass(frozen=True)
class Context:
    """``settings``: fleetrst.toml, FLEETRST_*, ANSIBLE_* and ansible.cfg, resolved (each value with
    where it came from); they are already the defaults of every command's flags. ``builtin``: each
    setting's built-in default, before the settings (for ``fleetrst config``)."""

    settings: Resolved
    builtin: dict[str, Any] = field(default_factory=dict)
