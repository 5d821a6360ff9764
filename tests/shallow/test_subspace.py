"""Subspace / kernel methods (SA, TCA, JDA, BDA, GFK, MEDA) and their shared linear algebra.

Small synthetic shifted blobs; the closed forms are checked against naive formulations; two
small real Office-Caltech tasks are checked against the published figures when the data exist.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from transferkit.core.errors import ConfigError, DataError
from transferkit.core.registries import SHALLOW
from transferkit.shallow import _kernels as kern
from transferkit.shallow.gfk import GFK, gfk_factor, pca_basis
from transferkit.shallow.jda import BDA, JDA
from transferkit.shallow.meda import MEDA, knn_cosine_laplacian
from transferkit.shallow.sa import SubspaceAlignment
from transferkit.shallow.tca import TCA, build_basis, mmd_design, solve_embedding

ALL = {
    "sa": {"n_components": 4},
    "tca": {"n_components": 4},
    "jda": {"n_components": 4, "n_iter": 3},
    "bda": {"n_components": 4, "n_iter": 3, "mu": "auto"},
    "gfk": {"n_components": 3},
    "meda": {"n_components": 3, "n_iter": 3},
}


def _blobs(seed=0, n=90, d=8, k=3, shift=2.0, rotate=0.5):
    """Source blobs and a rotated, shifted, rescaled target; each domain z-scored."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(k, d))
    ys = rng.integers(0, k, n)
    yt = rng.integers(0, k, n)
    xs = centers[ys] + rng.normal(size=(n, d))
    R = np.eye(d)
    c, s = np.cos(rotate), np.sin(rotate)
    R[:2, :2] = [[c, -s], [s, c]]
    xt = (centers[yt] + rng.normal(size=(n, d))) @ R * 1.5 + shift
    X = np.vstack([xs, xt])
    y = np.r_[ys, np.full(n, -1)]
    sd = np.r_[np.ones(n, int), -np.ones(n, int)]
    return X, y, sd, xt, yt


def _zscored(X, sd):
    X = X.copy()
    for m in (sd > 0, sd < 0):
        X[m] = (X[m] - X[m].mean(0)) / X[m].std(0)
    return X


def _acc(est, xt, yt):
    return float(np.mean(est.predict(xt) == yt))


@pytest.mark.parametrize("name", sorted(ALL))
def test_runs_and_adapts(name):
    X, y, sd, _xt, yt = _blobs()
    Xz = _zscored(X, sd)
    xtz = Xz[sd < 0]
    base = SHALLOW.create("1nn").fit(Xz, y, sample_domain=sd)
    est = SHALLOW.create(name, ALL[name]).fit(Xz, y, sample_domain=sd)
    acc = _acc(est, xtz, yt)
    assert acc >= _acc(base, xtz, yt) - 0.1, name
    assert acc > 0.6, name
    assert est.predict(xtz[:5]).shape == (5,)
    assert set(np.unique(est.predict(xtz))) <= {0, 1, 2}


def test_tca_helps_under_mean_shift():
    X, y, sd, xt, yt = _blobs(shift=4.0, rotate=0.0)
    base = _acc(SHALLOW.create("1nn").fit(X, y, sample_domain=sd), xt, yt)
    for est in (TCA(n_components=4), JDA(n_components=4, n_iter=3), TCA(n_components=4, kernel="primal")):
        assert _acc(est.fit(X, y, sample_domain=sd), xt, yt) >= max(base + 0.1, 0.85)


@pytest.mark.parametrize("name", sorted(ALL))
def test_clone_and_determinism(name):
    X, y, sd, xt, _yt = _blobs(seed=1)
    est = SHALLOW.create(name, ALL[name])
    c = clone(est)
    assert c.get_params() == est.get_params()
    a = est.fit(X, y, sample_domain=sd).predict(xt)
    b = c.fit(X, y, sample_domain=sd).predict(xt)
    np.testing.assert_array_equal(a, b)


def test_same_random_state_same_result_on_random_paths():
    X, y, sd, xt, _yt = _blobs(seed=2, n=150)
    for params in ({"kernel": "rbf", "solver": "nystroem", "n_landmarks": 40},
                   {"kernel": "rbf", "solver": "rff", "n_landmarks": 60}):
        za = TCA(n_components=3, random_state=5, **params).fit(X, y, sample_domain=sd).transform(xt)
        zb = TCA(n_components=3, random_state=5, **params).fit(X, y, sample_domain=sd).transform(xt)
        np.testing.assert_array_equal(za, zb)


