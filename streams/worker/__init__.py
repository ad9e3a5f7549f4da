"""The stream worker: its Faust app (``app.py``) and run loop (``run.py``), the ingest path, and the
rooms of its work: ``learning/`` (updates, gate, publish), ``state/`` (what it knows, in one place),
``rollout/``, ``diagnosis/`` and ``recovery/`` (state rebuilt from the log and snapshots)."""
