"""A worker's learning: the update controller (``controller.py``) that turns triggers into update
jobs (``jobs.py``) run in the update process (``process.py``), the shadow candidates' work, what a
version records to be re-run (``recipe.py``) and the adoption of new model ids (``new_models.py``)."""
