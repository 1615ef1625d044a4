"""The claims' verdicts follow their stated rules from the numbers alone (summaries made by hand)."""

from __future__ import annotations

import re

from prelu.lab import claims
from prelu.lab.summary import stat, summarize


def summaries(relu: dict, ours: dict) -> dict:
    return {"relu": {"runs": 3, "seeds": [0, 1, 2], **relu}, "prelu": {"runs": 3, "seeds": [0, 1, 2], **ours}}


def test_claims_follow_the_numbers() -> None:
    def verdict(function, relu: dict, ours: dict, *args: object) -> str:
        return function(summaries(relu, ours), *args)["verdict"]

    better, worse = stat([0.95, 0.96, 0.97]), stat([0.90, 0.91, 0.92])
    noisy = stat([0.90, 0.96, 0.99])
    assert verdict(claims.accuracy_claim, {"test_acc": worse}, {"test_acc": better}) == claims.AGREE
    assert verdict(claims.accuracy_claim, {"test_acc": better}, {"test_acc": worse}) == claims.DISAGREE
    # Paired differences 0, 5, 7 pp: t interval [-5.0, 13.0] pp straddles 0.
    assert verdict(claims.accuracy_claim, {"test_acc": worse}, {"test_acc": noisy}) == claims.INCONCLUSIVE
    row = claims.accuracy_claim(summaries({"test_acc": worse}, {"test_acc": noisy}))
    assert re.fullmatch(r"inconclusive \(3 seeds; interval \[-4\.9\d+, 12\.9\d+\]\)", row["verdict_text"])
    assert "seeds would decide" in row["number"]
    assert verdict(claims.accuracy_claim, {"test_acc": stat([0.9])}, {"test_acc": stat([0.95])}) == claims.INCONCLUSIVE

    many, few = stat([0.30, 0.32, 0.28]), stat([0.01, 0.02, 0.0])
    assert verdict(claims.dead_units_claim, {"dead_fraction": many}, {"dead_fraction": few}) == claims.AGREE
    # ReLU far from ~30 % dead: the run does not test the claim.
    assert (
        verdict(claims.dead_units_claim, {"dead_fraction": stat([0.02, 0.03, 0.02])}, {"dead_fraction": few})
        == claims.INCONCLUSIVE
    )
    assert (
        verdict(claims.dead_units_claim, {"dead_fraction": many}, {"dead_fraction": stat([0.2, 0.25, 0.22])})
        == claims.DISAGREE
    )

    slow, fast = stat([0.010, 0.011, 0.012]), stat([0.0105, 0.0115, 0.0125])
    assert verdict(claims.overhead_claim, {"seconds_per_epoch": slow}, {"seconds_per_epoch": fast}) == claims.AGREE
    assert (
        verdict(claims.overhead_claim, {"seconds_per_epoch": slow}, {"seconds_per_epoch": stat([0.02] * 3)})
        == claims.DISAGREE
    )

    def epochs(values: list[int | None]) -> dict:
        censored = stat(11 if v is None else v for v in values)
        return {
            "epochs_to_target": {**stat(values), "reached": sum(v is not None for v in values)},
            "epochs_to_target_censored": censored,
        }

    assert verdict(claims.convergence_claim, epochs([8, 9, None]), epochs([3, 4, 3]), 0.9, 10) == claims.AGREE
    assert verdict(claims.convergence_claim, epochs([3, 4, 3]), epochs([3, 4, 3]), 0.9, 10) == claims.DISAGREE
    assert verdict(claims.convergence_claim, epochs([None] * 3), epochs([None] * 3), 0.9, 10) == claims.INCONCLUSIVE
    assert claims.compare_claims({"relu": {"runs": 3}}, target=0.9, epochs=3)[0]["verdict"] == claims.INCONCLUSIVE


def fake_record(seed: int, slopes: list[float], start: float = 0.25, loss: tuple[float, float] = (2.3, 0.5)) -> dict:
    """A run record with PReLU layers whose final mean slopes are ``slopes`` (initially ``start``)."""
    names = [f"body.{2 * i + 2}" for i in range(len(slopes))]
    curve = [
        {
            "epoch": e,
            "train_loss": loss[e > 0],
            "test_acc": 0.5,
            "slopes": {n: (start if e == 0 else s) for n, s in zip(names, slopes, strict=True)},
        }
        for e in range(3)
    ]
    layers = [
        {"name": n, "kind": "prelu.PReLU", "units": 4, "dead_units": 0, "dead_fraction": 0.0, "negative_fraction": 0.5,
         "slope_mean": s, "slope_min": s, "slope_max": s, "learnable": True, "slope_change": abs(s - start)}
        for n, s in zip(names, slopes, strict=True)
    ]  # fmt: skip
    final = {"test_acc": 0.5, "train_loss": loss[1], "initial_train_loss": loss[0], "epochs_to_target": None}
    return {"seed": seed, "epochs": 2, "curve": curve, "layers": layers, "final": final, "diverged": None}


def test_slope_claims_follow_the_numbers() -> None:
    settled = {"prelu": summarize([fake_record(s, [0.2, 0.15]) for s in range(2)])}
    assert claims.slopes_claim(settled)["verdict"] == claims.AGREE
    large = {"prelu": summarize([fake_record(s, [0.6, 0.7]) for s in range(2)])}
    assert claims.slopes_claim(large)["verdict"] == claims.DISAGREE
    unmoved = {"prelu": summarize([fake_record(s, [0.25, 0.251]) for s in range(2)])}
    assert claims.slopes_claim(unmoved)["verdict"] == claims.INCONCLUSIVE

    paper_like = {"kaiming/prelu": summarize([fake_record(s, [0.65, 0.3, 0.1, 0.12]) for s in range(2)])}
    assert claims.layer_slopes_claim(paper_like)["verdict"] == claims.AGREE
    flat = {"kaiming/prelu": summarize([fake_record(s, [0.15, 0.15, 0.15, 0.15]) for s in range(2)])}
    assert claims.layer_slopes_claim(flat)["verdict"] == claims.DISAGREE


def test_init_claim_follows_trains_rule() -> None:
    trains, stalls = fake_record(0, [0.2], loss=(2.3, 0.5)), fake_record(0, [0.2], loss=(2.3, 2.2))
    assert claims.trains(trains) and not claims.trains(stalls)  # 2.2 > 0.9 x 2.3
    groups = {"kaiming/relu": [trains], "xavier/relu": [stalls]}
    sums = {key: summarize(value) for key, value in groups.items()}
    assert claims.init_claim(groups, sums, ["relu"])["verdict"] == claims.AGREE
    groups = {"kaiming/relu": [trains], "xavier/relu": [trains]}
    sums = {key: summarize(value) for key, value in groups.items()}
    assert claims.init_claim(groups, sums, ["relu"])["verdict"] == claims.DISAGREE
