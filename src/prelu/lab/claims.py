"""The paper's claims, checked against our numbers: :func:`compare_claims` and :func:`depth_claims`.

Owns the claims' wording, each one's decision rule and the verdicts; reads summaries made by
:func:`prelu.lab.summary.summarize` and imports :mod:`prelu.lab.summary` and :mod:`prelu.lab.paired`.

A verdict is ``agree`` or ``disagree`` as the rule in the row says, computed from the measured
numbers only; ``inconclusive`` where the run cannot test the claim (an activation it needs was
not run, one seed gives no interval, the slopes never left their initial value, no run reached
the target, a number is missing because every run of a group diverged or the model has no
rectifier). A comparison of two activations is decided on paired per-seed differences
(:mod:`prelu.lab.paired`; a diverged run's missing number drops its seed from the pairs): agree or
disagree only when the 95 % interval of the mean difference lies wholly on one side of the
claim's threshold, else ``inconclusive (n seeds; interval [a, b])``. A non-gain is a
``disagree``, reported as plainly as a gain.

>>> from prelu.lab.summary import stat
>>> relu = {"runs": 3, "seeds": [0, 1, 2], "test_acc": stat([0.90, 0.91, 0.92])}
>>> prelu = {"runs": 3, "seeds": [0, 1, 2], "test_acc": stat([0.95, 0.97, 0.96])}
>>> row = accuracy_claim({"relu": relu, "prelu": prelu})
>>> row["verdict"]
'agree'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prelu.lab import paired
from prelu.lab.summary import format_stat

AGREE, DISAGREE, INCONCLUSIVE = "agree", "disagree", "inconclusive"
# Slopes "settled": changed less than SLOPE_TOLERANCE over the last quarter of the epochs. Slopes
# "moved" (so the run tests where they settle): their mean |final - initial| is at least
# SLOPE_MOVED, half the width of the claimed 0.1-0.3 band; otherwise slopes starting at 0.25 would
# "agree" by never moving.
SLOPE_TOLERANCE = 0.02
SLOPE_MOVED = 0.05
OVERHEAD_LIMIT = 1.10
DEAD_BASELINE, DEAD_CEILING = 0.15, 0.05
TRAINS_RATIO = 0.9

LABELS = {"relu": "ReLU", "leaky_relu": "Leaky ReLU", "prelu": "PReLU", "prelu_shared": "PReLU (shared)"}


Summary = Mapping[str, Any]
Claim = dict[str, str]
NOT_AVAILABLE = "n/a: every run of a group it needs diverged, or the model has no rectifier"


def _row(claim: str, source: str, number: str, rule: str, verdict: str) -> Claim:
    """One claim's row; ``verdict`` is the word (agree, disagree, inconclusive), ``verdict_text`` adds the
    paired interval's reason to an inconclusive one ("inconclusive (3 seeds; interval [a, b])")."""
    word = verdict.split(" ", 1)[0]
    return {"claim": claim, "source": source, "number": number, "rule": rule, "verdict": word, "verdict_text": verdict}


def _prelu_name(summaries: Mapping[str, Summary]) -> str | None:
    """The PReLU variant the claims are checked on: per channel (the paper's default), else shared."""
    return next((name for name in ("prelu", "prelu_shared") if summaries.get(name, {}).get("runs")), None)


def _paired_verdict(differences: list[float], threshold: float, scale: float, unit: str) -> tuple[str, str]:
    """(verdict, text) for "the mean of the per-seed ``differences`` exceeds ``threshold``"."""
    result = paired.interval(differences)
    return paired.decide(result, threshold, scale), paired.describe(result, threshold, scale, unit)


def _present(*stats: Summary | None) -> bool:
    """Whether every one of ``stats`` has a mean (a group whose runs all diverged has none)."""
    return all(s is not None and s.get("mean") is not None for s in stats)


def _missing(claim: str, source: str, rule: str, need: str) -> Claim:
    return _row(claim, source, f"not measured: needs {need} in --activations", rule, INCONCLUSIVE)


def _compared(
    summaries: Mapping[str, Summary], key: str, claim: str, source: str, rule: str
) -> tuple[str, Summary, Summary] | Claim:
    """(the PReLU variant, ReLU's statistic ``key``, the variant's), or the inconclusive row saying what is missing."""
    name = _prelu_name(summaries)
    if name is None or "relu" not in summaries:
        return _missing(claim, source, rule, "relu and prelu")
    relu, ours = summaries["relu"].get(key), summaries[name].get(key)
    if relu is None or ours is None or not _present(relu, ours):
        return _row(claim, source, NOT_AVAILABLE, rule, INCONCLUSIVE)
    return name, relu, ours


