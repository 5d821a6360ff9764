"""Turn a fitted model into a *candidate*: the arrays the label-free validators and the guard read.

A candidate is a dict with ``name`` and

- ``source_probs`` ``(n_v, K)``: class probabilities of the *deployed* predictor on held-out
  labelled source samples (samples the model was not fitted on), ``source_labels`` ``(n_v,)``;
- ``target_probs`` ``(n_t, K)``: class probabilities on the unlabelled target samples;
- ``source_features`` ``(n_v, d)`` / ``target_features`` ``(n_t, d)``: the same samples in the
  model's representation (a shallow estimator's ``transform`` when it has one, else the input; a
  deep model's features), used by IWCV/DEV to estimate the density ratio ``p_t(x) / p_s(x)``.

Held-out source samples go through the model's *source-side* map when it has one that differs
from the target side, else through the deployed predictor. IWCV and DEV estimate the target risk
of a classifier ``h`` on a representation ``z`` as ``E_s[w(z) l(h(z), y)]`` with ``z = g_s(x)`` for
source and ``z = g_t(x)`` for target samples (You et al., ICML 2019: the model's features of each
domain). For most shallow methods ``g_s = g_t`` (source-only, importance weighting, TCA/JDA/GFK)
and this is ``decision_scores``/``predict`` applied to held-out source samples. Subspace alignment
maps the domains differently (``(x - m_s) P_s M`` vs ``(x - m_t) P_t``); its source side is
rebuilt from its fitted attributes (:func:`source_side`), and any estimator exposing
``transform_source(X)`` is used the same way. Methods whose source map is not stored (CORAL's
re-colouring, optimal-transport mappings) are scored through the deployed predictor.

Scores that are not probabilities (SVM decision values, kernel regression outputs) are turned into
probabilities by a softmax (:func:`as_probabilities`); hard classifiers (1-NN) give one-hot rows.

Only numpy is imported here; scikit-learn is imported by the estimators themselves.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from transferkit.core.errors import ConfigError, DataError

#: held-out share of the source used by the validators when none is given
DEFAULT_VAL_FRACTION = 0.2
#: the validator used by selection when a configuration names none: the mean rank of held-out
#: source accuracy (is the candidate still a good classifier?) and soft neighbourhood density of
#: its target predictions (do they form clusters? Saito et al. 2021); chosen on the Office-Caltech
#: SURF and MNIST-USPS studies of benchmarks/selection_vs_oracle.py
DEFAULT_VALIDATOR = "source_accuracy+snd"


def stratified_holdout(y: Any, fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices ``(train, val)`` of labelled samples: ``round(n_c * fraction)`` validation
    samples per class ``c``, at least one on each side for classes with two or more samples."""
    y = np.asarray(y)
    if not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"the held-out source fraction must be in (0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = int(round(len(idx) * float(fraction)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        val.append(idx[:k])
        train.append(idx[k:])
    tr, va = np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
    if len(va) == 0:
        raise DataError("no source sample could be held out for validation (every class has a "
                        "single sample); give more labelled source samples")
    return tr, va


def as_probabilities(scores: Any, n_classes: int | None = None, columns: Any = None) -> np.ndarray:
    """Rows of class probabilities ``(n, K)`` from a model's scores.

    ``scores``: probabilities (kept), decision values ``(n, K)`` (softmax), or a binary decision
    function ``(n,)`` (``[-s, s]`` then softmax, i.e. ``P(1) = sigmoid(2 s)``). ``columns``: the
    class index of each column (an estimator's ``classes_``); with ``n_classes`` the result has
    ``K = n_classes`` columns, classes absent from ``columns`` getting probability 0.
    """
    from transferkit.selection.validators import softmax

    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = np.stack([-s, s], axis=1)
    if s.ndim != 2 or s.shape[0] == 0:
        raise DataError(f"model scores must be (n, n_classes), got shape {s.shape}")
    if not np.isfinite(s).all():
        raise DataError("the model produced NaN or infinite scores")
    is_prob = (s >= -1e-9).all() and np.allclose(s.sum(axis=1), 1.0, atol=1e-6)
    p = np.clip(s, 0.0, None) / np.clip(s, 0.0, None).sum(axis=1, keepdims=True) if is_prob \
        else softmax(s)
    if n_classes is None or (columns is None and p.shape[1] == n_classes):
        return p
    cols = np.arange(p.shape[1]) if columns is None else np.asarray(columns, dtype=np.int64)
    if len(cols) != p.shape[1] or (cols < 0).any() or (cols >= n_classes).any():
        raise DataError(f"cannot place {p.shape[1]} score columns (classes {cols.tolist()}) among "
                        f"{n_classes} classes")
    out = np.zeros((len(p), n_classes))
    out[:, cols] = p
    return out


