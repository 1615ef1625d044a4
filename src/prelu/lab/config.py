"""Errors, validators and typed settings shared by the lab's experiments.

Owns :class:`ConfigError` (a bad flag or configuration: the command line turns it into a
one-line message and exit code 2, and the experiments raise it before they write anything), the
small validators, :func:`merge` (defaults, then a resumed folder's settings, then the flags
given) and :func:`typed` (a merged settings mapping -> an experiment's settings dataclass, every
value's type checked). Imports nothing from :mod:`prelu`.

>>> choice("optimizer", "sgd", ("sgd", "adam"))
'sgd'
>>> choice("optimizer", "rmsprop", ("sgd", "adam"))
Traceback (most recent call last):
...
prelu.lab.config.ConfigError: unknown optimizer 'rmsprop'; valid choices: sgd, adam
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad flag or configuration, found before anything is written (the CLI exits with code 2)."""


def choice(what: str, value: str, valid: Iterable[str]) -> str:
    """``value`` if it is one of ``valid``, else a :class:`ConfigError` listing them."""
    valid = tuple(valid)
    if value not in valid:
        raise ConfigError(f"unknown {what} {value!r}; valid choices: {', '.join(valid)}")
    return value


def positive_int(what: str, value: object, *, maximum: int | None = None) -> int:
    """``value`` as an int >= 1 (and <= ``maximum``), else a :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be an integer >= 1, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{what} must be <= {maximum}, got {value!r}")
    return value


def positive_float(what: str, value: object, *, allow_zero: bool = False, maximum: float | None = None) -> float:
    """``value`` as a finite float > 0 (>= 0 with ``allow_zero``; <= ``maximum``), else a :class:`ConfigError`.

    >>> positive_float("--lr", 1e308, maximum=100.0)
    Traceback (most recent call last):
    ...
    prelu.lab.config.ConfigError: --lr must be <= 100.0, got 1e+308
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{what} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{what} must be <= {maximum}, got {value!r}")
    return float(value)


def merge(
    defaults: Mapping[str, object],
    options: Mapping[str, object],
    stored: Mapping[str, object] | None = None,
    run_set: Iterable[str] = (),
) -> dict[str, Any]:
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


def _fits(value: object, annotation: object) -> tuple[bool, object]:
    """Whether ``value`` fits the type ``annotation`` (int, float, str, bool, ``X | None``,
    ``tuple[str, ...]``), and the value converted (an int for a float field, a list for a tuple)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            ok, converted = _fits(value, option)
            if ok:
                return True, converted
        return False, value
    if annotation is type(None):
        return value is None, value
    if origin is tuple:
        item = typing.get_args(annotation)[0]
        if not isinstance(value, (list, tuple)):
            return False, value
        items = [_fits(element, item) for element in value]
        return all(ok for ok, _ in items), tuple(element for _, element in items)
    if annotation is bool:
        return isinstance(value, bool), value
    if isinstance(value, bool):  # a bool is an int to Python, never a number to a setting
        return False, value
    if annotation is int:
        return isinstance(value, int), value
    if annotation is float:
        return (True, float(value)) if isinstance(value, (int, float)) else (False, value)
    if annotation is str:
        return isinstance(value, str), value
    raise TypeError(f"settings field of unsupported type {annotation!r}")


def typed(cls: type[T], values: Mapping[str, object], *, source: str = "the settings") -> T:
    """The settings dataclass ``cls`` made from ``values``, each value checked against its field's
    type; a :class:`ConfigError` naming ``source`` (a file, or "the settings") and the field otherwise.

    >>> @dataclasses.dataclass(frozen=True)
    ... class Example:
    ...     epochs: int
    ...     names: tuple[str, ...]
    ...     limit: int | None = None
    >>> typed(Example, {"epochs": 3, "names": ["relu"]})
    Example(epochs=3, names=('relu',), limit=None)
    >>> typed(Example, {"epochs": "3", "names": []}, source="runs/x/config.json")
    Traceback (most recent call last):
    ...
    prelu.lab.config.ConfigError: runs/x/config.json: setting 'epochs' should be int, got '3'
    """
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(typing.cast(Any, cls))}
    arguments: dict[str, object] = {}
    for name, field in fields.items():
        if name not in values:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: setting {name!r} is missing")
            continue
        ok, converted = _fits(values[name], hints[name])
        if not ok:
            expected = getattr(hints[name], "__name__", None) or str(hints[name]).replace("typing.", "")
            raise ConfigError(f"{source}: setting {name!r} should be {expected}, got {values[name]!r}")
        arguments[name] = converted
    return cls(**arguments)


def as_dict(settings: object) -> dict[str, Any]:
    """A settings dataclass as a JSON-ready dict (tuples as lists)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in vars(settings).items()}
