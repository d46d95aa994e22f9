"""Investigation: when a host trips, run the troubleshooting steps over the same connection and say
what they show — socket states, listeners and their queues, the processes behind the ports, an
optional RST capture, context and logs — and the likely causes, each with its evidence and next step.

- ``ss``, ``lsof``, ``tcpdump``: parsers of the tools' text (pure).
- ``script``: the runbook as one framed remote script, and the parsing of its output.
- ``classify``: the cause classifier (pure).
- ``result``: the ``Investigation`` of a host and the fleet's ``Finding``s, as values (pure).
- ``analyse``: the runbook's output to the ``Investigation`` (pure).
- ``correlate``: what several hosts show together (pure).
- ``runner``: the ``Investigator`` the sweep calls (its flags and ``fleetrst investigate`` are in
  ``fleetrst.cli.investigate``, its report in ``fleetrst.render.investigation``, its JSON in
  ``fleetrst.render.schema``).

The runner (and the transport under it) is imported on first use of its names, not with this package:
the renderers and the history store read ``result`` without loading any I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .classify import CAUSES, Cause, Facts, classify
from .errors import InvestigateParseError
from .result import Finding, Investigation

if TYPE_CHECKING:
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
    "classify",
]

_RUNNER = ("InvestigateOptions", "RunbookInvestigator")


def __getattr__(name: str) -> Any:
    if name in _RUNNER:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
