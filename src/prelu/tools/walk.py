"""Walk a model: which rectifiers and weight layers it has, what runs in its forward pass, in what
order, on what shapes, and which rectifiers it calls as functions.

Owns the discovery shared by :mod:`prelu.init` and :mod:`prelu.tools.convert`; imports
:mod:`prelu.ops.functional` and :mod:`prelu.nn.rectifiers` (which modules are rectifiers, and their
slopes). Two sources, each with its limits:

- :func:`record_forward`: one forward pass on an example input with hooks on every leaf module
  (exact shapes, the call order, every call of a module used at several places; sees only
  modules, not ``F.relu`` calls). Buffers (BatchNorm's running statistics) are restored after it,
  the example input is cloned first (an in-place first layer would overwrite it), and it runs
  under ``torch.no_grad()``.
- :func:`trace`: ``torch.fx`` symbolic tracing, with rectifier modules kept as leaves (sees
  functional calls and the data flow; fails on models with data-dependent control flow).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from prelu.nn import rectifiers
from prelu.ops import functional

WEIGHT_LAYERS: tuple[type[nn.Linear], type[nn.Conv1d], type[nn.Conv2d], type[nn.Conv3d]] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
)
"""The layers :func:`prelu.init_model_` initialises (ConvNd: not transposed)."""

# function -> (public name, position of its slope argument or None for slope 0, keyword of it)
FUNCTIONAL_RECTIFIERS: dict[Callable[..., Any], tuple[str, int | None, str | None]] = {
    F.relu: ("torch.nn.functional.relu", None, None),
    F.relu_: ("torch.nn.functional.relu_", None, None),
    torch.relu: ("torch.relu", None, None),
    torch.relu_: ("torch.relu_", None, None),
    F.leaky_relu: ("torch.nn.functional.leaky_relu", 1, "negative_slope"),
    F.leaky_relu_: ("torch.nn.functional.leaky_relu_", 1, "negative_slope"),
    F.prelu: ("torch.nn.functional.prelu", 1, "weight"),
    torch.prelu: ("torch.prelu", 1, "weight"),
    functional.prelu: ("prelu.prelu", 1, "weight"),
    functional.leaky_relu: ("prelu.leaky_relu", 1, "negative_slope"),
}
METHOD_RECTIFIERS: dict[str, tuple[str, int | None, str | None]] = {
    "relu": ("Tensor.relu", None, None),
    "relu_": ("Tensor.relu_", None, None),
    "prelu": ("Tensor.prelu", 1, "weight"),
}
_DEFAULT_FUNCTIONAL_SLOPE = {"negative_slope": 0.01}


def name_modules(model: nn.Module) -> dict[int, list[str]]:
    """id(module) -> every qualified name under which it is registered (a module can sit in
    several places), in ``named_modules`` order."""
    names: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        slot = names.setdefault(id(module), [])
        if name not in slot:
            slot.append(name)
    return names


# --- torch.fx -------------------------------------------------------------------------------------


class _Tracer(fx.Tracer):
    """Keeps rectifier modules as leaves (prelu's modules call checks that a Proxy fails) and
    records, for every node, the module whose forward created it."""

    def __init__(self) -> None:
        super().__init__(autowrap_functions=(functional.prelu, functional.leaky_relu))

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, rectifiers.CONVERTIBLE_TYPES) or super().is_leaf_module(m, module_qualified_name)


def trace(model: nn.Module) -> tuple[fx.Graph | None, str | None]:
    """(graph, None) when ``model`` traces with ``torch.fx``, else (None, a one-line reason)."""
    try:
        return _Tracer().trace(model), None
    except Exception as error:  # fx raises many types (TraceError, TypeError, AttributeError, ...)
        first_line = (str(error).strip().splitlines() or [""])[0]
        return None, f"{type(error).__name__}: {first_line}"[:300]


@dataclass(frozen=True)
class FunctionalRectifier:
    """A rectifier called as a function in a forward (``F.relu(x)``, ``x.relu()``): convert
    cannot replace it, so it is reported."""

    node: str
    """The ``torch.fx`` node name (``relu``, ``relu_1``, ``leaky_relu``...)."""
    function: str
    """Its public name: ``torch.nn.functional.relu``, ``torch.relu``, ``Tensor.relu``, ``prelu.prelu``..."""
    module: str
    """The qualified name of the module whose ``forward`` calls it (``""``: the model's own)."""
    slope: float | None
    """Its slope where known: 0 for relu, ``negative_slope`` for leaky_relu, the mean weight for prelu."""


def _node_module_path(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else ""


def _functional_spec(node: fx.Node) -> tuple[str, int | None, str | None] | None:
    if node.op == "call_function" and callable(node.target):
        return FUNCTIONAL_RECTIFIERS.get(node.target)
    if node.op == "call_method":
        return METHOD_RECTIFIERS.get(str(node.target))
    return None


def _slope_argument(node: fx.Node, model: nn.Module, position: int | None, keyword: str | None) -> float | None:
    if position is None:
        return 0.0
    if keyword in node.kwargs:
        value = node.kwargs[keyword]
    elif len(node.args) > position:
        value = node.args[position]
    else:
        value = _DEFAULT_FUNCTIONAL_SLOPE.get(keyword or "")
    if isinstance(value, fx.Node) and value.op == "get_attr":
        target = str(value.target)
        try:
            value = model.get_parameter(target)
        except AttributeError:
            try:
                value = model.get_buffer(target)
            except AttributeError:
                return None
    if isinstance(value, Tensor) and value.numel():
        return float(value.detach().double().mean())
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def functional_rectifiers(graph: fx.Graph, model: nn.Module) -> list[FunctionalRectifier]:
    """Every rectifier called as a function or method in a traced graph, in call order."""
    found = []
    for node in graph.nodes:
        spec = _functional_spec(node)
        if spec is not None:
            slope = _slope_argument(node, model, spec[1], spec[2])
            found.append(FunctionalRectifier(node.name, spec[0], _node_module_path(node), slope))
    return found


def node_rectifier_slope(node: fx.Node, model: nn.Module) -> tuple[bool, float | None]:
    """(is a rectifier, its mean slope or None if unknown) for a node of a traced graph."""
    if node.op == "call_module":
        module = model.get_submodule(str(node.target))
        if isinstance(module, rectifiers.CONVERTIBLE_TYPES):
            return True, float(rectifiers.slopes(module).mean())
        return False, None
    spec = _functional_spec(node)
    if spec is None:
        return False, None
    return True, _slope_argument(node, model, spec[1], spec[2])


# --- one recorded forward pass --------------------------------------------------------------------


@dataclass
class Call:
    """One call of a leaf module during :func:`record_forward`."""

    index: int
    """Position in the call order (0 = first module called)."""
    module: nn.Module
    name: str
    """The module's first qualified name."""
    input_shape: tuple[int, ...] | None
    """Shape of the first tensor argument (None if it got none)."""
    dtype: torch.dtype | None
    device: torch.device | None
    producer: int | None
    """Index of the call whose output is this call's input; else of the last call that had
    finished (the input came from a function, e.g. a residual ``+``); None for the first."""


def _first_tensor(value: object) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (list, tuple)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    if isinstance(value, dict):
        return _first_tensor(list(value.values()))
    return None


def _clone_input(value: object) -> object:
    if isinstance(value, Tensor):
        return value.clone()
    if isinstance(value, tuple):
        return tuple(_clone_input(item) for item in value)
    if isinstance(value, list):
        return [_clone_input(item) for item in value]
    if isinstance(value, dict):
        return {key: _clone_input(item) for key, item in value.items()}
    return value


def run_example(model: nn.Module, example_input: object) -> object:
    """``model(example_input)``: a tensor is one argument, a tuple or list are positional
    arguments, a dict keyword arguments."""
    if isinstance(example_input, (tuple, list)):
        return model(*example_input)
    if isinstance(example_input, dict):
        return model(**example_input)
    return model(example_input)


def record_forward(model: nn.Module, example_input: object) -> list[Call]:
    """Run ``model`` once on a clone of ``example_input`` and record every leaf-module call.

    The model's buffers are restored afterwards; parameters are not touched.

    Raises:
        ValueError: the forward pass failed (the message has the model's error).
    """
    names = name_modules(model)
    calls: list[Call] = []
    produced: dict[int, int] = {}
    alive: list[Tensor] = []  # keeps outputs alive so that their ids are not reused during the pass
    finished: list[int] = []
    handles = []

    def before(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        tensor = _first_tensor(args) if args else _first_tensor(kwargs)
        producer = produced.get(id(tensor)) if tensor is not None else None
        if producer is None and finished:
            producer = finished[-1]
        calls.append(
            Call(
                index=len(calls),
                module=module,
                name=names[id(module)][0],
                input_shape=tuple(tensor.shape) if tensor is not None else None,
                dtype=tensor.dtype if tensor is not None else None,
                device=tensor.device if tensor is not None else None,
                producer=producer,
            )
        )
        pending.append(len(calls) - 1)

    def after(module: nn.Module, args: tuple[Any, ...], output: object) -> None:
        index = pending.pop()
        finished.append(index)
        tensor = _first_tensor(output)
        if tensor is not None:
            produced[id(tensor)] = index
            alive.append(tensor)

    pending: list[int] = []
    for module in model.modules():
        if next(module.children(), None) is None or isinstance(module, nn.MultiheadAttention):
            handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
            handles.append(module.register_forward_hook(after))
    saved = [(buffer, buffer.detach().clone()) for buffer in model.buffers()]
    try:
        with torch.no_grad():
            run_example(model, _clone_input(example_input))
    except Exception as error:
        raise ValueError(
            f"the forward pass on example_input failed ({type(error).__name__}: {error}); "
            f"pass an example_input that model(example_input) accepts"
        ) from error
    finally:
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
    return calls
