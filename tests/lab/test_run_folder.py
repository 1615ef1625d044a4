"""The run folder's rules: what ``--force``, ``--name``, ``--resume`` and a second writer may do.

Every refusal is checked twice: the exit code / error names the problem, and the files on disk
are exactly as they were (compared by content and modification time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prelu import cli
from prelu.lab import ConfigError, compare, depth, files, runs
from prelu.lab.lock import FolderLock

TINY = {"dataset": "xor", "limit": 64, "epochs": 1, "batch_size": 32, "seeds": 1, "activations": ["relu"], "width": 4}
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: its bytes and modification time."""
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def main(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exit:  # argparse's own errors
        return int(exit.code or 0)


def tiny_flags(out: Path, name: str) -> list[str]:
    return ["compare", "--dataset", "xor", "--limit", "64", "--epochs", "1", "--batch-size", "32", "--seeds", "1",
            "--activations", "relu", "--width", "4", "--out", str(out), "--name", name, "--no-progress"]  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A user's files beside and inside --out: ``keep/`` next to ``runs/``, and ``runs/other/``."""
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "precious.txt").write_text("mine")
    (tmp_path / "runs" / "other").mkdir(parents=True)
    (tmp_path / "runs" / "other" / "notes.txt").write_text("also mine")
    return tmp_path


@pytest.mark.parametrize("name", ["../keep", ".", "..", "a/b", "/abs/path", ""])
def test_a_name_that_leaves_out_is_refused_and_nothing_is_touched(
    name: str, tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(tree)
    for extra in ([], ["--force"], ["--resume"]):
        code = main([*tiny_flags(tree / "runs", name), *extra])
        assert code == 2, (name, extra)
        assert "--name" in capsys.readouterr().err
    assert snapshot(tree) == before


def test_force_deletes_only_a_folder_the_lab_made(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(tree)
    assert main([*tiny_flags(tree / "runs", "other"), "--force"]) == 2  # a user's folder, no config.json
    assert "not a run folder made by prelu's lab" in capsys.readouterr().err
    (tree / "runs" / "fake").mkdir()
    (tree / "runs" / "fake" / "config.json").write_text('{"epochs": 3}')  # a config.json, but not the lab's
    before = snapshot(tree)
    assert main([*tiny_flags(tree / "runs", "fake"), "--force"]) == 2
    assert "names no experiment kind" in capsys.readouterr().err
    assert snapshot(tree) == before
    (tree / "runs" / "link").symlink_to(tree / "keep")
    assert main([*tiny_flags(tree / "runs", "link"), "--force"]) == 2
    assert snapshot(tree) == before and (tree / "keep" / "precious.txt").exists()

    assert main(tiny_flags(tree / "runs", "mine")) == 0
    (tree / "runs" / "mine" / "stray.txt").write_text("old")
    assert main([*tiny_flags(tree / "runs", "mine"), "--force", "--epochs", "2"]) == 0
    assert not (tree / "runs" / "mine" / "stray.txt").exists()
    config = json.loads((tree / "runs" / "mine" / "config.json").read_text())
    assert config["experiment"] == "compare" and config["format"] == runs.FORMAT and config["epochs"] == 2
    assert (tree / "keep" / "precious.txt").read_text() == "mine"
    assert (tree / "runs" / "other" / "notes.txt").read_text() == "also mine"


def test_a_folder_belongs_to_one_kind_of_experiment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    depth.run(out=tmp_path, name="deep", quiet=True, layers=2, width=4, epochs=1, seeds=1, limit=64, batch_size=32,
              activations=["relu"], inits=["kaiming"])  # fmt: skip
    before = snapshot(tmp_path)
    assert main([*tiny_flags(tmp_path, "deep"), "--resume"]) == 2
    error = capsys.readouterr().err
    assert "holds a 'prelu depth' experiment" in error and error.count("\n") == 1
    assert snapshot(tmp_path) == before
    results = json.loads((tmp_path / "deep" / "results.json").read_text())
    assert results["experiment"] == "depth" and results["format"] == runs.FORMAT


def test_unreadable_or_wrongly_shaped_files_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    compare.run(out=tmp_path, name="tiny", quiet=True, **{**TINY, "seeds": 2})  # type: ignore[arg-type]
    folder = tmp_path / "tiny"
    config = folder / "config.json"
    good = config.read_text()
    for bad, message in [
        ("{not json", "cannot read"),
        ("[1, 2]", "does not hold a JSON object"),
        ('{"experiment": "compare", "format": 99}', "format 99"),
        (good.replace('"epochs": 1', '"epochs": "one"'), "setting 'epochs' should be int, got 'one'"),
        (good.replace('"activations": [', '"activations": [3, '), "setting 'activations'"),
    ]:
        config.write_text(bad)
        assert main([*tiny_flags(tmp_path, "tiny"), "--resume"]) == 2, bad
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error
        assert "Traceback" not in error
        if "setting" not in message:
            assert str(config) in error
    config.write_text(good)
    # A run file that cannot be read: named, and only that run is done again.
    (folder / "runs" / "relu-seed1.json").write_text("{broken")
    kept = (folder / "runs" / "relu-seed0.json").stat().st_mtime_ns
    trained: list[str] = []
    compare.run(out=tmp_path, name="tiny", resume=True, quiet=False, progress=False,
                on_run=lambda run_id, record: trained.append(run_id), **{**TINY, "seeds": 2})  # type: ignore[arg-type]  # fmt: skip
    assert trained == ["relu-seed1"]
    assert f"{folder / 'runs' / 'relu-seed1.json'}" in capsys.readouterr().err
    assert (folder / "runs" / "relu-seed0.json").stat().st_mtime_ns == kept
    assert files.read_json(folder / "runs" / "relu-seed1.json")["id"] == "relu-seed1"


def test_a_folder_from_before_the_format_version_still_resumes(tmp_path: Path) -> None:
    compare.run(out=tmp_path, name="old", quiet=True, **TINY)  # type: ignore[arg-type]
    config = tmp_path / "old" / "config.json"
    stored = json.loads(config.read_text())
    del stored["format"]  # what 0.1 wrote: the kind and the settings
    config.write_text(json.dumps(stored))
    trained: list[str] = []
    results = compare.run(out=tmp_path, name="old", resume=True, quiet=True,
                          on_run=lambda run_id, record: trained.append(run_id), **{**TINY, "seeds": 2})  # type: ignore[arg-type]  # fmt: skip
    assert trained == ["relu-seed1"] and results["complete"]


def test_a_second_writer_is_refused_at_once_naming_the_holder(tmp_path: Path) -> None:
    folder = tmp_path / "busy"
    folder.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from prelu.lab.lock import FolderLock; "
         "lock = FolderLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)", str(folder)],
        stdout=subprocess.PIPE, text=True, env=SUBPROCESS_ENV,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.perf_counter()
        with pytest.raises(ConfigError, match=rf"in use by process {holder.pid}\b.*--wait"):
            compare.run(out=tmp_path, name="busy", quiet=True, **TINY)  # type: ignore[arg-type]
        assert time.perf_counter() - started < 30  # refused at once, not after waiting
        assert not (folder / "config.json").exists()
    finally:
        holder.kill()
        holder.wait()
    # The holder died without unlocking: its lock is no lock, and the next writer takes it over.
    assert (folder / ".lock").read_text().strip() == str(holder.pid)
    assert compare.run(out=tmp_path, name="busy", quiet=True, **TINY)["complete"]  # type: ignore[arg-type]
    assert (folder / ".lock").read_text().strip() == str(os.getpid())


def test_wait_waits_for_the_holder(tmp_path: Path) -> None:
    folder = tmp_path / "busy"
    folder.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from prelu.lab.lock import FolderLock; "
         "lock = FolderLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(2)", str(folder)],
        stdout=subprocess.PIPE, text=True, env=SUBPROCESS_ENV,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.perf_counter()
        with FolderLock(folder, wait=True):
            assert holder.poll() is not None  # we got the lock only once the holder had ended
        assert time.perf_counter() - started > 0.5
    finally:
        holder.kill()
        holder.wait()


