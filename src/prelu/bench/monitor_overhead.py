"""``prelu bench monitor-overhead``: what a :class:`prelu.Monitor` costs a training step
(target: <= 1.3x the step without it).

Times one SGD step (forward, cross-entropy, backward, update) of two models, with no monitor and
with a monitor attached in a few settings:

- ``cnn``: (conv3x3-BatchNorm-act) x 4, 32 channels, on a (32, 3, 32, 32) batch, then pool + linear;
- ``mlp``: 784-512-512-512-10 with act after each hidden layer, on a (128, 784) batch.

Through the one timing harness (:func:`prelu.bench.timing.time_in_turns`): the settings take turns
(the monitor attached, one untimed step for its allocations, then ``steps`` timed steps, detached)
so drift on a shared machine hits them alike; the median and the fastest step are reported, each
with its ratio to the unmonitored one (on a shared machine the fastest step is the steadier
measure). Writes ``monitor_overhead.json`` and ``monitor_overhead.md`` to ``--out``. Imports torch,
:mod:`prelu`, :mod:`prelu._io` and :mod:`prelu.bench`'s timing and output.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

import prelu
from prelu._io import Table, jsonio, machine_info
from prelu.bench import options
from prelu.bench.timing import time_in_turns

SETTINGS: dict[str, dict[str, Any] | None] = {
    "off": None,
    "every=1": {"every": 1},
    "every=1,grads": {"every": 1, "grads": True},
    "every=4": {"every": 4},
}
"""Monitor settings compared (``off``: no monitor), as keyword arguments of :class:`prelu.Monitor`."""

JSON_NAME = "monitor_overhead.json"
MARKDOWN_NAME = "monitor_overhead.md"


def activation(name: str, channels: int) -> nn.Module:
    """``prelu.PReLU(channels)`` for 'prelu', else ``nn.ReLU(inplace=True)``."""
    return prelu.PReLU(channels) if name == "prelu" else nn.ReLU(inplace=True)


def cnn(act: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The conv-BN-act model, a batch and its labels."""
    layers: list[nn.Module] = []
    channels = 3
    for _ in range(4):
        layers += [nn.Conv2d(channels, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), activation(act, 32)]
        channels = 32
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    return model, torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))


def mlp(act: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The 784-512-512-512-10 model, a batch and its labels."""
    widths = [784, 512, 512, 512]
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(widths):
        layers += [nn.Linear(fan_in, fan_out), activation(act, fan_out)]
    model = nn.Sequential(*layers, nn.Linear(512, 10))
    return model, torch.randn(128, 784), torch.randint(0, 10, (128,))


MODELS: dict[str, Callable[[str], tuple[nn.Module, torch.Tensor, torch.Tensor]]] = {"cnn": cnn, "mlp": mlp}


def measure(model_name: str, act: str, rounds: int, steps: int) -> dict[str, list[float]]:
    """Seconds of each timed step, per setting of :data:`SETTINGS`."""
    torch.manual_seed(0)
    model, x, y = MODELS[model_name](act)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    def attached(monitor_options: dict[str, Any]) -> Callable[[], contextlib.AbstractContextManager[None]]:
        @contextlib.contextmanager
        def context() -> Iterator[None]:
            monitor = prelu.Monitor(model, **monitor_options).attach()
            try:
                yield
            finally:
                monitor.detach()

        return context

    setup = {name: attached(value) for name, value in SETTINGS.items() if value is not None}
    timings = time_in_turns(
        dict.fromkeys(SETTINGS, step), rounds, warmup=1, calls_per_turn=steps, setup=setup, untimed_per_turn=1
    )
    return timings.seconds


def run(act: str = "relu", rounds: int = 15, steps: int = 4) -> list[dict[str, Any]]:
    """One row per (model, setting): median and fastest step in ms and their ratios to ``off``.

    >>> rows = run("relu", rounds=1, steps=1)
    >>> [(row["model"], row["setting"]) for row in rows][:2]
    [('cnn', 'off'), ('cnn', 'every=1')]
    """
    results = []
    for model_name in MODELS:
        times = measure(model_name, act, rounds, steps)
        median = {name: statistics.median(values) * 1e3 for name, values in times.items()}
        fastest = {name: min(values) * 1e3 for name, values in times.items()}
        for setting in times:
            results.append(
                {
                    "model": model_name,
                    "setting": setting,
                    "act": act,
                    "median_ms": median[setting],
                    "median_ratio": median[setting] / median["off"],
                    "min_ms": fastest[setting],
                    "min_ratio": fastest[setting] / fastest["off"],
                }
            )
    return results


def table(results: list[dict[str, Any]]) -> Table:
    """The results as a table."""
    rows = [
        [
            row["model"],
            row["setting"],
            f"{row['median_ms']:.2f}",
            f"{row['median_ratio']:.3f}",
            f"{row['min_ms']:.2f}",
            f"{row['min_ratio']:.3f}",
        ]
        for row in results
    ]
    return Table(
        ["model", "setting", "median ms", "ratio", "min ms", "ratio"],
        rows,
        "Training step with a prelu.Monitor attached (ratio: to the step without; target <= 1.3)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``prelu bench monitor-overhead``."""
    parser.add_argument("--act", choices=("relu", "prelu"), default="relu", help="the models' activation")
    parser.add_argument("--rounds", type=options.positive_int, default=15, help="turns per setting (default 15)")
    parser.add_argument("--steps", type=options.positive_int, default=4, help="timed steps per turn (default 4)")
    options.add_output_arguments(parser, f"{JSON_NAME} and {MARKDOWN_NAME}")


def main(args: argparse.Namespace) -> int:
    """Run ``prelu bench monitor-overhead``: print the table, write JSON and markdown to ``--out``."""
    out = options.open_out(args, "monitor-overhead", [JSON_NAME, MARKDOWN_NAME])
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    info = {**machine_info(), "prelu": prelu.__version__}
    results = run(args.act, args.rounds, args.steps)
    result_table = table(results)
    header = f"torch {info['torch']}, {info['threads']} threads, {info['machine']}, activation {args.act}"
    print(header)
    print(result_table.to_text())
    out.write_text(JSON_NAME, jsonio.dumps({"machine": info, "settings": vars_of(args), "results": results}))
    path = out.write_text(
        MARKDOWN_NAME, f"# prelu bench monitor-overhead\n\n- {header}\n\n{result_table.to_markdown()}\n"
    )
    out.finish()
    print(f"wrote {out.path / JSON_NAME}, {path}")
    return 0


def vars_of(args: argparse.Namespace) -> dict[str, Any]:
    """The flags that shaped the numbers."""
    return {"act": args.act, "rounds": args.rounds, "steps": args.steps, "threads": args.threads}
