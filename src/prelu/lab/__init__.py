"""The lab: fair experiments behind ``prelu compare`` and ``prelu depth``.

Sits on top of the library (it may import anything in :mod:`prelu`; nothing in :mod:`prelu`
imports it). Needs the lab extras: scikit-learn (digits), mnist1d (MNIST-1D), matplotlib (the
report) and rich (progress and tables); torchvision only for MNIST / Fashion-MNIST / CIFAR-10
folders. Its modules, input side first:

- :mod:`prelu.lab.config`: :class:`ConfigError` (bad flags: exit code 2, nothing written).
- :mod:`prelu.lab.datasets`, :mod:`prelu.lab.models`: data in memory, built-in and user models.
- :mod:`prelu.lab.train`: one run (data order, optimizer, measurements, DDP).
- :mod:`prelu.lab.runs`, :mod:`prelu.lab.experiment`: the run folder, atomic writes, resume.
- :mod:`prelu.lab.summary`, :mod:`prelu.lab.claims`, :mod:`prelu.lab.report`,
  :mod:`prelu.lab.console`: mean ± std, claims with verdicts, report.html, terminal output.
- :mod:`prelu.lab.compare`, :mod:`prelu.lab.depth`: the two experiments.
"""

from prelu.lab.config import ConfigError

__all__ = ["ConfigError"]
