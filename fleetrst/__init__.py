"""fleetrst: which hosts in a fleet are sending or receiving TCP resets, how many per second, and why."""

__version__ = "0.1.0"
