"""Each setting's value checked when it is read, so a worker with a bad value stops at start with one
line that names the variable and what it accepts (``METASTREAM_GUARD=ture`` is not read as true,
``METASTREAM_DRIFT_DETECTOR=adwn`` does not fail at the first drift), and a misspelt variable is
named with the nearest real one instead of being ignored.

>>> parse_bool("METASTREAM_GUARD", "off")
False
>>> parse_bool("METASTREAM_GUARD", "ture")
Traceback (most recent call last):
...
learners.errors.ConfigError: METASTREAM_GUARD='ture': give 1, true, yes or on, or 0, false, no or off
>>> nearest("METASTREAM_GAURD", ["METASTREAM_GUARD", "METASTREAM_EWC"])
'METASTREAM_GUARD'
"""

from __future__ import annotations

import difflib
from enum import Enum
from typing import Any, Iterable, Mapping

from learners.errors import ConfigError

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
# Variables read outside the worker's settings: the data folder (learners), a password file (kafka),
# the fuzz tests' example count, an operator's own key (the CLI).
OTHER_VARIABLES = ("METASTREAM_DATA", "METASTREAM_KAFKA_SASL_PASSWORD_FILE", "METASTREAM_FUZZ_EXAMPLES",
                   "METASTREAM_OPERATOR_KEY")


class Bound(Enum):
    """What a numeric setting accepts besides a finite number of at least 0 (every number's floor)."""

    ANY = "of at least 0"
    FRACTION = "strictly between 0 and 1"
    UP_TO_ONE = "above 0 and at most 1"
    AT_LEAST_ONE = "a whole number of at least 1"
    PORT = "a port, 0 to 65535 (0 turns it off)"

    def holds(self, value: float) -> bool:
        return {Bound.ANY: value >= 0, Bound.FRACTION: 0 < value < 1, Bound.UP_TO_ONE: 0 < value <= 1,
                Bound.AT_LEAST_ONE: value >= 1, Bound.PORT: 0 <= value <= 65535}[self]


def parse_bool(variable: str, text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{variable}={text!r}: give {', '.join(TRUE_WORDS[:-1])} or {TRUE_WORDS[-1]}, "
                      f"or {', '.join(FALSE_WORDS[:-1])} or {FALSE_WORDS[-1]}")


def check_value(variable: str, value: Any, bound: Bound = Bound.ANY, choices: tuple[str, ...] = ()) -> None:
    """A :class:`ConfigError` naming ``variable`` when ``value`` is outside what its setting accepts."""
    if choices and value not in choices:
        raise ConfigError(f"{variable}={value!r}: choose one of {', '.join(choices)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{variable}={value!r}: give a finite number")
    if not bound.holds(value):
        article = "" if bound is Bound.AT_LEAST_ONE or bound is Bound.PORT else "a number "
        raise ConfigError(f"{variable}={value!r}: give {article}{bound.value}")


def nearest(variable: str, known: Iterable[str], prefix: str = "METASTREAM_") -> str | None:
    """The known variable whose name after the prefix is closest to ``variable``'s (``None``: none close)."""
    names = {k.removeprefix(prefix): k for k in known}
    close = difflib.get_close_matches(variable.removeprefix(prefix), list(names), n=1, cutoff=0.6)
    return names[close[0]] if close else None


def unknown_variables(environ: Mapping[str, str], known: Iterable[str], prefix: str = "METASTREAM_") -> list[str]:
    """One warning per ``METASTREAM_*`` variable that no setting reads, naming the nearest real one."""
    known = set(known) | set(OTHER_VARIABLES)
    out = []
    for variable in sorted(v for v in environ if v.startswith(prefix) and v not in known):
        guess = nearest(variable, known, prefix)
        out.append(f"{variable} is not a metastream setting" + (f": did you mean {guess}?" if guess else
                                                               " (metastream settings lists them all)"))
    return out
