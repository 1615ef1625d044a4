"""Fused CPU kernels: PReLU forward and backward in one pass over memory, in C++ on torch's pool.

Owns the thin wrappers that hand the C++ kernels (``csrc/prelu_cpu.cpp``, built on first use by
:mod:`prelu.ops.kernels.extension`) a walk plan and a slope vector; imports torch,
:mod:`prelu.ops.kernels.extension` and :mod:`prelu.ops.layout`. The kernels run inside torch's
own intra-op thread pool (``at::parallel_for``, ``torch.set_num_threads`` applies) with
``at::vec::Vectorized`` loops, so no second thread runtime exists in the process.

Math, per element with slope ``a`` (``x == 0`` and NaN take the negative branch, as in
``torch.nn.functional.prelu``)::

    y      = x        if x > 0 else a * x
    dL/dx  = g        if x > 0 else a * g
    dL/da += 0        if x > 0 else g * x      (summed over every element sharing a)

The slope gradient is summed in float64 (from runs of 4 terms per lane added in the input dtype) from
blocks whose bounds depend only on the shape, and the
block partials are added in a fixed order, so it is bit-identical for any number of threads.

>>> import torch
>>> from prelu.ops.layout import plan_memory_walk
>>> x = torch.tensor([[-2.0] * 40, [3.0] * 40])
>>> w = torch.tensor([[0.5], [0.25]])
>>> walk = plan_memory_walk(x, (2, 1))
>>> forward(x, w, walk)[:, 0].tolist()
[-1.0, 3.0]
>>> grad_input, grad_weight = backward(torch.ones_like(x), x, w, walk)
>>> grad_weight.flatten().tolist()  # sum of g * x where x <= 0, per row
[-80.0, 0.0]
"""

from __future__ import annotations

import torch

from prelu.ops.kernels import extension
from prelu.ops.layout import MemoryWalk, fold_slope_gradient, slope_vector

SUPPORTED_DTYPES = (torch.float32, torch.float64)
_KIND = {"rows": 0, "period": 1}


def available() -> bool:
    """True when the C++ kernels are built and loaded (builds them on the first call)."""
    return extension.load() is not None


def unavailable_reason() -> str:
    """Why :func:`available` is False ('' otherwise)."""
    return extension.unavailable_reason()


def forward(
    input: torch.Tensor, weight_view: torch.Tensor, walk: MemoryWalk, *, out: torch.Tensor | None = None
) -> torch.Tensor:
    """PReLU forward along ``walk``; the output has ``input``'s strides. ``out=input`` runs in
    place (each element is read before it is written)."""
    if out is None:
        out = torch.empty_like(input)
    if input.numel() == 0:
        return out
    slopes = slope_vector(weight_view.detach(), input.shape, walk)
    extension.load().forward_out(input.detach(), slopes, out.detach(), _KIND[walk.kind], walk.length)
    return out


def backward(
    grad: torch.Tensor,
    saved: torch.Tensor,
    weight_view: torch.Tensor,
    walk: MemoryWalk,
    *,
    from_output: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients for input (``saved``'s strides) and slope (``weight_view``'s shape).

    ``saved`` is the input ``x``, or with ``from_output=True`` the output ``y`` of an in-place
    call. For slopes > 0, ``y > 0`` exactly where ``x > 0`` and ``x = y / a`` elsewhere, so each
    slope term is ``g * (y / a)``: scaled per element before the sum, it stays finite wherever
    ``g * x`` is. Where ``y`` overflowed (``-inf`` with a slope > 1), ``x`` is lost and this
    raises ValueError rather than return a different number. ``grad`` must be laid out as ``saved``.
    """
    grad_input = torch.empty_like(saved)
    if saved.numel() == 0:
        return grad_input, torch.zeros_like(weight_view)
    slopes = slope_vector(weight_view.detach(), saved.shape, walk)
    partial = extension.load().backward_out(
        grad.detach(), saved.detach(), slopes, grad_input, _KIND[walk.kind], walk.length, from_output
    )
    slope_grad = fold_slope_gradient(partial, saved.shape, tuple(weight_view.shape), walk)
    return grad_input, slope_grad.to(weight_view.dtype)


def supports(tensor: torch.Tensor) -> bool:
    """Device and dtype the fused kernels handle (layout is checked by the walk plan)."""
    return tensor.device.type == "cpu" and tensor.dtype in SUPPORTED_DTYPES
