"""EasyTL: easy transfer learning by exploiting intra-domain structures (Wang, Chen, Yu, Huang &
Yang, ICME 2019).

Non-parametric and transductive: no classifier is trained.

1. *Intra-domain alignment* (``intra_align``): ``"coral"`` re-colours the source with the target
   covariance, ``Xs' = Xs (Cs + reg I)^{-1/2} (Ct + reg I)^{1/2}`` (CORAL, ``reg = 1``; through
   the ``n x n`` Gram matrices when a domain has fewer samples than features, see
   :func:`transferkit.shallow.coral.coral_transform`); ``"raw"`` keeps the features (the paper's
   "EasyTL(c)").
2. Class centres ``mu_c`` of the (aligned) source, and distances ``D_jc = ||xt_j - mu_c||``
   between every target sample and every centre (``distance``: ``"euclidean"`` (paper),
   ``"sqeuclidean"`` or ``"cosine"``).
3. *Intra-domain programming*: the probabilistic label assignment ``M`` (n_t, C) solves the linear
   program

       min_M  sum_jc D_jc M_jc
       s.t.   sum_c M_jc = 1 for every target sample j,
              sum_j M_jc >= 1 for every class c (each class receives some target mass),
              0 <= M_jc <= 1,

   solved with HiGHS (``scipy.optimize.linprog``); the label of ``xt_j`` is ``argmax_c M_jc``.

``predict(X)`` runs step 3 on the batch ``X`` against the centres found in ``fit`` (transductive:
for the fitted target samples it returns the fitted assignment). Shapes: ``X`` (n, d);
``centers_`` (C, d); ``assignment_`` (n_t, C).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferkit.core.errors import ConfigError, DataError
from transferkit.core.registries import SHALLOW
from transferkit.shallow.base import DAClassifier, split_domains

_ALIGN = ("coral", "raw")
_DIST = ("euclidean", "sqeuclidean", "cosine")


def class_distances(X: np.ndarray, centers: np.ndarray, distance: str) -> np.ndarray:
    """Distances ``(n, C)`` from each row of ``X`` to each centre."""
    if distance == "cosine":
        xn = np.linalg.norm(X, axis=1, keepdims=True)
        cn = np.linalg.norm(centers, axis=1, keepdims=True)
        return 1.0 - (X @ centers.T) / np.maximum(xn, 1e-12) / np.maximum(cn, 1e-12).T
    from transferkit.shallow._kernels import sq_dists

    D = sq_dists(X, centers)
    return np.sqrt(D) if distance == "euclidean" else D


def intra_domain_programming(D: np.ndarray, min_per_class: float = 1.0) -> np.ndarray:
    """The assignment ``M`` (n, C) minimising ``sum D * M`` with rows summing to 1, columns summing
    to at least ``min(min_per_class, n / C)``, ``0 <= M <= 1`` (HiGHS)."""
    from scipy import sparse
    from scipy.optimize import linprog

    n, C = D.shape
    # variables in row-major order: index j * C + c
    rows_eq = sparse.kron(sparse.eye(n, format="csr"), np.ones((1, C)), format="csr")
    cols_ge = sparse.kron(np.ones((1, n)), sparse.eye(C, format="csr"), format="csr")
    lower = min(float(min_per_class), n / C)
    res = linprog(np.abs(D).ravel(), A_ub=-cols_ge, b_ub=-np.full(C, lower), A_eq=rows_eq,
                  b_eq=np.ones(n), bounds=(0.0, 1.0), method="highs")
    if res.status != 0 or res.x is None:
        raise DataError(f"EasyTL: the intra-domain linear program failed ({res.message})")
    return res.x.reshape(n, C)


@SHALLOW.register("easytl", description="EasyTL: CORAL alignment + linear-programming label assignment (Wang et al. 2019)")
class EasyTL(DAClassifier):
    """EasyTL (Wang et al., ICME 2019): intra-domain alignment, source class centres, and a linear
    program assigning target samples to classes. No classifier, no hyper-parameter to tune.

    Parameters
    ----------
    intra_align : ``"coral"`` (paper's EasyTL) or ``"raw"`` (EasyTL(c), no alignment).
    reg : added to both covariance diagonals by the CORAL alignment (paper: 1).
    distance : ``"euclidean"`` (paper), ``"sqeuclidean"`` or ``"cosine"``.
    min_per_class : lower bound of the target mass of each class in the programme (paper: 1).

    Fitted: ``centers_`` (C, d), ``classes_``, ``assignment_`` (n_t, C), ``labels_`` (n_t,).
    """

    def __init__(self, *, intra_align: str = "coral", reg: float = 1.0, distance: str = "euclidean",
                 min_per_class: float = 1.0) -> None:
        self.intra_align = intra_align
        self.reg = reg
        self.distance = distance
        self.min_per_class = min_per_class

    def _check_params(self) -> None:
        if self.intra_align not in _ALIGN:
            raise ConfigError(f"intra_align={self.intra_align!r} is not supported; choose one of "
                              f"{', '.join(map(repr, _ALIGN))}")
        if self.distance not in _DIST:
            raise ConfigError(f"distance={self.distance!r} is not supported; choose one of {', '.join(map(repr, _DIST))}")
        for name in ("reg", "min_per_class"):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, bool) or not np.isfinite(v) or v < 0:
                raise ConfigError(f"{name}={v!r} must be a non-negative number")

    def fit(self, X: Any, y: Any = None, sample_domain: Any = None) -> EasyTL:
        """Align, compute source class centres, and assign the target rows of ``X`` by the LP."""
        self._check_params()
        Xs, ys, Xt = split_domains(X, y, sample_domain, name="EasyTL.fit")
        self.n_features_in_ = Xs.shape[1]
        self.classes_ = np.unique(ys)
        if self.intra_align == "coral":
            from transferkit.shallow.coral import coral_transform

            Xs = coral_transform(Xs, Xt, float(self.reg), align_mean=False)
        self.centers_ = np.stack([Xs[ys == c].mean(axis=0) for c in self.classes_])
        self.target_ = Xt
        self.assignment_ = intra_domain_programming(class_distances(Xt, self.centers_, self.distance),
                                                    float(self.min_per_class))
        self.labels_ = self.classes_[np.argmax(self.assignment_, axis=1)]
        return self

    def _assign(self, X: Any) -> np.ndarray:
        X = self._check_predict_input(X)
        if X.shape == self.target_.shape and np.array_equal(X, self.target_):
            return self.assignment_
        return intra_domain_programming(class_distances(X, self.centers_, self.distance), float(self.min_per_class))

    def predict(self, X: Any) -> np.ndarray:
        """Labels of target samples ``X`` (n, d): the intra-domain programme on this batch."""
        return self.classes_[np.argmax(self._assign(X), axis=1)]

    def decision_scores(self, X: Any) -> np.ndarray:
        """The probabilistic label assignment ``M`` (n, C) of the batch ``X`` (rows sum to 1)."""
        return self._assign(X)
