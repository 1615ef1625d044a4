"""``prelu depth``: a plain deep net with Xavier vs Kaiming init, ReLU and PReLU (He et al., Fig. 3).

Owns the experiment's settings, the plain net (``layers`` Linear layers: ``layers - 1`` hidden
ones of ``width`` units, each followed by the rectifier, then the classifier; no normalisation,
no shortcut), the two initialisations, the signal measurement at init, the summary and the
report's layout. Imports the lab's other modules and :mod:`prelu` (``init_model_``).

- ``xavier``: ``torch.nn.init.xavier_normal_`` (Var[w] = 2 / (fan_in + fan_out)), biases 0 —
  the variance of a ReLU net's signal halves at every layer.
- ``kaiming``: :func:`prelu.init_model_`: std = gain(a) / sqrt(fan_in) with ``a`` the slope of the
  rectifier after each layer (0 for ReLU, PReLU's initial 0.25), gain 1 for the classifier.

A run *trains* when its final train loss is below 0.9 x its loss before training
(:data:`prelu.lab.claims.TRAINS_RATIO`); the report shows every loss curve.

>>> resolve({})["layers"], resolve({})["inits"]
(30, ['xavier', 'kaiming'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

import prelu
from prelu.lab import claims as claims_module
from prelu.lab import console, datasets, models, report, runs, train
from prelu.lab.config import ConfigError, choice, merge, positive_int
from prelu.lab.experiment import RunSpec, environment, execute, open_experiment
from prelu.lab.summary import format_stat, has_slopes, summarize
from prelu.nn.rectifiers import CONVERTIBLE_TYPES

DATASETS = ("digits", "mnist1d")
INITS = ("xavier", "kaiming")
DEFAULTS: dict[str, object] = {
    "dataset": "digits",
    "limit": None,
    "layers": 30,
    "width": 128,
    "activations": ["relu", "prelu"],
    "inits": ["xavier", "kaiming"],
    "seeds": 2,
    "epochs": 30,
    "batch_size": 64,
    "optimizer": "sgd",
    "lr": 0.01,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "slope_weight_decay": 0.0,
    "device": "cpu",
}
RUN_SET = ("activations", "inits", "seeds")
SIGNAL_SAMPLES = 500


def resolve(options: Mapping[str, object], stored: Mapping[str, object] | None = None) -> dict:
    """Defaults, then a resumed folder's config, then ``options`` (see :func:`prelu.lab.config.merge`)."""
    config = merge(DEFAULTS, options, stored, RUN_SET)
    config["activations"] = [str(name).strip().lower() for name in config["activations"]]  # type: ignore[union-attr]
    config["inits"] = [str(name).strip().lower() for name in config["inits"]]  # type: ignore[union-attr]
    return config


def settings_of(config: Mapping[str, object]) -> train.TrainSettings:
    return train.settings_from_config(config, target_accuracy=1.0)  # depth reports losses; no accuracy target


def build(config: Mapping[str, object], data: datasets.Dataset, init: str, activation: str, seed: int) -> nn.Module:
    """The plain net for (``init``, ``activation``, ``seed``), initialised."""
    torch.manual_seed(seed)
    features = 1
    for size in data.input_shape:
        features *= size
    model = models.MLP(
        models.activation_factory(activation),
        features,
        data.num_classes,
        int(config["width"]),
        int(config["layers"]) - 1,  # type: ignore[call-overload]
    )
    if init == "kaiming":
        prelu.init_model_(model)
    else:
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)
    return model


def input_stds(model: nn.Module, x: torch.Tensor) -> list[float]:
    """The standard deviation of each rectifier's input on ``x`` (one forward pass, eval mode), input side first."""
    found: list[float] = []
    rectifiers = [m for m in model.modules() if isinstance(m, CONVERTIBLE_TYPES)]
    handles = [m.register_forward_pre_hook(lambda _, args: found.append(float(args[0].std()))) for m in rectifiers]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train()
    return found


def validate(config: Mapping[str, object], world_size: int = 1) -> tuple[datasets.Dataset, train.TrainSettings]:
    """Check every setting and load the data, writing nothing; :class:`ConfigError` otherwise."""
    choice("dataset", str(config["dataset"]), DATASETS)
    datasets.check(str(config["dataset"]))
    for key in ("layers", "width", "seeds"):
        positive_int(f"--{key}", config[key])
    if int(config["layers"]) < 2:  # type: ignore[call-overload]
        raise ConfigError(f"--layers must be >= 2 (hidden layers plus the classifier), got {config['layers']}")
    if config["limit"] is not None:
        positive_int("--limit", config["limit"])
    for key, valid in (("activations", prelu.activation_names()), ("inits", INITS)):
        values = config[key]
        if not values:
            raise ConfigError(f"--{key} needs at least one name; valid choices: {', '.join(valid)}")
        for value in values:  # type: ignore[union-attr]
            choice(key[:-1], value, valid)
    settings = settings_of(config).validate()
    if settings.batch_size % world_size:
        raise ConfigError(f"--batch-size {settings.batch_size} must be divisible by the {world_size} processes")
    data = datasets.load(str(config["dataset"]), limit=config["limit"])  # type: ignore[arg-type]
    if settings.batch_size > len(data.y_train):
        raise ConfigError(f"--batch-size {settings.batch_size} exceeds the {len(data.y_train)} training samples")
    return data, settings


