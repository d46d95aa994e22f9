"""Renderers: values in, text out, no I/O. One module per kind of output.

- ``text``: ``clean`` (host text made safe to show), the fleet's order, totals and summary line.
- ``fleet``: the fleet table (any tabulate format) and CSV.
- ``schema``: the versioned JSON (``-o json``) and JSON lines (``-o jsonl``).
- ``monitoring``: Prometheus text exposition and the Nagios status line.
- ``investigation``: the per-host report of ``fleetrst investigate``.
- ``history``: the ``history`` and ``report`` commands' tables.
- ``html``: the self-contained HTML audit report.

The command layer picks a renderer and writes its text where it belongs (stdout, a file).
"""
