"""The 40 real inventories in ``wild/`` (copied unchanged from public repositories; provenance in
``wild/MANIFEST.md``) read as ansible-core 2.19 reads them: ``--list`` and ``--graph`` as
``ansible-inventory`` prints them, and the hosts every pattern selects as its InventoryManager selects
them. Static files, a ``constructed`` config, a TOML file and an executable PHP script are all read;
the ``aws_ec2`` config needs the amazon.aws collection and says so.

What does not agree, and why (each asserted):
- ``ans_int_hostname`` (``1234:`` as a host name): Ansible warns and drops the source; fleetrst fails
  naming the file and line (deliberate difference 1).
- ``archlinux_infra``: a git symlink that the copy turned into a file
  (``host_vars/build.archlinux.org/mirrorsync.yml`` holds a path): both refuse ``--list``; ``--graph``
  and patterns still agree.
- ``geerling_inventory_php``: compared when ``php`` is installed; without it both fail, fleetrst with
  one line naming the missing interpreter.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fleetrst.inventory import InventoryError, load_inventory

from .conftest import ansible_inventory, ansible_list, oracle

WILD = Path(__file__).parent / "wild"


def _entries() -> dict[str, list[str]]:
    text = (WILD / "MANIFEST.md").read_text()
    entries: dict[str, list[str]] = {}
    for block in text.split("\n## ")[1:]:
        name = block.split()[0]
        line = re.search(r"^- inventory: (.*)$", block, re.M)
        assert line, name
        sources = re.findall(r"`-i ([^`]+)`", line.group(1))
        entries[name] = [str(WILD / s.removeprefix("sources/")) for s in sources]
    return entries


ENTRIES = _entries()
FAILS_HERE = {"ans_int_hostname", "archlinux_infra", "geerling_aws_ec2"}
NEEDS_PHP = "geerling_inventory_php"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


def test_the_corpus_has_its_forty_inventories() -> None:
    assert len(ENTRIES) == 40
    assert all(Path(s).exists() for sources in ENTRIES.values() for s in sources)


def _skip_without_php(name: str) -> None:
    if name == NEEDS_PHP and shutil.which("php") is None:
        with pytest.raises(InventoryError, match=r"its interpreter /usr/bin/php is not installed"):
            load_inventory(ENTRIES[name])
        pytest.skip("php is not installed: the script cannot run (and says so in one line)")


@pytest.mark.parametrize("name", sorted(set(ENTRIES) - FAILS_HERE))
def test_list_and_graph_equal_ansible_inventory(name: str) -> None:
    _skip_without_php(name)
    sources = ENTRIES[name]
    inv = load_inventory(sources)
    assert inv.list_json() == ansible_list(sources)
    assert inv.graph() == ansible_inventory(sources, "--graph").stdout.rstrip("\n")


@pytest.mark.parametrize("name", ["kubespray_local", "ceph_all_daemons", "mitogen_hosts", "ans_toml"])
def test_host_equals_ansible_inventory_host(name: str) -> None:
    sources = ENTRIES[name]
    inv = load_inventory(sources)
    host = inv.select("all")[-1]
    assert inv.host_json(host) == json.loads(ansible_inventory(sources, "--host", host).stdout)


def _patterns(groups: list[str], hosts: list[str]) -> list[str]:
    some = groups[:8]
    patterns = ["all", "*", "ungrouped", "all:!ungrouped", "~.*[0-9]$", *some]
    patterns += [f"{some[0]}:&{g}" for g in some[1:]] + [f"all:!{g}" for g in some[:4]]
    patterns += [f"{a},{b}" for a, b in itertools.pairwise(some)]
    patterns += [h for h in hosts[:3]] + ["*example*", "*.*"]
    return patterns


@pytest.mark.parametrize("name", sorted(set(ENTRIES) - {"ans_int_hostname", "geerling_aws_ec2"}))
def test_patterns_select_what_ansible_selects(name: str) -> None:
    _skip_without_php(name)
    _plugins_in_process()
    sources = ENTRIES[name]
    inv = load_inventory(sources)
    groups = [g for g in inv.groups if g not in ("all", "ungrouped")]
    for pattern in _patterns(groups, inv.select("all")):
        expected = oracle(tuple(sources)).select(pattern)
        got = inv.select(pattern)
        assert sorted(got) == sorted(expected) and len(got) == len(set(got)), pattern
    for limit in groups[:3]:
        assert sorted(inv.select("all", limit)) == sorted(oracle(tuple(sources)).select("all", limit)), limit


def test_an_integer_host_name_fails_in_one_line_where_ansible_drops_the_source() -> None:
    sources = ENTRIES["ans_int_hostname"]
    assert ansible_list(sources)["_meta"]["hostvars"] == {}
    with pytest.raises(InventoryError, match=r"test_int_hostname.yml:\d+: host name 1234 must be a string"):
        load_inventory(sources)


def test_a_symlink_copied_as_a_file_fails_both_and_the_rest_agrees() -> None:
    sources = ENTRIES["archlinux_infra"]
    assert ansible_inventory(sources, "--list").returncode != 0
    with pytest.raises(InventoryError, match=r"mirrorsync.yml:1: a vars file must be a mapping"):
        load_inventory(sources).list_json()
    assert load_inventory(sources).graph() == ansible_inventory(sources, "--graph").stdout.rstrip("\n")


@functools.cache
def _plugins_in_process() -> None:
    """In-process, Ansible finds its own plugins (constructed) only once its loader is set up."""
    import warnings

    from ansible.plugins.loader import init_plugin_loader

    with warnings.catch_warnings():  # the other test module may have set it up already
        warnings.simplefilter("ignore")
        init_plugin_loader()


def _fleetrst(*argv: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetrst.cli", *argv], capture_output=True, text=True, timeout=120, **kwargs
    )


def test_an_aws_ec2_config_without_its_collection_says_what_to_install() -> None:
    [config] = ENTRIES["geerling_aws_ec2"]
    proc = _fleetrst("inventory", "-i", config, "--list")
    assert proc.returncode == 64 and proc.stdout == ""
    assert proc.stderr == (
        f"fleetrst: error: {config}: ansible-inventory cannot read it: inventory config '{config}' "
        "specifies unknown plugin 'aws_ec2' (the collection amazon.aws is not installed: "
        "ansible-galaxy collection install amazon.aws)\n"
    )


def test_a_plugin_config_without_ansible_core_says_what_to_install(tmp_path: Path) -> None:
    [config] = ENTRIES["geerling_aws_ec2"]
    bin_dir = tmp_path / "bin"  # a PATH with the usual programs and no ansible-inventory
    bin_dir.mkdir()
    for program in ("sh", "cat"):
        found = shutil.which(program)
        assert found
        (bin_dir / program).symlink_to(found)
    proc = _fleetrst("sweep", "-i", config, "--list-hosts", env={"PATH": str(bin_dir), "HOME": str(tmp_path)})
    assert proc.returncode == 64 and proc.stdout == ""
    assert proc.stderr == (
        f"fleetrst: error: {config}: this is an Ansible inventory plugin config; fleetrst reads it by "
        "running ansible-inventory, which is not installed: pip install ansible-core (and the "
        "collection of the plugin)\n"
    )