def model_scores(estimator: Any, X: np.ndarray) -> np.ndarray:
    """Raw scores of a fitted scikit-learn-style classifier: ``decision_scores`` (transferkit's
    shallow methods), else ``predict_proba``, else ``decision_function``, else one-hot
    ``predict``."""
    for attr in ("decision_scores", "predict_proba", "decision_function"):
        fn = getattr(estimator, attr, None)
        if fn is not None:
            try:
                return np.asarray(fn(X))
            except AttributeError:  # e.g. SVC(probability=False).predict_proba
                continue
    pred = np.asarray(estimator.predict(X))
    classes = np.asarray(getattr(estimator, "classes_", np.unique(pred)))
    return (pred[:, None] == classes[None, :]).astype(np.float64)


def model_features(estimator: Any, X: np.ndarray) -> np.ndarray:
    """The representation a fitted estimator classifies in: ``estimator.transform(X)`` when it has
    one (subspace and kernel methods), else ``X`` itself (flattened)."""
    fn = getattr(estimator, "transform", None)
    if fn is not None:
        try:
            Z = np.asarray(fn(X), dtype=np.float64)
            if Z.ndim == 2 and len(Z) == len(X) and np.isfinite(Z).all():
                return Z
        except Exception:  # noqa: BLE001 - a transform that cannot map these rows: use the input
            pass
    return np.asarray(X, dtype=np.float64).reshape(len(X), -1)


