"""One run of ``prelu gan``: the data, the two networks, the training loop and the sample metrics.

Owns the ring and digits data, the generator and discriminator, the metrics and :func:`train_gan`;
imports :mod:`prelu` (the activations) and :mod:`prelu.lab.config`.

- ``ring``: 8 Gaussians of std 0.02 on a circle of radius 2 (the classic mode-collapse test). A
  sample is *high quality* when it lies within 3 std of its nearest mode; a mode is *covered* when
  at least :data:`COVER_SHARE` of the samples are high-quality samples of it. The quality score is
  the share of high-quality samples, each mode's share capped at its fair 1/8 (1 only when every
  mode gets its share of good samples).
- ``digits``: scikit-learn's 8x8 digits, pixels scaled to [-1, 1]. A fixed logistic-regression
  classifier (trained once on all 1,797 digits, fixed solver, no randomness) reads each sample: a
  sample is high quality when its top class has probability >= :data:`CONFIDENT`; a digit is
  covered when at least :data:`COVER_SHARE` of the samples are confident samples of it; the
  quality score is the classifier's mean top-class probability.

The gradient the discriminator passes to the generator is ``dL_G / dx`` at the generated samples
(``L_G`` the non-saturating generator loss, summed over the batch): its mean norm per sample. A
discriminator whose rectifiers are dead for most inputs passes a small or zero gradient.

Fairness, per seed: the generator is the same for every activation (same seed), every
discriminator starts from the same Linear weights (built with ReLU and copied), and the noise and
the real batches come from one generator seeded with the seed.

>>> real = ring_modes()
>>> ring_metrics(real.repeat(10, 1))["modes"], ring_metrics(real[:1].repeat(80, 1))["modes"]
(8, 1)
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import prelu

RING_MODES, RING_RADIUS, RING_STD = 8, 2.0, 0.02
COVER_SHARE = 0.02
CONFIDENT = 0.9
EVAL_SAMPLES = 2000
LEAKY_SLOPE = 0.2  # DCGAN's discriminator (Radford et al. 2015)


def ring_modes() -> Tensor:
    """The 8 mode centres ``(8, 2)``."""
    angles = torch.arange(RING_MODES, dtype=torch.float32) * (2 * math.pi / RING_MODES)
    return RING_RADIUS * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)


def ring_batch(size: int, generator: torch.Generator) -> Tensor:
    """``size`` points of the 8-Gaussian ring."""
    modes = ring_modes()[torch.randint(0, RING_MODES, (size,), generator=generator)]
    return modes + RING_STD * torch.randn(size, 2, generator=generator)


def ring_metrics(samples: Tensor) -> dict[str, Any]:
    """``modes`` covered, ``high_quality`` share and ``quality`` score of 2-D samples (module docstring)."""
    distances = torch.cdist(samples.double(), ring_modes().double())
    nearest, which = distances.min(dim=1)
    good = nearest <= 3 * RING_STD
    shares = torch.bincount(which[good], minlength=RING_MODES).double() / len(samples)
    return {
        "modes": int((shares >= COVER_SHARE).sum()),
        "high_quality": float(good.double().mean()),
        "quality": float(shares.clamp(max=1 / RING_MODES).sum()),
    }


def digits_data() -> tuple[Tensor, Callable[[Tensor], dict[str, Any]]]:
    """The 1,797 digits as ``(N, 64)`` in [-1, 1] and their metrics function (a fixed classifier)."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    images, labels = load_digits(return_X_y=True)
    scaled = images / 8.0 - 1.0
    classifier = LogisticRegression(max_iter=2000, C=1.0).fit(scaled, labels)

    def metrics(samples: Tensor) -> dict[str, Any]:
        probabilities = classifier.predict_proba(samples.detach().double().numpy())
        top, which = probabilities.max(axis=1), probabilities.argmax(axis=1)
        good = top >= CONFIDENT
        shares = np.bincount(which[good], minlength=10) / len(samples)
        return {
            "modes": int((shares >= COVER_SHARE).sum()),
            "high_quality": float(good.mean()),
            "quality": float(top.mean()),
        }

    return torch.as_tensor(scaled, dtype=torch.float32), metrics


def activation(name: str, width: int) -> nn.Module:
    """The discriminator's rectifier: ReLU, Leaky ReLU 0.2 (DCGAN) or per-channel PReLU (init 0.25)."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return prelu.LeakyReLU(LEAKY_SLOPE)
    return prelu.PReLU(width)


def mlp(sizes: list[int], act: Callable[[int], nn.Module], last: nn.Module | None = None) -> nn.Sequential:
    """Linear layers of ``sizes``, ``act(width)`` after every hidden one, ``last`` at the end if given."""
    layers: list[nn.Module] = []
    for index, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if index < len(sizes) - 2:
            layers.append(act(b))
    if last is not None:
        layers.append(last)
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class GanSettings:
    """What one run needs: the data, the sizes and the optimiser (validated by :mod:`prelu.lab.gan`)."""

    data: str
    steps: int
    batch_size: int
    width: int
    noise: int
    lr: float
    eval_every: int
    samples_kept: int


def build(settings: GanSettings, dims: int, name: str, seed: int) -> tuple[nn.Module, nn.Module]:
    """(generator, discriminator) of one run; per seed the generator and D's Linear weights are the same."""
    torch.manual_seed(seed)
    last = nn.Tanh() if settings.data == "digits" else None
    generator = mlp([settings.noise, settings.width, settings.width, dims], lambda _: nn.ReLU(), last)
    sizes = [dims, settings.width, settings.width, 1]
    torch.manual_seed(seed + 10_000)
    reference = mlp(sizes, lambda _: nn.ReLU())
    torch.manual_seed(seed + 10_000)
    discriminator = mlp(sizes, lambda width: activation(name, width))
    linear = {key: value for key, value in reference.state_dict().items()}
    state = discriminator.state_dict()
    state.update({key: value.clone() for key, value in linear.items() if key in state})
    discriminator.load_state_dict(state)
    return generator, discriminator


