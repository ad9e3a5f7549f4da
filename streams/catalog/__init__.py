"""The models a worker may serve: presets (``presets.py``), a model id's config from a preset, a
folder or JSON (``model_configs.py``), and which unknown ids it adopts (``new_model_policy.py``)."""
