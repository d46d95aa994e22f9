"""Investigation: when a host trips, run the troubleshooting steps over the same connection and say
what they show — socket states, listeners and their queues, the processes behind the ports, an
optional RST capture, context and logs — and the likely causes, each with its evidence and next step.

- ``ss``, ``lsof``, ``tcpdump``: parsers of the tools' text (pure).
- ``script``: the runbook as one framed remote script, and the parsing of its output.
- ``classify``: the cause classifier (pure).
- ``analyse``: the runbook's output to the JSON ``investigation`` (pure).
- ``correlate``: what several hosts show together (pure).
- ``runner``: the ``Investigator`` the sweep calls (its flags and ``fleetrst investigate`` are in
  ``fleetrst.cli.investigate``, its report in ``fleetrst.render.investigation``).
"""

from __future__ import annotations

from .classify import CAUSES, Cause, Facts, classify
from .errors import InvestigateParseError
from .runner import InvestigateOptions, RunbookInvestigator

__all__ = [
    "CAUSES",
    "Cause",
    "Facts",
    "InvestigateOptions",
    "InvestigateParseError",
    "RunbookInvestigator",
    "classify",
]
