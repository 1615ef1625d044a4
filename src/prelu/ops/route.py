"""The one decision per call: the fused eager fast path, or the aten path.

Owns :func:`plain_eager`, the C++ fast path :data:`fast_entry` (which :mod:`prelu.ops.functional`
and :class:`prelu.PReLU` try first), and the entry points :func:`prelu` / :func:`leaky_relu` that
:mod:`prelu.ops.functional` calls after its checks; imports :mod:`prelu.ops.backend`,
:mod:`prelu.ops.autograd`, :mod:`prelu.ops.aten_path`, :mod:`prelu.ops.layout` and
:mod:`prelu.ops.kernels.extension`.

A call takes the **fused path** only when both hold:

1. it is plain eager: no dynamo/``torch.compile``/``torch.export``, no ``__torch_dispatch__``
   mode (``make_fx``, fake tensors, non-strict export, FlopCounter...) or ``__torch_function__``
   mode (pre-dispatch tracing, ``with torch.device(...)``), no functorch transform
   (``vmap``, ``grad``, ``jvp``, ``jacrev``...), no ``jit.trace`` / TorchScript ONNX export, no
   forward-mode AD dual level, and ``input`` and ``weight`` are plain tensors (not subclasses);
2. :mod:`prelu.ops.backend` picks the fused kernels. On CPU (float32/float64, any size) PReLU is
   then one call of the C++ autograd op ``torch.ops.prelu_cpu.prelu`` (or ``prelu_``): forward,
   graph node and backward all in C++ (``kernels/csrc/prelu_autograd.cpp``). On CUDA (Triton),
   and for Leaky ReLU when ``fused`` is forced, it is a lean ``autograd.Function``
   (:mod:`prelu.ops.autograd`).

The common fused CPU call (one shared slope or one per channel, the default backend) does not
even reach those checks: :data:`fast_entry` (``prelu_cpu.try_prelu``,
``kernels/csrc/prelu_python.cpp``) checks the same conditions in C++ and calls the op, or
returns None and leaves the call to the Python path.

Everything else takes the **aten path** (:mod:`prelu.ops.aten_path`): torch's own C++ ops and
autograd, which every tracer and transform understands.

>>> import torch
>>> plain_eager(torch.ones(2), torch.ones(1))
True
>>> torch.func.vmap(lambda t: torch.tensor(plain_eager(t)))(torch.ones(3, 2)).tolist()
[False, False, False]
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd import forward_ad

from prelu.ops import aten_path, autograd, backend
from prelu.ops.kernels import extension
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


_cpu_ops: list[Callable[..., Tensor]] = []  # [prelu, prelu_]: the C++ autograd ops, once loaded


def _not_loaded(input: Tensor, weight: Tensor, channel_dim: int, inplace: bool) -> Tensor | None:
    return None


fast_entry: Callable[[Tensor, Tensor, int, bool], Tensor | None] = _not_loaded
"""The common call whole in C++, or None having done nothing: ``prelu_cpu.try_prelu``
(``kernels/csrc/prelu_python.cpp``) once the extension has loaded (the first fused call loads it),
until then a function that always says None. It checks in C++ what :func:`plain_eager`,
:func:`prelu.ops.layout.slope_view_shape` and :func:`prelu.ops.backend.requested_backend` would:
plain eager, CPU float32/float64 tensors of one dtype, no backend forced, one shared slope or one
per channel, and for in place a contiguous input that is neither a leaf nor a view of one when
autograd records it. The caller checks only what C++ cannot see, first:
``torch.compiler.is_dynamo_compiling()`` (dynamo must never reach a C call); then a None sends the
call down the Python path, which decides and raises for bad input.

>>> import torch
>>> from prelu.ops import functional, route
>>> _ = functional.prelu(torch.ones(2), torch.ones(1))  # the first fused call loads the extension
>>> route.fast_entry(torch.ones(2), torch.ones(1), 1, False), route.fast_entry(torch.ones(2), torch.ones(3), 1, False)
(tensor([1., 1.]), None)
"""


def _cpu_op(inplace: bool) -> Callable[..., Tensor]:
    """``torch.ops.prelu_cpu.prelu`` (or ``prelu_``) as the bare C++ callable behind the
    overload: the ``OpOverloadPacket`` call around it costs another ~1 us of Python per call."""
    if not _cpu_ops:
        global fast_entry
        ops = extension.load()
        _cpu_ops.extend((ops.prelu.default._op, ops.prelu_.default._op))
        fast_entry = extension.entry(backend.FORCED) or _not_loaded
    return _cpu_ops[inplace]


def prelu(input: Tensor, weight: Tensor, view_shape: tuple[int, ...], *, inplace: bool, eager: bool) -> Tensor:
    """PReLU through the fused path or the aten path; ``eager`` is :func:`plain_eager`'s answer."""
    if eager and backend.cpu_autograd_op(input, weight, view_shape):
        if weight.dtype is not input.dtype:  # float32 slopes, float64 input: compute in float64
            weight = weight.to(input.dtype)
        return _cpu_op(inplace)(input, weight, view_shape)
    if eager and backend.choose(input, view_shape) is not None:
        return autograd.prelu(input, weight, view_shape, inplace=inplace)
    if inplace and eager:
        autograd.check_inplace_slopes(weight)  # the same contract as the fused path, on real values
    return aten_path.prelu(input, weight, view_shape, inplace)


def leaky_relu(input: Tensor, negative_slope: float, *, inplace: bool, eager: bool) -> Tensor:
    """Leaky ReLU through the fused path or the aten path."""
    if eager and backend.leaky_relu_walk(input) is not None:
        return autograd.leaky_relu(input, negative_slope, inplace=inplace)
    return aten_path.leaky_relu(input, negative_slope, inplace)
