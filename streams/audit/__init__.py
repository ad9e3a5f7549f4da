"""Reading the log back: a version's trail (``trail.py``), re-running the update that made it
(``rebuild.py``), topic ranges as JSON lines (``replay.py``) and the models nearest to a task
(``similar.py``)."""
