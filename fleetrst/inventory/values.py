"""Marker types for YAML values that must survive loading untouched: ``!unsafe`` and ``!vault``.

Neither is ever rendered as a template. In ``--list`` output they are shown the way
``ansible-inventory`` shows them: ``{"__ansible_unsafe": text}`` and ``{"__ansible_vault": ciphertext}``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class UnsafeText(str):
    """A string that must never be templated (YAML ``!unsafe``, or an INI bytes literal)."""

    __slots__ = ()


@dataclass(frozen=True)
class VaultValue:
    """A ``!vault`` value: ciphertext that fleetrst keeps but cannot decrypt."""

    ciphertext: str

    def __str__(self) -> str:
        return "<vault-encrypted>"


def to_json(value: Any, *, wrap_unsafe: bool) -> Any:
    """Convert a variable value into what ``ansible-inventory`` prints for it.

    ``wrap_unsafe`` mirrors Ansible's rule that untrusted strings are only marked inside
    ``_meta.hostvars`` (``--list``), not in ``--host`` output.
    """
    if isinstance(value, UnsafeText):
        return {"__ansible_unsafe": str(value)} if wrap_unsafe else str(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, VaultValue):
        return {"__ansible_vault": value.ciphertext}
    if isinstance(value, Mapping):
        return {_key(k): to_json(v, wrap_unsafe=wrap_unsafe) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v, wrap_unsafe=wrap_unsafe) for v in value]
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _key(key: Any) -> str:
    return str(key) if isinstance(key, str) else json_key(key)


def json_key(key: Any) -> str:
    """A mapping key as JSON writes it, ``0`` → ``"0"``, ``True`` → ``"true"``, ``None`` → ``"null"``,
    so that mixed keys (``{a: 1, 0: 2}``) sort as Ansible's output sorts them: as text."""
    if isinstance(key, bool | int | float) or key is None:
        return json.dumps(key)
    if isinstance(key, datetime.date | datetime.time):
        return key.isoformat()
    return str(key)
