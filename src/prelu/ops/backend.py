"""Backend choice: the fused C++ kernels or the native torch path, visible and overridable.

Owns the rule that picks a backend for a call, the ``PRELU_BACKEND`` environment variable, the
:func:`use_backend` context manager and :func:`backend_for`. Imports :mod:`prelu.ops.kernels` and
:mod:`prelu.ops.layout`.

Rule for ``auto`` (the default): ``fused`` when the tensor is on the CPU in float32 or float64,
has at least :data:`FUSED_MIN_NUMEL` elements, its memory can be walked as one flat array (any
permutation of dims: contiguous, channels-last, ... ; see :mod:`prelu.ops.layout`), and the C++
kernels are built (on the first such call; see :mod:`prelu.ops.kernels.extension`); ``native``
otherwise. Where they cannot be built (no compiler), one warning says so and ``native`` (torch's
own aten kernels, on the same thread pool) serves every call. Forcing ``fused`` runs it for small
tensors too; for an input it cannot take it raises an error that says why, rather than copying
the input to fit (an incoming gradient in another layout is copied, see :func:`gradient_in_layout`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from typing import Literal

import torch

from prelu.ops.kernels import cpu
from prelu.ops.layout import MemoryWalk, memory_order, plan_memory_walk, slope_view_shape

fused_kernels = cpu  # the kernels behind the name 'fused' (what autograd.py calls)

Backend = Literal["auto", "fused", "native"]
BACKENDS: tuple[str, ...] = ("auto", "fused", "native")
ENVIRONMENT_VARIABLE = "PRELU_BACKEND"
# torch's own grain size for parallel CPU loops: below it, auto runs the native path.
FUSED_MIN_NUMEL = 32768

_forced: contextvars.ContextVar[str | None] = contextvars.ContextVar("prelu_backend", default=None)


def _check_name(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown prelu backend {name!r}; valid: {', '.join(BACKENDS)}")
    return name


def requested_backend() -> str:
    """The backend asked for: :func:`use_backend` if active, else ``$PRELU_BACKEND``, else auto."""
    forced = _forced.get()
    if forced is not None:
        return forced
    value = os.environ.get(ENVIRONMENT_VARIABLE, "auto").strip().lower() or "auto"
    if value not in BACKENDS:
        raise ValueError(f"{ENVIRONMENT_VARIABLE}={value!r} is not a prelu backend; valid: {', '.join(BACKENDS)}")
    return value


@contextlib.contextmanager
def use_backend(name: Backend) -> Iterator[None]:
    """Force a backend inside a ``with`` block (this thread/context only).

    >>> import torch, prelu
    >>> with prelu.use_backend("native"):
    ...     prelu.backend_for(torch.ones(3))
    'native'
    """
    token = _forced.set(_check_name(name))
    try:
        yield
    finally:
        _forced.reset(token)


def fused_refusal(input: torch.Tensor, walk: MemoryWalk | None) -> str:
    """Why the fused kernels cannot take this input ('' if they can)."""
    if not fused_kernels.supports(input):
        return f"the fused kernels take float32/float64 CPU tensors; got {input.dtype} on {input.device}"
    if walk is None:
        return (
            "the input's memory cannot be walked as one flat array without a copy "
            f"(shape {tuple(input.shape)}, strides {input.stride()}), or its element-wise slope "
            "pattern is too irregular"
        )
    if not fused_kernels.available():
        return f"the C++ kernels could not be built ({fused_kernels.unavailable_reason()})"
    return ""


def choose(input: torch.Tensor, slope_shape: tuple[int, ...]) -> MemoryWalk | None:
    """The walk to run fused, or None for the native path; raises if ``fused`` is forced but
    impossible. Under ``auto``, inputs below :data:`FUSED_MIN_NUMEL` run native: a parallel region
    costs more than the work there, and far more on an oversubscribed machine."""
    requested = requested_backend()
    if requested == "native" or input.numel() == 0:
        return None
    if requested == "auto" and input.numel() < FUSED_MIN_NUMEL:
        return None
    walk = plan_memory_walk(input, slope_shape) if fused_kernels.supports(input) else None
    if walk is not None and fused_kernels.available():
        return walk
    refusal = fused_refusal(input, walk)
    if refusal:
        if requested == "fused":
            raise RuntimeError(f"PRELU_BACKEND/use_backend forced 'fused', but {refusal}")
        return None
    return walk


def gradient_in_layout(grad: torch.Tensor, saved: torch.Tensor, walk: MemoryWalk) -> torch.Tensor | None:
    """The incoming gradient laid out as ``saved`` for the fused backward, or None: run native.

    The fused kernels walk both tensors in one order. A gradient in another layout (expanded from
    ``.sum()``, channels-last against contiguous, ...) runs native under ``auto``; when ``fused`` is
    forced it is copied into ``saved``'s layout, so forcing works for every gradient.
    """
    if grad.shape == saved.shape and memory_order(grad) == walk.order:
        return grad
    if requested_backend() == "fused":
        return torch.empty_like(saved).copy_(grad)
    return None


def backend_for(input: torch.Tensor, weight: torch.Tensor | None = None, *, channel_dim: int = 1) -> str:
    """The backend a :func:`prelu.prelu` call with these tensors would run: 'fused' or 'native'.

    ``weight=None`` asks about one shared slope (as :func:`prelu.leaky_relu` uses). Raises what
    the call would raise when ``fused`` is forced but impossible. Zero-size inputs run no kernel
    and report 'native'.

    >>> import torch, prelu
    >>> prelu.backend_for(torch.randn(8, 64, 16, 16), torch.full((64,), 0.25))
    'fused'
    >>> prelu.backend_for(torch.randn(2, 3, 8, 8))  # small: a parallel region costs more than the work
    'native'
    >>> prelu.backend_for(torch.randn(2, 3, 8, 8, dtype=torch.float16))
    'native'
    """
    slope_shape = (1,) * input.ndim if weight is None else slope_view_shape(input.shape, weight.shape, channel_dim)
    return "native" if choose(input, slope_shape) is None else "fused"
