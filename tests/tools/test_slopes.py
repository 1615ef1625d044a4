"""prelu.slopes / slopes_from_state_dict / slopes_from_checkpoint and ``prelu slopes``: values
against the tensors themselves, modes, tied layers, the state_dict guess and its documented limits,
whole-model files only when trusted."""

import pytest
import torch
from torch import nn

import prelu
from prelu import cli


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.bn1 = nn.BatchNorm2d(4)
        self.prelu1 = prelu.PReLU(4)
        self.conv2 = nn.Conv2d(4, 4, 3)
        self.act2 = nn.PReLU()
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 3, bias=False)
        self.block = nn.Sequential(nn.Linear(3, 3), prelu.PReLU(3, channel_dim=-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.conv2(self.prelu1(self.bn1(self.conv1(x)))))
        return self.block(self.fc(self.norm(x.mean(dim=(2, 3)))))


def _net() -> Net:
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.prelu1.weight.copy_(torch.tensor([0.681, 0.103, -0.2, 1.5]))
        net.act2.weight.fill_(0.596)
        net.block[1].weight.copy_(torch.tensor([0.1, 0.2, 0.6]))
    return net


EXPECTED = {
    "prelu1": ("channel", 4, [0.681, 0.103, -0.2, 1.5]),
    "act2": ("shared", 1, [0.596]),
    "block.1": ("channel", 3, [0.1, 0.2, 0.6]),
}


def _check(table, names=tuple(EXPECTED)) -> None:
    assert [row.name for row in table] == list(names)
    for name in names:
        mode, count, values = EXPECTED[name]
        row = table[name]
        assert (row.mode, row.count) == (mode, count)
        values = torch.tensor(values, dtype=torch.float32).double()
        assert row.mean == pytest.approx(values.mean().item(), rel=1e-12)
        assert (row.min, row.max) == (values.min().item(), values.max().item())


def test_slopes_of_a_model_match_the_tensors():
    table = prelu.slopes(_net())
    _check(table)
    assert [row.kind for row in table] == ["prelu.PReLU", "nn.PReLU", "prelu.PReLU"]
    text = str(table)
    assert "prelu1" in text and "channel" in text and "0.681" not in text  # means, not raw values
    assert f"{torch.tensor([0.681, 0.103, -0.2, 1.5]).mean().item():.3f}" in text


def test_element_mode_frozen_rows_and_tied_layers():
    a, b = prelu.PReLU(2, channel_dim=-1), prelu.PReLU(2, channel_dim=-1)
    prelu.tie_slopes(a, b)
    model = nn.Sequential(a, b, prelu.FrozenPReLU(torch.full((2, 3), 0.3)))
    table = prelu.slopes(model)
    assert [(row.name, row.mode, row.tied_to, row.kind) for row in table] == [
        ("0", "channel", "", "prelu.PReLU"),
        ("1", "channel", "0", "prelu.PReLU"),
        ("2", "element", "", "prelu.FrozenPReLU"),
    ]
    assert "tied to" in str(table)


def test_model_without_prelus_gives_an_empty_table():
    table = prelu.slopes(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    assert len(table) == 0 and "no PReLU slopes" in str(table)


def test_state_dict_guess_finds_the_prelus_and_skips_norms_and_layers():
    table = prelu.slopes_from_state_dict(_net().state_dict())
    _check(table)  # BatchNorm, LayerNorm, Linear without bias: none taken for a slope
    assert "guessed" in str(table)


def test_state_dict_guess_limits_are_the_documented_ones():
    state = {
        "encoder.gate.weight": torch.tensor([0.9, 1.1]),  # a bias-free scale under a neutral name: taken
        "head.act.weight": torch.tensor([3.0]),  # out of (-1, 2) but named like an activation: taken
        "head.p.weight": torch.tensor([3.0]),  # out of (-1, 2), neutral name: missed
        "rms_norm.weight": torch.tensor([0.9, 1.0]),  # named like a norm: skipped
    }
    names = [row.name for row in prelu.slopes_from_state_dict(state)]
    assert names == ["encoder.gate", "head.act"]


def test_state_dict_with_the_model_is_exact_and_does_not_change_the_model():
    net = _net()
    state = {key: value.clone() for key, value in net.state_dict().items()}
    state["block.1.weight"] = torch.tensor([5.0, 5.0, 5.0])  # out of the guess's range
    other = Net()
    table = prelu.slopes_from_state_dict(state, model=other)
    assert table["block.1"].mean == 5.0
    assert other.block[1].weight.tolist() == [0.25, 0.25, 0.25]
    with pytest.raises(ValueError, match=r"no 'act2\.weight'"):
        prelu.slopes_from_state_dict({"prelu1.weight": torch.zeros(4)}, model=Net())


def test_checkpoint_files(tmp_path):
    net = _net()
    plain = tmp_path / "state.pt"
    torch.save(net.state_dict(), plain)
    _check(prelu.slopes_from_checkpoint(plain))
    wrapped = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "model_state_dict": net.state_dict(), "optimizer": {"lr": 0.1}}, wrapped)
    _check(prelu.slopes_from_checkpoint(wrapped))
    whole = tmp_path / "model.pt"
    torch.save(net, whole)
    with pytest.raises(ValueError, match=r"pickled Python objects.*trusted=True"):
        prelu.slopes_from_checkpoint(whole)
    table = prelu.slopes_from_checkpoint(whole, trusted=True)
    _check(table)
    assert "model.pt" in table.source and not table.notes  # exact: no guess note
    junk = tmp_path / "junk.pt"
    torch.save({"epoch": 3}, junk)
    with pytest.raises(ValueError, match=r"'epoch'.*no model or state_dict"):
        prelu.slopes_from_checkpoint(junk)


def test_prelu_slopes_command(tmp_path, capsys):
    path = tmp_path / "model.pt"
    torch.save(_net(), path)
    assert cli.main(["slopes", str(path)]) == 1
    assert "--trust" in capsys.readouterr().err
    assert cli.main(["slopes", str(path), "--trust"]) == 0
    out = capsys.readouterr().out
    assert "prelu1" in out and "block.1" in out and "shared" in out
    assert cli.main(["slopes", str(tmp_path / "missing.pt")]) == 1
    assert "missing.pt" in capsys.readouterr().err
