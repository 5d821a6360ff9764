"""Kernels and linear algebra shared by the subspace / kernel methods (SA, TCA, JDA/BDA, GFK, MEDA).

Contents
--------
- :func:`kernel_matrix`: ``"linear"`` ``k(x, y) = x'y`` and ``"rbf"`` ``k(x, y) = exp(-gamma ||x - y||^2)``;
  ``gamma=None`` takes the median heuristic (:func:`median_heuristic_gamma`,
  ``gamma = 1 / (2 median ||x - x'||^2)``, i.e. ``sigma^2 = median squared distance``, Gretton et al. 2012).
- :func:`center_kernel`: ``H K H`` with ``H = I - 11'/n`` without forming ``H``.
- :func:`generalized_eigh_smallest`: the ``k`` smallest solutions of ``A v = phi B v`` with ``A``
  symmetric positive definite and ``B`` symmetric positive *semi*-definite (the trace-ratio problems
  of TCA/JDA), returned with unit norm or ``B``-normalised (``V'BV = I``);
  :func:`generalized_eigh_smallest_structured` solves the same problem without dense matrices when
  ``A = reg I + G G'`` and ``B = diag(b) - u u'`` (the form TCA/JDA reach in the SVD basis), by
  Lanczos in ``O(r q)`` per product.
- :class:`FeatureMap`: an explicit feature map ``phi`` with ``K ~= phi(X) phi(X)'`` -- the identity
  (linear kernel), the exact kernel map (all training samples as centres), Nystroem with ``m``
  landmarks (Williams & Seeger, NIPS 2001) or random Fourier features (Rahimi & Recht, NIPS 2007).
  Methods written against ``phi`` run in ``O(n m^2)`` time and ``O(n m)`` memory instead of ``O(n^3)``
  and ``O(n^2)``.
- :func:`estimate_memory_gb`: what an exact or approximate path needs, so that an exact path can
  refuse before allocating (``max_memory_gb``) and ``solver="auto"`` can switch to Nystroem.

Shapes: ``X`` is ``(n_samples, n_features)`` throughout (rows are samples).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, ClassifierMixin

from transferkit.core.errors import ConfigError
from transferkit.core.linalg import sq_dists

KernelName = Literal["linear", "rbf"]
KERNELS = ("linear", "rbf")
SOLVERS = ("auto", "exact", "nystroem", "rff")

_BYTES = 8  # float64
#: LAPACK decompositions of matrices up to this order run on one BLAS thread (see lapack_threads)
SINGLE_THREAD_LAPACK_MAX = 4096
#: fits and predictions on up to this many samples run on one BLAS/OpenMP thread (see fit_threads)
SINGLE_THREAD_MAX_SAMPLES = 12000


@contextmanager
def lapack_threads(order: int) -> Iterator[None]:
    """Run a dense decomposition of a matrix of the given order on one BLAS thread when
    ``order <= SINGLE_THREAD_LAPACK_MAX``.

    OpenBLAS's threaded symmetric eigen-solvers and SVD (dominated by memory-bound level-2
    tridiagonalisation / bidiagonalisation) are slower with several threads than with one on
    medium matrices: measured on 2 cores, ``eigh`` of an 800 x 800 matrix took 0.9-1.4 s with 2
    threads against 0.26 s with 1, and a 2000 x 800 SVD 5.0 s against 0.8 s.
    """
    if order > SINGLE_THREAD_LAPACK_MAX:
        yield
        return
    with _thread_controller().limit(limits=1, user_api="blas"):
        yield


@lru_cache(maxsize=1)
def _thread_controller() -> Any:
    """threadpoolctl's controller, created on first use (scanning the loaded libraries once
    instead of at every ``threadpool_limits`` call, 4 ms each). scikit-learn's OpenMP runtime is
    loaded first so that the controller sees it beside numpy's and scipy's OpenBLAS."""
    import sklearn.utils._openmp_helpers  # noqa: F401  (loads the OpenMP runtime)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def fit_threads(n_samples: int) -> Iterator[None]:
    """One BLAS and OpenMP thread for a whole fit/predict on ``n_samples <=
    SINGLE_THREAD_MAX_SAMPLES``: on problems of this size thread start-up and synchronisation cost
    more than they save (measured on 2 cores: scikit-learn's 1-NN search of 958 x 1123 points in
    100-d, 0.5 s with 2 OpenMP threads against 0.05 s with 1). Larger problems keep the defaults."""
    if n_samples > SINGLE_THREAD_MAX_SAMPLES:
        yield
        return
    with _thread_controller().limit(limits=1):
        yield


def check_choice(value: object, allowed: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``allowed``; otherwise a :class:`ConfigError` listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{what}={value!r} is not supported; choose one of {', '.join(map(repr, allowed))}")
    return value


def median_heuristic_gamma(X: np.ndarray, *, max_samples: int = 1000,
                           random_state: int | np.random.Generator | None = 0) -> float:
    """``gamma = 1 / (2 median_{i<j} ||x_i - x_j||^2)`` over at most ``max_samples`` rows.

    This is the median heuristic ``sigma^2 = median squared distance`` for
    ``k = exp(-||x - y||^2 / (2 sigma^2))``. A random subset of ``max_samples`` rows (drawn with
    ``random_state``) keeps it ``O(max_samples^2)`` on large data.
    """
    n = len(X)
    if n > max_samples:
        idx = np.random.default_rng(random_state).choice(n, max_samples, replace=False)
        X = X[np.sort(idx)]
    D = sq_dists(X)
    iu = np.triu_indices(len(X), k=1)
    med = float(np.median(D[iu])) if len(iu[0]) else 0.0
    if not np.isfinite(med) or med <= 1e-12:
        med = float(np.mean(D[iu])) if len(iu[0]) else 1.0
        if med <= 1e-12:
            med = 1.0
    return 1.0 / (2.0 * med)


def resolve_gamma(gamma: float | None, X: np.ndarray, random_state: int | None = 0) -> float:
    """``gamma`` itself when given (must be > 0), else the median heuristic on ``X``."""
    if gamma is None:
        return median_heuristic_gamma(X, random_state=random_state)
    gamma = float(gamma)
    if not np.isfinite(gamma) or gamma <= 0:
        raise ConfigError(f"gamma={gamma!r} must be a positive number (or None for the median heuristic)")
    return gamma


def kernel_matrix(X: np.ndarray, Y: np.ndarray | None = None, *, kernel: str = "linear",
                  gamma: float = 1.0) -> np.ndarray:
    """Kernel matrix ``(n_x, n_y)``: ``"linear"`` ``X Y'``, ``"rbf"`` ``exp(-gamma ||x - y||^2)``."""
    if kernel == "linear":
        return X @ (X if Y is None else Y).T
    if kernel == "rbf":
        D = sq_dists(X, Y)
        D *= -gamma
        return np.exp(D, out=D)
    raise ConfigError(f"kernel={kernel!r} is not supported; choose one of {', '.join(map(repr, KERNELS))}")


