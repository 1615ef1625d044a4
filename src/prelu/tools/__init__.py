"""prelu.tools: model tools, each working on a whole model.

Owns the model walk (:mod:`~prelu.tools.walk`), :func:`convert` (:mod:`~prelu.tools.convert`, with
its plan and report in :mod:`~prelu.tools.convert_plan` and :mod:`~prelu.tools.convert_report`),
the activation name registry (:mod:`~prelu.tools.registry`; convert builds every replacement
through it), :func:`freeze` (:mod:`~prelu.tools.freeze`), the optimizer helpers: parameter groups,
bounds, tied slopes (:mod:`~prelu.tools.optim`), slope tables and ``prelu slopes``
(:mod:`~prelu.tools.slope_table`), and the named-row base of their reports
(:mod:`~prelu.tools.named_rows`). Which modules are rectifiers comes from
:mod:`prelu.nn.rectifiers`, never from a list kept here.

May import torch, :mod:`prelu.nn`, :mod:`prelu.ops` and :mod:`prelu._io`; :mod:`prelu.init` imports
the walk from here. Never :mod:`prelu.monitor`, :mod:`prelu.bench`, :mod:`prelu.lab`,
:mod:`prelu.cli` or the root :mod:`prelu`.
"""
