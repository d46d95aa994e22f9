"""Plugin configs (a YAML source whose top key is ``plugin:``): resolved by ``ansible-inventory``.

``aws_ec2``, ``gcp_compute``, ``azure_rm``, ``netbox``, ``constructed``... are Python inside Ansible and
its collections. fleetrst never imports them: it runs ``ansible-inventory -i SRC --list --export`` in
a subprocess (from the current directory, with the user's environment, so that ansible.cfg, the
collections path and the cloud credentials are Ansible's own), reads the JSON it prints
(:mod:`.jsoninv`), and caches it (:mod:`.cache`). A source Ansible cannot parse is an error, not a
warning and an empty inventory (``ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED``). Vault values stay
ciphertext in what ansible-inventory prints, and fleetrst fails closed on those it needs; when a vars
file beside the sources is vault-encrypted (which ansible-inventory may decrypt with the user's
vault password), the result is not cached, so that no decrypted value is written to disk.

``constructed`` builds groups and variables from the hosts of the sources before it, so it is given
them too (``-i`` each earlier source, then the config), and its result replaces what those sources
gave. Any other plugin makes its own hosts and runs alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .cache import InventoryCache
from .errors import InventoryError
from .jsoninv import JsonInventoryError, check_document, decode_json
from .options import LoadOptions
from .process import ProgramError, run_program
from .scripts import last_line

CONSTRUCTED = frozenset({"constructed", "ansible.builtin.constructed"})
# Ansible's own switches that make an unparsable source fatal; the rest of its configuration is the user's.
_FAIL_CLOSED = {
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
    "ANSIBLE_NOCOLOR": "1",
}
_AUTO_FAILED = re.compile(r"Failed to parse inventory with 'auto' plugin: (.+)")
_MISSING_COLLECTION = re.compile(r"Error loading plugin '([\w.]+)': No module named 'ansible_collections\.")
_WARNING = re.compile(r"^\[WARNING\]: (.+)$")
_ERROR = re.compile(r"^(?:\[ERROR\]|ERROR!?):? ?(.+)$")


@dataclass(frozen=True)
class PluginResult:
    doc: Mapping[str, Any]
    warnings: list[str]
    age_s: float | None  # None: just ran; else how old the cached result is


def plugin_name(data: Mapping[Any, Any]) -> str:
    return str(data.get("plugin"))


def needs_earlier_sources(data: Mapping[Any, Any]) -> bool:
    return plugin_name(data) in CONSTRUCTED


def resolve_plugin(config: str, sources: Sequence[str], options: LoadOptions) -> PluginResult:
    """``ansible-inventory -i S1 ... -i config --list --export``, from the cache when fresh enough."""
    program = options.ansible_inventory or shutil.which("ansible-inventory")
    if not program:
        raise InventoryError(
            "this is an Ansible inventory plugin config; fleetrst reads it by running ansible-inventory, "
            "which is not installed: pip install ansible-core (and the collection of the plugin)",
            config,
        )
    cache = InventoryCache(options.cache_dir, options.cache_ttl)
    key = cache_key(program, sources, options.ansible_cfg)
    hit = cache.get(key)
    if hit is not None:
        entry, age = hit
        text, warnings = entry.get("stdout"), entry.get("warnings")
        if isinstance(text, str) and isinstance(warnings, list):
            return PluginResult(_document(text, config), [str(w) for w in warnings], age)
    argv = [program, *(arg for s in sources for arg in ("-i", s)), "--list", "--export"]
    try:
        result = run_program(
            argv,
            timeout=options.plugin_timeout,
            max_output=options.max_output,
            env={**os.environ, **_FAIL_CLOSED},
        )
    except ProgramError as exc:
        raise InventoryError(f"ansible-inventory: {exc}", config) from None
    stderr = result.stderr_text
    if result.returncode != 0:
        raise InventoryError(f"ansible-inventory cannot read it: {ansible_error(stderr)}", config)
    try:
        text = result.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise InventoryError("ansible-inventory printed text that is not UTF-8", config) from None
    doc = _document(text, config)
    warnings = [f"{config}: ansible-inventory: {w}" for w in ansible_warnings(stderr)]
    if not _vault_files(sources):  # what ansible-inventory decrypted is never written to disk
        cache.put(key, {"stdout": text, "warnings": warnings})
    return PluginResult(doc, warnings + cache.warnings, None)


def _document(text: str, config: str) -> Mapping[str, Any]:
    try:
        return check_document(decode_json(text))
    except JsonInventoryError as exc:
        raise InventoryError(
            f"ansible-inventory printed JSON that is not an inventory: {exc}", config
        ) from None


def ansible_error(stderr: str) -> str:
    """The one line that says why ansible-inventory failed, with what to install when that is why."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    reason = next((m.group(1) for line in lines if (m := _AUTO_FAILED.search(line))), None)
    if reason is None:
        reason = next((m.group(1) for line in lines if (m := _ERROR.match(line))), None)
    if reason is None:
        reason = last_line(stderr) or "it failed and said nothing on standard error"
    missing = next((m.group(1) for line in lines if (m := _MISSING_COLLECTION.search(line))), None)
    if missing and missing.count(".") >= 2:
        collection = ".".join(missing.split(".")[:2])
        reason += (
            f" (the collection {collection} is not installed: ansible-galaxy collection install {collection})"
        )
    return reason


