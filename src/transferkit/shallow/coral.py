"""CORAL: CORrelation ALignment (Sun, Feng & Saenko, "Return of Frustratingly Easy Domain
Adaptation", AAAI 2016).

Source features are whitened with their own covariance and re-coloured with the target's:
``Xs' = Xs Cs^{-1/2} Ct^{1/2}`` with ``Cs = cov(Xs) + reg I``, ``Ct = cov(Xt) + reg I`` (the paper
uses ``reg = 1``); a classifier is then trained on ``Xs'`` and applied to raw target features.
The paper aligns second-order statistics only; ``align_mean=True`` also moves the source mean to
the target's. Shapes: X (n, d).

How it is computed (:func:`coral_transform`): when both domains have at least ``d`` samples, the
``d x d`` matrices ``Cs^{-1/2}`` and ``Ct^{1/2}`` come from their eigen-decompositions (``O(n d^2 +
d^3)``). When a domain has fewer samples than features (e.g. 2,000 reviews in 5,000-d), its
covariance ``Xc'Xc`` (``Xc = (X - mean) / sqrt(n - 1)``) has rank below ``n`` and

    (Xc'Xc + reg I)^p = reg^p I + Xc' U diag(((w + reg)^p - reg^p) / w) U' Xc,

with ``Xc Xc' = U diag(w) U'`` the ``n x n`` Gram matrix's eigen-decomposition, so each power is
applied to the rows in ``O(n^2 d + n^3)`` without any ``d x d`` matrix. Both give the same
features up to round-off (checked in the tests).
The Gram form needs ``reg >= 1e-12``; below it the dense path (which clips eigenvalues at
``1e-12``) is kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import linalg

from transferkit.core.errors import ConfigError
from transferkit.core.registries import SHALLOW
from transferkit.shallow._kernels import lapack_threads
from transferkit.shallow.base import SVM_CV_GRID, DAClassifier, split_domains

#: the Gram form of (cov + reg I)^p is exact only when reg is above the dense path's clip
_MIN_GRAM_REG = 1e-12
_SOLVERS = ("auto", "dense", "gram")


def _sym_power(c: np.ndarray, power: float) -> np.ndarray:
    # full spectrum: LAPACK's divide-and-conquer (syevd) is ~25% faster here than the default MRRR
    w, v = linalg.eigh(c, driver="evd", check_finite=False)
    w = np.clip(w, 1e-12, None)
    return (v * w**power) @ v.T


def _power_ratio(w: np.ndarray, reg: float, power: float) -> np.ndarray:
    """``g(w) = ((w + reg)^p - reg^p) / w`` for ``w >= 0``, with ``g(0) = p reg^(p-1)``, without
    cancellation: ``reg^(p-1) expm1(p log1p(x)) / x`` with ``x = w / reg``."""
    x = np.clip(w, 0.0, None) / reg
    out = np.full_like(x, power)
    nz = x > 0
    out[nz] = np.expm1(power * np.log1p(x[nz])) / x[nz]
    return reg ** (power - 1.0) * out


def _apply_cov_power(Y: np.ndarray, X: np.ndarray, reg: float, power: float) -> np.ndarray:
    """``Y (cov(X) + reg I)^power`` without a ``d x d`` matrix.

    With ``Xc = (X - mean) / sqrt(n - 1)`` (so ``cov = Xc'Xc``, ``ddof = 1``) and ``f(w) = (w +
    reg)^p - reg^p`` (``f(0) = 0``), ``f(Xc'Xc) = Xc' g(Xc Xc') Xc`` with ``g(w) = f(w) / w``, so

        Y (cov + reg I)^p = reg^p Y + (Y Xc') U diag(g(w)) U' Xc

    from the eigen-decomposition ``Xc Xc' = U diag(w) U'`` of the ``n x n`` Gram matrix. ``g`` is
    bounded and smooth, so every eigen-pair is kept (no rank cut-off). Cost ``O(n^2 d + n^3 +
    n_Y n d)``.
    """
    n = X.shape[0]
    Xc = (X - X.mean(axis=0)) / np.sqrt(max(n - 1, 1))
    G = Xc @ Xc.T
    with lapack_threads(n):
        w, U = linalg.eigh((G + G.T) * 0.5, driver="evd", check_finite=False)
    P = (Y @ Xc.T) @ U
    P *= _power_ratio(w, reg, power)
    return reg ** power * Y + (P @ U.T) @ Xc


def _dense_cov_power(X: np.ndarray, reg: float, power: float) -> np.ndarray:
    d = X.shape[1]
    return _sym_power(np.cov(X, rowvar=False).reshape(d, d) + reg * np.eye(d), power)


def coral_transform(Xs: np.ndarray, Xt: np.ndarray, reg: float = 1.0, align_mean: bool = False,
                    *, solver: str = "auto") -> np.ndarray:
    """Re-coloured source features ``Xs Cs^{-1/2} Ct^{1/2}``, shape of ``Xs``.

    ``solver``: ``"dense"`` forms ``Cs^{-1/2} Ct^{1/2}`` (``d x d``); ``"gram"`` applies each
    power through the Gram matrix of its domain (module docstring; needs ``reg >= 1e-12``);
    ``"auto"`` takes the dense path when both domains have at least ``d`` samples or ``reg <
    1e-12``, else applies the Gram form to each domain with fewer than ``d`` samples (the
    dense one to the other). All give the same result up to round-off.
    """
    if solver not in _SOLVERS:
        raise ConfigError(f"CORAL: solver={solver!r} is not supported; choose one of "
                          f"{', '.join(map(repr, _SOLVERS))}")
    d = Xs.shape[1]
    reg = float(reg)
    gram_ok = reg >= _MIN_GRAM_REG
    if solver == "gram" and not gram_ok:
        raise ConfigError(f"CORAL: solver='gram' needs reg >= {_MIN_GRAM_REG}, got reg={reg!r}; "
                          "use solver='dense'")
    Y = Xs - Xs.mean(0) if align_mean else Xs
    if solver == "dense" or not gram_ok or (solver == "auto" and min(len(Xs), len(Xt)) >= d):
        a = _dense_cov_power(Xs, reg, -0.5) @ _dense_cov_power(Xt, reg, 0.5)
        out = Y @ a
    else:
        gram = solver == "gram"
        if gram or len(Xs) < d:
            Y = _apply_cov_power(Y, Xs, reg, -0.5)
        else:
            Y = Y @ _dense_cov_power(Xs, reg, -0.5)
        if gram or len(Xt) < d:
            out = _apply_cov_power(Y, Xt, reg, 0.5)
        else:
            out = Y @ _dense_cov_power(Xt, reg, 0.5)
    return out + Xt.mean(0) if align_mean else out


@SHALLOW.register("coral", description="CORAL: align source covariance to the target's (Sun et al. 2016)")
class CORAL(DAClassifier):
    """CORAL (Sun et al., AAAI 2016): whiten source features, re-colour with target covariance,
    train ``estimator`` (paper: linear SVM) on the result and apply it to target features.

    Parameters: ``reg`` is added to both covariance diagonals (paper: 1); ``align_mean`` also
    shifts the source mean onto the target mean; ``estimator`` is a classifier name or estimator.

    ``protocol``: ``features`` (default) trains ``estimator`` on the re-coloured source
    ``Zs = Xs A`` and applies it to raw target features (a linear kernel ``Zs xt'`` at test time).
    ``similarity`` reproduces the classifier of the code behind the published Office-Caltech
    figures (shared with Subspace Alignment's): an SVM on precomputed similarities whose training
    matrix is ``Xs A Xs'`` (i.e. ``Zs Xs'``, not ``Zs Zs'``) and whose test matrix is ``Xt Zs'``,
    with C chosen from :data:`~transferkit.shallow.base.SVM_CV_GRID` by 2-fold cross-validation on
    the source (``estimator`` is then not used). No target label is involved either way.
    """

    def __init__(self, *, reg: float = 1.0, align_mean: bool = False, estimator: Any = "svm",
                 protocol: str = "features") -> None:
        self.reg = reg
        self.align_mean = align_mean
        self.estimator = estimator
        self.protocol = protocol

    def fit(self, X: Any, y: Any = None, sample_domain: Any = None) -> "CORAL":
        if self.protocol not in ("features", "similarity"):
            raise ConfigError(f"CORAL: protocol={self.protocol!r} must be 'features' or 'similarity'")
        if self.protocol == "features":
            return super().fit(X, y, sample_domain)
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from sklearn.svm import SVC

        Xs, ys, Xt = split_domains(X, y, sample_domain, name="CORAL.fit")
        self.classes_ = np.unique(ys)
        self.n_features_in_ = Xs.shape[1]
        self.recoloured_source_ = coral_transform(Xs, Xt, self.reg, self.align_mean)
        grid = GridSearchCV(SVC(kernel="precomputed", C=1.0), {"C": list(SVM_CV_GRID)},
                            cv=StratifiedKFold(2, shuffle=True, random_state=0))
        self.estimator_ = grid.fit(self.recoloured_source_ @ Xs.T, ys)
        return self

    def _adapt(self, Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return coral_transform(Xs, Xt, self.reg, self.align_mean), Xt

    def _transform_target(self, X: np.ndarray) -> np.ndarray:
        return X if self.protocol == "features" else X @ self.recoloured_source_.T
