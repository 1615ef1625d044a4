"""``prelu bench e2e``: the training-step time of five model families, per activation, as ratios to ReLU.

Owns the model families, the "right after a torch op" micro table and their markdown tables (with
the per-call table of :mod:`prelu.bench.per_call`); the steps are timed by the one harness
(:func:`prelu.bench.timing.time_in_turns`). Imports torch, :mod:`prelu.nn`, :mod:`prelu._io`,
:mod:`prelu.bench`'s timing, allocator and per_call, and (for the
keep-freed-memory column) a subprocess of itself. :func:`run` measures; :func:`add_arguments` and
:func:`run_command` are ``prelu bench e2e``, :func:`main` the same from ``python -m prelu.bench.e2e``.

Families (one SGD step each: zero_grad, forward, loss, backward, update):

=========== ====================================================================================
``cnn``     ResNet-style CNN: 4 x (conv3x3 32 ch, BatchNorm, act), pool, linear; batch (32, 3, 32, 32)
``cnn_cl``  the same in channels_last memory
``mlp1024`` MLP 1024 -> 3 x (Linear 1024, act) -> 10, batch 256
``mlp128``  MLP 64 -> 3 x (Linear 128, act) -> 10, batch 64 (the lab's default model)
``ffn``     transformer FFN: Linear 256 -> 1024, act (``channel_dim=-1``), Linear 1024 -> 256, on (16, 64, 256)
=========== ====================================================================================

Activations: ``relu`` (``nn.ReLU(inplace=True)``, the reference), ``leaky_relu`` (``nn.LeakyReLU``),
``nn_prelu`` (``nn.PReLU(C)``; not for ``ffn``, whose channels are on the last dim),
``prelu`` (``prelu.PReLU(C)``), ``prelu_inplace`` (``prelu.PReLU(C, inplace=True)``) and
``prelu_frozen`` (``prelu.FrozenPReLU`` with the same 0.25 slopes in a buffer: the same op with
slopes that are not learned, so the difference to ``prelu`` is what learning them costs: a second
output of the backward node, an ``AccumulateGrad`` per slope tensor, and more parameters for the
optimizer).

One more variant is a reference, not an activation: ``relu_no_bias``, the ReLU model with its
``nn.Linear`` layers built without bias. What it saves is what torch charges for learning a vector
like a per-channel slope (a bias's gradient is also a sum over the batch, accumulated into a
parameter that SGD updates), so the markdown sets the two prices side by side, in µs per learned
vector per step: torch's bias, ``(relu - relu_no_bias) / biases``, and prelu's slope,
``(prelu - prelu_frozen) / slope tensors``.

Each round runs ``steps`` steps of every activation in turn, each timed alone, so drift on a shared
machine hits them alike; the figure is the median step, and the ratio is to ``relu``'s median. A
family whose step is short runs more steps per turn, so that a turn lasts at least ``MIN_TURN_S``
(one ReLU step, timed after the warm-up, decides how many): the MLP 3 x 128's 0.6 ms step would
otherwise give 3 samples a round, and the few µs the activations differ by would drown in them.
``clock="cpu"`` times with the process's CPU time instead of the wall clock: with one thread on a
machine shared with other jobs it leaves out the time the process waited for a core (it still
includes the cost of caches the other jobs evicted).
The headline uses the default allocator, as users run. ``keep_freed`` (a second process whose
glibc malloc keeps freed memory: no fresh-page faults) is the secondary column: it shows what the
allocator costs, which the headline includes and it hides.

>>> table = run(families=["mlp128"], rounds=1, steps=1, warmup=0, after_op=False)
>>> sorted(table["ratios"]["mlp128"])
['leaky_relu', 'nn_prelu', 'prelu', 'prelu_frozen', 'prelu_inplace', 'relu', 'relu_no_bias']
>>> table["ratios"]["mlp128"]["relu"]
1.0
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from prelu._io.jsonio import write_json
from prelu.bench import per_call
from prelu.bench.allocator import keep_freed_memory
from prelu.bench.timing import CLOCKS, time_in_turns
from prelu.nn.frozen import FrozenPReLU
from prelu.nn.modules import PReLU

FAMILIES = ("cnn", "cnn_cl", "mlp1024", "mlp128", "ffn")
ACTIVATIONS = ("relu", "leaky_relu", "nn_prelu", "prelu", "prelu_inplace", "prelu_frozen")
NO_BIAS = "relu_no_bias"  # the reference without Linear biases: what torch charges for learned vectors
VARIANTS = (*ACTIVATIONS, NO_BIAS)
FROZEN_SLOPE = 0.25  # prelu_frozen's slopes: PReLU's init, so its forward computes what prelu's does
PRICED_STEP_MS = 5.0  # vector_prices: longer steps hide a vector's price in their noise
MIN_TURN_S = 0.02  # a family's turn lasts at least this long: short steps get more samples per round
Step = Callable[[], None]


def activation(name: str, channels: int, channel_dim: int) -> nn.Module | None:
    """The activation module, or None where it has no per-channel form for this layout."""
    if name in ("relu", NO_BIAS):
        return nn.ReLU(inplace=True)
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01)
    if name == "nn_prelu":
        return nn.PReLU(channels) if channel_dim == 1 else None
    if name == "prelu":
        return PReLU(channels, channel_dim=channel_dim)
    if name == "prelu_inplace":
        return PReLU(channels, channel_dim=channel_dim, inplace=True)
    if name == "prelu_frozen":
        return FrozenPReLU(torch.full((channels,), FROZEN_SLOPE), channel_dim=channel_dim)
    raise ValueError(f"unknown activation {name!r}; valid: {', '.join(VARIANTS)}")


def build(family: str, act: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor, str] | None:
    """(model, input, target, loss kind) for one family and activation, or None when not applicable."""
    torch.manual_seed(seed)
    bias = act != NO_BIAS
    layers: list[nn.Module] = []
    if family in ("cnn", "cnn_cl"):
        channels = 3
        for _ in range(4):
            module = activation(act, 32, 1)
            if module is None:
                return None
            layers += [nn.Conv2d(channels, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), module]
            channels = 32
        model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10, bias=bias))
        x = torch.randn(32, 3, 32, 32)
        if family == "cnn_cl":
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stub omits it
            x = x.contiguous(memory_format=torch.channels_last)
        return model, x, torch.randint(0, 10, (32,)), "classes"
    if family in ("mlp1024", "mlp128"):
        fan_in, width, batch = (1024, 1024, 256) if family == "mlp1024" else (64, 128, 64)
        inputs = fan_in
        for _ in range(3):
            module = activation(act, width, 1)
            if module is None:
                return None
            layers += [nn.Linear(fan_in, width, bias=bias), module]
            fan_in = width
        model = nn.Sequential(*layers, nn.Linear(width, 10, bias=bias))
        return model, torch.randn(batch, inputs), torch.randint(0, 10, (batch,)), "classes"
    if family == "ffn":
        module = activation(act, 1024, -1)
        if module is None:
            return None
        model = nn.Sequential(nn.Linear(256, 1024, bias=bias), module, nn.Linear(1024, 256, bias=bias))
        return model, torch.randn(16, 64, 256), torch.randn(16, 64, 256), "regression"
    raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")


def training_step(model: nn.Module, x: torch.Tensor, target: torch.Tensor, kind: str) -> Step:
    """One SGD step as a closure (lr small: the weights barely move over a benchmark)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = (
        nn.functional.cross_entropy if kind == "classes" else nn.functional.mse_loss
    )

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), target)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        optimizer.step()

    return step


