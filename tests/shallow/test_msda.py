"""mSDA (Chen et al. 2012): the closed-form denoiser against the expectation over every corruption
mask, enumerated exactly on a small case; stacking and the representation's layout; bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from transferkit.core.errors import ConfigError, DataError
from transferkit.core.registries import SHALLOW
from transferkit.shallow.msda import msda_fit, msda_transform


def _brute_force_denoiser(x: np.ndarray, noise: float, reg: float) -> np.ndarray:
    """``W`` minimising the expected squared reconstruction error over every mask that drops
    features with probability ``noise`` (the bias input is never dropped), from the expectations
    summed mask by mask: W = E[x x~'] (E[x~ x~'] + reg I_data)^-1."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    exx = np.zeros((d + 1, d + 1))
    exy = np.zeros((d, d + 1))
    for mask in itertools.product([0, 1], repeat=d):
        m = np.array([*mask, 1.0])
        prob = np.prod([(1 - noise) if k else noise for k in mask])
        xt = xb * m  # corrupted copies of every row
        exx += prob * xt.T @ xt
        exy += prob * x.T @ xt
    exx[np.arange(d), np.arange(d)] += reg
    return exy @ np.linalg.inv(exx)


@pytest.mark.parametrize("noise,reg", [(0.5, 1e-5), (0.2, 0.1), (0.0, 1e-3)])
def test_closed_form_layer_equals_the_expectation_over_all_masks(noise, reg):
    rng = np.random.default_rng(0)
    x = rng.poisson(1.5, size=(40, 4)).astype(float)
    (w,) = msda_fit(x, noise=noise, layers=1, reg=reg)
    np.testing.assert_allclose(w, _brute_force_denoiser(x, noise, reg), rtol=1e-8, atol=1e-10)


def test_stacked_layers_and_the_concatenated_representation():
    rng = np.random.default_rng(1)
    x = rng.poisson(1.0, size=(50, 3)).astype(float)
    ws = msda_fit(x, noise=0.3, layers=3, reg=1e-4)
    assert len(ws) == 3 and all(w.shape == (3, 4) for w in ws)
    # layer 2 is the denoiser of layer 1's output, and so on
    h1 = np.tanh(np.hstack([x, np.ones((50, 1))]) @ ws[0].T)
    np.testing.assert_allclose(ws[1], _brute_force_denoiser(h1, 0.3, 1e-4), rtol=1e-7, atol=1e-9)
    z = msda_transform(x, ws, dtype=np.float64)
    assert z.shape == (50, 12)
    np.testing.assert_allclose(z[:, :3], x)
    np.testing.assert_allclose(z[:, 3:6], h1)
    h2 = np.tanh(np.hstack([h1, np.ones((50, 1))]) @ ws[1].T)
    np.testing.assert_allclose(z[:, 6:9], h2)


def test_msda_estimator_learns_on_both_domains_without_labels():
    from transferkit.testing.data import shifted_blobs

    xs, ys, xt, yt = shifted_blobs(n=60, d=5, k=3, seed=0, dtype=np.float64)
    est = SHALLOW.create("msda", {"layers": 2, "estimator": "logreg"})
    X = np.vstack([xs, xt])
    y = np.r_[ys, np.full(len(xt), -1)]
    sd = np.r_[np.ones(len(xs), int), -np.ones(len(xt), int)]
    est.fit(X, y, sample_domain=sd)
    ref = msda_fit(np.vstack([xs, xt]), noise=0.5, layers=2)
    for a, b in zip(est.weights_, ref):
        np.testing.assert_allclose(a, b)
    assert est.predict(xt).shape == (len(xt),)
    assert np.mean(est.predict(xt) == yt) > 1.5 / 3  # a working classifier, not a bound on quality


def test_msda_bad_input():
    x = np.ones((5, 3))
    with pytest.raises(ConfigError, match="noise"):
        msda_fit(x, noise=1.0)
    with pytest.raises(ConfigError, match="layers"):
        msda_fit(x, layers=0)
    with pytest.raises(ConfigError, match="reg"):
        msda_fit(x, reg=-1)
    with pytest.raises(DataError, match="NaN"):
        msda_fit(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(DataError, match="non-empty"):
        msda_fit(np.zeros((0, 3)))
    ws = msda_fit(np.random.default_rng(0).random((20, 3)), layers=1)
    with pytest.raises(DataError, match="do not match"):
        msda_transform(np.ones((4, 5)), ws)


def test_fit_transform_equals_fit_then_transform():
    from transferkit.shallow.msda import msda_fit_transform

    x = np.random.default_rng(2).poisson(1.0, size=(30, 4)).astype(float)
    ws, z = msda_fit_transform(x, noise=0.4, layers=2, dtype=np.float64)
    ref = msda_fit(x, noise=0.4, layers=2)
    for a, b in zip(ws, ref):
        np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(z, msda_transform(x, ref, dtype=np.float64))
