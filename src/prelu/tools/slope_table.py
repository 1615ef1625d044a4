"""Slope tables: :func:`slopes` (from a model), :func:`slopes_from_state_dict`,
:func:`slopes_from_checkpoint` (behind ``prelu slopes CHECKPOINT``).

Owns reading learned slopes into a per-layer table like He et al.'s Table 1; imports
:mod:`prelu.nn.rectifiers` (which modules hold slopes, their labels) and :mod:`prelu._io.table`.

A whole model (``torch.save(model)``) knows which tensors are slopes. A plain state_dict does
not (it holds no module types), so slopes are guessed from it; see
:func:`slopes_from_state_dict` for the rule and its limits, or pass the model it belongs to.
"""

from __future__ import annotations

import math
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from prelu._io.table import Table
from prelu.nn.rectifiers import SLOPE_WEIGHT_TYPES, label, slope_weight
from prelu.tools.named_rows import NamedRows

_NAME_HINT = re.compile(r"prelu|relu|act", re.IGNORECASE)
_NORM_HINT = re.compile(r"norm|bn|ln|gamma|scale", re.IGNORECASE)
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "module", "ema")


@dataclass(frozen=True)
class SlopeRow:
    """The slopes of one layer."""

    name: str
    mode: str
    """``shared`` (one slope), ``channel`` (one per channel), ``element`` (ndim >= 2 weight)."""
    count: int
    mean: float
    min: float
    max: float
    kind: str
    """The rectifier table's label (``prelu.PReLU``, ``nn.PReLU``, ``prelu.FrozenPReLU``), or ``guessed``
    (from a plain state_dict)."""
    tied_to: str = ""
    """The first layer whose slope Parameter this one shares, if any."""


@dataclass(frozen=True)
class SlopeTable(NamedRows[SlopeRow]):
    """Per-layer slopes; ``print()`` it for a table, iterate for :class:`SlopeRow` s."""

    rows: tuple[SlopeRow, ...]
    source: str
    notes: tuple[str, ...] = ()

    def named_rows(self) -> tuple[SlopeRow, ...]:
        return self.rows

    def __str__(self) -> str:
        if not self.rows:
            lines = [f"no PReLU slopes found in {self.source}"]
        else:
            headers = ["name", "mode", "count", "mean", "min", "max", "type"]
            tied = any(row.tied_to for row in self.rows)
            rows = []
            for row in self.rows:
                cells = [
                    row.name,
                    row.mode,
                    str(row.count),
                    f"{row.mean:.3f}",
                    f"{row.min:.3f}",
                    f"{row.max:.3f}",
                    row.kind,
                ]
                rows.append([*cells, row.tied_to] if tied else cells)
            lines = [f"slopes in {self.source}", Table([*headers, "tied to"] if tied else headers, rows).to_text()]
        return "\n".join(lines + list(self.notes))


def _mode(weight: Tensor) -> str:
    if weight.numel() == 1:
        return "shared"
    return "channel" if weight.ndim == 1 else "element"


def _row(name: str, weight: Tensor, kind: str, tied_to: str = "") -> SlopeRow:
    values = weight.detach().to("cpu", torch.float64).reshape(-1)
    if values.numel() == 0:
        return SlopeRow(name, _mode(weight), 0, math.nan, math.nan, math.nan, kind, tied_to)
    return SlopeRow(
        name,
        _mode(weight),
        values.numel(),
        float(values.mean()),
        float(values.min()),
        float(values.max()),
        kind,
        tied_to,
    )


def slopes(model: nn.Module) -> SlopeTable:
    """The slopes of every prelu.PReLU, torch.nn.PReLU and FrozenPReLU in ``model``, one row per layer.

    >>> import torch, prelu
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), prelu.PReLU(4), torch.nn.Flatten(), torch.nn.PReLU())
    >>> with torch.no_grad():
    ...     _ = model[1].weight.copy_(torch.tensor([0.1, 0.2, 0.3, 0.6]))
    >>> print(prelu.slopes(model))
    slopes in model
    name  mode     count   mean    min    max  type
    ----  -------  -----  -----  -----  -----  -----------
    1     channel      4  0.300  0.100  0.600  prelu.PReLU
    3     shared       1  0.250  0.250  0.250  nn.PReLU
    """
    rows = []
    first_user: dict[int, str] = {}
    for name, module in model.named_modules():
        if not isinstance(module, SLOPE_WEIGHT_TYPES):
            continue
        weight = slope_weight(module)
        tied_to = first_user.setdefault(id(weight), name)
        rows.append(_row(name or "(model)", weight, label(module), "" if tied_to == name else tied_to))
    return SlopeTable(tuple(rows), "model")


