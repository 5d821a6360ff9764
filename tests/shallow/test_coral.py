"""CORAL (shallow): the dense and Gram-matrix computations of ``Xs Cs^{-1/2} Ct^{1/2}``
agree, and both match the formula of the paper written with ``d x d`` matrices."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from transferkit.core.errors import ConfigError
from transferkit.shallow.coral import CORAL, coral_transform


def _power(C, p):
    w, V = linalg.eigh(C)
    return (V * w**p) @ V.T


def _reference(Xs, Xt, reg, align_mean):
    d = Xs.shape[1]
    cs = np.cov(Xs, rowvar=False) + reg * np.eye(d)
    ct = np.cov(Xt, rowvar=False) + reg * np.eye(d)
    a = _power(cs, -0.5) @ _power(ct, 0.5)
    return (Xs - Xs.mean(0)) @ a + Xt.mean(0) if align_mean else Xs @ a


def _data(ns, nt, d, seed=0):
    rng = np.random.default_rng(seed)
    # counts-like, correlated, different scales per domain
    Xs = rng.poisson(0.3, size=(ns, d)).astype(float) @ (np.eye(d) + 0.1 * rng.normal(size=(d, d)))
    Xt = 2.0 * rng.poisson(0.5, size=(nt, d)).astype(float) + 0.5
    return Xs, Xt


@pytest.mark.parametrize("ns,nt", [(20, 35), (35, 20), (15, 12), (80, 90)])
@pytest.mark.parametrize("align_mean", [False, True])
@pytest.mark.parametrize("reg", [1.0, 0.05])
def test_gram_form_equals_dense(ns, nt, align_mean, reg):
    Xs, Xt = _data(ns, nt, 40)
    ref = _reference(Xs, Xt, reg, align_mean)
    dense = coral_transform(Xs, Xt, reg, align_mean, solver="dense")
    gram = coral_transform(Xs, Xt, reg, align_mean, solver="gram")
    auto = coral_transform(Xs, Xt, reg, align_mean)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(dense, ref, atol=1e-10 * scale)
    np.testing.assert_allclose(gram, ref, atol=1e-10 * scale)
    np.testing.assert_allclose(auto, ref, atol=1e-10 * scale)
    if min(ns, nt) >= 40:  # enough samples in both domains: auto is the dense path itself
        np.testing.assert_array_equal(auto, dense)


def test_gram_form_needs_positive_reg_and_auto_falls_back():
    Xs, Xt = _data(10, 12, 30, seed=1)
    with pytest.raises(ConfigError, match="reg"):
        coral_transform(Xs, Xt, 0.0, solver="gram")
    with pytest.raises(ConfigError, match="solver"):
        coral_transform(Xs, Xt, 1.0, solver="svd")
    np.testing.assert_array_equal(coral_transform(Xs, Xt, 0.0), coral_transform(Xs, Xt, 0.0, solver="dense"))


def test_estimator_uses_the_transform():
    Xs, Xt = _data(30, 25, 50, seed=2)
    ys = (Xs[:, 0] > np.median(Xs[:, 0])).astype(int)
    X = np.vstack([Xs, Xt])
    y = np.r_[ys, np.full(len(Xt), -1)]
    est = CORAL(estimator="1nn").fit(X, y)
    from sklearn.neighbors import KNeighborsClassifier

    ref = KNeighborsClassifier(1).fit(_reference(Xs, Xt, 1.0, False), ys).predict(Xt)
    np.testing.assert_array_equal(est.predict(Xt), ref)


def test_power_ratio_is_accurate_near_zero():
    from transferkit.shallow.coral import _power_ratio

    reg = 0.5
    w = np.array([0.0, 1e-300, 1e-12, 1e-3, 1.0, 1e6])
    for p in (-0.5, 0.5):
        g = _power_ratio(w, reg, p)
        assert g[0] == pytest.approx(p * reg ** (p - 1), rel=1e-15)
        assert g[1] == pytest.approx(p * reg ** (p - 1), rel=1e-15)
        assert g[2] == pytest.approx(p * reg ** (p - 1), rel=1e-10)
        np.testing.assert_allclose(g[3:], ((w[3:] + reg) ** p - reg ** p) / w[3:], rtol=1e-12)
