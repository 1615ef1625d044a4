"""One training run: the loop, the data order, the optimizer, the measurements, and DDP.

Owns :func:`train_run` (train one built model on one dataset for one seed and return its record),
the data order (:func:`epoch_batches`), the optimizer (:func:`make_optimizer`), the evaluation
pass (:func:`evaluate`) and the process group (:func:`distributed_from_env`). Imports
:mod:`prelu` (``param_groups``, ``Monitor``, ``slopes``) and :mod:`prelu.lab.config`.

Fairness: the order of the training samples depends only on the seed and the epoch (a
``torch.utils.data.DistributedSampler`` with ``seed=seed``: one ``torch.Generator`` seeded with
``seed + epoch`` per epoch), never on the activation, so every activation of a seed sees the same
batches. The sampler gives indices; the batches are gathered from the in-memory tensors directly
(a DataLoader's per-sample collate cost more than the step of a small MLP).

Distributed (``torchrun``): rank ``r`` of ``w`` takes every ``w``-th index of each global batch
of ``batch_size`` (``batch_size / w`` per rank); DDP averages the gradients, so a step equals the
single-process step on the same global batch (up to float rounding; BatchNorm's per-rank batch
statistics are the exception). The last partial batch is dropped in both modes, for the same reason.

Measured per epoch (epoch 0 = before training) on rank 0: train loss and accuracy (an evaluation
pass over at most :data:`MONITOR_SAMPLES` training samples, in eval mode), test loss and accuracy,
dead units and negative fraction (:class:`prelu.Monitor` during that pass: a unit is dead when its
input is <= 0 for every one of those samples), each PReLU layer's slopes, and the seconds the
training steps took.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import prelu
from prelu.lab.config import ConfigError, choice, positive_float, positive_int
from prelu.lab.datasets import Dataset
from prelu.monitor.stats import LayerStats
from prelu.nn.rectifiers import LEARNABLE_TYPES

OPTIMIZERS = ("sgd", "adam", "adamw")
DEVICES = ("cpu", "cuda")
MONITOR_SAMPLES = 5000
EVAL_BATCH = 1000


@dataclass(frozen=True)
class TrainSettings:
    """How every run of an experiment trains (the same for each activation and seed)."""

    epochs: int
    batch_size: int
    """The global batch: split evenly across processes under torchrun."""
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    slope_weight_decay: float = 0.0
    """He et al. apply none to the slopes (decay pulls them to 0, i.e. to ReLU)."""
    target_accuracy: float = 0.95
    device: str = "cpu"

    def validate(self) -> TrainSettings:
        """Self, or a :class:`ConfigError` naming the bad field."""
        positive_int("--epochs", self.epochs)
        positive_int("--batch-size", self.batch_size)
        choice("optimizer", self.optimizer, OPTIMIZERS)
        positive_float("--lr", self.lr)
        positive_float("--momentum", self.momentum, allow_zero=True)
        positive_float("--weight-decay", self.weight_decay, allow_zero=True)
        positive_float("--slope-weight-decay", self.slope_weight_decay, allow_zero=True)
        if not 0 < positive_float("--target", self.target_accuracy) <= 1:
            raise ConfigError(f"--target is an accuracy in (0, 1], got {self.target_accuracy!r}")
        choice("device", self.device, DEVICES)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device is available here (valid choices: cpu)")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def settings_from_config(config: Mapping[str, object], *, target_accuracy: float) -> TrainSettings:
    """The :class:`TrainSettings` of an experiment's merged config (compare and depth share it)."""
    return TrainSettings(
        epochs=config["epochs"],  # type: ignore[arg-type]
        batch_size=config["batch_size"],  # type: ignore[arg-type]
        optimizer=config["optimizer"],  # type: ignore[arg-type]
        lr=config["lr"],  # type: ignore[arg-type]
        momentum=config["momentum"],  # type: ignore[arg-type]
        weight_decay=config["weight_decay"],  # type: ignore[arg-type]
        slope_weight_decay=config["slope_weight_decay"],  # type: ignore[arg-type]
        target_accuracy=target_accuracy,
        device=config["device"],  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world_size: int = 1
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and prints (rank 0)."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def distributed_from_env(device: str = "cpu") -> Distributed:
    """Join the process group torchrun describes in the environment (gloo on CPU, nccl on CUDA);
    a single process when ``WORLD_SIZE`` is unset or 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(0, 1, device)
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), device)


def broadcast(value: object, distributed: Distributed) -> object:
    """Rank 0's ``value`` on every rank (itself when alone)."""
    if not distributed.active:
        return value
    import torch.distributed as dist

    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def epoch_batches(num_samples: int, batch_size: int, seed: int, epoch: int, distributed: Distributed) -> list[Tensor]:
    """This rank's index batches for ``epoch`` (0-based): the global order depends only on ``seed``
    and ``epoch``; every global batch is full (the remainder is dropped).

    >>> [b.tolist() for b in epoch_batches(10, 4, seed=0, epoch=0, distributed=Distributed())]
    [[4, 1, 7, 5], [3, 9, 0, 8]]
    """
    from torch.utils.data import DistributedSampler

    if batch_size % distributed.world_size:
        raise ConfigError(
            f"--batch-size {batch_size} must be divisible by the number of processes ({distributed.world_size})"
        )
    local = batch_size // distributed.world_size
    sampler = DistributedSampler(
        range(num_samples),  # type: ignore[arg-type]
        num_replicas=distributed.world_size,
        rank=distributed.rank,
        shuffle=True,
        seed=seed,
        drop_last=True,
    )
    sampler.set_epoch(epoch)
    indices = torch.tensor(list(sampler), dtype=torch.int64)
    full = num_samples // batch_size
    return [indices[i * local : (i + 1) * local] for i in range(full)]


def make_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """The optimizer of ``settings`` over :func:`prelu.param_groups` (slopes: ``slope_weight_decay``)."""
    groups = prelu.param_groups(
        model, weight_decay=settings.weight_decay, slope_weight_decay=settings.slope_weight_decay
    )
    if settings.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=settings.lr, momentum=settings.momentum)
    if settings.optimizer == "adam":
        return torch.optim.Adam(groups, lr=settings.lr)
    return torch.optim.AdamW(groups, lr=settings.lr)


