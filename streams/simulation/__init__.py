"""Simulated agents for the demo, the tests and the benchmarks: sine and digit fleets (``fleet.py``),
agents with rows of a real table (``tabular_fleet.py``) and ``metastream demo`` (``demo.py``)."""
