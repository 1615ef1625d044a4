"""prelu.monitor: training diagnostics. Hooks (:class:`Monitor`), streaming statistics
(:mod:`prelu.monitor.stats`) and export to CSV, JSON, TensorBoard and PNG (:mod:`prelu.monitor.export`).

May import :mod:`prelu.nn`, :mod:`prelu.ops` and :mod:`prelu._io`; never :mod:`prelu.tools`,
:mod:`prelu.bench`, :mod:`prelu.lab` or :mod:`prelu.cli`.
"""

from prelu.monitor.hooks import Monitor
from prelu.monitor.stats import LayerStats

__all__ = ["LayerStats", "Monitor"]
