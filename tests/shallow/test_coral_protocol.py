"""CORAL's ``similarity`` protocol (the classifier of the code behind the published figures)."""

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC

from transferkit.core.errors import ConfigError
from transferkit.shallow.base import SVM_CV_GRID
from transferkit.shallow.coral import CORAL, coral_transform
from transferkit.testing.data import shifted_blobs


def test_similarity_protocol_equals_direct_precomputed_svm():
    xs, ys, xt, _ = shifted_blobs(n=80, d=5, k=3, shift=1.0, seed=3, dtype=np.float64)
    X = np.vstack([xs, xt])
    y = np.r_[ys, -np.ones(len(xt), int)]
    sd = np.r_[np.ones(len(xs), int), -np.ones(len(xt), int)]
    est = CORAL(protocol="similarity").fit(X, y, sample_domain=sd)
    zs = coral_transform(xs, xt, 1.0, False)
    K = zs @ xs.T  # xs_i A xs_j', not zs zs'
    best, best_c = -1.0, None
    for c in SVM_CV_GRID:  # 2-fold CV on the source, first best C kept
        scores = []
        for tr, va in StratifiedKFold(2, shuffle=True, random_state=0).split(xs, ys):
            m = SVC(kernel="precomputed", C=c).fit(K[np.ix_(tr, tr)], ys[tr])
            scores.append(np.mean(m.predict(K[np.ix_(va, tr)]) == ys[va]))
        if np.mean(scores) > best:
            best, best_c = np.mean(scores), c
    ref = SVC(kernel="precomputed", C=best_c).fit(K, ys).predict(xt @ zs.T)
    np.testing.assert_array_equal(est.predict(xt), ref)
    assert est.estimator_.best_params_["C"] == best_c


def test_unknown_protocol_is_named():
    xs, ys, xt, _ = shifted_blobs(n=30, d=3, seed=0, dtype=np.float64)
    X = np.vstack([xs, xt])
    y = np.r_[ys, -np.ones(len(xt), int)]
    with pytest.raises(ConfigError, match="protocol"):
        CORAL(protocol="svm").fit(X, y)
