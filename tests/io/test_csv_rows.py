"""prelu._io.csvio: rows with fixed columns, written atomically and read back as strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from prelu._io import read_csv, write_csv


def test_round_trip_with_quotes_commas_and_missing_values(tmp_path: Path) -> None:
    rows = [{"machine": 'Xeon "Gold", 2 cores', "value": 1.5, "note": None}, {"machine": "m", "value": 2}]
    path = write_csv(tmp_path / "a.csv", rows, ["machine", "value", "note"])
    assert read_csv(path) == [
        {"machine": 'Xeon "Gold", 2 cores', "value": "1.5", "note": ""},
        {"machine": "m", "value": "2", "note": ""},
    ]
    assert path.read_text().splitlines()[0] == "machine,value,note"


def test_a_key_outside_the_columns_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valeu"):
        write_csv(tmp_path / "a.csv", [{"valeu": 1}], ["value"])
    assert not (tmp_path / "a.csv").exists()
