"""``prelu slopes`` on files that torch.save did not write: one line naming the file, exit code 1,
no traceback, and no ``--trust`` hint (trusting the file would not help)."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from prelu import cli


def make_files(folder: Path) -> dict[str, Path]:
    """One file of each kind a user might pass by mistake, and two damaged torch files."""
    names = ("empty.pt", "text.pt", "bytes.pt", "other.zip", "array.npy", "data.json", "plain.pkl", "cut.pt", "bad.pt")
    paths = {name: folder / name for name in names}
    paths["empty.pt"].write_bytes(b"")
    paths["text.pt"].write_text("hello, not a checkpoint\n")
    paths["bytes.pt"].write_bytes(bytes(range(256)) * 4)
    with zipfile.ZipFile(paths["other.zip"], "w") as archive:
        archive.writestr("a.txt", "x")
    np.save(paths["array.npy"], np.zeros(3))
    paths["data.json"].write_text(json.dumps({"weight": [0.25]}))
    paths["plain.pkl"].write_bytes(pickle.dumps({"weight": 0.25}))
    good = folder / "good.pt"
    torch.save(nn.Sequential(nn.Linear(2, 2), nn.PReLU()).state_dict(), good)
    paths["cut.pt"].write_bytes(good.read_bytes()[:300])  # truncated: the zip's directory is missing
    damaged = bytearray(good.read_bytes())
    start = damaged.find(b"data.pkl") + 40
    damaged[start : start + 40] = b"\xff" * 40  # the pickle inside the archive is garbage
    paths["bad.pt"].write_bytes(bytes(damaged))
    return paths


@pytest.mark.parametrize("trust", [False, True])
def test_non_torch_files_give_one_line_naming_the_file(
    tmp_path: Path, trust: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, path in make_files(tmp_path).items():
        code = cli.main(["slopes", str(path), *(["--trust"] if trust else [])])
        captured = capsys.readouterr()
        assert code == 1, (name, captured)
        assert captured.err.count("\n") == 1 and str(path) in captured.err, (name, captured.err)
        assert "Traceback" not in captured.err
        if name != "bad.pt":  # a real torch archive with a damaged pickle might hold objects
            assert "--trust" not in captured.err, (name, captured.err)


def test_a_folder_and_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["slopes", str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err
    assert cli.main(["slopes", str(tmp_path / "missing.pt")]) == 1
    assert "No such file" in capsys.readouterr().err


def test_a_real_state_dict_still_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save(nn.Sequential(nn.Linear(2, 2), nn.PReLU()).state_dict(), tmp_path / "good.pt")
    assert cli.main(["slopes", str(tmp_path / "good.pt")]) == 0
    assert "0.25" in capsys.readouterr().out