def center_kernel(K: np.ndarray) -> np.ndarray:
    """``H K H`` with ``H = I - 11'/n`` (double centring), computed in ``O(n^2)`` without ``H``."""
    row = K.mean(axis=0, keepdims=True)
    col = K.mean(axis=1, keepdims=True)
    return K - row - col + K.mean()


def l2_normalize_rows(X: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Each row divided by its Euclidean norm (zero rows stay zero)."""
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    return X / np.maximum(norms, eps)[:, None]


def generalized_eigh_smallest(A: np.ndarray, B: np.ndarray, k: int, *,
                              norm: Literal["unit", "B"] = "unit") -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` smallest eigenpairs of ``A v = phi B v``; ``A`` SPD, ``B`` symmetric PSD.

    Solved as the ``k`` *largest* pairs of ``B v = s A v`` (well posed because ``A`` is definite,
    whereas ``B`` may be singular), ``phi = 1/s``, with ``scipy.linalg.eigh(subset_by_index=...)`` so
    only ``k`` eigenvectors are computed. Returns ``(phi, V)``: ``phi`` ascending ``(k,)`` (``inf``
    where ``B`` is singular) and ``V`` ``(r, k)`` with unit Euclidean columns (``norm="unit"``, the
    convention of ``scipy.linalg.eig`` used by the TCA/JDA/BDA reference code) or ``V'BV = I``
    (``norm="B"``, the trace-ratio constraint read literally).
    """
    r = A.shape[0]
    k = int(min(k, r))
    A = (A + A.T) * 0.5
    B = (B + B.T) * 0.5
    with lapack_threads(r):
        if k < r:
            s, V = linalg.eigh(B, A, subset_by_index=[r - k, r - 1], driver="gvx", check_finite=False)
        else:
            s, V = linalg.eigh(B, A, driver="gvd", check_finite=False)
    return _finish_generalized(s, V, norm)


def _finish_generalized(s: np.ndarray, V: np.ndarray, norm: str) -> tuple[np.ndarray, np.ndarray]:
    """``(phi, V)`` from the eigenpairs ``(s, V)`` of ``B v = s A v`` (``V'AV = I``): descending
    ``s``, ``phi = 1/s`` (``inf`` where ``s`` is round-off), ``V`` scaled per ``norm``."""
    order = np.argsort(s)[::-1]
    s, V = s[order], V[:, order]
    tol = max(float(s.max(initial=0.0)), 1.0) * 1e-12
    ok = s > tol
    if norm == "unit":
        V = V / np.linalg.norm(V, axis=0)
    elif norm == "B":
        V[:, ok] = V[:, ok] / np.sqrt(s[ok])
    else:
        raise ConfigError(f"norm={norm!r} must be 'unit' or 'B'")
    with np.errstate(divide="ignore"):
        phi = np.where(ok, 1.0 / np.where(ok, s, 1.0), np.inf)
    return phi, V


#: order from which :func:`generalized_eigh_smallest_structured` is used by TCA/JDA/BDA (below it a
#: dense solve takes under a second and is kept)
STRUCTURED_EIG_MIN_ORDER = 1500


def generalized_eigh_smallest_structured(reg: float, G: np.ndarray, b: np.ndarray, u: np.ndarray,
                                         k: int, *, norm: Literal["unit", "B"] = "unit"
                                         ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`generalized_eigh_smallest` for ``A = reg I + G G'`` (``reg > 0``, ``G (r, q)``) and
    ``B = diag(b) - u u'`` (``b``, ``u`` of length ``r``), without forming either matrix.

    ``A^{-1/2} = reg^{-1/2} I + Q diag((lam + reg)^{-1/2} - reg^{-1/2}) Q'`` from the eigen-pairs
    ``(lam, Q)`` of ``G G'`` (through the thin QR of ``G``), and the ``k`` largest eigenpairs
    ``(s, Y)`` of the symmetric ``T = A^{-1/2} B A^{-1/2}`` come from Lanczos
    (``scipy.sparse.linalg.eigsh``, fixed start vector, tolerance at machine precision) with
    products in ``O(r q)``; ``V = A^{-1/2} Y`` are the generalised eigenvectors with ``V'AV = I``,
    as returned by the dense ``scipy.linalg.eigh(B, A)``, then scaled as there. The same
    eigenpairs up to round-off (and the sign of each vector); the dense solver is used when
    ``k > r / 4`` or Lanczos does not converge. Cost ``O(r q^2)`` plus ``O(r k)`` per Lanczos
    step instead of ``O(r^3)``.
    """
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    r = len(b)
    k = int(min(k, r))
    reg = float(reg)
    if not (np.isfinite(reg) and reg > 0):
        raise ConfigError(f"the regulariser must be a positive number, got {reg!r}")
    G = np.asarray(G, dtype=np.float64).reshape(r, -1)
    b = np.asarray(b, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    if 4 * k > r or r < 8:
        A = G @ G.T
        A[np.diag_indices(r)] += reg
        return generalized_eigh_smallest(A, np.diag(b) - np.outer(u, u), k, norm=norm)
    Qg, R = np.linalg.qr(G)
    lam, W = linalg.eigh(R @ R.T)
    Q = Qg @ W
    c = 1.0 / np.sqrt(np.clip(lam, 0.0, None) + reg) - 1.0 / np.sqrt(reg)
    r0 = 1.0 / np.sqrt(reg)

    def a_inv_half(x: np.ndarray) -> np.ndarray:  # x (r, j)
        return r0 * x + Q @ (c[:, None] * (Q.T @ x))

    def matvec(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(r, -1)
        y = a_inv_half(x)
        y = b[:, None] * y - np.outer(u, u @ y)
        return a_inv_half(y)

    op = LinearOperator((r, r), matvec=matvec, matmat=matvec, dtype=np.float64)
    try:
        with lapack_threads(r):
            s, Y = eigsh(op, k=k, which="LA", v0=np.ones(r), tol=0)
    except ArpackNoConvergence:  # pragma: no cover - fall back to the dense solver
        A = G @ G.T
        A[np.diag_indices(r)] += reg
        return generalized_eigh_smallest(A, np.diag(b) - np.outer(u, u), k, norm=norm)
    return _finish_generalized(s, a_inv_half(Y), norm)


def leading_eigh(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenpairs of a symmetric matrix, descending: ``(w (k,), V (m, k))``.

    A few pairs of a large matrix (``k <= m / 8``, ``m >= 128``) come from Lanczos
    (``scipy.sparse.linalg.eigsh``, fixed start vector, tolerance at machine precision; 3 times
    faster than a dense solve for 20 of 800), others from ``scipy.linalg.eigh`` with
    ``subset_by_index``. Both agree to round-off.
    """
    m = S.shape[0]
    k = int(min(k, m))
    S = (S + S.T) * 0.5
    if m >= 128 and 8 * k <= m:
        from scipy.sparse.linalg import ArpackNoConvergence, eigsh

        try:
            with lapack_threads(m):
                w, V = eigsh(S, k=k, which="LA", v0=np.ones(m), tol=0)
            order = np.argsort(w)[::-1]
            return w[order], V[:, order]
        except ArpackNoConvergence:  # pragma: no cover - fall back to the dense solver
            pass
    with lapack_threads(m):
        w, V = linalg.eigh(S, subset_by_index=[m - k, m - 1], check_finite=False)
    return w[::-1], V[:, ::-1]


def sym_inv_sqrt(K: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    """``K^{-1/2}`` of a symmetric PSD matrix on its numerical range, shape ``(m, r)`` (``r <= m``):
    ``U diag(w)^{-1/2}`` over eigenvalues ``w > rtol * max(w)``, so ``K ~= (K U w^{-1/2})(...)'``."""
    with lapack_threads(K.shape[0]):
        w, U = linalg.eigh((K + K.T) * 0.5)
    keep = w > rtol * max(float(w.max(initial=0.0)), 1e-300)
    return U[:, keep] / np.sqrt(w[keep])


# --------------------------------------------------------------------------------------------
# memory estimates
# --------------------------------------------------------------------------------------------

def estimate_memory_gb(n_samples: int, n_features: int, *, kernel: str, solver: str,
                       n_landmarks: int = 1000) -> float:
    """Peak memory (GiB, float64) a TCA/JDA fit needs, an upper estimate used to refuse early.

    - linear kernel, exact: the data, its thin SVD ``U (n, r)``, ``r = min(n, d)``, and ``r x r``
      eigen-problems: ``8 (n d + 3 n r + 4 r^2)`` bytes;
    - rbf kernel, exact: the ``n x n`` kernel, its eigenvectors and the solver's workspace:
      ``8 (4 n^2 + n d)`` bytes;
    - nystroem / rff with ``m`` landmarks (features): ``8 (n d + 4 n m + 6 m^2)`` bytes.
    """
    n, d, m = int(n_samples), int(n_features), int(n_landmarks)
    if solver in ("nystroem", "rff"):
        b = n * d + 4 * n * m + 6 * m * m
    elif kernel == "rbf":
        b = 4 * n * n + n * d
    else:
        r = min(n, d)
        b = n * d + 3 * n * r + 4 * r * r
    return b * _BYTES / 2**30


# --------------------------------------------------------------------------------------------
# explicit feature maps
# --------------------------------------------------------------------------------------------

@dataclass
class FeatureMap:
    """A fitted feature map ``phi(x)`` with ``k(x, y) ~= phi(x)'phi(y)``.

    ``kind`` is ``"identity"`` (``phi(x) = x``, the linear kernel), ``"kernel"`` (``phi(x) =
    k(x, C) P``: exact map when ``C`` holds all training rows, Nystroem when ``C`` holds ``m``
    landmarks and ``P = K_CC^{-1/2}``) or ``"rff"`` (``phi(x) = sqrt(2/m) cos(x W + b)``).
    """

    kind: str
    kernel: str = "linear"
    gamma: float = 1.0
    centers: np.ndarray | None = None
    proj: np.ndarray | None = None
    W: np.ndarray | None = None
    b: np.ndarray | None = None

    def kernel_to_centers(self, X: np.ndarray) -> np.ndarray:
        """``k(X, C)``, shape ``(n, n_centers)`` (kind ``"kernel"`` only)."""
        assert self.centers is not None
        return kernel_matrix(X, self.centers, kernel=self.kernel, gamma=self.gamma)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``phi(X)``, shape ``(n, n_out)``."""
        if self.kind == "identity":
            return X
        if self.kind == "kernel":
            return self.kernel_to_centers(X) @ self.proj
        if self.kind == "rff":
            Z = X @ self.W
            Z += self.b
            np.cos(Z, out=Z)
            Z *= np.sqrt(2.0 / self.W.shape[1])
            return Z
        raise AssertionError(self.kind)


def nystroem_map(X: np.ndarray, *, kernel: str, gamma: float, n_landmarks: int,
                 random_state: int | np.random.Generator | None = 0) -> FeatureMap:
    """Nystroem map (Williams & Seeger 2001): ``m`` landmarks ``L`` drawn uniformly without
    replacement from the rows of ``X``; ``phi(x) = k(x, L) K_LL^{-1/2}`` so ``phi(X)phi(X)' =
    K_XL K_LL^+ K_LX``. Cost ``O(n m d + m^3)``."""
    n = len(X)
    m = int(min(n_landmarks, n))
    if m < 1:
        raise ConfigError(f"n_landmarks={n_landmarks!r} must be >= 1")
    idx = np.sort(np.random.default_rng(random_state).choice(n, m, replace=False))
    L = np.ascontiguousarray(X[idx])
    K_LL = kernel_matrix(L, kernel=kernel, gamma=gamma)
    return FeatureMap("kernel", kernel=kernel, gamma=gamma, centers=L, proj=sym_inv_sqrt(K_LL))


def random_fourier_map(n_features_in: int, *, gamma: float, n_components: int,
                       random_state: int | np.random.Generator | None = 0) -> FeatureMap:
    """Random Fourier features (Rahimi & Recht 2007) for ``exp(-gamma ||x - y||^2)``:
    ``W ~ N(0, 2 gamma I)``, ``b ~ U[0, 2 pi)``, ``phi(x) = sqrt(2/m) cos(x'W + b)``."""
    rng = np.random.default_rng(random_state)
    W = rng.normal(scale=np.sqrt(2.0 * gamma), size=(n_features_in, int(n_components)))
    b = rng.uniform(0.0, 2.0 * np.pi, size=int(n_components))
    return FeatureMap("rff", kernel="rbf", gamma=gamma, W=W, b=b)


def exact_kernel_eig(K: np.ndarray, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """``K = Q diag(w) Q'`` on the numerical range (``w > rtol * w_max``): ``(Q (n, r), w (r,))``."""
    with lapack_threads(K.shape[0]):
        w, Q = linalg.eigh(K, overwrite_a=True)
    keep = w > rtol * max(float(w[-1]), 1e-300)
    return Q[:, keep], w[keep]


# --------------------------------------------------------------------------------------------
# balance factor of BDA / MEDA
# --------------------------------------------------------------------------------------------

def proxy_a_distance(Xa: np.ndarray, Xb: np.ndarray, *, max_samples: int = 2000,
                     random_state: int | np.random.Generator | None = 0) -> float:
    """Proxy A-distance ``2 (1 - 2 err)`` (Ben-David et al. 2007) with ``err`` the training error
    of a linear SVM (liblinear, ``C = 1``) separating ``Xa`` from ``Xb``, as in the BDA/MEDA
    reference code. Each set is subsampled to ``max_samples`` rows. Empty sets give 0."""
    if len(Xa) == 0 or len(Xb) == 0:
        return 0.0
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(random_state)
    if len(Xa) > max_samples:
        Xa = Xa[np.sort(rng.choice(len(Xa), max_samples, replace=False))]
    if len(Xb) > max_samples:
        Xb = Xb[np.sort(rng.choice(len(Xb), max_samples, replace=False))]
    X = np.vstack([Xa, Xb])
    y = np.r_[np.zeros(len(Xa), dtype=int), np.ones(len(Xb), dtype=int)]
    clf = LinearSVC(C=1.0, dual="auto", max_iter=2000, random_state=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # liblinear's ConvergenceWarning: the error rate is all we use
        clf.fit(X, y)
    err = float(np.mean(clf.predict(X) != y))
    return 2.0 * (1.0 - 2.0 * err)


def estimate_balance_factor(Zs: np.ndarray, ys: np.ndarray, Zt: np.ndarray, yt: np.ndarray,
                            n_classes: int, *, random_state: int | None = 0) -> float:
    """BDA's balance factor ``mu = d_c / (d_c + d_m)`` (Wang et al., ICDM 2017, Sec. III-C):
    ``d_m`` is the proxy A-distance between the domains, ``d_c`` the mean over classes of the
    proxy A-distance between source class ``c`` and target samples pseudo-labelled ``c``. Clipped
    to ``[0, 1]``; values below ``1e-3`` become 0 (as in the reference code). ``ys``/``yt`` are
    class indices."""
    d_m = proxy_a_distance(Zs, Zt, random_state=random_state)
    d_c = float(np.mean([proxy_a_distance(Zs[ys == c], Zt[yt == c], random_state=random_state)
                         for c in range(n_classes)]))
    denom = d_c + d_m
    mu = d_c / denom if denom > 0 else 0.5
    mu = min(max(mu, 0.0), 1.0)
    return 0.0 if mu < 1e-3 else mu


# --------------------------------------------------------------------------------------------
# 1-nearest-neighbour for large problems
# --------------------------------------------------------------------------------------------

#: above this many source x target pairs the 1-NN search of the methods runs in float32 GEMM blocks
LARGE_NN_PAIRS = 10**8


def nearest_neighbor_index(Zs: np.ndarray, Zt: np.ndarray, *, dtype: Any = np.float32,
                           block: int = 2048) -> np.ndarray:
    """Index in ``Zs`` of each row of ``Zt``'s Euclidean nearest neighbour, ``(n_t,)``.

    ``argmax_j z_t'z_j - ||z_j||^2 / 2`` over blocks of ``block`` target rows, one matrix product
    per block with the norms folded in as an extra column (``[z_t, 1] [z_j, -||z_j||^2/2]'``), so
    no pass over the block besides the product and the argmax (``O(n_s n_t d)`` flops,
    ``O(block n_s)`` memory). ``float32`` halves time and memory; it can only swap neighbours
    whose squared distances agree to ~1e-6 relative.
    """
    Zs = np.asarray(Zs, dtype=np.float64)
    A = np.empty((len(Zs), Zs.shape[1] + 1), dtype=dtype)
    A[:, :-1] = Zs
    A[:, -1] = -0.5 * np.einsum("ij,ij->i", Zs, Zs)
    AT = np.ascontiguousarray(A.T)
    out = np.empty(len(Zt), dtype=np.intp)
    Bt = np.ones((min(block, len(Zt)), A.shape[1]), dtype=dtype)
    for start in range(0, len(Zt), block):
        stop = min(start + block, len(Zt))
        Bb = Bt[: stop - start]
        Bb[:, :-1] = Zt[start:stop]
        out[start:stop] = np.argmax(Bb @ AT, axis=1)
    return out


class FastOneNN(ClassifierMixin, BaseEstimator):
    """1-nearest-neighbour classifier by blocked float32 matrix products
    (:func:`nearest_neighbor_index`); used by the methods in place of scikit-learn's
    ``KNeighborsClassifier(1)`` when ``estimator="1nn"`` and the search has more than
    ``LARGE_NN_PAIRS`` source-target pairs (measured at 25,000 x 25,000 in 100-d: about 3 times
    faster)."""

    def __init__(self, *, dtype: str = "float32") -> None:
        self.dtype = dtype

    def fit(self, X: Any, y: Any) -> FastOneNN:
        self.X_ = np.asarray(X, dtype=np.float64)
        self.classes_, self.y_ = np.unique(np.asarray(y), return_inverse=True)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.y_[nearest_neighbor_index(self.X_, np.asarray(X), dtype=self.dtype)]]

    def predict_proba(self, X: Any) -> np.ndarray:
        idx = self.y_[nearest_neighbor_index(self.X_, np.asarray(X), dtype=self.dtype)]
        P = np.zeros((len(idx), len(self.classes_)))
        P[np.arange(len(idx)), idx] = 1.0
        return P


def pseudo_label_classifier(spec: Any, n_source: int, n_target: int, *,
                            random_state: int | None = 0) -> BaseEstimator:
    """The classifier a method trains on its source embedding: :class:`FastOneNN` for
    ``spec == "1nn"`` on searches above ``LARGE_NN_PAIRS`` pairs, else
    :func:`transferkit.shallow.base.make_classifier`."""
    if (spec is None or (isinstance(spec, str) and spec == "1nn")) and n_source * n_target > LARGE_NN_PAIRS:
        return FastOneNN()
    from transferkit.shallow.base import make_classifier

    return make_classifier(spec, random_state=random_state)
