"""``prelu bench memory`` (alias ``prelu bench --memory``): what autograd keeps for a training step.

Owns the conv-BN-activation stack, the saved-bytes count and the command; the step times come
from the one timing harness (:func:`prelu.bench.timing.time_in_turns`: the activations take turns).
Imports torch, :mod:`prelu`, :mod:`prelu._io` and :mod:`prelu.bench`'s timing and output.

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

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import prelu
from prelu._io import Table, machine_info
from prelu.bench import options
from prelu.bench.timing import time_in_turns

MARKDOWN_NAME = "memory.md"

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


def training_step(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    """One forward + backward + SGD step of ``model`` on ``x`` (a squared-mean loss)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        optimizer.step()

    return step


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
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, size, size, generator=generator)
    saved: dict[str, tuple[int, int]] = {}
    steps: dict[str, Callable[[], None]] = {}
    for name, activation in ACTIVATIONS.items():
        torch.manual_seed(seed)  # the same conv weights for every activation
        model = conv_bn_stack(activation, channels=channels, blocks=blocks)
        model.train()
        saved[name] = saved_bytes(model, x)
        steps[name] = training_step(model, x)
    timings = time_in_turns(steps, repeats, warmup=2)
    return [
        MemoryResult(name, nbytes / 2**20, count, statistics.median(timings.seconds[name]) * 1e3)
        for name, (nbytes, count) in saved.items()
    ]


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
    info = machine_info()
    ratio = ratios(results)
    relu_ms = next(row.step_ms for row in results if row.activation == "nn.ReLU(inplace=True)")
    table = Table(
        ["activation", "autograd-saved MB (unique storages)", "storages", "step ms (median)", "step ÷ ReLU(inplace)"],
        [
            [
                row.activation,
                f"{row.saved_mb:.2f}",
                str(row.saved_storages),
                f"{row.step_ms:.1f}",
                f"{row.step_ms / relu_ms:.2f}",
            ]
            for row in results
        ],
    )
    less = 1 - ratio["inplace_prelu_saved_vs_nn_prelu"]
    more = ratio["inplace_prelu_saved_vs_relu_inplace"] - 1
    lines = [
        "# prelu bench memory",
        "",
        f"- Machine: {info['machine']}, {info['cores']} cores, torch threads {info['threads']}, "
        f"load average at start {info['load']}",
        f"- torch {info['torch']}, prelu {prelu.__version__}; {blocks} x (Conv2d 3x3 -> BatchNorm2d -> activation), "
        f"input {batch}x{channels}x{size}x{size} float32, training mode; activations take turns per step",
        "",
        table.to_markdown(),
        "",
        f"- prelu.PReLU(inplace=True) keeps {less:.1%} less than nn.PReLU (target >= 25%): "
        f"{'met' if less >= 0.25 else 'NOT met'}",
        f"- and {more:+.2%} against nn.ReLU(inplace=True) (target <= +5%): {'met' if more <= 0.05 else 'NOT met'}",
    ]
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``prelu bench memory``."""
    parser.add_argument(
        "--quick", action="store_true", help="8x32x16x16 input and 3 repeats instead of 16x64x32x32, 10"
    )
    parser.add_argument("--repeats", type=options.positive_int, default=None, metavar="N", help="timed steps each")
    options.add_output_arguments(parser, MARKDOWN_NAME)


def main(args: argparse.Namespace) -> int:
    """Run ``prelu bench memory``: print the table and write memory.md to ``--out``."""
    out = options.open_out(args, "memory", [MARKDOWN_NAME])
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    shape = (
        {"batch": 8, "channels": 32, "size": 16, "blocks": 8}
        if args.quick
        else {"batch": 16, "channels": 64, "size": 32, "blocks": 8}
    )
    repeats = args.repeats or (3 if args.quick else 10)
    results = run(**shape, repeats=repeats)
    text = to_markdown(results, **shape)
    path = out.write_text(MARKDOWN_NAME, text)
    out.finish()
    print(text)
    print(f"wrote {path}")
    return 0
