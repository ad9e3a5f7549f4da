"""A worker's derived state brought back after a start or a rebalance: from the log (``rebuild.py``,
``log_replay.py``) and from snapshots (``snapshots.py``), so a restart replays only what is new."""
