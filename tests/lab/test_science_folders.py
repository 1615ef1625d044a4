"""``prelu dying`` and ``prelu gan`` keep the lab's run-folder rules (they are not on the Experiment
protocol: :mod:`prelu.lab.standalone` applies :mod:`prelu.lab.runs` for them) and escape their reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prelu import cli
from prelu.lab import dying_report, gan_report
from prelu.lab.lock import FolderLock

GAN = ["gan", "--seeds", "1", "--steps", "4", "--eval-every", "2", "--width", "8", "--no-progress"]
DYING = ["dying", "--lrs", "0.01", "--seeds", "1", "--epochs", "1", "--limit", "200", "--no-progress"]


def exit_code(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exit:  # argparse
        return int(exit.code or 0)


@pytest.mark.parametrize("argv", [GAN, DYING], ids=["gan", "dying"])
def test_name_must_stay_under_out(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs"
    assert exit_code([*argv, "--out", str(out), "--name", "../escape"]) == 2
    assert "single folder name" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "escape").exists()


@pytest.mark.parametrize("argv", [GAN, DYING], ids=["gan", "dying"])
def test_force_deletes_only_lab_folders(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep me")
    assert exit_code([*argv, "--out", str(tmp_path), "--name", "mine", "--force"]) == 2
    assert "not a run folder made by prelu's lab" in capsys.readouterr().err
    assert (mine / "thesis.tex").read_text() == "keep me" and sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]


def test_a_folder_resumes_only_as_its_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"experiment": "compare", "format": 2}))
    assert exit_code([*GAN, "--out", str(tmp_path), "--name", "shared", "--resume"]) == 2
    assert "holds a 'prelu compare' experiment" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]


def test_gan_runs_resumes_and_refuses_a_second_writer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*GAN, "--out", str(tmp_path), "--activations", "relu", "leaky_relu"]
    assert exit_code(argv) == 0
    folder = tmp_path / "gan-ring"
    config = json.loads((folder / "config.json").read_text())
    assert config["experiment"] == "gan" and config["format"] == 2
    assert sorted(p.name for p in (folder / "runs").iterdir()) == ["leaky_relu-seed0.json", "relu-seed0.json"]
    assert exit_code(argv) == 2  # exists: neither --resume nor --force
    capsys.readouterr()
    # --resume with one more seed: the two finished runs are kept (read back as GAN runs), two are added.
    before = (folder / "runs" / "relu-seed0.json").stat().st_mtime_ns
    assert exit_code([*argv, "--resume", "--seeds", "2"]) == 0
    assert "is not a run record" not in capsys.readouterr().err
    assert (folder / "runs" / "relu-seed0.json").stat().st_mtime_ns == before
    assert len(list((folder / "runs").glob("*.json"))) == 4
    with FolderLock(folder):  # another writer holds the folder (flock conflicts across open files)
        assert exit_code([*argv, "--force"]) == 2
    assert "is in use by process" in capsys.readouterr().err
    assert len(list((folder / "runs").glob("*.json"))) == 4


def test_reports_escape_text_once() -> None:
    results = {
        "complete": False,
        "finished": 1,
        "expected": 2,
        "summary": {},
        "claims": [
            {
                "claim": "<i>c</i>",
                "source": "s",
                "number": "n",
                "rule": "r",
                "verdict": "agree",
                "verdict_text": "agree",
            }
        ],
    }
    config = {
        "model": "mlp",
        "activations": ["relu"],
        "lrs": [0.1],
        "seeds": 1,
        "epochs": 1,
        "batch_size": 8,
        "optimizer": "adam",
        "momentum": 0.9,
        "weight_decay": 0.0,
        "init": "kaiming",
        "dataset": "digits & <b>",
    }
    page = dying_report.page(config, "<script>alert(1)</script>", results)
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&amp;lt;" not in page
    assert "&lt;i&gt;c&lt;/i&gt;" in page and "<b>Incomplete: 1 of 2 runs.</b>" in page
    assert "digits &amp; &lt;b&gt;" in page
    gan_config = {"data": "<svg onload=x>", "activations": ["relu"], "width": 8, "noise": 2, "seeds": 1}
    gan_config.update(steps=4, batch_size=8, lr=0.001)
    page = gan_report.page(gan_config, results, {})
    assert "<svg" not in page and "&lt;svg onload=x&gt;" in page and "&amp;lt;" not in page
    assert "<b>Incomplete: 1 of 2 runs.</b>" in page


def test_dying_resumes_with_more_rates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*DYING, "--out", str(tmp_path), "--activations", "relu", "prelu"]
    assert exit_code(argv) == 0
    folder = tmp_path / "dying-digits-mlp"
    config = json.loads((folder / "config.json").read_text())
    assert config["experiment"] == "dying" and config["lrs"] == [0.01] and config["lr"] == 0.01
    capsys.readouterr()
    # --lrs may grow on --resume (a run-set option); the finished rate's runs are kept.
    assert exit_code([*argv, "--resume", "--lrs", "0.01", "0.03"]) == 0
    captured = capsys.readouterr()
    assert "2 finished run(s) kept, 2 to go" in captured.err + captured.out
    results = json.loads((folder / "results.json").read_text())
    assert results["complete"] and results["finished"] == 4 and results["format"] == 2
    assert {run["lr"] for run in results["runs"]} == {0.01, 0.03}
    assert exit_code([*argv, "--resume", "--epochs", "2"]) == 2  # a fixed setting may not change
    assert "--resume: the folder was made with other settings" in capsys.readouterr().err
