"""``prelu depth``: a plain deep net with Xavier vs Kaiming init, ReLU and PReLU (He et al., Fig. 3).

Owns the experiment's settings (defaults and validation of
:class:`~prelu.lab.settings.DepthSettings`), the plain net (``layers`` Linear
layers: ``layers - 1`` hidden ones of ``width`` units, each followed by the rectifier, then the
classifier; no normalisation, no shortcut), the two initialisations, the signal measurement at
init and the :class:`Depth` experiment's hooks; its tables and report are in
:mod:`prelu.lab.depth_report`. Imports the lab's other modules and :mod:`prelu`
(``init_model_``, the activation registry, the rectifier modules).

- ``xavier``: ``torch.nn.init.xavier_normal_`` (Var[w] = 2 / (fan_in + fan_out)), biases 0 —
  the variance of a ReLU net's signal halves at every layer.
- ``kaiming``: :func:`prelu.init_model_`: std = gain(a) / sqrt(fan_in) with ``a`` the slope of the
  rectifier after each layer (0 for ReLU, PReLU's initial 0.25), gain 1 for the classifier.

A run *trains* when its final train loss is below 0.9 x its loss before training
(:data:`prelu.lab.claims.TRAINS_RATIO`); the report shows every loss curve.

>>> resolve({}).layers, resolve({}).inits
(30, ('xavier', 'kaiming'))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

import prelu
from prelu.lab import datasets, depth_report, models, train
from prelu.lab.claims import depth_claims, trains
from prelu.lab.config import ConfigError, choice, positive_int
from prelu.lab.experiment import Experiment, Record, RunSpec
from prelu.lab.runs import RunFolder
from prelu.lab.settings import DepthSettings
from prelu.lab.summary import summarize
from prelu.nn.rectifiers import CONVERTIBLE_TYPES

DATASETS = ("digits", "mnist1d")
INITS = ("xavier", "kaiming")
DEFAULTS: dict[str, object] = {
    "dataset": "digits",
    "limit": None,
    "layers": 30,
    "width": 128,
    "activations": ["relu", "prelu"],
    "inits": ["xavier", "kaiming"],
    "seeds": 2,
    "epochs": 30,
    "batch_size": 64,
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "slope_weight_decay": 0.0,
    "device": "cpu",
}
SIGNAL_SAMPLES = 500
MAX_SEEDS = 1000


def build(settings: DepthSettings, data: datasets.Dataset, init: str, activation: str, seed: int) -> nn.Module:
    """The plain net for (``init``, ``activation``, ``seed``), initialised."""
    torch.manual_seed(seed)
    features = 1
    for size in data.input_shape:
        features *= size
    model = models.MLP(
        models.activation_factory(activation), features, data.num_classes, settings.width, settings.layers - 1
    )
    if init == "kaiming":
        prelu.init_model_(model)
    else:
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)
    return model


def input_stds(model: nn.Module, x: torch.Tensor) -> list[float]:
    """The standard deviation of each rectifier's input on ``x`` (one forward pass, eval mode), input side first."""
    found: list[float] = []
    rectifiers = [m for m in model.modules() if isinstance(m, CONVERTIBLE_TYPES)]
    handles = [m.register_forward_pre_hook(lambda _, args: found.append(float(args[0].std()))) for m in rectifiers]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train()
    return found


def validate(settings: DepthSettings, world_size: int = 1) -> tuple[datasets.Dataset, train.TrainSettings]:
    """Check every setting and load the data, writing nothing; :class:`ConfigError` otherwise."""
    choice("dataset", settings.dataset, DATASETS)
    datasets.check(settings.dataset)
    positive_int("--layers", settings.layers, maximum=models.MAX_DEPTH)
    positive_int("--width", settings.width)
    positive_int("--seeds", settings.seeds, maximum=MAX_SEEDS)
    if settings.layers < 2:
        raise ConfigError(f"--layers must be >= 2 (hidden layers plus the classifier), got {settings.layers}")
    if settings.limit is not None:
        positive_int("--limit", settings.limit)
    for key, values, valid in (
        ("activations", settings.activations, prelu.activation_names()),
        ("inits", settings.inits, INITS),
    ):
        if not values:
            raise ConfigError(f"--{key} needs at least one name; valid choices: {', '.join(valid)}")
        for value in values:
            choice(key[:-1], value, valid)
        if len(set(values)) != len(values):
            raise ConfigError(f"--{key} lists a name twice: {', '.join(values)}")
    training = settings.training().validate()
    if training.batch_size % world_size:
        raise ConfigError(f"--batch-size {training.batch_size} must be divisible by the {world_size} processes")
    data = datasets.load(settings.dataset, limit=settings.limit)
    if training.batch_size > len(data.y_train):
        raise ConfigError(f"--batch-size {training.batch_size} exceeds the {len(data.y_train)} training samples")
    models.check_size("mlp", data.input_shape, data.num_classes, width=settings.width, depth=settings.layers - 1)
    return data, training


class Depth(Experiment[DepthSettings]):
    """``prelu depth`` as an :class:`~prelu.lab.experiment.Experiment`: one group per ``init/activation``."""

    kind = "depth"
    settings_type = DepthSettings
    defaults = DEFAULTS
    run_set = ("activations", "inits", "seeds")

    @classmethod
    def default_name(cls, settings: DepthSettings) -> str:
        """``depth-<dataset>-<layers>``."""
        return f"depth-{settings.dataset}-{settings.layers}"

    def __init__(self, settings: DepthSettings, distributed: train.Distributed) -> None:
        super().__init__(settings, distributed)
        self.data, self.training = validate(settings, distributed.world_size)

    def plan(self) -> list[RunSpec]:
        return [RunSpec(key, seed) for seed in range(self.settings.seeds) for key in self.settings.groups()]

    def train(self, spec: RunSpec, on_epoch: Callable[[int, dict[str, Any]], None]) -> Record:
        init, activation = spec.group.split("/", 1)
        model = build(self.settings, self.data, init, activation, spec.seed)
        signal = input_stds(model, self.data.x_train[:SIGNAL_SAMPLES])
        record = train.train_run(
            model, self.data, self.training, spec.seed, distributed=self.distributed, on_epoch=on_epoch
        )
        return {"init": init, "activation": activation, "init_input_std": signal, **record}

    def groups(self, records: Mapping[str, Record]) -> dict[str, list[Record]]:
        """The finished runs of each ``init/activation``."""
        return {key: [r for r in records.values() if r["group"] == key] for key in self.settings.groups()}

    def summarize(self, records: Mapping[str, Record]) -> dict[str, Any]:
        return {key: summarize(group) for key, group in self.groups(records).items()}

    def claims(self, records: Mapping[str, Record], summary: Mapping[str, Any]) -> list[dict[str, str]]:
        return depth_claims(self.groups(records), summary, self.settings.activations)

    def run_entry(self, record: Record) -> dict[str, Any]:
        keys = ("id", "init", "activation", "seed", "final", "init_input_std", "diverged", "divergence")
        entry = {key: record.get(key) for key in keys}
        entry["trains"] = trains(record)
        return entry

    def report(self, results: Mapping[str, Any], records: Mapping[str, Record]) -> str:
        return depth_report.page(self.settings, self.data.description, results, self.groups(records))

    def print_results(self, results: Mapping[str, Any], records: Mapping[str, Record], folder: RunFolder) -> None:
        depth_report.print_results(self.settings, results, self.groups(records), folder)


resolve = Depth.resolve
run = Depth.run
