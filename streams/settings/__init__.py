"""Every ``METASTREAM_*`` setting: read once from the environment (``worker.py``), each value
checked at start (``checks.py``), listed by ``metastream settings`` and ``docs/settings.md``."""

from streams.settings.worker import ENV_PREFIX, Settings, settings_page

__all__ = ["ENV_PREFIX", "Settings", "settings_page"]
