"""Start-up costs what the run needs: a plain sweep imports no inventory code, no Jinja2, no history
and no investigation; an inventory without templates imports no Jinja2; an investigator that
investigates no host imports none of the runbook's modules.

Each case runs in a fresh interpreter, so that what another test imported does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

# Modules a plain sweep of this machine (no inventory, --no-history, --investigate never) never needs.
NOT_FOR_A_PLAIN_SWEEP = (
    "fleetrst.inventory",
    "jinja2",
    "yaml",
    "fleetrst.investigate",
    "fleetrst.history",
    "fleetrst.cli.lock",
    "sqlite3",
    "tomllib",
    "configparser",
)
RUNBOOK = (
    "fleetrst.investigate.analyse",
    "fleetrst.investigate.classify",
    "fleetrst.investigate.correlate",
    "fleetrst.investigate.result",
    "fleetrst.investigate.script",
    "fleetrst.investigate.ss",
)


def loaded_after(code: str, cwd: Path) -> set[str]:
    """The modules loaded once ``code`` has run in a fresh interpreter (its stdout is discarded)."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json as _json, sys as _sys
        _sys.__stdout__.write("\\n@@modules " + _json.dumps(sorted(_sys.modules)) + "\\n")
        """
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd / "config")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("@@modules "))
    return set(json.loads(line.removeprefix("@@modules ")))


def under(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def test_a_plain_sweep_of_this_machine_imports_no_inventory_history_or_investigation(tmp_path: Path) -> None:
    modules = loaded_after(
        """
        from fleetrst.cli.main import main
        code = main(["sweep", "--window", "0.1", "-o", "json", "--no-history", "--investigate", "never",
                     "--containers", "never"])
        assert code in (0, 1, 2), code
        """,
        tmp_path,
    )
    assert "fleetrst.sweep" in modules  # it did sweep
    assert under(modules, NOT_FOR_A_PLAIN_SWEEP) == []


def test_an_inventory_without_templates_imports_no_jinja2(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text("[web]\nweb1 ansible_host=10.0.0.1 ansible_port=2222\n")
    modules = loaded_after(
        """
        from fleetrst.inventory import ConnectionDefaults, load_inventory
        inv = load_inventory(["hosts.ini"])
        (target,) = inv.targets(inv.select("all"), ConnectionDefaults())
        assert (target.connection.address, target.connection.port) == ("10.0.0.1", 2222)
        """,
        tmp_path,
    )
    assert under(modules, ("jinja2",)) == []


def test_a_template_in_a_variable_still_renders(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text("[web]\nweb1 ansible_host=10.0.0.1 ansible_port='{{ 2200 + 22 }}'\n")
    modules = loaded_after(
        """
        from fleetrst.inventory import ConnectionDefaults, load_inventory
        inv = load_inventory(["hosts.ini"])
        (target,) = inv.targets(inv.select("all"), ConnectionDefaults())
        assert target.connection.port == 2222, target.connection.port
        """,
        tmp_path,
    )
    assert "jinja2" in modules


def test_an_investigator_that_investigates_no_host_imports_no_runbook(tmp_path: Path) -> None:
    modules = loaded_after(
        """
        from fleetrst.investigate.runner import InvestigateOptions, RunbookInvestigator
        from fleetrst.model import HostResult
        investigator = RunbookInvestigator(InvestigateOptions(mode="auto"))
        ok = HostResult(host="h1", address="h1", groups=(), status="ok")
        assert investigator.fleet_findings([ok]) == []
        """,
        tmp_path,
    )
    assert under(modules, RUNBOOK) == []
