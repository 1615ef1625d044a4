"""``prelu dying``: dead units against the learning rate, for ReLU, Leaky ReLU and PReLU.

Owns the sweep's settings, its runs (one per activation x learning rate x seed, built as
``prelu compare`` builds them: per seed, every activation starts from the same weights and sees
the same batches), the sweep's summary and its decision of the dead-units claim. Imports the lab's
other modules; its figures and page are in :mod:`prelu.lab.dying_report`. It is an
:class:`~prelu.lab.experiment.Experiment` (:class:`Dying`), run by the lab's driver.

A large learning rate knocks ReLU units into the region where their input is <= 0 for every
sample; they then get no gradient and stay dead. The seed text claims PReLU cuts dead units "from
~30 % to < 5 %". The sweep decides it at every learning rate where ReLU's mean dead fraction
(over the seeds that did not diverge) is at least :data:`prelu.lab.claims.DEAD_BASELINE`, with the
paired rule of :mod:`prelu.lab.paired`; where no learning rate gets ReLU there, it says so
(inconclusive). A run whose loss becomes NaN or infinite is *diverged*: an outcome, counted per
group, and left out of the dead-unit and accuracy numbers.

>>> settings = resolve({})
>>> settings.lrs, settings.lr
((0.001, 0.003, 0.01, 0.03, 0.1, 0.3), 0.001)
>>> group_key("relu", 0.3)
'relu@0.3'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prelu.lab import claims as claims_module
from prelu.lab import console, datasets, dying_report, train
from prelu.lab.compare import Builder
from prelu.lab.config import ConfigError, as_dict, choice, positive_float, positive_int, typed
from prelu.lab.experiment import Experiment, Record
from prelu.lab.loop import RunSpec
from prelu.lab.runs import RunFolder
from prelu.lab.settings import CompareSettings, Training
from prelu.lab.summary import summarize

ACTIVATIONS = ("relu", "leaky_relu", "prelu")
DATASETS = ("digits", "mnist-5k")
DEFAULTS: dict[str, object] = {
    "dataset": "digits",
    "limit": None,
    "model": "mlp",
    "width": None,
    "depth": None,
    "activations": list(ACTIVATIONS),
    "lrs": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3],
    "lr": None,  # Training's field: always the first of lrs (set by Dying.complete; the CLI refuses --lr)
    "seeds": 3,
    "epochs": 10,
    "batch_size": 64,
    "optimizer": "adam",
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "slope_weight_decay": 0.0,
    "init": "kaiming",
    "device": "cpu",
}
RUN_SET = ("activations", "lrs", "seeds")
# Adam by default: with SGD (momentum 0.9) on digits the MLP diverges from lr 0.3 on before any
# ReLU unit dies (at most 4 % dead, measured); Adam's per-weight steps push biases far enough to
# kill ReLU units well inside the stable range (37 % dead at lr 0.03, measured, 1 seed).


def group_key(activation: str, lr: float) -> str:
    """The group of one (activation, learning rate): ``relu@0.3``."""
    return f"{activation}@{lr:g}"


def default_name(config: Mapping[str, Any]) -> str:
    return f"dying-{config['dataset']}-{config['model']}"


def validate(config: Mapping[str, Any]) -> tuple[datasets.Dataset, Builder, train.TrainSettings]:
    """Check every setting and load the data, writing nothing; :class:`ConfigError` otherwise."""
    choice("dataset", str(config["dataset"]), DATASETS)
    datasets.check(str(config["dataset"]))
    choice("model", str(config["model"]), ("mlp", "cnn"))
    activations, lrs = config["activations"], config["lrs"]
    if not activations:
        raise ConfigError(f"--activations needs at least one name; valid choices: {', '.join(ACTIVATIONS)}")
    for name in activations:
        choice("activation", name, ACTIVATIONS)
    if "relu" not in activations:
        raise ConfigError("--activations must include relu: the sweep looks for where ReLU's units die")
    if not lrs:
        raise ConfigError("--lrs needs at least one learning rate")
    for lr in lrs:
        positive_float("--lrs", lr)
    if len(set(lrs)) != len(lrs):
        raise ConfigError(f"--lrs lists a learning rate twice: {lrs}")
    positive_int("--seeds", config["seeds"])
    for key in ("width", "depth", "limit"):
        if config[key] is not None:
            positive_int(f"--{key}", config[key])
    # The model and its training as compare builds them (typed, checked field by field), at the first rate.
    shared = ["epochs", "batch_size", "optimizer", "momentum", "weight_decay", "slope_weight_decay", "device"]
    shared += ["dataset", "limit", "model", "width", "depth", "seeds", "init"]
    values = {key: config[key] for key in shared}
    values.update(lr=lrs[0], data_dir=None, activations=tuple(activations), target=1.0)
    model_settings = typed(CompareSettings, values, source="prelu dying's settings")
    settings = model_settings.training(target_accuracy=1.0).validate()
    data = datasets.load(str(config["dataset"]), limit=config["limit"])
    if settings.batch_size > len(data.y_train):
        raise ConfigError(f"--batch-size {settings.batch_size} exceeds the {len(data.y_train)} training samples")
    return data, Builder(model_settings, data), settings


def summarize_sweep(
    records: Mapping[str, dict[str, Any]], activations: list[str], lrs: list[float]
) -> dict[str, dict[str, Any]]:
    """Per group: :func:`prelu.lab.summary.summarize` (``runs`` counts every run, ``diverged`` those that
    diverged, whose numbers are missing), plus ``activation``, ``lr`` and ``diverged_rate``."""
    out = {}
    for activation in activations:
        for lr in lrs:
            key = group_key(activation, lr)
            summary = summarize([r for r in records.values() if r["group"] == key])
            runs, diverged = summary["runs"], summary.get("diverged", 0)
            rate = diverged / runs if runs else None
            summary.update(activation=activation, lr=lr, diverged=diverged, diverged_rate=rate)
            out[key] = summary
    return out


def sweep_claims(
    summaries: Mapping[str, dict[str, Any]], activations: list[str], lrs: list[float]
) -> list[dict[str, Any]]:
    """The dead-units claim decided across the sweep (see the module docstring)."""
    baseline = claims_module.DEAD_BASELINE
    per_lr, tested = [], []
    for lr in lrs:
        relu = summaries.get(group_key("relu", lr), {})
        if relu.get("runs") and relu["dead_fraction"]["mean"] is not None and relu["dead_fraction"]["mean"] >= baseline:
            at_lr = {name: summaries[group_key(name, lr)] for name in activations if group_key(name, lr) in summaries}
            row = claims_module.dead_units_claim(at_lr, command=f"prelu dying (lr {lr:g})")
            per_lr.append(f"lr {lr:g}: {row['number']} -> {row['verdict_text']}")
            tested.append(row["verdict"])
    claim = "PReLU cuts dead units from ~30% to <5%"
    source = "project seed text; tested by prelu dying (learning-rate sweep)"
    rule = (
        f"at every learning rate where ReLU's mean dead fraction (runs that did not diverge) is >= {baseline:.0%}: "
        f"agree iff the 95 % t-interval of PReLU's dead fraction over seeds lies wholly below "
        f"{claims_module.DEAD_CEILING:.0%}, disagree iff wholly at or above it; overall disagree if any such "
        "learning rate disagrees, agree if all agree, else inconclusive; inconclusive when no learning rate gets "
        f"ReLU to {baseline:.0%}"
    )
    if not tested:
        worst = max(
            (
                (s["dead_fraction"]["mean"], s["lr"])
                for key, s in summaries.items()
                if s.get("activation") == "relu" and s.get("runs") and s["dead_fraction"]["mean"] is not None
            ),
            default=None,
        )
        number = (
            f"no learning rate got ReLU to {baseline:.0%} dead: at most {100 * worst[0]:.1f} % (lr {worst[1]:g})"
            if worst
            else "no ReLU run finished without diverging"
        )
        return [_claim_row(claim, source, number, rule, claims_module.INCONCLUSIVE)]
    if claims_module.DISAGREE in tested:
        verdict = claims_module.DISAGREE
    elif all(v == claims_module.AGREE for v in tested):
        verdict = claims_module.AGREE
    else:
        verdict = claims_module.INCONCLUSIVE
    return [_claim_row(claim, source, "; ".join(per_lr), rule, verdict)]


def _claim_row(claim: str, source: str, number: str, rule: str, verdict: str) -> dict[str, Any]:
    return {
        "claim": claim,
        "source": source,
        "number": number,
        "rule": rule,
        "verdict": verdict,
        "verdict_text": verdict,
    }


@dataclass(frozen=True)
class DyingSettings(Training):
    """Every setting of one ``prelu dying`` (the flags, resolved; written to config.json). ``lr`` (from
    :class:`Training`) is the first of ``lrs``: each run trains at its own rate from ``lrs``."""

    dataset: str
    limit: int | None
    model: str
    width: int | None
    depth: int | None
    activations: tuple[str, ...]
    lrs: tuple[float, ...]
    seeds: int
    init: str


class Dying(Experiment[DyingSettings]):
    """``prelu dying`` as an :class:`~prelu.lab.experiment.Experiment`: one group per ``activation@lr``."""

    kind = "dying"
    settings_type = DyingSettings
    defaults = DEFAULTS
    run_set = RUN_SET

    @classmethod
    def complete(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Rates as floats; ``lr`` is the first of them (the CLI refuses ``--lr``)."""
        lrs = config["lrs"]
        if isinstance(lrs, (list, tuple)):
            config["lrs"] = [float(lr) if isinstance(lr, (int, float)) else lr for lr in lrs]
            config["lr"] = config["lrs"][0] if config["lrs"] else 0.0
        return config

    @classmethod
    def default_name(cls, settings: DyingSettings) -> str:
        """``dying-<dataset>-<model>``."""
        return default_name(as_dict(settings))

    def __init__(self, settings: DyingSettings, distributed: train.Distributed) -> None:
        super().__init__(settings, distributed)
        if distributed.active:
            raise ConfigError("prelu dying runs in one process; start it without torchrun")
        self.config = as_dict(settings)
        self.data, self.builder, self.training = validate(self.config)

    def plan(self) -> list[RunSpec]:
        lrs, activations = self.settings.lrs, self.settings.activations
        return [
            RunSpec(group_key(a, lr), seed) for seed in range(self.settings.seeds) for lr in lrs for a in activations
        ]

    def train(self, spec: RunSpec, on_epoch: Callable[[int, dict[str, Any]], None]) -> Record:
        activation, lr = spec.group.split("@")
        model = self.builder(activation, spec.seed)
        settings = dataclasses.replace(self.training, lr=float(lr))
        record = train.train_run(model, self.data, settings, spec.seed, on_epoch=on_epoch)
        return {"activation": activation, "lr": float(lr), **record}

    def summarize(self, records: Mapping[str, Record]) -> dict[str, Any]:
        return summarize_sweep(records, list(self.settings.activations), list(self.settings.lrs))

    def claims(self, records: Mapping[str, Record], summary: Mapping[str, Any]) -> list[dict[str, str]]:
        return sweep_claims(summary, list(self.settings.activations), list(self.settings.lrs))

    def run_entry(self, record: Record) -> dict[str, Any]:
        keys = ("id", "activation", "lr", "seed", "final", "diverged", "divergence")
        return {key: record.get(key) for key in keys}

    def report(self, results: Mapping[str, Any], records: Mapping[str, Record]) -> str:
        return dying_report.page(self.config, self.data.description, results)

    def print_results(self, results: Mapping[str, Any], records: Mapping[str, Record], folder: RunFolder) -> None:
        config = self.config
        headers, rows = dying_report.table_rows(results["summary"])
        console.print_table(
            f"prelu dying: {config['dataset']}, {config['model']}, {config['epochs']} epochs, mean ± std over the "
            "seeds that did not diverge",
            headers,
            rows,
            right=[False, True, True, True, True, True, True],
        )
        console.print_claims_and_files(results["claims"], folder.path, folder.results_path, folder.report_path)


resolve = Dying.resolve
run = Dying.run
