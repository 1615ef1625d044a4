"""prelu.bench.e2e: the families build, train, and the tables say what was measured."""

from __future__ import annotations

import json

import pytest
import torch

import prelu
from prelu.bench import e2e


@pytest.mark.parametrize("family", e2e.FAMILIES)
def test_every_family_trains_its_activation(family):
    """A step changes the slopes of prelu.PReLU (so the step really runs backward and update)."""
    for name in ("prelu", "prelu_inplace"):
        built = e2e.build(family, name)
        assert built is not None
        model, x, target, kind = built
        slopes = [m for m in model.modules() if isinstance(m, prelu.PReLU)]
        assert len(slopes) >= 1
        before = [m.weight.detach().clone() for m in slopes]
        e2e.training_step(model, x, target, kind)()
        assert any(not torch.equal(b, m.weight) for b, m in zip(before, slopes, strict=True))
    assert (e2e.build(family, "nn_prelu") is None) == (family == "ffn")


@pytest.mark.parametrize("family", e2e.FAMILIES)
def test_the_frozen_variant_computes_prelus_function_without_learning_slopes(family):
    """prelu_frozen is the same model as prelu (same seed, slopes 0.25) whose slopes are buffers:
    same outputs, and a step leaves them as they were."""
    model, x, target, kind = e2e.build(family, "prelu_frozen")
    reference, _, _, _ = e2e.build(family, "prelu")
    frozen = [m for m in model.modules() if isinstance(m, prelu.FrozenPReLU)]
    assert frozen and not any(isinstance(m, prelu.PReLU) for m in model.modules())
    assert all(not any(p is m.weight for p in model.parameters()) for m in frozen)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
    before = [m.weight.clone() for m in frozen]
    e2e.training_step(model, x, target, kind)()
    assert all(torch.equal(b, m.weight) for b, m in zip(before, frozen, strict=True))


def test_channels_last_family_runs_in_channels_last():
    model, x, _, _ = e2e.build("cnn_cl", "prelu")
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_main_prints_ratios_to_relu_and_writes_json(tmp_path, capsys):
    out = tmp_path / "e2e.json"
    code = e2e.main(
        [
            "--families",
            "mlp128",
            "ffn",
            "--rounds",
            "1",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--no-secondary",
            "--no-after-op",
            "--clock",
            "cpu",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| mlp128 |" in printed and "| ffn |" in printed and "–" in printed  # no nn.PReLU for ffn
    table = json.loads(out.read_text())
    assert table["ratios"]["mlp128"]["relu"] == 1.0
    for family in ("mlp128", "ffn"):
        medians = table["medians_ms"][family]
        for name, ratio in table["ratios"][family].items():
            assert ratio == pytest.approx(medians[name] / medians["relu"], abs=1e-4)  # rounded to 4 places


def test_bad_counts_exit_2():
    assert e2e.main(["--rounds", "0"]) == 2
