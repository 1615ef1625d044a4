"""Mixed precision: the one rule for which dtypes a call takes, computes in and returns.

Owns that rule and nothing else; imports only torch. Every path (the fused CPU kernels, the
Triton kernels, the native torch path, the aten path tracers see) asks it, so they agree.

The rule, for ``input`` of dtype ``X`` and slopes of dtype ``W``:

- ``X`` is float16, bfloat16, float32 or float64; ``W`` is float32 or ``X`` itself. So the
  slopes stay float32 under ``torch.autocast`` (the module's parameter is never cast), and a model
  cast as a whole (``model.half()``) keeps working. Every other pair is refused with a
  ``TypeError``: a float64 weight with a half input (which precision did the caller mean?), a
  half weight with a float32 input (the slopes would be rounded below the activations'
  precision), float16 against bfloat16 (neither holds the other).
- **compute dtype**: float64 when ``X`` is float64, float32 otherwise. Products ``x * a`` and
  ``g * a`` are taken there and rounded once to the output.
- **output dtype** (``y`` and the input gradient): ``X``.
- **slope gradient**: the sum of ``g * x`` is accumulated in the compute dtype (float32 at
  least) and returned in ``W``.

>>> import torch
>>> compute_dtype(torch.bfloat16, torch.float32)
torch.float32
>>> compute_dtype(torch.float64, torch.float32)
torch.float64
>>> check(torch.bfloat16, torch.float64)  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
TypeError: input is torch.bfloat16 but weight is torch.float64; the slopes must be float32 or the input's dtype ...
"""

from __future__ import annotations

import torch

ACTIVATION_DTYPES: tuple[torch.dtype, ...] = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check(input_dtype: torch.dtype, weight_dtype: torch.dtype) -> None:
    """TypeError unless ``input_dtype`` is a floating dtype and ``weight_dtype`` is float32 or the
    same as ``input_dtype`` (see the module docstring for why the other pairs are refused)."""
    for name, dtype in (("input", input_dtype), ("weight", weight_dtype)):
        if dtype not in ACTIVATION_DTYPES:
            raise TypeError(
                f"{name} must be a floating-point tensor (float16, bfloat16, float32, float64), got {dtype}"
            )
    if weight_dtype not in (torch.float32, input_dtype):
        raise TypeError(
            f"input is {input_dtype} but weight is {weight_dtype}; the slopes must be float32 or the input's "
            f"dtype ({input_dtype}): cast the weight with .to(torch.float32) or .to({input_dtype})"
        )


def compute_dtype(input_dtype: torch.dtype, weight_dtype: torch.dtype) -> torch.dtype:
    """The dtype the products and the slope-gradient sum are computed in: float32 at least."""
    if torch.float64 in (input_dtype, weight_dtype):
        return torch.float64
    return torch.float32