def slopes_from_state_dict(state_dict: Mapping[str, Tensor], model: nn.Module | None = None) -> SlopeTable:
    """Slopes from a state_dict: exact with the ``model`` it belongs to, guessed without one.

    With ``model``: the ``<name>.weight`` entries of its PReLU modules (the model is not changed).

    Without: a plain state_dict has no module types, so an entry counts as a slope when its key
    ends in ``weight``, it is the only entry of its module (a PReLU has no bias or running
    statistics, unlike BatchNorm, LayerNorm, Linear), it is floating point with at most one dim,
    and either the module's name contains ``prelu``, ``relu`` or ``act``, or every value lies in
    (-1, 2) and the name does not look like a norm layer (``norm``, ``bn``, ``ln``, ``scale``).
    Limits: a bias-free norm layer (RMSNorm, ``LayerNorm(bias=False)``) under a neutral name passes
    for a PReLU, and a PReLU with a slope outside (-1, 2) under a neutral name is missed.

    >>> import torch, prelu
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3), prelu.PReLU(3, channel_dim=-1))
    >>> [row.name for row in prelu.slopes_from_state_dict(net.state_dict())]
    ['2']
    """
    if model is not None:
        rows = []
        for name, module in model.named_modules():
            if isinstance(module, SLOPE_WEIGHT_TYPES):
                key = f"{name}.weight" if name else "weight"
                if key not in state_dict:
                    raise ValueError(f"the state_dict has no {key!r} for the {type(module).__name__} {name!r} of model")
                rows.append(_row(name or "(model)", state_dict[key], label(module)))
        return SlopeTable(tuple(rows), "state_dict (slopes located with the model)")

    by_prefix: dict[str, list[str]] = {}
    for key in state_dict:
        prefix = key.rsplit(".", 1)[0] if "." in key else ""
        by_prefix.setdefault(prefix, []).append(key)
    rows = []
    for prefix, keys in by_prefix.items():
        if len(keys) != 1 or keys[0].rsplit(".", 1)[-1] != "weight":
            continue
        tensor = state_dict[keys[0]]
        if not isinstance(tensor, Tensor) or not tensor.is_floating_point() or tensor.ndim > 1 or tensor.numel() == 0:
            continue
        module_name = prefix.rsplit(".", 1)[-1]
        in_range = bool(((tensor > -1) & (tensor < 2)).all())
        if _NAME_HINT.search(module_name) or (in_range and not _NORM_HINT.search(module_name)):
            rows.append(_row(prefix or "(model)", tensor, "guessed"))
    note = (
        "guessed from a plain state_dict (no module types): sole 'weight' entries of a module, at most 1-D, named "
        "like prelu/relu/act or with every value in (-1, 2); a bias-free norm layer can pass for a PReLU. For exact "
        "results save the whole model (torch.save(model)) or pass model="
    )
    return SlopeTable(tuple(rows), "state_dict", (note,))


def _find_state(obj: object, depth: int = 0) -> nn.Module | Mapping[str, Tensor] | None:
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, Mapping):
        if obj and all(isinstance(key, str) and isinstance(value, Tensor) for key, value in obj.items()):
            return obj
        if depth < 2:
            for key in _CHECKPOINT_KEYS:
                if key in obj:
                    found = _find_state(obj[key], depth + 1)
                    if found is not None:
                        return found
    return None


def slopes_from_checkpoint(
    path: str | os.PathLike[str], *, model: nn.Module | None = None, trusted: bool = False
) -> SlopeTable:
    """Slopes from a file written by ``torch.save``: a whole model, a state_dict, or a training
    checkpoint holding one (under ``state_dict``, ``model_state_dict``, ``model``...).

    The file is read with ``torch.load(weights_only=True)``, which runs no code from it. A whole
    model needs ``trusted=True`` (``prelu slopes --trust``): unpickling it runs code from the file.

    Raises:
        ValueError: the file holds pickled objects and ``trusted`` is False, or no model or
            state_dict in it. OSError: it cannot be read.
    """
    path = os.fspath(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not trusted:
            raise ValueError(
                f"{path} holds pickled Python objects (e.g. a whole model saved with torch.save(model)), and "
                "loading it runs code from the file; if you trust it, pass trusted=True (prelu slopes --trust)"
            ) from error
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except (AttributeError, ModuleNotFoundError, pickle.UnpicklingError) as inner:
            raise ValueError(f"cannot unpickle {path}: {inner} (is the model's code importable?)") from inner
    found = _find_state(obj)
    if found is None:
        what = f"a dict with keys {sorted(map(str, obj))[:10]}" if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(f"{path} holds {what}: no model or state_dict found in it")
    table = slopes(found) if isinstance(found, nn.Module) else slopes_from_state_dict(found, model)
    return SlopeTable(table.rows, f"{path} ({table.source})", table.notes)
