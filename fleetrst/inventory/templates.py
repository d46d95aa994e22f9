"""Jinja2 templates in the variables fleetrst uses, rendered lazily in a sandbox.

Only values that are asked for are rendered, so a ``!vault`` value or an exotic filter in a variable
fleetrst never reads cannot break anything. A template may refer to other variables, which are
rendered in turn (to a bounded depth, and a loop is an error). A template that is one expression
(``"{{ 2200 + 22 }}"``) keeps its native type, as in Ansible 2.19; ``!unsafe`` text is never rendered.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from itertools import chain, islice
from typing import TYPE_CHECKING, Any

from .values import UnsafeText, VaultValue

if TYPE_CHECKING:
    import jinja2

# jinja2 (~15 ms to import) is imported when the first template is rendered: most inventories have none.

MAX_DEPTH = 20


class TemplateError(ValueError):
    """A value could not be rendered; the message names the variable."""


def _native_concat(values: Iterator[Any]) -> Any:
    head = list(islice(values, 2))
    if not head:
        return ""
    if len(head) == 1:
        return head[0]
    return "".join(str(v) for v in chain(head, values))


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("y", "yes", "on", "1", "true", "t")
    return value in (True, 1, 1.0)


def _ternary(value: Any, true_value: Any, false_value: Any, none_value: Any = None) -> Any:
    if value is None and none_value is not None:
        return none_value
    return true_value if value else false_value


def _regex_replace(value: Any, pattern: str, replacement: str = "", ignorecase: bool = False) -> str:
    return re.sub(pattern, replacement, str(value), flags=re.I if ignorecase else 0)


def _regex_search(value: Any, pattern: str, ignorecase: bool = False) -> str | None:
    m = re.search(pattern, str(value), flags=re.I if ignorecase else 0)
    return m.group(0) if m else None


def _mandatory(value: Any, msg: str | None = None) -> Any:
    import jinja2

    if isinstance(value, jinja2.Undefined):
        raise TemplateError(msg or "a mandatory variable is not defined")
    return value


@functools.cache
def _environment() -> jinja2.Environment:
    """The sandbox every template renders in, made when the first template is met."""
    import jinja2
    from jinja2 import nodes
    from jinja2.nativetypes import NativeCodeGenerator
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _CodeGenerator(NativeCodeGenerator):
        """Evaluates expressions at render time, so that ``{{ 2200 + 22 }}`` stays the integer 2222."""

        def _output_child_to_const(self, node: nodes.Expr, frame: Any, finalize: Any) -> Any:
            if isinstance(node, nodes.TemplateData):
                return super()._output_child_to_const(node, frame, finalize)
            raise nodes.Impossible()

    class _Environment(ImmutableSandboxedEnvironment):
        code_generator_class = _CodeGenerator
        concat = staticmethod(_native_concat)  # type: ignore[assignment]

    env = _Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters.update(
        {
            "bool": _to_bool,
            "ternary": _ternary,
            "regex_replace": _regex_replace,
            "regex_search": _regex_search,
            "mandatory": _mandatory,
        }
    )
    return env


_COMPILED: dict[str, jinja2.Template] = {}


def is_template(value: str) -> bool:
    return "{{" in value or "{%" in value or "{#" in value


class LazyVars(Mapping[str, Any]):
    """A host's variables as a template sees them: rendered on first use, then remembered."""

    def __init__(self, raw: Mapping[str, Any], magic: Mapping[str, Any]) -> None:
        self._raw = raw
        self._magic = magic
        self._done: dict[str, Any] = {}
        self._active: list[str] = []

    def __getitem__(self, key: str) -> Any:
        if key in self._magic:
            return self._magic[key]
        if key in self._done:
            return self._done[key]
        if key not in self._raw:
            raise KeyError(key)
        if key in self._active:
            chain_text = " -> ".join([*self._active, key])
            raise TemplateError(f"recursive template loop: {chain_text}")
        if len(self._active) >= MAX_DEPTH:
            raise TemplateError(f"templates nest deeper than {MAX_DEPTH} levels at {key}")
        self._active.append(key)
        try:
            value = self.render(self._raw[key], key)
        finally:
            self._active.pop()
        self._done[key] = value
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._magic or key in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter({**self._raw, **self._magic})

    def __len__(self) -> int:
        return len({**self._raw, **self._magic})

    def render(self, value: Any, name: str) -> Any:
        """Render ``value`` (recursively through lists and mappings) in this host's context."""
        if isinstance(value, VaultValue):
            raise TemplateError(f"{name} is vault-encrypted; fleetrst cannot decrypt vault values")
        if isinstance(value, UnsafeText):
            return str(value)
        if isinstance(value, str):
            return self._render_text(value, name) if is_template(value) else value
        if isinstance(value, Mapping):
            return {k: self.render(v, name) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.render(v, name) for v in value]
        return value

    def _render_text(self, text: str, name: str) -> Any:
        import jinja2

        try:
            template = _COMPILED.get(text)
            if template is None:
                template = _COMPILED[text] = _environment().from_string(text)
            context = template.new_context(self, shared=True)  # type: ignore[arg-type]
            result = _native_concat(template.root_render_func(context))
            if isinstance(result, jinja2.Undefined):
                str(result)  # raises the UndefinedError that names the variable
            return result
        except TemplateError:
            raise
        except jinja2.UndefinedError as exc:
            raise TemplateError(
                f"{name}: template {text!r} uses an undefined variable: {exc.message}"
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{name}: template {text!r} does not parse: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{name}: template {text!r} does not render: {exc.message or exc}") from None
        except Exception as exc:  # a filter or an operation failing on the values given
            raise TemplateError(f"{name}: template {text!r} does not render: {exc}") from None
