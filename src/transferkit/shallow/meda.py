"""MEDA: Manifold Embedded Distribution Alignment (Wang, Feng, Chen, Yu, Huang & Yu, "Visual
Domain Adaptation with Manifold Embedded Distribution Alignment", ACM Multimedia 2018).

1. Manifold feature learning: the samples are mapped to the geodesic-flow-kernel space of the
   ``d``-dimensional source and target PCA subspaces (:mod:`transferkit.shallow.gfk`),
   ``z = G^{1/2} x`` (here the equivalent ``2d``-dimensional factor), and scaled to unit norm.
2. Dynamic distribution alignment + structural risk minimisation: a kernel classifier
   ``f(z) = sum_i beta_i k(z_i, z)`` over all ``n = n_s + n_t`` samples minimises

       ||E (Y - K beta)||^2 + eta tr(beta' K beta) + lambda tr(beta' K M K beta)
                                                  + rho tr(beta' K L K beta),

   ``E = diag(1 on source rows, 0 on target rows)``, ``Y (n, C)`` the one-hot source labels (zero
   on target rows), ``M = (1 - mu) C M_0 + mu sum_c M_c`` the balanced MMD matrix of BDA normalised
   to unit Frobenius norm, and ``L = I - D^{-1/2} W D^{-1/2}`` the normalised Laplacian of the
   ``p``-nearest-neighbour cosine graph (``W_ij = cos(z_i, z_j)`` when either is among the other's
   ``p`` neighbours, self-loops included). The minimiser is

       beta = ((E + lambda M + rho L) K + eta I)^{-1} E Y        (paper, Eq. 12),

   and the target pseudo-labels are ``argmax_c (K beta)_c``. The balance factor ``mu`` is
   re-estimated at each iteration from proxy A-distances on the GFK features (``mu="auto"``,
   the paper's dynamic alignment) and the pseudo-labels start from 1-NN; ``T`` iterations.

Defaults are the paper's and its reference code's: ``d = 20``, ``p = 10``, ``lambda = 10``,
``eta = 0.1``, ``rho = 1``, ``T = 10``, rbf kernel with bandwidth ``sigma^2 = mean_i ||z_i||``
(``= 1`` on the unit-norm features, i.e. ``gamma = 1/2``); ``gamma="median"`` uses the median
heuristic instead, a number sets it. The loop stops early when the pseudo-labels stop changing.

Cost: ``O(n^2)`` memory and ``O(n^3)`` time per iteration (an ``n x n`` linear solve); the fit
refuses, naming the limit, when it would need more than ``max_memory_gb``.
Shapes: ``X (n_samples, n_features)``; ``decision_scores`` ``(n, n_classes)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import _num_samples
from scipy import linalg, sparse

from transferkit.core.errors import ConfigError
from transferkit.core.registries import SHALLOW
from transferkit.shallow import _kernels as kern
from transferkit.shallow.base import DAClassifier, make_classifier, split_domains
from transferkit.shallow.gfk import check_subspace_dim, gfk_map
from transferkit.shallow.tca import mmd_design


def knn_cosine_laplacian(Z: np.ndarray, n_neighbors: int) -> sparse.csr_matrix:
    """``L = I - D^{-1/2} W D^{-1/2}`` of the symmetric ``p``-NN cosine graph on unit rows ``Z``.

    ``W_ij = z_i'z_j`` when ``j`` is among the ``p + 1`` most similar rows of ``i`` (itself
    included) or vice versa (``W = max(W, W')``); ``D = diag(W 1)``. Sparse ``(n, n)``.
    """
    n = len(Z)
    k = int(min(n_neighbors + 1, n))
    rows, cols, vals = [], [], []
    step = max(1, int(2**24 // max(n, 1)))  # blocks of ~16M similarities
    for start in range(0, n, step):
        S = Z[start:start + step] @ Z.T
        idx = np.argpartition(-S, k - 1, axis=1)[:, :k]
        r = np.repeat(np.arange(start, start + len(S)), k)
        rows.append(r)
        cols.append(idx.ravel())
        vals.append(np.take_along_axis(S, idx, axis=1).ravel())
    W = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    W = W.maximum(W.T)
    deg = np.asarray(W.sum(axis=0)).ravel()
    dinv = 1.0 / np.sqrt(np.maximum(deg, 1e-12))
    Dm = sparse.diags(dinv)
    return (sparse.identity(n, format="csr") - Dm @ W @ Dm).tocsr()


@SHALLOW.register("meda", description="MEDA: GFK manifold + dynamic distribution alignment + SRM (Wang et al. 2018)")
class MEDA(DAClassifier):
    """Manifold Embedded Distribution Alignment (Wang et al., ACM MM 2018).

    Parameters (keyword-only): ``n_components`` GFK subspace dimension ``d`` (20); ``n_neighbors``
    ``p`` of the Laplacian graph (10); ``lam`` MMD weight lambda (10); ``eta`` ridge eta (0.1);
    ``rho`` manifold weight (1; 0 drops the Laplacian); ``mu`` balance factor, ``"auto"`` (dynamic,
    the paper's) or a number in ``[0, 1]``; ``n_iter`` T (10); ``kernel`` ``"rbf"`` | ``"linear"``;
    ``gamma`` ``None`` (reference rule, ``sigma^2`` = mean feature norm), ``"median"`` or a number;
    ``max_memory_gb``; ``random_state`` (the linear SVMs of the proxy A-distance).

    Fitted: ``factor_`` (GFK, ``(n_features, 2d)``), ``centers_`` (unit GFK features of the
    training samples), ``coef_`` beta ``(n, n_classes)``, ``gamma_``, ``balance_history_``,
    ``n_iter_``, ``classes_``. ``predict(X)`` evaluates ``f`` on new samples through the same maps.
    """

    def __init__(self, *, n_components: int = 20, n_neighbors: int = 10, lam: float = 10.0,
                 eta: float = 0.1, rho: float = 1.0, mu: float | str = "auto", n_iter: int = 10,
                 kernel: str = "rbf", gamma: float | str | None = None, max_memory_gb: float = 4.0,
                 random_state: int | None = 0) -> None:
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.lam = lam
        self.eta = eta
        self.rho = rho
        self.mu = mu
        self.n_iter = n_iter
        self.kernel = kernel
        self.gamma = gamma
        self.max_memory_gb = max_memory_gb
        self.random_state = random_state

    # -- parameters -----------------------------------------------------------------------
    def _check_params(self, n: int) -> None:
        kern.check_choice(self.kernel, kern.KERNELS, "MEDA: kernel")
        for name in ("lam", "eta", "rho"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not np.isfinite(v) or v < 0:
                raise ConfigError(f"MEDA: {name}={v!r} must be a non-negative number")
        if not self.eta > 0:
            raise ConfigError(f"MEDA: eta={self.eta!r} must be > 0 (it makes the linear system solvable)")
        for name in ("n_neighbors", "n_iter"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"MEDA: {name}={v!r} must be a positive integer")
        if isinstance(self.mu, str):
            if self.mu != "auto":
                raise ConfigError(f"MEDA: mu={self.mu!r} must be a number in [0, 1] or 'auto'")
        elif not 0.0 <= float(self.mu) <= 1.0:
            raise ConfigError(f"MEDA: mu={self.mu!r} must be in [0, 1] (or 'auto')")
        if self.max_memory_gb is None or not float(self.max_memory_gb) > 0:
            raise ConfigError(f"MEDA: max_memory_gb={self.max_memory_gb!r} must be a positive number of GiB")
        need = 6 * n * n * 8 / 2**30
        if need > self.max_memory_gb:
            raise ConfigError(f"MEDA: {n} samples need about {need:.1f} GiB (n x n kernel and linear "
                              f"system), more than max_memory_gb={self.max_memory_gb}; subsample the "
                              "data or raise max_memory_gb")

    def _gamma(self, Z: np.ndarray) -> float | None:
        if self.kernel != "rbf":
            return None
        g = self.gamma
        if g is None:  # reference rule: sigma = sqrt(mean_i ||z_i||), k = exp(-d^2 / (2 sigma^2))
            sigma2 = float(np.mean(np.linalg.norm(Z, axis=1)))
            return 1.0 / (2.0 * max(sigma2, 1e-12))
        if isinstance(g, str):
            if g != "median":
                raise ConfigError(f"MEDA: gamma={g!r} must be None, 'median' or a positive number")
            return kern.median_heuristic_gamma(Z, random_state=self.random_state)
        return kern.resolve_gamma(g, Z)

    # -- fit / predict ------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, sample_domain: Any = None) -> MEDA:
        """Fit on source ``(X, y)`` and target ``X`` (``sample_domain < 0`` or ``y == -1``)."""
        Xs, ys, Xt = split_domains(X, y, sample_domain, name="MEDA.fit")
        ns, nt = len(Xs), len(Xt)
        n = ns + nt
        self._check_params(n)
        d = check_subspace_dim(self.n_components, ns, nt, Xs.shape[1], "MEDA")
        with kern.fit_threads(n):
            self._fit(Xs, ys, Xt, d)
        return self

    def _fit(self, Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray, d: int) -> None:
        ns, nt = len(Xs), len(Xt)
        n = ns + nt
        self.classes_ = np.unique(ys)
        self.n_features_in_ = Xs.shape[1]
        C = len(self.classes_)
        y_idx = np.searchsorted(self.classes_, ys)
        F = gfk_map(Xs, Xt, d)
        G = np.vstack([Xs, Xt]) @ F                      # GFK features (the A-distance uses these)
        Z = kern.l2_normalize_rows(G)
        gamma = self._gamma(Z)
        K = kern.kernel_matrix(Z, kernel=self.kernel, gamma=gamma if gamma is not None else 1.0)
        L = knn_cosine_laplacian(Z, self.n_neighbors) if self.rho > 0 else None
        Y = np.zeros((n, C))
        Y[np.arange(ns), y_idx] = 1.0
        yt = np.asarray(make_classifier("1nn").fit(Z[:ns], y_idx).predict(Z[ns:]))
        # The system matrix is A0 + U V' with A0 = (E + rho L) K + eta I fixed across iterations
        # and U V' = (lambda / ||M||_F) Ew (Ew' K) of rank C + 1 (M = Ew Ew'): A0 is LU-factored
        # once and each iteration applies the Sherman-Morrison-Woodbury identity,
        #   A^{-1} Y = A0^{-1} Y - A0^{-1} U (I + V' A0^{-1} U)^{-1} V' A0^{-1} Y,
        # in O(n^2 C) instead of a new O(n^3) solve.
        A0 = K.copy()
        A0[ns:] = 0.0                                     # E K
        if L is not None:
            A0 += self.rho * (L @ K)
        A0[np.diag_indices(n)] += self.eta
        with kern.lapack_threads(n):
            lu = linalg.lu_factor(A0, overwrite_a=True, check_finite=False)
            Y0 = linalg.lu_solve(lu, Y, check_finite=False)
        self.balance_history_: list[float] = []
        self.n_iter_ = 0
        beta = Y0
        for t in range(int(self.n_iter)):
            if self.mu == "auto":
                mu = kern.estimate_balance_factor(G[:ns], y_idx, G[ns:], yt, C,
                                                  random_state=self.random_state)
            else:
                mu = float(self.mu)
            self.balance_history_.append(float(mu))
            E, w = mmd_design(ns, nt, y_idx, yt, C, mu=mu, marginal_scale=C)
            Ew = E * np.sqrt(w)
            fro = max(float(np.linalg.norm(Ew.T @ Ew)), 1e-300)
            if self.lam > 0:
                Ut = (self.lam / fro) * Ew                    # (n, q)
                Vt = Ew.T @ K                                 # (q, n)
                with kern.lapack_threads(n):
                    A0iU = linalg.lu_solve(lu, Ut, check_finite=False)
                cap = np.eye(Ut.shape[1]) + Vt @ A0iU
                beta = Y0 - A0iU @ linalg.solve(cap, Vt @ Y0)
            new = np.argmax(K[ns:] @ beta, axis=1)
            self.n_iter_ = t + 1
            done = np.array_equal(new, yt)
            yt = new
            if done:
                break
        self.factor_ = F
        self.centers_ = Z
        self.coef_ = beta
        self.gamma_ = gamma
        self.pseudo_labels_ = self.classes_[yt]

    def decision_scores(self, X: Any) -> np.ndarray:
        """``f(x) = sum_i beta_i k(z_i, z(x))`` for target samples, ``(n, n_classes)``."""
        X = self._check_predict_input(X)
        with kern.fit_threads(_num_samples(X)):
            Z = kern.l2_normalize_rows(X @ self.factor_)
            Kx = kern.kernel_matrix(Z, self.centers_, kernel=self.kernel,
                                    gamma=self.gamma_ if self.gamma_ is not None else 1.0)
            return Kx @ self.coef_

    def predict(self, X: Any) -> np.ndarray:
        """Labels of target samples, ``(n,)``."""
        return self.classes_[np.argmax(self.decision_scores(X), axis=1)]