def ansible_warnings(stderr: str) -> list[str]:
    """Ansible's ``[WARNING]:`` lines, one line each."""
    return [m.group(1).strip() for line in stderr.splitlines() if (m := _WARNING.match(line.strip()))]


def cache_key(program: str, sources: Sequence[str], ansible_cfg: str | None) -> str:
    """Everything that decides what ansible-inventory prints, hashed."""
    parts: dict[str, Any] = {
        "program": os.path.realpath(program),
        "cwd": os.getcwd(),
        "sources": [_fingerprint(s) for s in sources],
        "ansible_cfg": _file_fingerprint(ansible_cfg) if ansible_cfg else None,
        "env": sorted((k, v) for k, v in os.environ.items() if k.startswith("ANSIBLE_")),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _fingerprint(source: str) -> Any:
    path = os.path.abspath(os.path.expanduser(source))
    if not os.path.exists(path):
        return ["text", source]  # a host list
    base = path if os.path.isdir(path) else os.path.dirname(path)
    vars_dirs = [_tree(os.path.join(base, d)) for d in ("group_vars", "host_vars")]
    if os.path.isdir(path):
        return [path, _tree(path), vars_dirs]
    return [path, _file_fingerprint(path), vars_dirs]


def _vault_files(sources: Sequence[str]) -> bool:
    """Whether a vars file beside the sources is vault-encrypted (ansible-inventory may have decrypted
    it with the user's vault password; fleetrst itself refuses such files when it reads them)."""
    for source in sources:
        path = os.path.abspath(os.path.expanduser(source))
        if not os.path.exists(path):
            continue
        base = path if os.path.isdir(path) else os.path.dirname(path)
        for kind in ("group_vars", "host_vars"):
            for root, _, files in os.walk(os.path.join(base, kind)):
                for name in files:
                    try:
                        with open(os.path.join(root, name), "rb") as fh:
                            if fh.read(14) == b"$ANSIBLE_VAULT":
                                return True
                    except OSError:
                        continue
    return False


def _file_fingerprint(path: str) -> Any:
    try:
        with open(path, "rb") as fh:
            return [path, hashlib.sha256(fh.read()).hexdigest()]
    except OSError as exc:
        return [path, f"unreadable: {exc.errno}"]


def _tree(directory: str) -> list[Any]:
    found: list[Any] = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            found.append([os.path.relpath(full, directory), st.st_size, st.st_mtime_ns])
    return found
