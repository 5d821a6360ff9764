"""EasyTL on tiny synthetic shifted data, and on Office-Caltech10 SURF (slow)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from transferkit.core.errors import ConfigError, DataError
from transferkit.core.registries import SHALLOW
from transferkit.testing.data import shifted_blobs as _blobs
from transferkit.shallow.easytl import EasyTL, intra_domain_programming


def _shifted_blobs(n, d, k, shift, seed):
    return _blobs(n=n, d=d, k=k, shift=shift, seed=seed, dtype=np.float64)


def _data(seed=0, n=120, shift=1.0):
    xs, ys, xt, yt = _shifted_blobs(n=n, d=4, k=3, shift=shift, seed=seed)
    X = np.vstack([xs, xt])
    y = np.r_[ys, np.full(len(xt), -1)]
    sd = np.r_[np.ones(len(xs), int), -np.ones(len(xt), int)]
    return X, y, sd, xt, yt


@pytest.mark.parametrize("params", [{}, {"intra_align": "raw"}, {"distance": "cosine"}, {"distance": "sqeuclidean"}])
def test_fit_predict(params):
    X, y, sd, xt, yt = _data()
    est = SHALLOW.create("easytl", params).fit(X, y, sample_domain=sd)
    assert (est.predict(xt) == yt).mean() > 0.8
    M = est.decision_scores(xt)
    assert M.shape == (len(xt), 3)
    np.testing.assert_allclose(M.sum(1), 1.0, atol=1e-8)
    assert (M.sum(0) >= 1.0 - 1e-8).all()
    np.testing.assert_array_equal(est.labels_, est.predict(xt))


def test_clone_determinism_and_new_batches():
    X, y, sd, xt, _yt = _data(seed=3)
    a = EasyTL().fit(X, y, sample_domain=sd)
    b = clone(a).fit(X, y, sample_domain=sd)
    np.testing.assert_array_equal(a.predict(xt), b.predict(xt))
    # a new batch gets its own programme against the fitted centres
    assert a.predict(xt[:10]).shape == (10,)


def test_each_class_gets_mass():
    """The column constraint: even when every sample is nearest to class 0, each class gets one."""
    D = np.c_[np.zeros(6), np.ones(6), np.ones(6) * 2]
    M = intra_domain_programming(D)
    assert (M.sum(0) >= 1 - 1e-9).all()
    assert np.argmax(M, 1).tolist().count(0) == 4
    # fewer samples than classes: the bound shrinks to n / C instead of becoming infeasible
    M = intra_domain_programming(D[:2])
    np.testing.assert_allclose(M.sum(1), 1.0)


def test_pipeline_and_bad_input():
    X, y, sd, xt, yt = _data()
    pipe = Pipeline([("scale", StandardScaler()), ("da", EasyTL())]).fit(X, y, da__sample_domain=sd)
    assert pipe.predict(xt).shape == yt.shape
    with pytest.raises(ConfigError, match="intra_align"):
        EasyTL(intra_align="gfk").fit(X, y, sample_domain=sd)
    with pytest.raises(ConfigError, match="distance"):
        EasyTL(distance="manhattan").fit(X, y, sample_domain=sd)
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(DataError, match="NaN"):
        EasyTL().fit(bad, y, sample_domain=sd)
    with pytest.raises(DataError, match="no target"):
        EasyTL().fit(X[sd >= 0], y[sd >= 0], sample_domain=sd[sd >= 0])
    with pytest.raises(DataError, match="expecting 4 features"):
        EasyTL().fit(X, y, sample_domain=sd).predict(xt[:, :2])


# published pyEasyTL figures (jindongwang/transferlearning code/traditional/pyEasyTL/results.txt)
EASYTL_SURF = {"C-A": 52.6, "C-W": 53.9, "C-D": 51.6, "A-C": 42.3, "A-W": 43.1, "A-D": 48.4,
               "W-C": 35.4, "W-A": 38.2, "W-D": 79.6, "D-C": 36.1, "D-A": 38.3, "D-W": 86.1}


@pytest.mark.slow
def test_easytl_office_caltech_surf(shared_data):
    import scipy.io

    names = {"C": "Caltech10", "A": "amazon", "W": "webcam", "D": "dslr"}

    def load(dom):
        m = scipy.io.loadmat(shared_data / "office_caltech10_surf" / f"{names[dom]}_SURF_L10.mat")
        x = m["fts"].astype(float)
        x = x / x.sum(1, keepdims=True)
        s = x.std(0)
        return (x - x.mean(0)) / np.where(s > 0, s, 1.0), m["labels"].ravel().astype(int)

    accs = []
    for task in EASYTL_SURF:
        (xs, ys), (xt, yt) = load(task[0]), load(task[2])
        X = np.vstack([xs, xt])
        y = np.r_[ys, np.full(len(xt), -1)]
        sd = np.r_[np.ones(len(xs), int), -np.ones(len(xt), int)]
        accs.append((EasyTL().fit(X, y, sample_domain=sd).predict(xt) == yt).mean() * 100)
    assert np.mean(accs) >= 49.5, dict(zip(EASYTL_SURF, np.round(accs, 1)))
