"""GPU benchmark for benchmarks/gpu.sh: speed against torch's activations and the clone roofline,
and what a training forward keeps in memory. Self-contained (torch and prelu only).

Speed: for each (dtype, shape) the providers prelu.PReLU (per channel; the backend it ran is
recorded), nn.PReLU, nn.LeakyReLU, nn.ReLU, torch.compile(nn.PReLU) and ``clone`` are timed in
forward (training mode), backward (input and slope gradients, the forward run before the timed
region) and forward+backward. On cuda each sample is CUDA events around ``--iters`` calls (the
CPU's launch cost shows where it exceeds the GPU's work, as in eager training); on cpu
(``--device cpu --quick``, the dry run the tests use) wall time. Providers are interleaved in
every repeat and the median of ``--repeats`` samples is kept.

Clone roofline: clone reads and writes N elements, so its time gives a bandwidth
B = 2 N s / t_clone (s bytes per element). The least traffic per mode is forward 2 N s (read x,
write y), backward 3 N s (read g and x, write dL/dx), forward+backward 5 N s; the roofline time is
that traffic / B and "% roofline" is roofline time / measured time.

Memory: 8 x (Conv2d 3x3 -> BatchNorm2d -> activation) in training mode; the bytes still allocated
after the forward pass, beyond the input and the parameters, are what autograd keeps.

Writes ``speed.md``, ``speed.csv`` and ``memory.md`` to ``--out`` (speed files rewritten after each
case, so a run cut short keeps what it measured).
"""

from __future__ import annotations

import argparse
import csv
import functools
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import prelu

MODES = ("fwd", "bwd", "fwd+bwd")
TRAFFIC = {"fwd": 2, "bwd": 3, "fwd+bwd": 5}  # elements moved per input element, least possible
SHAPES = ((32, 64, 56, 56), (64, 256, 14, 14))
SLEEP_CYCLES_PER_US = 2000  # GPU clock ~2 GHz; a slower clock only sleeps longer, which is safe


class Timer:
    """Time per call (us) of a closure, two ways.

    ``eager``: CUDA events around ``iters`` calls (wall time on cpu): what a loop of eager calls
    takes, the CPU's launch cost included where it exceeds the GPU's work.
    ``device`` (cuda only): the same, but the GPU first sleeps long enough for the CPU to enqueue
    every call, so the events see only the GPU's time for the kernels (no idle gaps).
    """

    def __init__(self, device: str, iters: int) -> None:
        self.device, self.iters = device, iters

    def eager(self, fn: Callable[..., object], setup: Callable[[], object] | None = None) -> float:
        if setup is not None:  # per-call setup (the forward before a backward): time each call alone
            total = 0.0
            for _ in range(self.iters):
                total += self._time(functools.partial(fn, setup()), 1, sleep_us=0.0)
            return total / self.iters
        return self._time(fn, self.iters, sleep_us=0.0) / self.iters

    def device_time(self, fn: Callable[[], object], eager_us: float) -> float:
        return self._time(fn, self.iters, sleep_us=3 * eager_us * self.iters + 1000) / self.iters

    def _time(self, fn: Callable[[], object], n: int, *, sleep_us: float) -> float:
        if self.device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            if sleep_us:
                torch.cuda._sleep(int(sleep_us * SLEEP_CYCLES_PER_US))
            start.record()
            for _ in range(n):
                fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) * 1e3
        begin = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - begin) * 1e6


def providers(channels: int, device: str, dtype: torch.dtype, compile_ok: bool) -> dict[str, nn.Module | None]:
    """The modules timed; prelu's slopes stay float32 as under autocast (the case the issue is
    about); nn.PReLU's are cast to the input's dtype, which it needs outside autocast."""
    result: dict[str, nn.Module | None] = {
        "prelu.PReLU": prelu.PReLU(channels).to(device),
        "nn.PReLU": nn.PReLU(channels).to(device),
        "nn.LeakyReLU": nn.LeakyReLU(0.01),
        "nn.ReLU": nn.ReLU(),
        "torch.compile(nn.PReLU)": torch.compile(nn.PReLU(channels).to(device)) if compile_ok else None,
    }
    if dtype != torch.float32:
        for name in ("nn.PReLU", "torch.compile(nn.PReLU)"):
            module = result[name]
            if module is not None:
                module.to(dtype)
    return result


