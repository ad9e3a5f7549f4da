"""What client and worker share: the records on the wire (``wire.py``), aliases and rollout state
rebuilt from the decision events (``aliases.py``), an agent's cohort (``cohorts.py``) and the
signatures of versions (``signing.py``)."""
