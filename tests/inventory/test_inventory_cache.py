"""A plugin config's inventory is cached: cron and repeated runs do not call ansible-inventory (and the
cloud API behind it) every time. The cache lives in ``$XDG_CACHE_HOME/fleetrst/inventory`` (0700,
entries 0600), is keyed by the sources' paths and contents, ansible.cfg and ``ANSIBLE_*``, and is
used while younger than ``--inventory-cache`` (``inventory_cache`` in the settings; 0: never).

ansible-inventory is counted by a wrapper that records each run and then runs the real one.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleetrst.inventory import InventoryError, LoadOptions, load_inventory

from .conftest import ansible_list

DYNAMIC = Path(__file__).parent / "dynamic"


@pytest.fixture
def counted(tmp_path: Path) -> tuple[Path, Path]:
    """A directory holding an ``ansible-inventory`` that counts its runs, and the counter file."""
    real = shutil.which("ansible-inventory")
    assert real, "ansible-core is part of the test extra"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    counter = tmp_path / "runs"
    wrapper = bin_dir / "ansible-inventory"
    wrapper.write_text(f'#!/bin/sh\necho run >> "{counter}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return bin_dir, counter


def _runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


@pytest.fixture
def sources(tmp_path: Path) -> list[str]:
    inv = tmp_path / "inv"
    shutil.copytree(DYNAMIC / "constructed", inv)
    return [str(inv / "static.yml"), str(inv / "constructed.yml")]


def test_a_second_load_within_the_ttl_does_not_run_ansible_inventory(
    tmp_path: Path, counted: tuple[Path, Path], sources: list[str]
) -> None:
    bin_dir, counter = counted
    options = LoadOptions(ansible_inventory=str(bin_dir / "ansible-inventory"), cache_dir=str(tmp_path / "c"))
    first = load_inventory(sources, options).list_json()
    second = load_inventory(sources, options).list_json()
    assert _runs(counter) == 1
    assert first == second == ansible_list(sources)
    directory = tmp_path / "c"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    [entry] = list(directory.iterdir())
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600


def test_what_decides_the_result_is_part_of_the_key(
    tmp_path: Path, counted: tuple[Path, Path], sources: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir, counter = counted
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    options = LoadOptions(
        ansible_inventory=str(bin_dir / "ansible-inventory"),
        cache_dir=str(tmp_path / "c"),
        ansible_cfg=str(cfg),
    )
    load_inventory(sources, options)
    assert _runs(counter) == 1
    static = Path(sources[0])
    static.write_text(static.read_text().replace("team: red", "team: green"))
    assert "team_green" in load_inventory(sources, options).groups
    assert _runs(counter) == 2
    cfg.write_text("[defaults]\n# changed\n")
    load_inventory(sources, options)
    assert _runs(counter) == 3
    monkeypatch.setenv("ANSIBLE_INVENTORY_PLUGIN_SCRIPT_STDERR", "false")
    load_inventory(sources, options)
    assert _runs(counter) == 4
    (Path(sources[0]).parent / "group_vars").mkdir()
    (Path(sources[0]).parent / "group_vars" / "web.yml").write_text("x: 1\n")
    load_inventory(sources, options)
    assert _runs(counter) == 5
    load_inventory(sources, options)
    assert _runs(counter) == 5


def test_zero_means_every_run_and_nothing_is_written(
    tmp_path: Path, counted: tuple[Path, Path], sources: list[str]
) -> None:
    bin_dir, counter = counted
    options = LoadOptions(
        ansible_inventory=str(bin_dir / "ansible-inventory"), cache_dir=str(tmp_path / "c"), cache_ttl=0
    )
    load_inventory(sources, options)
    load_inventory(sources, options)
    assert _runs(counter) == 2
    assert not (tmp_path / "c").exists()


def test_an_old_entry_or_one_others_can_read_is_not_used(
    tmp_path: Path, counted: tuple[Path, Path], sources: list[str]
) -> None:
    bin_dir, counter = counted
    program = str(bin_dir / "ansible-inventory")
    load_inventory(
        sources, LoadOptions(ansible_inventory=program, cache_dir=str(tmp_path / "c"), cache_ttl=1)
    )
    time.sleep(1.1)
    load_inventory(
        sources, LoadOptions(ansible_inventory=program, cache_dir=str(tmp_path / "c"), cache_ttl=1)
    )
    assert _runs(counter) == 2
    [entry] = list((tmp_path / "c").iterdir())
    entry.chmod(0o644)
    load_inventory(sources, LoadOptions(ansible_inventory=program, cache_dir=str(tmp_path / "c")))
    assert _runs(counter) == 3
    (tmp_path / "c").chmod(0o755)
    load_inventory(sources, LoadOptions(ansible_inventory=program, cache_dir=str(tmp_path / "c")))
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o700


def _sweep_list_hosts(env: dict[str, str], sources: list[str], *extra: str) -> str:
    argv = [sys.executable, "-m", "fleetrst.cli", "sweep", *(a for s in sources for a in ("-i", s))]
    proc = subprocess.run(
        [*argv, "--list-hosts", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_cron_runs_share_one_ansible_inventory_run(
    tmp_path: Path, counted: tuple[Path, Path], sources: list[str]
) -> None:
    bin_dir, counter = counted
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETRST_")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", XDG_CACHE_HOME=str(tmp_path / "xdg-cache"))
    first = _sweep_list_hosts(env, sources)
    assert first == "  hosts (3):\n    web1\n    web2\n    db1\n"
    assert _sweep_list_hosts(env, sources) == first
    assert _runs(counter) == 1
    assert (tmp_path / "xdg-cache" / "fleetrst" / "inventory").is_dir()
    _sweep_list_hosts(env, sources, "--inventory-cache", "0")
    assert _runs(counter) == 2
    _sweep_list_hosts({**env, "FLEETRST_INVENTORY_CACHE": "0"}, sources)
    assert _runs(counter) == 3
    _sweep_list_hosts({**env, "FLEETRST_INVENTORY_CACHE": "10m"}, sources)
    assert _runs(counter) == 3


def test_nothing_ansible_inventory_decrypted_is_written_to_the_cache(
    tmp_path: Path, sources: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    password = tmp_path / "vault-password"
    password.write_text("correct horse\n")
    secret = Path(sources[0]).parent / "group_vars" / "all.yml"
    secret.parent.mkdir()
    secret.write_text("ansible_become_password: s3cret\n")
    subprocess.run(
        ["ansible-vault", "encrypt", "--vault-password-file", str(password), str(secret)],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(password))  # ansible-inventory can decrypt it
    inv = load_inventory(sources, LoadOptions(cache_dir=str(tmp_path / "c")))
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())
    with pytest.raises(InventoryError, match=r"all.yml:1: this vars file is vault-encrypted"):
        inv.list_json()  # and fleetrst, which never decrypts, fails closed