def dead_units_claim(summaries: Mapping[str, Summary], command: str = "prelu compare") -> Claim:
    claim, source = "PReLU cuts dead units from ~30% to <5%", f"project seed text; tested by {command}"
    rule = (
        f"tested only where ReLU has >= {DEAD_BASELINE:.0%} dead units (else inconclusive: see prelu dying); there, "
        f"agree iff the 95 % t-interval of PReLU's dead fraction over seeds lies wholly below {DEAD_CEILING:.0%}, "
        "disagree iff wholly at or above it (dead: input <= 0 for every monitored training sample, at the end)"
    )
    found = _compared(summaries, "dead_fraction", claim, source, rule)
    if isinstance(found, dict):
        return found
    name, relu, ours = found
    others = ", ".join(
        f"{LABELS.get(key, key)} {format_stat(value['dead_fraction'], 100, 1, ' %')}"
        for key, value in summaries.items()
        if key not in ("relu", name) and value.get("runs") and "dead_fraction" in value
    )
    number = f"ReLU {format_stat(relu, 100, 1, ' %')}, {LABELS[name]} {format_stat(ours, 100, 1, ' %')}"
    number += f"; {others}" if others else ""
    if relu["mean"] is None or relu["mean"] < DEAD_BASELINE:
        return _row(
            claim, source, number + " (ReLU is far from ~30% dead here: the run does not test it)", rule, INCONCLUSIVE
        )
    # "PReLU's dead fraction lies below the ceiling" = "minus it exceeds minus the ceiling" (the paired rule's sides).
    dead = paired.values(summaries[name], "dead_fraction")
    result = paired.interval(dead)
    verdict = paired.decide(paired.interval([-value for value in dead]), -DEAD_CEILING)
    if result["low"] is None:
        text = f"{LABELS[name]} dead {100 * (result['mean'] or 0):.1f} % ({result['n']} seed(s): no interval)"
    else:
        text = (
            f"{LABELS[name]} dead: 95 % interval [{100 * result['low']:.1f}, {100 * result['high']:.1f}] % "
            f"({result['n']} seeds) vs the {DEAD_CEILING:.0%} ceiling"
        )
        if verdict.startswith(INCONCLUSIVE):
            needed = paired.seeds_needed(result, DEAD_CEILING)
            text += f"; about {needed} seeds would decide at this spread" if needed else ""
            low, high = 100 * result["low"], 100 * result["high"]
            verdict = f"{INCONCLUSIVE} ({result['n']} seeds; interval [{low:.1f}, {high:.1f}] %)"
    return _row(claim, source, f"{number}; {text}", rule, verdict)


def _slope_layers(summary: Summary) -> list[tuple[str, Summary]]:
    """The learnable layers whose final mean slope is known (not every run of the group diverged)."""
    return [
        (name, layer)
        for name, layer in summary.get("layers", {}).items()
        if layer.get("learnable") and layer["slope"]["mean"] is not None
    ]


def _moved(layers: list[tuple[str, Summary]]) -> float:
    """The largest per-layer mean |final - initial| over a layer's slopes (each slope, not the layer's mean)."""
    changes = []
    for _, layer in layers:
        change = (layer.get("slope_change") or {}).get("mean")
        curve = layer["slope_curve"]["mean"]
        if change is None and curve and curve[0] is not None and curve[-1] is not None:
            change = abs(curve[-1] - curve[0])
        if change is not None:
            changes.append(change)
    return max(changes, default=0.0)