@pytest.mark.parametrize("name", ["tca", "jda", "meda", "sa"])
def test_pipeline_and_grid_search(name):
    X, y, sd, xt, _yt = _blobs(seed=3)
    pipe = Pipeline([("scale", StandardScaler()), ("da", SHALLOW.create(name, ALL[name]))])
    pipe.fit(X, y, da__sample_domain=sd)
    assert pipe.predict(xt).shape == (len(xt),)
    grid = {"tca": {"mu": [0.1, 1.0]}, "jda": {"lam": [0.1, 1.0]}, "meda": {"eta": [0.1, 1.0]},
            "sa": {"n_components": [2, 3]}}[name]
    gs = GridSearchCV(SHALLOW.create(name, ALL[name]), grid, cv=KFold(2, shuffle=True, random_state=0))
    gs.fit(X, y, sample_domain=sd)
    assert gs.best_params_ in [dict(zip(grid, [v])) for v in next(iter(grid.values()))]


@pytest.mark.parametrize("name", sorted(ALL))
def test_bad_input(name):
    X, y, sd, xt, _yt = _blobs(seed=4)
    est = SHALLOW.create(name, ALL[name])
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        clone(est).fit(Xn, y, sample_domain=sd)
    with pytest.raises(DataError, match="no target"):
        clone(est).fit(X[sd > 0], y[sd > 0], sample_domain=sd[sd > 0])
    y1 = y.copy()
    y1[sd > 0] = 0
    with pytest.raises(DataError, match="single class"):
        clone(est).fit(X, y1, sample_domain=sd)
    est.fit(X, y, sample_domain=sd)
    with pytest.raises(DataError, match="features"):
        est.predict(xt[:, :-1])
    with pytest.raises(DataError, match="NaN"):
        est.predict(Xn[:5])


def test_bad_parameters_are_named():
    X, y, sd, _xt, _yt = _blobs()
    with pytest.raises(ConfigError, match="kernel"):
        TCA(kernel="poly").fit(X, y, sample_domain=sd)
    with pytest.raises(ConfigError, match="solver"):
        JDA(solver="fast").fit(X, y, sample_domain=sd)
    with pytest.raises(ConfigError, match="mu"):
        BDA(mu=1.5, n_iter=2).fit(X, y, sample_domain=sd)
    with pytest.raises(ConfigError, match="rff"):
        TCA(kernel="linear", solver="rff").fit(X, y, sample_domain=sd)
    with pytest.raises(ConfigError, match="gamma"):
        TCA(kernel="rbf", gamma=-1.0).fit(X, y, sample_domain=sd)
    with pytest.raises(ConfigError, match="n_components"):
        TCA(n_components=0).fit(X, y, sample_domain=sd)
    with pytest.raises(ConfigError, match="eta"):
        MEDA(eta=0.0).fit(X, y, sample_domain=sd)
    with pytest.raises(DataError, match="samples per domain"):
        GFK(n_components=6).fit(X[:95], y[:95], sample_domain=sd[:95])
    with pytest.raises(ConfigError, match="number of features"):
        SubspaceAlignment(n_components=20).fit(X, y, sample_domain=sd)
    with pytest.warns(UserWarning, match="exceeds the rank"):
        TCA(n_components=50, kernel="primal").fit(X, y, sample_domain=sd)


