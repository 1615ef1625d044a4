"""prelu bench memory: the saved-bytes count against what the architecture implies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prelu import cli
from prelu.bench import memory as bench_memory


def test_inplace_prelu_saves_one_activation_less_per_block_than_nn_prelu() -> None:
    batch, channels, size, blocks = 2, 4, 8, 3
    rows = {
        row.activation: row
        for row in bench_memory.run(batch=batch, channels=channels, size=size, blocks=blocks, repeats=1)
    }
    activation_mb = batch * channels * size * size * 4 / 2**20
    # nn.PReLU keeps its input (BatchNorm's output) in every block; in place, PReLU keeps only its
    # output, which the next convolution keeps anyway. The last block's output feeds no convolution,
    # so blocks - 1 buffers are saved.
    saved = rows["nn.PReLU"].saved_mb - rows["prelu.PReLU(inplace=True)"].saved_mb
    assert abs(saved - (blocks - 1) * activation_mb) < 1e-9
    assert rows["prelu.PReLU"].saved_mb == rows["nn.PReLU"].saved_mb
    # Against ReLU(inplace=True): the same buffers plus the slopes (blocks x channels float32).
    extra = rows["prelu.PReLU(inplace=True)"].saved_mb - rows["nn.ReLU(inplace=True)"].saved_mb
    assert abs(extra - blocks * channels * 4 / 2**20) < 1e-9
    assert all(row.step_ms > 0 for row in rows.values())


def test_memory_flag_alias_writes_the_table(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "prelu", "bench", "--memory", "--quick", "--repeats", "1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    text = (tmp_path / "memory.md").read_text()
    assert "prelu.PReLU(inplace=True)" in text and "Machine:" in text
    assert "| activation | autograd-saved MB (unique storages) |" in text


def test_memory_subcommand(tmp_path: Path) -> None:
    assert cli.main(["bench", "memory", "--quick", "--repeats", "1", "--out", str(tmp_path / "m")]) == 0
    assert sorted(path.name for path in (tmp_path / "m").iterdir()) == ["bench.json", "memory.md"]
