"""prelu.bench.per_call: every contender is timed, and the table's figures come from the timings."""

from __future__ import annotations

import pytest

from prelu.bench import per_call


@pytest.fixture(scope="module")
def table():
    return per_call.measure(rounds=2, inner=3, warmup=1)


def test_every_contender_is_timed_in_both_modes(table):
    contenders = {"nn.ReLU", "nn.PReLU", "prelu.PReLU", "prelu.PReLU(inplace)", "prelu.prelu"}
    assert set(table["fwd_bwd_us"]) == contenders
    assert set(table["forward_us"]) == contenders | {"kernel"}
    assert all(value > 0 for row in ("forward_us", "fwd_bwd_us") for value in table[row].values())
    assert table["threads"] == 1 and table["shape"] == [64, 128]


def test_above_kernel_is_the_functional_call_minus_the_kernel(table):
    forward = table["forward_us"]
    assert table["above_kernel_us"] == pytest.approx(forward["prelu.prelu"] - forward["kernel"])


def test_markdown_shows_each_figure(table):
    text = "\n".join(per_call.markdown(table))
    assert f"{table['fwd_bwd_us']['nn.PReLU']:.1f}" in text
    assert f"{table['forward_us']['kernel']:.1f}" in text
    assert f"{table['above_kernel_us']:.1f} µs per call" in text


def test_restores_the_thread_count():
    import torch

    before = torch.get_num_threads()
    per_call.measure(rounds=1, inner=1, warmup=0)
    assert torch.get_num_threads() == before