def run_speed(args: argparse.Namespace, out: Path) -> None:
    device, timer = args.device, Timer(args.device, args.iters)
    shapes = ((2, 8, 12, 12), (4, 16, 6, 6)) if args.quick else SHAPES
    rows: list[dict[str, object]] = []
    compile_spent = 0.0
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        for shape in shapes:
            case = f"{'x'.join(map(str, shape))} {dtype_name}"
            try:
                compile_ok = args.compile and compile_spent < args.compile_budget
                modules = providers(shape[1], device, dtype, compile_ok)
                x = torch.randn(shape, device=device, dtype=dtype).requires_grad_()
                grad = torch.randn_like(x)
                backend = prelu.backend_for(x.detach(), modules["prelu.PReLU"].weight)  # type: ignore[union-attr]
                closures = {name: make_closures(m, x, grad) for name, m in modules.items() if m is not None}
                closures["clone"] = make_clone_closures(x)
                for name, (_, _, both) in closures.items():  # warm up (Triton and torch.compile compile here)
                    started = time.perf_counter()
                    for _ in range(3):
                        both()
                    if device == "cuda":
                        torch.cuda.synchronize()
                    if name.startswith("torch.compile"):
                        compile_spent += time.perf_counter() - started
                samples: dict[tuple[str, str, str], list[float]] = {}
                for _ in range(args.repeats):  # providers interleaved in every repeat
                    for name, (fwd, bwd, both) in closures.items():
                        measured = {
                            "fwd": timer.eager(fwd),
                            "bwd": timer.eager(bwd[1], setup=bwd[0]),
                            "fwd+bwd": timer.eager(both),
                        }
                        for mode, value in measured.items():
                            samples.setdefault((name, "eager", mode), []).append(value)
                        if device == "cuda":
                            fwd_device = timer.device_time(fwd, measured["fwd"])
                            both_device = timer.device_time(both, measured["fwd+bwd"])
                            for mode, value in (
                                ("fwd", fwd_device),
                                ("bwd", both_device - fwd_device),
                                ("fwd+bwd", both_device),
                            ):
                                samples.setdefault((name, "device", mode), []).append(value)
                for (name, timing, mode), values in samples.items():
                    if name == "clone" and mode != "fwd":
                        continue
                    median = statistics.median(values)
                    roofline = statistics.median(samples[("clone", timing, "fwd")]) * TRAFFIC[mode] / 2
                    rows.append(
                        {
                            "case": case,
                            "provider": name if name != "prelu.PReLU" else f"prelu.PReLU [{backend}]",
                            "timing": timing,
                            "mode": mode,
                            "median_us": round(median, 2),
                            "min_us": round(min(values), 2),
                            "roofline_us": round(roofline, 2),
                            "roofline_fraction": round(roofline / median, 3) if median > 0 else "",
                        }
                    )
            except Exception:  # one failing case must not lose the others
                print(f"case {case} failed:\n{traceback.format_exc()}", file=sys.stderr)
                rows.append({"case": case, "provider": "FAILED (see gpu.log)"})
            write_speed(rows, out, args)
            print(f"done {case}", flush=True)


