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
    assert table["learned_vectors"] == {"mlp128": {"biases": 4, "slopes": 3}, "ffn": {"biases": 2, "slopes": 1}}


def test_bad_counts_exit_2():
    assert e2e.main(["--rounds", "0"]) == 2


@pytest.mark.parametrize("family", e2e.FAMILIES)
def test_the_no_bias_reference_is_the_relu_model_without_its_linear_biases(family):
    """relu_no_bias learns exactly the Linear biases fewer than relu, and nothing else changes shape."""
    model, x, _, _ = e2e.build(family, e2e.NO_BIAS)
    reference, reference_x, _, _ = e2e.build(family, "relu")
    linears = [m for m in reference.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(m.bias is not None for m in linears)
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Linear))
    shapes = sorted(tuple(p.shape) for p in model.parameters())
    biases = [tuple(m.bias.shape) for m in linears]
    reference_shapes = [tuple(p.shape) for p in reference.parameters()]
    for shape in biases:
        reference_shapes.remove(shape)
    assert shapes == sorted(reference_shapes)
    assert x.shape == reference_x.shape
    prelu_model = e2e.build(family, "prelu")[0]
    assert e2e.learned_vectors({"relu": reference, "prelu": prelu_model}) == {
        "biases": len(biases),
        "slopes": sum(isinstance(m, prelu.PReLU) for m in prelu_model.modules()),
    }


def test_vector_prices_need_both_variants_of_a_pair():
    """A price is (with - without) ÷ count, and is left out where a variant did not run."""
    table = {
        "medians_ms": {
            "a": {"relu": 1.0, "relu_no_bias": 0.9, "prelu": 1.2, "prelu_frozen": 1.1},
            "b": {"relu": 1.0, "prelu": 1.2},
        },
        "learned_vectors": {"a": {"biases": 2, "slopes": 4}, "b": {"biases": 2, "slopes": 4}},
    }
    prices = e2e.vector_prices(table)
    assert prices["a"] == pytest.approx({"bias": 100.0 / 2, "slope": 100.0 / 4})
    assert "b" not in prices
    long_step = {name: ms * 10 * e2e.PRICED_STEP_MS for name, ms in table["medians_ms"]["a"].items()}
    assert e2e.vector_prices({**table, "medians_ms": {"a": long_step}}) == {}  # its noise would hide them
    ratios = {
        family: {name: ms / medians["relu"] for name, ms in medians.items()}
        for family, medians in table["medians_ms"].items()
    }
    text = e2e.markdown(
        {
            **table,
            "ratios": ratios,
            "threads": 1,
            "torch": "x",
            "clock": "cpu",
            "rounds": 2,
            "steps_per_turn": {"a": 3, "b": 4},
        }
    )
    assert "| a | 6 | 1.00 |" in text and "| b | 8 | 1.00 |" in text  # steps timed: rounds x steps per turn
    assert "| a | 2 | 50.0 | 4 | 25.0 |" in text and "| b | 2 |" not in text


def test_steps_per_turn_keeps_the_asked_count_for_long_steps_and_adds_for_short_ones(monkeypatch):
    """One timed call decides: a turn of the returned count lasts at least ``min_turn_s``."""
    calls = []
    clock = iter([10.0, 10.001, 20.0, 20.001])  # each timed step "takes" 1 ms
    monkeypatch.setattr(e2e.time, "perf_counter", lambda: next(clock))
    assert e2e.steps_per_turn(lambda: calls.append(1), 3, min_turn_s=0.002) == 3  # 3 x 1 ms is long enough
    assert e2e.steps_per_turn(lambda: calls.append(1), 3, min_turn_s=0.0205) == 21  # ceil(20.5 ms / 1 ms)
    assert len(calls) == 4  # per call: one untimed step (one-time costs), one timed
