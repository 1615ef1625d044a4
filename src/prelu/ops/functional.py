"""Functional API: :func:`prelu` and :func:`leaky_relu`.

Owns argument checks and the public slope layouts; imports :mod:`prelu.ops.route` (which picks
the fused eager path or the aten path) and :mod:`prelu.ops.autograd`. Every check runs before any
kernel, so a refused call changes nothing. The common case (tensors of one floating dtype on one
device, an ``int`` channel_dim, ``inplace=False``) is recognised with a few attribute reads, and
the full checks run only when it is not: that keeps small-tensor calls close to torch's own.
Before any of that, :data:`prelu.ops.route.fast_entry` tries the whole common call in C++.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from prelu.ops import autograd, dtypes, route


def _check_floating(name: str, tensor: object) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor (float16, bfloat16, float32, float64), got {tensor.dtype}"
        )


def check_input_and_weight(input: Tensor, weight: Tensor) -> None:
    """TypeError for non-tensors, integer/bool/complex dtypes or a dtype pair outside the mixed
    precision rule of :mod:`prelu.ops.dtypes` (slopes float32 or the input's dtype);
    RuntimeError for tensors on different devices."""
    _check_floating("input", input)
    _check_floating("weight", weight)
    if input.device != weight.device:
        raise RuntimeError(f"input is on {input.device} but weight is on {weight.device}; move them to the same device")
    dtypes.check(input.dtype, weight.dtype)


def _check_channel_dim(channel_dim: object) -> int:
    if isinstance(channel_dim, bool) or not isinstance(channel_dim, numbers.Integral):
        raise TypeError(f"channel_dim must be an int, got {channel_dim!r} ({type(channel_dim).__name__})")
    return int(channel_dim)


def may_overlap(tensor: Tensor) -> bool:
    """True unless ``tensor``'s elements provably occupy distinct memory locations.

    torch answers "yes", "no" or "too hard to tell" (``as_strided`` views); for the last we sort
    the dims by stride and require each stride to step over everything the smaller ones span,
    which is sufficient for no overlap. A tensor failing it is treated as overlapping: refusing a
    rare odd layout is safe, writing twice to one element is not.

    >>> x = torch.zeros(12)
    >>> may_overlap(x.as_strided((3, 3), (1, 1))), may_overlap(x.as_strided((3, 2), (1, 3)))
    (True, False)
    """
    verdict = torch._debug_has_internal_overlap(tensor)
    if verdict != 2:
        return bool(verdict == 1)
    span = 1  # elements spanned, in memory, by the dims already visited
    for stride, size in sorted((abs(t), s) for s, t in zip(tensor.shape, tensor.stride(), strict=True) if s != 1):
        if stride < span:
            return True
        span = stride * (size - 1) + span
    return False


def _check_inplace_target(input: Tensor, inplace: object, eager: bool) -> None:
    """Refuse, before anything is written, an in-place call torch would refuse or could not undo."""
    if not isinstance(inplace, bool):
        raise TypeError(f"inplace must be True or False, got {inplace!r}")
    if not inplace:
        return
    if torch.is_grad_enabled() and input.requires_grad:
        base = input._base if input._base is not None else input
        if base.is_leaf:
            what = "a leaf Variable" if input._base is None else "a view of a leaf Variable"
            raise RuntimeError(
                f"{what} that requires grad is being used in an in-place operation "
                f"(prelu with inplace=True); pass inplace=False or call it on a non-leaf tensor"
            )
    # A contiguous tensor never overlaps (the cheap test first). A tracer sees no real memory, and
    # torch checks its own kernels' outputs there.
    if eager and not input.is_contiguous() and may_overlap(input):
        raise RuntimeError(
            "unsupported operation: more than one element of the written-to tensor may refer to a single "
            f"memory location (shape {tuple(input.shape)}, strides {input.stride()}: an expanded or "
            "as_strided input); clone() it first or pass inplace=False"
        )


def prelu(input: Tensor, weight: Tensor, *, channel_dim: int = 1, inplace: bool = False) -> Tensor:
    r"""Parametric ReLU (He et al. 2015): ``x`` where ``x > 0``, ``a * x`` elsewhere, slopes from ``weight``.

    .. math::
        \text{PReLU}(x) = \max(0, x) + a \min(0, x)

    >>> import torch, prelu
    >>> x = torch.tensor([[-2.0, 3.0], [4.0, -1.0]])
    >>> prelu.prelu(x, torch.tensor([0.25]))            # one shared slope
    tensor([[-0.5000,  3.0000],
            [ 4.0000, -0.2500]])
    >>> prelu.prelu(x, torch.tensor([0.1, 0.5]), channel_dim=-1)  # one slope per column
    tensor([[-0.2000,  3.0000],
            [ 4.0000, -0.5000]])

    Parameters:
        input: a floating-point tensor of any shape (0-d included).
        weight: the slopes, laid out as
            ``numel() == 1``: one slope for every element;
            1-D of length C: one slope per channel, channel = ``input.shape[channel_dim]``;
            ``ndim >= 2``: NumPy-style broadcasting onto ``input`` (element-wise slopes, ONNX
            ``PRelu``); the output always has ``input``'s shape.
        channel_dim: the channel axis for a 1-D weight; negative counts from the end (``-1`` for
            channels-last and (batch, sequence, features) layouts). Default 1, as torch.nn.PReLU.
        inplace: overwrite ``input`` with the output and return it. Autograd then keeps only the
            output (and the slopes): backward recovers ``x = y / a`` where ``y <= 0``, so every
            slope must be finite and > 0. Double backward is not available in place.

    Returns:
        A new tensor with ``input``'s shape, dtype and memory layout (``input`` itself when
        ``inplace``). ``x == 0`` takes the negative branch (output 0 either way); NaN and +-inf
        propagate as in torch.nn.functional.prelu.

    Raises:
        ValueError: ``weight`` fits no layout (the message names both shapes); ``inplace`` with a
            slope <= 0 or non-finite (names the smallest slope).
        TypeError: non-floating dtypes, or slopes neither float32 nor the input's dtype (see
            :mod:`prelu.ops.dtypes`); a ``channel_dim`` that is not an int.
        RuntimeError: different devices; in place on a leaf that requires grad, or on an input
            whose elements overlap (or may: ``as_strided`` views torch cannot decide).
        Every check runs before anything is written.
    """
    if not torch.compiler.is_dynamo_compiling():  # first: dynamo must never reach the C call
        output = route.fast_entry(input, weight, channel_dim, inplace)
        if output is not None:
            return output
    if not (
        isinstance(input, Tensor)
        and isinstance(weight, Tensor)
        and input.dtype == weight.dtype
        and input.is_floating_point()
        and ((input.is_cpu and weight.is_cpu) or input.device == weight.device)  # is_cpu: no device objects
    ):
        check_input_and_weight(input, weight)
    if type(channel_dim) is not int:
        channel_dim = _check_channel_dim(channel_dim)
    eager = route.plain_eager(input, weight)
    view_shape = route.view_shape(input, weight, channel_dim, eager)
    if inplace is not False:
        _check_inplace_target(input, inplace, eager)  # the slopes are checked on real values, later
    return route.prelu(input, weight, view_shape, inplace=inplace, eager=eager)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, *, inplace: bool = False) -> Tensor:
    r"""Leaky ReLU (Maas et al. 2013): ``x`` where ``x > 0``, ``negative_slope * x`` elsewhere.

    .. math::
        \text{LeakyReLU}(x) = \max(0, x) + \text{negative\_slope} \cdot \min(0, x)

    >>> import torch, prelu
    >>> prelu.leaky_relu(torch.tensor([-100.0, 0.0, 2.0]))
    tensor([-1.,  0.,  2.])

    Parameters:
        input: a floating-point tensor of any shape.
        negative_slope: the fixed slope for ``x <= 0`` (a real number). Default 0.01.
        inplace: overwrite ``input`` and keep only the output for backward (needs a finite
            ``negative_slope > 0``; checked before anything is written).
    """
    if not (isinstance(input, Tensor) and input.is_floating_point()):
        _check_floating("input", input)
    if type(negative_slope) is not float:
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
            raise TypeError(f"negative_slope must be a real number, got {negative_slope!r}")
        negative_slope = float(negative_slope)
    eager = route.plain_eager(input)
    if inplace is not False:
        _check_inplace_target(input, inplace, eager)
        if not (math.isfinite(negative_slope) and negative_slope > 0):
            raise ValueError(autograd.inplace_slope_message("leaky_relu", f"{negative_slope:.6g}", 0))
    return route.leaky_relu(input, negative_slope, inplace=inplace, eager=eager)
