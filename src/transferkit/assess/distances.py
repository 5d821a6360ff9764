"""How far apart are the domains? Distances between two samples and a label-shift estimate.

- :func:`proxy_a_distance` -- ``2 (1 - 2 eps)`` with ``eps`` the held-out error of a linear domain
  classifier (Ben-David, Blitzer, Crammer & Pereira, NIPS 2007; Ben-David et al., MLJ 2010).
- :func:`coral_distance` -- ``||C_s - C_t||_F^2 / (4 d^2)`` (Sun & Saenko, "Deep CORAL", ECCV-W 2016).
- :func:`sliced_wasserstein` -- Monte-Carlo sliced Wasserstein-p distance over random directions
  (Rabin, Peyre, Delon & Bernot, SSVM 2011; Bonneel et al., JMIV 2015).
- :func:`bbse` -- black-box shift estimation of target class proportions under label shift
  (Lipton, Wang & Smola, "Detecting and Correcting for Label Shift with Black Box Predictors",
  ICML 2018).

Shapes: ``source`` ``(m, d)``, ``target`` ``(k, d)`` (1-D = one feature). Bad input raises
:class:`~transferkit.core.errors.DataError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transferkit.assess._registry import DISTANCES
from transferkit.assess.shift import Seed, check_two_samples, default_domain_classifier
from transferkit.core.errors import ConfigError, DataError
from transferkit.core.seed import rng as _rng


@DISTANCES.register("proxy_a", description="Proxy A-distance 2(1 - 2 eps) from a linear domain "
                                           "classifier's held-out error (Ben-David et al. 2007)")
def proxy_a_distance(source: Any, target: Any, *, estimator: Any = None, n_splits: int = 5,
                     seed: Seed = 0) -> float:
    """Proxy A-distance (Ben-David et al., NIPS 2007; MLJ 2010): ``d_A = 2 (1 - 2 eps)``.

    ``eps`` is the held-out error of a linear classifier separating source from target, estimated
    by stratified ``n_splits``-fold cross-validation (every sample predicted once by a model that
    did not see it; TLlib uses a single 80/20 split). The error is balanced (mean of the per-domain
    error rates) so unequal sample sizes do not look like shift, and ``eps`` is taken as
    ``min(eps, 1 - eps)`` (a worse-than-chance classifier flipped), so ``d_A`` is in ``[0, 2]``:
    about 0 for one distribution, 2 for separable domains. ``estimator`` defaults to
    standardisation + logistic regression. Shapes ``(m, d)``, ``(k, d)``, ``m, k >= n_splits``.
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 2:
        raise ConfigError(f"proxy_a_distance: n_splits must be an integer >= 2, got {n_splits!r}")
    xs, xt = check_two_samples(source, target, name="proxy_a_distance", min_samples=n_splits)
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rs = int(_rng(seed).integers(2**31 - 1))
    Z = np.vstack([xs, xt])
    d = np.r_[np.zeros(len(xs), dtype=np.int64), np.ones(len(xt), dtype=np.int64)]
    clf = clone(estimator) if estimator is not None else default_domain_classifier(rs)
    cv = StratifiedKFold(n_splits=int(n_splits), shuffle=True, random_state=rs)
    pred = cross_val_predict(clf, Z, d, cv=cv)
    err = 0.5 * (np.mean(pred[d == 0] != 0) + np.mean(pred[d == 1] != 1))
    err = min(err, 1.0 - err)
    return float(2.0 * (1.0 - 2.0 * err))


@DISTANCES.register("coral", description="CORAL distance ||Cs - Ct||_F^2 / (4 d^2) between feature "
                                         "covariances (Sun & Saenko 2016)")
def coral_distance(source: Any, target: Any) -> float:
    """CORAL distance (Sun & Saenko, "Deep CORAL", ECCV Workshops 2016, Eq. 1).

    ``||C_S - C_T||_F^2 / (4 d^2)`` with the unbiased covariances
    ``C = (X'X - (1'X)'(1'X) / n) / (n - 1)`` of ``source`` ``(m, d)`` and ``target`` ``(k, d)``
    (``m, k >= 2``). Second-order statistics only: a pure mean shift gives 0.
    """
    xs, xt = check_two_samples(source, target, name="coral_distance", min_samples=2)
    d = xs.shape[1]
    cs = np.cov(xs, rowvar=False).reshape(d, d)
    ct = np.cov(xt, rowvar=False).reshape(d, d)
    return float(np.sum((cs - ct) ** 2) / (4.0 * d * d))


