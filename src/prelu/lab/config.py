"""Errors and small validators shared by the lab's experiments (:mod:`prelu.lab.compare`, :mod:`prelu.lab.depth`).

Owns :class:`ConfigError`, the error for a bad flag or configuration: the command line turns it
into a one-line message and exit code 2, and the experiments raise it before they write anything.
Imports nothing from :mod:`prelu`.

>>> choice("optimizer", "sgd", ("sgd", "adam"))
'sgd'
>>> choice("optimizer", "rmsprop", ("sgd", "adam"))
Traceback (most recent call last):
...
prelu.lab.config.ConfigError: unknown optimizer 'rmsprop'; valid choices: sgd, adam
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


class ConfigError(ValueError):
    """A bad flag or configuration, found before anything is written (the CLI exits with code 2)."""


def choice(what: str, value: str, valid: Iterable[str]) -> str:
    """``value`` if it is one of ``valid``, else a :class:`ConfigError` listing them."""
    valid = tuple(valid)
    if value not in valid:
        raise ConfigError(f"unknown {what} {value!r}; valid choices: {', '.join(valid)}")
    return value


def positive_int(what: str, value: object) -> int:
    """``value`` as an int >= 1, else a :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be an integer >= 1, got {value!r}")
    return value


def positive_float(what: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (>= 0 with ``allow_zero``), else a :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{what} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def merge(
    defaults: Mapping[str, object],
    options: Mapping[str, object],
    stored: Mapping[str, object] | None = None,
    run_set: Iterable[str] = (),
) -> dict:
    """Settings from ``defaults``, then a resumed folder's ``stored`` config, then the ``options``
    given (None = not given). On resume, a given option that changes a stored setting is a
    :class:`ConfigError`, except the ``run_set`` keys (which runs to do: they may grow).

    >>> merge({"epochs": 5, "seeds": 3}, {"seeds": 4}, stored={"epochs": 7, "seeds": 3}, run_set=["seeds"])
    {'epochs': 7, 'seeds': 4}
    >>> merge({"epochs": 5}, {"epochs": 6}, stored={"epochs": 7})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    prelu.lab.config.ConfigError: --resume: the folder was made with other settings (epochs: 7 -> 6); ...
    """
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(defaults)}")
    given = {key: value for key, value in options.items() if value is not None}
    config = dict(defaults)
    if stored is not None:
        config.update({key: stored[key] for key in defaults if key in stored})
        skip = set(run_set)
        changed = [
            f"{key}: {stored.get(key)!r} -> {value!r}"
            for key, value in given.items()
            if key not in skip and key in stored and _normal(stored[key]) != _normal(value)
        ]
        if changed:
            raise ConfigError(
                f"--resume: the folder was made with other settings ({'; '.join(changed)}); give the same flags, "
                "or --force to start over"
            )
    config.update(given)
    return config


def _normal(value: object) -> object:
    """Tuples and lists compare alike (JSON has only lists)."""
    return list(value) if isinstance(value, tuple) else value