def test_exact_path_refuses_above_memory_limit_and_auto_switches():
    X, y, sd, _xt, _yt = _blobs(n=150)
    with pytest.raises(ConfigError, match="solver='nystroem'"):
        TCA(kernel="rbf", solver="exact", max_memory_gb=1e-4).fit(X, y, sample_domain=sd)
    with pytest.raises(ConfigError, match="solver='nystroem'"):
        JDA(kernel="linear", solver="exact", max_memory_gb=1e-6).fit(X, y, sample_domain=sd)
    with pytest.raises(ConfigError, match="max_memory_gb"):
        MEDA(max_memory_gb=1e-4).fit(X, y, sample_domain=sd)
    est = TCA(kernel="rbf", solver="auto", max_memory_gb=1e-3, n_landmarks=50).fit(X, y, sample_domain=sd)
    assert est.solver_ == "nystroem"
    assert TCA(kernel="rbf").fit(X, y, sample_domain=sd).solver_ == "exact"
    # the estimate grows quadratically on the exact rbf path and linearly with Nystroem
    big = kern.estimate_memory_gb(100_000, 100, kernel="rbf", solver="exact")
    small = kern.estimate_memory_gb(100_000, 100, kernel="rbf", solver="nystroem", n_landmarks=1000)
    assert big > 100 and small < 4


def test_nystroem_close_to_exact():
    X, y, sd, xt, yt = _blobs(seed=5, n=300, shift=3.0, rotate=0.3)
    exact = TCA(n_components=5, kernel="rbf", solver="exact").fit(X, y, sample_domain=sd)
    full = TCA(n_components=5, kernel="rbf", solver="nystroem", n_landmarks=600).fit(X, y, sample_domain=sd)
    # all samples as landmarks: the same embedding up to the sign of each component
    ze, zf = exact.transform(xt), full.transform(xt)
    for j in range(5):
        assert abs(np.corrcoef(ze[:, j], zf[:, j])[0, 1]) > 0.999
    approx = TCA(n_components=5, kernel="rbf", solver="nystroem", n_landmarks=150).fit(X, y, sample_domain=sd)
    pe, pa = exact.predict(xt), approx.predict(xt)
    assert np.mean(pe == pa) >= 0.9
    assert abs(np.mean(pe == yt) - np.mean(pa == yt)) <= 0.05
    jda_e = JDA(n_components=5, n_iter=3, kernel="rbf", solver="exact").fit(X, y, sample_domain=sd)
    jda_a = JDA(n_components=5, n_iter=3, kernel="rbf", solver="nystroem", n_landmarks=150).fit(X, y, sample_domain=sd)
    assert np.mean(jda_e.predict(xt) == jda_a.predict(xt)) >= 0.9


def _naive_embedding(Xn, E, w, lam, k, kernel):
    """The n x n formulation of the reference code: scipy.linalg.eig on (KMK + lam I, KHK)."""
    n = len(Xn)
    M = (E * w) @ E.T
    M /= np.linalg.norm(M)
    H = np.eye(n) - 1.0 / n
    if kernel == "primal":
        K = Xn.T
        a, b = K @ M @ K.T + lam * np.eye(K.shape[0]), K @ H @ K.T
    else:
        K = Xn @ Xn.T if kernel == "linear" else kern.kernel_matrix(Xn, kernel="rbf", gamma=0.7)
        a, b = K @ M @ K + lam * np.eye(n), K @ H @ K
    vals, vecs = linalg.eig(a, b)
    order = np.argsort(vals.real)
    A = vecs[:, order[:k]].real
    A /= np.linalg.norm(A, axis=0)
    return (A.T @ K).T


@pytest.mark.parametrize("kernel", ["linear", "primal", "rbf"])
def test_reduced_problem_equals_naive_formulation(kernel):
    rng = np.random.default_rng(0)
    Xn = kern.l2_normalize_rows(rng.normal(size=(60, 12)) + rng.normal(size=12))
    ns, nt = 35, 25
    ys = rng.integers(0, 3, ns)
    yt = rng.integers(0, 3, nt)
    for design in (mmd_design(ns, nt), mmd_design(ns, nt, ys, yt, 3, mu=0.5, marginal_scale=3)):
        E, w = design
        basis = build_basis(Xn, kernel=kernel, gamma=0.7, solver="exact", n_landmarks=10,
                            max_memory_gb=1.0, random_state=0, owner="test")
        B, _phi = solve_embedding(basis, E, w, 1.0, 4)
        Z = basis.embed_train(B)
        Zref = _naive_embedding(Xn, E, w, 1.0, 4, kernel)
        for j in range(4):  # same components up to sign, same scale
            sign = np.sign(Z[:, j] @ Zref[:, j])
            np.testing.assert_allclose(Z[:, j], sign * Zref[:, j], rtol=1e-6, atol=1e-8)


