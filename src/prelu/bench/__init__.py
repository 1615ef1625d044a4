"""prelu.bench: the benchmarks behind ``prelu bench`` and its modes.

One job per module: :mod:`~prelu.bench.cases` (what is timed), :mod:`~prelu.bench.providers` (who
runs it), :mod:`~prelu.bench.timing` (the one timing harness: warm-up, repeats, contenders in
turns, page faults, contention, CUDA events), :mod:`~prelu.bench.allocator` (glibc's freed-memory
setting), :mod:`~prelu.bench.first_call`, :mod:`~prelu.bench.results` (typed measurements and the
long-format CSV), :mod:`~prelu.bench.ratios`, :mod:`~prelu.bench.report`, :mod:`~prelu.bench.plot`,
:mod:`~prelu.bench.output` (the ``--out`` folder rules). The modes, each with its flags:
:mod:`~prelu.bench.run`, :mod:`~prelu.bench.memory`, :mod:`~prelu.bench.merge`,
:mod:`~prelu.bench.monitor_overhead`; :mod:`~prelu.bench.commands` is their table.

May import everything below it (:mod:`prelu.tools`, :mod:`prelu.monitor`, :mod:`prelu.nn`,
:mod:`prelu.ops`, :mod:`prelu._io`) and the root :mod:`prelu`; never :mod:`prelu.lab`. Nothing but
:mod:`prelu.cli` imports it.
"""
