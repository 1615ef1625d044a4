"""Paired statistics over seeds: :func:`interval`, :func:`decide`, :func:`seeds_needed`, :func:`pair`.

Owns the lab's decision rule for a claim that compares two groups (or one group against a level).
Imports nothing from :mod:`prelu`; scipy (which scikit-learn brings) gives Student's t quantile,
and without it a percentile bootstrap with a fixed generator is used.

Runs with the same seed share their initial weights and their batches, so the lab compares the
per-seed differences ``d_i = a_i - b_i`` rather than two means with their own spreads. The 95 %
interval of the mean difference is Student's t interval

    mean(d) ± t(0.975, n - 1) · sd(d) / sqrt(n),    sd with n - 1 in the denominator.

The rule: a claim "the difference exceeds ``threshold``" is ``agree`` iff the whole interval lies
above the threshold, ``disagree`` iff it lies wholly at or below it, else ``inconclusive (n seeds;
interval [a, b])``. With one seed there is no interval (inconclusive). :func:`seeds_needed` says how
many seeds the same spread would need for the interval to leave the threshold's side.

>>> result = interval([0.02, 0.03, 0.01, 0.04])
>>> round(result["mean"], 4), round(result["low"], 4), round(result["high"], 4)
(0.025, 0.0045, 0.0455)
>>> decide(result, 0.0)
'agree'
>>> decide(interval([0.02, -0.01, 0.03]), 0.0)
'inconclusive (3 seeds; interval [-0.03838, 0.06504])'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000
MAX_SEEDS = 10_000
AGREE, DISAGREE, INCONCLUSIVE = "agree", "disagree", "inconclusive"

RULE = (
    "paired over seeds (same seed = same initial weights and batches): the per-seed differences' mean with its 95 % "
    "t-interval; agree iff the whole interval lies above the threshold, disagree iff wholly at or below it, else "
    "inconclusive"
)


def t_quantile(probability: float, dof: int) -> float:
    """Student's t quantile (scipy's ``t.ppf``).

    >>> round(t_quantile(0.975, 2), 3)
    4.303
    """
    from scipy.stats import t

    return float(t.ppf(probability, dof))


def _has_scipy() -> bool:
    try:
        import scipy.stats  # noqa: F401
    except ImportError:
        return False
    return True


def interval(differences: Sequence[float], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """``{"n", "mean", "sd", "low", "high", "method"}`` of the per-seed ``differences``
    (t interval with scipy, else a percentile bootstrap); ``low``/``high``/``sd`` are None for n < 2."""
    values = [float(v) for v in differences if v is not None and math.isfinite(v)]
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "low": None, "high": None, "method": None}
    mean = sum(values) / n
    if n < 2:
        return {"n": 1, "mean": mean, "sd": None, "low": None, "high": None, "method": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    if _has_scipy():
        half = t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
        return {"n": n, "mean": mean, "sd": sd, "low": mean - half, "high": mean + half, "method": "t"}
    generator = np.random.default_rng(0)  # fixed: the same numbers give the same verdict
    means = generator.choice(np.asarray(values), size=(BOOTSTRAP_RESAMPLES, n), replace=True).mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return {"n": n, "mean": mean, "sd": sd, "low": float(low), "high": float(high), "method": "bootstrap"}


def decide(result: Mapping[str, Any], threshold: float, scale: float = 1.0) -> str:
    """``agree`` / ``disagree`` / ``inconclusive (n seeds; interval [a, b])`` for "the mean difference
    exceeds ``threshold``", by the rule in the module docstring (the interval shown times ``scale``)."""
    low, high, n = result["low"], result["high"], result["n"]
    if low is None or high is None:
        return f"{INCONCLUSIVE} ({n} seed{'s' if n != 1 else ''}: no interval)"
    assert isinstance(low, float) and isinstance(high, float)
    if low > threshold:
        return AGREE
    if high <= threshold:
        return DISAGREE
    return f"{INCONCLUSIVE} ({n} seeds; interval [{low * scale:.4g}, {high * scale:.4g}])"


def seeds_needed(result: Mapping[str, Any], threshold: float, confidence: float = CONFIDENCE) -> int | None:
    """The smallest number of seeds whose t interval, at the observed mean and spread, lies wholly on one
    side of ``threshold``; None when the mean sits on the threshold (or no spread is known), or when more than
    :data:`MAX_SEEDS` would be needed.

    >>> seeds_needed({"n": 3, "mean": 1.0, "sd": 1.0}, 0.0)
    7
    """
    mean, sd = result.get("mean"), result.get("sd")
    if not isinstance(mean, float) or not isinstance(sd, float):
        return None
    gap = abs(mean - threshold)
    if gap == 0:
        return None
    if sd == 0:
        return 2
    for n in range(2, MAX_SEEDS + 1):
        if t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n) < gap:
            return n
    return None


def pair(first: Mapping[str, Any], second: Mapping[str, Any], key: str) -> list[float]:
    """Per-seed differences ``first - second`` of ``summary[key]`` values, over the seeds both groups have
    (summaries from :func:`prelu.lab.summary.summarize`: ``seeds`` and ``key["values"]`` in the same order).

    >>> pair({"seeds": [0, 1], "acc": {"values": [0.9, 0.8]}}, {"seeds": [1, 0], "acc": {"values": [0.7, 0.85]}}, "acc")
    [0.050000000000000044, 0.10000000000000009]
    """
    a = _by_seed(first, key)
    b = _by_seed(second, key)
    return [a[seed] - b[seed] for seed in sorted(set(a) & set(b))]


def values(summary: Mapping[str, Any], key: str) -> list[float]:
    """The finite per-seed values of ``summary[key]`` in seed order."""
    found = _by_seed(summary, key)
    return [found[seed] for seed in sorted(found)]


def _by_seed(summary: Mapping[str, Any], key: str) -> dict[int, float]:
    seeds = summary.get("seeds") or []
    entry = summary.get(key) or {}
    raw = entry.get("values", []) if isinstance(entry, Mapping) else []
    return {
        int(seed): float(value)
        for seed, value in zip(seeds, raw, strict=False)
        if value is not None and math.isfinite(value)
    }


def describe(result: Mapping[str, Any], threshold: float, scale: float = 1.0, unit: str = "") -> str:
    """``"mean +1.2 pp, 95 % interval [0.3, 2.1] (3 seeds); ~5 seeds would decide at this spread"``."""
    n = result["n"]
    if result["mean"] is None:
        return "no paired seeds"
    mean = float(result["mean"]) * scale
    if result["low"] is None:
        return f"mean difference {mean:+.3g}{unit} (1 seed: no interval)"
    low, high = float(result["low"]) * scale, float(result["high"]) * scale
    text = f"mean difference {mean:+.3g}{unit}, 95 % interval [{low:.3g}, {high:.3g}]{unit} ({n} seeds)"
    if not (result["low"] > threshold or result["high"] <= threshold):
        needed = seeds_needed(result, threshold)
        text += (
            f"; about {needed} seeds would decide at this spread"
            if needed is not None
            else "; the mean sits on the threshold: more seeds would not decide it"
        )
    return text
