"""prelu.bench: the benchmarks behind ``prelu bench``: cases, providers, timing, results, report,
the memory benchmark.

May import everything below it (:mod:`prelu.tools`, :mod:`prelu.monitor`, :mod:`prelu.nn`,
:mod:`prelu.ops`, :mod:`prelu._io`); nothing but :mod:`prelu.cli` imports it.
"""
