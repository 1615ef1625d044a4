"""Fused GPU kernels (Triton): PReLU and Leaky ReLU forward, and backward in one pass.

Owns the Triton code and the wrappers that launch it; imports triton, torch and
:mod:`prelu.ops.layout`, :mod:`prelu.ops.dtypes`, :mod:`prelu.ops.kernels.native` (its in-place
recoverability check). Importing this module raises ImportError when
triton is missing; :mod:`prelu.ops.backend` then runs the native path. Same interface as
:mod:`prelu.ops.kernels.cpu` (``supports``, ``forward``, ``backward``).

Both memory walks of :mod:`prelu.ops.layout` are one ``M x N`` row-major matrix over the
tensor's memory (``N = walk.length``): a ``rows`` walk has one slope per matrix row (slope
``table[row % len(table)]``: NCHW per-channel has ``table = weight``), a ``period`` walk one slope
per column (channels-last, ``channel_dim=-1``). Each program takes a ``BLOCK_M x BLOCK_N`` tile.

Math per element, in the compute dtype of :mod:`prelu.ops.dtypes` (float32 for half inputs),
rounded once to the input's dtype (``x == 0`` and NaN take the negative branch)::

    y      = x        if x > 0 else a * x
    dL/dx  = g        if x > 0 else a * g
    dL/da  = sum of (0 if x > 0 else g * x)        (a select: g = inf/NaN at x > 0 adds 0)

Backward reads ``g`` and ``x`` once and writes ``dL/dx`` once; each tile also writes its slope
partial sums (one per row of the tile for ``rows``, one per column for ``period``) to its own
slot of a small buffer, which torch then sums in a fixed order. No atomics: the slope gradient
is the same bits on every run. In place (``out=input``) each element is read before it is written.

Under ``TRITON_INTERPRET=1`` (set before this module is imported) Triton runs these kernels on
CPU tensors with numpy: that is how they are tested without a GPU.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import torch
import triton
import triton.language as tl

from prelu.ops import dtypes
from prelu.ops.kernels import native
from prelu.ops.layout import MemoryWalk, fold_slope_gradient

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# Elements per program: 16 KiB of float32 per tensor read, enough to keep the memory busy.
TILE = 4096
MAX_BLOCK_N = 4096


@triton.jit  # triton ships no type hints; mypy flags the decorator only on annotated kernels
def _round_to_bfloat16(value):  # type: ignore[no-untyped-def]
    """float32 ``value`` rounded to nearest even in bfloat16, on the bits, as torch does it (NaN
    stays NaN). A GPU converts so in hardware; Triton's interpreter truncates instead, so the
    kernels call this there only (``ROUND_BF16``)."""
    bits = value.to(tl.uint32, bitcast=True)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    bits16 = tl.where(value != value, (bits >> 16) | 0x40, rounded)
    return bits16.to(tl.uint16).to(tl.bfloat16, bitcast=True)


@triton.jit  # type: ignore[untyped-decorator]  # triton ships no type hints for its decorator
def _forward_kernel(  # type: ignore[no-untyped-def]  # jit arguments are pointers and constexprs
    x_ptr,
    table_ptr,
    out_ptr,
    M,
    n_units,
    period,
    col_blocks,
    SLOPE_PER_ROW: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    ROW_ALIGN: tl.constexpr,
    ROUND_BF16: tl.constexpr,
):
    # N = n_units * ROW_ALIGN: the compiler then knows every row starts ROW_ALIGN-aligned and the
    # column mask is constant over ROW_ALIGN lanes, so loads and stores are vectorised.
    N = n_units * ROW_ALIGN
    pid = tl.program_id(0)
    pid_m = pid // col_blocks
    pid_n = pid % col_blocks
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    offsets = rows.to(tl.int64)[:, None] * N + cols[None, :]
    if SLOPE_PER_ROW:
        a = tl.load(table_ptr + rows % period, mask=rows < M, other=1.0)[:, None]
    else:
        a = tl.load(table_ptr + cols, mask=cols < N, other=1.0)[None, :]
    x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(table_ptr.dtype.element_ty)
    y = tl.where(x > 0, x, x * a)
    if ROUND_BF16:
        y = _round_to_bfloat16(y)
    tl.store(out_ptr + offsets, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit  # type: ignore[untyped-decorator]  # triton ships no type hints for its decorator
def _backward_kernel(  # type: ignore[no-untyped-def]  # as above
    grad_ptr,
    saved_ptr,
    table_ptr,
    grad_input_ptr,
    partial_ptr,
    M,
    n_units,
    period,
    col_blocks,
    SLOPE_PER_ROW: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    ROW_ALIGN: tl.constexpr,
    ROUND_BF16: tl.constexpr,
    FROM_OUTPUT: tl.constexpr,
):
    # N = n_units * ROW_ALIGN: the compiler then knows every row starts ROW_ALIGN-aligned and the
    # column mask is constant over ROW_ALIGN lanes, so loads and stores are vectorised.
    N = n_units * ROW_ALIGN
    pid = tl.program_id(0)
    pid_m = pid // col_blocks
    pid_n = pid % col_blocks
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    offsets = rows.to(tl.int64)[:, None] * N + cols[None, :]
    if SLOPE_PER_ROW:
        a = tl.load(table_ptr + rows % period, mask=rows < M, other=1.0)[:, None]
    else:
        a = tl.load(table_ptr + cols, mask=cols < N, other=1.0)[None, :]
    compute = table_ptr.dtype.element_ty
    # Padding lanes read x = 1 (positive) and g = 0: they add nothing to the slope partials.
    x = tl.load(saved_ptr + offsets, mask=mask, other=1.0).to(compute)
    g = tl.load(grad_ptr + offsets, mask=mask, other=0.0).to(compute)
    positive = x > 0
    grad_input = tl.where(positive, g, g * a)
    if ROUND_BF16:
        grad_input = _round_to_bfloat16(grad_input)
    tl.store(grad_input_ptr + offsets, grad_input.to(grad_input_ptr.dtype.element_ty), mask=mask)
    if FROM_OUTPUT:  # saved is y of an in-place call: x = y / a, per element, before the sum
        x = tl.where(positive, x, x / a)
    terms = tl.where(positive, 0.0, g * x)
    if SLOPE_PER_ROW:  # partials laid out (M, col_blocks)
        tl.store(partial_ptr + rows.to(tl.int64) * col_blocks + pid_n, tl.sum(terms, axis=1), mask=rows < M)
    else:  # partials laid out (row_blocks, N)
        tl.store(partial_ptr + pid_m.to(tl.int64) * N + cols, tl.sum(terms, axis=0), mask=cols < N)


def interpreted() -> bool:
    """True when Triton runs these kernels on the CPU (``TRITON_INTERPRET=1`` at import)."""
    return type(_forward_kernel).__name__ == "InterpretedFunction"


def supports(tensor: torch.Tensor) -> bool:
    """Device and dtype these kernels handle: CUDA tensors, or CPU tensors when interpreted."""
    device = "cpu" if interpreted() else "cuda"
    return tensor.device.type == device and tensor.dtype in SUPPORTED_DTYPES


@dataclasses.dataclass(frozen=True)
class _Grid:
    M: int
    N: int
    per_row: bool
    block_m: int
    block_n: int

    @property
    def row_align(self) -> int:
        return math.gcd(self.N, 16)

    @property
    def row_blocks(self) -> int:
        return triton.cdiv(self.M, self.block_m)  # type: ignore[no-any-return]

    @property
    def col_blocks(self) -> int:
        return triton.cdiv(self.N, self.block_n)  # type: ignore[no-any-return]

    def launch(self, kernel: Any, output: torch.Tensor, *args: Any, **constants: Any) -> None:
        """Run ``kernel`` over the grid; ``output`` is the tensor it writes in the input's dtype."""
        num_warps = 8 if self.block_m * self.block_n >= TILE else 4
        kernel[(self.row_blocks * self.col_blocks,)](
            *args,
            self.col_blocks,
            SLOPE_PER_ROW=self.per_row,
            BLOCK_M=self.block_m,
            BLOCK_N=self.block_n,
            ROW_ALIGN=self.row_align,
            ROUND_BF16=output.dtype == torch.bfloat16 and interpreted(),
            num_warps=num_warps,
            **constants,
        )


