"""Per-call cost on a small tensor: what a call costs above its kernel, against nn.PReLU and nn.ReLU.

Owns the per-call table of ``prelu bench e2e`` (the lab's activation: (64, 128) float32, one slope
per channel, one torch thread); imports torch, :mod:`prelu.nn`, :mod:`prelu.ops` (the functional
call, and the fused kernel alone, through :mod:`prelu.ops.kernels.extension`) and the one timing
harness. On 8,192 elements the kernel is ~1 us, so the table is nearly all call overhead: Python,
the dispatcher and autograd's bookkeeping.

Rows, each in microseconds per call (a turn runs ``inner`` calls back to back and is divided):

- ``forward``: the call under ``torch.no_grad()`` (module calls include ``nn.Module.__call__``);
- ``fwd+bwd``: forward on a fresh non-leaf tensor, then ``torch.autograd.backward`` with a fixed
  gradient (slopes that require grad get their gradient, as in training).

Contenders: ``nn.ReLU``, ``nn.PReLU``, ``prelu.PReLU``, ``prelu.PReLU(inplace=True)``,
``prelu.prelu`` (the functional call), and ``kernel``: the fused forward kernel alone, writing
into a preallocated output (forward row only). ``prelu.prelu`` minus ``kernel`` is the cost above
the kernel, the quantity issue-style targets name (≤ 10 us). Every slope is 1.0, so in-place calls
leave their input as it was and every turn sees the same values (no drift into denormals).

>>> table = measure(rounds=1, inner=2, warmup=0)
>>> sorted(table["forward_us"])
['kernel', 'nn.PReLU', 'nn.ReLU', 'prelu.PReLU', 'prelu.PReLU(inplace)', 'prelu.prelu']
>>> table["above_kernel_us"] == table["forward_us"]["prelu.prelu"] - table["forward_us"]["kernel"]
True
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from prelu.bench.timing import time_in_turns
from prelu.nn.modules import PReLU
from prelu.ops import functional
from prelu.ops.kernels import extension

SHAPE = (64, 128)


def _contenders(x: torch.Tensor) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    channels = x.shape[1]
    modules: dict[str, nn.Module] = {
        "nn.ReLU": nn.ReLU(),
        "nn.PReLU": nn.PReLU(channels, init=1.0),
        "prelu.PReLU": PReLU(channels, init=1.0),
        "prelu.PReLU(inplace)": PReLU(channels, init=1.0, inplace=True),
    }
    weight = nn.Parameter(torch.ones(channels))
    calls: dict[str, Callable[[torch.Tensor], torch.Tensor]] = dict(modules.items())
    calls["prelu.prelu"] = lambda tensor: functional.prelu(tensor, weight)
    return calls


def _kernel_call(x: torch.Tensor) -> Callable[[], object] | None:
    """The fused forward kernel alone on ``x`` (rows of 128, slope j for column j), or None when
    the C++ extension is not built."""
    ops = extension.load()
    if ops is None:
        return None
    out = torch.empty_like(x)
    slopes = torch.ones(x.shape[1])
    period_walk = 1
    return lambda: ops.forward_out(x, slopes, out, period_walk, x.shape[1])


def _repeat(call: Callable[[], object], inner: int) -> Callable[[], object]:
    def turn() -> None:
        for _ in range(inner):
            call()

    return turn


def measure(rounds: int = 30, inner: int = 200, warmup: int = 3) -> dict[str, Any]:
    """Median microseconds per call of every contender, forward and fwd+bwd, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        x = torch.randn(SHAPE)
        source = x.clone().requires_grad_()
        grad = torch.randn(SHAPE)
        forward: dict[str, Callable[[], object]] = {}
        training: dict[str, Callable[[], object]] = {}
        for name, call in _contenders(x).items():

            def forward_call(call: Callable[[torch.Tensor], torch.Tensor] = call) -> None:
                with torch.no_grad():
                    call(x)

            def training_call(call: Callable[[torch.Tensor], torch.Tensor] = call) -> None:
                torch.autograd.backward(call(source * 1.0), grad)

            forward[name] = _repeat(forward_call, inner)
            training[name] = _repeat(training_call, inner)
        kernel = _kernel_call(x)
        if kernel is not None:
            forward["kernel"] = _repeat(kernel, inner)
        result: dict[str, Any] = {"shape": list(SHAPE), "threads": 1, "inner": inner}
        for row, calls in (("forward_us", forward), ("fwd_bwd_us", training)):
            seconds = time_in_turns(calls, rounds, warmup).seconds
            result[row] = {name: statistics.median(values) / inner * 1e6 for name, values in seconds.items()}
        if "kernel" in result["forward_us"]:
            result["above_kernel_us"] = result["forward_us"]["prelu.prelu"] - result["forward_us"]["kernel"]
        return result
    finally:
        torch.set_num_threads(threads)


def markdown(table: dict[str, Any]) -> list[str]:
    """The table as markdown lines: one row per mode, one column per contender."""
    names = [name for name in table["forward_us"] if name != "kernel"]
    shape = "×".join(str(size) for size in table["shape"])
    lines = [
        f"Per call on a ({shape}) float32 tensor, one slope per channel, 1 thread, µs (median of turns of "
        f"{table['inner']} calls):",
        "",
        "| mode | " + " | ".join(names) + " | kernel alone |",
        "|" + "---|" * (len(names) + 2),
    ]
    for row, label in (("forward_us", "forward"), ("fwd_bwd_us", "fwd+bwd")):
        values = table[row]
        cells = [f"{values[name]:.1f}" for name in names]
        kernel = f"{values['kernel']:.1f}" if "kernel" in values else "–"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {kernel} |")
    if "above_kernel_us" in table:
        lines += ["", f"prelu.prelu above its kernel: {table['above_kernel_us']:.1f} µs per call (target ≤ 10 µs)."]
    return lines
