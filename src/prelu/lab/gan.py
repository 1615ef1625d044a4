"""``prelu gan``: a small GAN whose discriminator uses ReLU, Leaky ReLU (0.2, DCGAN) or PReLU.

Owns the experiment's settings, the loop over (activation, seed) runs with their run folder
(``--resume`` keeps finished runs), the summary and the claim "Leaky ReLU helps GAN training";
imports the lab's other modules. One run is :func:`prelu.lab.gan_train.train_gan`; the page is
:mod:`prelu.lab.gan_report`.

The claim is decided on *modes covered* at the end (the classic mode-collapse measure), paired
over seeds (same seed = same generator, same discriminator weights, same noise and real batches):
per seed, Leaky ReLU's modes minus ReLU's, with the rule of :mod:`prelu.lab.paired` (threshold 0).
The other metrics are reported beside it with their own intervals. A run whose loss becomes NaN
or infinite is *diverged*: an outcome counted per activation, and left out of the metrics.

>>> resolve({})["steps"], resolve({"data": "digits"})["data"]
(1500, 'digits')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from prelu._io.jsonio import strict_json as strict
from prelu.lab import gan_report, paired, runs
from prelu.lab.config import ConfigError, choice, merge, positive_float, positive_int
from prelu.lab.console import Progress, print_claims_and_files, print_table
from prelu.lab.experiment import environment
from prelu.lab.files import write_json, write_text
from prelu.lab.gan_train import GanSettings, digits_data, ring_metrics, train_gan
from prelu.lab.loop import RunSpec
from prelu.lab.runs import FORMAT
from prelu.lab.standalone import hold, prepare, single_process
from prelu.lab.summary import stat

ACTIVATIONS = ("relu", "leaky_relu", "prelu")
DATA = ("ring", "digits")
METRICS = ("modes", "high_quality", "quality", "grad_norm", "d_dead_fraction")
DEFAULTS: dict[str, object] = {
    "data": "ring",
    "activations": list(ACTIVATIONS),
    "seeds": 3,
    "steps": 1500,
    "batch_size": 128,
    "width": 128,
    "noise": 8,
    "lr": 1e-3,
    "eval_every": 100,
    "threads": 1,
    "device": "cpu",
}
# One thread by default: the networks are tiny (128 x 128 matrices), where a second thread costs
# more than it gives; on the loaded 2-core machine one thread ran a step ~5x faster than two (measured).
RUN_SET = ("activations", "seeds")
SAMPLES_KEPT = {"ring": 1000, "digits": 32}


def resolve(options: Mapping[str, Any], stored: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then a resumed folder's config, then ``options`` (see :func:`prelu.lab.config.merge`)."""
    config = merge(DEFAULTS, options, stored, RUN_SET)
    config["activations"] = [str(name).strip().lower() for name in config["activations"]]
    return config


def default_name(config: Mapping[str, Any]) -> str:
    return f"gan-{config['data']}"


def settings_of(config: Mapping[str, Any]) -> GanSettings:
    """Check every setting (a :class:`ConfigError` names the bad one) and return the run settings."""
    data = choice("data", str(config["data"]), DATA)
    choice("device", str(config["device"]), ("cpu",))
    activations = config["activations"]
    if not activations:
        raise ConfigError(f"--activations needs at least one name; valid choices: {', '.join(ACTIVATIONS)}")
    for name in activations:
        choice("activation", name, ACTIVATIONS)
    if len(set(activations)) != len(activations):
        raise ConfigError(f"--activations lists a name twice: {', '.join(activations)}")
    for key in ("seeds", "steps", "batch_size", "width", "noise", "eval_every", "threads"):
        positive_int(f"--{key.replace('_', '-')}", config[key])
    positive_float("--lr", config["lr"])
    return GanSettings(
        data=data,
        steps=int(config["steps"]),
        batch_size=int(config["batch_size"]),
        width=int(config["width"]),
        noise=int(config["noise"]),
        lr=float(config["lr"]),
        eval_every=int(config["eval_every"]),
        samples_kept=SAMPLES_KEPT[data],
    )


def summarize_gan(records: Mapping[str, dict[str, Any]], activations: list[str]) -> dict[str, dict[str, Any]]:
    """Per activation: runs, seeds, diverged count and rate, and mean ± std of every final metric
    and of every curve point. As :func:`prelu.lab.summary.summarize` does, ``runs`` and ``seeds`` count
    every run and a diverged run's numbers are missing (None), so paired differences drop its seed."""
    out: dict[str, dict[str, Any]] = {}
    for name in activations:
        group = sorted((r for r in records.values() if r["group"] == name), key=lambda r: r["seed"])
        kept = [r for r in group if not r.get("diverged")]
        summary: dict[str, Any] = {
            "runs": len(group),
            "seeds": [r["seed"] for r in group],
            "diverged": len(group) - len(kept),
            "diverged_rate": (len(group) - len(kept)) / len(group) if group else None,
        }
        for key in METRICS:
            summary[key] = stat(None if r.get("diverged") else r["final"].get(key) for r in group)
        if kept:
            length = min(len(r["curve"]) for r in kept)
            summary["curve"] = {"step": [kept[0]["curve"][i]["step"] for i in range(length)]}
            for key in (*METRICS, "d_loss", "g_loss"):
                columns = [stat(r["curve"][i].get(key) for r in kept) for i in range(length)]
                summary["curve"][key] = {"mean": [c["mean"] for c in columns], "std": [c["std"] for c in columns]}
        out[name] = summary
    return out


