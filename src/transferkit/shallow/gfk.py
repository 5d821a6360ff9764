"""GFK: Geodesic Flow Kernel (Gong, Shi, Sha & Grauman, "Geodesic Flow Kernel for Unsupervised
Domain Adaptation", CVPR 2012).

The source and target ``d``-dimensional PCA subspaces ``P_s``, ``P_t`` (``(D, d)``, orthonormal) are
two points of the Grassmann manifold ``G(d, D)``; GFK integrates the projections onto every subspace
``Phi(t)`` of the geodesic between them,

    G = int_0^1 Phi(t) Phi(t)' dt,     <x, y>_G = x' G y,

in closed form via the principal angles ``theta_i`` between the subspaces. With the SVDs
``P_s'P_t = U_1 diag(cos theta) V'`` and ``R_s'P_t = -U_2 diag(sin theta) V'`` (``R_s`` the
orthogonal complement of ``P_s``):

    G = [P_s U_1, R_s U_2] [[L1, L2], [L2, L3]] [P_s U_1, R_s U_2]',
    L1 = diag(1 + sin(2 theta) / (2 theta)) / 2,  L2 = diag((cos(2 theta) - 1) / (2 theta)) / 2,
    L3 = diag(1 - sin(2 theta) / (2 theta)) / 2                        (paper, Eq. 6).

Here ``R_s U_2`` is computed as ``-(I - P_s P_s') P_t V diag(1/sin theta)`` so the ``(D, D - d)``
complement is never formed, and ``G`` is kept factored: ``G = F F'`` with ``F = [P_s U_1, R_s U_2]
Lambda^{1/2}`` of shape ``(D, 2d)``. The features ``X F`` ``(n, 2d)`` have exactly the inner
products (and distances) of ``X G^{1/2}``, the ``D``-dimensional features of the reference code, in
``O(n D d)`` time. The classifier (1-NN in the paper) is trained on ``Xs F`` and applied to ``Xt F``.

``n_components`` is ``d`` (20 by default, the MEDA paper's setting; the GFK paper chooses ``d``
with its subspace disagreement measure). Shapes: ``X (n_samples, n_features)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import _num_samples
from scipy import linalg

from transferkit.core.errors import ConfigError, DataError
from transferkit.core.registries import SHALLOW
from transferkit.shallow import _kernels as kern
from transferkit.shallow.base import DAClassifier


def pca_basis(X: np.ndarray, d: int) -> np.ndarray:
    """The ``d`` leading principal directions of ``X`` (centred), ``(n_features, d)`` orthonormal.

    Computed from the smaller Gram matrix (``X'X`` or ``XX'``, ``O(n D min(n, D))``) with a partial
    eigen-solve of its ``d`` leading pairs (:func:`transferkit.shallow._kernels.leading_eigh`)."""
    Xc = X - X.mean(axis=0)
    n, D = Xc.shape
    d = int(min(d, n, D))
    if D <= n:
        _, V = kern.leading_eigh(Xc.T @ Xc, d)
        return V
    _, U = kern.leading_eigh(Xc @ Xc.T, d)
    V = Xc.T @ U
    return V / np.linalg.norm(V, axis=0)


def gfk_factor(Ps: np.ndarray, Pt: np.ndarray, eps: float = 1e-10) -> np.ndarray:
    """``F (D, 2d)`` with ``F F' = G``, the geodesic flow kernel between orthonormal bases ``Ps``
    and ``Pt`` (both ``(D, d)``). Principal angles below ``eps`` contribute ``P_s P_s'`` only."""
    U1, cos_t, Vh = linalg.svd(Ps.T @ Pt)          # Ps'Pt = U1 diag(cos) V'
    V = Vh.T
    cos_t = np.clip(cos_t, -1.0, 1.0)
    theta = np.arccos(cos_t)
    Y = Pt @ V - Ps @ (U1 * cos_t)                 # (I - Ps Ps') Pt V = -Rs U2 diag(sin)
    sin_t = np.linalg.norm(Y, axis=0)
    ok = sin_t > eps
    RsU2 = np.zeros_like(Y)
    RsU2[:, ok] = -Y[:, ok] / sin_t[ok]
    th = np.maximum(theta, 1e-20)
    l1 = 0.5 * (1.0 + np.sin(2 * th) / (2 * th))
    l2 = 0.5 * (np.cos(2 * th) - 1.0) / (2 * th)
    l3 = 0.5 * (1.0 - np.sin(2 * th) / (2 * th))
    l1 = np.where(ok, l1, 1.0)
    l2 = np.where(ok, l2, 0.0)
    l3 = np.where(ok, l3, 0.0)
    d = len(theta)
    Lam = np.zeros((2 * d, 2 * d))
    idx = np.arange(d)
    Lam[idx, idx] = l1
    Lam[idx, idx + d] = l2
    Lam[idx + d, idx] = l2
    Lam[idx + d, idx + d] = l3
    w, Q = linalg.eigh(Lam)
    root = (Q * np.sqrt(np.clip(w, 0.0, None))) @ Q.T
    return np.hstack([Ps @ U1, RsU2]) @ root


def check_subspace_dim(d: Any, ns: int, nt: int, D: int, owner: str) -> int:
    """``d`` as an int with ``1 <= d <= min(n_s, n_t, D)``; otherwise a ConfigError/DataError."""
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise ConfigError(f"{owner}: n_components={d!r} must be a positive integer")
    if d > D:
        raise ConfigError(f"{owner}: n_components={d} exceeds the number of features ({D})")
    if d > min(ns, nt):
        raise DataError(f"{owner}: n_components={d} needs at least {d} samples per domain "
                        f"(source {ns}, target {nt}); lower n_components")
    return int(d)


def gfk_map(Xs: np.ndarray, Xt: np.ndarray, d: int) -> np.ndarray:
    """``F (D, 2d)``: GFK between the ``d``-dim PCA subspaces of ``Xs`` and ``Xt``; ``X F`` are
    the GFK features."""
    return gfk_factor(pca_basis(Xs, d), pca_basis(Xt, d))


@SHALLOW.register("gfk", description="GFK: geodesic flow kernel between PCA subspaces (Gong et al. 2012)")
class GFK(DAClassifier):
    """Geodesic Flow Kernel (Gong et al., CVPR 2012) + a classifier in the kernel's feature space.

    Parameters (keyword-only): ``n_components`` subspace dimension ``d`` (20); ``estimator``
    classifier name or estimator (1-NN, the paper's). Fitted: ``factor_`` ``(n_features, 2d)``
    (``X @ factor_`` are the GFK features), ``estimator_``, ``classes_``.
    """

    def __init__(self, *, n_components: int = 20, estimator: Any = "1nn") -> None:
        self.n_components = n_components
        self.estimator = estimator

    def _adapt(self, Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = check_subspace_dim(self.n_components, len(Xs), len(Xt), Xs.shape[1], "GFK")
        self.factor_ = gfk_map(Xs, Xt, d)
        return Xs @ self.factor_, Xt @ self.factor_

    def _transform_target(self, X: np.ndarray) -> np.ndarray:
        return X @ self.factor_

    def transform(self, X: Any) -> np.ndarray:
        """GFK features ``(n, 2 n_components)`` of samples of either domain."""
        return self._transform_target(self._check_predict_input(X))

    def fit(self, X: Any, y: Any = None, sample_domain: Any = None) -> GFK:
        with kern.fit_threads(_num_samples(X)):
            return super().fit(X, y, sample_domain)

    def predict(self, X: Any) -> np.ndarray:
        with kern.fit_threads(_num_samples(X)):
            return super().predict(X)
