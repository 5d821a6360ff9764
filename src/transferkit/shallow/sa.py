"""SA: Subspace Alignment (Fernando, Habrard, Sebban & Tuytelaars, "Unsupervised Visual Domain
Adaptation Using Subspace Alignment", ICCV 2013).

Each domain is represented by its ``d`` leading principal directions, ``P_s`` and ``P_t``
(``(D, d)``, orthonormal). The source basis is aligned to the target one by the linear map that
minimises the Frobenius distance ``||P_s M - P_t||_F``, i.e. ``M* = P_s' P_t`` (paper, Eq. 3), so

    Z_s = (X_s - m_s) P_s P_s' P_t,      Z_t = (X_t - m_t) P_t          (both ``(n, d)``),

with ``m_s``, ``m_t`` the domain means (the paper z-scores each domain first, which centres it).
A classifier (1-NN or SVM in the paper; 1-NN here) is trained on ``Z_s`` and applied to ``Z_t``.
``predict(X)`` projects target samples with ``m_t`` and ``P_t``. Cost ``O(n D min(n, D))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import _num_samples

from transferkit.core.registries import SHALLOW
from transferkit.shallow import _kernels as kern
from transferkit.shallow.base import DAClassifier
from transferkit.shallow.gfk import check_subspace_dim, pca_basis


@SHALLOW.register("sa", description="Subspace Alignment: map the source PCA basis onto the target's (Fernando et al. 2013)")
class SubspaceAlignment(DAClassifier):
    """Subspace Alignment (Fernando et al., ICCV 2013) + a classifier in the aligned subspace.

    Parameters (keyword-only): ``n_components`` subspace dimension ``d`` (20); ``estimator``
    classifier name or estimator (1-NN). Fitted: ``source_basis_`` ``P_s``, ``target_basis_``
    ``P_t``, ``alignment_`` ``M = P_s'P_t`` ``(d, d)``, ``target_mean_``, ``estimator_``.
    """

    def __init__(self, *, n_components: int = 20, estimator: Any = "1nn") -> None:
        self.n_components = n_components
        self.estimator = estimator

    def _adapt(self, Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = check_subspace_dim(self.n_components, len(Xs), len(Xt), Xs.shape[1], "SubspaceAlignment")
        self.source_basis_ = pca_basis(Xs, d)
        self.target_basis_ = pca_basis(Xt, d)
        self.alignment_ = self.source_basis_.T @ self.target_basis_
        self.source_mean_ = Xs.mean(axis=0)
        self.target_mean_ = Xt.mean(axis=0)
        Zs = (Xs - self.source_mean_) @ self.source_basis_ @ self.alignment_
        return Zs, self._transform_target(Xt)

    def _transform_target(self, X: np.ndarray) -> np.ndarray:
        return (X - self.target_mean_) @ self.target_basis_

    def transform(self, X: Any) -> np.ndarray:
        """Target-subspace coordinates ``(n, n_components)`` of target samples."""
        return self._transform_target(self._check_predict_input(X))

    def fit(self, X: Any, y: Any = None, sample_domain: Any = None) -> SubspaceAlignment:
        with kern.fit_threads(_num_samples(X)):
            return super().fit(X, y, sample_domain)

    def predict(self, X: Any) -> np.ndarray:
        with kern.fit_threads(_num_samples(X)):
            return super().predict(X)
