"""prelu.tools: model tools. The model walk, :func:`convert` (through the registry), the
activation registry, optimizer helpers (parameter groups, bounds, tied slopes) and slope tables.

May import :mod:`prelu.nn`, :mod:`prelu.ops` and :mod:`prelu._io`; never :mod:`prelu.monitor`,
:mod:`prelu.bench`, :mod:`prelu.lab` or :mod:`prelu.cli`.
"""
