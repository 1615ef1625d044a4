"""Tests for :mod:`prelu.bench` and :mod:`prelu.cli`: the CSV, the ratios, the plot, the command.

Timings themselves are never asserted (they depend on the machine and its load); the tests check
that every measurement lands in the CSV once, that the ratios are computed from those rows, and
that the command's exit codes are right. Tiny shapes keep the file to a few seconds.
"""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import prelu
import prelu.ops.backend
from prelu import cli
from prelu.bench import harness as bench

TINY_CASES = bench.make_cases([(2, 3, 8, 8), (16, 5)])
PROVIDERS = ["prelu", "prelu_native", "torch_prelu", "leaky_relu", "relu", "clone"]


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> bench.BenchResult:
    out = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as patch:
        # as conftest does per test (this fixture is module-scoped): tiny tensors take the fused path
        patch.setattr(prelu.ops.backend, "FUSED_MIN_NUMEL", 0)
        return bench.run(
            TINY_CASES, providers=PROVIDERS, repeats=2, warmup=1, first_call=False, out_dir=out, report=False
        )


def test_cases_cover_layouts_and_slopes() -> None:
    labels = [case.label for case in TINY_CASES]
    assert labels == [
        "2x3x8x8 contiguous channel",
        "2x3x8x8 contiguous shared",
        "2x3x8x8 channels_last channel",
        "2x3x8x8 channels_last shared",
        "16x5 contiguous channel",
        "16x5 contiguous shared",
    ]
    with pytest.raises(ValueError, match="channels_last needs a 4-D shape"):
        bench.Case((16, 5), "channels_last")


def test_csv_has_the_columns_and_one_row_per_provider_mode_case(result: bench.BenchResult) -> None:
    assert result.csv_path is not None and result.csv_path.exists()
    rows = bench.read_csv(result.csv_path)
    with open(result.csv_path, encoding="utf-8") as handle:
        assert tuple(handle.readline().strip().split(",")) == bench.CSV_COLUMNS
    assert rows == result.rows

    expected = set()
    for case in TINY_CASES:
        for mode in ("fwd", "full"):
            for provider in [*PROVIDERS, "roofline"]:
                expected.add((case.shape_text, case.layout, case.slopes, provider, mode))
    ms_rows = [row for row in rows if row["metric"] == "ms"]
    keys = [(row["shape"], row["layout"], row["slopes"], row["provider"], row["mode"]) for row in ms_rows]
    assert len(keys) == len(set(keys)), "a measurement appears twice"
    assert set(keys) == expected

    for row in ms_rows:
        assert math.isfinite(float(row["value"])) and float(row["value"]) > 0
        assert row["op"] == bench.OP_OF_PROVIDER[row["provider"]]
        assert row["dtype"] == "float32"
        assert row["threads"] == str(torch.get_num_threads())
        assert row["torch"] == torch.__version__ and row["prelu"] == prelu.__version__
        assert row["machine"] and row["timestamp"]
    # each measured provider also has its spread; the native provider really ran native
    metrics = {(row["provider"], row["metric"]) for row in rows}
    assert {("prelu", "ms_min"), ("prelu", "ms_iqr"), ("torch_prelu", "ms_iqr"), ("clone", "faults")} <= metrics
    assert {row["backend"] for row in rows if row["provider"] == "prelu_native"} == {"native"}
    for case in TINY_CASES:  # the auto provider records what auto picked (small tensors may run native)
        x, _ = bench.make_input(case)
        picked = prelu.backend_for(x, torch.ones(case.channels), channel_dim=case.channel_dim)
        key = (case.shape_text, case.layout, case.slopes)
        recorded = {
            row["backend"]
            for row in rows
            if (row["shape"], row["layout"], row["slopes"]) == key and row["provider"] == "prelu"
        }
        assert recorded == {picked}


