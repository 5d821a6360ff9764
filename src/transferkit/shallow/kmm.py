"""KMM: kernel mean matching (Huang, Smola, Gretton, Borgwardt & Schoelkopf, "Correcting Sample
Selection Bias by Unlabeled Data", NIPS 2007).

Source weights ``w`` make the kernel mean of the weighted source match the target's in the RKHS:

    min_w  0.5 w'K w - kappa'w
    s.t.   0 <= w_i <= B,   |sum_i w_i - n_s| <= n_s eps,

with ``K_ij = k(xs_i, xs_j)`` (n_s, n_s) and ``kappa_i = (n_s / n_t) sum_j k(xs_i, xt_j)``; the
paper's choices are ``B = 1000`` and ``eps = (sqrt(n_s) - 1) / sqrt(n_s)``. The kernel is Gaussian
``exp(-gamma ||x - y||^2)`` with ``gamma`` from the median heuristic on the pooled samples when not
given. A classifier that accepts ``sample_weight`` is then trained on the weighted source.

Two paths solve the same problem with L-BFGS-B on the box and an augmented Lagrangian for the sum
constraint (:func:`transferkit.shallow._weighting.solve_box_slab_qp`):

- ``exact``: the full ``K`` (``O(n_s^2)`` memory, ``O(n_s^2 d)`` time). It refuses with a
  :class:`ConfigError` naming ``solver="nystroem"`` when its estimated memory exceeds
  ``max_memory_gb``.
- ``nystroem`` / ``rff``: ``K ~= Phi Phi' + diag(k(x, x) - |phi(x)|^2)`` with ``Phi`` (n_s, m) from
  Nystroem landmarks (drawn from source + target) or random Fourier features; the diagonal term
  restores the exact ``k(x, x)`` and keeps the low-rank problem from having a continuum of
  minimisers. Each iteration costs ``O(n_s m)``, memory is ``O((n_s + chunk) m)``; ``kappa`` uses
  the same map (``kappa = (n_s/n_t) Phi_s Phi_t' 1``), computed in chunks. With ``n_s = 50,000``,
  ``m = 500`` it runs in well under a minute and 1 GiB (``benchmarks/shallow_kmm_scale.py``).

``solver="auto"`` takes the exact path up to ``exact_max_samples`` source samples when it fits in
``max_memory_gb``, else Nystroem.

Shapes: ``X`` (n, d) holding source and target rows; ``weights_`` (n_source,).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferkit.core.errors import ConfigError
from transferkit.core.registries import SHALLOW
from transferkit.shallow._weighting import (
    ImportanceWeightingClassifier,
    _check_positive,
    solve_box_slab_qp,
)

_SOLVERS = ("auto", "exact", "nystroem", "rff")
_KERNELS = ("rbf", "linear")
_CHUNK = 8192


def kmm_exact_memory_gb(n_source: int, n_target: int, n_features: int) -> float:
    """Peak memory (GiB) of the exact path: ``K`` and one temporary of the same size, the data, and
    one ``(chunk, n_source)`` block of the source-target kernel."""
    ns, nt, d = int(n_source), int(n_target), int(n_features)
    return 8.0 * (2 * ns * ns + min(nt, _CHUNK) * ns + (ns + nt) * d) / 2**30


def kmm_approx_memory_gb(n_source: int, n_target: int, n_features: int, n_components: int) -> float:
    """Peak memory (GiB) of the Nystroem / random-feature path: ``Phi_s`` (n_s, m), two chunk-sized
    temporaries, ``m x m`` matrices, two copies of the data, and L-BFGS-B's ~25 vectors of n_s."""
    ns, nt, d, m = int(n_source), int(n_target), int(n_features), int(n_components)
    return 8.0 * (ns * m + 2 * min(max(ns, nt), _CHUNK) * m + 3 * m * m + 2 * (ns + nt) * d + 25 * ns) / 2**30


def _kernel_sums(Xs: np.ndarray, Xt: np.ndarray, kernel: str, gamma: float) -> np.ndarray:
    """``sum_j k(xs_i, xt_j)`` for every source row, in target chunks."""
    from transferkit.shallow._kernels import kernel_matrix

    out = np.zeros(len(Xs))
    for start in range(0, len(Xt), _CHUNK):
        out += kernel_matrix(Xs, Xt[start:start + _CHUNK], kernel=kernel, gamma=gamma).sum(axis=1)
    return out


