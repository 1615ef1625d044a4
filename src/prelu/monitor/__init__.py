"""prelu.monitor: training diagnostics for rectifier networks.

Owns the hooks and windows (:class:`Monitor`, :mod:`prelu.monitor.hooks`), the streaming
statistics of one layer over one window (:class:`LayerStats`, :mod:`prelu.monitor.stats`) and
their export to CSV, JSON, TensorBoard and PNG (:mod:`prelu.monitor.export`). Which layers it
watches, their slopes and labels come from :mod:`prelu.nn.rectifiers`.

May import torch, numpy, :mod:`prelu.nn`, :mod:`prelu.ops` (the fused statistics kernel) and
:mod:`prelu._io`; matplotlib only inside the PNG export. Never :mod:`prelu.tools`,
:mod:`prelu.bench`, :mod:`prelu.lab`, :mod:`prelu.cli` or the root :mod:`prelu`.
"""

from prelu.monitor.hooks import Monitor
from prelu.monitor.stats import LayerStats

__all__ = ["LayerStats", "Monitor"]
