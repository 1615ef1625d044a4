"""The lab's command line as a careless or hostile user meets it: absurd numbers, SIGTERM, random flags.

The property test is bounded (a handful of examples, tiny data and epochs) so it stays fast; it
asserts what any flags must give: exit code 0, 1 or 2, no traceback, nothing outside ``--out``
touched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prelu import cli

SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def main(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exit:  # argparse's own errors
        return int(exit.code or 0)


@pytest.mark.parametrize(
    ("command", "flags", "message"),
    [
        ("compare", ["--lr", "1e308"], "--lr must be <= 100"),
        ("compare", ["--lr", "inf"], "--lr must be a finite number"),
        ("compare", ["--lr", "nan"], "--lr must be a finite number"),
        ("compare", ["--momentum", "5"], "--momentum must be <= 1"),
        ("compare", ["--weight-decay", "1e300"], "--weight-decay must be <="),
        ("compare", ["--epochs", "1000000000000"], "--epochs must be <="),
        ("compare", ["--seeds", "1000000000"], "--seeds must be <="),
        ("compare", ["--batch-size", "10000000000"], "--batch-size must be <="),
        ("compare", ["--width", "100000000"], "parameters (the lab allows up to"),
        ("compare", ["--model", "resnet", "--dataset", "digits", "--depth", "40"], "parameters (the lab allows up to"),
        ("depth", ["--layers", "10000000"], "--layers must be <="),
        ("depth", ["--width", "100000"], "parameters (the lab allows up to"),
        ("depth", ["--lr", "1e308"], "--lr must be <= 100"),
    ],
)
def test_absurd_numbers_are_refused_before_anything_is_written(
    command: str, flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    dataset = ["--dataset", "xor"] if command == "compare" and "--dataset" not in flags else []
    assert main([command, *dataset, "--limit", "64", "--out", str(out), *flags]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error
    assert not out.exists()


def test_sigterm_keeps_finished_runs_marks_the_report_and_exits_143(tmp_path: Path) -> None:
    flags = ["compare", "--dataset", "xor", "--limit", "96", "--epochs", "2", "--batch-size", "32", "--seeds", "2",
             "--activations", "relu", "prelu", "--width", "8", "--out", str(tmp_path), "--name", "term",
             "--no-progress"]  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "prelu", *flags], env=SUBPROCESS_ENV, stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True)  # fmt: skip
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if line.startswith("finished "):
            process.send_signal(signal.SIGTERM)
            break
    rest = process.stderr.read()
    assert process.wait(timeout=120) == 143, "".join(lines) + rest
    assert "terminated (SIGTERM)" in rest and "Traceback" not in rest
    folder = tmp_path / "term"
    results = json.loads((folder / "results.json").read_text())
    assert not results["complete"] and 1 <= results["finished"] < 4
    assert len(list((folder / "runs").iterdir())) == results["finished"]
    assert "Incomplete:" in (folder / "report.html").read_text()
    assert main([*flags, "--resume"]) == 0
    assert json.loads((folder / "results.json").read_text())["complete"]


def snapshot(root: Path, skip: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` outside ``skip``: bytes and modification time."""
    return {
        str(path): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file() and skip not in path.parents
    }


NAMES = st.sampled_from(["run", "..", ".", "a/b", "/tmp", "", "x y", "<script>"])
NUMBERS = st.sampled_from(["0", "-1", "0.05", "1", "2", "1e308", "nan", "inf", "abc", "1e-9"])
FLAGS = st.fixed_dictionaries(
    {},
    optional={
        "--lr": NUMBERS,
        "--momentum": NUMBERS,
        "--weight-decay": NUMBERS,
        "--epochs": st.sampled_from(["1", "2", "0", "-3", "x", "1000000000000"]),
        "--seeds": st.sampled_from(["1", "2", "0", "999999999999"]),
        "--batch-size": st.sampled_from(["16", "32", "7", "0", "100000"]),
        "--width": st.sampled_from(["4", "8", "0", "100000000"]),
        "--target": st.sampled_from(["0.5", "95%", "2", "0", "x"]),
        "--model": st.sampled_from(["mlp", "cnn", "nope:fn", "test_lab_commands:snapshot", "prelu:nothing"]),
        "--activations": st.sampled_from(["relu", "prelu,relu", "swish", "relu,relu", ","]),
        "--optimizer": st.sampled_from(["sgd", "adam", "rmsprop"]),
        "--name": NAMES,
    },
)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(flags=FLAGS, force=st.booleans(), resume=st.booleans())
def test_random_flags_exit_0_1_or_2_without_traceback_touching_only_out(
    flags: dict[str, str], force: bool, resume: bool
) -> None:
    with tempfile.TemporaryDirectory() as root:
        base = Path(root)
        (base / "keep").mkdir()
        (base / "keep" / "precious.txt").write_text("mine")
        out = base / "out"
        (out / "other").mkdir(parents=True)
        (out / "other" / "notes.txt").write_text("mine too")
        before = snapshot(base, out)
        argv = ["compare", "--dataset", "xor", "--limit", "64", "--epochs", "1", "--seeds", "1", "--width", "4",
                "--activations", "relu", "--out", str(out), "--no-progress"]  # fmt: skip
        for flag, value in flags.items():
            argv += [flag, value]
        argv += ["--force"] * force + ["--resume"] * resume
        code = main(argv)
        assert code in (0, 1, 2), argv
        assert snapshot(base, out) == before, argv
        assert (out / "other" / "notes.txt").read_text() == "mine too", argv
