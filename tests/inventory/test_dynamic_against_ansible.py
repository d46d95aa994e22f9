"""Scripts, plugin configs, TOML and ansible-inventory's own JSON read as ansible-core 2.19 reads them.

The oracle is the real thing: ``ansible-inventory`` (``--list``, ``--graph``, ``--host``, ``--export``,
``--yaml``, ``--toml``, ``--limit``) and ``ansible --list-hosts``/``InventoryManager`` for patterns,
on the same sources: an inventory script with ``_meta`` and one without (Ansible then runs
``--host NAME`` per host), Ansible's own ``constructed`` plugin over a static inventory (keyed_groups,
groups, compose; offline), a TOML inventory, and ``--list``/``--list --export`` JSON fed back (as a
file and on standard input) against Ansible reading the same JSON through a script.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from fleetrst.cli.context import Context
from fleetrst.cli.inventory import add_arguments as add_inventory_arguments
from fleetrst.cli.inventory import run as run_inventory
from fleetrst.inventory import LoadOptions, load_inventory
from fleetrst.settings import Resolved

from .conftest import CORPUS, ansible_inventory, ansible_list, ansible_list_hosts, oracle

DYNAMIC = Path(__file__).parent / "dynamic"
WILD = Path(__file__).parent / "wild"

CASES: dict[str, list[str]] = {
    "script-with-meta": [str(DYNAMIC / "script_meta.py")],
    "script-without-meta": [str(DYNAMIC / "script_nometa.py")],
    "script-and-static": [str(DYNAMIC / "script_meta.py"), str(CORPUS / "yaml_basic/hosts.yml")],
    "constructed": [str(DYNAMIC / "constructed/static.yml"), str(DYNAMIC / "constructed/constructed.yml")],
    "constructed-then-static": [
        str(DYNAMIC / "constructed/static.yml"),
        str(DYNAMIC / "constructed/constructed.yml"),
        str(CORPUS / "ini_basic/hosts.ini"),
    ],
    "constructed-wild": [
        str(WILD / "ans_constructed_plugin/static_inventory.yml"),
        str(WILD / "ans_constructed_plugin/constructed.yml"),
    ],
    "toml": [str(DYNAMIC / "toml/hosts.toml")],
    "toml-wild": [str(WILD / "ans_toml/valid_sample.toml")],
    "toml-and-yaml": [str(DYNAMIC / "toml/hosts.toml"), str(CORPUS / "precedence/hosts.yml")],
}
# A plugin's variables come back through JSON with sorted keys: TOML (which keeps the order of keys)
# then lists them in another order than Ansible's. Those are compared as TOML documents.
TOML_KEY_ORDER_DIFFERS = {"constructed", "constructed-then-static", "constructed-wild"}
# Each ansible-inventory run costs a second or more: every output form is checked on these.
GRAPH_VARS = {"script-with-meta", "constructed", "toml"}
EVERY_FORM = {"script-with-meta", "constructed", "toml", "toml-and-yaml"}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


def _without_profile(text: str) -> str:
    data: dict[str, Any] = json.loads(text)
    data["_meta"].pop("profile", None)
    return json.dumps(data, sort_keys=True, indent=4, ensure_ascii=False) + "\n"  # as Ansible prints it


def _cli(*argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    parser = argparse.ArgumentParser()
    add_inventory_arguments(parser)
    assert run_inventory(parser.parse_args(list(argv)), Context(Resolved({}, []))) == 0
    return capsys.readouterr().out


def _i(sources: list[str]) -> list[str]:
    return [x for s in sources for x in ("-i", s)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_list_graph_and_host_equal_ansible_inventory(case: str) -> None:
    sources = CASES[case]
    inv = load_inventory(sources)
    assert inv.list_json() == ansible_list(sources)
    assert inv.graph() == ansible_inventory(sources, "--graph").stdout.rstrip("\n")
    if case in GRAPH_VARS:
        assert inv.graph(vars=True) == ansible_inventory(sources, "--graph", "--vars").stdout.rstrip("\n")
    names = inv.select("all")
    for name in dict.fromkeys([names[0], names[len(names) // 2], names[-1]]):
        proc = ansible_inventory(sources, "--host", name)
        assert proc.returncode == 0, proc.stderr
        assert inv.host_json(name) == json.loads(proc.stdout), name


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_prints_what_ansible_inventory_prints(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    sources = CASES[case]
    args = _i(sources)
    exports = case in EVERY_FORM
    for flags in (["--list"], ["--list", "--export"], ["--list", "--limit", "*1*"]):
        expected = _without_profile(ansible_inventory(sources, *flags).stdout)
        assert _cli(*args, *flags, capsys=capsys) == expected, flags
    for flags in (["--list", "--yaml"], ["--graph"], *([["--list", "--yaml", "--export"]] * exports)):
        assert _cli(*args, *flags, capsys=capsys) == ansible_inventory(sources, *flags).stdout, flags
    for flags in (["--list", "--toml"], *([["--list", "--toml", "--export"]] * exports)):
        expected = ansible_inventory(sources, *flags)
        assert expected.returncode == 0, expected.stderr
        got = _cli(*args, *flags, capsys=capsys)
        if case in TOML_KEY_ORDER_DIFFERS:
            assert tomllib.loads(got) == tomllib.loads(expected.stdout), flags
        else:
            assert got == expected.stdout, flags


@pytest.mark.parametrize("case", sorted(CASES))
def test_patterns_select_what_ansible_selects(case: str) -> None:
    _plugins_in_process()
    sources = CASES[case]
    inv = load_inventory(sources)
    groups = [g for g in inv.groups if g not in ("all", "ungrouped")]
    patterns = ["all", "ungrouped", "*", "~.*1", "all:!ungrouped", *groups]
    patterns += [f"{groups[0]}:&{g}" for g in groups[1:4]] + [f"all:!{g}" for g in groups[:3]]
    patterns += [f"{g}[0]" for g in groups[:3] if inv.group_hosts(g)]
    for pattern in patterns:
        expected = oracle(tuple(sources)).select(pattern)
        got = inv.select(pattern)
        assert sorted(got) == sorted(expected) and len(got) == len(set(got)), pattern


def test_list_hosts_equals_ansible_list_hosts_for_a_script() -> None:
    from fleetrst.inventory import format_list_hosts

    sources = CASES["script-without-meta"]
    for pattern in ("backend", "app:!app2"):
        expected = ansible_list_hosts(sources, pattern)
        assert format_list_hosts(load_inventory(sources).select(pattern)) == expected, pattern


# --- ansible-inventory's JSON fed back ---------------------------------------------------------------


def _as_script(tmp_path: Path, json_file: Path) -> str:
    """What Ansible needs to read its own output: a script that prints it."""
    script = tmp_path / (json_file.stem + ".sh")
    script.write_text(f"#!/bin/sh\nexec cat '{json_file}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


FED_BACK = {
    "yaml": [str(CORPUS / "yaml_basic/hosts.yml")],
    "directory": [str(CORPUS / "dir_mixed")],
    "precedence": [str(CORPUS / "precedence/hosts.yml")],
    "templates": [str(CORPUS / "templates/hosts.yml")],
    "vault-unsafe": [str(CORPUS / "vault_unsafe.yml")],
    "script": CASES["script-with-meta"],
    "constructed": CASES["constructed"],
}


@pytest.mark.parametrize("export", [False, True], ids=["list", "export"])
@pytest.mark.parametrize("case", sorted(FED_BACK))
def test_ansible_inventory_output_reads_back_as_the_inventory_it_describes(
    case: str, export: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--list", "--export"] if export else ["--list"]
    produced = ansible_inventory(FED_BACK[case], *flags)
    assert produced.returncode == 0, produced.stderr
    saved = tmp_path / "inventory.json"
    saved.write_text(produced.stdout)
    through_script = [_as_script(tmp_path, saved)]  # how Ansible reads it
    expected = ansible_list(through_script)
    assert load_inventory([str(saved)]).list_json() == expected
    from_stdin = load_inventory(["-"], LoadOptions(stdin=io.BytesIO(produced.stdout.encode())))
    assert from_stdin.list_json() == expected
    for name in list(expected["_meta"]["hostvars"])[:2]:
        assert from_stdin.host_json(name) == json.loads(
            ansible_inventory(through_script, "--host", name).stdout
        )
    # and our own --export output is Ansible's, so it reads back the same way
    ours = _cli(*_i(FED_BACK[case]), *flags, capsys=capsys)
    assert json.loads(ours) == json.loads(_without_profile(produced.stdout))
    piped = _fleetrst("inventory", "-i", "-", "--list", input=ours)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == _without_profile(ansible_inventory(through_script, "--list").stdout)


def test_a_yaml_file_of_ansible_inventory_output_reads_too(tmp_path: Path) -> None:
    produced = ansible_inventory(CASES["script-with-meta"], "--list", "--export")
    saved = tmp_path / "inventory.yml"
    saved.write_text(json.dumps(json.loads(produced.stdout), indent=2))  # JSON is YAML
    assert load_inventory([str(saved)]).list_json() == ansible_list(CASES["script-with-meta"])


# --- the two bugs the real inventories showed ----------------------------------------------------------


def test_a_mapping_with_an_integer_key_prints_as_ansible_prints_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sources = [str(WILD / "ans_inv_with_int/inv_with_int.yml")]
    args = _i(sources)
    assert _cli(*args, "--list", capsys=capsys) == _without_profile(
        ansible_inventory(sources, "--list").stdout
    )
    assert (
        _cli(*args, "--host", "testing123", capsys=capsys)
        == ansible_inventory(sources, "--host", "testing123").stdout
    )
    assert json.loads(_cli(*args, "--host", "testing123", capsys=capsys)) == {"x": {"0": 2, "a": 1}}
    assert (
        _cli(*args, "--list", "--yaml", capsys=capsys)
        == ansible_inventory(sources, "--list", "--yaml").stdout
    )
    assert (
        _cli(*args, "--graph", "--vars", capsys=capsys)
        == ansible_inventory(sources, "--graph", "--vars").stdout
    )


def test_mixed_keys_of_every_kind_sort_as_text(tmp_path: Path) -> None:
    path = tmp_path / "keys.yml"
    path.write_text("all:\n  hosts:\n    h1:\n      y: {true: 1, b: 2, null: 3, 1.5: 4, 10: 5, 2: 6}\n")
    assert load_inventory([str(path)]).list_json() == ansible_list([str(path)])


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


def test_limit_given_twice_the_last_one_counts_as_in_ansible_and_we_say_so() -> None:
    sources = [str(CORPUS / "yaml_basic/hosts.yml")]
    ansible = subprocess.run(
        ["ansible", "all", *_i(sources), "--list-hosts", "--limit", "db", "--limit", "web"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    proc = _fleetrst("sweep", "all", *_i(sources), "--list-hosts", "-l", "db", "-l", "web")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ansible.stdout
    assert "web1.example.com" in proc.stdout and "db1.example.com" not in proc.stdout
    assert proc.stderr == (
        "fleetrst: warning: --limit given 2 times: only the last one ('web') counts, as in Ansible; "
        "to combine them write one pattern, e.g. -l 'web:&prod'\n"
    )
    listed = _fleetrst("inventory", *_i(sources), "--list", "-l", "db", "-l", "web")
    expected = ansible_inventory(sources, "--list", "--limit", "db", "--limit", "web").stdout
    assert listed.stdout == _without_profile(expected)
    assert "only the last one" in listed.stderr


def test_inventory_gains_limit_export_and_toml(capsys: pytest.CaptureFixture[str]) -> None:
    sources = [str(CORPUS / "yaml_basic/hosts.yml")]
    for flags in (
        ["--list", "-l", "web"],
        ["--list", "--limit", "prod:!db2.example.com", "--export"],
        ["--host", "web1.example.com", "--export"],
        ["--graph", "--vars", "--export"],
    ):
        expected = ansible_inventory(sources, *flags).stdout
        got = _cli(*_i(sources), *flags, capsys=capsys)
        assert got == (_without_profile(expected) if flags[0] == "--list" else expected), flags
    for flags in (["--list", "--toml", "-l", "staging"], ["--host", "stage1.example.com", "--toml"]):
        assert _cli(*_i(sources), *flags, capsys=capsys) == ansible_inventory(sources, *flags).stdout, flags


def test_the_examples_in_the_repository_print_as_ansible_prints_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = Path(__file__).parents[2]
    for example in ("inventories/small.yml", "inventories/hosts.ini", "inventories/site"):
        sources = [str(root / example)]
        got = _cli(*_i(sources), "--list", "--toml", capsys=capsys)
        assert tomllib.loads(got) == tomllib.loads(ansible_inventory(sources, "--list", "--toml").stdout)


def test_settings_give_the_cache_its_time_to_live(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETRST_")}
    env["FLEETRST_INVENTORY_CACHE"] = "0"
    proc = _fleetrst("config", env=env)
    assert "inventory_cache" in proc.stdout, proc.stdout + proc.stderr
