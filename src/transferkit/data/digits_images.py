"""``digits_images``: MNIST <-> USPS as 28x28 images for deep methods (LeNet).

MNIST is the official 10k test split (the 60k training split is not available offline) and USPS
the full set (7,291 train / 2,007 test). Protocol:

- ``MNIST-USPS``: labelled source = the 10,000 MNIST images; unlabelled target = USPS train;
  accuracy on USPS test.
- ``USPS-MNIST``: labelled source = USPS train; unlabelled target = the first 5,000 MNIST images;
  accuracy on the other 5,000.

USPS images (16x16) are resized to 28x28 (bilinear); all pixels in [0, 1]. Published
figures (TLlib's digits table, LeNet, reference name ``digits_lenet``) train on the 60k MNIST
split: the protocol differs and reports say so.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from transferkit.core.registries import DATASETS
from transferkit.data.benchmarks import Benchmark
from transferkit.data.dataset import Task, make_task

_PROTOCOL_NOTE = ("Protocol differs from the published LeNet digits tables: MNIST here is the official "
                  "10k test split (published: 60k train split); USPS resized 16x16 -> 28x28.")


@DATASETS.register("digits_images", description="MNIST (10k test split) <-> USPS (7291/2007) as 28x28 images; 2 tasks")
class DigitsImages(Benchmark):
    """MNIST <-> USPS 28x28 grey images in [0, 1], shape (n, 1, 28, 28); see the module docstring."""

    name = "digits_images"
    TASKS = ("MNIST-USPS", "USPS-MNIST")
    DOMAIN_ALIASES = {"mnist": "MNIST", "m": "MNIST", "usps": "USPS", "u": "USPS"}
    REFERENCE: ClassVar[str] = "digits_lenet"

    def __init__(self, *, tasks: str | list[str] = "all", data_dir: str | None = None, size: int = 28,
                 verify_checksums: bool = True) -> None:
        super().__init__(tasks=tasks, data_dir=data_dir, verify_checksums=verify_checksums)
        self.size = size
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _path(self, rel: str):
        from transferkit.data.paths import verified_path

        return verified_path(self.root, rel, verify=self.verify_checksums)

    def _mnist(self) -> tuple[np.ndarray, np.ndarray]:
        if "mnist" not in self._cache:
            from transferkit.data.builtin import resize_images
            from transferkit.data.readers import read_idx

            x = read_idx(self._path("mnist_test10k/t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
            y = read_idx(self._path("mnist_test10k/t10k-labels-idx1-ubyte.gz")).astype(np.int64)
            self._cache["mnist"] = (resize_images(x, self.size), y)
        return self._cache["mnist"]

    def _usps(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        if part not in self._cache:
            from transferkit.data.builtin import resize_images
            import h5py

            with h5py.File(self._path("usps/usps.h5"), "r") as fh:
                x = np.asarray(fh[f"{part}/data"], dtype=np.float32).reshape(-1, 16, 16)
                y = np.asarray(fh[f"{part}/target"], dtype=np.int64)
            x = np.clip(resize_images(x, self.size), 0.0, 1.0)
            self._cache[part] = (x.astype(np.float32), y)
        return self._cache[part]

    def _load(self, name: str) -> Task:
        classes = [str(i) for i in range(10)]
        if name == "MNIST-USPS":
            xs, ys = self._mnist()
            xt, _ = self._usps("train")
            xte, yte = self._usps("test")
            note = "MNIST-USPS: source MNIST 10k (labelled), target USPS train (unlabelled), accuracy on USPS test. "
        else:
            xs, ys = self._usps("train")
            xm, ym = self._mnist()
            xt, xte, yte = xm[:5000], xm[5000:], ym[5000:]
            note = ("USPS-MNIST: source USPS train (labelled), target the first 5,000 MNIST test images "
                    "(unlabelled), accuracy on the other 5,000. ")
        s, t = name.split("-")
        return make_task(xs, ys, xt, xte, yte, name=name, source_name=s.lower(), target_name=t.lower(),
                         classes=classes, benchmark=self.name, notes=note + _PROTOCOL_NOTE,
                         reference=self.REFERENCE)
