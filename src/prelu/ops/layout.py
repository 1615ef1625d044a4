"""Slope layouts: how a ``weight`` maps onto an ``input``, and how the fused kernels walk memory.

Owns two steps and nothing else; imports only torch.

1. :func:`slope_view_shape` turns the public slope layouts (one shared slope, one per channel on
   any axis, NumPy-style broadcasting for ``weight.ndim >= 2``) into one canonical form: the shape
   ``weight`` is viewed as so that it has ``input.ndim`` dimensions, each 1 or equal to the input's.
   The kernels and the aten path only ever see that canonical form.
2. :func:`plan_memory_walk` describes a dense tensor in *memory order* (any permutation of dims,
   e.g. NCHW or channels-last) as one of two flat walks the fused kernels implement:

   - ``rows``: memory is ``R`` consecutive rows of ``inner`` elements, one slope per row
     (NCHW per-channel: ``R = N*C``, ``inner = H*W``; a shared slope: ``R = 1``).
   - ``period``: memory is ``outer`` consecutive rows of ``period`` elements, and element ``j`` of
     every row uses slope ``j`` (channels-last per-channel: ``period = C``).

   Anything else (a strided, non-dense input; a huge element-wise slope pattern) has no plan and
   takes the native path: the kernels never copy an input to make it fit.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

# A rows walk is only worth it when a row is long enough to vectorise; below that a period walk
# (slopes along the fastest dims) is used when the period is short enough that the per-task slope
# gradient partials stay small (<= numel / 16 float64 values).
MIN_ROW_LENGTH = 32
MAX_PERIOD = 4096


def normalize_dim(dim: int, ndim: int) -> int:
    """``dim`` counted from the front; negative counts from the end. IndexError if out of range."""
    if not -ndim <= dim < ndim:
        raise IndexError(
            f"channel_dim={dim} is out of range for an input with {ndim} dimension(s) (valid: {-ndim} to {ndim - 1})"
        )
    return dim % ndim


def slope_view_shape(
    input_shape: torch.Size | tuple[int, ...], weight_shape: torch.Size | tuple[int, ...], channel_dim: int
) -> tuple[int, ...]:
    """The shape that ``weight`` is viewed as so that it broadcasts onto ``input`` dim by dim.

    >>> slope_view_shape((8, 3, 5, 5), (3,), channel_dim=1)
    (1, 3, 1, 1)
    >>> slope_view_shape((8, 5, 5, 3), (3,), channel_dim=-1)
    (1, 1, 1, 3)
    >>> slope_view_shape((8, 3, 5), (1,), channel_dim=1)
    (1, 1, 1)
    >>> slope_view_shape((8, 3, 5), (3, 1), channel_dim=1)
    (1, 3, 1)
    """
    input_shape = tuple(input_shape)
    weight_shape = tuple(weight_shape)
    ndim = len(input_shape)
    weight_numel = math.prod(weight_shape)
    if weight_numel == 1:
        return (1,) * ndim
    if len(weight_shape) == 1:
        if ndim == 0:
            raise ValueError(
                f"weight of shape {weight_shape} has one slope per channel, but the input of shape "
                f"{input_shape} is 0-d and has no channels; use a weight with a single slope"
            )
        try:
            dim = normalize_dim(channel_dim, ndim)
        except IndexError as error:
            raise ValueError(
                f"weight of shape {weight_shape} has one slope per channel, but {error}; input shape {input_shape}"
            ) from None
        if input_shape[dim] != weight_shape[0]:
            raise ValueError(
                f"weight of shape {weight_shape} has {weight_shape[0]} slopes, but the input of shape "
                f"{input_shape} has {input_shape[dim]} channels on channel_dim={channel_dim}"
            )
        view = [1] * ndim
        view[dim] = weight_shape[0]
        return tuple(view)
    # weight.ndim >= 2: unidirectional NumPy broadcasting (ONNX PRelu): the output keeps input's shape.
    if len(weight_shape) > ndim or any(
        w not in (1, i) for w, i in zip(reversed(weight_shape), reversed(input_shape), strict=False)
    ):
        raise ValueError(
            f"weight of shape {weight_shape} does not broadcast onto input of shape {input_shape} "
            f"(element-wise slopes need every weight dim, aligned from the right, to be 1 or equal to the input's)"
        )
    return (1,) * (ndim - len(weight_shape)) + weight_shape


@functools.lru_cache(maxsize=1024)
@dataclass(frozen=True)
class MemoryWalk:
    """How a fused kernel walks a dense tensor; see the module docstring.

    ``slope_dims`` are the input dims (logical indices, in memory order, outermost first) that the
    kernel's slope vector runs over: the slope vector has ``prod(shape[d] for d in slope_dims)``
    entries, and the slope-gradient vector the kernel returns is laid out the same way.
    """

    kind: str  # "rows" or "period"
    length: int  # rows: elements per row (inner); period: the period
    slope_dims: tuple[int, ...]
    order: tuple[int, ...]  # non-size-1 input dims, outermost in memory first


def memory_order(tensor: torch.Tensor) -> tuple[int, ...] | None:
    """The non-size-1 dims of ``tensor`` from outermost to innermost in memory, or None if the
    tensor is not dense (has gaps or overlaps), i.e. cannot be walked as one flat array."""
    return _memory_order(tuple(tensor.shape), tensor.stride())


@functools.lru_cache(maxsize=1024)
def _memory_order(shape: tuple[int, ...], strides: tuple[int, ...]) -> tuple[int, ...] | None:
    dims = [d for d in range(len(shape)) if shape[d] != 1]
    order = sorted(dims, key=lambda d: -strides[d])
    expected = 1
    for d in reversed(order):
        if strides[d] != expected:
            return None
        expected *= shape[d]
    return tuple(order)


def plan_memory_walk(input: torch.Tensor, slope_shape: tuple[int, ...]) -> MemoryWalk | None:
    """A flat walk of ``input`` for a weight viewed as ``slope_shape``, or None if none fits."""
    return _plan_memory_walk(tuple(input.shape), input.stride(), tuple(slope_shape))


@functools.lru_cache(maxsize=1024)
def _plan_memory_walk(
    shape: tuple[int, ...], strides: tuple[int, ...], slope_shape: tuple[int, ...]
) -> MemoryWalk | None:
    order = _memory_order(shape, strides)
    if order is None:
        return None
    varies = [slope_shape[d] != 1 for d in order]
    # rows: every dim after the last slope-varying one is the row.
    last_varying = max((i for i, v in enumerate(varies) if v), default=-1)
    inner = math.prod(shape[d] for d in order[last_varying + 1 :])
    if inner >= MIN_ROW_LENGTH or last_varying == -1:
        return MemoryWalk("rows", inner, tuple(order[: last_varying + 1]), order)
    # period: every dim from the first slope-varying one on is the period.
    first_varying = varies.index(True)
    period = math.prod(shape[d] for d in order[first_varying:])
    if period <= MAX_PERIOD:
        return MemoryWalk("period", period, tuple(order[first_varying:]), order)
    return None


def slope_vector(weight_view: torch.Tensor, input_shape: torch.Size, walk: MemoryWalk) -> torch.Tensor:
    """The slopes as the flat, contiguous vector the kernel indexes (rows: one per row in memory
    order; period: one per position in the period). Small: it has no more entries than rows or
    the period.

    >>> walk = plan_memory_walk(torch.empty(2, 3, 40), (1, 3, 1))
    >>> slope_vector(torch.tensor([[[1.0], [2.0], [3.0]]]), (2, 3, 40), walk)
    tensor([1., 2., 3., 1., 2., 3.])
    """
    flat = weight_view.reshape(-1)
    index = _slope_index(tuple(input_shape), tuple(weight_view.shape), walk)
    return flat if index is None else flat[index]


@functools.lru_cache(maxsize=1024)
def _slope_index(input_shape: tuple[int, ...], slope_shape: tuple[int, ...], walk: MemoryWalk) -> torch.Tensor | None:
    """Positions in the flattened weight of each entry of the slope vector (None: identity)."""
    positions = torch.arange(math.prod(slope_shape)).reshape(slope_shape)
    index = _gather_slopes(positions, input_shape, walk)
    if index.numel() == positions.numel() and torch.equal(index, positions.reshape(-1)):
        return None
    return index


def _gather_slopes(weight_view: torch.Tensor, input_shape: tuple[int, ...], walk: MemoryWalk) -> torch.Tensor:
    expanded = weight_view.expand(input_shape)
    index = tuple(slice(None) if d in walk.slope_dims else 0 for d in range(len(input_shape)))
    picked = expanded[index]  # dims left: slope_dims, in logical order
    kept = sorted(walk.slope_dims)
    permutation = [kept.index(d) for d in walk.slope_dims]
    return picked.permute(permutation).contiguous().reshape(-1)


def fold_slope_gradient(
    gradient: torch.Tensor, input_shape: torch.Size, slope_shape: tuple[int, ...], walk: MemoryWalk
) -> torch.Tensor:
    """Sum a slope-vector gradient (laid out like :func:`slope_vector`) back onto ``slope_shape``:
    positions that share a slope (broadcast dims) add up."""
    if _is_plain_layout(tuple(slope_shape), walk):  # the common case: nothing to sum or permute
        return gradient.view(slope_shape)
    sizes = [input_shape[d] for d in walk.slope_dims]
    gradient = gradient.reshape(sizes)
    shared = [i for i, d in enumerate(walk.slope_dims) if slope_shape[d] == 1]
    if shared:
        gradient = gradient.sum(dim=shared)
    own = [d for d in walk.slope_dims if slope_shape[d] != 1]
    permutation = sorted(range(len(own)), key=lambda i: own[i])
    return gradient.permute(permutation).reshape(slope_shape)


@functools.lru_cache(maxsize=1024)
def _is_plain_layout(slope_shape: tuple[int, ...], walk: MemoryWalk) -> bool:
    """True when the slope vector is the weight itself, flattened: every walked slope dim has its
    own slope, in logical order (per channel in NCHW, channels-last or (B, T, F); one shared slope)."""
    dims = walk.slope_dims
    return all(slope_shape[d] != 1 for d in dims) and list(dims) == sorted(dims)