def test_ratios_are_computed_from_the_csv_rows(result: bench.BenchResult) -> None:
    assert result.csv_path is not None
    rows = bench.read_csv(result.csv_path)

    def ms(provider: str, mode: str, shape: str = "2x3x8x8", layout: str = "channels_last") -> float:
        (value,) = [
            float(row["value"])
            for row in rows
            if row["metric"] == "ms"
            and (row["provider"], row["mode"], row["shape"], row["layout"], row["slopes"])
            == (provider, mode, shape, layout, "channel")
        ]
        return value

    (ratio,) = [
        r for r in result.ratios if (r["shape"], r["layout"], r["slopes"]) == ("2x3x8x8", "channels_last", "channel")
    ]
    assert ratio["speedup_vs_torch_prelu_full"] == pytest.approx(ms("torch_prelu", "full") / ms("prelu", "full"))
    assert ratio["vs_leaky_relu_full"] == pytest.approx(ms("prelu", "full") / ms("leaky_relu", "full"))
    assert ratio["vs_relu_fwd"] == pytest.approx(ms("prelu", "fwd") / ms("relu", "fwd"))
    # roofline: clone time scaled by bytes moved (fwd 2 passes, fwd+bwd 5) over the clone's 2
    # (the clone timed in the same block as the providers it is compared with)
    assert ms("roofline", "full") == pytest.approx(ms("clone", "full") * 5 / 2)
    assert ms("roofline", "fwd") == pytest.approx(ms("clone", "fwd"))
    assert ratio["roofline_pct_full"] == pytest.approx(100 * ms("clone", "full") * 2.5 / ms("prelu", "full"))
    assert ratio["compile_over_prelu_full"] is None  # not run without compile=True
    assert bench.derive_ratios(rows) == result.ratios


def test_png_and_markdown_are_written(result: bench.BenchResult) -> None:
    assert result.png_path is not None
    data = result.png_path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert result.png_path.parent == result.csv_path.parent
    assert result.markdown_path is not None
    text = result.markdown_path.read_text(encoding="utf-8")
    assert "Machine:" in text and bench.cpu_model() in text
    assert "| shape | layout | slopes | mode | prelu |" in text
    assert "Roofline: measured clone ms" in text


def test_merge_keeps_the_least_contended_block_of_each(result: bench.BenchResult, tmp_path: Path) -> None:
    assert result.csv_path is not None
    rows = bench.read_csv(result.csv_path)
    quiet_block = ("2x3x8x8", "contiguous", "channel", "float32", "full")

    def run_with(contention_of_block: str, others: str, scale: float, name: str) -> Path:
        changed = []
        for row in rows:
            row = dict(row)
            if row["op"] != "first_call":
                block = (row["shape"], row["layout"], row["slopes"], row["dtype"], row["mode"])
                row["others_cpu_pct"] = contention_of_block if block == quiet_block else others
                row["value"] = repr(float(row["value"]) * scale)
            changed.append(row)
        path = tmp_path / name
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=bench.CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(changed)
        return path

    first = run_with("50.0", "1.0", 1.0, "a.csv")  # quiet everywhere but the block
    second = run_with("2.0", "60.0", 3.0, "b.csv")  # quiet only in the block, values tripled
    merged = bench.merge([first, second], out_dir=tmp_path / "merged", report=False)
    for row in merged.rows:
        block = (row["shape"], row["layout"], row["slopes"], row["dtype"], row["mode"])
        assert row["others_cpu_pct"] == ("2.0" if block == quiet_block else "1.0")
    keys = [(r["shape"], r["layout"], r["slopes"], r["provider"], r["mode"], r["metric"]) for r in merged.rows]
    assert len(keys) == len(set(keys)) == len(rows)
    assert merged.ratios == bench.derive_ratios(merged.rows)
    assert merged.csv_path is not None and merged.csv_path.exists()

    other_machine = tmp_path / "c.csv"
    other_machine.write_text(first.read_text(encoding="utf-8").replace("2.13.0", "9.9.9"), encoding="utf-8")
    with pytest.raises(ValueError, match="cannot merge"):
        bench.merge([first, other_machine], out_dir=None, report=False)
    assert cli.main(["bench", "--merge", str(first), str(second), "--no-plot", "--out", str(tmp_path / "m2")]) == 0
    assert bench.read_csv(tmp_path / "m2" / bench.CSV_NAME) == bench.read_csv(tmp_path / "merged" / bench.CSV_NAME)


