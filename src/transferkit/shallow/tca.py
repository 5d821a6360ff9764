"""TCA: Transfer Component Analysis (Pan, Tsang, Kwok & Yang, "Domain Adaptation via Transfer
Component Analysis", IEEE Trans. Neural Networks 22(2), 2011).

TCA learns ``k`` transfer components ``W`` that shrink the maximum mean discrepancy (MMD) between
the source and target embeddings while keeping their variance:

    min_W  tr(W' K M K W) + mu tr(W'W)   s.t.  W' K H K W = I_k,

with ``K`` the ``(n, n)`` kernel over the ``n = n_s + n_t`` source-then-target samples, ``H = I -
11'/n`` the centring matrix and ``M = e e' / ||e e'||_F``, ``e = [1/n_s, ..., -1/n_t, ...]``. The
solution is the ``k`` smallest generalised eigenvectors of ``(K M K + mu I, K H K)``; the embedding
is ``Z = K W`` ``(n, k)``. As in the reference code of the JDA/BDA papers (Long et al. 2013, Wang et
al. 2017), inputs and embeddings are scaled to unit L2 norm per sample (``normalize=True``) and a
1-nearest-neighbour classifier trained on the source embedding labels the target.

Kernels (``kernel``): ``"linear"`` (``K = XX'``, the JDA paper's protocol on Office-Caltech),
``"rbf"`` (median heuristic unless ``gamma`` is given) and ``"primal"`` (the linear map ``Z = XW``
with ``W`` regularised by ``||W||^2`` in input space, the JDA paper's protocol on digits; it solves
``min tr(W'X'MXW) + mu tr(W'W) s.t. W'X'HXW = I``).

How it is computed (no ``n x n`` object on the linear/primal and Nystroem paths): with an explicit
feature map ``Phi`` (``K = Phi Phi'``) and its thin SVD ``Phi = U S V'`` (rank ``r``), every
solution lies in ``span(U)``; writing ``W = U B`` gives the ``r x r`` problem

    (S^p U'MU S^p + mu I) b = phi S^p (I - U'1 1'U / n) S^p b,   Z = U S^p B,

with ``p = 2`` for a kernel and ``p = 1`` for ``"primal"``. ``V`` and ``S`` come from the
eigen-decomposition of the smaller Gram matrix (``Phi'Phi``, ``m x m``); ``U`` is never formed
(``U'E = S^{-1} V'Phi'E`` and ``Z = Phi V S^{p-1} B``), and ``U'MU`` has rank 1 (TCA) or ``C + 1``
(JDA), so the cost is ``O(n m^2)`` once plus ``O(m^3 + n m k)`` per eigen-solve, in ``O(n m)``
memory. The generalised eigenvectors are taken with unit norm (see :func:`solve_embedding`).

Two exact short cuts for wide or large problems (same results up to round-off; tested against the
dense path): with a linear/primal kernel and fewer samples than features (``n < d``, e.g. 4,000
reviews in 5,000-d), ``U`` and ``S`` come from the ``n x n`` Gram matrix ``XX'`` and ``V = X'U/S``
(``d x r``) is never formed -- the map of new samples is ``X' U S^{p-2} B`` (``d x k``), computed
once; and when the rank ``r`` reaches ``STRUCTURED_EIG_MIN_ORDER`` (1,500) the ``r x r``
eigen-problem, ``(reg I + G G') b = phi (diag(S^{2p}) - u u') b`` with ``G`` of rank ``C + 1``, is
solved by Lanczos on ``A^{-1/2} B A^{-1/2}`` with ``O(r C)`` products
(:func:`transferkit.shallow._kernels.generalized_eigh_smallest_structured`) instead of a dense
``O(r^3)`` solve.

``solver``: ``"exact"`` uses ``Phi = X`` (linear/primal, ``m = d``) or the full kernel
eigen-decomposition (rbf, ``O(n^2)`` memory, ``O(n^3)`` time), ``"nystroem"`` uses ``m =
n_landmarks`` landmarks, ``"rff"`` ``m`` random Fourier features (rbf only), and ``"auto"``
takes the exact path unless its estimated memory exceeds ``max_memory_gb`` (or, for rbf, ``n >
3000``). An explicit ``solver="exact"`` that would exceed ``max_memory_gb`` raises
:class:`~transferkit.core.errors.ConfigError` naming ``solver="nystroem"``.

Shapes: ``X (n_samples, n_features)``; ``transform``-ed features ``(n_samples, n_components)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils.validation import _num_samples
from scipy import linalg

from transferkit.core.errors import ConfigError
from transferkit.core.registries import SHALLOW
from transferkit.shallow import _kernels as kern
from transferkit.shallow.base import DAClassifier, split_domains

TCA_KERNELS = ("linear", "rbf", "primal")
#: above this many samples ``solver="auto"`` approximates an rbf kernel with Nystroem
AUTO_EXACT_RBF_MAX_SAMPLES = 3000


@dataclass
class _Basis:
    """The training feature matrix ``Phi = C P`` (``P`` may be None: ``Phi = C``) with its thin
    SVD ``Phi = U diag(s) V'``; ``U (n, r)`` is never formed, only products with it."""

    fmap: kern.FeatureMap
    C: np.ndarray          # (n, m0): X, k(X, landmarks), random features, or U diag(s)
    P: np.ndarray | None   # (m0, m) or None
    V: np.ndarray | None   # (m, r), or None for the identity (C = U diag(s))
    s: np.ndarray          # (r,)
    p: int                 # 1 primal, 2 kernel
    solver: str
    gamma: float | None
    rows: np.ndarray | None = None  # linear/primal with n < d: the inputs X, V = X'U/s never formed

    @property
    def n(self) -> int:
        return self.C.shape[0]

    def ut(self, E: np.ndarray) -> np.ndarray:
        """``U'E = diag(1/s) V' Phi' E``, ``(r, q)`` for ``E (n, q)``."""
        out = self.C.T @ E
        if self.P is not None:
            out = self.P.T @ out
        if self.V is not None:
            out = self.V.T @ out
        return out / self.s[:, None]

    def embed_train(self, B: np.ndarray) -> np.ndarray:
        """``Z = U S^p B = Phi V S^{p-1} B``, ``(n, k)``."""
        W = (self.s ** (self.p - 1))[:, None] * B
        if self.V is not None:
            W = self.V @ W
        if self.P is not None:
            W = self.P @ W
        return self.C @ W

    def projection(self, B: np.ndarray) -> np.ndarray:
        """``P`` with ``Z(x) = phi(x) P`` (``V S^{p-1} B``), folded into the Nystroem/exact map.
        With ``rows = X`` (``V = X'U/s``, ``C = U S``) it is ``X' C S^{p-3} B``, ``O(n d k)``."""
        W = (self.s ** (self.p - 1))[:, None] * B
        if self.rows is not None:
            return self.rows.T @ (self.C @ (W / (self.s ** 2)[:, None]))
        if self.V is not None:
            W = self.V @ W
        if self.fmap.kind == "kernel":
            W = self.fmap.proj @ W
        return W