def fingerprint(tensors: list[Tensor]) -> str:
    """A short sha256 of the tensors' values (to show that two runs started alike)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def shared_parameters(model: nn.Module) -> dict[str, Tensor]:
    """The state of ``model`` without its slopes: what every activation of a seed starts from."""
    slope_ids = {id(p) for p in prelu.slope_parameters(model)}
    slope_names = {name for name, p in model.named_parameters() if id(p) in slope_ids}
    return {name: value for name, value in model.state_dict().items() if name not in slope_names}


def evaluate(model: nn.Module, x: Tensor, y: Tensor, monitor: prelu.Monitor | None = None) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` in eval mode on ``x``, ``y``; a ``monitor`` watches the pass."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    try:
        if monitor is not None:
            monitor.attach()
        with torch.no_grad():
            for start in range(0, len(y), EVAL_BATCH):
                logits = model(x[start : start + EVAL_BATCH])
                target = y[start : start + EVAL_BATCH]
                total_loss += float(F.cross_entropy(logits, target, reduction="sum"))
                correct += int((logits.argmax(1) == target).sum())
    finally:
        if monitor is not None:
            monitor.detach()
        model.train(was_training)
    return total_loss / max(len(y), 1), correct / max(len(y), 1)


def _layer_record(stats: LayerStats, final: bool) -> dict:
    record = {
        "name": stats.name,
        "kind": stats.kind,
        "units": stats.units,
        "dead_units": stats.dead_units,
        "dead_fraction": stats.dead_fraction,
        "negative_fraction": stats.negative_fraction,
        "slope_mean": stats.slope_mean,
    }
    if final:
        record.update(
            slope_min=stats.slope_min,
            slope_max=stats.slope_max,
            slopes=stats.slopes if stats.learnable else None,
            learnable=stats.learnable,
            hist_counts=stats.hist_counts,
            hist_range=list(stats.hist_range),
            underflow=stats.underflow,
            overflow=stats.overflow,
        )
    return record


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def train_run(
    model: nn.Module,
    data: Dataset,
    settings: TrainSettings,
    seed: int,
    *,
    distributed: Distributed | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train ``model`` (built and initialised by the caller) on ``data`` for ``settings.epochs``.

    Returns the run's record (JSON-ready): ``curve`` (one row per epoch, 0 = before training),
    ``final`` (the last row's numbers plus ``epochs_to_target`` and ``seconds_per_epoch``, the
    median over epochs so the first epoch's one-time costs do not count), ``layers`` (per
    rectifier at the end: dead units, slopes and how far they moved, input histogram),
    ``init_fingerprint`` (the shared layers' initial values) and ``order_fingerprint`` (the
    batches this rank saw). Training stops early, with ``diverged`` set, when the loss becomes
    NaN or infinite.

    A stalled deep net (Xavier, 30 layers) carries signals and gradients of ~1e-40: subnormal
    floats, which made its epochs 5-10x slower on this CPU; they are flushed to zero while training
    (``torch.set_flush_denormal``, switched off again afterwards).
    """
    flushing = torch.set_flush_denormal(True)
    try:
        return _Run(model, data, settings, seed, distributed or Distributed(device=settings.device)).train(on_epoch)
    finally:
        if flushing:
            torch.set_flush_denormal(False)