def test_first_call_rows_and_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = {"first_call_run1": 1.5, "first_call_run2": 1.2, "import_torch": 1.0, "prelu_attributable": 0.2}
    monkeypatch.setattr(bench, "measure_first_call", lambda: dict(fake))
    run = bench.run(
        [bench.Case((2, 3, 4, 4))], providers=["prelu"], modes=["fwd"], repeats=1, warmup=0, out_dir=None, report=False
    )
    assert {(row["mode"], row["metric"]): float(row["value"]) for row in run.rows if row["op"] == "first_call"} == {
        ("first_call", "s_run1"): 1.5,
        ("first_call", "s_run2"): 1.2,
        ("import_torch", "s"): 1.0,
        ("first_call", "s_prelu_attributable"): 0.2,
    }
    (first_call_table,) = [t for t in bench.result_tables(run.rows, run.ratios, run.first_call) if "First call" in t[0]]
    assert ["import torch alone (fastest)", "1.00"] in first_call_table[2]


def test_contended_blocks_are_timed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "RETRY_PAUSE_S", 0.0)
    calls = []
    seconds, faults, others_pct = bench._time_block(
        {"count": lambda: calls.append(1)}, repeats=2, warmup=1, max_contention=-1.0, tries=3, console=None
    )
    assert len(calls) == 3 * (2 + 1)  # every attempt ran (no block can be under -1 %)
    assert len(seconds["count"]) == 2 and len(faults["count"]) == 2
    assert others_pct is None or 0.0 <= others_pct <= 100.0
    calls.clear()
    bench._time_block(
        {"count": lambda: calls.append(1)}, repeats=2, warmup=1, max_contention=None, tries=3, console=None
    )
    assert len(calls) == 3


def test_bad_arguments_to_run_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        bench.run(TINY_CASES[:1], providers=["numpy"], out_dir=None, report=False, first_call=False)
    with pytest.raises(ValueError, match="unknown mode"):
        bench.run(TINY_CASES[:1], modes=["bwd"], out_dir=None, report=False, first_call=False)


def test_parse_shape() -> None:
    assert cli.parse_shape("32x64x56x56") == (32, 64, 56, 56)
    assert cli.parse_shape("4096,1024") == (4096, 1024)
    for bad in ("32", "0x4", "axb"):
        with pytest.raises(Exception, match="shape"):
            cli.parse_shape(bad)


def _prelu_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prelu", *args], capture_output=True, text=True, timeout=120)


def test_version_and_help_exit_0() -> None:
    version = _prelu_command("--version")
    assert version.returncode == 0 and prelu.__version__ in version.stdout
    help_ = _prelu_command("bench", "--help")
    assert help_.returncode == 0 and "--quick" in help_.stdout and "roofline" in help_.stdout


def test_bad_flag_exits_2() -> None:
    assert _prelu_command("bench", "--no-such-flag").returncode == 2
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--repeats", "0"])
    assert exit_info.value.code == 2


def test_bench_command_runs_tiny_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        [
            "bench",
            "--shapes",
            "2x3x4x4",
            "--layouts",
            "contiguous",
            "--slopes",
            "channel",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--no-first-call",
            "--no-plot",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert (tmp_path / bench.CSV_NAME).exists() and (tmp_path / bench.MARKDOWN_NAME).exists()
    assert not (tmp_path / bench.PNG_NAME).exists()
    assert "wrote" in capsys.readouterr().out


def test_keep_freed_memory_is_recorded(tmp_path: Path) -> None:
    # in a subprocess: mallopt changes the whole process for good
    args = ["bench", "--keep-freed-memory", "--shapes", "2x3x4x4", "--layouts", "contiguous", "--slopes", "shared"]
    args += ["--repeats", "1", "--warmup", "0", "--no-first-call", "--no-plot", "--out", str(tmp_path)]
    completed = _prelu_command(*args)
    assert completed.returncode == 0, completed.stderr
    rows = bench.read_csv(tmp_path / bench.CSV_NAME)
    assert rows and all("mallopt(M_MMAP_THRESHOLD=32MiB" in row["allocator"] for row in rows)
    assert "allocator mallopt(" in (tmp_path / bench.MARKDOWN_NAME).read_text(encoding="utf-8")