def source_side(estimator: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(scores, features)`` of source samples through the estimator's source-side map, when it
    differs from the target side and is known: ``estimator.transform_source(X)`` if defined, or
    subspace alignment's ``(X - source_mean_) @ source_basis_ @ alignment_``; the inner classifier
    ``estimator_`` then scores the mapped rows. None otherwise."""
    inner = getattr(estimator, "estimator_", None)
    if inner is None:
        return None
    fn = getattr(estimator, "transform_source", None)
    if callable(fn):
        Z = np.asarray(fn(X), dtype=np.float64)
    elif all(hasattr(estimator, a) for a in ("source_basis_", "alignment_", "source_mean_")):
        Z = (np.asarray(X, dtype=np.float64) - estimator.source_mean_) @ estimator.source_basis_ \
            @ estimator.alignment_
    else:
        return None
    return model_scores(inner, Z), Z


def predict_candidate(estimator: Any, name: str, xs_val: np.ndarray, ys_val: np.ndarray,
                      xt: np.ndarray, n_classes: int, *, with_features: bool = True,
                      with_mixup: bool = True) -> dict[str, Any]:
    """The candidate dict of a fitted estimator (see the module docstring). ``with_mixup``: also
    its probabilities on :func:`~transferkit.selection.validators.mixup_probe`'s mixed target
    samples (``mixup_probs``, ``mixup_partner``, read by ``mixval``; one more prediction on the
    target), when the target samples are real-valued."""
    classes = getattr(estimator, "classes_", None)
    cols = None if classes is None else np.asarray(classes, dtype=np.int64)
    src = source_side(estimator, xs_val)
    cand: dict[str, Any] = {
        "name": name,
        "source_probs": as_probabilities(model_scores(estimator, xs_val) if src is None else src[0],
                                         n_classes, cols),
        "source_labels": np.asarray(ys_val, dtype=np.int64),
        "target_probs": as_probabilities(model_scores(estimator, xt), n_classes, cols),
    }
    if with_features:
        cand["source_features"] = model_features(estimator, xs_val) if src is None else src[1]
        cand["target_features"] = model_features(estimator, xt)
    if with_mixup:
        cand.update(mixup_arrays(lambda x: as_probabilities(model_scores(estimator, x), n_classes, cols), xt))
    return cand


def mixup_arrays(predict_probs: Any, xt: Any) -> dict[str, np.ndarray]:
    """``{"mixup_probs", "mixup_partner"}`` of a model on the probes of
    :func:`~transferkit.selection.validators.mixup_probe` (``predict_probs(x) -> (n, K)``), or
    ``{}`` when the target samples cannot be mixed (token ids, fewer than 2 samples) or the model
    cannot predict the probes; ``mixval`` then has no score for this candidate."""
    from transferkit.selection.validators import mixup_probe

    try:
        mixed, partner = mixup_probe(xt)
    except DataError:
        return {}
    try:
        return {"mixup_probs": np.asarray(predict_probs(mixed), dtype=np.float64), "mixup_partner": partner}
    except Exception:  # noqa: BLE001 - a model that cannot predict the probes: no mixval, not a failed run
        return {}


def fit_shallow_candidate(estimator: Any, name: str, xs: Any, ys: Any, xt: Any, *,
                          split: tuple[np.ndarray, np.ndarray] | None = None,
                          val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0,
                          n_classes: int | None = None, with_features: bool = True
                          ) -> dict[str, Any]:
    """Fit ``estimator`` on the training part of the source and all target samples (unlabelled),
    and return its candidate dict, with the fitted ``model`` and ``fit_seconds`` added.

    ``split``: ``(train, val)`` indices of the source rows (the same split for every candidate of a
    comparison, so the validators score every candidate on the same held-out samples); default
    :func:`stratified_holdout` of ``val_fraction`` with ``seed``. Target labels are never given.
    """
    xs = np.asarray(xs, dtype=np.float64).reshape(len(xs), -1)
    xt = np.asarray(xt, dtype=np.float64).reshape(len(xt), -1)
    ys = np.asarray(ys, dtype=np.int64)
    tr, va = split if split is not None else stratified_holdout(ys, val_fraction, seed)
    K = int(n_classes if n_classes is not None else ys.max() + 1)
    X = np.vstack([xs[tr], xt])
    y = np.r_[ys[tr], np.full(len(xt), -1, dtype=np.int64)]
    sd = np.r_[np.ones(len(tr), dtype=np.int64), np.full(len(xt), -2, dtype=np.int64)]
    t0 = time.perf_counter()
    estimator.fit(X, y, sample_domain=sd)
    seconds = time.perf_counter() - t0
    cand = predict_candidate(estimator, name, xs[va], ys[va], xt, K, with_features=with_features)
    cand["model"] = estimator
    cand["fit_seconds"] = seconds
    return cand


_WEIGHT_ARGS = ("cv", "C", "max_weight", "seed")


def score_all(candidate: Mapping[str, Any], validators: Mapping[str, Mapping[str, Any] | None]
              ) -> dict[str, float]:
    """``{validator: score}`` for one candidate; a validator whose inputs are missing or which
    fails on these arrays gives NaN (so one bad score does not stop a comparison).

    IWCV and DEV with the same density-ratio settings (``cv``, ``C``, ``max_weight``, ``seed``)
    share one set of importance weights, estimated once from the candidate's features.
    """
    import inspect

    from transferkit.selection.validators import (
        ARRAY_ARGS,
        importance_weights,
        is_pool_validator,
        resolve_validator,
        score_candidate,
    )

    arrays = {k: candidate.get(k) for k in ARRAY_ARGS}
    weights: dict[tuple[Any, ...], np.ndarray | None] = {}
    out: dict[str, float] = {}
    for v, params in validators.items():
        params = dict(params or {})
        if is_pool_validator(v) and "reference_probs" not in params:
            out[v] = float("nan")  # needs the whole pool: select() scores it
            continue
        try:
            _, fn = resolve_validator(v)
            sig = inspect.signature(fn).parameters
            if ("weights" in sig and params.get("weights") is None
                    and arrays["source_features"] is not None and arrays["target_features"] is not None):
                wkw = {k: params.pop(k, sig[k].default) for k in _WEIGHT_ARGS if k in sig}
                key = tuple(sorted(wkw.items()))
                if key not in weights:
                    try:
                        weights[key] = importance_weights(arrays["source_features"],
                                                          arrays["target_features"], **wkw)
                    except (ConfigError, DataError, ValueError):
                        weights[key] = None
                if weights[key] is None:
                    out[v] = float("nan")
                    continue
                params["weights"] = weights[key]
            out[v] = float(score_candidate(v, **arrays, params=params))
        except (ConfigError, DataError, ValueError, FloatingPointError):
            out[v] = float("nan")
    return out
