"""Tests for :mod:`prelu.lab` and the ``compare`` / ``depth`` commands.

Tiny configurations (synthetic data, a few hundred samples, 1-2 epochs) keep this file fast; the
numbers themselves are not asserted, only what the lab promises about them: fairness (same initial
weights and data order per seed), nothing lost on interrupt, resume without redoing runs, no
overwrite without --force, bad flags -> exit 2 with nothing written, a self-contained report,
claims decided by the numbers, and a 2-process torchrun run matching a 1-process one.
"""

from __future__ import annotations

import html
import importlib.machinery
import json
import os
import random
import re
import socket
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import prelu
from prelu import cli
from prelu.lab import ConfigError, claims, compare, datasets, depth, files, models, train

TINY = {
    "dataset": "xor",
    "limit": 128,
    "epochs": 1,
    "batch_size": 32,
    "seeds": 2,
    "activations": ["relu", "prelu"],
    "width": 8,
}
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}


def tiny_compare(out: Path, **overrides: object) -> dict:
    options = {**TINY, **overrides}
    options.setdefault("name", "tiny")
    return compare.run(out=out, quiet=True, **options)  # type: ignore[arg-type]


# A user's models for --model test_lab:...: one takes the activation factory, one is converted.
def user_net(act, input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[-1], 6), act(6), nn.Linear(6, num_classes))


def user_relu_net():
    return nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 2))


# -- datasets and models ---------------------------------------------------------------------------


def test_synthetic_and_digits_datasets_are_fixed_and_standardised() -> None:
    for name in datasets.SYNTHETIC:
        first, second = datasets.load(name), datasets.load(name)
        assert first.x_train.shape == (2000, 2) and first.x_test.shape == (1000, 2)
        assert torch.equal(first.x_train, second.x_train) and set(first.y_train.tolist()) == {0, 1}
        assert 0.4 < first.y_train.float().mean() < 0.6
    digits = datasets.load("digits")
    assert digits.x_train.shape == (1437, 1, 8, 8) and digits.x_test.shape == (360, 1, 8, 8)
    assert abs(float(digits.x_train.mean())) < 1e-4 and abs(float(digits.x_train.std()) - 1) < 1e-3
    assert digits.num_classes == 10 and datasets.load("digits", limit=50).x_train.shape[0] == 50


def test_mnist1d_is_generated_locally_and_keeps_the_global_rngs(monkeypatch: pytest.MonkeyPatch) -> None:
    import mnist1d.data

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("the downloader was called")

    monkeypatch.setattr(mnist1d.data, "get_dataset", no_download)
    monkeypatch.setattr(mnist1d.data.requests, "get", no_download)
    random.seed(5)
    np.random.seed(5)
    expected = (random.random(), np.random.rand())
    random.seed(5)
    np.random.seed(5)
    data = datasets.load("mnist1d")
    assert data.x_train.shape == (4000, 1, 40) and data.x_test.shape == (1000, 1, 40) and data.num_classes == 10
    assert (random.random(), np.random.rand()) == expected


def test_folder_datasets_name_the_folder_and_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"--data-dir.*MNIST/raw.*train-images-idx3-ubyte"):
        datasets.check("mnist")
    with pytest.raises(ConfigError, match=r"not a folder"):
        datasets.check("mnist", tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path / "cifar-10-batches-py")) + r" lacks data_batch_1"):
        datasets.check("cifar10", tmp_path)
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for file in datasets._FOLDER_FILES["fashion-mnist"][1]:
        (raw / file).write_bytes(b"")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torchvision" else real_find_spec(name, *a)
    )
    with pytest.raises(ConfigError, match="torchvision, which is not installed"):
        datasets.check("fashion-mnist", tmp_path)