@functools.lru_cache(maxsize=1024)
def _grid(numel: int, walk: MemoryWalk) -> _Grid:
    N = walk.length
    M = numel // N
    block_n = min(triton.next_power_of_2(N), MAX_BLOCK_N)
    block_m = min(triton.next_power_of_2(M), max(1, TILE // block_n))
    return _Grid(M, N, walk.kind == "rows", block_m, block_n)


def _slope_table(weight_view: torch.Tensor, input: torch.Tensor, walk: MemoryWalk) -> tuple[torch.Tensor, MemoryWalk]:
    """The slopes the kernel indexes, in the compute dtype, and the walk they fold back with.

    A rows walk's rows run over ``walk.slope_dims``; leading dims there along which the slopes do
    not change (the batch, for NCHW per-channel) are dropped, and the kernel repeats the table
    (``row % len(table)``): per-channel NCHW indexes ``weight`` itself, no copy and no gather.
    """
    kept = _table_dims(tuple(input.shape), tuple(weight_view.shape), walk)
    weight = weight_view.detach()
    if weight.numel() == math.prod(input.shape[d] for d in kept) and list(kept) == sorted(kept):
        table = weight.reshape(-1)  # the weight itself (per-channel, shared): no gather, no launch
    else:
        pick = tuple(slice(None) if d in kept else 0 for d in range(input.ndim))
        picked = weight.expand(input.shape)[pick]  # dims left: kept, in logical order
        logical = sorted(kept)
        table = picked.permute([logical.index(d) for d in kept]).reshape(-1)
    compute = dtypes.compute_dtype(input.dtype, weight_view.dtype)
    return table.to(compute).contiguous(), dataclasses.replace(walk, slope_dims=kept)


@functools.lru_cache(maxsize=1024)
def _table_dims(shape: tuple[int, ...], slope_shape: tuple[int, ...], walk: MemoryWalk) -> tuple[int, ...]:
    dims = walk.slope_dims
    lead = 0
    if walk.kind == "rows":
        while lead < len(dims) and slope_shape[dims[lead]] == 1:
            lead += 1
    return dims[lead:]


def forward(
    input: torch.Tensor, weight_view: torch.Tensor, walk: MemoryWalk, *, out: torch.Tensor | None = None
) -> torch.Tensor:
    """PReLU forward along ``walk``; the output has ``input``'s strides and dtype. ``out=input``
    runs in place."""
    if out is None:
        out = torch.empty_like(input)
    if input.numel() == 0:
        return out
    table, _ = _slope_table(weight_view, input, walk)
    grid = _grid(input.numel(), walk)
    grid.launch(_forward_kernel, out, input, table, out, grid.M, grid.N // grid.row_align, table.numel())
    return out


def backward(
    grad: torch.Tensor,
    saved: torch.Tensor,
    weight_view: torch.Tensor,
    walk: MemoryWalk,
    *,
    from_output: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients for input (``saved``'s strides and dtype) and slope (``weight_view``'s shape and
    dtype), in one pass over ``grad`` and ``saved``, which must have the same strides.

    ``from_output=True``: ``saved`` is the output ``y`` of an in-place call (slopes > 0); ``y > 0``
    exactly where ``x > 0`` and ``x = y / a`` elsewhere, recovered per element before the sum (so
    each term is finite wherever ``g * x`` is). Where ``y`` overflowed (``-inf`` with a slope > 1)
    ``x`` is lost: ValueError, as on the other paths.
    """
    grad_input = torch.empty_like(saved)
    if saved.numel() == 0:
        return grad_input, torch.zeros_like(weight_view)
    table, folded_walk = _slope_table(weight_view, saved, walk)
    grid = _grid(saved.numel(), walk)
    if grid.per_row:
        partials = torch.empty((grid.M, grid.col_blocks), dtype=table.dtype, device=saved.device)
    else:
        partials = torch.empty((grid.row_blocks, grid.N), dtype=table.dtype, device=saved.device)
    n_units = grid.N // grid.row_align
    grid.launch(
        _backward_kernel,
        grad_input,
        *(grad, saved, table, grad_input, partials, grid.M, n_units, table.numel()),
        FROM_OUTPUT=from_output,
    )
    if grid.per_row:  # rows that share a table entry, then the column blocks: a fixed order
        slope_grad = partials.view(grid.M // table.numel(), table.numel(), grid.col_blocks).sum(dim=(0, 2))
    else:
        slope_grad = partials.sum(dim=0)
    slope_grad = fold_slope_gradient(slope_grad, saved.shape, tuple(weight_view.shape), folded_walk)
    if from_output and not bool(torch.isfinite(slope_grad).all()):  # only then can x have been lost
        native.check_recoverable(saved, weight_view)
    return grad_input, slope_grad.to(weight_view.dtype)