def _interleave(
    steps: dict[str, Step], rounds: int, per_round: int, warmup: int, clock: str = "wall"
) -> dict[str, list[float]]:
    """Seconds per timed step, through the one harness: every activation in turn each round."""
    return time_in_turns(steps, rounds, warmup, calls_per_turn=per_round, clock=clock).seconds


def after_op_table(rounds: int, per_round: int, warmup: int, clock: str = "wall") -> dict[str, dict[str, float]]:
    """Micro: each activation's forward + backward right after a torch op, as inside a model.

    ``linear``: Linear(1024, 1024) on (256, 1024); ``conv``: Conv2d(32, 32, 3) on (8, 32, 56, 56).
    The op's own forward and backward are timed with it; the ReLU row is the reference.
    """
    cases = {
        "linear": (nn.Linear(1024, 1024), torch.randn(256, 1024), 1024),
        "conv": (nn.Conv2d(32, 32, 3, padding=1), torch.randn(8, 32, 56, 56), 32),
    }
    result: dict[str, dict[str, float]] = {}
    for case, (op, x, channels) in cases.items():
        steps: dict[str, Step] = {}
        for name in ACTIVATIONS:
            module = activation(name, channels, 1)
            assert module is not None
            model = nn.Sequential(op, module)
            grad = torch.randn_like(model(x))  # dense, as a next layer hands it back

            def step(model: nn.Module = model, x: torch.Tensor = x, grad: torch.Tensor = grad) -> None:
                model(x).backward(grad)

            steps[name] = step
        times = _interleave(steps, rounds, per_round, warmup, clock)
        result[case] = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    return result