def test_mmd_design_matches_reference_matrices():
    ns, nt, C = 5, 4, 2
    ys = np.array([0, 0, 1, 1, 1])
    yt = np.array([1, 1, 1, 1])            # class 0 absent from the pseudo-labels
    E, w = mmd_design(ns, nt, ys, yt, C, mu=0.5, marginal_scale=C)
    M = (E * w) @ E.T
    e0 = np.r_[np.full(ns, 1 / ns), np.full(nt, -1 / nt)]
    e1 = np.r_[[0.5, 0.5, 0, 0, 0], np.zeros(nt)]                  # source part only
    e2 = np.r_[[0, 0, 1 / 3, 1 / 3, 1 / 3], np.full(nt, -1 / 4)]
    ref = 0.5 * C * np.outer(e0, e0) + 0.5 * (np.outer(e1, e1) + np.outer(e2, e2))
    np.testing.assert_allclose(M, ref)
    Ew, ww = mmd_design(ns, nt, ys, np.array([0, 1, 1, 1]), C, mu=1.0, weighted=True)
    assert len(ww) == C  # mu = 1: no marginal term
    np.testing.assert_allclose(Ew[ns:, 0], [-(0.25 / 0.4), 0, 0, 0])


def test_generalized_eigh_matches_dense_solver():
    rng = np.random.default_rng(1)
    G = rng.normal(size=(20, 3))
    A = G @ G.T + 0.5 * np.eye(20)
    F = rng.normal(size=(20, 20))
    B = F @ F.T
    B[:, 0] = B[0, :] = 0.0                 # singular B
    phi, V = kern.generalized_eigh_smallest(A, B, 5)
    vals = np.sort(linalg.eigvals(A, B).real)
    vals = vals[np.isfinite(vals) & (vals > 0)]
    np.testing.assert_allclose(phi, vals[:5], rtol=1e-8)
    np.testing.assert_allclose(np.linalg.norm(V, axis=0), 1.0)
    _, VB = kern.generalized_eigh_smallest(A, B, 5, norm="B")
    np.testing.assert_allclose(VB.T @ B @ VB, np.eye(5), atol=1e-8)


def test_kernels_and_helpers():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 5))
    D = kern.sq_dists(X)
    np.testing.assert_allclose(D, ((X[:, None] - X[None]) ** 2).sum(-1), atol=1e-10)
    g = kern.median_heuristic_gamma(X)
    assert np.isclose(g, 1.0 / (2 * np.median(D[np.triu_indices(40, 1)])))
    K = kern.kernel_matrix(X, kernel="rbf", gamma=g)
    H = np.eye(40) - 1 / 40
    np.testing.assert_allclose(kern.center_kernel(K), H @ K @ H, atol=1e-12)
    fm = kern.nystroem_map(X, kernel="rbf", gamma=g, n_landmarks=40)
    P = fm.transform(X)
    np.testing.assert_allclose(P @ P.T, K, atol=1e-6)
    rff = kern.random_fourier_map(5, gamma=g, n_components=20000, random_state=0).transform(X)
    assert np.abs(rff @ rff.T - K).max() < 0.05
    Zs, Zt = rng.normal(size=(50, 4)), rng.normal(size=(30, 4))
    idx = kern.nearest_neighbor_index(Zs, Zt, dtype=np.float64, block=7)
    np.testing.assert_array_equal(idx, kern.sq_dists(Zt, Zs).argmin(1))
    clf = kern.FastOneNN().fit(Zs, np.arange(50) % 3)
    np.testing.assert_array_equal(clf.predict(Zt), (np.arange(50) % 3)[idx])


