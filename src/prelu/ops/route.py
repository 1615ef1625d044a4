"""The one decision per call: the fused eager fast path, or the aten path.

Owns :func:`plain_eager` and the entry points :func:`prelu` / :func:`leaky_relu` that
:mod:`prelu.ops.functional` calls after its checks; imports :mod:`prelu.ops.backend`,
:mod:`prelu.ops.autograd`, :mod:`prelu.ops.aten_path` and :mod:`prelu.ops.layout`.

A call takes the **fused path** (the C++ or Triton kernels inside a lean ``autograd.Function``, see
:mod:`prelu.ops.autograd`) only when both hold:

1. it is plain eager: no dynamo/``torch.compile``/``torch.export``, no ``__torch_dispatch__``
   mode (``make_fx``, fake tensors, non-strict export, FlopCounter...) or ``__torch_function__``
   mode (pre-dispatch tracing, ``with torch.device(...)``), no functorch transform
   (``vmap``, ``grad``, ``jvp``, ``jacrev``...), no ``jit.trace`` / TorchScript ONNX export, no
   forward-mode AD dual level, and ``input`` and ``weight`` are plain tensors (not subclasses);
2. :func:`prelu.ops.backend.choose` picks the fused kernels (under ``auto``: a float32/float64
   CPU tensor of at least ``FUSED_MIN_NUMEL`` elements whose memory is one flat walk).

Everything else takes the **aten path** (:mod:`prelu.ops.aten_path`): torch's own C++ ops and
autograd, which every tracer and transform understands and which costs least on small tensors.

>>> import torch
>>> plain_eager(torch.ones(2), torch.ones(1))
True
>>> torch.func.vmap(lambda t: torch.tensor(plain_eager(t)))(torch.ones(3, 2)).tolist()
[False, False, False]
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor
from torch.autograd import forward_ad

from prelu.ops import aten_path, autograd, backend
from prelu.ops.layout import slope_view_shape

_PLAIN_TYPES = (Tensor, torch.nn.Parameter)


def plain_eager(input: Tensor, weight: Tensor | None = None) -> bool:
    """True when nothing traces, transforms or overrides this call (see module doc)."""
    return (
        not torch.compiler.is_compiling()
        and type(input) is Tensor
        and (weight is None or type(weight) in _PLAIN_TYPES)
        and torch._C._len_torch_dispatch_stack() == 0
        and not torch._C._is_torch_function_mode_enabled()  # pre-dispatch tracing, torch.device(...)
        and not torch._C._are_functorch_transforms_active()
        and torch._C._get_tracing_state() is None
        and forward_ad._current_level < 0  # a dual level is open: any tensor may carry a tangent
    )


_cached_view_shape = functools.lru_cache(maxsize=1024)(slope_view_shape)


def view_shape(input: Tensor, weight: Tensor, channel_dim: int, eager: bool) -> tuple[int, ...]:
    """The canonical slope view (:func:`prelu.ops.layout.slope_view_shape`), cached in plain eager
    (under tracers shapes may be symbolic and unhashable)."""
    if eager:
        return _cached_view_shape(input.shape, weight.shape, channel_dim)
    return slope_view_shape(input.shape, weight.shape, channel_dim)


def prelu(input: Tensor, weight: Tensor, view_shape: tuple[int, ...], *, inplace: bool, eager: bool) -> Tensor:
    """PReLU through the fused path or the aten path; ``eager`` is :func:`plain_eager`'s answer."""
    if eager and backend.choose(input, view_shape) is not None:
        return autograd.prelu(input, weight, view_shape, inplace=inplace)
    if inplace and eager:
        autograd.check_inplace_slopes(weight)  # the same contract as the fused path, on real values
    return aten_path.prelu(input, weight, view_shape, inplace)


def leaky_relu(input: Tensor, negative_slope: float, *, inplace: bool, eager: bool) -> Tensor:
    """Leaky ReLU through the fused path or the aten path."""
    if eager and backend.choose(input, (1,) * input.ndim) is not None:
        return autograd.leaky_relu(input, negative_slope, inplace=inplace)
    return aten_path.leaky_relu(input, negative_slope, inplace)
