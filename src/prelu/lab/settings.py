"""The typed settings of the lab's experiments: one frozen dataclass per experiment.

Owns :class:`CompareSettings` and :class:`DepthSettings` (what config.json holds, field for
field), their shared :class:`Training` fields, and how those become the
:class:`~prelu.lab.train.TrainSettings` of each run; imports :mod:`prelu.lab.train`. The
defaults, merging and validation live with each experiment (:mod:`prelu.lab.compare`,
:mod:`prelu.lab.depth`); :func:`prelu.lab.config.typed` checks each value's type when a settings
object is made.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from prelu.lab.train import TrainSettings


@dataclass(frozen=True)
class Training:
    """The settings every experiment trains its runs with (the fields of its flags)."""

    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    slope_weight_decay: float
    device: str

    def training(self, target_accuracy: float = 1.0) -> TrainSettings:
        """How each run trains (``target_accuracy``: what "epochs to target" counts up to)."""
        # The fields of Training are named as TrainSettings names them.
        shared = {field.name: getattr(self, field.name) for field in fields(Training)}
        return TrainSettings(**shared, target_accuracy=target_accuracy)


@dataclass(frozen=True)
class CompareSettings(Training):
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
    target: float
    """The accuracy that "epochs to target" counts up to."""
    init: str


@dataclass(frozen=True)
class DepthSettings(Training):
    """Every setting of one ``prelu depth`` (the flags, resolved; written to config.json)."""

    dataset: str
    limit: int | None
    layers: int
    """Linear layers, the classifier included."""
    width: int
    activations: tuple[str, ...]
    inits: tuple[str, ...]
    seeds: int

    def groups(self) -> list[str]:
        """``init/activation`` for every pair, activation-major."""
        return [f"{init}/{activation}" for activation in self.activations for init in self.inits]