def test_gfk_closed_form_equals_integral_along_the_geodesic():
    rng = np.random.default_rng(0)
    D, d = 30, 5
    Ps = linalg.qr(rng.normal(size=(D, d)), mode="economic")[0]
    Pt = linalg.qr(rng.normal(size=(D, d)), mode="economic")[0]
    # geodesic from span(Ps) to span(Pt) (Edelman, Arias & Smith 1998), integrated by Simpson's rule
    Hm = (np.eye(D) - Ps @ Ps.T) @ Pt @ np.linalg.inv(Ps.T @ Pt)
    Ut, tan, Vh = linalg.svd(Hm, full_matrices=False)
    th = np.arctan(tan)
    ts = np.linspace(0, 1, 401)
    G = np.zeros((D, D))
    for i, t in enumerate(ts):
        Phi = Ps @ Vh.T * np.cos(th * t) + Ut * np.sin(th * t)
        G += (1 if i in (0, len(ts) - 1) else (4 if i % 2 else 2)) * Phi @ Phi.T
    G /= 3 * (len(ts) - 1)
    F = gfk_factor(Ps, Pt)
    np.testing.assert_allclose(F @ F.T, G, atol=1e-9)
    # identical subspaces: G is the projection onto them
    F0 = gfk_factor(Ps, Ps @ linalg.qr(rng.normal(size=(d, d)))[0])
    np.testing.assert_allclose(F0 @ F0.T, Ps @ Ps.T, atol=1e-10)
    from sklearn.decomposition import PCA

    scales = 3.0 ** np.arange(7)
    for n in (100, 5):  # the X'X and the XX' paths, against scikit-learn's PCA
        Xp = rng.normal(size=(n, 7)) * scales
        B = pca_basis(Xp, 3)
        ref = PCA(3, svd_solver="full").fit(Xp).components_.T
        np.testing.assert_allclose(np.abs(B.T @ ref), np.eye(3), atol=1e-8)


def test_meda_woodbury_equals_direct_solve():
    X, y, sd, xt, _yt = _blobs(seed=6)
    Xz = _zscored(X, sd)
    est = MEDA(n_components=3, n_iter=1, mu=0.3).fit(Xz, y, sample_domain=sd)
    Z = est.centers_
    ns = int((sd > 0).sum())
    n, C = len(Z), 3
    K = kern.kernel_matrix(Z, kernel="rbf", gamma=est.gamma_)
    L = knn_cosine_laplacian(Z, 10).toarray()
    from sklearn.neighbors import KNeighborsClassifier

    y0 = KNeighborsClassifier(n_neighbors=1).fit(Z[:ns], y[:ns]).predict(Z[ns:])
    E, w = mmd_design(ns, n - ns, y[:ns], y0, C, mu=0.3, marginal_scale=C)
    M = (E * w) @ E.T
    M /= np.linalg.norm(M)
    Ed = np.diag(np.r_[np.ones(ns), np.zeros(n - ns)])
    Y = np.zeros((n, C))
    Y[np.arange(ns), y[:ns]] = 1
    beta = np.linalg.solve((Ed + 10.0 * M + 1.0 * L) @ K + 0.1 * np.eye(n), Y)
    np.testing.assert_allclose(est.coef_, beta, rtol=1e-6, atol=1e-8)
    # the graph is symmetric with self-loops and unit-diagonal normalised Laplacian
    np.testing.assert_allclose(L, L.T, atol=1e-12)
    assert est.decision_scores(xt).shape == (len(xt), 3)


def test_registered_with_descriptions():
    for name in ALL:
        entry = SHALLOW.entry(name)
        assert entry.description
        assert (entry.obj.__doc__ or "").strip()
    assert isinstance(SHALLOW.create("sa"), SubspaceAlignment)


# -- real data (a few seconds) -----------------------------------------------------------------
@pytest.fixture(scope="module")
def office():
    from transferkit.core.registries import DATASETS

    try:
        bench = DATASETS.create("office_caltech10_surf")
        bench.load_task("W-D")
    except DataError as exc:
        pytest.skip(f"Office-Caltech data not available: {exc}")
    return bench


@pytest.mark.parametrize("name,params,task,published", [
    ("tca", {}, "W-D", 91.1), ("tca", {}, "D-W", 87.5),
    ("jda", {}, "D-W", 89.49), ("meda", {}, "W-D", 88.5),
])
def test_office_caltech_small_tasks_match_published(office, name, params, task, published):
    """Published: TCA and MEDA rows of transferlearning's benchmark.md, JDA from Long et al.
    (2013), Table 1; paper defaults, no tuning."""
    t = office.load_task(task)
    X, y, sd = t.train.to_numpy()
    est = SHALLOW.create(name, params).fit(X, y, sample_domain=sd)
    acc = 100 * np.mean(est.predict(t.x_test) == t.y_test)
    assert acc >= published - 1.0, (name, task, acc, published)