def test_folder_datasets_are_read_through_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    class FakeMNIST:  # what torchvision.datasets.MNIST exposes: uint8 .data (N, 28, 28), .targets
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, train, download))
            count = 30 if train else 10
            self.data = torch.randint(
                0, 256, (count, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
            )
            self.targets = torch.arange(count) % 10

    fake = types.ModuleType("torchvision")
    fake.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
    fake.datasets = types.SimpleNamespace(MNIST=FakeMNIST, FashionMNIST=FakeMNIST, CIFAR10=FakeMNIST)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for file in datasets._FOLDER_FILES["mnist"][1]:
        (raw / file).write_bytes(b"")
    data = datasets.load("mnist", data_dir=tmp_path)
    assert calls == [(str(tmp_path), True, False), (str(tmp_path), False, False)]  # never download=True
    assert data.x_train.shape == (30, 1, 28, 28) and data.x_test.shape == (10, 1, 28, 28)
    assert abs(float(data.x_train.mean())) < 1e-5


@pytest.mark.parametrize("model", models.MODELS)
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 40)])
def test_built_in_models_take_images_and_sequences(model: str, shape: tuple[int, ...]) -> None:
    net = models.build(model, models.activation_factory("prelu"), shape, 10, width=4)
    assert net(torch.randn(3, *shape)).shape == (3, 10)
    slopes = prelu.slope_parameters(net)
    assert slopes and all(p.numel() > 1 for p in slopes)  # one slope per channel, one module per place
    assert len({id(m) for m in net.modules() if isinstance(m, prelu.PReLU)}) == len(slopes)


def test_cnn_refuses_flat_data() -> None:
    with pytest.raises(ConfigError, match="use --model mlp"):
        models.build("cnn", models.activation_factory("relu"), (2,), 2)


def test_user_models_with_a_factory_or_converted() -> None:
    example = torch.randn(2, 2)
    net = models.build_user(models.user_builder("test_lab:user_net"), "prelu", (2,), 2, example)
    assert isinstance(net[2], prelu.PReLU) and net[2].num_parameters == 6
    converted = models.build_user(models.user_builder("test_lab:user_relu_net"), "leaky_relu", (2,), 2, example)
    assert isinstance(converted[1], prelu.LeakyReLU)
    for spec, message in [
        ("nope", "pkg.module:fn"),
        ("no_such_module_x:f", "cannot import"),
        ("test_lab:nothing", "no attribute"),
    ]:
        with pytest.raises(ConfigError, match=message):
            models.user_builder(spec)


# -- training: fairness, optimizer, data order ---------------------------------------------------------


def test_each_seed_gives_every_activation_the_same_initial_weights(tmp_path: Path) -> None:
    settings = compare.resolve({**TINY, "activations": ["relu", "leaky_relu", "prelu_shared", "prelu"], "depth": 3})
    data = datasets.load("xor", limit=64)
    builder = compare.Builder(settings, data)
    for seed in (0, 1):
        states = {name: train.shared_parameters(builder(name, seed)) for name in settings.activations}
        reference = states["relu"]
        for name, state in states.items():
            assert state.keys() == reference.keys(), name
            assert all(torch.equal(state[key], reference[key]) for key in reference), name
    first, second = (train.shared_parameters(builder("prelu", seed)) for seed in (0, 1))
    assert not torch.equal(first["body.1.weight"], second["body.1.weight"])


def test_data_order_depends_on_seed_and_epoch_only() -> None:
    alone = train.Distributed()
    order = [b.tolist() for b in train.epoch_batches(100, 10, seed=3, epoch=2, distributed=alone)]
    assert order == [b.tolist() for b in train.epoch_batches(100, 10, seed=3, epoch=2, distributed=alone)]
    assert order != [b.tolist() for b in train.epoch_batches(100, 10, seed=4, epoch=2, distributed=alone)]
    assert order != [b.tolist() for b in train.epoch_batches(100, 10, seed=3, epoch=1, distributed=alone)]
    # Two ranks split each global batch: together they hold exactly its samples.
    ranks = [train.epoch_batches(100, 10, 3, 2, train.Distributed(rank, 2)) for rank in (0, 1)]
    for index, batch in enumerate(order):
        assert sorted(ranks[0][index].tolist() + ranks[1][index].tolist()) == sorted(batch)
    assert len(train.epoch_batches(105, 10, 0, 0, alone)) == 10  # the partial batch is dropped


def test_slopes_get_no_weight_decay_unless_asked() -> None:
    net = models.build("mlp", models.activation_factory("prelu"), (2,), 2, width=4)
    settings = train.TrainSettings(epochs=1, batch_size=4, weight_decay=1e-3)
    groups = {group["name"]: group for group in train.make_optimizer(net, settings).param_groups}
    assert groups["slopes"]["weight_decay"] == 0.0 and groups["weights"]["weight_decay"] == 1e-3
    settings = train.TrainSettings(epochs=1, batch_size=4, weight_decay=1e-3, slope_weight_decay=1e-4)
    groups = {group["name"]: group for group in train.make_optimizer(net, settings).param_groups}
    assert groups["slopes"]["weight_decay"] == 1e-4