def table_rows(summaries: Mapping[str, dict], groups: Mapping[str, list[dict]]) -> tuple[list[str], list[list[str]]]:
    """One row per init/activation: how many runs train, loss before and after, accuracy, dead units, slopes."""
    headers = [
        "init / activation",
        "trains",
        "train loss: start -> end",
        "test acc %",
        "dead units %",
        "slopes: first / last layer",
        "s / epoch",
    ]
    rows = []
    for key, summary in summaries.items():
        records = groups.get(key, [])
        if not summary.get("runs"):
            rows.append([key, "0/0", *["-"] * 5])
            continue
        learnable = [layer["slope"]["mean"] for layer in summary["layers"].values() if layer.get("learnable")]
        slopes = f"{learnable[0]:.2f} / {learnable[-1]:.2f}" if learnable else "-"
        rows.append(
            [
                key,
                f"{sum(claims_module.trains(r) for r in records)}/{len(records)}",
                f"{format_stat(summary['initial_train_loss'], 1, 3)} -> {format_stat(summary['train_loss'], 1, 3)}",
                format_stat(summary["test_acc"], 100, 1),
                format_stat(summary["dead_fraction"], 100, 1),
                slopes,
                format_stat(summary["seconds_per_epoch"], 1, 3),
            ]
        )
    return headers, rows


def _loss_figure(summaries: Mapping[str, dict], groups: Mapping[str, list[dict]], activations: list[str]) -> str:
    """Train loss vs epoch, one panel per activation, Xavier vs Kaiming (thin: each seed; thick: mean)."""
    figure, axes = report._axes(1, len(activations))
    styles = {"xavier": ("#1f77b4", "--"), "kaiming": ("#d62728", "-")}
    for ax, activation in zip(axes[0], activations, strict=True):
        for init, (colour, line) in styles.items():
            key = f"{init}/{activation}"
            for record in groups.get(key, []):
                epochs = [row["epoch"] for row in record["curve"]]
                losses = [row["train_loss"] for row in record["curve"]]
                ax.plot(epochs, losses, line, color=colour, alpha=0.35, lw=0.8)
            summary = summaries.get(key, {})
            if summary.get("runs"):
                curve = summary["curve"]
                ax.plot(curve["epoch"], curve["train_loss"]["mean"], line, color=colour, lw=2, label=init.capitalize())
        ax.set_title(f"{report.label(activation)}: train loss")
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    return report.png(figure)


def _signal_figure(groups: Mapping[str, list[dict]]) -> str:
    """Std of each rectifier's input at init, per layer (log scale): Xavier shrinks, Kaiming holds."""
    figure, axes = report._axes(1, 1, width=6.5)
    ax = axes[0, 0]
    for index, (key, records) in enumerate(groups.items()):
        if not records:
            continue
        stds = records[0].get("init_input_std") or []
        init, activation = key.split("/")
        ax.plot(
            range(1, len(stds) + 1),
            stds,
            "--" if init == "xavier" else "-",
            color=report.color(activation, index),
            label=f"{init} / {report.label(activation)} (seed {records[0]['seed']})",
            lw=1.5,
        )
    ax.set_yscale("log")
    ax.set_xlabel("rectifier layer")
    ax.set_ylabel("std of its input at init")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return report.png(figure)


