"""Bad input gets one clear line naming the file and line (or the pattern), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetrst.inventory import InventoryError, load_inventory


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "r.yml",
            "g:\n  hosts:\n    h[001:10]:\n",
            r"r.yml:3: bad host range in 'h\[001:10\]': .*equal-length",
        ),
        ("r.ini", "[g]\nh[c:a]\n", r"r.ini:2: host range must have begin <= end"),
        ("n.yml", "g:\n  hosts:\n    10:\n", r"n.yml:3: host name 10 must be a string: quote numbers"),
        ("s.ini", "[g:nope]\nh\n", r"s.ini:1: section \[g:nope\] has unknown type 'nope'"),
        ("s2.ini", "[g x]\n", r"s2.ini:1: invalid section header"),
        ("v.ini", "[g]\nh\n[g:vars]\nnovalue\n", r"v.ini:4: expected key=value, got 'novalue'"),
        ("h.ini", "[g]\nh a b\n", r"h.ini:2: expected key=value after the host name, got 'a'"),
        ("c.ini", "[p:children]\nmissing\n", r"c.ini:2: section \[p:children\] names group 'missing'"),
        ("q.ini", "[g]\nh 'unterminated\n", r"q.ini:2: cannot parse host line"),
        ("p.ini", "[g]\nhost:\n", r"p.ini:2: host entry 'host:' ends in ':'"),
        ("loop.yml", "a:\n  children:\n    b:\n      children:\n        a:\n", r"loop.yml:\d+: .*loop"),
        (
            "prio.yml",
            "g:\n  vars:\n    ansible_group_priority: high\n",
            r"prio.yml:2: ansible_group_priority",
        ),
        ("top.yml", "- a\n- b\n", r"top.yml:1: a YAML inventory must be a mapping of groups, got list"),
        ("hv.yml", "g:\n  hosts:\n    h: 5\n", r"hv.yml:3: variables of host 'h' must be a mapping"),
        ("tag.yml", "g: !foo\n  hosts: {}\n", r"tag.yml:1: invalid YAML: .*!foo"),
        ("bin.ini", None, r"bin.ini:2: file is not valid UTF-8"),
    ],
)
def test_bad_sources_name_the_file_and_line(
    tmp_path: Path, name: str, text: str | None, expected: str
) -> None:
    path = tmp_path / name
    if text is None:
        path.write_bytes(b"[g]\nh\xff\n")
    else:
        path.write_text(text)
    with pytest.raises(InventoryError) as exc:
        load_inventory([str(path)])
    message = str(exc.value)
    assert "\n" not in message
    assert __import__("re").search(expected, message), message


def test_bad_vars_files_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text("[web]\nw1\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "web.yml").write_text("- not\n- a mapping\n")
    inv = load_inventory([str(tmp_path / "hosts.ini")])
    with pytest.raises(InventoryError, match=r"group_vars/web.yml:1: a vars file must be a mapping"):
        inv.list_json()


def test_unreadable_and_empty_sources(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="no inventory given"):
        load_inventory([])
    (tmp_path / "empty.yml").write_text("# nothing yet\n")
    assert load_inventory([str(tmp_path / "empty.yml")]).select("all") == []


def test_group_vars_in_a_directory_source_sit_inside_it(tmp_path: Path) -> None:
    (tmp_path / "inv" / "group_vars").mkdir(parents=True)
    (tmp_path / "inv" / "a.ini").write_text("[web]\nw1\n")
    (tmp_path / "inv" / "group_vars" / "web.yml").write_text("x: 1\n")
    assert load_inventory([str(tmp_path / "inv")]).host_json("w1") == {"x": 1}
