"""A config's ``"mixture"`` (``learners/transfer/mixture.py``): ``true`` for the defaults or an
object overriding some of them, checked with errors that say what to write."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError

DEFAULTS: dict[str, Any] = {"max_components": 4, "spawn_ratio": 1.5, "merge_tolerance": 0.02, "min_tasks": 16, "route_candidates": 2}


def mixture_options(value: Any) -> dict[str, Any] | None:
    """A config's ``"mixture"``: ``true`` for the defaults or an object overriding some of them.

    >>> mixture_options(True)["max_components"]
    4
    >>> mixture_options({"colour": 1})
    Traceback (most recent call last):
    ...
    learners.errors.ConfigError: mixture: unknown option(s) ['colour']; known: max_components, spawn_ratio, merge_tolerance, min_tasks, route_candidates
    """
    if value is None or value is False:
        return None
    if value is True:
        return dict(DEFAULTS)
    if not isinstance(value, dict):
        raise ConfigError(f'mixture: true or an object such as {{"max_components": 4}}, not {value!r}')
    unknown = sorted(set(value) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"mixture: unknown option(s) {unknown}; known: {', '.join(DEFAULTS)}")
    opts = {**DEFAULTS, **value}
    if not isinstance(opts["max_components"], int) or not 1 <= opts["max_components"] <= 16:
        raise ConfigError(f"mixture: max_components is a whole number from 1 to 16, not {opts['max_components']!r}")
    if not isinstance(opts["spawn_ratio"], (int, float)) or not opts["spawn_ratio"] > 1:
        raise ConfigError(f"mixture: spawn_ratio must be above 1, not {opts['spawn_ratio']!r}")
    if not isinstance(opts["merge_tolerance"], (int, float)) or not 0 <= opts["merge_tolerance"] < 1:
        raise ConfigError(f"mixture: merge_tolerance is in [0, 1), not {opts['merge_tolerance']!r}")
    if not isinstance(opts["min_tasks"], int) or opts["min_tasks"] < 2:
        raise ConfigError(f"mixture: min_tasks is a whole number >= 2, not {opts['min_tasks']!r}")
    if not isinstance(opts["route_candidates"], int) or opts["route_candidates"] < 1:
        raise ConfigError(f"mixture: route_candidates is a whole number >= 1, not {opts['route_candidates']!r}")
    return opts