def slopes_claim(summaries: Mapping[str, Summary]) -> Claim:
    claim, source = "Learned slopes settle around 0.1–0.3", "project seed text (He et al. Table 1)"
    rule = (
        "agree iff the mean final slope (over layers and seeds) lies in [0.1, 0.3] and moved < "
        f"{SLOPE_TOLERANCE} over the last quarter of the epochs; inconclusive if in no layer the slopes moved "
        f"{SLOPE_MOVED} or more on average (mean |final - initial| per slope)"
    )
    name = _prelu_name(summaries)
    if name is None:
        return _missing(claim, source, rule, "prelu or prelu_shared")
    layers = _slope_layers(summaries[name])
    if not layers:
        found = any(layer.get("learnable") for layer in summaries[name].get("layers", {}).values())
        return _row(claim, source, NOT_AVAILABLE if found else "no PReLU layers found", rule, INCONCLUSIVE)
    finals = [layer["slope"]["mean"] for _, layer in layers]
    curves = [layer["slope_curve"]["mean"] for _, layer in layers]
    mean = sum(finals) / len(finals)
    back = max(1, (len(curves[0]) - 1) // 4)  # a quarter of the epochs (curves start at epoch 0)
    if any(curve[0] is None or len(curve) <= back or curve[-1 - back] is None for curve in curves):
        return _row(claim, source, f"{LABELS[name]}: mean {mean:.3f}; {NOT_AVAILABLE}", rule, INCONCLUSIVE)
    start = sum(curve[0] for curve in curves) / len(curves)
    late = sum(curve[-1 - back] for curve in curves) / len(curves)
    moved = _moved(layers)
    per_layer = ", ".join(f"{n} {layer['slope']['mean']:.3f}" for n, layer in layers)
    number = (
        f"{LABELS[name]}: mean {mean:.3f} (init {start:.3f}; a quarter of the epochs before the end {late:.3f}; "
        f"mean |change| per slope {moved:.3f} in the layer that moved most); per layer: {per_layer}"
    )
    for other in ("prelu", "prelu_shared"):
        other_layers = _slope_layers(summaries[other]) if other != name and summaries.get(other, {}).get("runs") else []
        if other_layers:
            other_mean = sum(layer["slope"]["mean"] for _, layer in other_layers) / len(other_layers)
            number += f"; {LABELS[other]}: mean {other_mean:.3f}"
    if moved < SLOPE_MOVED:
        return _row(
            claim, source, number + f"; slopes moved < {SLOPE_MOVED}: the run did not test it", rule, INCONCLUSIVE
        )
    ok = 0.1 <= mean <= 0.3 and abs(mean - late) < SLOPE_TOLERANCE
    return _row(claim, source, number, rule, AGREE if ok else DISAGREE)


def convergence_claim(summaries: Mapping[str, Summary], target: float, epochs: int) -> Claim:
    claim, source = "PReLU converges faster (fewer epochs to target accuracy)", "project seed text"
    rule = (
        f"epochs until test accuracy >= {target:.0%} (a run that never gets there counts {epochs + 1}); per seed, "
        f"ReLU's epochs minus PReLU's; {paired.RULE} (threshold 0)"
    )
    name = _prelu_name(summaries)
    if name is None or "relu" not in summaries:
        return _missing(claim, source, rule, "relu and prelu")
    relu, ours = summaries["relu"], summaries[name]
    if not relu.get("runs") or not _present(relu["epochs_to_target_censored"], ours["epochs_to_target_censored"]):
        return _row(claim, source, NOT_AVAILABLE, rule, INCONCLUSIVE)

    def text(summary: Summary, label: str) -> str:
        reached = summary["epochs_to_target"]["reached"]
        return (
            f"{label} {format_stat(summary['epochs_to_target_censored'], 1, 1)} ({reached}/{summary['runs']} reached)"
        )

    number = f"{text(relu, 'ReLU')}, {text(ours, LABELS[name])}"
    if relu["epochs_to_target"]["reached"] == 0 and ours["epochs_to_target"]["reached"] == 0:
        return _row(
            claim, source, number + "; no run reached the target (lower --target or add epochs)", rule, INCONCLUSIVE
        )
    verdict, reason = _paired_verdict(paired.pair(relu, ours, "epochs_to_target_censored"), 0.0, 1, " epochs")
    return _row(claim, source, f"{number}; {reason}", rule, verdict)


def overhead_claim(summaries: Mapping[str, Summary]) -> Claim:
    claim, source = "Barely any overhead vs ReLU (seconds per epoch)", "project seed text"
    rule = (
        f"agree iff PReLU's mean seconds per epoch (median epoch of each run) <= {OVERHEAD_LIMIT:.2f} x ReLU's; "
        "timings from a shared machine"
    )
    found = _compared(summaries, "seconds_per_epoch", claim, source, rule)
    if isinstance(found, dict):
        return found
    name, relu, ours = found
    if relu["mean"] <= 0:
        return _row(claim, source, NOT_AVAILABLE, rule, INCONCLUSIVE)
    ratio = ours["mean"] / relu["mean"]
    number = (
        f"{ratio:.2f}x (ReLU {format_stat(relu, 1, 3, ' s')}, {LABELS[name]} {format_stat(ours, 1, 3, ' s')} per epoch)"
    )
    return _row(claim, source, number, rule, AGREE if ratio <= OVERHEAD_LIMIT else DISAGREE)


def accuracy_claim(summaries: Mapping[str, Summary]) -> Claim:
    claim = "PReLU improves accuracy over ReLU (He et al. report +1.2% top-1 on ImageNet)"
    source = "He et al. 2015, Table 2"
    rule = f"per seed, PReLU's final test accuracy minus ReLU's; {paired.RULE} (threshold 0)"
    found = _compared(summaries, "test_acc", claim, source, rule)
    if isinstance(found, dict):
        return found
    name, relu, ours = found
    number = f"{LABELS[name]} {format_stat(ours, 100, 1, ' %')}, ReLU {format_stat(relu, 100, 1, ' %')}"
    verdict, text = _paired_verdict(paired.pair(summaries[name], summaries["relu"], "test_acc"), 0.0, 100, " pp")
    return _row(claim, source, f"{number}; {text}", rule, verdict)


def compare_claims(summaries: Mapping[str, Summary], *, target: float, epochs: int) -> list[Claim]:
    """The five claims of ``prelu compare``, from one summary per activation name."""
    return [
        dead_units_claim(summaries),
        slopes_claim(summaries),
        convergence_claim(summaries, target, epochs),
        overhead_claim(summaries),
        accuracy_claim(summaries),
    ]


def trains(record: Summary) -> bool:
    """Whether one run trains: not diverged and final train loss < :data:`TRAINS_RATIO` x the initial one."""
    final = record["final"]
    if record.get("diverged") or final.get("train_loss") is None or final.get("initial_train_loss") is None:
        return False
    return bool(final["train_loss"] < TRAINS_RATIO * final["initial_train_loss"])


def init_claim(
    groups: Mapping[str, Sequence[Summary]], summaries: Mapping[str, Summary], activations: Sequence[str]
) -> Claim:
    claim = "Kaiming init trains a 30-layer plain net where Xavier stalls"
    source = "He et al. 2015, Fig. 3"
    rule = (
        f"a run trains iff it did not diverge and its final train loss < {TRAINS_RATIO} x its initial one; an init "
        "trains iff more than half of its seeds do; agree iff Kaiming trains and Xavier does not (decided on ReLU, "
        "as Fig. 3; else the first activation)"
    )
    parts: list[str] = []
    verdict: str | None = None
    for activation in activations:
        counts: dict[str, float] = {}
        for init in ("kaiming", "xavier"):
            records = groups.get(f"{init}/{activation}", [])
            summary = summaries.get(f"{init}/{activation}", {})
            if not records:
                continue
            trained = sum(trains(r) for r in records)
            counts[init] = trained / len(records)
            start, end = (
                "n/a" if value is None else f"{value:.2f}"
                for value in (summary["initial_train_loss"]["mean"], summary["train_loss"]["mean"])
            )
            diverged = sum(1 for r in records if r.get("diverged"))
            parts.append(
                f"{LABELS.get(activation, activation)} {init.capitalize()} {trained}/{len(records)} train "
                f"(loss {start} -> {end}{f'; {diverged} diverged' if diverged else ''})"
            )
        if verdict is None and len(counts) == 2:
            verdict = AGREE if counts["kaiming"] > 0.5 and counts["xavier"] <= 0.5 else DISAGREE
    if verdict is None:
        return _row(claim, source, "; ".join(parts) or "not measured", rule + " (needs both inits)", INCONCLUSIVE)
    return _row(claim, source, "; ".join(parts), rule, verdict)


def layer_slopes_claim(summaries: Mapping[str, Summary]) -> Claim:
    claim = "Early-layer slopes are large (0.6–0.7) and deeper ones small"
    source = "He et al. 2015, Table 1"
    rule = (
        "on the Kaiming-initialised PReLU net: agree iff the first layer's mean slope >= 0.5 and the mean over the "
        f"deeper half of the layers <= 0.3; inconclusive if in no layer the slopes moved {SLOPE_MOVED} on average"
    )
    name = next(
        (f"kaiming/{n}" for n in ("prelu", "prelu_shared") if summaries.get(f"kaiming/{n}", {}).get("runs")), None
    )
    if name is None:
        return _row(claim, source, "not measured: needs prelu with the kaiming init", rule, INCONCLUSIVE)
    layers = _slope_layers(summaries[name])
    if len(layers) < 2:
        learnable = [layer for layer in summaries[name].get("layers", {}).values() if layer.get("learnable")]
        number = NOT_AVAILABLE if len(learnable) >= 2 else "fewer than 2 PReLU layers"
        return _row(claim, source, number, rule, INCONCLUSIVE)
    finals = [layer["slope"]["mean"] for _, layer in layers]
    first, deep = finals[0], finals[len(finals) // 2 :]
    deep_mean = sum(deep) / len(deep)
    moved = _moved(layers)
    number = (
        f"{name.split('/', 1)[1]}: first layer {first:.3f}, deeper half {deep_mean:.3f} "
        f"(min {min(deep):.3f}, max {max(deep):.3f}); all layers {min(finals):.3f}–{max(finals):.3f}; mean |change| "
        f"per slope {moved:.3f} in the layer that moved most"
    )
    if moved < SLOPE_MOVED:
        return _row(claim, source, number + f"; slopes moved < {SLOPE_MOVED}", rule, INCONCLUSIVE)
    return _row(claim, source, number, rule, AGREE if first >= 0.5 and deep_mean <= 0.3 else DISAGREE)


def depth_claims(
    groups: Mapping[str, Sequence[Summary]], summaries: Mapping[str, Summary], activations: Sequence[str]
) -> list[Claim]:
    """The two claims of ``prelu depth``, from the run records and summaries keyed ``"<init>/<activation>"``."""
    return [init_claim(groups, summaries, activations), layer_slopes_claim(summaries)]
