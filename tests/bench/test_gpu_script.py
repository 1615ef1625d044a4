"""benchmarks/gpu.sh and benchmarks/gpu_bench.py, checked without a GPU: the script's syntax and
its clean stop, and the benchmark's logic in its cpu dry run (tiny shapes, wall time)."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"


def _gpu_bench():
    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks" / "gpu_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_on_cpu_writes_the_tables(tmp_path):
    bench = _gpu_bench()
    assert (
        bench.main(
            ["--device", "cpu", "--quick", "--no-compile", "--dtypes", "float32,bfloat16", "--out", str(tmp_path)]
        )
        == 0
    )
    with open(tmp_path / "speed.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    providers = {row["provider"] for row in rows}
    ours = {p for p in providers if p.startswith("prelu.PReLU")}
    assert ours <= {"prelu.PReLU [fused]", "prelu.PReLU [native]"}, ours  # the backend it ran is named
    assert providers - ours == {"nn.PReLU", "nn.LeakyReLU", "nn.ReLU", "clone"}
    cases = {row["case"] for row in rows}
    assert cases == {"2x8x12x12 float32", "4x16x6x6 float32", "2x8x12x12 bfloat16", "4x16x6x6 bfloat16"}
    assert len(rows) == len(cases) * (4 * 3 + 1)  # 4 activations x 3 modes, clone forward only
    for row in rows:
        assert float(row["median_us"]) > 0 and float(row["median_us"]) >= float(row["min_us"])
        # The roofline scales clone's time by the least traffic of the mode (2, 3, 5 elements moved).
        clone = next(r for r in rows if r["case"] == row["case"] and r["provider"] == "clone")
        factor = {"fwd": 1.0, "bwd": 1.5, "fwd+bwd": 2.5}[row["mode"]]
        assert float(row["roofline_us"]) == pytest.approx(float(clone["median_us"]) * factor, abs=0.02)
    speed = (tmp_path / "speed.md").read_text(encoding="utf-8")
    assert speed.count("target fwd+bwd <= 1.0x nn.LeakyReLU") == len(cases)
    memory = (tmp_path / "memory.md").read_text(encoding="utf-8")
    for name in ("nn.ReLU(inplace=True)", "| nn.PReLU |", "prelu.PReLU(inplace=True)"):
        assert name in memory


def test_cuda_report_shows_gpu_time_first_and_judges_the_targets_on_it():
    bench = _gpu_bench()
    rows = []
    for timing, scale in (("device", 1.0), ("eager", 3.0)):  # made-up times: only the report's logic is tested
        for provider, fwd_bwd in (("prelu.PReLU [triton]", 40.0), ("nn.LeakyReLU", 50.0), ("clone", 0.0)):
            for mode, us in (("fwd", 16.0), ("bwd", 24.0), ("fwd+bwd", fwd_bwd)):
                if provider == "clone" and mode != "fwd":
                    continue
                median = us * scale
                roofline = 16.0 * scale * bench.TRAFFIC[mode] / 2
                rows.append(
                    {
                        "case": "32x64x56x56 bfloat16",
                        "provider": provider,
                        "timing": timing,
                        "mode": mode,
                        "median_us": median,
                        "roofline_fraction": roofline / median,
                    }
                )
    text = bench.speed_markdown(rows, argparse.Namespace(device="cuda", repeats=5, iters=20))
    assert "| provider | fwd device | bwd device | fwd+bwd device | fwd eager |" in text
    assert "target fwd+bwd <= 1.0x nn.LeakyReLU (device): 0.80x, met" in text
    assert "target fwd+bwd >= 85% of the clone roofline (device): 100%, met" in text  # 40 us = 2.5 clones


def test_memory_dry_run_sees_the_in_place_saving(tmp_path):
    bench = _gpu_bench()
    assert bench.main(["--device", "cpu", "--quick", "--what", "memory", "--out", str(tmp_path)]) == 0
    memory = (tmp_path / "memory.md").read_text(encoding="utf-8")
    saving = float(memory.split("keeps ")[1].split("%")[0])
    assert saving > 15, memory  # in place keeps the output only: one buffer fewer per block


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None, reason="needs bash and timeout")
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the stop without a GPU")
def test_gpu_script_stops_cleanly_without_a_gpu(tmp_path):
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    out = tmp_path / "out"
    env = {**os.environ, "GPU_OUT_DIR": str(tmp_path / "gpu"), "OUT": str(out), "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    log = (out / "gpu.log").read_text(encoding="utf-8")
    assert "torch sees no CUDA device" in log and "STOP" in log and "=== total" in log
