"""prelu.bench.compile_step: every family runs, compiles once (a recompile would raise), and the
table holds the ratios the README quotes."""

import pytest

from prelu.bench import compile_step


def test_every_family_runs_and_reports_its_ratios(capsys):
    assert compile_step.main(["--steps", "1", "--rounds", "1", "--backend", "eager", "--families", "ffn"]) == 0
    table = capsys.readouterr().out
    assert "prelu.PReLU eager" in table and "nn.ReLU" in table
    rows = compile_step.run(("cnn", "mlp"), width=8, batch=2, steps=1, rounds=2, backend="eager")
    for family in ("cnn", "mlp"):
        variants = {row["variant"]: row for row in rows if row["family"] == family}
        assert set(variants) == {"nn.ReLU", "nn.PReLU", "prelu.PReLU"}
        assert variants["nn.ReLU"]["ratio_to_relu"] == 1.0
        assert variants["nn.PReLU"]["ratio_to_nn_prelu"] == 1.0
        assert all(row["ms"] > 0 for row in variants.values())


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        compile_step.main(["--steps", "0"])
    with pytest.raises(ValueError, match="unknown family"):
        compile_step.run(("cnm",), steps=1, rounds=1)
