"""``prelu compare``: ReLU vs Leaky ReLU vs PReLU, trained alike, over several seeds.

Owns the experiment's settings (defaults, ``--resume`` merging, validation), how a run's model is
built and initialised, the summary, the terminal tables and the report's layout. Imports the lab's
other modules and :mod:`prelu` (``init_model_``).

Fairness, for each seed: every activation's model starts from the same weights in every layer
that is not an activation (the ReLU model is built with ``torch.manual_seed(seed)``, Kaiming-
initialised by :func:`prelu.init_model_` when ``init="kaiming"``, and its state is loaded into
each activation's model; only the slopes differ), and every activation sees the same batches in
the same order (:func:`prelu.lab.train.epoch_batches`). Each run records fingerprints of both.

>>> sorted(DEFAULTS)[:5]
['activations', 'batch_size', 'data_dir', 'dataset', 'depth']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

import prelu
from prelu.lab import claims as claims_module
from prelu.lab import console, datasets, models, report, runs, train
from prelu.lab.config import ConfigError, choice, merge, positive_int
from prelu.lab.experiment import RunSpec, environment, execute, open_experiment
from prelu.lab.summary import format_stat, summarize

ACTIVATIONS = ("relu", "leaky_relu", "prelu_shared", "prelu")
INITS = ("kaiming", "torch")
DEFAULTS: dict[str, object] = {
    "dataset": "digits",
    "data_dir": None,
    "limit": None,
    "model": "mlp",
    "width": None,
    "depth": None,
    "activations": list(ACTIVATIONS),
    "seeds": 3,
    "epochs": None,
    "batch_size": 64,
    "optimizer": "sgd",
    "lr": 0.05,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "slope_weight_decay": 0.0,
    "target": None,
    "init": "kaiming",
    "device": "cpu",
}
# Per dataset when --epochs is not given: enough for the default MLP to pass the dataset's target
# and settle (measured), small enough that the default `prelu compare` takes under 2 minutes.
DEFAULT_EPOCHS = {"digits": 30, "mnist1d": 30, "xor": 30, "spirals": 60, "checkerboard": 60}
FOLDER_EPOCHS = 10
# The runs to do: these may change on --resume (new runs are added, finished ones kept).
RUN_SET = ("activations", "seeds")


def resolve(options: Mapping[str, object], stored: Mapping[str, object] | None = None) -> dict:
    """The full settings: defaults, then the stored config of a resumed folder, then ``options``
    (the flags given). A resumed folder's results-affecting settings cannot change.

    >>> resolve({"epochs": 2})["epochs"], resolve({})["epochs"], resolve({"dataset": "xor"})["target"]
    (2, 30, 0.95)
    """
    config = merge(DEFAULTS, options, stored, RUN_SET)
    dataset = str(config["dataset"])
    if config["epochs"] is None:
        config["epochs"] = DEFAULT_EPOCHS.get(dataset, FOLDER_EPOCHS)
    if config["target"] is None:
        config["target"] = datasets.DEFAULT_TARGET.get(dataset, 0.9)
    config["activations"] = [str(name).strip().lower() for name in config["activations"]]  # type: ignore[union-attr]
    return config


def default_name(config: Mapping[str, object]) -> str:
    """``compare-<dataset>-<model>`` (a user model's ``pkg.module:fn`` with ``-`` for ``.`` and ``:``)."""
    return "compare-" + re.sub(r"[^A-Za-z0-9_-]+", "-", f"{config['dataset']}-{config['model']}")


def settings_of(config: Mapping[str, object]) -> train.TrainSettings:
    return train.settings_from_config(config, target_accuracy=config["target"])  # type: ignore[arg-type]


class Builder:
    """Builds the model of one (activation, seed), with the shared layers initialised per seed."""

    def __init__(self, config: Mapping[str, object], data: datasets.Dataset) -> None:
        self.config = config
        self.data = data
        self.example = data.x_train[:2]
        spec = str(config["model"])
        self.user = models.user_builder(spec) if ":" in spec else None
        if self.user is None:
            models.check(spec, data.input_shape)

    def _build(self, activation: str) -> nn.Module:
        if self.user is not None:
            return models.build_user(self.user, activation, self.data.input_shape, self.data.num_classes, self.example)
        return models.build(
            str(self.config["model"]),
            models.activation_factory(activation),
            self.data.input_shape,
            self.data.num_classes,
            width=self.config["width"],  # type: ignore[arg-type]
            depth=self.config["depth"],  # type: ignore[arg-type]
        )

    def __call__(self, activation: str, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        reference = self._build("relu")
        if self.config["init"] == "kaiming":
            prelu.init_model_(reference, example_input=self.example)
        shared = train.shared_parameters(reference)
        torch.manual_seed(seed)
        model = self._build(activation)
        state = model.state_dict()
        for key, value in shared.items():
            if key in state and state[key].shape == value.shape:
                state[key] = value.clone()
        model.load_state_dict(state)
        return model


def validate(
    config: Mapping[str, object], world_size: int = 1
) -> tuple[datasets.Dataset, Builder, train.TrainSettings]:
    """Check every setting, load the data and build each activation's model once (one forward pass),
    writing nothing; a :class:`ConfigError` says what is wrong."""
    datasets.check(str(config["dataset"]), config["data_dir"])  # type: ignore[arg-type]
    activations = config["activations"]
    if not activations:
        raise ConfigError(
            f"--activations needs at least one name; valid choices: {', '.join(prelu.activation_names())}"
        )
    for name in activations:  # type: ignore[union-attr]
        choice("activation", name, prelu.activation_names())
    if len(set(activations)) != len(activations):  # type: ignore[arg-type]
        raise ConfigError(f"--activations lists a name twice: {', '.join(activations)}")  # type: ignore[arg-type]
    positive_int("--seeds", config["seeds"])
    choice("init", str(config["init"]), INITS)
    for key in ("width", "depth", "limit"):
        if config[key] is not None:
            positive_int(f"--{key}", config[key])
    settings = settings_of(config).validate()
    if settings.batch_size % world_size:
        raise ConfigError(f"--batch-size {settings.batch_size} must be divisible by the {world_size} processes")
    model = str(config["model"])
    if ":" not in model:
        choice("model", model, [*models.MODELS, "pkg.module:fn"])
    data = datasets.load(str(config["dataset"]), data_dir=config["data_dir"], limit=config["limit"])  # type: ignore[arg-type]
    if settings.batch_size > len(data.y_train):
        raise ConfigError(f"--batch-size {settings.batch_size} exceeds the {len(data.y_train)} training samples")
    builder = Builder(config, data)
    for name in activations:  # type: ignore[union-attr]
        try:
            with torch.no_grad():
                builder(name, 0).eval()(data.x_train[:2])
        except ConfigError:
            raise
        except Exception as error:  # the model does not fit the data: say which
            raise ConfigError(f"model {model!r} with {name!r} fails on {config['dataset']} samples: {error}") from None
    return data, builder, settings


def _summaries(records: Mapping[str, dict], activations: list[str]) -> dict[str, dict]:
    return {name: summarize([r for r in records.values() if r["group"] == name]) for name in activations}


def _slopes_text(summary: dict) -> str:
    values = [layer["slope"]["mean"] for layer in summary.get("layers", {}).values() if layer.get("learnable")]
    return " ".join(f"{value:.2f}" for value in values) if values else "-"


def table_rows(summaries: Mapping[str, dict], target: float) -> tuple[list[str], list[list[str]]]:
    """The summary table: one row per activation, mean ± std over seeds."""
    headers = [
        "activation",
        "runs",
        "test acc %",
        "test loss",
        f"epochs to {target:.0%}",
        "dead units %",
        "final slopes (per layer)",
        "s / epoch",
        "diverged",
    ]
    rows = []
    for name, summary in summaries.items():
        if not summary.get("runs"):
            rows.append([name, "0", *["-"] * 7])
            continue
        to_target = summary["epochs_to_target"]
        reached = f"{format_stat(to_target, 1, 1)} ({to_target['reached']}/{summary['runs']})"
        rows.append(
            [
                name,
                str(summary["runs"]),
                format_stat(summary["test_acc"], 100, 1),
                format_stat(summary["test_loss"], 1, 3),
                reached,
                format_stat(summary["dead_fraction"], 100, 1),
                _slopes_text(summary),
                format_stat(summary["seconds_per_epoch"], 1, 3),
                f"{summary.get('diverged', 0)}/{summary['runs']}",
            ]
        )
    return headers, rows


def _describe(config: Mapping[str, object], data: datasets.Dataset) -> str:
    return (
        f"{data.description}; model {config['model']}; {config['seeds']} seed(s) x {config['epochs']} epochs, batch "
        f"{config['batch_size']}, {config['optimizer']} lr {config['lr']} momentum {config['momentum']}, weight decay "
        f"{config['weight_decay']} (slopes {config['slope_weight_decay']}), init {config['init']}"
    )


def _report(config: Mapping[str, object], data: datasets.Dataset, results: dict, records: Mapping[str, dict]) -> str:
    summaries, target = results["summary"], float(config["target"])  # type: ignore[arg-type]
    headers, rows = table_rows(summaries, target)
    run_rows = [
        [
            record["id"],
            f"{100 * record['final']['test_acc']:.1f}",
            f"{record['final']['test_loss']:.3f}" if record["final"]["test_loss"] is not None else "-",
            f"{100 * (record['final']['dead_fraction'] or 0):.1f}",
            record["init_fingerprint"],
            record["order_fingerprint"],
        ]
        for record in sorted(records.values(), key=lambda r: (r["seed"], r["group"]))
    ]
    status = "" if results["complete"] else f" <b>Incomplete: {results['finished']} of {results['expected']} runs.</b>"
    sections = [
        ("Claims", report.claims_table(results["claims"]) + f'<p class="note">{_claims_note()}</p>'),
        ("Summary (mean ± std over seeds)", report.html_table(headers, rows, ["", "num", *["num"] * 7])),
        ("Curves", report.curves_figure(summaries, target)),
        (
            "Dead units per layer (end of training)",
            report.dead_units_figure(summaries) + f'<p class="note">{_dead_note()}</p>',
        ),
    ]
    slopes = report.slopes_figure(summaries)
    if slopes:
        sections.append(("Slope trajectories", slopes))
    sections.append(("Learned slopes per layer (cf. He et al., Table 1)", report.slope_table(summaries)))
    histograms = report.histograms_figure(summaries)
    if histograms:
        sections.append(("Rectifier inputs at the end (all seeds pooled)", histograms))
    sections.append(
        (
            "Runs",
            report.html_table(
                ["run", "test acc %", "test loss", "dead %", "init fingerprint", "order fingerprint"], run_rows
            )
            + '<p class="note">Fairness: runs of one seed share the initial weights of every non-activation layer '
            "(same init fingerprint) and see the same batches in the same order (same order fingerprint).</p>",
        )
    )
    return report.page(
        f"prelu compare: {config['dataset']}, {config['model']}", sections, _describe(config, data) + "." + status
    )


def _claims_note() -> str:
    return (
        "Verdicts follow the stated rule from the numbers above. Comparisons are paired: runs of one seed share "
        "their initial weights and batches, so each seed gives one difference; the verdict is agree or disagree "
        "only when the 95 % t-interval of the mean difference lies wholly on one side of the claim's threshold, "
        "else inconclusive, with the number of seeds that would decide it at the observed spread (more --seeds "
        "narrow the interval). A non-gain is a disagree. The checks use the per-channel PReLU ('prelu') where it "
        "was run, else the shared one. The dead-units claim is tested by prelu dying, across learning rates."
    )


def _dead_note() -> str:
    return (
        f"A unit is dead when its input is <= 0 for every one of the first {train.MONITOR_SAMPLES} training samples "
        "(evaluation pass after the last epoch, measured with prelu.Monitor). For PReLU such a unit still passes a "
        "scaled signal and gradient; the count shows how many units sit entirely on the negative side."
    )


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
    """Run ``prelu compare`` with ``options`` (see :data:`DEFAULTS`; None means the default) and
    return the results (as written to ``<out>/<name>/results.json``).

    Everything is validated before the run folder is created (:class:`ConfigError` otherwise).
    ``on_run(run_id, record)`` is called after each finished run is saved. Under ``torchrun``
    the runs train with DistributedDataParallel and only rank 0 writes or prints.
    """
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
    data, builder, settings = validate(config, distributed.world_size)

    activations: list[str] = config["activations"]  # type: ignore[assignment]
    specs = [RunSpec(activation, seed) for seed in range(int(config["seeds"])) for activation in activations]  # type: ignore[call-overload]
    if distributed.is_main:
        folder.create({"experiment": "compare", **config}, force=force)

    def train_one(spec: RunSpec, on_epoch: Callable[[int, dict], None]) -> dict:
        model = builder(spec.group, spec.seed)
        record = train.train_run(model, data, settings, spec.seed, distributed=distributed, on_epoch=on_epoch)
        return {"activation": spec.group, **record}

    results: dict = {}

    def finalize(records: dict[str, dict], final: bool) -> None:
        summaries = _summaries(records, activations)
        results.clear()
        results.update(
            experiment="compare",
            config=config,
            complete=all(spec.run_id in records for spec in specs),
            finished=sum(spec.run_id in records for spec in specs),
            expected=len(specs),
            environment=environment(distributed),
            claims=claims_module.compare_claims(summaries, target=settings.target_accuracy, epochs=settings.epochs),
            summary=summaries,
            runs=[
                {
                    key: record[key]
                    for key in (
                        "id",
                        "activation",
                        "seed",
                        "final",
                        "init_fingerprint",
                        "order_fingerprint",
                        "diverged",
                    )
                }
                for record in records.values()
            ],
        )
        runs.write_json(folder.results_path, results)
        if final:
            runs.write_text(folder.report_path, _report(config, data, results, records))

    records = execute(
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
        print_results(results, folder)
    del records
    return results


def print_results(results: Mapping[str, object], folder: runs.RunFolder) -> None:
    """The summary and claims tables on stdout, and where the files are."""
    config = results["config"]
    headers, rows = table_rows(results["summary"], float(config["target"]))  # type: ignore[index, arg-type]
    console.print_table(
        f"prelu compare: {config['dataset']}, {config['model']}, {config['epochs']} epochs, mean ± std over seeds",  # type: ignore[index]
        headers,
        rows,
        right=[False, True, True, True, True, True, False, True, True],
    )
    print_claims(results["claims"])  # type: ignore[arg-type]
    print(f"wrote {folder.results_path}, {folder.report_path}, runs/ and curves/ in {folder.path}")


def print_claims(claims: list[dict]) -> None:
    console.print_table(
        "claims",
        ["claim", "our number", "verdict"],
        [[c["claim"], c["number"], c.get("verdict_text", c["verdict"])] for c in claims],
    )
