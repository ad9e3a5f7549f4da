"""Kafka plumbing every part uses: how clients connect (``connection.py``), how producers write
(``durability.py``), the one topic reader (``topics.py``) and the embedded broker (``broker.py``)."""
