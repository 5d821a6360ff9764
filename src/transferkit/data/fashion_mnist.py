"""Fashion-MNIST (Xiao et al., 2017) from the Debian package ``dataset-fashion-mnist``.

The package installs the original IDX files in ``/usr/share/datasets/fashion-mnist``:
``train-images-idx3-ubyte.gz`` (60,000 x 28 x 28 uint8), ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz`` (10,000), ``t10k-labels-idx1-ubyte.gz``. 10 balanced classes
(6,000 train and 1,000 test images each), checked when read. Nothing is downloaded: when the files
are missing the error says to ``apt-get install dataset-fashion-mnist`` (or to point
``$TRANSFERKIT_FASHION_MNIST`` / ``root=`` at a folder holding the four files).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal

import numpy as np

from transferkit.core.errors import ConfigError, DataError

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "TRANSFERKIT_FASHION_MNIST"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}


def fashion_mnist_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the four Fashion-MNIST files: ``root``, else ``$TRANSFERKIT_FASHION_MNIST``,
    else ``/usr/share/datasets/fashion-mnist``. Raises :class:`DataError` saying how to install them."""
    if root is not None:
        where, how = Path(root).expanduser(), f"root={str(root)!r}"
    elif os.environ.get(ENV_VAR):
        where, how = Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}"
    else:
        where, how = DEFAULT_DIR, "the default location"
    names = [f for imgs, labels, _ in FILES.values() for f in (imgs, labels)]
    missing = [f for f in names if not (where / f).is_file()]
    if missing:
        raise DataError(
            f"Fashion-MNIST not found in {where} ({how}; missing {', '.join(missing)}). Install the Debian "
            f"package: sudo apt-get install dataset-fashion-mnist (it puts the files in {DEFAULT_DIR}), or set "
            f"{ENV_VAR} / root= to a folder holding the four original IDX files")
    return where


@functools.lru_cache(maxsize=4)
def _load(folder: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    from transferkit.data.readers import read_idx

    img_name, lab_name, n = FILES[split]
    x = read_idx(Path(folder) / img_name)
    y = read_idx(Path(folder) / lab_name).astype(np.int64)
    if x.shape != (n, 28, 28) or x.dtype != np.uint8:
        raise DataError(f"{Path(folder) / img_name}: expected {n} images of 28x28 uint8, got {x.shape} {x.dtype}")
    counts = np.bincount(y, minlength=10) if y.size and y.min() >= 0 else None
    if y.shape != (n,) or counts is None or len(counts) != 10 or not np.all(counts == n // 10):
        raise DataError(f"{Path(folder) / lab_name}: expected {n} labels, {n // 10} of each class 0..9; "
                        "the file is damaged or another data set")
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def load_fashion_mnist(split: Literal["train", "test"] = "train",
                       root: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 ``(n, 28, 28)`` (read-only) and labels int64 ``(n,)`` in 0..9 (:data:`CLASSES`)
    of the ``"train"`` (60,000) or ``"test"`` (10,000) split; parsed once per process."""
    if split not in FILES:
        raise ConfigError(f"got {split!r}; expected 'train' or 'test'", "split")
    return _load(str(fashion_mnist_dir(root).resolve()), split)
