"""The ops and their autograd: ``torch.ops.prelu.*`` and the eager fast path.

Owns the torch.library registration (real kernels, fake kernels for tracing, autograd wiring)
and the choice, per call, between the registered op and a lean ``autograd.Function``; imports
:mod:`prelu.ops.backend` and :mod:`prelu.ops.kernels`.

Each op has one implementation (``*_impl`` below), reached two ways:

- **traced** (``torch.compile``, ``torch.export``, ONNX export, ``make_fx``, fake tensors,
  functorch transforms, ``torch.jit.trace``): through the registered custom op, which tracers see
  as one opaque node, so ``torch.compile(fullgraph=True)`` has no graph break;
- **plain eager**: through a small ``autograd.Function`` that calls the same implementation
  directly. torch.library's Python dispatch costs ~30-40 us a call, which doubled the training
  step of a small MLP (566 us with nn.ReLU, 1120 us through the op, measured on this machine).

Contract: ``weight`` is already in the canonical form of :mod:`prelu.ops.layout` (``input.ndim``
dims, each 1 or equal to the input's); :mod:`prelu.ops.functional` puts it there.

Backward runs the fused backward when no graph is being built, and differentiable torch ops when
``create_graph=True`` (so second derivatives exist and ``gradgradcheck`` passes). In place, a
mutating op (torch.library cannot attach autograd to one) runs inside an ``autograd.Function``
that marks the input dirty and saves only the output: backward recovers x = y / a where y <= 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from prelu.ops import backend, dtypes
from prelu.ops.kernels import native

_LIBRARY = "prelu"

_NO_DOUBLE_BACKWARD = (
    "double backward through an in-place {name} is not supported: its input was overwritten, and "
    "the second derivative would need it; call it with inplace=False"
)


def _plain_eager(*tensors: Tensor) -> bool:
    """True when nothing is tracing or transforming this call (so the registered op is not needed)."""
    return (
        not torch.compiler.is_compiling()
        and torch._C._len_torch_dispatch_stack() == 0
        and not torch._C._are_functorch_transforms_active()
        and torch._C._get_tracing_state() is None
        and all(type(t) in (Tensor, torch.nn.Parameter) for t in tensors)
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


# Implementations: one per op, shared by the registered op and the eager path.


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
    # The weight gradient must have the weight's strides, as the fake kernel promises.
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


# The registered ops.

prelu_op = torch.library.custom_op(f"{_LIBRARY}::prelu", prelu_impl, mutates_args=())
prelu_backward_op = torch.library.custom_op(f"{_LIBRARY}::prelu_backward", prelu_backward_impl, mutates_args=())
prelu_inplace_op = torch.library.custom_op(f"{_LIBRARY}::prelu_", prelu_inplace_impl, mutates_args=("input",))
leaky_relu_op = torch.library.custom_op(f"{_LIBRARY}::leaky_relu", leaky_relu_impl, mutates_args=())
leaky_relu_backward_op = torch.library.custom_op(
    f"{_LIBRARY}::leaky_relu_backward", leaky_relu_backward_impl, mutates_args=()
)
leaky_relu_inplace_op = torch.library.custom_op(
    f"{_LIBRARY}::leaky_relu_", leaky_relu_inplace_impl, mutates_args=("input",)
)


@prelu_op.register_fake
def _prelu_fake(input: Tensor, weight: Tensor) -> Tensor:
    _check_canonical(input, weight)
    return torch.empty_like(input)


@prelu_backward_op.register_fake
def _prelu_backward_fake(
    grad: Tensor, saved: Tensor, weight: Tensor, from_output: bool = False
) -> tuple[Tensor, Tensor]:
    return torch.empty_like(saved), torch.empty_like(weight)


@prelu_inplace_op.register_fake
def _prelu_inplace_fake(input: Tensor, weight: Tensor) -> None:
    _check_canonical(input, weight)


@leaky_relu_op.register_fake
def _leaky_relu_fake(input: Tensor, negative_slope: float) -> Tensor:
    return torch.empty_like(input)


@leaky_relu_backward_op.register_fake
def _leaky_relu_backward_fake(grad: Tensor, input: Tensor, negative_slope: float) -> Tensor:
    return torch.empty_like(input)


@leaky_relu_inplace_op.register_fake
def _leaky_relu_inplace_fake(input: Tensor, negative_slope: float) -> None:
    return None


# Autograd formulas, shared by both routes; ``backward`` is the op or its implementation.

PReLUBackward = Callable[[Tensor, Tensor, Tensor, bool], tuple[Tensor, Tensor]]


def _prelu_gradients(
    ctx, grad: Tensor, backward: PReLUBackward, input: Tensor, weight: Tensor
) -> tuple[Tensor | None, Tensor | None]:
    if torch.is_grad_enabled():  # create_graph=True: build the gradient from differentiable ops
        grad_input, grad_weight = native.differentiable_backward(grad, input, weight)
    else:
        grad_input, grad_weight = backward(grad, input, weight, False)
    return (
        grad_input if ctx.needs_input_grad[0] else None,
        grad_weight if ctx.needs_input_grad[1] else None,
    )


def _leaky_relu_gradient(ctx, grad: Tensor, backward: Callable[[Tensor, Tensor, float], Tensor]) -> Tensor:
    (input,) = ctx.saved_tensors
    if torch.is_grad_enabled():
        return torch.where(input > 0, grad, grad * ctx.negative_slope)
    return backward(grad, input, ctx.negative_slope)


def _prelu_setup_context(ctx, inputs, output) -> None:
    input, weight = inputs
    ctx.save_for_backward(input, weight)


def _leaky_relu_setup_context(ctx, inputs, output) -> None:
    input, negative_slope = inputs
    ctx.save_for_backward(input)
    ctx.negative_slope = negative_slope


prelu_op.register_autograd(
    lambda ctx, grad: _prelu_gradients(ctx, grad, prelu_backward_op, *ctx.saved_tensors),
    setup_context=_prelu_setup_context,
)
leaky_relu_op.register_autograd(
    lambda ctx, grad: (_leaky_relu_gradient(ctx, grad, leaky_relu_backward_op), None),
    setup_context=_leaky_relu_setup_context,
)


# The classic forward(ctx, ...) form: with a separate setup_context, Function.apply binds the
# arguments with inspect.signature on every call (~20 us, most of the remaining overhead).


class _EagerPReLU(torch.autograd.Function):
    """The plain-eager route to :func:`prelu_impl` (same formulas, no dispatcher round trip).

    Takes the weight as the caller holds it and views it in the canonical shape inside, so no
    autograd view node is built per call; backward reshapes the slope gradient back.
    """

    @staticmethod
    def forward(ctx, input: Tensor, weight: Tensor, view_shape: tuple[int, ...]) -> Tensor:
        # Save the weight itself: a view taken here (autograd off) would not link a double
        # backward to it; backward takes the view again, tracked when create_graph=True.
        ctx.save_for_backward(input, weight)
        ctx.view_shape = view_shape
        return prelu_impl(input, weight.view(view_shape))

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        input, weight = ctx.saved_tensors
        grad_input, grad_weight = _prelu_gradients(ctx, grad, prelu_backward_impl, input, weight.view(ctx.view_shape))
        return grad_input, None if grad_weight is None else grad_weight.reshape(weight.shape), None


class _EagerLeakyReLU(torch.autograd.Function):
    """The plain-eager route to :func:`leaky_relu_impl`."""

    @staticmethod
    def forward(ctx, input: Tensor, negative_slope: float) -> Tensor:
        ctx.save_for_backward(input)
        ctx.negative_slope = negative_slope
        return leaky_relu_impl(input, negative_slope)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return _leaky_relu_gradient(ctx, grad, leaky_relu_backward_impl), None


class _PReLUInplace(torch.autograd.Function):
    """In-place PReLU: overwrites ``input``, saves only the output (and the slopes)."""

    @staticmethod
    def forward(ctx, input: Tensor, weight: Tensor) -> Tensor:
        (prelu_inplace_impl if _plain_eager(input, weight) else prelu_inplace_op)(input, weight)
        ctx.mark_dirty(input)
        ctx.save_for_backward(input, weight)
        return input

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        if torch.is_grad_enabled():
            raise RuntimeError(_NO_DOUBLE_BACKWARD.format(name="PReLU"))
        output, weight = ctx.saved_tensors
        backward = prelu_backward_impl if _plain_eager(grad, output, weight) else prelu_backward_op
        grad_input, grad_weight = backward(grad, output, weight, True)
        return (
            grad_input if ctx.needs_input_grad[0] else None,
            grad_weight if ctx.needs_input_grad[1] else None,
        )


class _LeakyReLUInplace(torch.autograd.Function):
    """In-place Leaky ReLU (slope > 0): overwrites ``input``, saves only the output."""

    @staticmethod
    def forward(ctx, input: Tensor, negative_slope: float) -> Tensor:
        (leaky_relu_inplace_impl if _plain_eager(input) else leaky_relu_inplace_op)(input, negative_slope)
        ctx.mark_dirty(input)
        ctx.save_for_backward(input)
        ctx.negative_slope = negative_slope
        return input

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        if torch.is_grad_enabled():
            raise RuntimeError(_NO_DOUBLE_BACKWARD.format(name="Leaky ReLU"))
        (output,) = ctx.saved_tensors
        backward = leaky_relu_backward_impl if _plain_eager(grad, output) else leaky_relu_backward_op
        # For a slope > 0 the output has the input's sign, so the input's formula applies as is.
        return backward(grad, output, ctx.negative_slope), None


# Entry points for prelu.ops.functional.


def prelu(input: Tensor, weight: Tensor, view_shape: tuple[int, ...], *, inplace: bool = False) -> Tensor:
    """PReLU with ``weight`` viewed as ``view_shape`` (the canonical form): the eager route or the
    registered op (see module doc)."""
    if inplace:
        return _PReLUInplace.apply(input, weight.reshape(view_shape))
    if _plain_eager(input, weight):
        return _EagerPReLU.apply(input, weight, view_shape)
    return prelu_op(input, weight.reshape(view_shape))


def leaky_relu(input: Tensor, negative_slope: float, *, inplace: bool = False) -> Tensor:
    """Leaky ReLU: the eager route or the registered op (see module doc)."""
    if inplace:
        return _LeakyReLUInplace.apply(input, negative_slope)
    if _plain_eager(input):
        return _EagerLeakyReLU.apply(input, negative_slope)
    return leaky_relu_op(input, negative_slope)