def _gram_spectrum(Phi: np.ndarray, rtol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """``(U (n, r), s (r,))`` of the thin SVD ``Phi = U diag(s) V'`` from the eigen-decomposition
    of ``Phi Phi'`` (``O(n^2 m + n^3)``), descending, singular values below ``1e-6 s_max`` dropped."""
    n = Phi.shape[0]
    K = Phi @ Phi.T
    with kern.lapack_threads(n):
        w, U = linalg.eigh((K + K.T) * 0.5, check_finite=False)
    w, U = w[::-1], U[:, ::-1]
    keep = w > rtol * max(float(w[0]), 1e-300)
    return U[:, keep], np.sqrt(w[keep])


def _spectrum(C: np.ndarray, P: np.ndarray | None, rtol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """``(V (m, r), s (r,))`` of ``Phi = C P`` from the smaller Gram matrix: ``Phi'Phi`` when
    ``m <= n`` (``O(n m^2)``), else ``Phi Phi'`` (``O(n^2 m)``, then ``V = Phi'U/s``). Singular
    values below ``1e-6 s_max`` (round-off of the Gram matrix) are dropped."""
    n = C.shape[0]
    m = C.shape[1] if P is None else P.shape[1]
    if m <= n:
        G = C.T @ C
        if P is not None:
            G = P.T @ G @ P
        with kern.lapack_threads(m):
            w, V = linalg.eigh((G + G.T) * 0.5, check_finite=False)
        w, V = w[::-1], V[:, ::-1]
        keep = w > rtol * max(float(w[0]), 1e-300)
        return V[:, keep], np.sqrt(w[keep])
    Phi = C if P is None else C @ P
    U, s = _gram_spectrum(Phi, rtol)
    return (Phi.T @ U) / s, s


def map_new(fmap: kern.FeatureMap, P: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``Z = phi(X) P`` for a projection from :meth:`_Basis.projection`."""
    if fmap.kind == "kernel":
        return fmap.kernel_to_centers(X) @ P
    return fmap.transform(X) @ P


def resolve_solver(*, solver: str, kernel: str, n: int, d: int, n_landmarks: int,
                   max_memory_gb: float, owner: str) -> str:
    """The solver actually used; raises when ``"exact"`` would exceed ``max_memory_gb``."""
    kern.check_choice(solver, kern.SOLVERS, f"{owner}: solver")
    kern.check_choice(kernel, TCA_KERNELS, f"{owner}: kernel")
    if max_memory_gb is None or not (float(max_memory_gb) > 0):
        raise ConfigError(f"{owner}: max_memory_gb={max_memory_gb!r} must be a positive number of GiB")
    base_kernel = "linear" if kernel == "primal" else kernel
    if kernel == "primal" and solver in ("nystroem", "rff"):
        raise ConfigError(f"{owner}: kernel='primal' is a linear map of the inputs and needs no "
                          f"approximation; use solver='exact' (or kernel='linear'/'rbf' with solver={solver!r})")
    if solver == "rff" and kernel != "rbf":
        raise ConfigError(f"{owner}: solver='rff' (random Fourier features) approximates the rbf kernel "
                          f"only; use solver='nystroem' for kernel={kernel!r}")
    need = kern.estimate_memory_gb(n, d, kernel=base_kernel, solver="exact")
    if solver == "auto":
        too_big = need > max_memory_gb or (kernel == "rbf" and n > AUTO_EXACT_RBF_MAX_SAMPLES)
        if too_big and kernel != "primal":
            return "nystroem"
        solver = "exact"
    if solver == "exact" and need > max_memory_gb:
        hint = (" The primal solver only needs the data and its SVD; reduce the number of features "
                "(e.g. PCA) first." if kernel == "primal" else
                f" Use solver='nystroem' (n_landmarks={n_landmarks} needs about "
                f"{kern.estimate_memory_gb(n, d, kernel=base_kernel, solver='nystroem', n_landmarks=n_landmarks):.2f}"
                " GiB) or solver='auto', or raise max_memory_gb.")
        raise ConfigError(f"{owner}: the exact {kernel}-kernel path on {n} samples x {d} features needs "
                          f"about {need:.1f} GiB, more than max_memory_gb={max_memory_gb}.{hint}")
    return solver


def build_basis(X: np.ndarray, *, kernel: str, gamma: float | None, solver: str, n_landmarks: int,
                max_memory_gb: float, random_state: Any, owner: str) -> _Basis:
    """Feature map and thin SVD of ``X`` (``(n, d)``, source rows then target rows)."""
    n, d = X.shape
    solver = resolve_solver(solver=solver, kernel=kernel, n=n, d=d, n_landmarks=n_landmarks,
                            max_memory_gb=max_memory_gb, owner=owner)
    if solver in ("nystroem", "rff"):
        need = kern.estimate_memory_gb(n, d, kernel=kernel, solver=solver, n_landmarks=n_landmarks)
        if need > max_memory_gb:
            raise ConfigError(f"{owner}: solver={solver!r} with n_landmarks={n_landmarks} on {n} samples "
                              f"needs about {need:.1f} GiB, more than max_memory_gb={max_memory_gb}; "
                              "lower n_landmarks or raise max_memory_gb")
    g = kern.resolve_gamma(gamma, X, random_state) if kernel == "rbf" else None
    if kernel in ("primal", "linear") and solver == "exact":
        p = 1 if kernel == "primal" else 2
        if d > n:  # dual form: U, s from XX' (n x n); V = X'U/s (d x r) is never formed
            U, s = _gram_spectrum(X)
            return _Basis(kern.FeatureMap("identity"), U * s, None, None, s, p, solver, None, rows=X)
        V, s = _spectrum(X, None)
        return _Basis(kern.FeatureMap("identity"), X, None, V, s, p, solver, None)
    if solver == "exact":  # rbf, all samples as centres: Phi = Q w^{1/2}, V = I
        Q, w = kern.exact_kernel_eig(kern.kernel_matrix(X, kernel="rbf", gamma=g))
        s = np.sqrt(w)
        fmap = kern.FeatureMap("kernel", kernel="rbf", gamma=g, centers=X, proj=Q / s)
        return _Basis(fmap, Q * s, None, np.eye(len(w)), s, 2, solver, g)
    if solver == "nystroem":
        fmap = kern.nystroem_map(X, kernel=kernel, gamma=g if g is not None else 1.0,
                                 n_landmarks=n_landmarks, random_state=random_state)
        C, P = fmap.kernel_to_centers(X), fmap.proj
    else:
        fmap = kern.random_fourier_map(d, gamma=g, n_components=n_landmarks, random_state=random_state)
        C, P = fmap.transform(X), None
    V, s = _spectrum(C, P)
    return _Basis(fmap, C, P, V, s, 2, solver, g)


def mmd_design(ns: int, nt: int, ys: np.ndarray | None = None, yt: np.ndarray | None = None,
               n_classes: int = 0, *, mu: float = 0.0, weighted: bool = False,
               marginal_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Low-rank MMD matrix ``M = E diag(w) E'`` (``E (n, q)``, ``w (q,)``) of JDA/BDA.

    Column 0 is the marginal ``e_0 = [1/n_s; -1/n_t]`` with weight ``(1 - mu) * marginal_scale``
    (JDA multiplies ``M_0`` by ``C``); column ``c`` is ``e_c = [1/n_s^c on source class c;
    -alpha_c/n_t^c on target rows pseudo-labelled c]`` with weight ``mu`` (``alpha_c = P_t(c)/P_s(c)``
    when ``weighted`` (W-BDA), else 1; classes absent from the pseudo-labels keep their source part
    only, as in the reference code). Without pseudo-labels only ``e_0`` is used. ``ys``/``yt`` are
    class indices ``0..C-1``.
    """
    n = ns + nt
    cols = [np.concatenate([np.full(ns, 1.0 / ns), np.full(nt, -1.0 / nt)])]
    weights = [(1.0 - mu) * marginal_scale if yt is not None else 1.0]
    if yt is not None and mu > 0:
        for c in range(n_classes):
            e = np.zeros(n)
            src = ys == c
            tgt = yt == c
            n_sc, n_tc = int(src.sum()), int(tgt.sum())
            if n_sc:
                e[:ns][src] = 1.0 / n_sc
            if n_tc:
                alpha = (n_tc / nt) / (n_sc / ns) if (weighted and n_sc) else 1.0
                e[ns:][tgt] = -alpha / n_tc
            cols.append(e)
            weights.append(mu)
    E = np.stack(cols, axis=1)
    w = np.asarray(weights, dtype=np.float64)
    keep = w > 0
    return E[:, keep], w[keep]


def solve_embedding(basis: _Basis, E: np.ndarray, w: np.ndarray, reg: float, k: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(B (r, k), phi (k,))`` of ``min tr(Z'MZ) + reg tr(A'A) s.t. Z'HZ = I`` on ``basis``.

    ``M = E diag(w) E' / ||E diag(w) E'||_F`` (the Frobenius normalisation of the reference code).
    Each column of ``B`` has unit norm, which is the unit norm of the component's expansion
    coefficients (``A = U B`` with orthonormal ``U``; primal: ``W = V B``) -- the convention of
    ``scipy.linalg.eig`` in the TCA/JDA/BDA reference code, under which the embedding's scale along
    component ``i`` grows as its eigenvalue ``phi_i`` shrinks, so the best-aligned components weigh
    most in the 1-NN distances. (Rescaling to ``Z'HZ = I`` instead, the constraint read literally,
    gives every component the same weight; on Office-Caltech with TCA that costs about 3 points.)
    """
    if not (np.isfinite(reg) and reg > 0):
        raise ConfigError(f"the regulariser must be a positive number, got {reg!r}")
    sp = basis.s ** basis.p
    n, r = basis.n, len(sp)
    Ew = E * np.sqrt(w)
    fro = float(np.linalg.norm(Ew.T @ Ew))
    UE = basis.ut(np.hstack([Ew, np.ones((n, 1))]))      # (r, q + 1): U'E and U'1
    UE *= sp[:, None]
    u1 = UE[:, -1]                                       # S^p U'1
    UE = UE[:, :-1]
    if r >= kern.STRUCTURED_EIG_MIN_ORDER:  # A = reg I + G G', Bm = diag - rank one: Lanczos
        phi, B = kern.generalized_eigh_smallest_structured(reg, UE / np.sqrt(max(fro, 1e-300)), sp * sp,
                                                           u1 / np.sqrt(n), k, norm="unit")
        return B, phi
    A = (UE @ UE.T) / max(fro, 1e-300)
    A[np.diag_indices(r)] += reg
    Bm = np.diag(sp * sp) - np.outer(u1, u1) / n
    phi, B = kern.generalized_eigh_smallest(A, Bm, k, norm="unit")
    return B, phi


def check_n_components(k: Any, r: int, owner: str) -> int:
    """``k`` as an int in ``[1, r]`` (clipped to the rank ``r`` with a warning)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"{owner}: n_components={k!r} must be a positive integer")
    if k > r:
        warnings.warn(f"{owner}: n_components={k} exceeds the rank of the data ({r}); using {r}",
                      UserWarning, stacklevel=3)
        return r
    return int(k)


class _SubspaceEmbedding(DAClassifier):
    """Shared fitted state and target mapping of TCA and JDA/BDA (``normalize``, feature map and
    projection ``projection_``); subclasses fill them in ``_adapt``."""

    def _prep(self, X: np.ndarray) -> np.ndarray:
        return kern.l2_normalize_rows(X) if self.normalize else X

    def _embed(self, basis: _Basis, B: np.ndarray) -> np.ndarray:
        Z = basis.embed_train(B)
        return kern.l2_normalize_rows(Z) if self.normalize else Z

    def _store(self, basis: _Basis, B: np.ndarray) -> None:
        self.feature_map_ = basis.fmap
        self.projection_ = basis.projection(B)
        self.solver_ = basis.solver
        self.gamma_ = basis.gamma
        self.rank_ = len(basis.s)

    def _transform_target(self, X: np.ndarray) -> np.ndarray:
        Z = map_new(self.feature_map_, self.projection_, self._prep(X))
        return kern.l2_normalize_rows(Z) if self.normalize else Z

    def transform(self, X: Any) -> np.ndarray:
        """Embedding ``(n, n_components)`` of samples of either domain (the learned components)."""
        X = self._check_predict_input(X)
        with kern.fit_threads(_num_samples(X)):
            return self._transform_target(X)

    def _classifier(self, ns: int, nt: int) -> Any:
        return kern.pseudo_label_classifier(self.estimator, ns, nt, random_state=self.random_state)

    def fit(self, X: Any, y: Any = None, sample_domain: Any = None) -> _SubspaceEmbedding:
        """Learn the embedding from source ``(X, y)`` and target ``X`` (``sample_domain < 0`` or
        ``y == -1``), then train ``estimator`` on the source embedding."""
        Xs, ys, Xt = split_domains(X, y, sample_domain, name=f"{type(self).__name__}.fit")
        with kern.fit_threads(len(Xs) + len(Xt)):
            self.classes_ = np.unique(ys)
            self.n_features_in_ = Xs.shape[1]
            Zs, _ = self._adapt(Xs, ys, Xt)
            self.estimator_ = self._classifier(len(Xs), len(Xt)).fit(Zs, ys)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Labels of target samples, ``(n,)``."""
        with kern.fit_threads(_num_samples(X)):
            return super().predict(X)

    def decision_scores(self, X: Any) -> np.ndarray:
        """Classifier scores of target samples, ``(n, n_classes)``."""
        with kern.fit_threads(_num_samples(X)):
            return super().decision_scores(X)


@SHALLOW.register("tca", description="TCA: transfer components that minimise the MMD (Pan et al. 2011)")
class TCA(_SubspaceEmbedding):
    """Transfer Component Analysis (Pan et al., IEEE TNN 2011) + a classifier on the components.

    Objective ``min_W tr(W'KMKW) + mu tr(W'W)  s.t.  W'KHKW = I`` (module docstring); the source
    embedding trains ``estimator`` (default 1-NN, the JDA paper's protocol), which labels the target
    embedding. ``predict(X)`` maps target samples with the learned components.

    Parameters (keyword-only): ``n_components`` k (default 30, the reference code's); ``mu`` the
    trade-off/regulariser (default 1); ``kernel`` ``"linear"`` | ``"rbf"`` | ``"primal"``; ``gamma``
    rbf bandwidth (``None``: median heuristic); ``solver`` ``"auto"`` | ``"exact"`` | ``"nystroem"``
    | ``"rff"``; ``n_landmarks`` landmarks / random features of the approximate paths;
    ``max_memory_gb`` memory limit of the exact path; ``normalize`` unit-L2 rows before and after
    the embedding; ``estimator`` classifier name or estimator; ``random_state`` seeds landmarks,
    random features and the median heuristic's subsample.

    Fitted: ``projection_``, ``feature_map_``, ``solver_``, ``gamma_``, ``rank_``,
    ``n_components_``, ``eigenvalues_``, ``estimator_``, ``classes_``.
    """

    def __init__(self, *, n_components: int = 30, mu: float = 1.0, kernel: str = "linear",
                 gamma: float | None = None, solver: str = "auto", n_landmarks: int = 1000,
                 max_memory_gb: float = 4.0, normalize: bool = True, estimator: Any = "1nn",
                 random_state: int | None = 0) -> None:
        self.n_components = n_components
        self.mu = mu
        self.kernel = kernel
        self.gamma = gamma
        self.solver = solver
        self.n_landmarks = n_landmarks
        self.max_memory_gb = max_memory_gb
        self.normalize = normalize
        self.estimator = estimator
        self.random_state = random_state

    def _adapt(self, Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = self._prep(np.vstack([Xs, Xt]))
        basis = build_basis(X, kernel=self.kernel, gamma=self.gamma, solver=self.solver,
                            n_landmarks=self.n_landmarks, max_memory_gb=self.max_memory_gb,
                            random_state=self.random_state, owner="TCA")
        k = check_n_components(self.n_components, len(basis.s), "TCA")
        E, w = mmd_design(len(Xs), len(Xt))
        B, phi = solve_embedding(basis, E, w, float(self.mu), k)
        self._store(basis, B)
        self.n_components_ = k
        self.eigenvalues_ = phi
        Z = self._embed(basis, B)
        return Z[: len(Xs)], Z[len(Xs):]
