"""``METASTREAM_NEW_MODELS``: which unknown model ids a worker adopts, and with what config.

>>> policy = NewModelPolicy.parse('[{"pattern": "reviewer-*", "model": {"preset": "tabular", "features": 3}}]')
>>> policy.config_for("reviewer-7")["backbone"]["inputs"], policy.config_for("coder-1")
(3, None)
>>> NewModelPolicy.parse("").config_for("reviewer-7") is None
True
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import Any

from learners.errors import ConfigError

EXAMPLE = '[{"pattern": "reviewer-*", "model": {"preset": "tabular", "features": 18}}]'
MAX_ID = 100  # longer model ids are never adopted


@dataclass(frozen=True)
class NewModelPolicy:
    rules: tuple[tuple[str, dict[str, Any]], ...] = ()  # (fnmatch pattern, template config), first match wins

    @classmethod
    def parse(cls, text: str) -> "NewModelPolicy":
        """The policy from its JSON; a :class:`ConfigError` says what is wrong. Empty: off."""
        if not text.strip():
            return cls()
        from streams.catalog.model_configs import parse_models

        try:
            rules = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"METASTREAM_NEW_MODELS is not JSON ({exc}); e.g. '{EXAMPLE}'") from None
        if not isinstance(rules, list) or not all(isinstance(r, dict) and isinstance(r.get("pattern"), str) and "model" in r
                                                  for r in rules):
            raise ConfigError(f"METASTREAM_NEW_MODELS is a list of {{\"pattern\", \"model\"}} objects, e.g. '{EXAMPLE}'")
        return cls(tuple((r["pattern"], parse_models(json.dumps({r["pattern"]: r["model"]}))[r["pattern"]]) for r in rules))

    def config_for(self, model_id: str) -> dict[str, Any] | None:
        """A copy of the first matching rule's config; ``None`` when none matches or the id is not
        a printable name of at most :data:`MAX_ID` characters."""
        if not model_id or len(model_id) > MAX_ID or not model_id.isprintable():
            return None
        for pattern, config in self.rules:
            if fnmatch.fnmatchcase(model_id, pattern):
                return json.loads(json.dumps(config))
        return None
