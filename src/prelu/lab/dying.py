"""``prelu dying``: dead units against the learning rate, for ReLU, Leaky ReLU and PReLU.

Owns the sweep's settings, its runs (one per activation x learning rate x seed, built as
``prelu compare`` builds them: per seed, every activation starts from the same weights and sees
the same batches), the sweep's summary and its decision of the dead-units claim. Imports the lab's
other modules; its figures and page are in :mod:`prelu.lab.dying_report`.

A large learning rate knocks ReLU units into the region where their input is <= 0 for every
sample; they then get no gradient and stay dead. The seed text claims PReLU cuts dead units "from
~30 % to < 5 %". The sweep decides it at every learning rate where ReLU's mean dead fraction
(over the seeds that did not diverge) is at least :data:`prelu.lab.claims.DEAD_BASELINE`, with the
paired rule of :mod:`prelu.lab.paired`; where no learning rate gets ReLU there, it says so
(inconclusive). A run whose loss becomes NaN or infinite is *diverged*: an outcome, counted per
group, and left out of the dead-unit and accuracy numbers.

>>> resolve({})["lrs"]
[0.001, 0.003, 0.01, 0.03, 0.1, 0.3]
>>> group_key("relu", 0.3)
'relu@0.3'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prelu.lab import claims as claims_module
from prelu.lab import console, datasets, dying_report, train
from prelu.lab.compare import Builder
from prelu.lab.config import ConfigError, choice, merge, positive_float, positive_int, typed
from prelu.lab.experiment import environment
from prelu.lab.files import write_json, write_text
from prelu.lab.loop import RunSpec, execute
from prelu.lab.runs import FORMAT
from prelu.lab.settings import CompareSettings
from prelu.lab.standalone import hold, prepare, single_process
from prelu.lab.summary import summarize

ACTIVATIONS = ("relu", "leaky_relu", "prelu")
DATASETS = ("digits", "mnist-5k")
DEFAULTS: dict[str, object] = {
    "dataset": "digits",
    "limit": None,
    "model": "mlp",
    "width": None,
    "depth": None,
    "activations": list(ACTIVATIONS),
    "lrs": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3],
    "seeds": 3,
    "epochs": 10,
    "batch_size": 64,
    "optimizer": "adam",
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "slope_weight_decay": 0.0,
    "init": "kaiming",
    "device": "cpu",
}
RUN_SET = ("activations", "lrs", "seeds")
# Adam by default: with SGD (momentum 0.9) on digits the MLP diverges from lr 0.3 on before any
# ReLU unit dies (at most 4 % dead, measured); Adam's per-weight steps push biases far enough to
# kill ReLU units well inside the stable range (37 % dead at lr 0.03, measured, 1 seed).


def group_key(activation: str, lr: float) -> str:
    """The group of one (activation, learning rate): ``relu@0.3``."""
    return f"{activation}@{lr:g}"


def resolve(options: Mapping[str, Any], stored: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then a resumed folder's config, then ``options`` (see :func:`prelu.lab.config.merge`)."""
    config = merge(DEFAULTS, options, stored, RUN_SET)
    config["activations"] = [str(name).strip().lower() for name in config["activations"]]
    config["lrs"] = [float(lr) for lr in config["lrs"]]
    return config


def default_name(config: Mapping[str, Any]) -> str:
    return f"dying-{config['dataset']}-{config['model']}"


