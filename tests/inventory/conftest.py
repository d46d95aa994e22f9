"""Ansible (ansible-core, pip-installed) is the oracle: helpers to ask it, in-process or as a CLI.

Ansible reads its configuration when first imported, so its environment is set here, before any
test imports it: a private ANSIBLE_HOME and temp dir, no warnings for unparsed sources, no
config file from the working directory, and nothing that could reach a network.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

_ANSIBLE_DIR = tempfile.mkdtemp(prefix="fleetrst-ansible-")
_ANSIBLE_CFG = os.path.join(_ANSIBLE_DIR, "ansible.cfg")
Path(_ANSIBLE_CFG).write_text("[defaults]\n")
ANSIBLE_ENV = {
    "ANSIBLE_HOME": _ANSIBLE_DIR,
    "ANSIBLE_LOCAL_TEMP": os.path.join(_ANSIBLE_DIR, "tmp"),
    "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
    "ANSIBLE_CONFIG": _ANSIBLE_CFG,
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_DEPRECATION_WARNINGS": "False",
    "ANSIBLE_SYSTEM_WARNINGS": "False",
}
os.environ.update(ANSIBLE_ENV)

CORPUS = Path(__file__).parent / "corpus"


def corpus(*names: str) -> list[str]:
    return [str(CORPUS / n) if "," not in n else n for n in names]


def _env() -> dict[str, str]:
    return {**os.environ, **ANSIBLE_ENV}


@functools.cache
def _run(argv: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, env=_env(), cwd=_ANSIBLE_DIR, timeout=120
    )


def ansible_inventory(sources: Sequence[str], *args: str) -> subprocess.CompletedProcess[str]:
    argv = ["ansible-inventory"]
    for s in sources:
        argv += ["-i", s]
    return _run(tuple(argv + list(args)))


def ansible_list(sources: Sequence[str]) -> dict[str, Any]:
    proc = ansible_inventory(sources, "--list")
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    data["_meta"].pop("profile", None)
    return data


def ansible_list_hosts(sources: Sequence[str], pattern: str, limit: str | None = None) -> str:
    argv = ["ansible", pattern]
    for s in sources:
        argv += ["-i", s]
    argv.append("--list-hosts")
    if limit is not None:
        argv += ["--limit", limit]
    return _run(tuple(argv)).stdout


class Oracle:
    """Ansible's InventoryManager, in-process: what it selects for a pattern and limit."""

    def __init__(self, sources: Sequence[str]) -> None:
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader

        self.manager = InventoryManager(DataLoader(), sources=list(sources))

    def select(self, pattern: str, limit: str | list[str] | None = None) -> list[str]:
        self.manager.subset(limit)
        try:
            return [h.name for h in self.manager.get_hosts(pattern)]
        finally:
            self.manager.subset(None)
            self.manager.clear_pattern_cache()


@functools.cache
def oracle(sources: tuple[str, ...]) -> Oracle:
    return Oracle(sources)


@pytest.fixture
def tmp_inventory(tmp_path: Path) -> Path:
    return tmp_path