class _Run:
    """The state of one run: data on the device, the (DDP-wrapped) model, optimizer and monitor."""

    def __init__(self, model: nn.Module, data: Dataset, settings: TrainSettings, seed: int, distributed: Distributed):
        self.settings, self.seed, self.distributed = settings, seed, distributed
        self.device = torch.device(distributed.device)
        self.model = model.to(self.device)
        self.x_train, self.y_train = data.x_train.to(self.device), data.y_train.to(self.device)
        self.x_test, self.y_test = data.x_test.to(self.device), data.y_test.to(self.device)
        self.x_watch, self.y_watch = self.x_train[:MONITOR_SAMPLES], self.y_train[:MONITOR_SAMPLES]
        self.init_fingerprint = fingerprint(list(shared_parameters(self.model).values()))
        self.initial_slopes = {
            name: module.weight.detach().to("cpu", torch.float64).flatten().clone()
            for name, module in self.model.named_modules()
            if isinstance(module, LEARNABLE_TYPES)
        }
        self.trained: nn.Module = self.model
        if distributed.active:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.trained = DistributedDataParallel(self.model, device_ids=device_ids)
        self.optimizer = make_optimizer(self.model, settings)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a user's model without rectifier modules: the records say so
            self.monitor = prelu.Monitor(self.model)

    def measure(self, epoch: int, seconds: float | None, running_loss: float | None) -> tuple[dict, list[LayerStats]]:
        """One curve row (and the layers' stats) after ``epoch``."""
        train_loss, train_acc = evaluate(self.model, self.x_watch, self.y_watch, self.monitor)
        test_loss, test_acc = evaluate(self.model, self.x_test, self.y_test)
        layers = self.monitor.epoch_end(epoch)
        units = sum(layer.units for layer in layers)
        dead = sum(layer.dead_units for layer in layers)
        negative = [layer.negative_fraction for layer in layers if layer.negative_fraction is not None]
        row = {
            "epoch": epoch,
            "train_loss": _finite(train_loss),
            "train_acc": train_acc,
            "test_loss": _finite(test_loss),
            "test_acc": test_acc,
            "running_loss": None if running_loss is None else _finite(running_loss),
            "dead_fraction": dead / units if units else None,
            "negative_fraction": sum(negative) / len(negative) if negative else None,
            "seconds": seconds,
            "slopes": {layer.name: layer.slope_mean for layer in layers if layer.learnable},
        }
        return row, layers

    def _global_mean(self, losses: list[Tensor]) -> float:
        """The mean training loss of the epoch over every process's batches."""
        if not losses:
            return float("nan")
        mean = torch.stack(losses).mean()
        if self.distributed.active:
            import torch.distributed as dist

            dist.all_reduce(mean)
            mean /= self.distributed.world_size
        return float(mean)

    def train(self, on_epoch: Callable[[int, dict], None] | None) -> dict:
        settings, device = self.settings, self.device
        order = hashlib.sha256()
        row, layers = self.measure(0, None, None)
        curve = [row]
        if on_epoch is not None:
            on_epoch(0, row)
        diverged = None
        self.trained.train()
        for epoch in range(1, settings.epochs + 1):
            batches = epoch_batches(len(self.y_train), settings.batch_size, self.seed, epoch - 1, self.distributed)
            losses = []
            started = time.perf_counter()
            for indices in batches:
                order.update(indices.numpy().tobytes())
                indices = indices.to(device)
                loss = F.cross_entropy(self.trained(self.x_train[indices]), self.y_train[indices])
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                losses.append(loss.detach())
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - started
            running = self._global_mean(losses)
            row, layers = self.measure(epoch, seconds, running)
            curve.append(row)
            if on_epoch is not None:
                on_epoch(epoch, row)
            if not math.isfinite(running):
                diverged = epoch
                break

        reached = [r["epoch"] for r in curve[1:] if r["test_acc"] >= settings.target_accuracy]
        times = sorted(r["seconds"] for r in curve[1:])
        last = curve[-1]
        final = {
            "test_acc": last["test_acc"],
            "test_loss": last["test_loss"],
            "train_loss": last["train_loss"],
            "train_acc": last["train_acc"],
            "initial_train_loss": curve[0]["train_loss"],
            "dead_fraction": last["dead_fraction"],
            "negative_fraction": last["negative_fraction"],
            "epochs_to_target": reached[0] if reached else None,
            "seconds_per_epoch": times[len(times) // 2] if times else None,
        }
        return {
            "seed": self.seed,
            "epochs": settings.epochs,
            "world_size": self.distributed.world_size,
            "diverged": diverged,
            "init_fingerprint": self.init_fingerprint,
            "order_fingerprint": order.hexdigest()[:16],
            "final": final,
            "curve": curve,
            "layers": [_with_change(_layer_record(layer, final=True), self.initial_slopes) for layer in layers],
        }


def _with_change(record: dict, initial: dict[str, Tensor]) -> dict:
    """Add ``slope_change``: the mean |final - initial| over the layer's slopes (per unit, not of the mean)."""
    start, end = initial.get(record["name"]), record.get("slopes")
    if start is not None and end is not None and len(end) == start.numel():
        record["slope_change"] = float((torch.tensor(end, dtype=torch.float64) - start).abs().mean())
    return record
