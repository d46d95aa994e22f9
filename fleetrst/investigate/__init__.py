"""Investigation: when a host trips, run the troubleshooting steps over the same connection and say
what they show — socket states, listeners and their queues, the processes behind the ports, an
optional RST capture, context and logs — and the likely causes, each with its evidence and next step.

- ``ss``, ``lsof``, ``tcpdump``: parsers of the tools' text (pure).
- ``script``: the runbook as one framed remote script, and the parsing of its output.
- ``classify``: the cause classifier (pure): ``classify.classify`` (the name ``classify`` here is the
  module, as it is once the module is imported; it is not re-exported, so it never means two things).
- ``result``: the ``Investigation`` of a host and the fleet's ``Finding``s, as values (pure).
- ``analyse``: the runbook's output to the ``Investigation`` (pure).
- ``correlate``: what several hosts show together (pure).
- ``runner``: the ``Investigator`` the sweep calls (its flags and ``fleetrst investigate`` are in
  ``fleetrst.cli.investigate``, its report in ``fleetrst.render.investigation``, its JSON in
  ``fleetrst.render.schema``).

Every name here is imported on first use, not with this package: a sweep that investigates no host
(``--investigate never``, or ``auto`` with no host tripped) loads none of the parsers, the classifier
or the runner's runbook, and the renderers and the history store read ``result`` without loading
any I/O.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .classify import CAUSES, Cause, Facts
    from .errors import InvestigateParseError
    from .result import Finding, Investigation
    from .runner import InvestigateOptions, RunbookInvestigator

__all__ = [
    "CAUSES",
    "Cause",
    "Facts",
    "Finding",
    "InvestigateOptions",
    "InvestigateParseError",
    "Investigation",
    "RunbookInvestigator",
]

# Each name, and the module that defines it.
_WHERE = {
    "CAUSES": "classify",
    "Cause": "classify",
    "Facts": "classify",
    "InvestigateParseError": "errors",
    "Finding": "result",
    "Investigation": "result",
    "InvestigateOptions": "runner",
    "RunbookInvestigator": "runner",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # looked up once
    return value
