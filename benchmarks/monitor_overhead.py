"""What a :class:`prelu.Monitor` costs a training step (target: <= 1.3x the step without it).

Times one SGD step (forward, cross-entropy, backward, update) of two models, with no monitor and
with a monitor attached in a few settings:

- ``cnn``: (conv3x3-BatchNorm-act) x 4, 32 channels, on a (32, 3, 32, 32) batch, then pool + linear;
- ``mlp``: 784-512-512-512-10 with act after each hidden layer, on a (128, 784) batch.

The settings take turns (a few steps each per round) so drift on a shared machine hits them alike;
each step is timed alone; the median and the fastest step are reported, each with its ratio to the
unmonitored one (on a machine shared with other jobs the fastest step is the steadier measure).

Usage::

    python benchmarks/monitor_overhead.py [--act relu|prelu] [--rounds 15] [--out results.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import prelu

SETTINGS: dict[str, dict | None] = {
    "off": None,
    "every=1": {"every": 1},
    "every=1,grads": {"every": 1, "grads": True},
    "every=4": {"every": 4},
}


def activation(name: str, channels: int) -> nn.Module:
    return prelu.PReLU(channels) if name == "prelu" else nn.ReLU(inplace=True)


def cnn(act: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    layers: list[nn.Module] = []
    channels = 3
    for _ in range(4):
        layers += [nn.Conv2d(channels, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), activation(act, 32)]
        channels = 32
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    return model, torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))


def mlp(act: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    widths = [784, 512, 512, 512]
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(widths):
        layers += [nn.Linear(fan_in, fan_out), activation(act, fan_out)]
    model = nn.Sequential(*layers, nn.Linear(512, 10))
    return model, torch.randn(128, 784), torch.randint(0, 10, (128,))


def step_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step


def measure(build: Callable[[str], tuple], act: str, rounds: int, steps: int) -> dict[str, list[float]]:
    torch.manual_seed(0)
    model, x, y = build(act)
    step = step_fn(model, x, y)
    times: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(3):
        step()
    for _ in range(rounds):
        for name, options in SETTINGS.items():
            monitor = prelu.Monitor(model, **options).attach() if options is not None else None
            step()  # first step after attaching: allocations
            for _ in range(steps):
                start = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - start)
            if monitor is not None:
                monitor.detach()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--act", choices=("relu", "prelu"), default="relu")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per setting per round")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    results = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, activation {args.act}")
    print(f"{'model':<6}{'setting':<16}{'median ms':>10}{'ratio':>8}{'min ms':>10}{'ratio':>8}")
    for model_name, build in (("cnn", cnn), ("mlp", mlp)):
        times = measure(build, args.act, args.rounds, args.steps)
        median = {name: statistics.median(values) * 1e3 for name, values in times.items()}
        fastest = {name: min(values) * 1e3 for name, values in times.items()}
        for setting in times:
            row = {
                "model": model_name,
                "setting": setting,
                "act": args.act,
                "median_ms": median[setting],
                "median_ratio": median[setting] / median["off"],
                "min_ms": fastest[setting],
                "min_ratio": fastest[setting] / fastest["off"],
            }
            results.append(row)
            print(
                f"{model_name:<6}{setting:<16}{row['median_ms']:>10.2f}{row['median_ratio']:>8.3f}"
                f"{row['min_ms']:>10.2f}{row['min_ratio']:>8.3f}"
            )
    if args.out:
        machine = {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads()}
        with open(args.out, "w") as file:
            json.dump({"machine": machine, "results": results}, file, indent=1)


if __name__ == "__main__":
    main()
