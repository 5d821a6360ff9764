"""KMM, KLIEP and the optimal-transport methods on tiny synthetic shifted data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from transferkit.core.errors import ConfigError, DataError
from transferkit.core.registries import SHALLOW
from transferkit.testing.data import shifted_blobs as _blobs
from transferkit.shallow._weighting import project_box_slab, solve_box_slab_qp
from transferkit.shallow.kliep import KLIEP
from transferkit.shallow.kmm import KMM, kmm_exact_memory_gb

# POT's class-regularised solver runs a fixed number of inner Sinkhorn iterations (200) and warns
# when they stop before its tolerance; the plan is still usable
pytestmark = pytest.mark.filterwarnings("ignore:Sinkhorn did not converge")

WEIGHTING = ["kmm", "kliep"]
OT = ["ot_emd", "ot_sinkhorn", "ot_class_reg"]
OT_PARAMS: dict = {"ot_emd": {}, "ot_sinkhorn": {}, "ot_class_reg": {}}


def _shifted_blobs(n, d, k, shift, seed):
    return _blobs(n=n, d=d, k=k, shift=shift, seed=seed, dtype=np.float64)


def covariate_shift(n_s: int = 160, n_t: int = 120, seed: int = 0):
    """1-d-ish covariate shift in 2-d: source ~ N(0, 1), target ~ N(1.5, 0.5^2) on the first axis;
    the label is the sign of a non-linear function, so the source-only fit is biased."""
    rng = np.random.default_rng(seed)
    xs = np.c_[rng.normal(0.0, 1.0, n_s), rng.normal(0.0, 1.0, n_s)]
    xt = np.c_[rng.normal(1.5, 0.5, n_t), rng.normal(0.0, 1.0, n_t)]

    def label(x):
        return (x[:, 1] > 0.6 * x[:, 0] ** 2 - 1.0).astype(int)

    return xs, label(xs), xt, label(xt)


def stack(xs, ys, xt, yt=None):
    X = np.vstack([xs, xt])
    y = np.concatenate([ys, np.full(len(xt), -1) if yt is None else yt])
    sd = np.r_[np.ones(len(xs), int), -np.ones(len(xt), int)]
    return X, y, sd


@pytest.fixture
def shifted():
    xs, ys, xt, yt = _shifted_blobs(n=120, d=4, k=3, shift=1.0, seed=0)
    X, y, sd = stack(xs, ys, xt)
    return X, y, sd, xt, yt


# ----------------------------------------------------------------------------------------------
# every method: fit/predict, clone, determinism, pipeline, grid search, bad input
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", WEIGHTING + OT)
def test_fit_predict_clone_determinism(name, shifted):
    X, y, sd, xt, yt = shifted
    est = SHALLOW.create(name, OT_PARAMS.get(name, {}))
    est.fit(X, y, sample_domain=sd)
    pred = est.predict(xt)
    assert pred.shape == yt.shape and set(np.unique(pred)) <= set(np.unique(y[sd >= 0]))
    assert (pred == yt).mean() > 0.6
    again = clone(est).fit(X, y, sample_domain=sd)
    np.testing.assert_array_equal(again.predict(xt), pred)
    assert again.get_params() == est.get_params()


@pytest.mark.parametrize("name", WEIGHTING + OT)
def test_ignores_target_labels(name, shifted):
    X, y, sd, xt, yt = shifted
    with_labels = y.copy()
    with_labels[sd < 0] = yt
    a = SHALLOW.create(name, OT_PARAMS.get(name, {})).fit(X, y, sample_domain=sd).predict(xt)
    b = SHALLOW.create(name, OT_PARAMS.get(name, {})).fit(X, with_labels, sample_domain=sd).predict(xt)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["kmm", "ot_emd"])
def test_pipeline_routes_sample_domain(name, shifted):
    X, y, sd, xt, yt = shifted
    pipe = Pipeline([("scale", StandardScaler()), ("da", SHALLOW.create(name))])
    pipe.fit(X, y, da__sample_domain=sd)
    assert pipe.predict(xt).shape == yt.shape


def test_grid_search_with_sample_domain_fit_param(shifted):
    """GridSearchCV passes sample_domain to fit; the score here is source accuracy on held-out
    source rows (a toy selection criterion: it never reads target labels)."""
    X, y, sd, _xt, _yt = shifted
    rng = np.random.default_rng(0)
    # one split: validation = a third of the source rows; training = the rest + all target rows
    fold = np.full(len(X), -1)
    src = np.flatnonzero(sd >= 0)
    fold[rng.choice(src, len(src) // 3, replace=False)] = 0
    gs = GridSearchCV(KMM(), {"B": [10.0, 1000.0]}, cv=PredefinedSplit(fold), error_score="raise")
    gs.fit(X, y, sample_domain=sd)
    assert gs.best_params_["B"] in (10.0, 1000.0)


@pytest.mark.parametrize("name", WEIGHTING + OT)
def test_bad_input(name, shifted):
    X, y, sd, xt, _yt = shifted
    est = SHALLOW.create(name, OT_PARAMS.get(name, {}))
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        clone(est).fit(bad, y, sample_domain=sd)
    with pytest.raises(DataError, match="no target"):
        clone(est).fit(X[sd >= 0], y[sd >= 0], sample_domain=sd[sd >= 0])
    one_class = np.where(sd >= 0, 0, -1)
    with pytest.raises(DataError, match="single class"):
        clone(est).fit(X, one_class, sample_domain=sd)
    fitted = clone(est).fit(X, y, sample_domain=sd)
    with pytest.raises(DataError, match="expecting 4 features"):
        fitted.predict(xt[:, :3])


@pytest.mark.parametrize("name, params, match", [
    ("kmm", {"kernel": "poly"}, "kernel"),
    ("kmm", {"solver": "qp"}, "solver"),
    ("kmm", {"gamma": -1.0}, "gamma"),
    ("kmm", {"B": 0.0}, "B="),
    ("kmm", {"estimator": "1nn"}, "sample_weight"),
    ("kliep", {"bandwidth_factors": []}, "bandwidth_factors"),
    ("kliep", {"cv": 1}, "cv"),
    ("ot_sinkhorn", {"reg_e": 0.0}, "reg_e"),
    ("ot_emd", {"norm": "l2"}, "norm"),
    ("ot_class_reg", {"penalty": "l2"}, "penalty"),
])
def test_bad_params(name, params, match, shifted):
    X, y, sd, _, _ = shifted
    with pytest.raises(ConfigError, match=match):
        SHALLOW.create(name, params).fit(X, y, sample_domain=sd)


# ----------------------------------------------------------------------------------------------
# importance weights
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("est", [KMM(), KMM(solver="nystroem", n_components=60), KMM(solver="rff", n_components=200),
                                 KLIEP()], ids=["kmm-exact", "kmm-nystroem", "kmm-rff", "kliep"])
def test_weights_are_sane(est):
    xs, ys, xt, _yt = covariate_shift()
    X, y, sd = stack(xs, ys, xt)
    est.fit(X, y, sample_domain=sd)
    w = est.weights_
    assert w.shape == (len(xs),) and np.isfinite(w).all() and (w >= 0).all()
    assert abs(w.mean() - 1.0) < 0.15
    # source points in the target's region (first axis near 1.5) weigh more than the others
    near = np.abs(xs[:, 0] - 1.5) < 0.5
    far = xs[:, 0] < -0.5
    assert w[near].mean() > 2.0 * w[far].mean()


def test_kmm_solver_paths_agree():
    xs, ys, xt, _yt = covariate_shift(seed=1)
    X, y, sd = stack(xs, ys, xt)
    exact = KMM(solver="exact").fit(X, y, sample_domain=sd)
    approx = KMM(solver="nystroem", n_components=150).fit(X, y, sample_domain=sd)
    assert exact.solver_ == "exact" and approx.solver_ == "nystroem"
    assert np.corrcoef(exact.weights_, approx.weights_)[0, 1] > 0.9
    assert KMM().fit(X, y, sample_domain=sd).solver_ == "exact"
    assert KMM(exact_max_samples=50).fit(X, y, sample_domain=sd).solver_ == "nystroem"


def test_kmm_weighting_helps_under_covariate_shift():
    xs, ys, xt, yt = covariate_shift(n_s=300, n_t=200, seed=2)
    X, y, sd = stack(xs, ys, xt)
    from sklearn.linear_model import LogisticRegression

    src_only = (LogisticRegression().fit(xs, ys).predict(xt) == yt).mean()
    kmm = (KMM(estimator="logreg").fit(X, y, sample_domain=sd).predict(xt) == yt).mean()
    assert kmm >= src_only


def test_kmm_sum_constraint_enforced():
    xs, ys, xt, _yt = covariate_shift()
    X, y, sd = stack(xs, ys, xt)
    est = KMM(eps=0.01).fit(X, y, sample_domain=sd)
    assert abs(est.weights_.sum() / len(xs) - 1.0) <= 0.01 + 1e-9
    assert est.weights_.max() <= est.B


def test_kmm_exact_refuses_beyond_memory_limit():
    xs, ys, xt, _yt = covariate_shift()
    X, y, sd = stack(xs, ys, xt)
    need = kmm_exact_memory_gb(len(xs), len(xt), 2)
    with pytest.raises(ConfigError, match="solver='nystroem'"):
        KMM(solver="exact", max_memory_gb=need / 2).fit(X, y, sample_domain=sd)
    # the message states the estimate and the limit; auto switches to the scalable path instead
    est = KMM(solver="auto", max_memory_gb=need / 2).fit(X, y, sample_domain=sd)
    assert est.solver_ == "nystroem"
    # a 60,000-sample exact problem is refused before anything is allocated
    assert kmm_exact_memory_gb(60_000, 60_000, 10) > 4.0


def test_project_box_slab_and_qp():
    rng = np.random.default_rng(0)
    v = rng.normal(size=50) * 3
    for lo, hi in [(0.0, 1e9), (40.0, 45.0), (5.0, 6.0)]:
        w = project_box_slab(v, 2.0, lo, hi)
        assert (w >= 0).all() and (w <= 2.0).all() and lo - 1e-6 <= w.sum() <= hi + 1e-6
    # tiny QP against a brute-force check of the KKT conditions: Q = I, c -> w = clip(c) when the
    # sum constraint is slack
    c = rng.uniform(-1, 3, 20)
    w, _ = solve_box_slab_qp(lambda x: x, c, B=2.0, lo=0.0, hi=1e9)
    np.testing.assert_allclose(w, np.clip(c, 0, 2.0), atol=1e-5)


def test_kliep_bandwidth_chosen_on_target_only():
    xs, ys, xt, _yt = covariate_shift()
    X, y, sd = stack(xs, ys, xt)
    est = KLIEP().fit(X, y, sample_domain=sd)
    assert len(est.cv_scores_) == 5 and est.gamma_ in est.cv_scores_
    assert est.gamma_ == max(est.cv_scores_, key=est.cv_scores_.get)
    fixed = KLIEP(gamma=0.5).fit(X, y, sample_domain=sd)
    assert fixed.gamma_ == 0.5 and fixed.cv_scores_ == {}


# ----------------------------------------------------------------------------------------------
# optimal transport
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", OT)
def test_ot_coupling_and_mapping(name, shifted):
    X, y, sd, xt, _yt = shifted
    est = SHALLOW.create(name, OT_PARAMS[name]).fit(X, y, sample_domain=sd)
    G = est.coupling_
    ns, nt = int((sd >= 0).sum()), len(xt)
    assert G.shape == (ns, nt) and (G >= -1e-12).all()
    np.testing.assert_allclose(G.sum(axis=1), 1.0 / ns, rtol=0.05, atol=1e-6)
    # the mapped source lies in the convex hull of the target: its mean moves to the target's
    from transferkit.shallow.ot import barycentric_map

    mapped = barycentric_map(G, X[sd >= 0], xt)
    assert np.linalg.norm(mapped.mean(0) - xt.mean(0)) < 0.5 * np.linalg.norm(X[sd >= 0].mean(0) - xt.mean(0))


def test_ot_scale_handling(shifted):
    """Unnormalised costs: Sinkhorn switches to the log domain, the class-regularised solver (plain
    Sinkhorn inside POT) refuses with a hint instead of returning an underflowed plan."""
    X, y, sd, _xt, _yt = shifted
    X = X * 10.0
    est = SHALLOW.create("ot_sinkhorn", {"norm": None, "reg_e": 0.1, "max_iter": 50}).fit(X, y, sample_domain=sd)
    assert est.method_ == "sinkhorn_log"
    assert SHALLOW.create("ot_sinkhorn").fit(X, y, sample_domain=sd).method_ == "sinkhorn"
    with pytest.raises(ConfigError, match="norm='median'"):
        SHALLOW.create("ot_class_reg", {"norm": None}).fit(X, y, sample_domain=sd)


def test_ot_class_reg_penalties(shifted):
    X, y, sd, xt, yt = shifted
    for penalty in ("l1l2", "lpl1"):
        est = SHALLOW.create("ot_class_reg", {"penalty": penalty}).fit(X, y, sample_domain=sd)
        assert (est.predict(xt) == yt).mean() > 0.6


# ----------------------------------------------------------------------------------------------
# benchmark (needs ../shared/data; deselected by default)
# ----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_kmm_office_caltech_surf(shared_data):
    import scipy.io

    def load(name):
        m = scipy.io.loadmat(shared_data / "office_caltech10_surf" / f"{name}_SURF_L10.mat")
        x = m["fts"].astype(float)
        x = x / x.sum(1, keepdims=True)
        sdv = x.std(0)
        return (x - x.mean(0)) / np.where(sdv > 0, sdv, 1.0), m["labels"].ravel().astype(int)

    xs, ys = load("Caltech10")
    xt, yt = load("amazon")
    X, y, sd = stack(xs, ys, xt)
    acc = (KMM().fit(X, y, sample_domain=sd).predict(xt) == yt).mean() * 100
    assert acc > 50.0  # source-only linear SVM: 53.1 (published), ours about 52.5


def test_linear_kernel_svc_matches_libsvm_linear():
    """The Gram-matrix SVC behind "svm" gives libsvm's linear-kernel predictions, zero weights too."""
    from sklearn.svm import SVC

    from transferkit.shallow._weighting import LinearKernelSVC

    xs, ys, xt, _ = _shifted_blobs(n=150, d=5, k=3, shift=0.5, seed=4)
    w = np.random.default_rng(0).uniform(0, 3, len(xs))
    w[:20] = 0.0
    ref = SVC(kernel="linear").fit(xs, ys, sample_weight=w)
    ours = LinearKernelSVC().fit(xs, ys, sample_weight=w)
    np.testing.assert_array_equal(ours.predict(xt), ref.predict(xt))
    np.testing.assert_allclose(ours.decision_function(xt), ref.decision_function(xt), atol=1e-6)
    big = LinearKernelSVC(max_samples=10).fit(xs, ys)  # the fallback path
    np.testing.assert_array_equal(big.predict(xt), SVC(kernel="linear").fit(xs, ys).predict(xt))
