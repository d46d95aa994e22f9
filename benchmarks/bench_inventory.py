"""Load a 10,000-host inventory and match a pattern; time ansible-inventory on the same files.

The inventory is generated in a temporary directory: a YAML file with 40 groups of 200 hosts written
as ranges, an INI file with 2,000 more hosts (one line each, with variables) in 20 groups, parent
groups over both, and group_vars for every group plus a few host_vars. Run:

    python benchmarks/bench_inventory.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from fleetrst.inventory import ConnectionDefaults, load_inventory

PATTERN = "web:&dc1:!web-07-*"
LIMIT = "dc1,dc2"
T = TypeVar("T")


def generate(root: Path) -> list[str]:
    (root / "group_vars").mkdir()
    (root / "host_vars").mkdir()
    yaml_lines = ["all:", "  children:"]
    for g in range(40):
        role = "web" if g % 2 == 0 else "app"
        yaml_lines += [
            f"    {role}_{g:02d}:",
            "      hosts:",
            f"        {role}-{g:02d}-[0001:0200].example.com:",
        ]
        yaml_lines += ["      vars:", f"        tier: {g % 4}", f"        fleetrst_bucket: b{g}"]
        (root / "group_vars" / f"{role}_{g:02d}.yml").write_text(f"group_index: {g}\nansible_user: u{g}\n")
    yaml_lines += ["    web:", "      children:"] + [f"        web_{g:02d}:" for g in range(0, 40, 2)]
    yaml_lines += ["    app:", "      children:"] + [f"        app_{g:02d}:" for g in range(1, 40, 2)]
    (root / "10-hosts.yml").write_text("\n".join(yaml_lines) + "\n")

    ini: list[str] = []
    for g in range(20):
        ini.append(f"[db_{g:02d}]")
        ini += [f"db-{g:02d}-{h:03d}.example.com ansible_port={2200 + h % 10} slot={h}" for h in range(100)]
        (root / "group_vars" / f"db_{g:02d}.yml").write_text(f"shard: {g}\n")
    for dc in (1, 2):
        ini.append(f"[dc{dc}:children]")
        ini += [f"web_{g:02d}" for g in range(2 * (dc - 1), 40, 4)] + [
            f"db_{g:02d}" for g in range(dc - 1, 20, 2)
        ]
    ini += ["[db:children]"] + [f"db_{g:02d}" for g in range(20)]
    (root / "20-db.ini").write_text("\n".join(ini) + "\n")
    (root / "group_vars" / "all.yml").write_text("ansible_ssh_common_args: -o ConnectTimeout=5\n")
    for h in range(1, 51):
        (root / "host_vars" / f"web-00-{h:04d}.example.com.yml").write_text(f"ansible_host: 10.0.0.{h}\n")
    return [str(root)]


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="fleetrst-bench-"))
    try:
        sources = generate(root)
        t_load, inv = timed(lambda: load_inventory(sources))
        t_select, names = timed(lambda: inv.select(PATTERN, limit=LIMIT))
        t_targets, _ = timed(lambda: inv.targets(names, ConnectionDefaults()))
        t_list, data = timed(lambda: inv.list_json())
        hosts = len(inv.hosts)

        env = {
            **os.environ,
            "ANSIBLE_HOME": str(root / ".ansible"),
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        }
        ansible = shutil.which("ansible-inventory")
        t_ansible = float("nan")
        if ansible:
            start = time.perf_counter()
            subprocess.run([ansible, "-i", sources[0], "--list"], env=env, capture_output=True, check=True)
            t_ansible = time.perf_counter() - start

        rows = [
            ("fleetrst load_inventory", t_load),
            (f"fleetrst select({PATTERN!r}, limit={LIMIT!r})", t_select),
            ("fleetrst load + select", t_load + t_select),
            (f"fleetrst targets() for the {len(names)} selected", t_targets),
            ("fleetrst list_json() (all merged vars)", t_list),
            ("ansible-inventory --list (process, whole run)", t_ansible),
        ]
        print(f"inventory: {hosts} hosts, {len(inv.groups)} groups; {PATTERN!r} selects {len(names)}")
        width = max(len(r[0]) for r in rows)
        for label, seconds in rows:
            print(f"{label:<{width}}  {seconds * 1000:9.1f} ms")
        assert len(data["_meta"]["hostvars"]) == hosts
        return 0 if t_load + t_select < 1.0 else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
