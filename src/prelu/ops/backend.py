"""Backend choice: the fused kernels (C++ on CPU, Triton on CUDA) or the native torch path,
visible and overridable.

Owns the rule that picks a backend for a call, the ``PRELU_BACKEND`` environment variable, the
:func:`use_backend` context manager, :func:`backend_for`, and :data:`fused_kernels`, the one
object :mod:`prelu.ops.autograd` calls, which hands each call to the kernels chosen for it.
Imports :mod:`prelu.ops.kernels`, :mod:`prelu.ops.dtypes` and :mod:`prelu.ops.layout`; triton is
imported on first use only (a CUDA tensor under ``auto``, or ``triton`` forced).

Rule for ``auto`` (the default), for an input whose memory can be walked as one flat array (any
permutation of dims: contiguous, channels-last, ... ; see :mod:`prelu.ops.layout`):

- CPU float32/float64, once the C++ extension is built (on the first such call; see
  :mod:`prelu.ops.kernels.extension`): ``fused``, at every size. In plain eager a PReLU call is
  then one C++ autograd op (:func:`cpu_autograd_op`): a (64, 128) training step costs less there
  than through torch's own ``F.prelu``, and no parallel region opens below torch's grain size.
  Where the extension cannot be built (no compiler), one warning says so and ``native`` serves;
- CUDA float16/bfloat16/float32/float64 with at least :data:`TRITON_MIN_NUMEL` elements, when
  triton imports: ``triton``;
- everything else: ``native`` (torch's own aten kernels).

Leaky ReLU under ``auto`` on CPU always runs torch's own ``leaky_relu`` (:func:`leaky_relu_walk`):
it is already one fused aten op each way, and our kernels could only add a Python layer.

Forcing ``fused`` or ``triton`` runs it for small tensors too (``triton`` on CPU tensors when
``TRITON_INTERPRET=1``: how the Triton kernels are tested without a GPU); for an input it cannot
take it raises an error that says why, rather than copying the input to fit (an incoming gradient
in another layout is copied, see :func:`gradient_in_layout`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Literal

import torch

from prelu.ops import dtypes
from prelu.ops.kernels import cpu
from prelu.ops.layout import MemoryWalk, memory_order, plan_memory_walk, slope_view_shape

cpu_kernels = cpu  # the kernels behind the name 'fused'

Backend = Literal["auto", "fused", "triton", "native"]
BACKENDS: tuple[str, ...] = ("auto", "fused", "triton", "native")
ENVIRONMENT_VARIABLE = "PRELU_BACKEND"
# Below this a Triton launch (tens of us of Python) costs more than aten's kernel on a GPU.
TRITON_MIN_NUMEL = 1 << 16

_triton: list[ModuleType | str] = []  # [the kernels module] or [why it could not be imported]


def triton_kernels() -> ModuleType | None:
    """The Triton kernels module, imported on first call; None when triton cannot be imported
    (:func:`triton_unavailable` says why)."""
    if not _triton:
        try:
            from prelu.ops.kernels import triton_prelu
        except Exception as error:  # ImportError, or a broken install failing at import: run native
            _triton.append(f"triton could not be imported ({type(error).__name__}: {error})")
        else:
            _triton.append(triton_prelu)
    loaded = _triton[0]
    return loaded if isinstance(loaded, ModuleType) else None


def triton_unavailable() -> str:
    """Why the Triton kernels cannot be imported ('' if they can)."""
    triton_kernels()
    loaded = _triton[0]
    return loaded if isinstance(loaded, str) else ""


FORCED: contextvars.ContextVar[str | None] = contextvars.ContextVar("prelu_backend", default=None)
"""The backend :func:`use_backend` forces in this context, else None."""


def _check_name(name: str) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown prelu backend {name!r}; valid: {', '.join(BACKENDS)}")
    return name


# The mapping os.environ wraps (CPython's os._Environ) and PRELU_BACKEND's key in it, taken once.
_ENVIRON = os.environ
_RAW_ENVIRON: Any = getattr(_ENVIRON, "_data", None)  # bytes -> bytes on POSIX, str -> str on Windows
_RAW_KEY: Any = getattr(_ENVIRON, "encodekey", lambda key: key)(ENVIRONMENT_VARIABLE)


def _environment_value() -> str | None:
    """``$PRELU_BACKEND``, read on every call. ``os.environ.get`` encodes the key and decodes the
    value each time (~1 us, a tenth of a small call's budget), so the mapping it wraps is read
    directly while ``os.environ`` is still that object, and through ``get`` otherwise."""
    environ = os.environ
    if environ is not _ENVIRON or _RAW_ENVIRON is None:
        return environ.get(ENVIRONMENT_VARIABLE)
    raw = _RAW_ENVIRON.get(_RAW_KEY)
    return None if raw is None else str(environ.decodevalue(raw))


def requested_backend() -> str:
    """The backend asked for: :func:`use_backend` if active, else ``$PRELU_BACKEND``, else auto."""
    forced = FORCED.get()
    if forced is not None:
        return forced
    value = _environment_value()
    if value is None:
        return "auto"
    value = value.strip().lower() or "auto"
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
    token = FORCED.set(_check_name(name))
    try:
        yield
    finally:
        FORCED.reset(token)


def fused_refusal(input: torch.Tensor, walk: MemoryWalk | None) -> str:
    """Why the fused CPU kernels cannot take this input ('' if they can)."""
    if not cpu_kernels.supports(input):
        return f"the fused kernels take float32/float64 CPU tensors; got {input.dtype} on {input.device}" + (
            " (use_backend('triton') runs CUDA tensors)" if input.device.type == "cuda" else ""
        )
    refusal = _walk_refusal(input, walk)
    if not refusal and not cpu_kernels.available():
        return f"the C++ kernels could not be built ({cpu_kernels.unavailable_reason()})"
    return refusal


def triton_refusal(input: torch.Tensor, walk: MemoryWalk | None) -> str:
    """Why the Triton kernels cannot take this input ('' if they can)."""
    kernels = triton_kernels()
    if kernels is None:
        return triton_unavailable()
    if not kernels.supports(input):
        where = (
            "CPU tensors only under TRITON_INTERPRET=1, set before prelu first runs a Triton kernel"
            if input.device.type == "cpu"
            else "CUDA tensors (and CPU tensors under TRITON_INTERPRET=1)"
        )
        return f"the Triton kernels take float16/bfloat16/float32/float64 {where}; got {input.dtype} on {input.device}"
    if walk is not None and walk.length >= 2**31:  # column indices are 32-bit in the kernels
        return f"the Triton kernels take rows of fewer than 2**31 elements; this walk has {walk.length}"
    return _walk_refusal(input, walk)


def _walk_refusal(input: torch.Tensor, walk: MemoryWalk | None) -> str:
    if walk is None:
        return (
            "the input's memory cannot be walked as one flat array without a copy "
            f"(shape {tuple(input.shape)}, strides {input.stride()}), or its element-wise slope "
            "pattern is too irregular"
        )
    return ""


def _runs_triton(requested: str, input: torch.Tensor) -> bool:
    """Whether the Triton family (rather than the CPU one) is the candidate for this call."""
    return requested == "triton" or (requested == "auto" and input.device.type == "cuda")


def choose(input: torch.Tensor, slope_shape: tuple[int, ...]) -> MemoryWalk | None:
    """The walk to run fused (C++ or Triton, see :data:`fused_kernels`), or None for the native
    path; raises if ``fused`` or ``triton`` is forced but impossible. Under ``auto``, CUDA inputs
    below :data:`TRITON_MIN_NUMEL` run native: a kernel launch costs more than the work there."""
    requested = requested_backend()
    if requested == "native" or input.numel() == 0:
        return None
    if _runs_triton(requested, input):
        if requested == "auto" and input.numel() < TRITON_MIN_NUMEL:
            return None
        kernels = triton_kernels()
        walk = plan_memory_walk(input, slope_shape) if kernels is not None and kernels.supports(input) else None
        refusal = triton_refusal(input, walk)
    else:
        walk = plan_memory_walk(input, slope_shape) if cpu_kernels.supports(input) else None
        if walk is not None and cpu_kernels.available():
            return walk
        refusal = fused_refusal(input, walk)
    if refusal:
        if requested != "auto":
            raise RuntimeError(f"PRELU_BACKEND/use_backend forced {requested!r}, but {refusal}")
        return None
    return walk


_CPU_OP_DTYPES = (torch.float32, torch.float64)


def cpu_autograd_op(input: torch.Tensor, weight: torch.Tensor, view_shape: tuple[int, ...]) -> bool:
    """Whether a plain-eager PReLU call runs the C++ autograd ops (``torch.ops.prelu_cpu.prelu``
    and ``prelu_``: forward, autograd node and fused backward in C++).

    Yes for a CPU float32/float64 input with slopes of its dtype or float32 (the caller casts
    those to the input's dtype first), of any size, once the C++ extension is built, under
    ``auto`` or ``fused``. Under ``auto`` an input no walk fits runs torch's aten kernels inside
    those ops (as ``native`` would); forced ``fused`` refuses it here with :func:`choose`'s error."""
    if not (
        input.is_cpu
        and input.dtype in _CPU_OP_DTYPES
        and (weight.dtype is input.dtype or weight.dtype is torch.float32)
    ):
        return False
    requested = requested_backend()
    if requested == "auto":
        return cpu_kernels.available()
    if requested == "fused":
        return choose(input, view_shape) is not None  # raises when no walk fits, as every forced call does
    return False


def leaky_relu_walk(input: torch.Tensor) -> MemoryWalk | None:
    """The walk to run Leaky ReLU fused, or None for torch's own ``leaky_relu``: always None on
    CPU under ``auto`` (see the module docstring); otherwise :func:`choose` with one shared slope."""
    if input.is_cpu and requested_backend() == "auto":
        return None
    return choose(input, (1,) * input.ndim)


class _FusedKernels:
    """What :mod:`prelu.ops.autograd` calls once :func:`choose` gave a walk: the Triton or the CPU
    kernels, by the same rule. The CPU kernels compute in the input's dtype, so slopes of another
    dtype (float32 slopes with a float64 input, see :mod:`prelu.ops.dtypes`) are cast first."""

    @staticmethod
    def _kernels(input: torch.Tensor, weight_view: torch.Tensor) -> tuple[ModuleType, torch.Tensor]:
        if _runs_triton(requested_backend(), input):
            kernels = triton_kernels()
            assert kernels is not None, "choose() gave a Triton walk without the Triton kernels"
            return kernels, weight_view
        compute = dtypes.compute_dtype(input.dtype, weight_view.dtype)
        return cpu_kernels, weight_view if weight_view.dtype == compute else weight_view.to(compute)

    def forward(
        self, input: torch.Tensor, weight_view: torch.Tensor, walk: MemoryWalk, *, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        kernels, weight_view = self._kernels(input, weight_view)
        result: torch.Tensor = kernels.forward(input, weight_view, walk, out=out)
        return result

    def backward(
        self,
        grad: torch.Tensor,
        saved: torch.Tensor,
        weight_view: torch.Tensor,
        walk: MemoryWalk | None,
        *,
        from_output: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Optional only because callers narrow the walk through another variable.
        assert walk is not None, "the fused backward needs the walk choose() gave"
        kernels, cast = self._kernels(saved, weight_view)
        grad_input, grad_weight = kernels.backward(grad, saved, cast, walk, from_output=from_output)
        return grad_input, grad_weight.to(weight_view.dtype)


fused_kernels = _FusedKernels()


def gradient_in_layout(grad: torch.Tensor, saved: torch.Tensor, walk: MemoryWalk) -> torch.Tensor | None:
    """The incoming gradient laid out as ``saved`` for the fused backward, or None: run native.

    The fused kernels walk both tensors in one order. A gradient in another layout (expanded from
    ``.sum()``, channels-last against contiguous, ...) runs native under ``auto``; when ``fused`` is
    forced it is copied into ``saved``'s layout, so forcing works for every gradient.
    """
    if grad.shape == saved.shape and memory_order(grad) == walk.order:
        return grad
    if requested_backend() in ("fused", "triton"):
        return torch.empty_like(saved).copy_(grad)
    return None


def backend_for(input: torch.Tensor, weight: torch.Tensor | None = None, *, channel_dim: int = 1) -> str:
    """The backend a :func:`prelu.prelu` call with these tensors would run: 'fused' (C++, CPU),
    'triton' (CUDA) or 'native'.

    ``weight=None`` asks about one shared slope. Raises what the call would raise when ``fused``
    is forced but impossible. Zero-size inputs run no kernel and report 'native'.
    (:func:`prelu.leaky_relu` runs torch's own kernel on CPU under ``auto``; see the module doc.)

    >>> import torch, prelu
    >>> prelu.backend_for(torch.randn(8, 64, 16, 16), torch.full((64,), 0.25))
    'fused'
    >>> prelu.backend_for(torch.randn(2, 3, 8, 8))  # any size: one C++ op, no parallel region below torch's grain
    'fused'
    >>> prelu.backend_for(torch.randn(2, 3, 8, 8, dtype=torch.float16))
    'native'
    """
    slope_shape = (1,) * input.ndim if weight is None else slope_view_shape(input.shape, weight.shape, channel_dim)
    if choose(input, slope_shape) is None:
        return "native"
    return "triton" if _runs_triton(requested_backend(), input) else "fused"
