"""Measuring, pure: the probe's remote command and the parsing of its framed output (``probe``), the
kernel's counters and their rates (``counters``), thresholds and the verdict (``rules``), and what the
recorded audits show over time (``trends``). Text and numbers in, values out: no I/O, no clock.
"""
