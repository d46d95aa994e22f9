"""A YAML loader for inventories and vars files: safe, fast (libyaml when present), strict.

It knows Ansible's ``!unsafe`` (kept as ``UnsafeText``, never templated) and ``!vault`` (kept as
``VaultValue``, never decrypted), records the line of every mapping key for error messages, and
rejects a key given twice in one mapping (Ansible warns and keeps the last one; we refuse, since the
first one's hosts or values would silently vanish). Keys brought in by ``<<`` merges may be overridden.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import InventoryError
from .values import UnsafeText, VaultValue

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlMap(dict[Any, Any]):
    """A mapping that remembers the (1-based) line of each key."""

    __slots__ = ("key_lines", "line")

    def __init__(self) -> None:
        super().__init__()
        self.key_lines: dict[Any, int] = {}
        self.line = 0


class _Loader(_BaseLoader):  # type: ignore[valid-type, misc]
    unsafe_depth = 0

    def construct_yaml_map(self, node: MappingNode) -> Any:
        data = YamlMap()
        data.line = node.start_mark.line + 1
        yield data
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "found an unhashable key", key_node.start_mark
                ) from None
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first given on line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = line
        data.update(self.construct_mapping(node, deep=True))
        data.key_lines = seen

    def construct_yaml_str(self, node: ScalarNode) -> str:
        value = str(self.construct_scalar(node))
        return UnsafeText(value) if self.unsafe_depth else value

    def construct_unsafe(self, node: Node) -> Any:
        self.unsafe_depth += 1
        try:
            return self._construct_as_untagged(node)
        finally:
            self.unsafe_depth -= 1

    def construct_vault(self, node: Node) -> VaultValue:
        value = self._construct_as_untagged(node)
        if not isinstance(value, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"the {node.tag!r} tag requires a string value", node.start_mark
            )
        return VaultValue(str(value))

    def _construct_as_untagged(self, node: Node) -> Any:
        copy: Node
        if isinstance(node, ScalarNode):
            tag = self.resolve(ScalarNode, node.value, (True, False))
            copy = ScalarNode(tag, node.value, node.start_mark, node.end_mark, node.style)
        elif isinstance(node, SequenceNode):
            copy = SequenceNode("tag:yaml.org,2002:seq", node.value, node.start_mark, node.end_mark)
        elif isinstance(node, MappingNode):
            copy = MappingNode("tag:yaml.org,2002:map", node.value, node.start_mark, node.end_mark)
        else:  # pragma: no cover - the three node kinds above are all YAML has
            raise yaml.constructor.ConstructorError(None, None, "unexpected node", node.start_mark)
        return self.construct_object(copy, deep=True)


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_yaml_map)
_Loader.add_constructor("tag:yaml.org,2002:str", _Loader.construct_yaml_str)
_Loader.add_constructor("!unsafe", _Loader.construct_unsafe)
_Loader.add_constructor("!vault", _Loader.construct_vault)
_Loader.add_constructor("!vault-encrypted", _Loader.construct_vault)


def load_yaml(text: str, path: str) -> Any:
    """Parse one YAML (or JSON) document; raise InventoryError naming ``path`` and the line."""
    try:
        data = yaml.load(text, Loader=_Loader)
        if "*" in text:  # an alias: each use becomes its own value, as Ansible's loader makes it
            data = _unshare(data, set())
        return data
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise InventoryError(f"invalid YAML: {problem}", path, line) from None
    except yaml.YAMLError as exc:
        raise InventoryError(f"invalid YAML: {exc}", path) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # e.g. a timestamp that is not a real date ("2024-02-30"), or absurd nesting
        raise InventoryError(f"invalid YAML value: {exc}", path) from None


def _unshare(value: Any, seen: set[int]) -> Any:
    """The same document where no list or mapping appears twice (a YAML alias is a copy)."""
    if not isinstance(value, dict | list):
        return value
    if id(value) in seen:
        value = copy.deepcopy(value)
    seen.add(id(value))
    if isinstance(value, dict):
        for key in value:
            value[key] = _unshare(value[key], seen)
    else:
        value[:] = [_unshare(item, seen) for item in value]
    return value


def read_text(path: str) -> str:
    """Read a source as UTF-8 text; a missing or unreadable file is an InventoryError."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InventoryError(f"cannot read inventory file: {exc.strerror or exc}", path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InventoryError("file is not valid UTF-8", path, line) from None
