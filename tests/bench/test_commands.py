"""``prelu bench`` subcommands, the old flag spellings as aliases, and the rules for ``--out``.

Each command runs on one tiny case with one repeat, so the file takes seconds; a couple of runs go
through ``python -m prelu`` to check the real entry point and exit codes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import prelu
from prelu import cli
from prelu._io import read_csv

TINY = ["--shapes", "2x3x4x4", "--layouts", "contiguous", "--slopes", "channel", "--repeats", "1", "--warmup", "0"]
TINY += ["--no-first-call", "--providers", "prelu", "relu", "clone"]


def _prelu_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prelu", *args], capture_output=True, text=True, timeout=300)


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_help_lists_every_mode_and_the_run_flags() -> None:
    done = _prelu_command("bench", "--help")
    assert done.returncode == 0
    for text in ("run", "memory", "merge", "monitor-overhead", "e2e", "--quick", "roofline", "--force", "--device"):
        assert text in done.stdout
    version = _prelu_command("--version")
    assert version.returncode == 0 and prelu.__version__ in version.stdout


def test_run_subcommand_through_python_m(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _prelu_command("bench", "run", "--quick", *TINY, "--no-plot", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(_files(out)) == ["bench.csv", "bench.json", "results.md"]
    rows = read_csv(out / "bench.csv")
    assert {row["provider"] for row in rows} == {"prelu", "relu", "clone", "roofline"}
    assert {row["repeats"] for row in rows} == {"1"}  # --repeats wins over --quick's 12
    assert "wrote" in done.stdout


def test_plain_bench_is_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", *TINY, "--out", str(tmp_path / "plain")]) == 0
    assert cli.main(["bench", "run", *TINY, "--out", str(tmp_path / "run")]) == 0
    assert sorted(_files(tmp_path / "plain")) == sorted(_files(tmp_path / "run"))
    assert sorted(_files(tmp_path / "run")) == ["bench.csv", "bench.json", "bench.png", "results.md"]
    columns = [list(row) for row in read_csv(tmp_path / "plain" / "bench.csv")]
    assert columns == [list(row) for row in read_csv(tmp_path / "run" / "bench.csv")]
    assert "wrote" in capsys.readouterr().out


def test_merge_subcommand_and_its_alias_agree(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        assert cli.main(["bench", "run", *TINY, "--no-plot", "--out", str(folder)]) == 0
    assert (
        cli.main(["bench", "merge", str(first), str(second / "bench.csv"), "--no-plot", "--out", str(tmp_path / "m")])
        == 0
    )
    assert cli.main(["bench", "--merge", str(first), str(second), "--no-plot", "--out", str(tmp_path / "m2")]) == 0
    merged = read_csv(tmp_path / "m" / "bench.csv")
    assert merged == read_csv(tmp_path / "m2" / "bench.csv")
    keys = [(row["provider"], row["mode"], row["metric"]) for row in merged]
    assert len(keys) == len(set(keys)) == len(read_csv(first / "bench.csv"))
    assert cli.main(["bench", "merge", "--out", str(tmp_path / "m3")]) == 2  # no runs given
    assert cli.main(["bench", "merge", str(tmp_path / "missing"), "--out", str(tmp_path / "m3")]) == 2
    assert not (tmp_path / "m3").exists()


def test_bad_flags_exit_2() -> None:
    assert _prelu_command("bench", "--no-such-flag").returncode == 2
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "run", "--repeats", "0"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "run", "--dtype", "int8"])
    assert exit_info.value.code == 2


def test_no_cases_and_a_missing_device_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli.main(["bench", "run", "--shapes", "16x5", "--layouts", "channels_last", "--out", str(tmp_path / "o")]) == 2
    )
    assert "no cases" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert cli.main(["bench", "run", *TINY, "--device", "cuda", "--out", str(tmp_path / "o")]) == 2
        assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_provider_alias_and_new_dtypes_parse() -> None:
    args = cli.build_parser().parse_args(["bench", "run", "--providers", "torch_prelu_compiled", "--dtype", "bfloat16"])
    from prelu.bench.run import settings_from

    settings = settings_from(args)
    assert settings.provider_list == ["compile_torch_prelu"] and settings.dtype == torch.bfloat16


def test_a_non_empty_out_is_refused_and_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    (out / "bench.csv").write_text("my own csv")
    for force in ([], ["--force"]):
        assert cli.main(["bench", "run", *TINY, "--out", str(out), *force]) == 2
        assert _files(out) == {"bench.csv": b"my own csv", "notes.txt": b"my notes"}
    err = capsys.readouterr().err
    assert "is not empty; pass --force" in err and "not a prelu bench output folder" in err
    file_out = tmp_path / "file"
    file_out.write_text("x")
    assert cli.main(["bench", "run", *TINY, "--out", str(file_out)]) == 2


def test_force_replaces_only_what_the_benchmark_wrote(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli.main(["bench", "run", *TINY, "--out", str(out)]) == 0
    assert cli.main(["bench", "memory", "--quick", "--repeats", "1", "--out", str(out), "--force"]) == 0
    (out / "mine.txt").write_text("keep me")
    before = _files(out)
    assert cli.main(["bench", "run", *TINY, "--out", str(out)]) == 2  # no --force: refused
    assert _files(out) == before
    assert cli.main(["bench", "run", *TINY, "--no-plot", "--out", str(out), "--force"]) == 0
    after = _files(out)
    assert after["mine.txt"] == b"keep me"
    assert after["memory.md"] == before["memory.md"]  # another mode's file: kept
    assert "bench.png" not in after  # run's own stale plot: gone
    assert after["bench.csv"] != before["bench.csv"]
    manifest = json.loads(after["bench.json"])
    assert manifest["kind"] == "prelu bench" and manifest["format"] == 1
    assert manifest["files"] == {"bench.csv": "run", "results.md": "run", "memory.md": "memory"}


def test_force_refuses_to_overwrite_a_file_the_manifest_does_not_list(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli.main(["bench", "memory", "--quick", "--repeats", "1", "--out", str(out)]) == 0
    (out / "results.md").write_text("written by hand")
    before = _files(out)
    assert cli.main(["bench", "run", *TINY, "--out", str(out), "--force"]) == 2
    assert _files(out) == before


def test_force_accepts_an_output_folder_from_before_the_manifest(tmp_path: Path) -> None:
    out = tmp_path / "old"
    out.mkdir()
    (out / "bench.csv").write_text("old csv")
    (out / "results.md").write_text("old md")
    assert cli.main(["bench", "run", *TINY, "--no-plot", "--out", str(out), "--force"]) == 0
    assert sorted(_files(out)) == ["bench.csv", "bench.json", "results.md"]
    assert (out / "bench.csv").read_text() != "old csv"


def test_monitor_overhead_writes_strict_json_and_markdown(tmp_path: Path) -> None:
    out = tmp_path / "mo"
    assert cli.main(["bench", "monitor-overhead", "--rounds", "1", "--steps", "1", "--out", str(out)]) == 0
    document = json.loads((out / "monitor_overhead.json").read_text(), parse_constant=lambda name: 1 / 0)
    settings = [(row["model"], row["setting"]) for row in document["results"]]
    assert settings == [(model, s) for model in ("cnn", "mlp") for s in ("off", "every=1", "every=1,grads", "every=4")]
    assert all(row["median_ratio"] > 0 for row in document["results"])
    assert [row["median_ratio"] for row in document["results"] if row["setting"] == "off"] == [1.0, 1.0]
    assert "| model | setting |" in (out / "monitor_overhead.md").read_text()


def test_e2e_is_a_mode(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "e2e", "--families", "mlp128", "--rounds", "1", "--steps", "1", "--warmup", "0"]
    assert cli.main([*args, "--no-after-op", "--no-secondary", "--clock", "cpu"]) == 0
    assert "| mlp128 |" in capsys.readouterr().out
