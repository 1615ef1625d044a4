"""prelu._io.jsonio: one cleaner; the files it writes are strict JSON (no NaN, no Infinity)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from prelu._io import read_json, strict_json, write_json


def _strict_loads(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@dataclasses.dataclass
class Record:
    name: str
    loss: float
    slopes: tuple[float, ...]


def test_non_finite_numbers_become_null_at_any_depth(tmp_path: Path) -> None:
    value = {
        "a": float("nan"),
        "b": [1.0, float("inf"), {"c": -float("inf")}],
        "record": Record("x", float("nan"), (0.25, float("nan"))),
        7: (1, 2),
    }
    path = write_json(tmp_path / "r.json", value)
    loaded = _strict_loads(path.read_text())
    assert loaded == {
        "a": None,
        "b": [1.0, None, {"c": None}],
        "record": {"name": "x", "loss": None, "slopes": [0.25, None]},
        "7": [1, 2],
    }
    assert read_json(path) == loaded
    assert strict_json(0.5) == 0.5 and strict_json("nan") == "nan"


def test_what_json_cannot_hold_is_an_error_not_a_silent_string(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_json(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists()


def test_reading_malformed_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"broken\.json is not valid JSON"):
        read_json(path)