def gan_claims(summaries: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """ "Leaky ReLU helps GAN training (DCGAN)", decided on modes covered, paired over seeds."""
    claim = "Leaky ReLU helps GAN training (DCGAN's discriminator)"
    source = "Radford et al. 2015 (DCGAN); tested by prelu gan"
    rule = (
        f"per seed, Leaky ReLU's modes covered at the end minus ReLU's (diverged runs left out); {paired.RULE} "
        "(threshold 0)"
    )
    if "relu" not in summaries or "leaky_relu" not in summaries:
        return [_row(claim, source, "not measured: needs relu and leaky_relu in --activations", rule, "inconclusive")]
    relu, leaky = summaries["relu"], summaries["leaky_relu"]
    text = gan_report.mean_text
    parts = []
    for name, summary in summaries.items():
        diverged = f"{summary['diverged']}/{summary['runs']} diverged"
        parts.append(
            f"{name}: modes {text(summary['modes'], 1)}, high-quality {text(summary['high_quality'], 100)} %, "
            f"quality {text(summary['quality'], 1, 3)}, grad to G {text(summary['grad_norm'], 1, 3)}, "
            f"D dead {text(summary['d_dead_fraction'], 100)} % ({diverged})"
        )
    result = paired.interval(paired.pair(leaky, relu, "modes"))
    verdict = paired.decide(result, 0.0)
    extra = []
    for key, label, scale in (("high_quality", "high-quality share", 100.0), ("quality", "quality score", 1.0)):
        other = paired.interval(paired.pair(leaky, relu, key))
        extra.append(f"{label}: {paired.describe(other, 0.0, scale, ' pp' if scale == 100.0 else '')}")
    number = (
        f"modes, Leaky ReLU - ReLU: {paired.describe(result, 0.0)}; also {'; '.join(extra)}. Per activation: "
        + "; ".join(parts)
    )
    return [_row(claim, source, number, rule, verdict)]


def _row(claim: str, source: str, number: str, rule: str, verdict: str) -> dict[str, Any]:
    word = verdict.split(" ", 1)[0]
    return {"claim": claim, "source": source, "number": number, "rule": rule, "verdict": word, "verdict_text": verdict}


def _is_gan_record(value: object) -> bool:
    """Whether a run file holds a finished GAN run (what :func:`train_gan` returns, with its id)."""
    return runs.has_run_shape(value) and isinstance(value, dict) and isinstance(value.get("group"), str)


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
    """Run ``prelu gan`` with ``options`` (see :data:`DEFAULTS`) and return the results (as in
    ``<out>/<name>/results.json``); validated before anything is written. Not on the Experiment
    protocol: the run folder's rules come from :mod:`prelu.lab.standalone` (one process only)."""
    choice("device", str(options.get("device") or DEFAULTS["device"]), ("cpu",))
    distributed = single_process("gan")
    config, folder = prepare(
        "gan", options, resolve=resolve, default_name=default_name, out=out, name=name, resume=resume, force=force
    )
    settings = settings_of(config)
    real, metrics = digits_data() if settings.data == "digits" else (None, ring_metrics)
    activations: list[str] = config["activations"]
    specs = [RunSpec(activation, seed) for seed in range(int(config["seeds"])) for activation in activations]
    results: dict[str, Any] = {}
    records: dict[str, dict[str, Any]] = {}

    def finalize(final: bool) -> None:
        summaries = summarize_gan(records, activations)
        results.clear()
        results.update(
            experiment="gan",
            format=FORMAT,
            config=config,
            complete=len(records) == len(specs),
            finished=len(records),
            expected=len(specs),
            environment=environment(distributed),
            claims=gan_claims(summaries),
            summary=summaries,
            runs=[{k: r[k] for k in ("id", "group", "seed", "final", "diverged", "seconds")} for r in records.values()],
        )
        write_json(folder.results_path, results)
        if final:
            write_text(folder.report_path, gan_report.page(config, results, records))

    threads = torch.get_num_threads()
    with hold(folder, "gan", config, resume=resume, force=force, wait=wait):
        wanted = {spec.run_id for spec in specs}
        records.update({i: r for i, r in folder.finished(_is_gan_record).items() if i in wanted})
        todo = [spec for spec in specs if spec.run_id not in records]
        torch.set_num_threads(int(config["threads"]))
        try:
            with Progress(len(todo) * settings.steps, bar=progress and not quiet, notes=not quiet) as bar:
                for problem in folder.problems:
                    bar.note(problem)
                try:
                    for number, spec in enumerate(todo, start=1):
                        bar.describe(f"{spec.group} seed {spec.seed} ({number}/{len(todo)})")
                        record = train_gan(
                            settings, spec.group, spec.seed, real, metrics, on_step=lambda _: bar.advance()
                        )
                        record = strict({"id": spec.run_id, "group": spec.group, **record})
                        folder.save_run(spec.run_id, record, record["curve"], ["step", *METRICS, "d_loss", "g_loss"])
                        records[spec.run_id] = record
                        finalize(False)
                        final = record["final"]
                        state = (
                            f"diverged at step {record['diverged']}"
                            if record["diverged"]
                            else f"modes {final['modes']}"
                        )
                        bar.note(f"finished {spec.run_id}: {state}, {record['seconds']:.1f} s")
                        if on_run is not None:
                            on_run(spec.run_id, record)
                except KeyboardInterrupt:
                    bar.note(f"interrupted: {len(records)} finished run(s) kept in {folder.path}; --resume continues")
                    finalize(True)
                    raise
        finally:
            torch.set_num_threads(threads)
        finalize(True)
    if not quiet:
        headers, rows = gan_report.table_rows(results["summary"])
        print_table(
            f"prelu gan: {config['data']}, {config['steps']} steps, mean ± std over the runs that did not diverge",
            headers,
            rows,
            right=[False, *[True] * 7],
        )
        print_claims_and_files(results["claims"], folder.path, folder.results_path, folder.report_path)
    return results
