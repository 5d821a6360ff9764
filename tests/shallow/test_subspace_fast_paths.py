"""The exact short cuts of TCA/JDA/BDA for wide and large problems give the dense results:
the dual (Gram) basis when n < d, and the structured Lanczos eigen-solve of large ranks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from transferkit.shallow import _kernels as kern
from transferkit.shallow.jda import BDA, JDA
from transferkit.shallow.tca import TCA, build_basis, mmd_design, solve_embedding


def _same_up_to_sign(A, B, rtol=1e-7):
    scale = np.abs(B).max()
    for j in range(B.shape[1]):
        sign = np.sign(A[:, j] @ B[:, j]) or 1.0
        np.testing.assert_allclose(A[:, j], sign * B[:, j], atol=rtol * scale)


def test_structured_solver_equals_dense():
    rng = np.random.default_rng(0)
    r, q, k = 120, 3, 12
    G = rng.normal(size=(r, q)) * 2.0
    b = np.sort(rng.gamma(0.5, size=r))[::-1] ** 2 * 10
    u = rng.normal(size=r) * np.sqrt(b) / 20
    reg = 0.7
    A = G @ G.T + reg * np.eye(r)
    Bm = np.diag(b) - np.outer(u, u)
    for norm in ("unit", "B"):
        phi_d, V_d = kern.generalized_eigh_smallest(A, Bm, k, norm=norm)
        phi_s, V_s = kern.generalized_eigh_smallest_structured(reg, G, b, u, k, norm=norm)
        np.testing.assert_allclose(phi_s, phi_d, rtol=1e-9)
        _same_up_to_sign(V_s, V_d, rtol=1e-7)
    # the eigen-equation itself, and the constraint
    phi, V = kern.generalized_eigh_smallest_structured(reg, G, b, u, k, norm="B")
    np.testing.assert_allclose(A @ V, (Bm @ V) * phi, atol=1e-8 * np.abs(A @ V).max())
    np.testing.assert_allclose(V.T @ Bm @ V, np.eye(k), atol=1e-8)
    # k > r / 4 takes the dense solver
    phi_d, _ = kern.generalized_eigh_smallest(A, Bm, 40)
    phi_s, _ = kern.generalized_eigh_smallest_structured(reg, G, b, u, 40)
    np.testing.assert_allclose(phi_s, phi_d, rtol=1e-12)


def _naive_embedding(X, E, w, lam, k, kernel):
    """The n x n (or d x d, primal) formulation of the reference code: scipy.linalg.eig on
    (KMK + lam I, KHK); returns the training embedding and the coefficient matrix."""
    n = len(X)
    M = (E * w) @ E.T
    M /= np.linalg.norm(M)
    H = np.eye(n) - 1.0 / n
    if kernel == "primal":
        K = X.T
        a, b = K @ M @ K.T + lam * np.eye(K.shape[0]), K @ H @ K.T
    else:
        K = X @ X.T
        a, b = K @ M @ K + lam * np.eye(n), K @ H @ K
    vals, vecs = linalg.eig(a, b)
    vals = vals.real
    vals[~np.isfinite(vals) | (vals <= 0)] = np.inf
    order = np.argsort(vals)
    A = vecs[:, order[:k]].real
    A /= np.linalg.norm(A, axis=0)
    return (A.T @ K).T, A


@pytest.mark.parametrize("kernel", ["linear", "primal"])
def test_dual_basis_for_wide_data_equals_naive(kernel):
    rng = np.random.default_rng(1)
    n, d = 40, 70                                   # fewer samples than features
    X = kern.l2_normalize_rows(rng.poisson(0.4, size=(n, d)) + 0.01 * rng.random((n, d)))
    ns = 22
    ys = rng.integers(0, 2, ns)
    yt = rng.integers(0, 2, n - ns)
    basis = build_basis(X, kernel=kernel, gamma=None, solver="exact", n_landmarks=10,
                        max_memory_gb=1.0, random_state=0, owner="test")
    assert basis.V is None and basis.rows is X
    Xnew = kern.l2_normalize_rows(rng.poisson(0.4, size=(9, d)) + 0.0)
    for E, w in (mmd_design(ns, n - ns), mmd_design(ns, n - ns, ys, yt, 2, mu=0.5, marginal_scale=2)):
        B, _ = solve_embedding(basis, E, w, 1.0, 4)
        Z, Znew = basis.embed_train(B), Xnew @ basis.projection(B)
        Zref, A = _naive_embedding(X, E, w, 1.0, 4, kernel)
        Znew_ref = Xnew @ A if kernel == "primal" else (Xnew @ X.T) @ A
        for j in range(4):
            sign = np.sign(Z[:, j] @ Zref[:, j])
            np.testing.assert_allclose(Z[:, j], sign * Zref[:, j], rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(Znew[:, j], sign * Znew_ref[:, j], rtol=1e-6, atol=1e-8)


def _wide_blobs(seed=0, n=70, d=150):
    rng = np.random.default_rng(seed)
    centers = rng.gamma(0.3, size=(2, d))
    ys, yt = rng.integers(0, 2, n), rng.integers(0, 2, n)
    xs = rng.poisson(centers[ys] * 2)
    xt = rng.poisson(centers[yt] * 2 * rng.uniform(0.5, 1.5, size=d))
    X = np.vstack([xs, xt]).astype(float)
    y = np.r_[ys, np.full(n, -1)]
    return X, y, xt.astype(float), yt


@pytest.mark.parametrize("est", [TCA(n_components=6), TCA(n_components=6, kernel="primal", mu=0.1),
                                 JDA(n_components=6, n_iter=4), BDA(n_components=6, n_iter=3, mu=0.3)],
                         ids=["tca", "tca-primal", "jda", "bda"])
def test_structured_path_gives_the_dense_fit(est, monkeypatch):
    """Fitted embeddings with the Lanczos solver (threshold lowered to the test's rank) equal
    those of the dense solver; n < d, so the dual basis is used in both."""
    X, y, xt, yt = _wide_blobs()
    monkeypatch.setattr(kern, "STRUCTURED_EIG_MIN_ORDER", 10**9)
    dense = est.__class__(**est.get_params()).fit(X, y)
    monkeypatch.setattr(kern, "STRUCTURED_EIG_MIN_ORDER", 16)
    lanczos = est.__class__(**est.get_params()).fit(X, y)
    assert dense.rank_ >= 16 and dense.rank_ == lanczos.rank_
    np.testing.assert_allclose(lanczos.eigenvalues_, dense.eigenvalues_, rtol=1e-8)
    _same_up_to_sign(lanczos.transform(xt), dense.transform(xt), rtol=1e-6)
    np.testing.assert_array_equal(lanczos.predict(xt), dense.predict(xt))
    if hasattr(dense, "n_iter_"):
        assert lanczos.n_iter_ == dense.n_iter_
