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


class Timer:
    """Median time per call (us) of a closure: CUDA events on cuda, perf_counter on cpu."""

    def __init__(self, device: str, iters: int) -> None:
        self.device, self.iters = device, iters

    def sample(self, fn: Callable[..., object], setup: Callable[[], object] | None = None) -> float:
        """One sample: ``iters`` calls of ``fn`` (``setup`` runs before each, outside the timing
        on cpu; on cuda it is enqueued before the start event)."""
        if setup is not None:  # per-call setup: time each call alone, sum them
            total = 0.0
            for _ in range(self.iters):
                total += self._time(functools.partial(fn, setup()), 1)
            return total / self.iters
        return self._time(fn, self.iters) / self.iters

    def _time(self, fn: Callable[[], object], n: int) -> float:
        if self.device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
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
    """The modules timed; slopes stay float32 as under autocast (the case the issue is about)."""
    result: dict[str, nn.Module | None] = {
        "prelu.PReLU": prelu.PReLU(channels).to(device),
        "nn.PReLU": nn.PReLU(channels).to(device),
        "nn.LeakyReLU": nn.LeakyReLU(0.01),
        "nn.ReLU": nn.ReLU(),
        "torch.compile(nn.PReLU)": torch.compile(nn.PReLU(channels).to(device)) if compile_ok else None,
    }
    if dtype != torch.float32:  # nn.PReLU wants the weight in the input's dtype outside autocast
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
                closures = {}
                for name, module in modules.items():
                    if module is None:
                        continue
                    closures[name] = make_closures(module, x, grad)
                closures["clone"] = make_clone_closures(x, grad)
                for name, (_, _, both) in closures.items():  # warm up (Triton and torch.compile compile here)
                    started = time.perf_counter()
                    for _ in range(3):
                        both()
                    if device == "cuda":
                        torch.cuda.synchronize()
                    if name.startswith("torch.compile"):
                        compile_spent += time.perf_counter() - started
                samples: dict[tuple[str, str], list[float]] = {}
                for _ in range(args.repeats):
                    for name, (fwd, bwd, both) in closures.items():
                        samples.setdefault((name, "fwd"), []).append(timer.sample(fwd))
                        samples.setdefault((name, "bwd"), []).append(timer.sample(bwd[1], setup=bwd[0]))
                        samples.setdefault((name, "fwd+bwd"), []).append(timer.sample(both))
                clone_us = statistics.median(samples[("clone", "fwd")])
                for (name, mode), values in samples.items():
                    if name == "clone" and mode != "fwd":
                        continue
                    median = statistics.median(values)
                    roofline = clone_us * TRAFFIC[mode] / 2
                    rows.append(
                        {
                            "case": case,
                            "provider": name if name != "prelu.PReLU" else f"prelu.PReLU [{backend}]",
                            "mode": mode,
                            "median_us": round(median, 2),
                            "min_us": round(min(values), 2),
                            "roofline_us": round(roofline, 2),
                            "roofline_fraction": round(roofline / median, 3),
                        }
                    )
            except Exception:  # one failing case must not lose the others
                print(f"case {case} failed:\n{traceback.format_exc()}", file=sys.stderr)
                rows.append({"case": case, "provider": "FAILED (see log)", "mode": "", "median_us": ""})
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


def make_clone_closures(x: torch.Tensor, grad: torch.Tensor) -> tuple:
    source = x.detach()

    def fwd() -> object:
        return source.clone()

    return fwd, (lambda: None, lambda _: source.clone()), fwd


def write_speed(rows: list[dict[str, object]], out: Path, args: argparse.Namespace) -> None:
    fields = ["case", "provider", "mode", "median_us", "min_us", "roofline_us", "roofline_fraction"]
    with open(out / "speed.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    (out / "speed.md").write_text(speed_markdown(rows, args), encoding="utf-8")


def speed_markdown(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    lines = [f"# GPU speed ({machine(args.device)})", ""]
    lines.append(
        f"Median of {args.repeats} interleaved samples of {args.iters} calls "
        f"({'CUDA events' if args.device == 'cuda' else 'wall time'}); "
        "us per call; '% roof' = clone roofline time / measured time; slopes float32."
    )
    for case in dict.fromkeys(str(r["case"]) for r in rows):
        case_rows = [r for r in rows if r["case"] == case]
        lines += [
            "",
            f"## {case}",
            "",
            "| provider | fwd us | bwd us | fwd+bwd us | fwd+bwd ÷ LeakyReLU | % roof (fwd / bwd / fwd+bwd) |",
            "|---|---|---|---|---|---|",
        ]
        table = {(str(r["provider"]), str(r["mode"])): r for r in case_rows}
        names = list(dict.fromkeys(str(r["provider"]) for r in case_rows))
        leaky = table.get(("nn.LeakyReLU", "fwd+bwd"))
        for name in names:
            cells = [table.get((name, mode)) for mode in MODES]
            times = [f"{c['median_us']}" if c else "" for c in cells]
            ratio = ""
            if cells[2] and leaky and cells[2]["median_us"] != "":
                ratio = f"{float(cells[2]['median_us']) / float(leaky['median_us']):.2f}"
            roof = " / ".join(
                f"{100 * float(c['roofline_fraction']):.0f}%" if c and c.get("roofline_fraction") else "-"
                for c in cells
            )
            lines.append(f"| {name} | {' | '.join(times)} | {ratio} | {roof} |")
        ours = next((n for n in names if n.startswith("prelu.PReLU")), None)
        if ours and (ours, "fwd+bwd") in table and leaky:
            mine = table[(ours, "fwd+bwd")]
            ratio_value = float(mine["median_us"]) / float(leaky["median_us"])
            roof_value = float(mine["roofline_fraction"])
            verdicts = ("met" if ratio_value <= 1.0 else "missed", "met" if roof_value >= 0.85 else "missed")
            lines += [
                "",
                f"- target fwd+bwd <= 1.0x nn.LeakyReLU: {ratio_value:.2f}x, {verdicts[0]}",
                f"- target fwd+bwd >= 85% of the clone roofline: {100 * roof_value:.0f}%, {verdicts[1]}",
            ]
    return "\n".join(lines) + "\n"


def machine(device: str) -> str:
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
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