def _dead_fraction(discriminator: nn.Module, x: Tensor) -> float:
    """Share of D's hidden units whose input is <= 0 for every sample of ``x``."""
    inputs: list[Tensor] = []
    rectifiers = [m for m in discriminator.modules() if isinstance(m, (nn.ReLU, prelu.LeakyReLU, prelu.PReLU))]
    handles = [m.register_forward_pre_hook(lambda _, args: inputs.append(args[0].detach())) for m in rectifiers]
    try:
        with torch.no_grad():
            discriminator(x)
    finally:
        for handle in handles:
            handle.remove()
    dead = sum(int((value <= 0).all(dim=0).sum()) for value in inputs)
    units = sum(value.shape[1] for value in inputs)
    return dead / units if units else 0.0


def _grad_norm(discriminator: nn.Module, fake: Tensor) -> float:
    """Mean per-sample norm of dL_G/dx at the generated samples (what D passes back to G)."""
    x = fake.detach().requires_grad_(True)
    loss = F.binary_cross_entropy_with_logits(discriminator(x), torch.ones(len(x), 1), reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return float(grad.norm(dim=1).mean())


def train_gan(
    settings: GanSettings,
    name: str,
    seed: int,
    real: Tensor | None,
    metrics: Callable[[Tensor], dict[str, Any]],
    on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train one GAN (non-saturating loss, Adam with betas (0.5, 0.999) as DCGAN) and return its record:
    ``curve`` (one row per evaluation, step 0 first), ``final`` (the last row), ``diverged`` (the step where a
    loss became NaN or infinite, else None), ``samples`` (the first ``samples_kept`` final samples)."""
    dims = 2 if real is None else real.shape[1]
    generator, discriminator = build(settings, dims, name, seed)
    stream = torch.Generator().manual_seed(seed)
    fixed_noise = torch.randn(EVAL_SAMPLES, settings.noise, generator=torch.Generator().manual_seed(10_000 + seed))
    fixed_real = ring_batch(EVAL_SAMPLES, torch.Generator().manual_seed(20_000)) if real is None else real
    betas = (0.5, 0.999)
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=settings.lr, betas=betas)
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=settings.lr, betas=betas)
    ones, zeros = torch.ones(settings.batch_size, 1), torch.zeros(settings.batch_size, 1)
    curve: list[dict[str, Any]] = []
    losses = {"d_loss": math.nan, "g_loss": math.nan}
    diverged, started = None, time.perf_counter()

    def evaluate(step: int) -> None:
        with torch.no_grad():
            fake = generator(fixed_noise)
        if bool(torch.isfinite(fake).all()):
            row = {"step": step, **metrics(fake), "grad_norm": _grad_norm(discriminator, fake)}
            row["d_dead_fraction"] = _dead_fraction(discriminator, torch.cat([fake, fixed_real]))
        else:  # a diverged generator: nothing to measure
            row = {"step": step, **dict.fromkeys(("modes", "high_quality", "quality", "grad_norm", "d_dead_fraction"))}
        row.update({key: value if math.isfinite(value) else None for key, value in losses.items()})
        curve.append(row)

    evaluate(0)
    for step in range(1, settings.steps + 1):
        if real is None:
            batch = ring_batch(settings.batch_size, stream)
        else:
            batch = real[torch.randint(0, len(real), (settings.batch_size,), generator=stream)]
        noise = torch.randn(settings.batch_size, settings.noise, generator=stream)
        fake = generator(noise)
        d_loss = F.binary_cross_entropy_with_logits(discriminator(batch), ones) + F.binary_cross_entropy_with_logits(
            discriminator(fake.detach()), zeros
        )
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward has no annotations
        d_optimizer.step()
        g_loss = F.binary_cross_entropy_with_logits(discriminator(fake), ones)
        g_optimizer.zero_grad(set_to_none=True)
        g_loss.backward()  # type: ignore[no-untyped-call]  # as above
        g_optimizer.step()
        losses = {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
        if not (math.isfinite(losses["d_loss"]) and math.isfinite(losses["g_loss"])):
            diverged = step
            evaluate(step)
            break
        if step % settings.eval_every == 0 or step == settings.steps:
            evaluate(step)
        if on_step is not None:
            on_step(step)
    with torch.no_grad():
        kept = generator(fixed_noise[: settings.samples_kept])
    return {
        "seed": seed,
        "diverged": diverged,
        "final": dict[str, Any](curve[-1]),
        "curve": curve,
        "samples": [[round(float(v), 4) for v in row] for row in kept],
        "seconds": time.perf_counter() - started,
    }
