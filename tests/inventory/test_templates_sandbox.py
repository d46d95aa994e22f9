"""Templates in an inventory render in Jinja2's immutable sandbox: what reaches into Python's object
graph is refused by the sandbox itself, with its own words, and never rendered.

Every payload here is live: a plain ``jinja2.Environment`` renders it to a value fleetrst would
happily use (a host name, a port), so a fleetrst without the sandbox would connect with it and these
tests would fail on the missing refusal, not pass on some later validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from fleetrst.inventory import ConnectionDefaults, load_inventory
from fleetrst.model import Target

# (variable, payload, what a plain Jinja2 environment renders it to for host "h1")
ESCAPES = [
    ("ansible_host", "{{ inventory_hostname.__class__.__name__ }}", "str"),
    ("ansible_host", "{{ inventory_hostname.__class__.__mro__[1].__name__ }}", "object"),
    ("ansible_host", "{{ 'web1' if ''.__class__.__mro__[1].__subclasses__() else 'x' }}", "web1"),
    ("ansible_host", "{{ '{0.__class__.__name__}'.format(inventory_hostname) }}", "str"),
    ("ansible_user", "{{ inventory_hostname.__init__.__name__ }}", "__init__"),
    ("ansible_port", "{{ inventory_hostname.__class__.__name__ | length + 2219 }}", "2222"),
    # the *immutable* sandbox: no mutating a value in place either
    ("ansible_host", "{{ [inventory_hostname].append('x') or 'web1' }}", "web1"),
    ("ansible_host", "{{ {'a': 1}.update(b=2) or 'web1' }}", "web1"),
]  # fmt: skip


def targets(tmp_path: Path, hostvars: dict[str, dict[str, Any]]) -> dict[str, Target]:
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": hostvars}}))
    inv = load_inventory([str(path)])
    return {t.name: t for t in inv.targets(inv.select("all"), ConnectionDefaults())}


@pytest.mark.parametrize(("variable", "payload", "unsandboxed"), ESCAPES)
def test_a_template_that_reaches_into_python_is_refused_by_the_sandbox(
    tmp_path: Path, variable: str, payload: str, unsandboxed: str
) -> None:
    assert jinja2.Environment().from_string(payload).render(inventory_hostname="h1") == unsandboxed
    got = targets(tmp_path, {"h1": {variable: payload}, "h2": {"ansible_host": "192.0.2.2"}})
    error = got["h1"].error
    assert error is not None, f"{payload} rendered: {got['h1'].connection}"
    assert error.startswith(f"host h1: {variable}: template ") and error.endswith(" is unsafe."), error
    assert got["h2"].error is None and got["h2"].connection.address == "192.0.2.2"


def test_the_same_templates_without_the_escape_render(tmp_path: Path) -> None:
    # The refusals above are the sandbox's, not templates failing in general.
    got = targets(
        tmp_path,
        {
            "h1": {
                "ansible_host": "{{ inventory_hostname ~ '.example.com' }}",
                "ansible_port": "{{ inventory_hostname | length + 2220 }}",
                "ansible_user": "{{ ['ops', inventory_hostname] | join('-') }}",
            }
        },
    )
    conn = got["h1"].connection
    assert got["h1"].error is None
    assert (conn.address, conn.port, conn.user) == ("h1.example.com", 2222, "ops-h1")