def _wasserstein_1d_pow(us: np.ndarray, ut: np.ndarray, p: float) -> np.ndarray:
    """``W_p^p`` between the columns of ``us`` ``(m, L)`` and ``ut`` ``(k, L)`` (equal weights).

    Exact for 1-D empirical measures: ``int_0^1 |F^{-1}(t) - G^{-1}(t)|^p dt`` over the merged
    quantile breakpoints ``{i/m} U {j/k}``.
    """
    m, k = len(us), len(ut)
    us = np.sort(us, axis=0)
    ut = np.sort(ut, axis=0)
    if m == k:
        return np.mean(np.abs(us - ut) ** p, axis=0)
    cuts = np.union1d(np.arange(1, m + 1) / m, np.arange(1, k + 1) / k)
    widths = np.diff(np.r_[0.0, cuts])
    mids = cuts - widths / 2
    i = np.minimum((mids * m).astype(np.int64), m - 1)
    j = np.minimum((mids * k).astype(np.int64), k - 1)
    return widths @ (np.abs(us[i] - ut[j]) ** p)


@DISTANCES.register("sliced_wasserstein", description="Sliced Wasserstein-p distance over random "
                                                      "projections (Rabin et al. 2011)")
def sliced_wasserstein(source: Any, target: Any, *, n_projections: int = 128, p: float = 2.0,
                       seed: Seed = 0) -> float:
    """Monte-Carlo sliced Wasserstein distance (Rabin et al., SSVM 2011; Bonneel et al. 2015).

    ``SW_p = (1/L sum_l W_p^p(theta_l' X_s, theta_l' X_t))^{1/p}`` with ``L = n_projections``
    directions ``theta_l`` uniform on the unit sphere (``seed``); each 1-D ``W_p`` is exact for
    the empirical measures (sorting; unequal sizes through merged quantiles). In one dimension it
    is the exact ``W_p``. Shapes ``(m, d)``, ``(k, d)``; cost ``O(L (m + k)(d + log(m + k)))``.
    """
    if isinstance(n_projections, bool) or not isinstance(n_projections, (int, np.integer)) \
            or n_projections < 1:
        raise ConfigError(f"sliced_wasserstein: n_projections must be an integer >= 1, "
                          f"got {n_projections!r}")
    if not isinstance(p, (int, float)) or not p >= 1:
        raise ConfigError(f"sliced_wasserstein: p must be a number >= 1, got {p!r}")
    xs, xt = check_two_samples(source, target, name="sliced_wasserstein")
    d = xs.shape[1]
    if d == 1:
        theta = np.ones((1, 1))
    else:
        theta = _rng(seed).standard_normal((d, int(n_projections)))
        theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    return float(np.mean(_wasserstein_1d_pow(xs @ theta, xt @ theta, float(p))) ** (1.0 / p))


