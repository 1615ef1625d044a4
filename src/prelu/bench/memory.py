"""The memory benchmark behind ``prelu bench --memory``: what autograd keeps for a training step.

Owns the conv-BN-activation stack, the saved-bytes count and the step timing; imports torch and
:mod:`prelu` (top of the dependency chain, beside :mod:`prelu.bench` and :mod:`prelu.cli`).

Saved bytes are counted with ``torch.autograd.graph.saved_tensors_hooks``: every tensor autograd
saves during the forward pass is recorded by its storage, and each storage counts once (the same
activation saved by an activation and by the next convolution is one buffer in memory). Parameters
count too, so the numbers are what a training step really holds.

Expected per block with C channels (derivation, checked by the measurement): the convolution saves
its input, BatchNorm saves its input (the convolution's output), and the activation saves

- ``nn.ReLU(inplace=True)``: its output, which *is* the next convolution's input: nothing extra;
- ``nn.PReLU`` / ``prelu.PReLU``: its input (BatchNorm's output): one more full-size buffer;
- ``prelu.PReLU(inplace=True)``: its output, like ReLU, plus C slopes.

So the in-place PReLU stack should keep about a third less than nn.PReLU's and about what the
in-place ReLU stack keeps.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import prelu

ACTIVATIONS: dict[str, Callable[[int], nn.Module]] = {
    "nn.ReLU(inplace=True)": lambda channels: nn.ReLU(inplace=True),
    "nn.PReLU": lambda channels: nn.PReLU(channels),
    "prelu.PReLU": lambda channels: prelu.PReLU(channels),
    "prelu.PReLU(inplace=True)": lambda channels: prelu.PReLU(channels, inplace=True),
}


def conv_bn_stack(activation: Callable[[int], nn.Module], *, channels: int = 64, blocks: int = 8) -> nn.Sequential:
    """``blocks`` x (Conv2d 3x3 -> BatchNorm2d -> activation), channel count kept constant."""
    layers: list[nn.Module] = []
    for _ in range(blocks):
        layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)]
        layers.append(activation(channels))
    return nn.Sequential(*layers)


def saved_bytes(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(bytes in unique storages autograd saved during ``model(x)``, number of those storages)."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output = model(x)
    del output
    return sum(storages.values()), len(storages)


def step_ms(model: nn.Module, x: torch.Tensor, *, repeats: int) -> float:
    """Median wall time (ms) of forward + backward + SGD step."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        optimizer.step()

    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


@dataclass(frozen=True)
class MemoryResult:
    """One activation's row of the memory benchmark."""

    activation: str
    saved_mb: float
    saved_storages: int
    step_ms: float


def run(
    *, batch: int = 16, channels: int = 64, size: int = 32, blocks: int = 8, repeats: int = 10, seed: int = 0
) -> list[MemoryResult]:
    """Measure every activation in :data:`ACTIVATIONS` on the same input and the same conv weights.

    >>> rows = run(batch=2, channels=4, size=8, blocks=2, repeats=1)
    >>> [row.activation for row in rows][:2]
    ['nn.ReLU(inplace=True)', 'nn.PReLU']
    """
    results = []
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, size, size, generator=generator)
    for name, activation in ACTIVATIONS.items():
        torch.manual_seed(seed)
        model = conv_bn_stack(activation, channels=channels, blocks=blocks)
        model.train()
        nbytes, count = saved_bytes(model, x)
        results.append(MemoryResult(name, nbytes / 2**20, count, step_ms(model, x, repeats=repeats)))
    return results


def ratios(results: list[MemoryResult]) -> dict[str, float]:
    """The targets' ratios: in-place PReLU's saved bytes against nn.PReLU and nn.ReLU(inplace=True),
    and each step time against nn.ReLU(inplace=True)'s."""
    by_name = {row.activation: row for row in results}
    inplace, relu, torch_prelu = (
        by_name["prelu.PReLU(inplace=True)"],
        by_name["nn.ReLU(inplace=True)"],
        by_name["nn.PReLU"],
    )
    out = {
        "inplace_prelu_saved_vs_nn_prelu": inplace.saved_mb / torch_prelu.saved_mb,
        "inplace_prelu_saved_vs_relu_inplace": inplace.saved_mb / relu.saved_mb,
    }
    for row in results:
        out[f"step_ms {row.activation} / nn.ReLU(inplace=True)"] = row.step_ms / relu.step_ms
    return out


def to_markdown(results: list[MemoryResult], *, batch: int, channels: int, size: int, blocks: int) -> str:
    """The table and the target checks, with the machine named."""
    from prelu.bench.harness import machine_info

    info = machine_info()
    ratio = ratios(results)
    relu_ms = next(row.step_ms for row in results if row.activation == "nn.ReLU(inplace=True)")
    lines = [
        "# prelu bench --memory",
        "",
        f"- Machine: {info['machine']}, {info['cores']} cores, torch threads {info['threads']}, "
        f"load average at start {info['load']}",
        f"- torch {info['torch']}, prelu {info['prelu']}; {blocks} x (Conv2d 3x3 -> BatchNorm2d -> activation), "
        f"input {batch}x{channels}x{size}x{size} float32, training mode",
        "",
        "| activation | autograd-saved MB (unique storages) | storages | step ms (median) | step ÷ ReLU(inplace) |",
        "|---|---|---|---|---|",
    ]
    for row in results:
        lines.append(
            f"| {row.activation} | {row.saved_mb:.2f} | {row.saved_storages} | {row.step_ms:.1f} | "
            f"{row.step_ms / relu_ms:.2f} |"
        )
    less = 1 - ratio["inplace_prelu_saved_vs_nn_prelu"]
    more = ratio["inplace_prelu_saved_vs_relu_inplace"] - 1
    lines += [
        "",
        f"- prelu.PReLU(inplace=True) keeps {less:.1%} less than nn.PReLU (target >= 25%): "
        f"{'met' if less >= 0.25 else 'NOT met'}",
        f"- and {more:+.2%} against nn.ReLU(inplace=True) (target <= +5%): {'met' if more <= 0.05 else 'NOT met'}",
    ]
    return "\n".join(lines) + "\n"
