"""The history of audits: the SQLite store (``store``). It hands back ``model.SweepRow`` and
``model.HostRow``; what they show over time is worked out by the pure ``fleetrst.measure.trends``.
The store and the renderers are peers: neither imports the other.
"""