def test_compare_records_runs_results_curves_and_fairness(tmp_path: Path) -> None:
    results = tiny_compare(tmp_path, epochs=2)
    folder = tmp_path / "tiny"
    assert results["complete"] and results["finished"] == 4 == results["expected"]
    assert json.loads((folder / "results.json").read_text())["finished"] == 4
    assert sorted(p.name for p in (folder / "runs").iterdir()) == [
        "prelu-seed0.json",
        "prelu-seed1.json",
        "relu-seed0.json",
        "relu-seed1.json",
    ]
    csv_lines = (folder / "curves" / "prelu-seed0.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,train_loss,train_acc,test_loss,test_acc") and "slope:body.2" in csv_lines[0]
    assert len(csv_lines) == 1 + 3  # epochs 0, 1, 2
    by_id = {run["id"]: run for run in results["runs"]}
    for seed in (0, 1):
        relu, ours = by_id[f"relu-seed{seed}"], by_id[f"prelu-seed{seed}"]
        assert relu["init_fingerprint"] == ours["init_fingerprint"]
        assert relu["order_fingerprint"] == ours["order_fingerprint"]
    assert by_id["relu-seed0"]["init_fingerprint"] != by_id["relu-seed1"]["init_fingerprint"]
    assert by_id["relu-seed0"]["order_fingerprint"] != by_id["relu-seed1"]["order_fingerprint"]
    summary = results["summary"]["prelu"]
    assert summary["runs"] == 2 and summary["test_acc"]["std"] is not None
    assert summary["layers"]["body.2"]["learnable"] and "hist_counts" in summary["layers"]["body.2"]


# -- the run folder: interrupt, resume, force ---------------------------------------------------------


def test_interrupt_keeps_finished_runs_and_resume_does_not_redo_them(tmp_path: Path) -> None:
    def stop_after_first(run_id: str, record: dict) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tiny_compare(tmp_path, on_run=stop_after_first)
    folder = tmp_path / "tiny"
    first = folder / "runs" / "relu-seed0.json"
    assert [p.name for p in (folder / "runs").iterdir()] == ["relu-seed0.json"]
    partial = json.loads((folder / "results.json").read_text())
    assert partial["finished"] == 1 and not partial["complete"]
    assert "Incomplete: 1 of 4" in (folder / "report.html").read_text()
    stamp = first.stat().st_mtime_ns

    trained = []
    with pytest.raises(ConfigError, match="--resume"):
        tiny_compare(tmp_path)  # neither --resume nor --force: refused, nothing touched
    assert first.stat().st_mtime_ns == stamp
    results = tiny_compare(tmp_path, resume=True, on_run=lambda run_id, record: trained.append(run_id))
    assert trained == ["prelu-seed0", "relu-seed1", "prelu-seed1"]
    assert first.stat().st_mtime_ns == stamp and results["complete"] and results["finished"] == 4
    # A resumed folder keeps its settings; adding a seed adds runs, changing a setting is refused.
    with pytest.raises(ConfigError, match=r"epochs: 1 -> 3"):
        tiny_compare(tmp_path, resume=True, epochs=3)
    trained.clear()
    tiny_compare(tmp_path, resume=True, seeds=3, on_run=lambda run_id, record: trained.append(run_id))
    assert trained == ["relu-seed2", "prelu-seed2"]


def test_force_starts_over_and_resume_with_force_is_refused(tmp_path: Path) -> None:
    tiny_compare(tmp_path, seeds=1)
    folder = tmp_path / "tiny"
    (folder / "stray.txt").write_text("old")
    with pytest.raises(ConfigError, match="contradict"):
        tiny_compare(tmp_path, seeds=1, resume=True, force=True)
    assert (folder / "stray.txt").exists()
    tiny_compare(tmp_path, seeds=1, force=True, epochs=2)
    assert not (folder / "stray.txt").exists()
    assert json.loads((folder / "config.json").read_text())["epochs"] == 2


