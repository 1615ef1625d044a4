"""Every string that reaches report.html is escaped: model names, paths, layer names, dataset
names, labels and error text each carry a ``<script>`` here, and none reaches the page as markup."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from torch import nn

import prelu
from prelu.lab import compare, compare_report, depth_report, report
from prelu.lab.settings import CompareSettings, DepthSettings

SCRIPT = "<script>alert(1)</script>"
LABEL = "<script>alert(2)</script>"  # an activation name a user registered


def hostile_net(act, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A user's model whose layer is named ``<script>`` (``--model 'test_escaping:<script>alert(1)</script>'``)."""
    net = nn.Sequential()
    net.add_module("flat", nn.Flatten())
    net.add_module("hidden", nn.Linear(input_shape[-1], 6))
    net.add_module("<script>", act(6))
    net.add_module("head", nn.Linear(6, num_classes))
    return net


globals()[SCRIPT] = hostile_net  # the model function's name itself is the script


def assert_no_markup_from_input(page: str) -> None:
    assert not re.search(r"<\s*script", page, flags=re.IGNORECASE), page[page.lower().find("<script") - 200 :][:400]
    assert "&lt;script&gt;" in page


@pytest.fixture
def hostile_activation():
    prelu.register_activation(LABEL, lambda **kwargs: nn.LeakyReLU(0.1))
    yield LABEL.lower()
    prelu.unregister_activation(LABEL)


def test_a_report_made_from_hostile_names_has_no_script(tmp_path: Path, hostile_activation: str) -> None:
    compare.run(out=tmp_path, name="x", quiet=True, dataset="xor", limit=64, epochs=1, batch_size=32, seeds=1,
                activations=["prelu", hostile_activation], model=f"test_escaping:{SCRIPT}")  # fmt: skip
    page = (tmp_path / "x" / "report.html").read_text()
    assert_no_markup_from_input(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the model name, shown as text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page  # the activation's label
    assert re.search(r"<td>&lt;script&gt;</td>", page)  # the layer name in the slope table


def hostile_record(group: str, seed: int) -> dict:
    layer = {
        "name": SCRIPT,
        "kind": SCRIPT,
        "units": 2,
        "dead_units": 0,
        "dead_fraction": 0.0,
        "negative_fraction": 0.5,
        "slope_mean": 0.2,
        "slope_min": 0.1,
        "slope_max": 0.3,
        "learnable": True,
        "slope_change": 0.05,
        "hist_counts": [1, 2],
        "hist_range": [-1.0, 1.0],
        "underflow": 0,
        "overflow": 0,
    }
    curve = [{"epoch": e, "train_loss": 1.0 / (e + 1), "test_acc": 0.5, "test_loss": 1.0, "train_acc": 0.5,
              "dead_fraction": 0.0, "slopes": {SCRIPT: 0.2}} for e in range(3)]  # fmt: skip
    final = {"test_acc": 0.5, "test_loss": 1.0, "train_loss": 0.3, "train_acc": 0.5, "initial_train_loss": 1.0,
             "dead_fraction": 0.0, "epochs_to_target": None, "seconds_per_epoch": 0.01}  # fmt: skip
    return {"id": f"{SCRIPT}-seed{seed}", "group": group, "seed": seed, "epochs": 2, "curve": curve, "layers": [layer],
            "final": final, "diverged": 2, "divergence": {"epoch": 2, "statistic": SCRIPT, "value": SCRIPT},
            "init_fingerprint": SCRIPT, "order_fingerprint": SCRIPT, "init_input_std": [1.0, 0.5]}  # fmt: skip


def test_every_field_of_both_reports_is_escaped() -> None:
    from prelu.lab.summary import summarize

    claim = {"claim": SCRIPT, "source": SCRIPT, "number": SCRIPT, "rule": SCRIPT, "verdict": SCRIPT}
    records = {"a": hostile_record(SCRIPT, 0)}
    summary = {SCRIPT: summarize(list(records.values()))}
    results = {"summary": summary, "claims": [claim], "complete": False, "finished": SCRIPT, "expected": SCRIPT}
    settings = CompareSettings(
        dataset=SCRIPT, data_dir=f"/data/{SCRIPT}", limit=None, model=SCRIPT, width=None, depth=None,
        activations=(SCRIPT,), seeds=1, epochs=2, batch_size=4, optimizer=SCRIPT, lr=0.1, momentum=0.9,
        weight_decay=0.0, slope_weight_decay=0.0, target=0.9, init=SCRIPT, device="cpu",
    )  # fmt: skip
    page = compare_report.page(settings, f"{SCRIPT} from /data/{SCRIPT}", results, records)
    assert_no_markup_from_input(page)

    group = f"kaiming/{SCRIPT}"
    depth_records = [hostile_record(group, 0)]
    results = {**results, "summary": {group: summarize(depth_records)}}
    depth_settings = DepthSettings(
        dataset=SCRIPT, limit=None, layers=3, width=2, activations=(SCRIPT,), inits=("kaiming",), seeds=1, epochs=2,
        batch_size=4, optimizer=SCRIPT, lr=0.1, momentum=0.9, weight_decay=0.0, slope_weight_decay=0.0, device="cpu",
    )  # fmt: skip
    page = depth_report.page(depth_settings, f"{SCRIPT} from /data/{SCRIPT}", results, {group: depth_records})
    assert_no_markup_from_input(page)


def test_the_page_helpers_take_text() -> None:
    page = report.page(SCRIPT, [(SCRIPT, report.note(SCRIPT))], SCRIPT, incomplete=SCRIPT)
    assert_no_markup_from_input(page)
    assert_no_markup_from_input(report.html_table([SCRIPT], [[SCRIPT]]) + report.claims_table([]) + "&lt;script&gt;")
