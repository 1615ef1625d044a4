"""The numbers the design's targets name, derived from measurements: speed-ups, ratios to the
activations prelu replaces, and the share of the bandwidth roofline.

Roofline (definition). A fused PReLU moves 2 tensor-sized passes of bytes forward (read x, write
y) and 5 for forward+backward (forward's 2, then backward reads x and g and writes grad_x; the
slope gradient is a reduction that adds no pass). A clone moves 2. So::

    roofline_ms(mode) = measured clone ms * passes(mode) / 2,   passes(fwd) = 2, passes(full) = 5

where the clone is the one timed in the same (case, mode) block, beside the providers it is
compared with (so a neighbour's burst or the allocator's state hits both alike), and "% of
roofline" is ``roofline_ms / prelu_ms``: 100 % means prelu moves its bytes as fast as torch
copies memory. Imports :mod:`prelu.bench.results`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from prelu.bench.results import Measurement, values_by_key

# Tensor-sized passes over memory (see the module docstring); a clone makes 2.
PASSES: dict[str, int] = {"fwd": 2, "full": 5}
CLONE_PASSES = 2


def roofline_ms(clone_ms: float, mode: str) -> float:
    """The time a fused op moving its bytes at clone speed would take.

    >>> roofline_ms(2.0, "full")
    5.0
    """
    return clone_ms * PASSES[mode] / CLONE_PASSES


@dataclasses.dataclass(frozen=True)
class CaseRatios:
    """Per case, the ratios the design's targets name (None where a provider was not run).

    - ``speedup_vs_torch_prelu_fwd`` / ``_full``: torch_prelu ms / prelu ms (target full >= 5);
    - ``vs_leaky_relu_full``: prelu ms / leaky_relu ms (target <= 1.0);
    - ``vs_relu_fwd``: prelu fwd ms / relu fwd ms (target <= 1.1);
    - ``roofline_pct_fwd`` / ``_full``: 100 * roofline ms / prelu ms (target full >= 85);
    - ``native_over_fused_full``: prelu_native ms / prelu ms;
    - ``compile_over_prelu_full``: compile_torch_prelu ms / prelu ms.
    """

    shape: str
    layout: str
    slopes: str
    dtype: str
    speedup_vs_torch_prelu_fwd: float | None
    speedup_vs_torch_prelu_full: float | None
    vs_leaky_relu_full: float | None
    vs_relu_fwd: float | None
    roofline_pct_fwd: float | None
    roofline_pct_full: float | None
    native_over_fused_full: float | None
    compile_over_prelu_full: float | None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def derive_ratios(measurements: Iterable[Measurement]) -> list[CaseRatios]:
    """One :class:`CaseRatios` per case, from the median-ms measurements, in case order."""
    measurements = list(measurements)
    ms = values_by_key(measurements)
    cases: dict[tuple[str, str, str], str] = {}
    for m in measurements:
        if m.metric == "ms":
            cases.setdefault(m.case_key, m.dtype)
    ratios = []
    for key, dtype in cases.items():

        def get(provider: str, mode: str, key: tuple[str, str, str] = key) -> float | None:
            return ms.get((*key, provider, mode))

        roofline_fwd, roofline_full = _ratio(get("roofline", "fwd"), 0.01), _ratio(get("roofline", "full"), 0.01)
        ratios.append(
            CaseRatios(
                *key,
                dtype=dtype,
                speedup_vs_torch_prelu_fwd=_ratio(get("torch_prelu", "fwd"), get("prelu", "fwd")),
                speedup_vs_torch_prelu_full=_ratio(get("torch_prelu", "full"), get("prelu", "full")),
                vs_leaky_relu_full=_ratio(get("prelu", "full"), get("leaky_relu", "full")),
                vs_relu_fwd=_ratio(get("prelu", "fwd"), get("relu", "fwd")),
                roofline_pct_fwd=_ratio(roofline_fwd, get("prelu", "fwd")),
                roofline_pct_full=_ratio(roofline_full, get("prelu", "full")),
                native_over_fused_full=_ratio(get("prelu_native", "full"), get("prelu", "full")),
                compile_over_prelu_full=_ratio(get("compile_torch_prelu", "full"), get("prelu", "full")),
            )
        )
    return ratios
