"""prelu._io.Table: one table, four renderers; HTML and rich never run what a cell says."""

from __future__ import annotations

import pytest
from rich.console import Console

from prelu._io import Table

HOSTILE = "<script>alert(1)</script>"


def test_text_pads_columns_and_right_aligns_numbers_but_not_names() -> None:
    table = Table(["layer", "slope", "note"], [["conv1", "0.25", "a"], ["fc", "10", ""]], title="Slopes")
    assert table.to_text() == "\n".join(
        [
            "Slopes",
            "layer  slope  note",
            "-----  -----  ----",
            "conv1   0.25  a",
            "fc        10",
        ]
    )


def test_explicit_alignment_wins() -> None:
    # "abc" under "name" (width 4) right-aligned gets a space in front; "1" under "count" stays left
    table = Table(["name", "count"], [["abc", "1"]], align=["right", "left"])
    assert table.to_text().splitlines() == ["name  count", "----  -----", " abc  1"]


def test_markdown_has_header_rule_and_escaped_pipes() -> None:
    text = Table(["a", "b"], [["x|y", "2"]], title="T").to_markdown()
    assert text.splitlines() == ["## T", "", "| a | b |", "|---|---|", "| x\\|y | 2 |"]


def test_html_escapes_every_cell_header_and_title() -> None:
    table = Table([HOSTILE, "n"], [[HOSTILE, "1 & 2"]], title=HOSTILE)
    text = table.to_html()
    assert "<script>" not in text and "alert(1)" in text
    assert text.count("&lt;script&gt;") == 3
    assert "1 &amp; 2" in text
    assert '<td class="num">' not in text  # "1 & 2" is not a number: not aligned as one


def test_html_marks_number_columns() -> None:
    assert '<td class="num">64</td>' in Table(["name", "count"], [["conv1", "64"]]).to_html()


def test_rich_prints_cells_literally() -> None:
    console = Console(record=True, width=200)
    console.print(Table(["name", "value"], [["[bold red]x[/bold red]", "3.5"]], title="T").to_rich())
    text = console.export_text()
    assert "[bold red]x[/bold red]" in text and "3.5" in text and "T" in text


def test_rows_must_match_the_columns() -> None:
    with pytest.raises(ValueError, match="row 1 has 1 cells, the table 2 columns"):
        Table(["a", "b"], [["1", "2"], ["3"]])
    with pytest.raises(ValueError, match="align"):
        Table(["a"], [["1"]], align=["middle"])
