"""CORAL: CORrelation ALignment (Sun, Feng & Saenko, "Return of Frustratingly Easy Domain
Adaptation", AAAI 2016).

Source features are whitened with their own covariance and re-coloured with the target's:
``Xs' = Xs Cs^{-1/2} Ct^{1/2}`` with ``Cs = cov(Xs) + reg I``, ``Ct = cov(Xt) + reg I`` (the paper
uses ``reg = 1``); a classifier is then trained on ``Xs'`` and applied to raw target features.
The paper aligns second-order statistics only; ``align_mean=True`` also moves the source mean to
the target's. Shapes: X (n, d); cost O(n d^2 + d^3).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import linalg

from transferkit.core.registries import SHALLOW
from transferkit.shallow.base import DAClassifier


def _sym_power(c: np.ndarray, power: float) -> np.ndarray:
    w, v = linalg.eigh(c)
    w = np.clip(w, 1e-12, None)
    return (v * w**power) @ v.T


def coral_transform(Xs: np.ndarray, Xt: np.ndarray, reg: float = 1.0, align_mean: bool = False) -> np.ndarray:
    """Re-coloured source features ``Xs Cs^{-1/2} Ct^{1/2}``, shape of ``Xs``."""
    d = Xs.shape[1]
    cs = np.cov(Xs, rowvar=False).reshape(d, d) + reg * np.eye(d)
    ct = np.cov(Xt, rowvar=False).reshape(d, d) + reg * np.eye(d)
    a = _sym_power(cs, -0.5) @ _sym_power(ct, 0.5)
    if align_mean:
        return (Xs - Xs.mean(0)) @ a + Xt.mean(0)
    return Xs @ a


@SHALLOW.register("coral", description="CORAL: align source covariance to the target's (Sun et al. 2016)")
class CORAL(DAClassifier):
    """CORAL (Sun et al., AAAI 2016): whiten source features, re-colour with target covariance,
    train ``estimator`` (paper: linear SVM) on the result and apply it to target features.

    Parameters: ``reg`` is added to both covariance diagonals (paper: 1); ``align_mean`` also
    shifts the source mean onto the target mean; ``estimator`` is a classifier name or estimator.
    """

    def __init__(self, *, reg: float = 1.0, align_mean: bool = False, estimator: Any = "svm") -> None:
        self.reg = reg
        self.align_mean = align_mean
        self.estimator = estimator

    def _adapt(self, Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return coral_transform(Xs, Xt, self.reg, self.align_mean), Xt

    def _transform_target(self, X: np.ndarray) -> np.ndarray:
        return X
