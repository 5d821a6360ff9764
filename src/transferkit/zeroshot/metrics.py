"""Accuracy measures of (generalised) zero-shot learning.

Following Xian, Lampert, Schiele & Akata ("Zero-Shot Learning — A Comprehensive Evaluation of the
Good, the Bad and the Ugly", TPAMI 41(9), 2019; arXiv:1707.00600), accuracy is the mean of the
per-class top-1 accuracies (so that frequent classes do not dominate), and in the *generalised*
setting, where a prediction may be any class (seen or unseen), the summary is the harmonic mean

    H = 2 * acc_seen * acc_unseen / (acc_seen + acc_unseen)

of the accuracy on test samples of seen classes (``acc_seen``) and on test samples of unseen
classes (``acc_unseen``), both measured with predictions over all classes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from transferkit.core.errors import DataError

__all__ = ["generalized_zsl_accuracy", "harmonic_mean", "per_class_accuracy"]


def _labels(y: Any, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise DataError(f"{name}: expected a 1-D array of labels, got shape {a.shape}")
    return a


def per_class_accuracy(y_true: Any, y_pred: Any, classes: Iterable[Any] | None = None) -> float:
    """Mean over ``classes`` (default: the classes present in ``y_true``) of the fraction of that
    class's samples predicted correctly. A listed class without samples is an error."""
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise DataError(f"y_true and y_pred differ in length: {len(t)} and {len(p)}")
    cls = np.unique(t) if classes is None else np.asarray(list(classes))
    if cls.size == 0:
        raise DataError("per_class_accuracy: no classes to average over (empty y_true or classes)")
    accs = []
    for c in cls:
        m = t == c
        if not m.any():
            raise DataError(f"per_class_accuracy: class {c!r} has no samples in y_true")
        accs.append(float(np.mean(p[m] == c)))
    return float(np.mean(accs))


def harmonic_mean(a: float, b: float) -> float:
    """``2ab / (a + b)``; 0 when both are 0. Both must lie in [0, 1]."""
    for name, v in (("a", a), ("b", b)):
        if not np.isfinite(v) or not 0.0 <= v <= 1.0:
            raise DataError(f"harmonic_mean: {name} = {v!r} is not an accuracy in [0, 1]")
    return 0.0 if a + b == 0 else float(2.0 * a * b / (a + b))


def generalized_zsl_accuracy(y_true: Any, y_pred: Any, seen_classes: Iterable[Any],
                             unseen_classes: Iterable[Any]) -> dict[str, float]:
    """Generalised zero-shot accuracy: ``y_pred`` are predictions over *all* classes.

    Returns ``{"seen": acc_s, "unseen": acc_u, "harmonic": H}`` with per-class accuracies over the
    test samples of seen and of unseen classes (Xian et al. 2019). Every test label must be one
    of the seen or unseen classes, and both groups must have test samples."""
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    seen, unseen = np.asarray(list(seen_classes)), np.asarray(list(unseen_classes))
    if np.intersect1d(seen, unseen).size:
        raise DataError(f"classes {np.intersect1d(seen, unseen).tolist()} are listed as both seen and unseen")
    is_seen, is_unseen = np.isin(t, seen), np.isin(t, unseen)
    if not np.all(is_seen | is_unseen):
        raise DataError(f"y_true holds classes that are neither seen nor unseen: "
                        f"{np.unique(t[~(is_seen | is_unseen)]).tolist()[:10]}")
    if not is_seen.any() or not is_unseen.any():
        raise DataError("generalised zero-shot accuracy needs test samples of both seen and unseen classes; got "
                        f"{int(is_seen.sum())} seen and {int(is_unseen.sum())} unseen")
    if t.shape != p.shape:
        raise DataError(f"y_true and y_pred differ in length: {len(t)} and {len(p)}")
    acc_s = per_class_accuracy(t[is_seen], p[is_seen])
    acc_u = per_class_accuracy(t[is_unseen], p[is_unseen])
    return {"seen": acc_s, "unseen": acc_u, "harmonic": harmonic_mean(acc_s, acc_u)}