def _map_rows(fmap: Any, X: np.ndarray) -> np.ndarray:
    """``phi(X)`` computed in row chunks into one preallocated array (bounded temporaries)."""
    if len(X) <= _CHUNK:
        return fmap.transform(X)
    first = fmap.transform(X[:_CHUNK])
    out = np.empty((len(X), first.shape[1]))
    out[:_CHUNK] = first
    for s in range(_CHUNK, len(X), _CHUNK):
        out[s:s + _CHUNK] = fmap.transform(X[s:s + _CHUNK])
    return out


def _map_sum(fmap: Any, X: np.ndarray) -> np.ndarray:
    """``sum_j phi(x_j)`` computed in row chunks."""
    total = None
    for s in range(0, len(X), _CHUNK):
        part = fmap.transform(X[s:s + _CHUNK]).sum(axis=0)
        total = part if total is None else total + part
    return total


@SHALLOW.register("kmm", description="KMM: kernel mean matching source weights + weighted classifier (Huang et al. 2007)")
class KMM(ImportanceWeightingClassifier):
    """Kernel mean matching (Huang et al., NIPS 2007), then a weighted classifier.

    Parameters
    ----------
    kernel : ``"rbf"`` (paper) or ``"linear"``.
    gamma : RBF width in ``exp(-gamma ||x - y||^2)``; ``None`` = median heuristic on source + target
        (``gamma = 1 / (2 median ||x - x'||^2)``).
    B : upper bound of each weight (paper: 1000).
    eps : slack of the sum constraint ``|sum w - n_s| <= n_s eps``; ``None`` = ``(sqrt(n_s) - 1) /
        sqrt(n_s)`` (the paper's setting).
    solver : ``"auto"``, ``"exact"``, ``"nystroem"`` or ``"rff"`` (random Fourier features).
    n_components : Nystroem landmarks / random features of the scalable paths.
    exact_max_samples : ``solver="auto"`` uses the exact path up to this many source samples.
    max_memory_gb : the exact path refuses when its estimated peak memory exceeds this.
    max_iter, tol : L-BFGS-B iterations and relative objective tolerance.
    estimator : classifier name (``"svm"``, ``"linear_svm"``, ``"logreg"``) or any scikit-learn
        classifier whose ``fit`` accepts ``sample_weight``.
    random_state : seed of the landmarks / random features and of the median-heuristic subsample.

    Fitted: ``weights_`` (n_source,), ``gamma_``, ``solver_``, ``n_iter_``, ``estimator_``.
    """

    def __init__(self, *, kernel: str = "rbf", gamma: float | None = None, B: float = 1000.0,
                 eps: float | None = None, solver: str = "auto", n_components: int = 500,
                 exact_max_samples: int = 5000, max_memory_gb: float = 4.0, max_iter: int = 1000,
                 tol: float = 1e-10, estimator: Any = "svm", random_state: int | None = 0) -> None:
        self.kernel = kernel
        self.gamma = gamma
        self.B = B
        self.eps = eps
        self.solver = solver
        self.n_components = n_components
        self.exact_max_samples = exact_max_samples
        self.max_memory_gb = max_memory_gb
        self.max_iter = max_iter
        self.tol = tol
        self.estimator = estimator
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.kernel not in _KERNELS:
            raise ConfigError(f"kernel={self.kernel!r} is not supported; choose one of {', '.join(map(repr, _KERNELS))}")
        if self.solver not in _SOLVERS:
            raise ConfigError(f"solver={self.solver!r} is not supported; choose one of {', '.join(map(repr, _SOLVERS))}")
        if self.kernel == "linear" and self.solver == "rff":
            raise ConfigError("solver='rff' approximates the rbf kernel only; use kernel='rbf' or solver='nystroem'")
        _check_positive("gamma", self.gamma, allow_none=True)
        _check_positive("B", self.B)
        _check_positive("eps", self.eps, allow_none=True, allow_zero=True)
        _check_positive("max_memory_gb", self.max_memory_gb)
        _check_positive("tol", self.tol)
        for name in ("n_components", "exact_max_samples", "max_iter"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name}={v!r} must be a positive integer")

    def _resolve_solver(self, ns: int, nt: int, d: int) -> str:
        exact_gb = kmm_exact_memory_gb(ns, nt, d)
        if self.solver == "exact":
            if exact_gb > self.max_memory_gb:
                raise ConfigError(
                    f"solver='exact' needs about {exact_gb:.1f} GiB for {ns} source samples (an {ns} x {ns} "
                    f"kernel), more than max_memory_gb={self.max_memory_gb}; use solver='nystroem' (or 'rff', "
                    f"or 'auto'), which needs about "
                    f"{kmm_approx_memory_gb(ns, nt, d, self.n_components):.2f} GiB, or raise max_memory_gb")
            return "exact"
        if self.solver == "auto":
            return "exact" if ns <= self.exact_max_samples and exact_gb <= self.max_memory_gb else "nystroem"
        return self.solver

    def _source_weights(self, Xs: np.ndarray, Xt: np.ndarray) -> np.ndarray:
        from transferkit.shallow._kernels import (
            kernel_matrix,
            median_heuristic_gamma,
            nystroem_map,
            random_fourier_map,
        )

        ns, nt, d = len(Xs), len(Xt), Xs.shape[1]
        solver = self._resolve_solver(ns, nt, d)
        if self.kernel == "rbf":
            gamma = (median_heuristic_gamma(np.vstack([Xs, Xt]), random_state=self.random_state)
                     if self.gamma is None else float(self.gamma))
        else:
            gamma = 1.0
        eps = (np.sqrt(ns) - 1.0) / np.sqrt(ns) if self.eps is None else float(self.eps)
        lo, hi = max(0.0, ns * (1.0 - eps)), ns * (1.0 + eps)
        if lo > ns * self.B:
            raise ConfigError(f"B={self.B!r} is too small: the weights cannot sum to n_source (1 - eps) = {lo:.1f}")

        if solver == "exact":
            K = kernel_matrix(Xs, kernel=self.kernel, gamma=gamma)
            kappa = _kernel_sums(Xs, Xt, self.kernel, gamma) * (ns / nt)

            def matvec(v: np.ndarray) -> np.ndarray:
                return K @ v
        else:
            m = int(min(self.n_components, ns + nt))
            if solver == "nystroem":
                rng = np.random.default_rng(self.random_state)
                pool = np.vstack([Xs, Xt]) if ns + nt <= 4 * _CHUNK else np.vstack(
                    [Xs[rng.choice(ns, min(ns, 2 * _CHUNK), replace=False)],
                     Xt[rng.choice(nt, min(nt, 2 * _CHUNK), replace=False)]])
                fmap = nystroem_map(pool, kernel=self.kernel, gamma=gamma, n_landmarks=m,
                                    random_state=self.random_state)
            else:
                fmap = random_fourier_map(d, gamma=gamma, n_components=m, random_state=self.random_state)
            Phi = _map_rows(fmap, Xs)
            kappa = Phi @ _map_sum(fmap, Xt) * (ns / nt)
            # restore the exact diagonal k(x, x) (1 for rbf): K ~= Phi Phi' + diag(k(x,x) - |phi(x)|^2).
            # Without it the low-rank problem has a continuum of minimisers and the solver wanders.
            kdiag = np.ones(ns) if self.kernel == "rbf" else np.einsum("ij,ij->i", Xs, Xs)
            resid = np.maximum(kdiag - np.einsum("ij,ij->i", Phi, Phi), 0.0)

            def matvec(v: np.ndarray) -> np.ndarray:
                return Phi @ (Phi.T @ v) + resid * v

        from threadpoolctl import threadpool_limits

        # matrix-vector products are memory-bound: one BLAS thread is faster than several here
        with threadpool_limits(limits=1, user_api="blas"):
            w, n_iter = solve_box_slab_qp(matvec, kappa, B=float(self.B), lo=lo, hi=hi,
                                          max_iter=self.max_iter, tol=self.tol)
        self.gamma_ = gamma
        self.solver_ = solver
        self.n_iter_ = n_iter
        return w
