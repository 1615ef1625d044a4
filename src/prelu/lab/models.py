"""The lab's models and the activation factories they are built with.

Owns :func:`activation_factory`, the built-in models (``mlp``, ``cnn``, ``resnet``: :func:`build`)
and loading a user's model from ``pkg.module:fn`` (:func:`user_builder`). Imports
:mod:`prelu.tools.registry`, :mod:`prelu.nn.modules`, :mod:`prelu.tools.convert` and :mod:`prelu.lab.config`.

Every activation is its own module (none is reused), so a per-channel PReLU gets the channel
count of its place and :class:`prelu.Monitor` sees each layer separately.

An activation factory is called as ``act(channels, channel_dim=1)`` and returns a new module:
ReLU and Leaky ReLU ignore the arguments, ``prelu`` is ``prelu.PReLU(channels, channel_dim=...)``
(one slope per channel, the paper's default), ``prelu_shared`` is ``prelu.PReLU(1)``.

>>> model = build("mlp", activation_factory("prelu"), (1, 8, 8), 10, width=16, depth=2)
>>> model
MLP(
  (body): Sequential(
    (0): Flatten(start_dim=1, end_dim=-1)
    (1): Linear(in_features=64, out_features=16, bias=True)
    (2): PReLU(num_parameters=16, init=0.25, channel_dim=1)
    (3): Linear(in_features=16, out_features=16, bias=True)
    (4): PReLU(num_parameters=16, init=0.25, channel_dim=1)
  )
  (head): Linear(in_features=16, out_features=10, bias=True)
)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

import prelu
from prelu.lab.config import ConfigError

MODELS = ("mlp", "cnn", "resnet")
ActivationFactory = Callable[..., nn.Module]
DEFAULT_WIDTH = {"mlp": 128, "cnn": 32, "resnet": 16}
DEFAULT_DEPTH = {"mlp": 3, "cnn": 3, "resnet": 3}
# Bounds that keep a typo from allocating the machine's memory before anything is checked: the lab's
# models are small (the defaults have < 1 M parameters); 50 M float32 parameters are 200 MB.
MAX_DEPTH = 1000
MAX_PARAMETERS = 50_000_000


def activation_factory(name: str) -> ActivationFactory:
    """A factory ``act(channels=1, channel_dim=1) -> nn.Module`` for a registered activation name.

    >>> act = activation_factory("prelu")
    >>> act(32), act(32, channel_dim=-1)
    (PReLU(num_parameters=32, init=0.25, channel_dim=1), PReLU(num_parameters=32, init=0.25, channel_dim=-1))
    """
    key = name.strip().lower()
    if key not in prelu.activation_names():
        raise ConfigError(f"unknown activation {name!r}; valid choices: {', '.join(prelu.activation_names())}")

    def act(channels: int = 1, channel_dim: int = 1) -> nn.Module:
        if key == "prelu":
            return prelu.get_activation("prelu", num_parameters=channels, channel_dim=channel_dim)
        return prelu.get_activation(key)

    act.__name__ = f"act_{key}"
    return act


class MLP(nn.Module):
    """``depth`` hidden Linear layers of ``width`` units, each followed by the activation, then a classifier."""

    def __init__(self, act: ActivationFactory, in_features: int, num_classes: int, width: int, depth: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for index in range(depth):
            layers += [nn.Linear(in_features if index == 0 else width, width), act(width, 1)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width if depth else in_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.head(self.body(x))
        return logits


def _conv(spatial: int) -> type[nn.Module]:
    return nn.Conv1d if spatial == 1 else nn.Conv2d


class CNN(nn.Module):
    """Plain convolutions (3 wide, padding 1; no normalisation), each followed by the activation;
    the channels double and a 2x max-pool follows after every second conv; global average pool, classifier.
    Works on ``(C, L)`` and ``(C, H, W)`` inputs."""

    def __init__(self, act: ActivationFactory, input_shape: tuple[int, ...], num_classes: int, width: int, depth: int):
        super().__init__()
        spatial = len(input_shape) - 1
        conv, pool = _conv(spatial), (nn.MaxPool1d if spatial == 1 else nn.MaxPool2d)
        layers: list[nn.Module] = []
        channels, size = input_shape[0], min(input_shape[1:])
        for index in range(depth):
            out = width * 2 ** (index // 2)
            layers += [conv(channels, out, 3, padding=1), act(out, 1)]
            channels = out
            if index % 2 == 1 and index < depth - 1 and size >= 4:
                layers.append(pool(2))
                size //= 2
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1) if spatial == 1 else nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.head(self.pool(self.body(x)).flatten(1))
        return logits


class BasicBlock(nn.Module):
    """ResNet's basic block: conv-BN-act-conv-BN, plus the shortcut, then the activation (He et al. 2016)."""

    def __init__(self, act: ActivationFactory, spatial: int, channels: int, out: int, stride: int) -> None:
        super().__init__()
        conv, norm = _conv(spatial), (nn.BatchNorm1d if spatial == 1 else nn.BatchNorm2d)
        self.conv1 = conv(channels, out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm(out)
        self.act1 = act(out, 1)
        self.conv2 = conv(out, out, 3, padding=1, bias=False)
        self.bn2 = norm(out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or channels != out:
            self.shortcut = nn.Sequential(conv(channels, out, 1, stride=stride, bias=False), norm(out))
        self.act2 = act(out, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        out: Tensor = self.act2(y + self.shortcut(x))
        return out


class ResNet(nn.Module):
    """A small ResNet with BatchNorm: a stem conv, ``depth`` stages of one basic block each (width
    doubling, stride 2 from the second stage while the feature map allows), global pool, classifier."""

    def __init__(self, act: ActivationFactory, input_shape: tuple[int, ...], num_classes: int, width: int, depth: int):
        super().__init__()
        spatial = len(input_shape) - 1
        conv, norm = _conv(spatial), (nn.BatchNorm1d if spatial == 1 else nn.BatchNorm2d)
        self.stem = nn.Sequential(conv(input_shape[0], width, 3, padding=1, bias=False), norm(width), act(width, 1))
        blocks, channels, size = [], width, min(input_shape[1:])
        for index in range(depth):
            out = width * 2**index
            stride = 2 if index > 0 and size >= 4 else 1
            size //= stride
            blocks.append(BasicBlock(act, spatial, channels, out, stride))
            channels = out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool1d(1) if spatial == 1 else nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.head(self.pool(self.blocks(self.stem(x))).flatten(1))
        return logits


def check(model: str, input_shape: tuple[int, ...]) -> None:
    """Raise :class:`ConfigError` if the built-in ``model`` cannot take samples of ``input_shape``."""
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r}; valid choices: {', '.join(MODELS)}, or pkg.module:fn")
    if model != "mlp" and len(input_shape) not in (2, 3):
        raise ConfigError(
            f"model {model!r} needs (channels, length) or (channels, height, width) samples; this dataset has "
            f"shape {input_shape}: use --model mlp"
        )


def build(
    model: str,
    act: ActivationFactory,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    width: int | None = None,
    depth: int | None = None,
) -> nn.Module:
    """A new built-in ``model`` (``mlp``, ``cnn``, ``resnet``) with activations from ``act``."""
    check(model, input_shape)
    width = width or DEFAULT_WIDTH[model]
    depth = DEFAULT_DEPTH[model] if depth is None else depth
    if model == "mlp":
        features = 1
        for size in input_shape:
            features *= size
        return MLP(act, features, num_classes, width, depth)
    if model == "cnn":
        return CNN(act, input_shape, num_classes, width, depth)
    return ResNet(act, input_shape, num_classes, width, depth)


def parameter_count(model: str, input_shape: tuple[int, ...], num_classes: int, **sizes: int | None) -> int:
    """How many parameters :func:`build` would make, counted on the meta device (nothing allocated).

    >>> parameter_count("mlp", (2,), 2, width=4, depth=1)  # 2x4 + 4, 4 slopes, 4x2 + 2
    26
    """
    try:
        with torch.device("meta"):
            net = build(model, activation_factory("prelu"), input_shape, num_classes, **sizes)
    except (RuntimeError, OverflowError, MemoryError):  # a tensor size past what torch can even describe
        return 2**63
    return sum(parameter.numel() for parameter in net.parameters())


def check_size(model: str, input_shape: tuple[int, ...], num_classes: int, **sizes: int | None) -> None:
    """Raise :class:`ConfigError` if the built-in ``model`` would have more than :data:`MAX_PARAMETERS`."""
    count = parameter_count(model, input_shape, num_classes, **sizes)
    if count > MAX_PARAMETERS:
        raise ConfigError(
            f"model {model!r} with {', '.join(f'{k} {v}' for k, v in sizes.items() if v is not None) or 'defaults'} "
            f"would have {count:,} parameters (the lab allows up to {MAX_PARAMETERS:,}); use a smaller --width or "
            "--depth"
        )


def user_builder(spec: str) -> Callable[..., nn.Module]:
    """The function named by ``pkg.module:fn``, imported; a :class:`ConfigError` if it cannot be."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"--model {spec!r}: expected one of {', '.join(MODELS)}, or pkg.module:fn")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # an import error in the user's code is a config error here
        raise ConfigError(
            f"--model {spec!r}: cannot import {module_name!r} ({type(error).__name__}: {error})"
        ) from None
    function: Any = module
    for part in attribute.split("."):
        function = getattr(function, part, None)
        if function is None:
            raise ConfigError(f"--model {spec!r}: {module_name!r} has no attribute {attribute!r}")
    if not callable(function):
        raise ConfigError(f"--model {spec!r}: {attribute!r} is not callable")
    builder: Callable[..., nn.Module] = function
    return builder


def build_user(
    builder: Callable[..., nn.Module],
    activation: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    example_input: Tensor,
) -> nn.Module:
    """Build a user's model for ``activation``.

    ``builder`` takes the activation factory as its first argument (and ``input_shape`` /
    ``num_classes`` as keywords when it names them), or takes nothing; a model built without the
    factory gets its ReLU / Leaky ReLU / PReLU modules swapped with :func:`prelu.convert`
    (one slope per channel for ``prelu``, axes from one forward pass on ``example_input``).
    """
    parameters = inspect.signature(builder).parameters
    kwargs = {
        name: value
        for name, value in (("input_shape", input_shape), ("num_classes", num_classes))
        if name in parameters
    }
    positional = [
        p
        for p in parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in kwargs
    ]
    takes_factory = bool(positional) or any(p.kind == p.VAR_POSITIONAL for p in parameters.values())
    model = builder(activation_factory(activation), **kwargs) if takes_factory else builder(**kwargs)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"the model function returned {type(model).__name__}, not a torch.nn.Module")
    if not takes_factory:
        with torch.no_grad():
            prelu.convert(model, to=activation, example_input=example_input)
    return model