def test_two_writers_started_together_never_mix_their_results(tmp_path: Path) -> None:
    commands = [
        [sys.executable, "-m", "prelu", *tiny_flags(tmp_path, "shared"), "--epochs", str(epochs)] for epochs in (1, 2)
    ]
    done = [subprocess.Popen(c, env=SUBPROCESS_ENV, stderr=subprocess.PIPE, text=True) for c in commands]
    outcomes = sorted((process.wait(timeout=240), process.stderr.read() if process.stderr else "") for process in done)
    assert [code for code, _ in outcomes] == [0, 2], outcomes
    assert "in use by process" in outcomes[1][1] or "exists" in outcomes[1][1]
    config = json.loads((tmp_path / "shared" / "config.json").read_text())
    results = json.loads((tmp_path / "shared" / "results.json").read_text())
    assert results["config"]["epochs"] == config["epochs"]
    assert all(run["final"] is not None for run in results["runs"])
    record = files.read_json(tmp_path / "shared" / "runs" / "relu-seed0.json")
    assert record["epochs"] == config["epochs"]


def test_files_respect_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        compare.run(out=tmp_path, name="masked", quiet=True, **TINY)  # type: ignore[arg-type]
    finally:
        os.umask(previous)
    folder = tmp_path / "masked"
    for name in ("config.json", "results.json", "report.html", "runs/relu-seed0.json", "curves/relu-seed0.csv"):
        assert (folder / name).stat().st_mode & 0o777 == 0o640, name
    files.write_text(tmp_path / "plain.txt", "x")
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == 0o666 & ~previous