def make_closures(module: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> tuple:
    params = [p for p in module.parameters() if p.requires_grad]
    inputs = [x, *params]

    def fwd() -> object:
        return module(x)

    def setup() -> object:
        return module(x)

    def bwd(y: torch.Tensor) -> object:
        return torch.autograd.grad(y, inputs, grad)

    def both() -> object:
        return torch.autograd.grad(module(x), inputs, grad)

    return fwd, (setup, bwd), both


def make_clone_closures(x: torch.Tensor) -> tuple:
    source = x.detach()

    def fwd() -> object:
        return source.clone()

    return fwd, (lambda: None, lambda _: source.clone()), fwd


FIELDS = ["case", "provider", "timing", "mode", "median_us", "min_us", "roofline_us", "roofline_fraction"]


def write_speed(rows: list[dict[str, object]], out: Path, args: argparse.Namespace) -> None:
    with open(out / "speed.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    (out / "speed.md").write_text(speed_markdown(rows, args), encoding="utf-8")


def speed_markdown(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    timings = ["device", "eager"] if args.device == "cuda" else ["eager"]
    lines = [
        f"# GPU speed ({machine(args.device)})",
        "",
        f"us per call, median of {args.repeats} interleaved samples of {args.iters} calls. "
        + (
            "GPU: CUDA events with the GPU kept busy (kernel time only); eager: CUDA events around a "
            "plain loop (the CPU's launch cost shows where it exceeds the GPU's work). "
            if args.device == "cuda"
            else "eager: wall time (cpu dry run). "
        )
        + "% roof = clone roofline time / measured time. prelu's slopes are float32 (autocast's case). "
        "The tensors (6-26 MB) may partly stay in a large L2 between calls; clone sees the same.",
    ]
    for case in dict.fromkeys(str(r["case"]) for r in rows):
        case_rows = [r for r in rows if r["case"] == case]
        table = {(str(r["provider"]), str(r.get("timing")), str(r.get("mode"))): r for r in case_rows}
        names = list(dict.fromkeys(str(r["provider"]) for r in case_rows))
        header = " | ".join(f"{mode} {timing}" for timing in timings for mode in MODES)
        ratio_header = " | ".join(f"fwd+bwd ÷ LeakyReLU {timing} | % roof fwd+bwd {timing}" for timing in timings)
        columns = 1 + 3 * len(timings) + 2 * len(timings)
        lines += ["", f"## {case}", "", f"| provider | {header} | {ratio_header} |", "|---" * columns + "|"]
        for name in names:
            cells = [_value(table, name, timing, mode, "median_us") for timing in timings for mode in MODES]
            extra = []
            for timing in timings:
                mine, leaky = (_value(table, n, timing, "fwd+bwd", "median_us") for n in (name, "nn.LeakyReLU"))
                extra.append(f"{float(mine) / float(leaky):.2f}" if mine and leaky else "")
                roof = _value(table, name, timing, "fwd+bwd", "roofline_fraction")
                extra.append(f"{100 * float(roof):.0f}%" if roof else "")
            lines.append(f"| {name} | {' | '.join(cells + extra)} |")
        ours = next((n for n in names if n.startswith("prelu.PReLU")), None)
        timing = timings[0]
        mine, leaky = (_value(table, n, timing, "fwd+bwd", "median_us") for n in (ours or "", "nn.LeakyReLU"))
        roof = _value(table, ours or "", timing, "fwd+bwd", "roofline_fraction")
        if mine and leaky and roof:
            ratio, fraction = float(mine) / float(leaky), float(roof)
            lines += [
                "",
                f"- target fwd+bwd <= 1.0x nn.LeakyReLU ({timing}): {ratio:.2f}x, "
                + ("met" if ratio <= 1.0 else "missed"),
                f"- target fwd+bwd >= 85% of the clone roofline ({timing}): {100 * fraction:.0f}%, "
                + ("met" if fraction >= 0.85 else "missed"),
            ]
    return "\n".join(lines) + "\n"


def _value(table: dict[tuple[str, str, str], dict[str, object]], name: str, timing: str, mode: str, key: str) -> str:
    row = table.get((name, timing, mode))
    return "" if row is None else str(row.get(key, ""))


def machine(device: str) -> str:
    try:
        name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    except Exception as error:  # the report must still be written
        name = f"{device} ({error})"
    triton_version = "none"
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        pass
    return f"{name}, torch {torch.__version__}, triton {triton_version}, prelu {getattr(prelu, '__version__', '?')}"


MEMORY_ACTIVATIONS: dict[str, Callable[[int], nn.Module]] = {
    "nn.ReLU(inplace=True)": lambda c: nn.ReLU(inplace=True),
    "nn.PReLU": lambda c: nn.PReLU(c),
    "prelu.PReLU": lambda c: prelu.PReLU(c),
    "prelu.PReLU(inplace=True)": lambda c: prelu.PReLU(c, inplace=True),
}


def run_memory(args: argparse.Namespace, out: Path) -> None:
    device = args.device
    batch, channels, size, blocks = (2, 8, 8, 3) if args.quick else (32, 64, 56, 8)
    x = torch.randn(batch, channels, size, size, device=device)
    rows = []
    for name, make in MEMORY_ACTIVATIONS.items():
        torch.manual_seed(0)
        layers: list[nn.Module] = []
        for _ in range(blocks):
            layers += [
                nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                make(channels),
            ]
        model = nn.Sequential(*layers).to(device).train()
        model(x).sum().backward()  # warm up (cuDNN, Triton)
        model.zero_grad(set_to_none=True)
        kept = kept_bytes(model, x, device)
        rows.append((name, kept / 2**20))
    by_name = dict(rows)
    lines = [
        f"# GPU memory ({machine(device)})",
        "",
        f"{blocks} x (Conv2d 3x3 -> BatchNorm2d -> activation), input {batch}x{channels}x{size}x{size} float32, "
        "training mode;",
        "MB still allocated after the forward pass beyond input and parameters (what backward needs).",
        "",
        "| activation | kept MB | ÷ nn.PReLU |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {mb:.1f} | {mb / by_name['nn.PReLU']:.2f} |" for name, mb in rows]
    saving = 1 - by_name["prelu.PReLU(inplace=True)"] / by_name["nn.PReLU"]
    lines += ["", f"- prelu.PReLU(inplace=True) keeps {100 * saving:.1f}% less than nn.PReLU"]
    (out / "memory.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def kept_bytes(model: nn.Module, x: torch.Tensor, device: str) -> int:
    """Bytes autograd keeps after ``model(x)``: the CUDA allocator's count on cuda; on cpu the
    unique storages that autograd saves (what saved_tensors_hooks sees)."""
    if device == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        output = model(x)
        torch.cuda.synchronize()
        kept = torch.cuda.memory_allocated() - before
        del output
        return kept
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.data_ptr() != x.data_ptr() and all(tensor.data_ptr() != p.data_ptr() for p in model.parameters()):
            storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        output = model(x)
    return sum(storages.values()) + output.untyped_storage().nbytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--dtypes", type=lambda s: s.split(","), default=["float32", "bfloat16"])
    parser.add_argument("--what", choices=["speed", "memory", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, few repeats: a dry run of the logic")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip torch.compile(nn.PReLU)")
    parser.add_argument(
        "--compile-budget", type=float, default=120.0, help="seconds of torch.compile warm-up, then skip it"
    )
    parser.add_argument("--out", default="benchmarks/gpu")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing measured", file=sys.stderr)
        return 2
    args.repeats = args.repeats or (2 if args.quick else 7)
    args.iters = args.iters or (2 if args.quick else 20)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.what in ("speed", "all"):
        run_speed(args, out)
    if args.what in ("memory", "all"):
        run_memory(args, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