def validate(config: Mapping[str, Any]) -> tuple[datasets.Dataset, Builder, train.TrainSettings]:
    """Check every setting and load the data, writing nothing; :class:`ConfigError` otherwise."""
    choice("dataset", str(config["dataset"]), DATASETS)
    datasets.check(str(config["dataset"]))
    choice("model", str(config["model"]), ("mlp", "cnn"))
    activations, lrs = config["activations"], config["lrs"]
    if not activations:
        raise ConfigError(f"--activations needs at least one name; valid choices: {', '.join(ACTIVATIONS)}")
    for name in activations:
        choice("activation", name, ACTIVATIONS)
    if "relu" not in activations:
        raise ConfigError("--activations must include relu: the sweep looks for where ReLU's units die")
    if not lrs:
        raise ConfigError("--lrs needs at least one learning rate")
    for lr in lrs:
        positive_float("--lrs", lr)
    if len(set(lrs)) != len(lrs):
        raise ConfigError(f"--lrs lists a learning rate twice: {lrs}")
    positive_int("--seeds", config["seeds"])
    for key in ("width", "depth", "limit"):
        if config[key] is not None:
            positive_int(f"--{key}", config[key])
    # The model and its training as compare builds them (typed, checked field by field), at the first rate.
    shared = ["epochs", "batch_size", "optimizer", "momentum", "weight_decay", "slope_weight_decay", "device"]
    shared += ["dataset", "limit", "model", "width", "depth", "seeds", "init"]
    values = {key: config[key] for key in shared}
    values.update(lr=lrs[0], data_dir=None, activations=tuple(activations), target=1.0)
    model_settings = typed(CompareSettings, values, source="prelu dying's settings")
    settings = model_settings.training(target_accuracy=1.0).validate()
    data = datasets.load(str(config["dataset"]), limit=config["limit"])
    if settings.batch_size > len(data.y_train):
        raise ConfigError(f"--batch-size {settings.batch_size} exceeds the {len(data.y_train)} training samples")
    return data, Builder(model_settings, data), settings


def summarize_sweep(
    records: Mapping[str, dict[str, Any]], activations: list[str], lrs: list[float]
) -> dict[str, dict[str, Any]]:
    """Per group: :func:`prelu.lab.summary.summarize` (``runs`` counts every run, ``diverged`` those that
    diverged, whose numbers are missing), plus ``activation``, ``lr`` and ``diverged_rate``."""
    out = {}
    for activation in activations:
        for lr in lrs:
            key = group_key(activation, lr)
            summary = summarize([r for r in records.values() if r["group"] == key])
            runs, diverged = summary["runs"], summary.get("diverged", 0)
            rate = diverged / runs if runs else None
            summary.update(activation=activation, lr=lr, diverged=diverged, diverged_rate=rate)
            out[key] = summary
    return out


def sweep_claims(
    summaries: Mapping[str, dict[str, Any]], activations: list[str], lrs: list[float]
) -> list[dict[str, Any]]:
    """The dead-units claim decided across the sweep (see the module docstring)."""
    baseline = claims_module.DEAD_BASELINE
    per_lr, tested = [], []
    for lr in lrs:
        relu = summaries.get(group_key("relu", lr), {})
        if relu.get("runs") and relu["dead_fraction"]["mean"] is not None and relu["dead_fraction"]["mean"] >= baseline:
            at_lr = {name: summaries[group_key(name, lr)] for name in activations if group_key(name, lr) in summaries}
            row = claims_module.dead_units_claim(at_lr, command=f"prelu dying (lr {lr:g})")
            per_lr.append(f"lr {lr:g}: {row['number']} -> {row['verdict_text']}")
            tested.append(row["verdict"])
    claim = "PReLU cuts dead units from ~30% to <5%"
    source = "project seed text; tested by prelu dying (learning-rate sweep)"
    rule = (
        f"at every learning rate where ReLU's mean dead fraction (runs that did not diverge) is >= {baseline:.0%}: "
        f"agree iff the 95 % t-interval of PReLU's dead fraction over seeds lies wholly below "
        f"{claims_module.DEAD_CEILING:.0%}, disagree iff wholly at or above it; overall disagree if any such "
        "learning rate disagrees, agree if all agree, else inconclusive; inconclusive when no learning rate gets "
        f"ReLU to {baseline:.0%}"
    )
    if not tested:
        worst = max(
            (
                (s["dead_fraction"]["mean"], s["lr"])
                for key, s in summaries.items()
                if s.get("activation") == "relu" and s.get("runs") and s["dead_fraction"]["mean"] is not None
            ),
            default=None,
        )
        number = (
            f"no learning rate got ReLU to {baseline:.0%} dead: at most {100 * worst[0]:.1f} % (lr {worst[1]:g})"
            if worst
            else "no ReLU run finished without diverging"
        )
        return [_claim_row(claim, source, number, rule, claims_module.INCONCLUSIVE)]
    if claims_module.DISAGREE in tested:
        verdict = claims_module.DISAGREE
    elif all(v == claims_module.AGREE for v in tested):
        verdict = claims_module.AGREE
    else:
        verdict = claims_module.INCONCLUSIVE
    return [_claim_row(claim, source, "; ".join(per_lr), rule, verdict)]