def test_atomic_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    files.write_json(tmp_path / "a.json", {"x": [1.0, float("inf")]})
    files.write_csv(tmp_path / "a.csv", [{"a": 1, "b": None}], ["a", "b"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.json"]
    assert (tmp_path / "a.csv").read_text() == "a,b\n1,\n"


# -- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--dataset", "nope"], "choose from"),
        (["--activations", "relu", "swish"], "valid choices: relu, leaky_relu, prelu, prelu_shared"),
        (["--model", "transformer"], "valid choices: mlp, cnn, resnet"),
        (["--model", "cnn", "--dataset", "xor"], "use --model mlp"),
        (["--epochs", "0"], "--epochs must be an integer >= 1"),
        (["--optimizer", "rmsprop"], "choose from"),
        (["--lr", "-1"], "--lr must be > 0"),
        (["--resume", "--force"], "contradict"),
        (["--dataset", "mnist"], "--data-dir"),
        (["--batch-size", "100000"], "exceeds"),
    ],
)
def test_bad_flags_exit_2_with_one_line_and_write_nothing(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    argv = ["compare", "--dataset", "xor", "--limit", "64", "--out", str(out), *flags]
    try:
        code = cli.main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    error = capsys.readouterr().err
    assert code == 2
    assert message in error and error.count("\n") == 1, error
    assert not out.exists()


def test_bad_flags_in_a_fresh_process_and_python_m_prelu(tmp_path: Path) -> None:
    for flags, message in [
        (["compare", "--activations", "swish"], "valid choices"),
        (["depth", "--layers", "x"], "--layers"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "prelu", *flags],
            cwd=tmp_path,
            env=SUBPROCESS_ENV,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert list(tmp_path.iterdir()) == []
    done = subprocess.run(
        [sys.executable, "-m", "prelu", "--help"], env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and all(command in done.stdout for command in ("bench", "compare", "depth"))


def test_compare_command_prints_tables_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        ["compare", "--dataset", "xor", "--limit", "96", "--epochs", "1", "--batch-size", "32", "--seeds", "2",
         "--activations", "relu,prelu_shared", "--model", "test_lab:user_net", "--out", str(tmp_path), "--no-progress"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "finished relu-seed0" in captured.err
    for text in ("test acc %", "dead units %", "s / epoch", "prelu_shared", "claims", "PReLU converges faster"):
        assert text in captured.out, text
    assert (tmp_path / "compare-xor-test_lab-user_net" / "report.html").exists()


# -- report and claims ------------------------------------------------------------------------------


def assert_self_contained(page: str) -> None:
    targets = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]*)""", page, flags=re.IGNORECASE)
    assert targets and all(target.startswith("data:image/png;base64,") for target in targets), targets[:3]
    for forbidden in ("<script", "<link", "@import", "url(", "http://", "https://"):
        assert forbidden not in page.lower(), forbidden


def test_report_is_self_contained_with_figures_and_claims(tmp_path: Path) -> None:
    results = tiny_compare(tmp_path, activations=["relu", "leaky_relu", "prelu_shared", "prelu"], seeds=2)
    page = (tmp_path / "tiny" / "report.html").read_text()
    assert_self_contained(page)
    assert page.count("<img") == 4  # curves, dead units, slope trajectories, histograms
    for heading in (
        "Claims",
        "Curves",
        "Dead units per layer",
        "Slope trajectories",
        "cf. He et al., Table 1",
        "inputs at the end",
    ):
        assert heading in page, heading
    assert len(results["claims"]) == 5
    for row in results["claims"]:
        assert row["verdict"] in (claims.AGREE, claims.DISAGREE, claims.INCONCLUSIVE)
        assert html.escape(row["claim"]) in page and row["rule"]
    # The accuracy verdict is the stated (paired) rule applied to the stated numbers: scipy's t interval of the
    # per-seed differences, computed here from the run records.
    from scipy import stats

    by_seed = {(r["activation"], r["seed"]): r["final"]["test_acc"] for r in results["runs"]}
    differences = [by_seed[("prelu", seed)] - by_seed[("relu", seed)] for seed in range(2)]
    row = next(r for r in results["claims"] if r["claim"].startswith("PReLU improves accuracy"))
    if np.std(differences) == 0:
        low = high = differences[0]
    else:
        low, high = stats.ttest_1samp(differences, 0.0).confidence_interval(0.95)
    expected = claims.AGREE if low > 0 else claims.DISAGREE if high <= 0 else claims.INCONCLUSIVE
    assert row["verdict"] == expected


# -- depth ----------------------------------------------------------------------------------------------


def test_kaiming_keeps_the_signal_where_xavier_shrinks_it() -> None:
    settings = depth.resolve({"layers": 20, "width": 64})
    data = datasets.load("digits", limit=200)
    for activation in ("relu", "prelu"):
        ratios = {}
        for init in ("xavier", "kaiming"):
            stds = depth.input_stds(depth.build(settings, data, init, activation, seed=0), data.x_train)
            assert len(stds) == 19
            ratios[init] = stds[-1] / stds[0]
        # Xavier halves the variance at every ReLU layer: std x 0.71 per layer, ~0.002 after 18.
        assert ratios["xavier"] < 0.01 and 0.1 < ratios["kaiming"] < 10, (activation, ratios)


def test_depth_runs_writes_report_and_claims(tmp_path: Path) -> None:
    results = depth.run(
        out=tmp_path, name="deep", quiet=True, layers=4, width=8, epochs=1, seeds=1, limit=96, batch_size=32
    )
    assert results["complete"] and results["finished"] == 4
    assert {(r["init"], r["activation"]) for r in results["runs"]} == {
        (init, act) for init in ("xavier", "kaiming") for act in ("relu", "prelu")
    }
    assert all(isinstance(r["trains"], bool) and len(r["init_input_std"]) == 3 for r in results["runs"])
    assert [row["claim"][:20] for row in results["claims"]] == ["Kaiming init trains ", "Early-layer slopes a"]
    page = (tmp_path / "deep" / "report.html").read_text()
    assert_self_contained(page)
    assert "Signal at init" in page and "cf. He et al., Fig. 3" in page
    with pytest.raises(ConfigError, match="valid choices: xavier, kaiming"):
        depth.run(out=tmp_path, name="other", quiet=True, inits=["orthogonal"])
    assert not (tmp_path / "other").exists()


# -- torchrun ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    flags = ["--dataset", "xor", "--limit", "256", "--epochs", "2", "--batch-size", "64", "--seeds", "1",
             "--activations", "relu", "prelu", "--width", "16", "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}"]
    done = subprocess.run(
        [*command, "-m", "prelu", "compare", *flags, "--name", "ddp"],
        cwd=tmp_path, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("prelu compare: xor") == 1  # only rank 0 prints
    done = subprocess.run(
        [sys.executable, "-m", "prelu", "compare", *flags, "--name", "single"],
        cwd=tmp_path, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    multi = json.loads((tmp_path / "ddp" / "results.json").read_text())
    single = json.loads((tmp_path / "single" / "results.json").read_text())
    assert multi["environment"]["world_size"] == 2 and single["environment"]["world_size"] == 1
    for run_id in ("relu-seed0", "prelu-seed0"):
        a = files.read_json(tmp_path / "ddp" / "runs" / f"{run_id}.json")
        b = files.read_json(tmp_path / "single" / "runs" / f"{run_id}.json")
        assert a["init_fingerprint"] == b["init_fingerprint"]
        for row_a, row_b in zip(a["curve"], b["curve"], strict=True):
            for key in ("train_loss", "test_loss", "running_loss"):
                if row_b[key] is not None:
                    assert row_a[key] == pytest.approx(row_b[key], rel=1e-4, abs=1e-6), (run_id, row_b["epoch"], key)
            assert abs(row_a["test_acc"] - row_b["test_acc"]) <= 1 / 256
        slopes_a = (
            next(layer["slopes"] for layer in a["layers"] if layer["learnable"]) if run_id.startswith("prelu") else []
        )
        slopes_b = (
            next(layer["slopes"] for layer in b["layers"] if layer["learnable"]) if run_id.startswith("prelu") else []
        )
        assert slopes_a == pytest.approx(slopes_b, rel=1e-4, abs=1e-6)
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == [
        ".lock",
        "config.json",
        "curves",
        "report.html",
        "results.json",
        "runs",
    ]