def _slope_depth_figure(summaries: Mapping[str, dict]) -> str | None:
    """Final mean slope per layer (mean over seeds ± std), one line per init, for each PReLU variant."""
    lines = [(key, s) for key, s in summaries.items() if has_slopes(s)]
    if not lines:
        return None
    figure, axes = report._axes(1, 1, width=6.5)
    ax = axes[0, 0]
    for index, (key, summary) in enumerate(lines):
        values = [layer["slope"] for layer in summary["layers"].values() if layer.get("learnable")]
        means = [v["mean"] for v in values]
        stds = [v["std"] or 0 for v in values]
        ax.errorbar(
            range(1, len(means) + 1),
            means,
            yerr=stds,
            label=key,
            capsize=2,
            lw=1.3,
            color=["#d62728", "#1f77b4", "#ff7f0e", "#2ca02c"][index % 4],
        )
    ax.axhspan(0.6, 0.7, color="#d62728", alpha=0.07, lw=0)
    ax.axhline(0.25, color="#999", lw=0.8, ls=":")
    ax.set_xlabel("PReLU layer (input side first)")
    ax.set_ylabel("learned slope (mean over units)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return report.png(figure)


def _report(
    config: Mapping[str, object], data: datasets.Dataset, results: dict, groups: Mapping[str, list[dict]]
) -> str:
    summaries = results["summary"]
    activations: list[str] = config["activations"]  # type: ignore[assignment]
    headers, rows = table_rows(summaries, groups)
    status = "" if results["complete"] else f" <b>Incomplete: {results['finished']} of {results['expected']} runs.</b>"
    sections = [
        ("Claims", report.claims_table(results["claims"])),
        (
            "Summary (mean ± std over seeds)",
            report.html_table(headers, rows, ["", "num", "num", "num", "num", "num", "num"]),
        ),
        ("Train loss (cf. He et al., Fig. 3)", _loss_figure(summaries, groups, activations)),
        ("Signal at init: std of each rectifier's input", _signal_figure(groups)),
    ]
    slopes = _slope_depth_figure(summaries)
    if slopes:
        sections.append(("Learned slopes by depth", slopes))
    prelu_summaries = {key: s for key, s in summaries.items() if has_slopes(s)}
    sections.append(("Learned slopes per layer (cf. He et al., Table 1)", report.slope_table(prelu_summaries)))
    sections.append(("Dead units per layer (end of training)", report.dead_units_figure(summaries)))
    histograms = report.histograms_figure(summaries)
    if histograms:
        sections.append(("Rectifier inputs at the end (all seeds pooled)", histograms))
    intro = (
        f"{data.description}; plain net of {config['layers']} Linear layers ({int(config['layers']) - 1} hidden x "  # type: ignore[call-overload]
        f"{config['width']} units, no normalisation); {config['seeds']} seed(s) x {config['epochs']} epochs, batch "
        f"{config['batch_size']}, {config['optimizer']} lr {config['lr']} momentum {config['momentum']}, weight decay "
        f"{config['weight_decay']} (slopes {config['slope_weight_decay']}). A run trains iff its final train loss < "
        f"{claims_module.TRAINS_RATIO} x its initial one." + status
    )
    return report.page(f"prelu depth: {config['layers']} layers on {config['dataset']}", sections, intro)


def default_name(config: Mapping[str, object]) -> str:
    return f"depth-{config['dataset']}-{config['layers']}"


def run(
    *,
    name: str | None = None,
    out: str | Path = "runs",
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    quiet: bool = False,
    on_run: Callable[[str, dict], None] | None = None,
    **options: object,
) -> dict:
    """Run ``prelu depth`` with ``options`` (see :data:`DEFAULTS`) and return the results (as in
    ``<out>/<name>/results.json``); validated before anything is written, as :func:`prelu.lab.compare.run`."""
    distributed, config, folder = open_experiment(
        options,
        default_device=str(DEFAULTS["device"]),
        resolve=resolve,
        default_name=default_name,
        out=out,
        name=name,
        resume=resume,
        force=force,
    )
    data, settings = validate(config, distributed.world_size)
    activations: list[str] = config["activations"]  # type: ignore[assignment]
    inits: list[str] = config["inits"]  # type: ignore[assignment]
    keys = [f"{init}/{activation}" for activation in activations for init in inits]
    specs = [RunSpec(key, seed) for seed in range(int(config["seeds"])) for key in keys]  # type: ignore[call-overload]
    if distributed.is_main:
        folder.create({"experiment": "depth", **config}, force=force)

    def train_one(spec: RunSpec, on_epoch: Callable[[int, dict], None]) -> dict:
        init, activation = spec.group.split("/")
        model = build(config, data, init, activation, spec.seed)
        signal = input_stds(model, data.x_train[:SIGNAL_SAMPLES])
        record = train.train_run(model, data, settings, spec.seed, distributed=distributed, on_epoch=on_epoch)
        return {"init": init, "activation": activation, "init_input_std": signal, **record}

    results: dict = {}

    def finalize(records: dict[str, dict], final: bool) -> None:
        groups = {key: [r for r in records.values() if r["group"] == key] for key in keys}
        summaries = {key: summarize(group) for key, group in groups.items()}
        results.clear()
        results.update(
            experiment="depth",
            config=config,
            complete=all(spec.run_id in records for spec in specs),
            finished=sum(spec.run_id in records for spec in specs),
            expected=len(specs),
            environment=environment(distributed),
            claims=claims_module.depth_claims(groups, summaries, activations),
            summary=summaries,
            runs=[
                {
                    "id": r["id"],
                    "init": r["init"],
                    "activation": r["activation"],
                    "seed": r["seed"],
                    "trains": claims_module.trains(r),
                    "final": r["final"],
                    "init_input_std": r["init_input_std"],
                    "diverged": r["diverged"],
                }
                for r in records.values()
            ],
        )
        runs.write_json(folder.results_path, results)
        if final:
            runs.write_text(folder.report_path, _report(config, data, results, groups))

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
    if distributed.is_main and not quiet:
        groups = {key: [r for r in folder.finished().values() if r["group"] == key] for key in keys}
        headers, rows = table_rows(results["summary"], groups)
        console.print_table(
            f"prelu depth: {config['layers']} layers on {config['dataset']}, {config['epochs']} epochs, "
            "mean ± std over seeds",
            headers,
            rows,
            right=[False, True, True, True, True, True, True],
        )
        console.print_table(
            "claims",
            ["claim", "our number", "verdict"],
            [[c["claim"], c["number"], c["verdict"]] for c in results["claims"]],
        )
        print(f"wrote {folder.results_path}, {folder.report_path}, runs/ and curves/ in {folder.path}")
    return results
