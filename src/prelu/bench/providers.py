"""Who ``prelu bench run`` times: each provider builds a callable that runs its op once.

One harness, the provider is a parameter (the Liger-Kernel pattern):

======================= ==========================================================================
provider                what runs
======================= ==========================================================================
``prelu``               :class:`prelu.PReLU`, ``auto`` backend (fused kernels where they apply)
``prelu_native``        :class:`prelu.PReLU` under ``prelu.use_backend("native")`` (plain torch ops)
``torch_prelu``         ``torch.nn.PReLU`` eager
``compile_torch_prelu`` ``torch.compile(torch.nn.PReLU)`` (``--compile``; alias ``torch_prelu_compiled``)
``leaky_relu``          ``torch.nn.LeakyReLU`` eager
``relu``                ``torch.nn.ReLU`` eager
``clone``               ``x.clone()``: reads and writes each byte once (no autograd, in both modes)
``roofline``            derived from ``clone``, never run (see :mod:`prelu.bench.ratios`)
======================= ==========================================================================

Modes: ``fwd`` runs the forward under ``torch.no_grad()``; ``full`` runs forward and backward with
a fixed, precomputed incoming gradient through ``torch.autograd.grad(y, [x, weight], g)``, so
``.grad`` accumulation is not timed. Imports torch and :mod:`prelu`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

import prelu
from prelu.bench.cases import Case

PROVIDERS: tuple[str, ...] = (
    "prelu",
    "prelu_native",
    "torch_prelu",
    "compile_torch_prelu",
    "leaky_relu",
    "relu",
    "clone",
)
"""Every provider that runs; ``roofline`` is derived from ``clone`` and never runs."""

PROVIDER_ALIASES: dict[str, str] = {"torch_prelu_compiled": "compile_torch_prelu"}
"""Other names ``--providers`` accepts; results always carry the name in :data:`PROVIDERS`."""

MODES: tuple[str, ...] = ("fwd", "full")

OP_OF_PROVIDER: dict[str, str] = {
    "prelu": "prelu",
    "prelu_native": "prelu",
    "torch_prelu": "prelu",
    "compile_torch_prelu": "prelu",
    "leaky_relu": "leaky_relu",
    "relu": "relu",
    "clone": "clone",
    "roofline": "roofline",
}

PROVIDER_HEADERS: dict[str, str] = {
    "prelu": "prelu",
    "prelu_native": "prelu native",
    "torch_prelu": "nn.PReLU",
    "compile_torch_prelu": "compiled nn.PReLU",
    "leaky_relu": "nn.LeakyReLU",
    "relu": "nn.ReLU",
    "clone": "clone",
    "roofline": "roofline",
}
"""How tables and plots name each provider."""


def resolve_providers(providers: Sequence[str] | None, compile: bool = False) -> list[str]:
    """The providers to run: default all but ``compile_torch_prelu`` (added by ``compile``);
    aliases replaced by their names; an unknown name is a ValueError naming the valid ones.

    >>> resolve_providers(["prelu", "torch_prelu_compiled"])
    ['prelu', 'compile_torch_prelu']
    """
    if providers is None:
        chosen = [p for p in PROVIDERS if p != "compile_torch_prelu" or compile]
    else:
        chosen = [PROVIDER_ALIASES.get(provider, provider) for provider in providers]
        if compile and "compile_torch_prelu" not in chosen:
            chosen.append("compile_torch_prelu")
    for provider in chosen:
        if provider not in PROVIDERS:
            valid = ", ".join([*PROVIDERS, *PROVIDER_ALIASES])
            raise ValueError(f"unknown provider {provider!r}; valid: {valid}")
    return list(dict.fromkeys(chosen))


def _slope_module(provider: str, case: Case, x: Tensor) -> nn.Module:
    if provider in ("prelu", "prelu_native"):
        return prelu.PReLU(case.channels, channel_dim=case.channel_dim, device=x.device, dtype=x.dtype)
    module: nn.Module = nn.PReLU(case.channels, device=x.device, dtype=x.dtype)
    if provider == "compile_torch_prelu":
        # dynamic=False: every case is a new module and shape; one static graph each.
        module = torch.compile(module, dynamic=False)  # type: ignore[assignment]  # compile returns a wrapper
    return module


def make_call(provider: str, case: Case, mode: str, x: Tensor, grad: Tensor) -> Callable[[], object]:
    """A zero-argument callable that runs ``provider`` once on ``x`` in ``mode`` (fwd or full).

    ``x`` must already require grad for ``full``; ``grad`` is the incoming gradient for ``full``.
    Modules are made on ``x``'s device and dtype.
    """
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; valid: {', '.join(PROVIDERS)}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    if provider == "clone":
        return x.detach().clone  # in full mode too: the reference for that block's roofline
    if provider == "leaky_relu":
        module: nn.Module = nn.LeakyReLU(0.01)
    elif provider == "relu":
        module = nn.ReLU()
    else:
        module = _slope_module(provider, case, x)
    parameters = [parameter for parameter in module.parameters() if parameter.requires_grad]

    if mode == "fwd":

        def forward() -> object:
            with torch.no_grad():
                return module(x)

        call: Callable[[], object] = forward
    else:
        inputs = [x, *parameters]

        def full() -> object:
            return torch.autograd.grad(module(x), inputs, grad)

        call = full

    if provider == "prelu_native":
        inner = call

        def native() -> object:
            # Backward picks its backend when it runs, so the whole call sits inside the block.
            with prelu.use_backend("native"):
                return inner()

        return native
    return call


def backend_of(provider: str, case: Case, x: Tensor) -> str:
    """The backend a prelu provider runs ('fused'/'native'); '' for the torch providers."""
    if provider not in ("prelu", "prelu_native"):
        return ""
    weight = torch.full((case.channels,), 0.25, dtype=x.dtype, device=x.device)
    if provider == "prelu_native":
        with prelu.use_backend("native"):
            return prelu.backend_for(x, weight, channel_dim=case.channel_dim)
    return prelu.backend_for(x, weight, channel_dim=case.channel_dim)