def run(
    families: Sequence[str] = FAMILIES,
    activations: Sequence[str] = VARIANTS,
    *,
    rounds: int = 5,
    steps: int = 3,
    warmup: int = 2,
    threads: int | None = None,
    after_op: bool = True,
    clock: str = "wall",
) -> dict[str, Any]:
    """Time every family with every activation, interleaved; returns medians (ms) and ratios to relu."""
    if threads is not None:
        torch.set_num_threads(threads)
    if "relu" not in activations:
        activations = ["relu", *activations]
    medians: dict[str, dict[str, float]] = {}
    ratios: dict[str, dict[str, float]] = {}
    vectors: dict[str, dict[str, int]] = {}
    per_turn: dict[str, int] = {}
    for family in families:
        steps_by_name: dict[str, Step] = {}
        models: dict[str, nn.Module] = {}
        for name in activations:
            built = build(family, name)
            if built is not None:
                steps_by_name[name] = training_step(*built)
                models[name] = built[0]
        vectors[family] = learned_vectors(models)
        per_turn[family] = steps_per_turn(steps_by_name["relu"], steps)
        times = _interleave(steps_by_name, rounds, per_turn[family], warmup, clock)
        medians[family] = {name: statistics.median(values) * 1e3 for name, values in times.items()}
        reference = medians[family]["relu"]
        ratios[family] = {name: round(ms / reference, 4) for name, ms in medians[family].items()}
    table: dict[str, Any] = {
        "medians_ms": medians,
        "ratios": ratios,
        "learned_vectors": vectors,
        "steps_per_turn": per_turn,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "clock": clock,
        "torch": torch.__version__,
    }
    if after_op:
        table["after_op_ms"] = after_op_table(rounds, steps, warmup, clock)
        table["per_call"] = per_call.measure()
    return table


def steps_per_turn(step: Step, steps: int, min_turn_s: float = MIN_TURN_S) -> int:
    """``steps``, or more where ``steps`` of ``step`` take less than ``min_turn_s`` (one timed call decides).

    >>> steps_per_turn(lambda: None, 3, min_turn_s=0.0)
    3
    """
    step()  # the first call of a model pays one-time costs (allocations, the optimizer's state)
    start = time.perf_counter()
    step()
    seconds = max(time.perf_counter() - start, 1e-6)
    return max(steps, math.ceil(min_turn_s / seconds))


