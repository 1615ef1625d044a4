"""``prelu bench compile``: the torch.compile (inductor) training step of models using prelu's
modules against the same models with torch's activations.

Owns the three model families, the step, the interleaved timing and the ratio table; imports
torch and :mod:`prelu.nn` only. A step is forward, ``loss = out.square().mean()``, backward and
an SGD step; the model is compiled with ``fullgraph=True`` (the optimizer step stays eager, the
same for every variant). Each variant is compiled and warmed up first, then the variants take
turns, ``steps`` steps each per round, for ``rounds`` rounds, so drift on a shared machine hits
them alike; the figure per variant is the median over rounds of the mean step time. Timing runs
with ``torch._dynamo.config.error_on_recompile``, so a recompile across steps is an error, not a
slower number.

Families (the activation is the variable):

- ``cnn``: 4 x (conv 3x3 - BatchNorm - act), 32 channels, batch 32, 32x32 inputs, then a linear
  head; ``nn.ReLU``, ``nn.PReLU(32)``, ``prelu.PReLU(32)``;
- ``mlp``: 3 x (Linear 1024 - act), batch 256; the same three;
- ``ffn``: a transformer feed-forward block on (16, 64, 256): Linear 256->1024, act over the
  last axis (``prelu.PReLU(1024, channel_dim=-1)``; nn.PReLU has no such layout), Linear back;
  compiled ``nn.ReLU``, compiled ``prelu.PReLU`` and ``prelu.PReLU`` in eager.

>>> rows = run(families=("mlp",), width=16, batch=4, steps=1, rounds=1, backend="eager")
>>> sorted({row["variant"] for row in rows})
['nn.PReLU', 'nn.ReLU', 'prelu.PReLU']
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

import prelu
from prelu.bench.output import UsageError

FAMILIES = ("cnn", "mlp", "ffn")


@dataclass(frozen=True)
class Variant:
    name: str
    activation: Callable[[int, bool], nn.Module]  # (channels, channel_last) -> module
    compiled: bool = True


def _variants(family: str) -> list[Variant]:
    relu = Variant("nn.ReLU", lambda c, last: nn.ReLU())
    ours = Variant("prelu.PReLU", lambda c, last: prelu.PReLU(c, channel_dim=-1 if last else 1))
    if family == "ffn":
        eager = Variant("prelu.PReLU eager", lambda c, last: prelu.PReLU(c, channel_dim=-1), compiled=False)
        return [relu, ours, eager]
    return [relu, Variant("nn.PReLU", lambda c, last: nn.PReLU(c)), ours]


def _model(family: str, activation: Callable[[int, bool], nn.Module], width: int) -> tuple[nn.Module, tuple[int, ...]]:
    """The model and the shape of one input batch (without the batch dim for cnn/mlp)."""
    if family == "cnn":
        layers: list[nn.Module] = []
        channels = 3
        for _ in range(4):
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)]
            layers.append(activation(width, False))
            channels = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)]
        return nn.Sequential(*layers), (3, 32, 32)
    if family == "mlp":
        layers = []
        features = width
        for _ in range(3):
            layers += [nn.Linear(features, width), activation(width, False)]
        return nn.Sequential(*layers), (features,)
    if family == "ffn":
        hidden = 4 * width
        return nn.Sequential(nn.Linear(width, hidden), activation(hidden, True), nn.Linear(hidden, width)), (64, width)
    raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")


DEFAULT_WIDTH = {"cnn": 32, "mlp": 1024, "ffn": 256}
DEFAULT_BATCH = {"cnn": 32, "mlp": 256, "ffn": 16}


def _step_function(model: nn.Module, compiled: bool, backend: str) -> Callable[[torch.Tensor], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    forward = torch.compile(model, fullgraph=True, backend=backend) if compiled else model

    def step(x: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        forward(x).square().mean().backward()
        optimizer.step()

    return step


def run(
    families: Sequence[str] = FAMILIES,
    *,
    width: int | None = None,
    batch: int | None = None,
    steps: int = 10,
    rounds: int = 7,
    warmup: int = 3,
    backend: str = "inductor",
) -> list[dict[str, object]]:
    """Time every variant of every family; one row per (family, variant) with ``ms`` per step
    (median over rounds), ``ratio_to_relu`` and, for cnn/mlp, ``ratio_to_nn_prelu``."""
    unknown = [family for family in families if family not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown family {unknown[0]!r}; valid: {', '.join(FAMILIES)}")
    rows: list[dict[str, object]] = []
    for family in families:
        torch.manual_seed(0)
        size = width or DEFAULT_WIDTH[family]
        x = torch.randn((batch or DEFAULT_BATCH[family], *_model(family, lambda c, last: nn.ReLU(), size)[1]))
        variants = _variants(family)
        torch._dynamo.reset()
        steps_by_name = {}
        for variant in variants:
            model, _ = _model(family, variant.activation, size)
            steps_by_name[variant.name] = _step_function(model, variant.compiled, backend)
            for _ in range(warmup):  # compiles forward and backward
                steps_by_name[variant.name](x)
        times: dict[str, list[float]] = {name: [] for name in steps_by_name}
        with torch._dynamo.config.patch(error_on_recompile=True):
            for _ in range(rounds):
                for name, step in steps_by_name.items():
                    start = time.perf_counter()
                    for _ in range(steps):
                        step(x)
                    times[name].append((time.perf_counter() - start) / steps * 1e3)
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, ms in medians.items():
            row: dict[str, object] = {
                "family": family,
                "variant": name,
                "ms": ms,
                "ratio_to_relu": ms / medians["nn.ReLU"],
            }
            if "nn.PReLU" in medians:
                row["ratio_to_nn_prelu"] = ms / medians["nn.PReLU"]
            rows.append(row)
    return rows


def format_table(rows: Sequence[dict[str, object]]) -> str:
    """A plain-text table of :func:`run`'s rows."""
    lines = [f"{'family':<6} {'variant':<18} {'ms/step':>9} {'/ReLU':>7} {'/nn.PReLU':>10}"]
    for row in rows:
        to_prelu = row.get("ratio_to_nn_prelu")
        lines.append(
            f"{row['family']!s:<6} {row['variant']!s:<18} {row['ms']:>9.3f} {row['ratio_to_relu']:>7.3f} "
            + (f"{to_prelu:>10.3f}" if isinstance(to_prelu, float) else f"{'-':>10}")
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``prelu bench compile``."""
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--steps", type=int, default=10, help="steps per variant per round (default 10)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--backend", default="inductor", help="torch.compile backend (default inductor)")


def command(args: argparse.Namespace) -> int:
    """Run ``prelu bench compile`` with parsed flags; prints the table."""
    if args.steps < 1 or args.rounds < 1:
        raise UsageError(f"--steps and --rounds must be >= 1, got {args.steps} and {args.rounds}")
    print(format_table(run(args.families, steps=args.steps, rounds=args.rounds, backend=args.backend)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m prelu.bench.compile_step [--families cnn mlp ffn] [--steps N] [--rounds N]``."""
    parser = argparse.ArgumentParser(prog="prelu bench compile", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be >= 1")
    return command(args)


if __name__ == "__main__":
    raise SystemExit(main())
