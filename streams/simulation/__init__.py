"""Simulated agents for the demo, the tests and the benchmarks: sine and digit fleets (``fleet.py``),
agents with rows of a real table (``tabular_fleet.py``) and ``metastream demo`` (``demo.py``)."""

METRIC = {"sine": "mse", "digits": "accuracy"}  # the demo's tasks and the figure each reports (no imports: the CLI's help reads it)