def learned_vectors(models: dict[str, nn.Module]) -> dict[str, int]:
    """How many Linear biases the ReLU model learns, and how many slope tensors prelu's model learns (0 if absent).

    >>> built = {name: build("mlp128", name)[0] for name in ("relu", "prelu")}
    >>> learned_vectors(built), learned_vectors({"relu": built["relu"]})
    ({'biases': 4, 'slopes': 3}, {'biases': 4, 'slopes': 0})
    """
    biases = sum(isinstance(m, nn.Linear) and m.bias is not None for m in models["relu"].modules())
    slopes = sum(isinstance(m, PReLU) for m in models["prelu"].modules()) if "prelu" in models else 0
    return {"biases": biases, "slopes": slopes}


def vector_prices(table: dict[str, Any]) -> dict[str, dict[str, float]]:
    """µs per step per learned vector: torch's Linear bias and prelu's slope, where both variants ran.

    Only families whose ReLU step is at most ``PRICED_STEP_MS``: in longer steps a vector's few µs
    are far below the step's run-to-run noise (±5 % of 15-60 ms steps on the machine of the README).

    >>> table = {"medians_ms": {"mlp128": {"relu": 0.60, "relu_no_bias": 0.52, "prelu": 0.63, "prelu_frozen": 0.61}},
    ...          "learned_vectors": {"mlp128": {"biases": 4, "slopes": 3}}}
    >>> {name: round(us, 2) for name, us in vector_prices(table)["mlp128"].items()}
    {'bias': 20.0, 'slope': 6.67}
    """
    prices: dict[str, dict[str, float]] = {}
    for family, medians in table["medians_ms"].items():
        if medians.get("relu", math.inf) > PRICED_STEP_MS:
            continue
        counts = table.get("learned_vectors", {}).get(family, {})
        price: dict[str, float] = {}
        if {"relu", NO_BIAS} <= medians.keys() and counts.get("biases"):
            price["bias"] = (medians["relu"] - medians[NO_BIAS]) * 1e3 / counts["biases"]
        if {"prelu", "prelu_frozen"} <= medians.keys() and counts.get("slopes"):
            price["slope"] = (medians["prelu"] - medians["prelu_frozen"]) * 1e3 / counts["slopes"]
        if price:
            prices[family] = price
    return prices


