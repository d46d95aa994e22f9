"""Inventory scripts: an executable source is run the way Ansible's ``script`` plugin runs it.

``SCRIPT --list`` prints the inventory as JSON (:mod:`.jsoninv`); when that JSON has no ``_meta``,
``SCRIPT --host NAME`` is run for each host for its variables, as Ansible does. A script is the user's
own program, as in Ansible; fleetrst runs it without a shell (arguments as a list, host names
included), with standard input from /dev/null, a deadline and a cap on what it prints. Any failure is
one line naming the script and what went wrong: the exit status and the last line of its standard
error, a deadline, the cap, or what in its JSON was wrong.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..units import human_bytes
from .data import InventoryBuilder
from .errors import InventoryError
from .jsoninv import JsonInventoryError, decode_json, load_inventory_json
from .options import MAX_OUTPUT, SCRIPT_TIMEOUT
from .process import ProgramError, ProgramResult, run_program


def is_program(path: str) -> bool:
    """An executable file that starts like a program (``#!`` or an ELF header): Ansible runs it."""
    if not os.access(path, os.X_OK) or not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return head.startswith(b"#!") or head == b"\x7fELF"


def load_script(
    path: str,
    builder: InventoryBuilder,
    *,
    timeout: float = SCRIPT_TIMEOUT,
    max_output: int = MAX_OUTPUT,
) -> list[str]:
    """Run ``path --list`` (and ``--host`` per host when needed); add what it prints. Returns warnings."""
    text = _run(path, ["--list"], timeout, max_output)
    try:
        doc = decode_json(text)
    except JsonInventoryError as exc:
        raise InventoryError(f"inventory script --list printed {exc}; {_begins(text)}", path) from None
    try:
        fetch = (
            None if isinstance(doc, Mapping) and "_meta" in doc else _host_fetcher(path, timeout, max_output)
        )
        warnings = load_inventory_json(doc, builder, fetch)
    except JsonInventoryError as exc:
        raise InventoryError(
            f"inventory script --list printed JSON that is not an inventory: {exc}", path
        ) from None
    return [f"{path}: {w}" for w in warnings]


def _host_fetcher(path: str, timeout: float, max_output: int) -> Any:
    def fetch(name: str) -> Mapping[str, Any]:
        text = _run(path, ["--host", name], timeout, max_output)
        if not text.strip():
            return {}
        try:
            doc = decode_json(text)
        except JsonInventoryError as exc:
            raise InventoryError(
                f"inventory script --host {name} printed {exc}; {_begins(text)}", path
            ) from None
        if not isinstance(doc, Mapping):
            raise InventoryError(
                f"inventory script --host {name} printed JSON that is not an object of variables", path
            )
        return doc

    return fetch


def _run(path: str, args: list[str], timeout: float, max_output: int) -> str:
    what = " ".join(["inventory script", *args])
    try:
        result = run_program([path, *args], timeout=timeout, max_output=max_output)
    except ProgramError as exc:
        raise InventoryError(f"{what}: {exc}", path) from None
    if result.returncode != 0:
        raise InventoryError(f"{what} {_failure(result)}", path)
    try:
        text = result.stdout.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{what} printed text that is not UTF-8 (byte {exc.start})", path) from None
    if not text.strip() and args[0] == "--list":
        raise InventoryError(f"{what} printed nothing{_stderr_hint(result)}", path)
    return text


def _failure(result: ProgramResult) -> str:
    if result.returncode < 0:
        how = f"was killed by signal {-result.returncode}"
    else:
        how = f"failed with exit status {result.returncode}"
    return how + _stderr_hint(result)


def _stderr_hint(result: ProgramResult) -> str:
    last = last_line(result.stderr_text)
    return f": {last}" if last else " (nothing on standard error)"


def last_line(text: str) -> str:
    """The last non-blank line, trimmed to a readable length."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return _trim(lines[-1]) if lines else ""


def _begins(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"it begins {_trim(first)!r} ({human_bytes(len(text.encode()))})"


def _trim(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
