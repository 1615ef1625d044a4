"""Runs that end in NaN or inf, and models with no rectifier: recorded, summarised, reported, resumable.

The reproducers of issue 13 at a tiny size: ``--lr 100`` on 64 XOR samples blows up within two
epochs for every seed, as ``--lr 0.2`` on digits and ``prelu depth --lr 5`` did at full size.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from torch import nn

from prelu import cli
from prelu.lab import claims, compare, compare_report, depth, depth_report
from prelu.lab.summary import stat, summarize

TINY = {"dataset": "xor", "limit": 64, "epochs": 2, "batch_size": 32, "seeds": 2, "width": 8}


def linear_net(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A user's model with no rectifier at all (``--model test_divergence:linear_net``)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[-1], num_classes))


def strict_json(path: Path) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"{path} holds {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_a_diverged_compare_is_recorded_reported_and_resumable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["compare", "--dataset", "xor", "--limit", "64", "--epochs", "2", "--batch-size", "32", "--seeds", "2",
             "--activations", "relu", "prelu", "--width", "8", "--lr", "100", "--out", str(tmp_path), "--name", "div",
             "--no-progress"]  # fmt: skip
    assert cli.main([*flags, "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "diverged" in out and "n/a" in out
    folder = tmp_path / "div"
    results = strict_json(folder / "results.json")
    assert results["complete"] and results["finished"] == 2
    diverged = [run for run in results["runs"] if run["diverged"]]
    assert diverged, results["runs"]
    for run in diverged:
        assert run["divergence"]["epoch"] == run["diverged"] >= 1
        assert run["divergence"]["statistic"] in ("running_loss", "train_loss")
        assert run["divergence"]["value"] in ("nan", "inf", "-inf")
        record = strict_json(folder / "runs" / f"{run['id']}.json")
        assert len(record["curve"]) == run["diverged"] + 1  # stopped at the epoch it diverged
    page = (folder / "report.html").read_text()
    assert "Incomplete" not in page and page.rstrip().endswith("</html>") and "diverged" in page
    for row in results["claims"]:
        assert row["verdict"] in (claims.AGREE, claims.DISAGREE, claims.INCONCLUSIVE)
    # --resume on the folder: the diverged runs are finished runs; one more seed adds two runs.
    assert cli.main([*flags, "--resume"]) == 0
    results = strict_json(folder / "results.json")
    assert results["finished"] == 4 and results["complete"]
    assert sorted(p.name for p in (folder / "runs").iterdir()) == [
        "prelu-seed0.json", "prelu-seed1.json", "relu-seed0.json", "relu-seed1.json"
    ]  # fmt: skip


def test_depth_with_a_huge_learning_rate_finishes_with_a_report(tmp_path: Path) -> None:
    results = depth.run(out=tmp_path, name="deep", quiet=True, layers=4, width=16, epochs=2, seeds=1, limit=64,
                        batch_size=32, lr=50.0)  # fmt: skip
    assert results["complete"] and results["finished"] == 4
    assert any(run["diverged"] for run in results["runs"])
    assert all(run["trains"] is False for run in results["runs"] if run["diverged"])
    assert [row["claim"][:20] for row in results["claims"]] == ["Kaiming init trains ", "Early-layer slopes a"]
    strict_json(tmp_path / "deep" / "results.json")
    page = (tmp_path / "deep" / "report.html").read_text()
    assert page.count("<img") >= 3 and "epoch " in page  # the figures, and the runs' divergence epochs


def test_a_model_with_no_rectifier_says_so(tmp_path: Path) -> None:
    results = compare.run(out=tmp_path, name="lin", quiet=True, model="test_divergence:linear_net",
                          activations=["relu", "prelu"], **{**TINY, "epochs": 1})  # type: ignore[arg-type]  # fmt: skip
    assert results["complete"]
    summary = results["summary"]
    assert summary["relu"]["layers"] == {} and summary["relu"]["dead_fraction"]["mean"] is None
    headers, rows = compare_report.table_rows(summary, 0.9)
    assert all(row[headers.index("dead units %")] == "no rectifier" for row in rows)
    assert all(row[headers.index("final slopes (per layer)")] == "no rectifier" for row in rows)
    dead_units, slopes = results["claims"][:2]  # the two claims about rectifiers: nothing to measure
    assert dead_units["claim"].startswith("PReLU cuts dead units") and dead_units["verdict"] == claims.INCONCLUSIVE
    assert slopes["claim"].startswith("Learned slopes settle") and slopes["verdict"] == claims.INCONCLUSIVE
    page = (tmp_path / "lin" / "report.html").read_text()
    assert "No rectifier layers" in page and "no rectifier" in page


def all_diverged(seed: int, layers: int = 3) -> dict:
    """A run record that diverged at epoch 1: every number after it is missing."""
    names = [f"body.{2 * i + 2}" for i in range(layers)]
    nothing = {"train_loss": None, "train_acc": None, "test_loss": None, "test_acc": None, "dead_fraction": None}
    curve = [
        {"epoch": 0, "train_loss": 2.3, "test_acc": 0.1, "slopes": dict.fromkeys(names, 0.25)},
        {"epoch": 1, **nothing, "slopes": dict.fromkeys(names)},
    ]
    record_layers = [
        {"name": n, "kind": "prelu.PReLU", "units": 4, "dead_units": None, "dead_fraction": None,
         "negative_fraction": None, "slope_mean": None, "slope_min": None, "slope_max": None, "learnable": True,
         "hist_counts": None, "hist_range": [None, None], "underflow": None, "overflow": None}
        for n in names
    ]  # fmt: skip
    final = {**nothing, "initial_train_loss": 2.3, "epochs_to_target": None, "seconds_per_epoch": 0.01}
    return {
        "id": f"g-seed{seed}",
        "group": "g",
        "seed": seed,
        "epochs": 3,
        "curve": curve,
        "layers": record_layers,
        "final": final,
        "diverged": 1,
        "divergence": {"epoch": 1, "statistic": "running_loss", "value": "nan"},
    }


def test_every_claim_table_and_figure_takes_missing_numbers() -> None:
    gone = summarize([all_diverged(0), all_diverged(1)])
    assert gone["diverged"] == 2 and gone["test_acc"]["mean"] is None
    summaries = {"relu": gone, "prelu": gone, "prelu_shared": gone}
    for row in claims.compare_claims(summaries, target=0.9, epochs=3):
        if not row["claim"].startswith("Barely any overhead"):  # epoch times are measured until the blow-up
            assert row["verdict"] == claims.INCONCLUSIVE, row
    groups = {"kaiming/relu": [all_diverged(0)], "xavier/relu": [all_diverged(0)], "kaiming/prelu": [all_diverged(0)]}
    depth_summaries = {key: summarize(records) for key, records in groups.items()}
    init, layer = claims.depth_claims(groups, depth_summaries, ["relu", "prelu"])
    assert "n/a" in init["number"] and "diverged" in init["number"]
    assert layer["verdict"] == claims.INCONCLUSIVE and "n/a" in layer["number"]
    _, rows = compare_report.table_rows(summaries, 0.9)
    assert rows[0][1] == "2 (2 diverged)" and rows[0][2] == "n/a"
    _, rows = depth_report.table_rows(depth_summaries, groups)
    assert rows[0][1] == "0/1 (1 diverged)" and "n/a" in rows[0][2]
    from prelu.lab import report

    for figure in (
        report.curves_figure(summaries, 0.9),
        report.dead_units_figure(summaries),
        report.slopes_figure(summaries),
        report.histograms_figure(summaries),
        depth_report.loss_figure(depth_summaries, groups, ["relu", "prelu"]),
        depth_report.signal_figure(groups),
        depth_report.slope_depth_figure(depth_summaries),
    ):
        assert figure is None or figure.startswith("<")
    assert "n/a" in report.slope_table(summaries)


def test_stat_ignores_missing_and_non_finite_values() -> None:
    summary = stat([0.5, None, float("nan"), float("inf"), 0.7])
    assert summary["n"] == 2 and math.isclose(summary["mean"], 0.6)
    assert stat([None, None]) == {"mean": None, "std": None, "n": 0, "values": [None, None]}