def _keep_freed_ratios(argv: list[str]) -> dict[str, dict[str, float]] | None:
    """Ratios from a child process that keeps freed memory (None where that fails)."""
    command = [sys.executable, "-m", "prelu.bench.e2e", *argv, "--keep-freed-memory", "--json", "-", "--no-secondary"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(f"keep-freed-memory run failed: {result.stderr.strip()[-400:]}", file=sys.stderr)
        return None
    ratios: dict[str, dict[str, float]] = json.loads(result.stdout)["ratios"]
    return ratios


def markdown(table: dict[str, Any]) -> str:
    """The results as markdown: step ratios (with the keep-freed column if present), then after-op ms."""
    names = [name for name in VARIANTS if name != "relu"]
    secondary = table.get("keep_freed_ratios")
    header = "| family | steps timed | relu ms | " + " | ".join(names) + " |"
    lines = [
        f"Training step ÷ nn.ReLU(inplace=True), median of interleaved steps, {table['threads']} thread(s), "
        f"torch {table['torch']}, {table['clock']} clock, default allocator"
        + (" (in brackets: malloc keeping freed memory, which hides fresh-page faults)" if secondary else ""),
        "",
        header,
        "|" + "---|" * (len(names) + 3),
    ]
    for family, ratios in table["ratios"].items():
        cells = []
        for name in names:
            if name not in ratios:
                cells.append("–")
                continue
            cell = f"{ratios[name]:.3f}"
            if secondary and name in secondary.get(family, {}):
                cell += f" ({secondary[family][name]:.3f})"
            cells.append(cell)
        timed = table["rounds"] * table["steps_per_turn"][family]
        relu_ms = table["medians_ms"][family]["relu"]
        lines.append(f"| {family} | {timed} | {relu_ms:.2f} | " + " | ".join(cells) + " |")
    prices = vector_prices(table)
    if prices:
        lines += [
            "",
            "What one learned vector costs per step, µs: torch's Linear bias, (relu − relu_no_bias) ÷ biases; "
            f"prelu's slope, (prelu − prelu_frozen) ÷ slope tensors; families whose ReLU step is at most "
            f"{PRICED_STEP_MS:g} ms (in longer ones a vector's price is far below the step's noise):",
            "",
            "| family | biases | µs per bias | slope tensors | µs per slope |",
            "|---|---|---|---|---|",
        ]
        for family, price in prices.items():
            counts = table["learned_vectors"][family]
            bias = f"{price['bias']:.1f}" if "bias" in price else "–"
            slope = f"{price['slope']:.1f}" if "slope" in price else "–"
            lines.append(f"| {family} | {counts['biases']} | {bias} | {counts['slopes']} | {slope} |")
    if "after_op_ms" in table:
        lines += ["", "Forward + backward right after a torch op (the op included), ms:", ""]
        lines.append("| after | " + " | ".join(ACTIVATIONS) + " |")
        lines.append("|" + "---|" * (len(ACTIVATIONS) + 1))
        for case, values in table["after_op_ms"].items():
            lines.append(f"| {case} | " + " | ".join(f"{values[name]:.3f}" for name in ACTIVATIONS) + " |")
    if "per_call" in table:
        lines += ["", *per_call.markdown(table["per_call"])]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The command-line options of ``prelu bench e2e`` (for ``python -m prelu.bench.e2e``)."""
    options = argparse.ArgumentParser(prog="prelu bench e2e", description=__doc__.split("\n")[0])
    add_arguments(options)
    return options


def add_arguments(options: argparse.ArgumentParser) -> None:
    """The flags of ``prelu bench e2e``."""
    options.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    options.add_argument("--activations", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    options.add_argument("--rounds", type=int, default=5, help="rounds of interleaved steps (default 5)")
    options.add_argument(
        "--steps",
        type=int,
        default=3,
        help="timed steps per activation per round, at least (default 3; short steps get more)",
    )
    options.add_argument("--warmup", type=int, default=2, help="untimed steps per activation first (default 2)")
    options.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    options.add_argument(
        "--clock", choices=tuple(CLOCKS), default="wall", help="wall (default) or cpu (process time; for --threads 1)"
    )
    options.add_argument(
        "--no-after-op", action="store_true", help="skip the micro tables (after a torch op; per call, small tensor)"
    )
    options.add_argument("--no-secondary", action="store_true", help="skip the keep-freed-memory column")
    options.add_argument("--keep-freed-memory", action="store_true", help="this process keeps freed memory")
    options.add_argument("--json", metavar="PATH", help="also write the results as JSON ('-': stdout only)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the markdown tables; returns the exit code."""
    return run_command(parser().parse_args(argv))


def run_command(args: argparse.Namespace) -> int:
    """``prelu bench e2e`` with parsed flags; returns the exit code."""
    for name in ("rounds", "steps"):
        if getattr(args, name) < 1:
            print(f"--{name} must be >= 1", file=sys.stderr)
            return 2
    if args.keep_freed_memory:
        keep_freed_memory()
    table = run(
        args.families,
        args.activations,
        rounds=args.rounds,
        steps=args.steps,
        warmup=args.warmup,
        threads=args.threads,
        clock=args.clock,
        after_op=not args.no_after_op and args.json != "-",
    )
    if not args.no_secondary:
        forwarded = ["--families", *args.families, "--activations", *args.activations]
        forwarded += ["--rounds", str(args.rounds), "--steps", str(args.steps), "--warmup", str(args.warmup)]
        forwarded += ["--clock", args.clock]
        if args.threads is not None:
            forwarded += ["--threads", str(args.threads)]
        table["keep_freed_ratios"] = _keep_freed_ratios(forwarded)
    if args.json == "-":
        print(json.dumps(table))
        return 0
    print(markdown(table))
    if args.json:
        write_json(args.json, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
