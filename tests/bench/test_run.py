"""prelu bench run: typed measurements, the CSV written from them, the ratios, the report, merging.

Timings themselves are never asserted (they depend on the machine and its load); the tests check
that every measurement lands in the CSV once, that the ratios are computed from those rows, and
that the files are written. Tiny shapes keep the file to a few seconds.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import prelu
import prelu.ops.backend
from prelu._io import cpu_model, read_csv
from prelu.bench import merge as bench_merge
from prelu.bench import run as bench_run
from prelu.bench import timing
from prelu.bench.cases import Case, make_cases, make_input
from prelu.bench.output import OutFolder
from prelu.bench.providers import OP_OF_PROVIDER
from prelu.bench.ratios import derive_ratios
from prelu.bench.report import result_tables
from prelu.bench.results import CSV_COLUMNS, Measurement
from prelu.bench.run import BenchResult

TINY_CASES = tuple(make_cases([(2, 3, 8, 8), (16, 5)]))
PROVIDERS = ("prelu", "prelu_native", "torch_prelu", "leaky_relu", "relu", "clone")


def _settings(**changes: object) -> bench_run.BenchSettings:
    base = bench_run.BenchSettings(cases=TINY_CASES, providers=PROVIDERS, repeats=2, warmup=1, first_call=False)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]  # test helper: any field


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> BenchResult:
    out = tmp_path_factory.mktemp("bench") / "out"
    measured = bench_run.run(_settings())
    return bench_run.write_outputs(measured, OutFolder(out, mode="run", force=False), report=False)


def test_cases_cover_layouts_and_slopes() -> None:
    assert [case.label for case in TINY_CASES] == [
        "2x3x8x8 contiguous channel",
        "2x3x8x8 contiguous shared",
        "2x3x8x8 channels_last channel",
        "2x3x8x8 channels_last shared",
        "16x5 contiguous channel",
        "16x5 contiguous shared",
    ]
    with pytest.raises(ValueError, match="channels_last needs a 4-D shape"):
        Case((16, 5), "channels_last")


def test_csv_has_the_columns_and_one_row_per_provider_mode_case(result: BenchResult) -> None:
    assert result.csv_path is not None and result.csv_path.exists()
    with open(result.csv_path, encoding="utf-8") as handle:
        assert tuple(handle.readline().strip().split(",")) == CSV_COLUMNS
    assert read_csv(result.csv_path) == result.rows

    expected = {
        (case.shape_text, case.layout, case.slopes, provider, mode)
        for case in TINY_CASES
        for mode in ("fwd", "full")
        for provider in [*PROVIDERS, "roofline"]
    }
    ms = [m for m in result.measurements if m.metric == "ms"]
    keys = [(*m.case_key, m.provider, m.mode) for m in ms]
    assert len(keys) == len(set(keys)), "a measurement appears twice"
    assert set(keys) == expected
    for m in ms:
        assert math.isfinite(m.value) and m.value > 0
        assert m.op == OP_OF_PROVIDER[m.provider] and m.dtype == "float32"
        assert m.info.threads == str(torch.get_num_threads()) and m.info.device == "cpu"
        assert m.info.torch == torch.__version__ and m.info.prelu == prelu.__version__
        assert m.info.machine and m.info.timestamp
    metrics = {(m.provider, m.metric) for m in result.measurements}
    assert {("prelu", "ms_min"), ("prelu", "ms_iqr"), ("torch_prelu", "ms_iqr"), ("clone", "faults")} <= metrics
    assert {m.backend for m in result.measurements if m.provider == "prelu_native"} == {"native"}


def test_the_csv_reads_back_into_the_same_measurements(result: BenchResult) -> None:
    from prelu.bench.results import read_csv as read_measurements

    assert result.csv_path is not None
    back = read_measurements(result.csv_path)
    # every CSV field survives (python version and load average are report-only, not columns)
    assert [m.to_row() for m in back] == result.rows
    assert [m.value for m in back] == [m.value for m in result.measurements]


def test_ratios_are_computed_from_the_csv_rows(result: BenchResult) -> None:
    assert result.csv_path is not None
    rows = read_csv(result.csv_path)  # plain strings, read independently of prelu.bench.results

    def ms(provider: str, mode: str) -> float:
        (value,) = [
            float(row["value"])
            for row in rows
            if row["metric"] == "ms"
            and (row["provider"], row["mode"], row["shape"], row["layout"], row["slopes"])
            == (provider, mode, "2x3x8x8", "channels_last", "channel")
        ]
        return value

    (ratio,) = [r for r in result.ratios if (r.shape, r.layout, r.slopes) == ("2x3x8x8", "channels_last", "channel")]
    assert ratio.speedup_vs_torch_prelu_full == pytest.approx(ms("torch_prelu", "full") / ms("prelu", "full"))
    assert ratio.vs_leaky_relu_full == pytest.approx(ms("prelu", "full") / ms("leaky_relu", "full"))
    assert ratio.vs_relu_fwd == pytest.approx(ms("prelu", "fwd") / ms("relu", "fwd"))
    # roofline: clone time scaled by bytes moved (fwd 2 passes, fwd+bwd 5) over the clone's 2
    assert ms("roofline", "full") == pytest.approx(ms("clone", "full") * 5 / 2)
    assert ms("roofline", "fwd") == pytest.approx(ms("clone", "fwd"))
    assert ratio.roofline_pct_full == pytest.approx(100 * ms("clone", "full") * 2.5 / ms("prelu", "full"))
    assert ratio.compile_over_prelu_full is None  # not run without compile
    assert derive_ratios(result.measurements) == result.ratios


def test_png_markdown_and_manifest_are_written(result: BenchResult) -> None:
    assert result.png_path is not None and result.csv_path is not None and result.markdown_path is not None
    data = result.png_path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert result.png_path.parent == result.csv_path.parent
    text = result.markdown_path.read_text(encoding="utf-8")
    assert "Machine:" in text and cpu_model() in text
    assert "| shape | layout | slopes | mode | prelu |" in text
    assert "Roofline: measured clone ms" in text
    manifest = (result.csv_path.parent / "bench.json").read_text()
    assert '"bench.csv": "run"' in manifest and '"bench.png": "run"' in manifest


def _scaled(measurements: list[Measurement], quiet_block: tuple[str, ...], quiet: float, other: float, scale: float):
    return [
        dataclasses.replace(m, others_cpu_pct=quiet if m.block_key == quiet_block else other, value=m.value * scale)
        for m in measurements
    ]


def test_merge_keeps_the_least_contended_block_of_each(result: BenchResult) -> None:
    quiet_block = ("2x3x8x8", "contiguous", "channel", "float32", "full")
    first = _scaled(result.measurements, quiet_block, 50.0, 1.0, 1.0)  # quiet everywhere but the block
    second = _scaled(result.measurements, quiet_block, 2.0, 60.0, 3.0)  # quiet only in the block, tripled
    merged = bench_merge.merge([first, second])

    def key(m: Measurement) -> tuple[str, ...]:
        return (*m.case_key, m.provider, m.mode, m.metric)

    first_values = {key(m): m.value for m in first}
    second_values = {key(m): m.value for m in second}
    for m in merged.measurements:
        quiet = m.block_key == quiet_block
        assert m.others_cpu_pct == (2.0 if quiet else 1.0)
        assert m.value == (second_values if quiet else first_values)[key(m)]
    keys = [(*m.case_key, m.provider, m.mode, m.metric) for m in merged.measurements]
    assert len(keys) == len(set(keys)) == len(result.measurements)
    assert merged.ratios == derive_ratios(merged.measurements)

    other_torch = [dataclasses.replace(m, info=dataclasses.replace(m.info, torch="9.9.9")) for m in first]
    with pytest.raises(ValueError, match=r"cannot merge run 2: its torch is '9\.9\.9'"):
        bench_merge.merge([first, other_torch])


def test_first_call_rows_and_table(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = {"first_call_run1": 1.5, "first_call_run2": 1.2, "import_torch": 1.0, "prelu_attributable": 0.2}
    monkeypatch.setattr(bench_run, "measure_first_call", lambda: dict(fake))
    measured = bench_run.run(
        _settings(
            cases=(Case((2, 3, 4, 4)),), providers=("prelu",), modes=("fwd",), repeats=1, warmup=0, first_call=True
        )
    )
    assert {(m.mode, m.metric): m.value for m in measured.measurements if m.op == "first_call"} == {
        ("first_call", "s_run1"): 1.5,
        ("first_call", "s_run2"): 1.2,
        ("import_torch", "s"): 1.0,
        ("first_call", "s_prelu_attributable"): 0.2,
    }
    tables = result_tables(measured.measurements, measured.ratios, measured.first_call)
    (first_call_table,) = [t for t in tables if "First call" in t.title]
    assert ["import torch alone (fastest)", "1.00"] in [list(row) for row in first_call_table.rows]


def test_contended_blocks_are_timed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing, "RETRY_PAUSE_S", 0.0)
    calls: list[int] = []
    timings = timing.time_block({"count": lambda: calls.append(1)}, 2, 1, max_contention=-1.0, tries=3)
    assert len(calls) == 3 * (2 + 1)  # every attempt ran (no block can be under -1 %)
    assert len(timings.seconds["count"]) == 2 and len(timings.faults["count"]) == 2
    assert timings.others_pct is None or 0.0 <= timings.others_pct <= 100.0
    calls.clear()
    timing.time_block({"count": lambda: calls.append(1)}, 2, 1, max_contention=None, tries=3)
    assert len(calls) == 3


def test_turns_interleave_the_contenders_and_setup_wraps_each_turn() -> None:
    events: list[str] = []

    class Attached:
        def __enter__(self) -> None:
            events.append("attach")

        def __exit__(self, *exc: object) -> None:
            events.append("detach")

    timings = timing.time_in_turns(
        {"a": lambda: events.append("a"), "b": lambda: events.append("b")},
        repeats=2,
        warmup=0,
        calls_per_turn=2,
        setup={"b": Attached},
        untimed_per_turn=1,
    )
    turn_a = ["a", "a", "a"]  # one untimed call, then two timed ones
    turn_b = ["attach", "b", "b", "b", "detach"]
    assert events == [*turn_a, *turn_b, *turn_a, *turn_b]
    assert len(timings.seconds["a"]) == 4 and len(timings.seconds["b"]) == 4


def test_bad_settings_are_refused_before_timing() -> None:
    with pytest.raises(ValueError, match="unknown provider 'numpy'"):
        _settings(providers=("numpy",))
    with pytest.raises(ValueError, match="unknown mode 'bwd'"):
        _settings(modes=("bwd",))
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        _settings(repeats=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_other_dtypes_run_every_provider(dtype: torch.dtype) -> None:
    measured = bench_run.run(_settings(cases=(Case((2, 3, 4, 4)),), dtype=dtype, repeats=1, warmup=0))
    dtypes = {m.dtype for m in measured.measurements}
    assert dtypes == {str(dtype).removeprefix("torch.")}
    x, _ = make_input(Case((2, 3, 4, 4)), dtype)
    assert x.dtype == dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_runs_are_timed_with_events_and_recorded() -> None:
    measured = bench_run.run(
        _settings(cases=(Case((4, 8, 16, 16)),), device="cuda", dtype=torch.bfloat16, repeats=3, warmup=1)
    )
    assert all(m.info.device.startswith("cuda") for m in measured.measurements)
    assert all(m.value > 0 for m in measured.measurements if m.metric == "ms")
