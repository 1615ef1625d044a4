"""The eager fast path in Python: the fused kernels inside lean ``autograd.Function`` s.

Owns the per-op implementations (``*_impl``: fused kernels, native fallback) and the
``autograd.Function`` s that run them in plain eager; imports :mod:`prelu.ops.backend` and
:mod:`prelu.ops.kernels`. :mod:`prelu.ops.route` decides when a call comes here: plain eager, the
fused kernels take the input, and it is not a CPU PReLU call (those run the C++ autograd op
``torch.ops.prelu_cpu.prelu``, which does all of this in C++). So this serves the Triton kernels
(CUDA tensors, or CPU tensors with ``TRITON_INTERPRET=1``) and Leaky ReLU when ``fused`` is
forced; every other call runs torch's own ops (:mod:`prelu.ops.aten_path`).

The Functions use the classic ``forward(ctx, ...)`` form: with a separate ``setup_context``,
``Function.apply`` binds the arguments with ``inspect.signature`` on every call (~20 us).

Contract: ``weight`` is already in the canonical form of :mod:`prelu.ops.layout` (``input.ndim``
dims, each 1 or equal to the input's); :mod:`prelu.ops.functional` puts it there.

Backward runs the fused backward, except when it must be differentiable or runs under a
transform or tracer (``create_graph=True``, ``is_grads_batched=True``, compiled autograd): then
it is built from differentiable torch ops, so second derivatives and batched gradients are
right. In place, the Function marks the input dirty and saves only the output: backward
recovers x = y / a where y <= 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from prelu.ops import backend, dtypes
from prelu.ops.kernels import native

_NO_DOUBLE_BACKWARD = (
    "double backward through an in-place {name} is not supported: its input was overwritten, and "
    "the second derivative would need it; call it with inplace=False"
)


def _check_canonical(input: Tensor, weight: Tensor) -> None:
    if weight.ndim != input.ndim or any(w not in (1, i) for w, i in zip(weight.shape, input.shape, strict=True)):
        raise ValueError(
            f"torch.ops.prelu.prelu takes a weight with one dim per input dim, each 1 or equal to the "
            f"input's; got weight {tuple(weight.shape)} for input {tuple(input.shape)} (prelu.prelu "
            f"does this reshaping for you)"
        )


def inplace_slope_message(layer: str, smallest: str, non_finite: int) -> str:
    """The refusal for an in-place call whose slopes are not all finite and > 0."""
    return (
        f"{layer} with inplace=True needs every slope finite and > 0 (backward recovers the input "
        f"as output / slope), but its smallest slope is {smallest}"
        + (f" and {non_finite} slope(s) are not finite" if non_finite else "")
        + "; keep the slopes positive with prelu.PReLU(..., bounds=(low, high)), low > 0, projected after "
        "every optimizer step by prelu.bind_bounds(optimizer, model), or use inplace=False"
    )


def check_inplace_slopes(slopes: Tensor, layer: str = "prelu") -> None:
    """ValueError unless every slope is finite and > 0 (runs on real values, before any write)."""
    if not bool((torch.isfinite(slopes) & (slopes > 0)).all()):
        finite = slopes[torch.isfinite(slopes)]
        smallest = f"{finite.min().item():.6g}" if finite.numel() else "none finite"
        raise ValueError(inplace_slope_message(layer, smallest, slopes.numel() - finite.numel()))


def _shared_slope(input: Tensor, negative_slope: float) -> Tensor:
    """The fixed slope as a tensor of the compute dtype (:mod:`prelu.ops.dtypes`), for the fused
    kernels. Built in the input's dtype first on every path: that refuses a slope the dtype cannot
    hold, as F.leaky_relu does. The native path multiplies by the Python float, as F.leaky_relu
    does (in float32 for half inputs), so half-precision results match it bit for bit."""
    slope = torch.full((1,) * input.ndim, negative_slope, dtype=input.dtype, device=input.device)
    compute = dtypes.compute_dtype(input.dtype, input.dtype)
    return slope if compute == input.dtype else torch.full_like(slope, negative_slope, dtype=compute)


# Implementations: one per op, run by the Functions below.


def prelu_impl(input: Tensor, weight: Tensor) -> Tensor:
    """PReLU forward; see :func:`prelu.prelu` for the public entry point."""
    _check_canonical(input, weight)
    walk = backend.choose(input, tuple(weight.shape))
    if walk is None:
        return native.forward(input, weight) if input.numel() else torch.empty_like(input)
    return backend.fused_kernels.forward(input, weight, walk)


def prelu_backward_impl(
    grad: Tensor, saved: Tensor, weight: Tensor, from_output: bool = False
) -> tuple[Tensor, Tensor]:
    """Gradients of PReLU for input and weight, in one pass over memory when fused.

    ``saved`` is the input, or with ``from_output=True`` the output of an in-place call.
    """
    if saved.numel() == 0:
        return torch.empty_like(saved), torch.zeros_like(weight)
    walk = backend.choose(saved, tuple(weight.shape))
    laid_out = None if walk is None else backend.gradient_in_layout(grad, saved, walk)
    if laid_out is None or walk is None:
        grad_input, grad_weight = native.backward(grad, saved, weight, from_output=from_output)
    else:
        grad_input, grad_weight = backend.fused_kernels.backward(laid_out, saved, weight, walk, from_output=from_output)
    # The slope gradient is returned laid out as the weight itself, whichever path summed it.
    return grad_input, torch.empty_like(weight).copy_(grad_weight)


def prelu_inplace_impl(input: Tensor, weight: Tensor) -> None:
    """PReLU written over ``input``; refuses slopes that are not finite and > 0 before writing."""
    _check_canonical(input, weight)
    check_inplace_slopes(weight)
    walk = backend.choose(input, tuple(weight.shape))
    if walk is None:
        if input.numel():
            native.forward_(input, weight)
    else:
        backend.fused_kernels.forward(input, weight, walk, out=input)


def leaky_relu_impl(input: Tensor, negative_slope: float) -> Tensor:
    """Leaky ReLU forward; see :func:`prelu.leaky_relu`."""
    slope = _shared_slope(input, negative_slope)
    walk = backend.choose(input, (1,) * input.ndim)
    if walk is None:
        return native.leaky_relu(input, negative_slope) if input.numel() else torch.empty_like(input)
    return backend.fused_kernels.forward(input, slope, walk)


def leaky_relu_backward_impl(grad: Tensor, input: Tensor, negative_slope: float) -> Tensor:
    """Gradient of Leaky ReLU for its input (or, for a slope > 0, for its output: same signs)."""
    if input.numel() == 0:
        return torch.empty_like(input)
    slope = _shared_slope(input, negative_slope)
    walk = backend.choose(input, (1,) * input.ndim)
    laid_out = None if walk is None else backend.gradient_in_layout(grad, input, walk)
    if laid_out is None or walk is None:
        return native.leaky_relu_backward(grad, input, negative_slope)
    return backend.fused_kernels.backward(laid_out, input, slope, walk)[0]


def leaky_relu_inplace_impl(input: Tensor, negative_slope: float) -> None:
    """Leaky ReLU written over ``input``."""
    slope = _shared_slope(input, negative_slope)
    walk = backend.choose(input, (1,) * input.ndim)
    if walk is None:
        if input.numel():
            native.leaky_relu_(input, negative_slope)
    else:
        backend.fused_kernels.forward(input, slope, walk, out=input)


# Autograd formulas of the eager Functions.

PReLUBackward = Callable[[Tensor, Tensor, Tensor, bool], tuple[Tensor, Tensor]]


def _differentiable_backward_needed(grad: Tensor) -> bool:
    """True when backward must be built from differentiable torch ops rather than the kernels:
    ``create_graph=True`` (a double backward will follow), a batched gradient
    (``is_grads_batched=True`` runs backward under vmap), or a traced backward (compiled
    autograd, a dispatch mode, a tensor subclass)."""
    return (
        torch.is_grad_enabled()
        or torch.compiler.is_compiling()  # first: dynamo cannot trace the checks below
        or type(grad) is not Tensor
        or torch._C._functorch.is_legacy_batchedtensor(grad)  # is_grads_batched: a batch of gradients
        or torch._C._are_functorch_transforms_active()
        or torch._C._len_torch_dispatch_stack() > 0
    )


def _prelu_gradients(
    ctx: Any, grad: Tensor, backward: PReLUBackward, input: Tensor, weight: Tensor
) -> tuple[Tensor | None, Tensor | None]:
    if _differentiable_backward_needed(grad):
        grad_input, grad_weight = native.differentiable_backward(grad, input, weight)
    else:
        grad_input, grad_weight = backward(grad, input, weight, False)
    return (
        grad_input if ctx.needs_input_grad[0] else None,
        grad_weight if ctx.needs_input_grad[1] else None,
    )


def _leaky_relu_gradient(ctx: Any, grad: Tensor, backward: Callable[[Tensor, Tensor, float], Tensor]) -> Tensor:
    (input,) = ctx.saved_tensors
    if _differentiable_backward_needed(grad):
        return torch.where(input > 0, grad, grad * ctx.negative_slope)
    return backward(grad, input, ctx.negative_slope)


# The classic forward(ctx, ...) form: with a separate setup_context, Function.apply binds the
# arguments with inspect.signature on every call (~20 us, most of the remaining overhead).


class _EagerPReLU(torch.autograd.Function):
    """The plain-eager route to :func:`prelu_impl` (same formulas, no dispatcher round trip).

    Takes the weight as the caller holds it and views it in the canonical shape inside, so no
    autograd view node is built per call; backward reshapes the slope gradient back.
    """

    @staticmethod
    def forward(ctx: Any, input: Tensor, weight: Tensor, view_shape: tuple[int, ...]) -> Tensor:
        # Save the weight itself: a view taken here (autograd off) would not link a double
        # backward to it; backward takes the view again, tracked when create_graph=True.
        ctx.save_for_backward(input, weight)
        ctx.view_shape = view_shape
        return prelu_impl(input, weight.view(view_shape))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        input, weight = ctx.saved_tensors
        grad_input, grad_weight = _prelu_gradients(ctx, grad, prelu_backward_impl, input, weight.view(ctx.view_shape))
        return grad_input, None if grad_weight is None else grad_weight.reshape(weight.shape), None


class _EagerLeakyReLU(torch.autograd.Function):
    """The plain-eager route to :func:`leaky_relu_impl`."""

    @staticmethod
    def forward(ctx: Any, input: Tensor, negative_slope: float) -> Tensor:
        ctx.save_for_backward(input)
        ctx.negative_slope = negative_slope
        return leaky_relu_impl(input, negative_slope)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return _leaky_relu_gradient(ctx, grad, leaky_relu_backward_impl), None


class _PReLUInplace(torch.autograd.Function):
    """In-place PReLU: overwrites ``input``, saves only the output (and the slopes)."""

    @staticmethod
    def forward(ctx: Any, input: Tensor, weight: Tensor) -> Tensor:
        prelu_inplace_impl(input, weight)
        ctx.mark_dirty(input)
        ctx.save_for_backward(input, weight)
        return input

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        if torch.is_grad_enabled():
            raise RuntimeError(_NO_DOUBLE_BACKWARD.format(name="PReLU"))
        output, weight = ctx.saved_tensors
        if _differentiable_backward_needed(grad):  # batched or traced: torch ops; for slopes > 0,
            # y > 0 exactly where x > 0, and x = y / a elsewhere
            grad_input, grad_weight = native.differentiable_backward(grad, output, weight)
            grad_weight = grad_weight / weight
        else:
            grad_input, grad_weight = prelu_backward_impl(grad, output, weight, True)
        return (
            grad_input if ctx.needs_input_grad[0] else None,
            grad_weight if ctx.needs_input_grad[1] else None,
        )


class _LeakyReLUInplace(torch.autograd.Function):
    """In-place Leaky ReLU (slope > 0): overwrites ``input``, saves only the output."""

    @staticmethod
    def forward(ctx: Any, input: Tensor, negative_slope: float) -> Tensor:
        leaky_relu_inplace_impl(input, negative_slope)
        ctx.mark_dirty(input)
        ctx.save_for_backward(input)
        ctx.negative_slope = negative_slope
        return input

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        if torch.is_grad_enabled():
            raise RuntimeError(_NO_DOUBLE_BACKWARD.format(name="Leaky ReLU"))
        # For a slope > 0 the output has the input's sign, so the input's formula applies as is.
        return _leaky_relu_gradient(ctx, grad, leaky_relu_backward_impl), None


# Entry points for prelu.ops.route (plain eager, fused kernels chosen). torch types
# Function.apply as untyped, returning Any: hence the ignores below.


def prelu(input: Tensor, weight: Tensor, view_shape: tuple[int, ...], *, inplace: bool = False) -> Tensor:
    """PReLU with ``weight`` viewed as ``view_shape`` (the canonical form), on the fused kernels."""
    # Function.apply is unannotated in torch's stubs and returns Any: these ignores say only that.
    if inplace:
        return _PReLUInplace.apply(input, weight.reshape(view_shape))  # type: ignore[no-untyped-call,no-any-return]
    return _EagerPReLU.apply(input, weight, view_shape)  # type: ignore[no-untyped-call,no-any-return]


def leaky_relu(input: Tensor, negative_slope: float, *, inplace: bool = False) -> Tensor:
    """Leaky ReLU on the fused kernels."""
    # Function.apply: unannotated in torch's stubs, as above.
    if inplace:
        return _LeakyReLUInplace.apply(input, negative_slope)  # type: ignore[no-untyped-call,no-any-return]
    return _EagerLeakyReLU.apply(input, negative_slope)  # type: ignore[no-untyped-call,no-any-return]
