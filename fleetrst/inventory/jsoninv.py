"""The inventory-script JSON protocol, read the way Ansible's ``script`` plugin reads it.

It is what an inventory script prints for ``--list``, and what ``ansible-inventory --list`` (and
``--list --export``) print, so one reader serves scripts, saved ``ansible-inventory`` output, standard
input and plugin configs resolved through ``ansible-inventory``::

    {"web": {"hosts": ["w1", "w2"], "vars": {...}, "children": ["canary"]},
     "db": ["d1"],                                   # a bare list: the group's hosts
     "_meta": {"hostvars": {"w1": {...}}}}

Values come back as they were: ``{"__ansible_unsafe": text}`` is untrusted text (never templated) and
``{"__ansible_vault": ciphertext}`` a vault value (never decrypted). As in Ansible, hosts are named
only by groups (``_meta.hostvars`` of a host no group lists is ignored), and a group body with none of
``hosts``/``vars``/``children`` is read as one host of the group's name with those variables.
Where Ansible raises an error, so do we, with one line that says what in the JSON was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from .data import BuildError, InventoryBuilder
from .values import UnsafeText, VaultValue

HostVarsFetcher = Callable[[str], Mapping[str, Any]]


class JsonInventoryError(ValueError):
    """What in the JSON was wrong (the caller names the source)."""


def _decode_object(pairs: dict[str, Any]) -> Any:
    if "__ansible_unsafe" in pairs:
        value = pairs["__ansible_unsafe"]
        if not isinstance(value, str):
            raise JsonInventoryError(f"__ansible_unsafe holds {_kind(value)}, not text")
        return UnsafeText(value)
    if "__ansible_vault" in pairs:
        value = pairs["__ansible_vault"]
        if not isinstance(value, str):
            raise JsonInventoryError(f"__ansible_vault holds {_kind(value)}, not text")
        return VaultValue(value)
    return pairs


def decode_json(text: str) -> Any:
    """Parse JSON, turning Ansible's unsafe and vault wrappers back into their values."""
    try:
        return json.loads(text, object_hook=_decode_object)
    except json.JSONDecodeError as exc:
        raise JsonInventoryError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise JsonInventoryError("invalid JSON: nested too deeply") from None


def decode_wrappers(value: Any) -> Any:
    """The same conversion for a document already parsed (by the YAML loader)."""
    if isinstance(value, Mapping):
        return _decode_object({k: decode_wrappers(v) for k, v in value.items()})
    if isinstance(value, list):
        return [decode_wrappers(v) for v in value]
    return value


def is_inventory_output(doc: Any) -> bool:
    """True for the JSON of an inventory script or ``ansible-inventory --list``: it has ``_meta``."""
    return isinstance(doc, Mapping) and isinstance(doc.get("_meta"), Mapping)


def check_document(doc: Any) -> Mapping[str, Any]:
    """Ansible's checks on the whole document (``detect_profile_name``)."""
    if not isinstance(doc, Mapping):
        raise JsonInventoryError(f"the JSON is {_kind(doc)}, not an object of groups")
    meta = doc.get("_meta")
    if meta is None and "_meta" not in doc:
        return doc
    if not isinstance(meta, Mapping):
        raise JsonInventoryError(f"'_meta' is {_kind(meta)}, not an object")
    profile = meta.get("profile")
    if profile is not None or "profile" in meta:
        if not isinstance(profile, str):
            raise JsonInventoryError(f"'_meta.profile' is {_kind(profile)}, not text")
        if not profile.startswith("inventory_"):
            raise JsonInventoryError(f"'_meta.profile' {profile!r} is not an inventory profile")
    return doc


def load_inventory_json(
    doc: Any, builder: InventoryBuilder, host_vars: HostVarsFetcher | None = None
) -> list[str]:
    """Add the groups, hosts and variables of one document to ``builder``; return Ansible's warnings.

    ``host_vars(name)`` is asked for each host's variables when the document has no
    ``_meta.hostvars`` (a script's ``--host NAME``); without it such hosts have no variables.
    """
    doc = check_document(doc)
    warnings: list[str] = []
    hosts: dict[str, None] = {}
    meta_vars: Mapping[str, Any] | None = None
    try:
        for group, body in doc.items():
            if group == "_meta":
                meta_vars = body.get("hostvars")
                if not isinstance(meta_vars, Mapping):
                    raise JsonInventoryError(f"'_meta.hostvars' is {_kind(meta_vars)}, not an object")
                continue
            _group(builder, group, body, hosts, warnings)
        for name in hosts:
            got = meta_vars.get(name, {}) if meta_vars is not None else _fetch(host_vars, name)
            if not isinstance(got, Mapping):
                raise JsonInventoryError(f"the variables of host {name!r} are {_kind(got)}, not an object")
            for key, value in got.items():
                builder.set_host_var(name, key, value)
    except BuildError as exc:
        raise JsonInventoryError(str(exc)) from None
    return warnings


def _fetch(host_vars: HostVarsFetcher | None, name: str) -> Mapping[str, Any]:
    return host_vars(name) if host_vars is not None else {}


def _group(
    builder: InventoryBuilder, name: str, body: Any, hosts: dict[str, None], warnings: list[str]
) -> None:
    group = builder.add_group(name)
    if not isinstance(body, Mapping):
        body = {"hosts": body}  # Ansible: a bare list is the group's hosts
    elif not any(k in body for k in ("hosts", "vars", "children")):
        warnings.append(
            f"group {group!r} has no hosts, vars or children: read as a host of that name with these "
            "variables, as Ansible does"
        )
        body = {"hosts": [group], "vars": body}
    if "hosts" in body:
        members = body["hosts"]
        if not isinstance(members, list):
            raise JsonInventoryError(f"'{group}.hosts' is {_kind(members)}, not a list of names")
        for host in members:
            if not isinstance(host, str):
                raise JsonInventoryError(f"'{group}.hosts' holds {_kind(host)}, not a host name")
            builder.add_host(host, group)
            hosts[host] = None
    if "vars" in body:
        variables = body["vars"]
        if not isinstance(variables, Mapping):
            raise JsonInventoryError(f"'{group}.vars' is {_kind(variables)}, not an object")
        for key, value in variables.items():
            builder.set_group_var(group, key, value)
    if "children" in body:
        children = body["children"]
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            raise JsonInventoryError(f"'{group}.children' is {_kind(children)}, not a list of group names")
        for child in children:
            builder.add_child(group, builder.add_group(child))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
