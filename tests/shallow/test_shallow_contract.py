"""The shared contract of every registered shallow estimator.

For each name in the SHALLOW registry: scikit-learn's ``check_estimator`` (through
:class:`~transferkit.testing.sklearn_checks.DomainSplitAdapter`, every check but the documented
ones in ``EXPECTED_FAILED_CHECKS``), target labels are never read, ``clone`` and a fixed seed give
the same result, ``Pipeline`` and ``GridSearchCV`` route ``sample_domain``, and bad input gets a
clear ``DataError``. Small, fast parameters; the data are tiny shifted blobs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from transferkit.core.errors import DataError
from transferkit.core.registries import SHALLOW
from transferkit.testing.data import shifted_blobs
from transferkit.testing.sklearn_checks import DomainSplitAdapter, expected_failed_checks

#: small parameters per method (the checks' arrays have as few as 1 feature and 10 samples)
FAST = {
    "sa": {"n_components": 2}, "gfk": {"n_components": 1},
    "meda": {"n_components": 1, "n_iter": 2},
    "tca": {"n_components": 2}, "jda": {"n_components": 2, "n_iter": 2},
    "bda": {"n_components": 2, "n_iter": 2},
    "kliep": {"cv": 2, "n_centers": 20}, "kmm": {"max_iter": 200}, "msda": {"layers": 2},
}
#: a second value of one parameter per method, for GridSearchCV
GRID = {"coral": {"reg": [0.1, 1.0]}, "sa": {"n_components": [1, 2]}, "gfk": {"n_components": [1, 2]},
        "tca": {"mu": [0.1, 1.0]}, "jda": {"lam": [0.1, 1.0]}, "bda": {"lam": [0.1, 1.0]},
        "meda": {"eta": [0.1, 1.0]}, "easytl": {"reg": [0.1, 1.0]}, "kmm": {"B": [10.0, 1000.0]},
        "kliep": {"n_centers": [10, 20]}, "ot_emd": {"metric": ["sqeuclidean", "euclidean"]},
        "ot_sinkhorn": {"reg_e": [0.1, 1.0]}, "ot_class_reg": {"reg_cl": [0.1, 1.0]},
        "logreg": {"C": [0.1, 1.0]}, "svm": {"C": [0.1, 1.0]}, "msda": {"noise": [0.3, 0.5]}}

NAMES = sorted(SHALLOW.names())


def _est(name):
    return SHALLOW.create(name, FAST.get(name, {}))


def _data(seed=0):
    """``X`` (source rows then target rows), ``y`` (-1 on target rows), ``sample_domain``, and the
    target rows with their labels (for the checks that need them, never for fitting)."""
    xs, ys, xt, yt = shifted_blobs(n=60, d=5, k=3, seed=seed, dtype=np.float64)
    X = np.vstack([xs, xt])
    y = np.r_[ys, np.full(len(xt), -1)]
    sd = np.r_[np.ones(len(xs), int), -np.ones(len(xt), int)]
    return X, y, sd, xt, yt


def test_every_registered_shallow_method_is_covered():
    assert NAMES and set(GRID) | {"1nn"} >= set(NAMES), "add the new method to GRID"


@pytest.mark.parametrize("name", NAMES)
def test_check_estimator(name):
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = check_estimator(DomainSplitAdapter(_est(name)), expected_failed_checks=expected_failed_checks(name),
                              on_fail=None, on_skip=None)
    failed = [f"{r['check_name']}: {r['exception']}" for r in res if r["status"] == "failed"]
    assert not failed, "\n".join(failed)
    assert sum(r["status"] == "passed" for r in res) >= 45


@pytest.mark.parametrize("name", NAMES)
def test_never_reads_target_labels(name):
    X, y, sd, xt, yt = _data(1)
    with_labels = y.copy()
    with_labels[sd < 0] = yt  # present in y, but the rows are marked target
    a = _est(name).fit(X, y, sample_domain=sd).predict(xt)
    b = _est(name).fit(X, with_labels, sample_domain=sd).predict(xt)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_clone_and_same_seed_same_result(name):
    X, y, sd, xt, _ = _data(2)
    est = _est(name)
    c = clone(est)
    assert c.get_params() == est.get_params()
    np.testing.assert_array_equal(est.fit(X, y, sample_domain=sd).predict(xt),
                                  c.fit(X, y, sample_domain=sd).predict(xt))


@pytest.mark.parametrize("name", NAMES)
def test_pipeline_and_grid_search(name):
    X, y, sd, xt, _ = _data(3)
    pipe = Pipeline([("scale", StandardScaler()), ("da", _est(name))]).fit(X, y, da__sample_domain=sd)
    assert pipe.predict(xt).shape == (len(xt),)
    grid = GRID.get(name)
    if grid is None:
        pytest.skip(f"{name} has no hyper-parameter")
    gs = GridSearchCV(_est(name), grid, cv=KFold(2, shuffle=True, random_state=0)).fit(X, y, sample_domain=sd)
    key = next(iter(grid))
    assert gs.best_params_[key] in grid[key]


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_named(name):
    X, y, sd, xt, _ = _data(4)
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        _est(name).fit(Xn, y, sample_domain=sd)
    if getattr(_est(name), "uses_target", True):
        with pytest.raises(DataError, match="no target"):
            _est(name).fit(X[sd >= 0], y[sd >= 0], sample_domain=sd[sd >= 0])
    else:  # a source-only baseline needs no target rows and ignores them when given
        alone = _est(name).fit(X[sd >= 0], y[sd >= 0], sample_domain=sd[sd >= 0])
        np.testing.assert_array_equal(alone.predict(xt), _est(name).fit(X, y, sample_domain=sd).predict(xt))
    y1 = y.copy()
    y1[sd >= 0] = 0
    with pytest.raises(DataError, match="single class"):
        _est(name).fit(X, y1, sample_domain=sd)
    est = _est(name).fit(X, y, sample_domain=sd)
    with pytest.raises(DataError, match="features"):
        est.predict(xt[:, :-1])
