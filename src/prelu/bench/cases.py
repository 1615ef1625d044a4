"""What ``prelu bench run`` times: the cases (shape, memory layout, slope layout) and their inputs.

Owns :class:`Case`, the default and ``--quick`` case lists, the dtypes and devices a run may use,
and the seeded inputs. Imports torch only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

LAYOUTS: tuple[str, ...] = ("contiguous", "channels_last")
SLOPES: tuple[str, ...] = ("channel", "shared")
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float64": torch.float64,
}
"""The dtypes ``--dtype`` offers, by name."""
DEVICES: tuple[str, ...] = ("cpu", "cuda")


@dataclasses.dataclass(frozen=True)
class Case:
    """One input to benchmark: shape, memory layout, and one shared slope or one per channel.

    The channel axis is dim 1 (NCHW; also the last dim of a 2-D (batch, features) input, which is
    where ``torch.nn.PReLU`` puts it too). ``channels_last`` only applies to 4-D shapes.

    >>> Case((4096, 1024), slopes="shared").label
    '4096x1024 contiguous shared'
    """

    shape: tuple[int, ...]
    layout: str = "contiguous"
    slopes: str = "channel"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.slopes not in SLOPES:
            raise ValueError(f"slopes must be one of {SLOPES}, got {self.slopes!r}")
        if len(self.shape) < 2 or any(size < 1 for size in self.shape):
            raise ValueError(f"shape needs at least 2 positive dims (batch, channels, ...), got {self.shape}")
        if self.layout == "channels_last" and len(self.shape) != 4:
            raise ValueError(f"channels_last needs a 4-D shape, got {self.shape}")

    @property
    def shape_text(self) -> str:
        """The shape as ``32x64x56x56``."""
        return "x".join(str(size) for size in self.shape)

    @property
    def label(self) -> str:
        """Shape, layout and slopes in one line."""
        return f"{self.shape_text} {self.layout} {self.slopes}"

    @property
    def key(self) -> tuple[str, str, str]:
        """(shape text, layout, slopes): how results name the case."""
        return (self.shape_text, self.layout, self.slopes)

    @property
    def channels(self) -> int:
        """Number of slopes: the size of dim 1, or 1 for a shared slope."""
        return self.shape[1] if self.slopes == "channel" else 1

    @property
    def channel_dim(self) -> int:
        """The channel axis prelu is told: -1 for 2-D inputs (features last), 1 otherwise."""
        return -1 if len(self.shape) == 2 else 1


DEFAULT_CASES: tuple[Case, ...] = (
    Case((32, 64, 56, 56), "contiguous", "channel"),
    Case((32, 64, 56, 56), "channels_last", "channel"),
    Case((32, 64, 56, 56), "contiguous", "shared"),
    Case((32, 64, 56, 56), "channels_last", "shared"),
    Case((64, 256, 14, 14), "contiguous", "channel"),
    Case((64, 256, 14, 14), "contiguous", "shared"),
    Case((4096, 1024), "contiguous", "channel"),
    Case((4096, 1024), "contiguous", "shared"),
)
"""The full run: the design's shapes, NCHW and channels-last, shared and per-channel slopes."""

QUICK_CASES: tuple[Case, ...] = DEFAULT_CASES[:3]
"""``--quick``: (32,64,56,56) per channel in NCHW and channels-last, and shared in NCHW."""

TARGET_SHAPE = "32x64x56x56"
"""The shape the design's fwd+bwd targets are stated for."""


def make_cases(
    shapes: Iterable[Sequence[int]], layouts: Iterable[str] = LAYOUTS, slopes: Iterable[str] = SLOPES
) -> list[Case]:
    """Every (shape, layout, slopes) combination, skipping ``channels_last`` for shapes not 4-D.

    >>> [case.label for case in make_cases([(2, 3, 4, 4), (8, 16)], slopes=["channel"])]
    ['2x3x4x4 contiguous channel', '2x3x4x4 channels_last channel', '8x16 contiguous channel']
    """
    layouts, slopes = list(layouts), list(slopes)
    cases: list[Case] = []
    for shape in shapes:
        for layout in layouts:
            if layout == "channels_last" and len(shape) != 4:
                continue
            cases.extend(Case(tuple(int(size) for size in shape), layout, slope) for slope in slopes)
    return cases


def make_input(
    case: Case, dtype: torch.dtype = torch.float32, seed: int = 0, device: str | torch.device = "cpu"
) -> tuple[Tensor, Tensor]:
    """The input ``x`` (standard normal, half negative, in the case's layout) and an incoming
    gradient in the same layout, both seeded, on ``device``.

    Drawn in float32 or float64 on the CPU (the same numbers on every device), then cast.

    >>> x, grad = make_input(Case((2, 3, 4, 4), "channels_last"), torch.bfloat16)
    >>> x.dtype, x.is_contiguous(memory_format=torch.channels_last), grad.shape
    (torch.bfloat16, True, torch.Size([2, 3, 4, 4]))
    """
    generator = torch.Generator().manual_seed(seed)
    drawn = torch.float64 if dtype == torch.float64 else torch.float32
    x = torch.randn(case.shape, generator=generator, dtype=drawn)
    grad = torch.randn(case.shape, generator=generator, dtype=drawn)
    memory_format = torch.channels_last if case.layout == "channels_last" else torch.contiguous_format
    x = x.to(device=device, dtype=dtype, memory_format=memory_format)
    grad = grad.to(device=device, dtype=dtype, memory_format=memory_format)
    return x, grad
