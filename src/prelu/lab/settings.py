"""The typed settings of the lab's experiments: one frozen dataclass per experiment.

Owns :class:`CompareSettings` and :class:`DepthSettings` (what config.json holds, field for
field) and how each becomes the :class:`~prelu.lab.train.TrainSettings` of its runs; imports
:mod:`prelu.lab.train`. The defaults, merging and validation live with each experiment
(:mod:`prelu.lab.compare`, :mod:`prelu.lab.depth`); :func:`prelu.lab.config.typed` checks each
value's type when a settings object is made.
"""

from __future__ import annotations

from dataclasses import dataclass

from prelu.lab.train import TrainSettings


@dataclass(frozen=True)
class CompareSettings:
    """Every setting of one ``prelu compare`` (the flags, resolved; written to config.json)."""

    dataset: str
    data_dir: str | None
    limit: int | None
    model: str
    """``mlp``, ``cnn``, ``resnet`` or a user's ``pkg.module:fn``."""
    width: int | None
    depth: int | None
    activations: tuple[str, ...]
    seeds: int
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    slope_weight_decay: float
    target: float
    """The accuracy that "epochs to target" counts up to."""
    init: str
    device: str

    def training(self) -> TrainSettings:
        """How each run trains."""
        return TrainSettings(
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            slope_weight_decay=self.slope_weight_decay,
            target_accuracy=self.target,
            device=self.device,
        )


@dataclass(frozen=True)
class DepthSettings:
    """Every setting of one ``prelu depth`` (the flags, resolved; written to config.json)."""

    dataset: str
    limit: int | None
    layers: int
    """Linear layers, the classifier included."""
    width: int
    activations: tuple[str, ...]
    inits: tuple[str, ...]
    seeds: int
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    slope_weight_decay: float
    device: str

    def training(self) -> TrainSettings:
        """How each run trains (depth reports losses: no accuracy target)."""
        return TrainSettings(
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            slope_weight_decay=self.slope_weight_decay,
            target_accuracy=1.0,
            device=self.device,
        )

    def groups(self) -> list[str]:
        """``init/activation`` for every pair, activation-major."""
        return [f"{init}/{activation}" for activation in self.activations for init in self.inits]