# ----------------------------------------------------------------------------------------------
# label shift: black-box shift estimation
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelShiftEstimate:
    """Result of :func:`bbse`, all arrays indexed like ``classes``.

    ``target_proportions`` ``q(y)`` (sums to 1), ``weights`` ``w(y) = q(y) / p(y)`` (importance
    weights for source samples of class ``y``), ``source_proportions`` ``p(y)``, ``confusion``
    ``C[i, j] = P_source(yhat = i, y = j)``, ``condition_number`` of ``C`` (large = unreliable),
    ``clipped``: whether negative weights were clipped to 0.
    """

    classes: np.ndarray
    target_proportions: np.ndarray
    weights: np.ndarray
    source_proportions: np.ndarray
    confusion: np.ndarray
    condition_number: float
    clipped: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def _predictions(a: Any, what: str, n_classes: int, classes: np.ndarray) -> np.ndarray:
    """``(n, K)`` one-hot or probability rows from hard predictions or probabilities."""
    arr = np.asarray(a)
    if arr.ndim == 1:
        if arr.size == 0:
            raise DataError(f"bbse: {what} is empty")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise DataError(f"bbse: {what} contains NaN or infinite values")
        idx = np.searchsorted(classes, arr)
        idx = np.minimum(idx, n_classes - 1)
        bad = classes[idx] != arr
        if bad.any():
            raise DataError(f"bbse: {what} holds labels {np.unique(arr[bad])[:5].tolist()} that are not "
                            f"source classes {classes.tolist()}")
        return np.eye(n_classes)[idx]
    if arr.ndim != 2:
        raise DataError(f"bbse: {what} must be hard labels (n,) or probabilities (n, n_classes), "
                        f"got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise DataError(f"bbse: {what} is empty")
    if arr.shape[1] != n_classes:
        raise DataError(f"bbse: {what} has {arr.shape[1]} columns but the source labels have "
                        f"{n_classes} classes {classes.tolist()}; columns must follow the sorted classes")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise DataError(f"bbse: {what} contains NaN or infinite values")
    sums = arr.sum(axis=1)
    if (arr < 0).any() or not np.allclose(sums, 1.0, atol=1e-3):
        raise DataError(f"bbse: rows of {what} must be probabilities (non-negative, summing to 1); "
                        f"row sums are in [{sums.min():.3g}, {sums.max():.3g}]. Apply a softmax to logits")
    return arr


def bbse(source_preds: Any, source_labels: Any, target_preds: Any) -> LabelShiftEstimate:
    """Black-box shift estimation (Lipton, Wang & Smola, ICML 2018).

    Under label shift (``p(x|y)`` fixed, ``p(y)`` changes) a fixed classifier ``f`` satisfies
    ``mu = C w`` where ``mu[i] = q(f(x) = i)`` on the target, ``C[i, j] = p(f(x) = i, y = j)`` on
    held-out labelled source data and ``w[j] = q(y = j) / p(y = j)``. We solve ``C w = mu`` by
    least squares, clip ``w >= 0``, set ``q = w p`` renormalised to sum to 1 and return
    ``w = q / p``.

    ``source_preds``: predictions of ``f`` on *held-out* source samples, hard labels ``(n,)`` or
    class probabilities ``(n, K)`` (soft confusion, "BBSE-soft"); ``source_labels`` ``(n,)``: their
    true labels (the ``K`` classes are the sorted unique values; probability columns follow that
    order); ``target_preds``: ``f`` on target samples, ``(n_t,)`` or ``(n_t, K)`` of the same kind.
    """
    y = np.asarray(source_labels)
    if y.ndim != 1 or y.size == 0:
        raise DataError(f"bbse: source_labels must be a non-empty 1-D array, got shape {y.shape}")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise DataError("bbse: source_labels contain NaN or infinite values")
    classes, yi = np.unique(y, return_inverse=True)
    K = len(classes)
    if K < 2:
        raise DataError(f"bbse: the source labels hold a single class ({classes[0]!r}); "
                        "label shift needs at least two classes")
    ps_rows = _predictions(source_preds, "source_preds", K, classes)
    if len(ps_rows) != len(y):
        raise DataError(f"bbse: source_preds has {len(ps_rows)} rows but source_labels has {len(y)}; "
                        "they must describe the same held-out source samples")
    pt_rows = _predictions(target_preds, "target_preds", K, classes)
    if (np.asarray(source_preds).ndim == 1) != (np.asarray(target_preds).ndim == 1):
        raise DataError("bbse: source_preds and target_preds must be of the same kind (both hard "
                        "labels or both probabilities)")
    n = len(y)
    C = (ps_rows.T @ np.eye(K)[yi]) / n          # C[i, j] = P(f = i, y = j)
    p_src = np.bincount(yi, minlength=K) / n
    mu = pt_rows.mean(axis=0)
    w, *_ = np.linalg.lstsq(C, mu, rcond=None)
    clipped = bool((w < 0).any())
    w = np.clip(w, 0.0, None)
    q = w * p_src
    if not q.sum() > 0:
        raise DataError("bbse: the estimated target proportions are all zero; the confusion matrix "
                        "is degenerate (is the classifier better than chance on held-out source?)")
    q = q / q.sum()
    return LabelShiftEstimate(classes=classes, target_proportions=q, weights=q / p_src,
                              source_proportions=p_src, confusion=C,
                              condition_number=float(np.linalg.cond(C)), clipped=clipped,
                              details={"n_source": n, "n_target": len(pt_rows),
                                       "soft": np.asarray(source_preds).ndim == 2})
