"""Synthetic shifted data for tests (numpy only: importing this loads no torch)."""

from __future__ import annotations

import numpy as np


def shifted_blobs(n: int = 240, d: int = 6, k: int = 3, shift: float = 1.0, seed: int = 0,
                  dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source and target Gaussian blobs (k classes in d dims, centres ~ N(0, 3^2)), the target moved
    by ``shift``: ``(xs, ys, xt, yt)``."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(k, d))

    def draw(offset: float) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, k, n)
        return (centers[y] + rng.normal(size=(n, d)) + offset).astype(dtype), y

    xs, ys = draw(0.0)
    xt, yt = draw(shift)
    return xs, ys, xt, yt
