"""``prelu compare``: ReLU vs Leaky ReLU vs PReLU, trained alike, over several seeds.

Owns the experiment's settings (defaults, ``--resume`` merging and validation of
:class:`~prelu.lab.settings.CompareSettings`), how a run's model is built and initialised (:class:`Builder`) and the
:class:`Compare` experiment's hooks; its tables and report are in :mod:`prelu.lab.compare_report`.
Imports the lab's other modules and :mod:`prelu` (``init_model_``, the activation registry).

Fairness, for each seed: every activation's model starts from the same weights in every layer
that is not an activation (the ReLU model is built with ``torch.manual_seed(seed)``, Kaiming-
initialised by :func:`prelu.init_model_` when ``init="kaiming"``, and its state is loaded into
each activation's model; only the slopes differ), and every activation sees the same batches in
the same order (:func:`prelu.lab.train.epoch_batches`). Each run records fingerprints of both.

>>> sorted(DEFAULTS)[:5]
['activations', 'batch_size', 'data_dir', 'dataset', 'depth']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

import prelu
from prelu.lab import compare_report, datasets, models, train
from prelu.lab.claims import compare_claims
from prelu.lab.config import ConfigError, choice, positive_int
from prelu.lab.experiment import Experiment, Record, RunSpec
from prelu.lab.runs import RunFolder
from prelu.lab.settings import CompareSettings
from prelu.lab.summary import summarize

ACTIVATIONS = ("relu", "leaky_relu", "prelu_shared", "prelu")
INITS = ("kaiming", "torch")
DEFAULTS: dict[str, object] = {
    "dataset": "digits",
    "data_dir": None,
    "limit": None,
    "model": "mlp",
    "width": None,
    "depth": None,
    "activations": list(ACTIVATIONS),
    "seeds": 3,
    "epochs": None,
    "batch_size": 64,
    "optimizer": "sgd",
    "lr": 0.05,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "slope_weight_decay": 0.0,
    "target": None,
    "init": "kaiming",
    "device": "cpu",
}
# Per dataset when --epochs is not given: enough for the default MLP to pass the dataset's target
# and settle (measured), small enough that the default `prelu compare` takes under 2 minutes.
DEFAULT_EPOCHS = {"digits": 30, "mnist1d": 30, "xor": 30, "spirals": 60, "checkerboard": 60}
FOLDER_EPOCHS = 10
MAX_SEEDS = 1000


class Builder:
    """Builds the model of one (activation, seed), with the shared layers initialised per seed."""

    def __init__(self, settings: CompareSettings, data: datasets.Dataset) -> None:
        self.settings = settings
        self.data = data
        self.example = data.x_train[:2]
        spec = settings.model
        self.user = models.user_builder(spec) if ":" in spec else None
        if self.user is None:
            models.check(spec, data.input_shape)

    def _build(self, activation: str) -> nn.Module:
        if self.user is not None:
            return models.build_user(self.user, activation, self.data.input_shape, self.data.num_classes, self.example)
        return models.build(
            self.settings.model,
            models.activation_factory(activation),
            self.data.input_shape,
            self.data.num_classes,
            width=self.settings.width,
            depth=self.settings.depth,
        )

    def __call__(self, activation: str, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        reference = self._build("relu")
        if self.settings.init == "kaiming":
            prelu.init_model_(reference, example_input=self.example)
        shared = train.shared_parameters(reference)
        torch.manual_seed(seed)
        model = self._build(activation)
        state = model.state_dict()
        for key, value in shared.items():
            if key in state and state[key].shape == value.shape:
                state[key] = value.clone()
        model.load_state_dict(state)
        return model


def validate(settings: CompareSettings, world_size: int = 1) -> tuple[datasets.Dataset, Builder, train.TrainSettings]:
    """Check every setting, load the data and build each activation's model once (one forward pass),
    writing nothing; a :class:`ConfigError` says what is wrong."""
    datasets.check(settings.dataset, settings.data_dir)
    activations = settings.activations
    if not activations:
        raise ConfigError(
            f"--activations needs at least one name; valid choices: {', '.join(prelu.activation_names())}"
        )
    for name in activations:
        choice("activation", name, prelu.activation_names())
    if len(set(activations)) != len(activations):
        raise ConfigError(f"--activations lists a name twice: {', '.join(activations)}")
    positive_int("--seeds", settings.seeds, maximum=MAX_SEEDS)
    choice("init", settings.init, INITS)
    for key, value in (("width", settings.width), ("depth", settings.depth), ("limit", settings.limit)):
        if value is not None:
            positive_int(f"--{key}", value, maximum=models.MAX_DEPTH if key == "depth" else None)
    training = settings.training(settings.target).validate()
    if training.batch_size % world_size:
        raise ConfigError(f"--batch-size {training.batch_size} must be divisible by the {world_size} processes")
    model = settings.model
    if ":" not in model:
        choice("model", model, [*models.MODELS, "pkg.module:fn"])
    data = datasets.load(settings.dataset, data_dir=settings.data_dir, limit=settings.limit)
    if training.batch_size > len(data.y_train):
        raise ConfigError(f"--batch-size {training.batch_size} exceeds the {len(data.y_train)} training samples")
    if ":" not in model:
        models.check_size(model, data.input_shape, data.num_classes, width=settings.width, depth=settings.depth)
    builder = Builder(settings, data)
    for name in activations:
        try:
            with torch.no_grad():
                builder(name, 0).eval()(data.x_train[:2])
        except ConfigError:
            raise
        except Exception as error:  # the model does not fit the data: say which
            raise ConfigError(f"model {model!r} with {name!r} fails on {settings.dataset} samples: {error}") from None
    return data, builder, training


class Compare(Experiment[CompareSettings]):
    """``prelu compare`` as an :class:`~prelu.lab.experiment.Experiment`: one group per activation."""

    kind = "compare"
    settings_type = CompareSettings
    defaults = DEFAULTS
    run_set = ("activations", "seeds")

    @classmethod
    def complete(cls, config: dict[str, Any]) -> dict[str, Any]:
        """``epochs`` and ``target`` per dataset when not given.

        >>> resolve({"epochs": 2}).epochs, resolve({}).epochs, resolve({"dataset": "xor"}).target
        (2, 30, 0.95)
        """
        dataset = config["dataset"]
        known = isinstance(dataset, str)
        if config["epochs"] is None:
            config["epochs"] = DEFAULT_EPOCHS.get(dataset, FOLDER_EPOCHS) if known else FOLDER_EPOCHS
        if config["target"] is None:
            config["target"] = datasets.DEFAULT_TARGET.get(dataset, 0.9) if known else 0.9
        return config

    @classmethod
    def default_name(cls, settings: CompareSettings) -> str:
        """``compare-<dataset>-<model>`` (a user model's ``pkg.module:fn`` with ``-`` for ``.`` and ``:``)."""
        return "compare-" + re.sub(r"[^A-Za-z0-9_-]+", "-", f"{settings.dataset}-{settings.model}")

    def __init__(self, settings: CompareSettings, distributed: train.Distributed) -> None:
        super().__init__(settings, distributed)
        self.data, self.builder, self.training = validate(settings, distributed.world_size)

    def plan(self) -> list[RunSpec]:
        return [RunSpec(name, seed) for seed in range(self.settings.seeds) for name in self.settings.activations]

    def train(self, spec: RunSpec, on_epoch: Callable[[int, dict[str, Any]], None]) -> Record:
        model = self.builder(spec.group, spec.seed)
        record = train.train_run(
            model, self.data, self.training, spec.seed, distributed=self.distributed, on_epoch=on_epoch
        )
        return {"activation": spec.group, **record}

    def summarize(self, records: Mapping[str, Record]) -> dict[str, Any]:
        return {
            name: summarize([r for r in records.values() if r["group"] == name]) for name in self.settings.activations
        }

    def claims(self, records: Mapping[str, Record], summary: Mapping[str, Any]) -> list[dict[str, str]]:
        return compare_claims(summary, target=self.training.target_accuracy, epochs=self.training.epochs)

    def run_entry(self, record: Record) -> dict[str, Any]:
        keys = ("id", "activation", "seed", "final", "init_fingerprint", "order_fingerprint", "diverged", "divergence")
        return {key: record.get(key) for key in keys}

    def report(self, results: Mapping[str, Any], records: Mapping[str, Record]) -> str:
        return compare_report.page(self.settings, self.data.description, results, records)

    def print_results(self, results: Mapping[str, Any], records: Mapping[str, Record], folder: RunFolder) -> None:
        compare_report.print_results(results, folder)


resolve = Compare.resolve
run = Compare.run