def _claim_row(claim: str, source: str, number: str, rule: str, verdict: str) -> dict[str, Any]:
    return {
        "claim": claim,
        "source": source,
        "number": number,
        "rule": rule,
        "verdict": verdict,
        "verdict_text": verdict,
    }


def run(
    *,
    name: str | None = None,
    out: str | Path = "runs",
    resume: bool = False,
    force: bool = False,
    wait: bool = False,
    progress: bool = True,
    quiet: bool = False,
    on_run: Callable[[str, dict[str, Any]], None] | None = None,
    **options: object,
) -> dict[str, Any]:
    """Run ``prelu dying`` with ``options`` (see :data:`DEFAULTS`) and return the results (as in
    ``<out>/<name>/results.json``); validated before anything is written. Not on the Experiment
    protocol: the run folder's rules come from :mod:`prelu.lab.standalone` (one process only)."""
    choice("device", str(options.get("device") or DEFAULTS["device"]), train.DEVICES)
    distributed = single_process("dying", str(options.get("device") or DEFAULTS["device"]))
    config, folder = prepare(
        "dying", options, resolve=resolve, default_name=default_name, out=out, name=name, resume=resume, force=force
    )
    data, builder, settings = validate(config)
    activations: list[str] = config["activations"]
    lrs: list[float] = config["lrs"]
    specs = [
        RunSpec(group_key(activation, lr), seed)
        for seed in range(int(config["seeds"]))
        for lr in lrs
        for activation in activations
    ]

    def train_one(spec: RunSpec, on_epoch: Callable[[int, dict[str, Any]], None]) -> dict[str, Any]:
        activation, lr = spec.group.split("@")
        model = builder(activation, spec.seed)
        record = train.train_run(model, data, dataclasses.replace(settings, lr=float(lr)), spec.seed, on_epoch=on_epoch)
        return {"activation": activation, "lr": float(lr), **record}

    results: dict[str, Any] = {}

    def finalize(records: dict[str, dict[str, Any]], final: bool) -> None:
        summaries = summarize_sweep(records, activations, lrs)
        results.clear()
        results.update(
            experiment="dying",
            format=FORMAT,
            config=config,
            complete=all(spec.run_id in records for spec in specs),
            finished=sum(spec.run_id in records for spec in specs),
            expected=len(specs),
            environment=environment(distributed),
            claims=sweep_claims(summaries, activations, lrs),
            summary=summaries,
            runs=[
                {key: r.get(key) for key in ("id", "activation", "lr", "seed", "final", "diverged")}
                for r in records.values()
            ],
        )
        write_json(folder.results_path, results)
        if final:
            write_text(folder.report_path, dying_report.page(config, data.description, results))

    with hold(folder, "dying", config, resume=resume, force=force, wait=wait):
        execute(
            folder,
            specs,
            settings.epochs,
            train_one,
            finalize,
            distributed=distributed,
            progress=progress and not quiet,
            notes=not quiet,
            on_run=on_run,
        )
    if not quiet:
        headers, rows = dying_report.table_rows(results["summary"])
        console.print_table(
            f"prelu dying: {config['dataset']}, {config['model']}, {config['epochs']} epochs, mean ± std over the "
            "seeds that did not diverge",
            headers,
            rows,
            right=[False, True, True, True, True, True, True],
        )
        console.print_table(
            "claims",
            ["claim", "our number", "verdict"],
            [[c["claim"], c["number"], c["verdict_text"]] for c in results["claims"]],
        )
        print(f"wrote {folder.results_path}, {folder.report_path}, runs/ and curves/ in {folder.path}")
    return results
