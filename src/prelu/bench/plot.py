"""The PNG of ``prelu bench run``: median ms per provider per case, forward and forward+backward.

Owns the figure; returns PNG bytes so the caller writes them atomically. Imports matplotlib (the
``bench`` extra) only when called, and :mod:`prelu.bench.results`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

from prelu.bench.providers import MODES, PROVIDER_HEADERS, PROVIDERS
from prelu.bench.results import Measurement, case_keys, values_by_key


def plot_png(measurements: Sequence[Measurement], title: str = "") -> bytes | None:
    """A bar plot of median ms per provider per case (fwd and fwd+bwd panels) as PNG bytes.

    None when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ms = values_by_key(measurements)
    cases = case_keys(measurements)
    present = {key[3] for key in ms}
    providers = [p for p in (*PROVIDERS, "roofline") if p in present]
    figure, axes = plt.subplots(2, 1, figsize=(max(8.0, 1.6 * len(cases) + 3), 8), squeeze=False)
    width = 0.8 / max(1, len(providers))
    for axis, mode in zip(axes[:, 0], MODES, strict=True):
        for index, provider in enumerate(providers):
            values = [ms.get((*key, provider, mode), math.nan) for key in cases]
            positions = [case + (index - (len(providers) - 1) / 2) * width for case in range(len(cases))]
            axis.bar(positions, values, width, label=PROVIDER_HEADERS[provider])
        axis.set_xticks(range(len(cases)))
        axis.set_xticklabels([f"{shape}\n{layout}\n{slopes}" for shape, layout, slopes in cases], fontsize=8)
        axis.set_ylabel("median ms (lower is better)")
        axis.set_title("forward" if mode == "fwd" else "forward + backward")
        axis.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=8, ncol=min(4, len(providers)))
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()
