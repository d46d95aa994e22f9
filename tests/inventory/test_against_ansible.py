"""`fleetrst inventory --list/--graph/--host` print what `ansible-inventory` prints, for every corpus
inventory (YAML, INI, directories, group_vars/host_vars in every form, ranges, precedence traps,
nested children, numeric names, empty groups, templates, !vault/!unsafe values, several -i)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from fleetrst.cli.context import Context
from fleetrst.cli.inventory import add_arguments as add_inventory_arguments
from fleetrst.cli.inventory import run as run_inventory
from fleetrst.inventory import load_inventory
from fleetrst.settings import Resolved

from .conftest import ansible_inventory, ansible_list, corpus

CASES: dict[str, list[str]] = {
    "yaml": corpus("yaml_basic/hosts.yml"),
    "ini": corpus("ini_basic/hosts.ini"),
    "ranges": corpus("ranges/hosts.yml"),
    "directory": corpus("dir_mixed"),
    "precedence": corpus("precedence/hosts.yml"),
    "templates": corpus("templates/hosts.yml"),
    "numeric": corpus("numeric/hosts.yml"),
    "two-sources": corpus("multi/one/hosts.yml", "multi/two/hosts.ini"),
    "three-sources": corpus("multi/one/hosts.yml", "multi/two/hosts.ini", "multi/one/hosts.yml"),
    "deep": corpus("deep/hosts.yml"),
    "ipv6": corpus("ipv6/hosts.ini"),
    "vault-unsafe": corpus("vault_unsafe.yml"),
    "dir-and-file": corpus("dir_mixed", "yaml_basic/hosts.yml"),
    "host-list": ["alpha,beta:2222, gamma ,web[1:2]"],
    "examples-yaml": ["inventories/small.yml"],
    "examples-ini": ["inventories/hosts.ini"],
    "examples-dir": ["inventories/site"],
}
NO_VAULT = ["yaml", "ini", "ranges", "directory", "precedence", "numeric", "two-sources", "deep", "ipv6"]


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    monkeypatch.chdir(request.config.rootpath)


def _sources(case: str) -> list[str]:
    import os

    return [os.path.abspath(s) if not ("," in s and not os.path.exists(s)) else s for s in CASES[case]]


@pytest.mark.parametrize("case", sorted(CASES))
def test_list_equals_ansible_inventory_list(case: str) -> None:
    sources = _sources(case)
    assert load_inventory(sources).list_json() == ansible_list(sources)


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_equals_ansible_inventory_graph(case: str) -> None:
    sources = _sources(case)
    inv = load_inventory(sources)
    assert inv.graph() == ansible_inventory(sources, "--graph").stdout.rstrip("\n")
    group = next((g for g in inv.groups if g not in ("all", "ungrouped") and inv.groups[g].children), None)
    if group:
        assert inv.graph(group) == ansible_inventory(sources, "--graph", group).stdout.rstrip("\n")


@pytest.mark.parametrize("case", NO_VAULT)
def test_graph_vars_equals_ansible_inventory_graph_vars(case: str) -> None:
    sources = _sources(case)
    expected = ansible_inventory(sources, "--graph", "--vars").stdout.rstrip("\n")
    assert load_inventory(sources).graph(vars=True) == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_host_equals_ansible_inventory_host(case: str) -> None:
    sources = _sources(case)
    inv = load_inventory(sources)
    names = inv.select("all")
    for name in [names[0], names[-1], names[len(names) // 2]]:
        proc = ansible_inventory(sources, "--host", name)
        assert proc.returncode == 0, proc.stderr
        assert inv.host_json(name) == json.loads(proc.stdout), name


def _cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    parser = argparse.ArgumentParser()
    add_inventory_arguments(parser)
    assert run_inventory(parser.parse_args(list(argv)), Context(Resolved({}, []))) == 0
    return capsys.readouterr().out


# The one line fleetrst does not print: ansible-core 2.19 names the JSON profile it encoded with. It
# is cut out of Ansible's text as text (the comma that ends the line before it too), never by loading
# and re-dumping the JSON, so that every other byte is compared as Ansible wrote it.
PROFILE_LINE = ',\n        "profile": "inventory_legacy"\n'


def _without_profile(text: str) -> str:
    assert text.count(PROFILE_LINE) == 1, "ansible-inventory --list names its profile once, as 2.19 does"
    return text.replace(PROFILE_LINE, "\n")


@pytest.mark.parametrize("case", ["yaml", "directory", "templates", "three-sources"])
def test_cli_prints_byte_for_byte_what_ansible_inventory_prints_but_its_profile_line(
    case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = _sources(case)
    args = [x for s in sources for x in ("-i", s)]
    assert _cli(*args, "--list", capsys=capsys) == _without_profile(
        ansible_inventory(sources, "--list").stdout
    )
    assert _cli(*args, "--graph", capsys=capsys) == ansible_inventory(sources, "--graph").stdout
    host = load_inventory(sources).select("all")[0]
    assert _cli(*args, "--host", host, capsys=capsys) == ansible_inventory(sources, "--host", host).stdout
    assert (
        _cli(*args, "--list", "--yaml", capsys=capsys)
        == ansible_inventory(sources, "--list", "--yaml").stdout
    )
    yaml_host = ansible_inventory(sources, "--host", host, "--yaml").stdout
    assert _cli(*args, "--host", host, "--yaml", capsys=capsys) == yaml_host


def test_cli_writes_the_output_file(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "inv.json"
    sources = _sources("yaml")
    _cli("-i", sources[0], "--list", "--output", str(out), capsys=capsys)
    assert json.loads(out.read_text()) == ansible_list(sources)
