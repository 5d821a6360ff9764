"""Label-free validators: score a trained candidate without target labels (higher = better).

Every validator is a pure function on arrays, registered in :data:`VALIDATORS`:

========================  ==================================================================
``source_accuracy``       accuracy on held-out labelled source data
``iwcv``                  importance-weighted source validation (Sugiyama et al., JMLR 2007)
``dev``                   deep embedded validation: IWCV + control variate (You et al., ICML 2019)
``snd``                   soft neighbourhood density of target predictions (Saito et al., ICCV 2021)
``entropy``               negative mean entropy of target predictions
``im``                    information maximisation: diversity - conditional entropy (Gomes et al.
                          NIPS 2010; SHOT, Liang et al. ICML 2020)
``reverse``               reverse validation (Zhong et al. ECML-PKDD 2010)
``ensv``                  agreement with the candidate pool's ensemble (EnsV, Hu et al. NeurIPS
                          2024); a *pool* validator: :func:`~transferkit.selection.select` gives it
                          the pool's mean target probabilities as ``reference_probs``
``mixval``                consistency of predictions on mixed target samples (MixVal, Hu et al.
                          NeurIPS 2023); needs the candidate's predictions on the probes of
                          :func:`mixup_probe`, which only the code holding the model can make
========================  ==================================================================

Inputs (names shared by all validators, so :func:`score_candidate` can pass each the ones it takes):

- ``source_probs`` ``(n_s, K)``: the candidate's class probabilities on *held-out* labelled source
  samples (rows sum to 1; convert logits or decision values with :func:`softmax`);
- ``source_labels`` ``(n_s,)``: their labels, integers in ``[0, K)`` matching the columns;
- ``target_probs`` ``(n_t, K)``: class probabilities on unlabelled target samples;
- ``source_features`` ``(n_s, d)`` / ``target_features`` ``(n_t, d)``: features of the same held-out
  source and target samples, used to estimate the density ratio ``p_t(x) / p_s(x)`` (IWCV: input
  features or any fixed representation; DEV: the candidate's own embedding);
- ``mixup_probs`` ``(n_t, K)`` / ``mixup_partner`` ``(n_t,)``: the candidate's class probabilities
  on the mixed target samples ``r x_i + (1 - r) x_partner[i]`` of :func:`mixup_probe` (``r > 1/2``)
  and the partner index of each (``mixval``).

Target labels are never an input. Bad input raises :class:`~transferkit.core.errors.DataError`.
numpy only at import; scikit-learn is imported inside :func:`importance_weights`.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Literal, Mapping

import numpy as np

from transferkit.core.errors import ConfigError, DataError
from transferkit.selection._registry import VALIDATORS

#: the array arguments validators may take (every other argument is a tunable parameter)
ARRAY_ARGS = ("source_probs", "source_labels", "target_probs", "source_features", "target_features",
              "mixup_probs", "mixup_partner")
#: MixVal's mixing ratio: the share of the first sample in each probe (Hu et al. 2023; skada's default)
MIXUP_RATIO = 0.55
_TINY = 1e-12
_SUM_TOL = 1e-3


# -- input checks and small helpers ----------------------------------------------------------------


def softmax(logits: Any, *, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits`` ``(n, K)`` (or decision values) divided by ``temperature``."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise DataError(f"softmax: logits must be 2-D (n, K), got shape {z.shape}")
    if not np.isfinite(z).all():
        raise DataError("softmax: logits contain NaN or infinite values")
    if not temperature > 0:
        raise ConfigError(f"softmax: temperature must be > 0, got {temperature!r}")
    z = z / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def check_probs(probs: Any, name: str, func: str, *, min_rows: int = 1) -> np.ndarray:
    """``probs`` as a float array ``(n, K)`` of probabilities, or a :class:`DataError` that says
    what is wrong (shape, NaN, rows that are not probability vectors)."""
    p = np.asarray(probs)
    if p.ndim != 2 or p.shape[1] < 2:
        raise DataError(f"{func}: {name} must be 2-D (n_samples, n_classes) with >= 2 classes, "
                        f"got shape {p.shape}")
    if p.dtype.kind not in "fiub":
        raise DataError(f"{func}: {name} must be numeric, got dtype {p.dtype}")
    p = p.astype(np.float64, copy=False)
    if len(p) < min_rows:
        raise DataError(f"{func}: {name} needs at least {min_rows} rows, got {len(p)}")
    if not np.isfinite(p).all():
        raise DataError(f"{func}: {name} contains NaN or infinite values")
    sums = p.sum(axis=1)
    if (p < -_SUM_TOL).any() or np.abs(sums - 1.0).max(initial=0.0) > _SUM_TOL:
        raise DataError(
            f"{func}: {name} rows must be class probabilities (non-negative, summing to 1); row sums "
            f"range over [{sums.min():.3g}, {sums.max():.3g}]. If these are logits or decision "
            "values, convert them with transferkit.selection.softmax first")
    return np.clip(p, 0.0, None)


def check_labels(labels: Any, n: int, n_classes: int, func: str) -> np.ndarray:
    """``labels`` as int64 ``(n,)`` with values in ``[0, n_classes)``."""
    y = np.asarray(labels)
    if y.shape != (n,):
        raise DataError(f"{func}: source_labels must have shape ({n},) to match source_probs, "
                        f"got {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise DataError(f"{func}: source_labels must be integer class ids")
    elif y.dtype.kind not in "iub":
        raise DataError(f"{func}: source_labels must be integer class ids 0..K-1 (the columns of "
                        f"source_probs), got dtype {y.dtype}; encode them first")
    y = y.astype(np.int64)
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"{func}: source_labels must lie in [0, {n_classes}) (one per column of "
                        f"source_probs), got values in [{y.min()}, {y.max()}]")
    return y


def check_features(features: Any, name: str, func: str, *, n: int | None = None) -> np.ndarray:
    x = np.asarray(features)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.dtype.kind not in "fiub":
        raise DataError(f"{func}: {name} must be a numeric 2-D array (n_samples, n_features), "
                        f"got shape {x.shape} and dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        raise DataError(f"{func}: {name} contains NaN or infinite values")
    if n is not None and len(x) != n:
        raise DataError(f"{func}: {name} has {len(x)} rows but the matching probabilities have {n}; "
                        "they must describe the same samples")
    return x


def entropy_rows(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row of ``probs``, with ``0 log 0 = 0``."""
    p = np.asarray(probs, dtype=np.float64)
    return -np.sum(p * np.log(np.clip(p, _TINY, None)), axis=-1)


def _check_source(source_probs: Any, source_labels: Any, func: str) -> tuple[np.ndarray, np.ndarray]:
    p = check_probs(source_probs, "source_probs", func)
    return p, check_labels(source_labels, len(p), p.shape[1], func)


def _per_sample_loss(p: np.ndarray, y: np.ndarray, metric: str, func: str) -> np.ndarray:
    """Per-sample loss: 0-1 error (``metric="accuracy"``) or negative log-likelihood (``"nll"``)."""
    if metric == "accuracy":
        return (p.argmax(axis=1) != y).astype(np.float64)
    if metric == "nll":
        return -np.log(np.clip(p[np.arange(len(y)), y], _TINY, None))
    raise ConfigError(f"{func}: metric must be 'accuracy' or 'nll', got {metric!r}")


def _from_risk(risk: float, metric: str) -> float:
    """Higher-is-better score from an estimated risk: accuracy = 1 - error; -NLL."""
    return float(1.0 - risk) if metric == "accuracy" else float(-risk)


# -- density ratio ---------------------------------------------------------------------------------


def importance_weights(source_features: Any, target_features: Any, *, cv: int | None = 5,
                       C: float = 1.0, max_weight: float | None = 10.0, seed: int = 0) -> np.ndarray:
    """Density ratio ``w(x) = p_t(x) / p_s(x)`` at each source sample, from a domain classifier.

    A logistic regression (L2, inverse strength ``C``, on standardised features) is trained to tell
    target (1) from source (0). By Bayes' rule ``p_t(x) / p_s(x) = P(t|x) / P(s|x) * n_s / n_t``
    (the classifier's prior odds ``n_t / n_s`` removed) -- the discriminative density-ratio estimate
    used by DEV (You et al., ICML 2019, Sec. 4) and by Bickel et al. (JMLR 2009).

    ``cv >= 2``: each source sample is weighted by a classifier fitted on the other folds
    (stratified ``cv``-fold cross-fitting), so the weights do not reward overfitting the domain
    classifier; ``cv`` in ``(None, 0, 1)`` fits once on all samples. ``P(t|x)`` is clipped to
    ``[1e-6, 1 - 1e-6]`` and the weights to ``[0, max_weight]`` (``None``: no clipping); they are
    *not* normalised (their source mean estimates ``E_s[w] = 1``).

    Shapes: ``source_features`` ``(n_s, d)``, ``target_features`` ``(n_t, d)``; returns ``(n_s,)``.
    """
    func = "importance_weights"
    xs = check_features(source_features, "source_features", func)
    xt = check_features(target_features, "target_features", func)
    if xs.shape[1] != xt.shape[1]:
        raise DataError(f"{func}: source_features have {xs.shape[1]} columns but target_features "
                        f"have {xt.shape[1]}; use the same representation for both domains")
    if len(xs) == 0 or len(xt) == 0:
        raise DataError(f"{func}: both domains need samples, got {len(xs)} source and {len(xt)} target")
    if max_weight is not None and not max_weight > 0:
        raise ConfigError(f"{func}: max_weight must be > 0 or None, got {max_weight!r}")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ns, nt = len(xs), len(xt)
    X = np.vstack([xs, xt])
    d = np.r_[np.zeros(ns, dtype=np.int64), np.ones(nt, dtype=np.int64)]

    def make() -> Any:
        return make_pipeline(StandardScaler(),
                             LogisticRegression(C=C, max_iter=2000, random_state=seed))

    k = min(int(cv or 0), ns, nt)
    if k >= 2:
        from sklearn.model_selection import StratifiedKFold

        pt = np.empty(ns)
        folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        for train, test in folds.split(X, d):
            test_src = test[test < ns]
            if test_src.size:
                pt[test_src] = make().fit(X[train], d[train]).predict_proba(X[test_src])[:, 1]
    else:
        pt = make().fit(X, d).predict_proba(xs)[:, 1]
    pt = np.clip(pt, 1e-6, 1.0 - 1e-6)
    w = pt / (1.0 - pt) * (ns / nt)
    if max_weight is not None:
        w = np.minimum(w, max_weight)
    return w


def _weights(weights: Any, source_features: Any, target_features: Any, n: int, func: str,
             **kw: Any) -> np.ndarray:
    if weights is None:
        if source_features is None or target_features is None:
            raise ConfigError(f"{func}: needs source_features and target_features (to estimate "
                              "the density ratio) or precomputed weights")
        check_features(source_features, "source_features", func, n=n)
        return importance_weights(source_features, target_features, **kw)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any():
        raise DataError(f"{func}: weights must be {n} finite non-negative numbers (one per source "
                        f"sample), got shape {w.shape}")
    return w


# -- validators ------------------------------------------------------------------------------------


@VALIDATORS.register("source_accuracy", description="Accuracy on held-out labelled source data",
                     needs=("source_probs", "source_labels"))
def source_accuracy(source_probs: Any, source_labels: Any) -> float:
    """Accuracy on held-out labelled source data: ``mean_i 1[argmax_k p_ik = y_i]``.

    The plain "source validation" criterion (e.g. DomainBed's training-domain validation,
    Gulrajani & Lopez-Paz, ICLR 2021). Blind to the shift: it cannot see what adaptation does to
    the target. ``source_probs`` ``(n_s, K)``, ``source_labels`` ``(n_s,)``.
    """
    p, y = _check_source(source_probs, source_labels, "source_accuracy")
    if len(p) == 0:
        raise DataError("source_accuracy: no held-out source samples")
    return float(np.mean(p.argmax(axis=1) == y))


@VALIDATORS.register("iwcv", description="Importance-weighted source validation, weights from a "
                                         "domain classifier (Sugiyama et al. 2007)", needs=("source_probs", "source_labels", "source_features",
                                    "target_features"))
def iwcv(source_probs: Any, source_labels: Any, source_features: Any, target_features: Any, *, metric: Literal["accuracy", "nll"] = "accuracy",
         normalize: bool = True, weights: Any = None, cv: int | None = 5, C: float = 1.0,
         max_weight: float | None = 10.0, seed: int = 0) -> float:
    """Importance-weighted cross-validation (Sugiyama, Krauledat & Mueller, JMLR 8, 2007).

    Under covariate shift the target risk is ``E_t[l] = E_s[w(x) l(x, y)]`` with
    ``w = p_t(x) / p_s(x)``, so the held-out source loss is re-weighted:

    - ``normalize=False`` (Sugiyama et al., Eq. 7): ``R = (1/n_s) sum_i w_i l_i``;
    - ``normalize=True`` (default; self-normalised, lower variance): ``R = sum_i w_i l_i / sum_i w_i``.

    ``l`` is the 0-1 error (``metric="accuracy"``, returns the weighted accuracy ``1 - R``) or the
    negative log-likelihood ``-log p_{i, y_i}`` (``metric="nll"``, returns ``-R``). ``w`` comes from
    :func:`importance_weights` on ``source_features`` ``(n_s, d)`` / ``target_features`` ``(n_t, d)``
    (``cv``, ``C``, ``max_weight``, ``seed`` are passed on), or pass ``weights`` ``(n_s,)``. With
    equal domains ``w = 1`` and IWCV is plain source validation.
    """
    func = "iwcv"
    p, y = _check_source(source_probs, source_labels, func)
    w = _weights(weights, source_features, target_features, len(p), func, cv=cv, C=C,
                 max_weight=max_weight, seed=seed)
    loss = _per_sample_loss(p, y, metric, func)
    if normalize:
        if w.sum() <= 0:
            raise DataError(f"{func}: all importance weights are 0")
        risk = float(np.sum(w * loss) / np.sum(w))
    else:
        risk = float(np.mean(w * loss))
    return _from_risk(risk, metric)


@VALIDATORS.register("dev", description="Deep embedded validation: IWCV with a control variate "
                                        "(You et al. 2019)", needs=("source_probs", "source_labels", "source_features",
                                   "target_features"))
def dev(source_probs: Any, source_labels: Any, source_features: Any, target_features: Any, *, metric: Literal["accuracy", "nll"] = "nll",
        weights: Any = None, cv: int | None = 5, C: float = 1.0, max_weight: float | None = 10.0,
        seed: int = 0) -> float:
    """Deep embedded validation (You, Wang, Long & Wang, "Towards Accurate Model Selection in Deep
    Unsupervised Domain Adaptation", ICML 2019, Algorithm 1).

    IWCV with a control variate: with weighted losses ``L_i = w_i l_i`` and weights ``W_i = w_i``
    on held-out source samples (``E_s[W] = 1``),

    ``eta = -Cov(L, W) / Var(W)``,  ``R_DEV = mean(L) + eta * mean(W) - eta``.

    ``R_DEV`` is unbiased like ``mean(L)`` and has lower variance when ``L`` and ``W`` correlate.
    The weights ``w = P(t|x)/P(s|x) * n_s/n_t`` come from a domain classifier on the candidate's
    embedding (:func:`importance_weights` on ``source_features`` ``(n_s, d)`` and
    ``target_features`` ``(n_t, d)``), clipped but not normalised (normalising would force
    ``mean(W) = 1`` and cancel the control variate); or pass ``weights`` ``(n_s,)``. ``l`` is the
    NLL (``metric="nll"``, the paper's choice; returns ``-R_DEV``) or the 0-1 error
    (``metric="accuracy"``; returns ``1 - R_DEV``). When ``Var(W) = 0`` (equal domains) ``eta = 0``
    and DEV is plain source validation.
    """
    func = "dev"
    p, y = _check_source(source_probs, source_labels, func)
    if len(p) < 2:
        raise DataError(f"{func}: needs at least 2 held-out source samples, got {len(p)}")
    w = _weights(weights, source_features, target_features, len(p), func, cv=cv, C=C,
                 max_weight=max_weight, seed=seed)
    L = w * _per_sample_loss(p, y, metric, func)
    var_w = float(np.var(w, ddof=1))
    eta = 0.0 if var_w <= 1e-12 * max(1.0, float(np.mean(w)) ** 2) else \
        -float(np.cov(L, w, ddof=1)[0, 1]) / var_w
    risk = float(np.mean(L) + eta * np.mean(w) - eta)
    return _from_risk(risk, metric)


@VALIDATORS.register("snd", description="Soft neighbourhood density of target predictions "
                                        "(Saito et al. 2021)", needs=("target_probs",))
def snd(target_probs: Any, *, temperature: float = 0.05, chunk_size: int = 1024) -> float:
    """Soft neighbourhood density (Saito, Kim, Teterwak, Sclaroff, Darrell & Saenko, "Tune it the
    Right Way: Unsupervised Validation of Domain Adaptation via Soft Neighborhood Density",
    ICCV 2021, Eq. 1-3).

    Rows of ``target_probs`` ``(n_t, K)`` are L2-normalised (``f_i``); ``S_ij = f_i . f_j`` for
    ``j != i``; ``A_ij = exp(S_ij / tau) / sum_{k != i} exp(S_ik / tau)`` with ``tau = temperature``
    (0.05 in the paper); ``SND = -(1/n_t) sum_i sum_{j != i} A_ij log A_ij``. High when target
    predictions form dense neighbourhoods (clusters). Caution: predictions collapsed onto few
    classes also form dense neighbourhoods and score high -- combine with
    :func:`~transferkit.selection.check_collapse`. Memory ``O(chunk_size * n_t)``; ``n_t >= 2``.
    """
    func = "snd"
    p = check_probs(target_probs, "target_probs", func, min_rows=2)
    if not temperature > 0:
        raise ConfigError(f"{func}: temperature must be > 0, got {temperature!r}")
    if int(chunk_size) < 1:
        raise ConfigError(f"{func}: chunk_size must be >= 1, got {chunk_size!r}")
    f = p / np.linalg.norm(p, axis=1, keepdims=True)
    n = len(f)
    total = 0.0
    for start in range(0, n, int(chunk_size)):
        stop = min(start + int(chunk_size), n)
        s = (f[start:stop] @ f.T) / temperature
        rows = np.arange(stop - start)
        s[rows, rows + start] = -np.inf
        s = s - s.max(axis=1, keepdims=True)
        e = np.exp(s)
        a = e / e.sum(axis=1, keepdims=True)
        total += float(-np.sum(np.where(a > 0, a * np.log(np.where(a > 0, a, 1.0)), 0.0)))
    return total / n


@VALIDATORS.register("entropy", description="Negative mean entropy of target predictions",
                     needs=("target_probs",))
def prediction_entropy(target_probs: Any) -> float:
    """Negative mean prediction entropy on the target: ``-(1/n_t) sum_i H(p_i)``,
    ``H(p) = -sum_k p_k log p_k`` (nats).

    The entropy criterion used for validation by Morerio, Cavazza & Murino (ICLR 2018) and as a
    scorer in skada / pytorch-adapt: confident target predictions score high. Caution: a model that
    confidently predicts one class scores the maximum 0 -- combine with
    :func:`~transferkit.selection.check_collapse`. ``target_probs`` ``(n_t, K)``.
    """
    p = check_probs(target_probs, "target_probs", "prediction_entropy", min_rows=1)
    return float(-np.mean(entropy_rows(p)))


@VALIDATORS.register("im", description="Information maximisation: diversity minus conditional "
                                       "entropy of target predictions (SHOT)", needs=("target_probs",))
def information_maximization(target_probs: Any) -> float:
    """Information maximisation: ``H(mean_i p_i) - (1/n_t) sum_i H(p_i)``.

    The mutual information between target inputs and predicted labels (Gomes, Krause & Perona,
    "Discriminative Clustering by Regularized Information Maximization", NIPS 2010); its negative
    is SHOT's IM loss (Liang, Hu & Feng, ICML 2020, Eq. 2-3). The first term (diversity) rewards
    predictions spread over classes, the second (conditional entropy) confident ones, so unlike
    :func:`prediction_entropy` it penalises collapse onto one class. In ``[-log K, log K]``.
    ``target_probs`` ``(n_t, K)``.
    """
    p = check_probs(target_probs, "target_probs", "information_maximization", min_rows=1)
    return float(entropy_rows(p.mean(axis=0)) - np.mean(entropy_rows(p)))


@VALIDATORS.register("reverse", description="Reverse validation: a classifier trained on the target "
                                            "pseudo-labels, accuracy on held-out source (Zhong et al. "
                                            "2010)",
                     needs=("source_labels", "target_probs", "source_features", "target_features"))
def reverse_validation(source_labels: Any, target_probs: Any, source_features: Any,
                       target_features: Any, *, C: float = 1.0, seed: int = 0) -> float:
    """Reverse validation (Zhong, Fan, Yang, Verscheure & Ren, "Cross Validation Framework to
    Choose amongst Models and Datasets for Transfer Learning", ECML-PKDD 2010; used to tune DANN
    by Ganin et al., JMLR 2016, Sec. 5.1.3).

    The candidate labels the target, ``yhat_j = argmax_k p_jk`` (``target_probs`` ``(n_t, K)``); a
    *reverse* classifier ``g`` (standardisation + L2 logistic regression with inverse penalty
    ``C``) is fitted on ``(target_features, yhat)`` and scored on the held-out labelled source:
    ``RV = mean_i 1[g(source_features_i) = source_labels_i]``. Pseudo-labels that are consistent
    with the source classes transfer back; collapsed or scrambled ones do not (a candidate that
    predicts one class gets the source share of that class). Both feature arrays must live in one
    space (the input, or the candidate's representation applied to both domains).
    ``source_features`` ``(n_s, d)``, ``source_labels`` ``(n_s,)``, ``target_features`` ``(n_t, d)``.
    """
    func = "reverse_validation"
    pt = check_probs(target_probs, "target_probs", func, min_rows=2)
    K = pt.shape[1]
    ys = check_labels(source_labels, len(np.asarray(source_labels)), K, func)
    xs = check_features(source_features, "source_features", func, n=len(ys))
    xt = check_features(target_features, "target_features", func, n=len(pt))
    if xs.shape[1] != xt.shape[1]:
        raise DataError(f"{func}: source_features have {xs.shape[1]} columns but target_features "
                        f"have {xt.shape[1]}; use the same representation for both domains")
    if not C > 0:
        raise ConfigError(f"{func}: C must be > 0, got {C!r}")
    if len(ys) == 0:
        raise DataError(f"{func}: no held-out source samples")
    yhat = pt.argmax(axis=1)
    present = np.unique(yhat)
    if len(present) < 2:  # a constant reverse classifier
        return float(np.mean(ys == present[0]))
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    g = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000, random_state=seed))
    g.fit(xt, yhat)
    return float(np.mean(g.predict(xs) == ys))


@VALIDATORS.register("ensv", description="Agreement of target predictions with the ensemble of all "
                                         "candidates (EnsV, Hu et al. 2024)",
                     needs=("target_probs",), pool=True)
def ensemble_agreement(target_probs: Any, *, reference_probs: Any = None) -> float:
    """EnsV (Hu, Luo, Liang & Foo, "Towards Reliable Model Selection for Unsupervised Domain
    Adaptation: An Empirical Study and A Certified Baseline", NeurIPS 2024 Datasets and
    Benchmarks): the share of target samples on which the candidate's predicted class equals the
    class predicted by the ensemble of the whole candidate pool,
    ``(1/n_t) sum_j 1[argmax_k p_jk = argmax_k r_jk]``, where ``r`` (``reference_probs``,
    ``(n_t, K)``) is the mean of the candidates' target probabilities on the same target rows.

    A *pool* validator: its reference depends on the other candidates, so
    :func:`~transferkit.selection.select` computes ``r`` over the candidates the collapse guard
    accepted (all of them without the guard) and passes it in; called alone it needs
    ``reference_probs``. The ensemble is usually at least as accurate as the typical candidate, so
    the candidate closest to it is rarely the worst (the paper's "certified" property).
    ``target_probs`` ``(n_t, K)``.
    """
    func = "ensemble_agreement"
    p = check_probs(target_probs, "target_probs", func, min_rows=1)
    if reference_probs is None:
        raise ConfigError(f"{func}: reference_probs is missing: give the mean target probabilities "
                          "of the candidate pool, or let select() compute it (validator 'ensv')")
    r = check_probs(reference_probs, "reference_probs", func, min_rows=1)
    if r.shape != p.shape:
        raise DataError(f"{func}: reference_probs has shape {r.shape} but target_probs has {p.shape}; "
                        "every candidate must predict the same target rows, in the same order")
    return float(np.mean(p.argmax(axis=1) == r.argmax(axis=1)))


def mixup_probe(target_x: Any, *, ratio: float = MIXUP_RATIO, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The probes of ``mixval``: ``(mixed, partner)`` with ``mixed[i] = ratio * x[i] + (1 - ratio) *
    x[partner[i]]``, ``partner`` a random permutation of the target rows (``seed``). ``target_x``:
    the unlabelled target samples as the model takes them (features or images, any trailing
    shape). Token ids cannot be mixed: integer inputs raise :class:`DataError`."""
    func = "mixup_probe"
    x = np.asarray(target_x)
    if x.dtype.kind != "f":
        raise DataError(f"{func}: the target samples must be floating point to be mixed, got dtype "
                        f"{x.dtype} (token ids or labels cannot be interpolated); mixval needs "
                        "real-valued inputs such as features or images")
    if x.ndim < 1 or len(x) < 2:
        raise DataError(f"{func}: needs at least 2 target samples, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError(f"{func}: the target samples contain NaN or infinite values")
    if not 0.5 < float(ratio) < 1.0:
        raise ConfigError(f"{func}: ratio must be in (0.5, 1) so that the first sample dominates each "
                          f"probe, got {ratio!r}")
    partner = np.random.default_rng(seed).permutation(len(x))
    return (ratio * x + (1.0 - ratio) * x[partner]).astype(x.dtype, copy=False), partner


@VALIDATORS.register("mixval", description="Consistency of predictions on mixed target samples "
                                           "(MixVal, Hu et al. 2023)",
                     needs=("target_probs", "mixup_probs", "mixup_partner"))
def mixval(target_probs: Any, mixup_probs: Any, mixup_partner: Any) -> float:
    """MixVal (Hu, Liang, Liew, Xue, Bai & Wang, "Mixed Samples as Probes for Unsupervised Model
    Selection in Domain Adaptation", NeurIPS 2023). Each target sample ``i`` is mixed with a
    partner ``j = partner[i]`` as ``r x_i + (1 - r) x_j`` with ``r > 1/2`` (:func:`mixup_probe`);
    the probe's expected class is the candidate's own prediction ``a_i`` on the dominant sample.
    With ``a`` the predicted classes on the target and ``m`` those on the probes:

        ICE_intra = mean over {i : a_i = a_j} of 1[m_i = a_i]   (probes inside one predicted class)
        ICE_inter = mean over {i : a_i != a_j} of 1[m_i = a_i]  (probes between two classes)
        mixval = (ICE_intra + ICE_inter) / 2

    (the mean of the parts that have probes; skada's ``MixValScorer(ice_type="both")``). A model
    whose decision boundaries run through low-density regions between target clusters keeps the
    dominant sample's class on both kinds of probe. ``target_probs``/``mixup_probs`` ``(n_t, K)``,
    ``mixup_partner`` ``(n_t,)`` integers in ``[0, n_t)``.
    """
    func = "mixval"
    p = check_probs(target_probs, "target_probs", func, min_rows=2)
    m = check_probs(mixup_probs, "mixup_probs", func, min_rows=2)
    if m.shape != p.shape:
        raise DataError(f"{func}: mixup_probs has shape {m.shape} but target_probs has {p.shape}; "
                        "give one probe per target sample (mixup_probe)")
    j = np.asarray(mixup_partner)
    if j.shape != (len(p),) or j.dtype.kind not in "iu" or (j < 0).any() or (j >= len(p)).any():
        raise DataError(f"{func}: mixup_partner must be {len(p)} integer indices in [0, {len(p)}) "
                        f"(mixup_probe's partner), got shape {j.shape} and dtype {j.dtype}")
    a, mp = p.argmax(axis=1), m.argmax(axis=1)
    same = a == a[j]
    parts = [float(np.mean(mp[idx] == a[idx])) for idx in (same, ~same) if idx.any()]
    return float(np.mean(parts))


def pool_reference(target_probs: list[Any]) -> np.ndarray:
    """The mean of several candidates' target probabilities (the reference of ``ensv``); every
    array must have the same shape (the same target rows in the same order)."""
    arrs = [check_probs(t, "target_probs", "pool_reference", min_rows=1) for t in target_probs]
    if not arrs:
        raise ConfigError("pool_reference: no candidate target probabilities given")
    shapes = sorted({a.shape for a in arrs})
    if len(shapes) > 1:
        raise DataError(f"pool_reference: the candidates' target_probs differ in shape ({shapes}); "
                        "every candidate must predict the same target rows, in the same order")
    return np.mean(np.stack(arrs), axis=0)


def is_pool_validator(name: Any) -> bool:
    """True for a registered validator whose score depends on the whole candidate pool."""
    return isinstance(name, str) and name in VALIDATORS.names() and \
        bool(VALIDATORS.entry(name).tags.get("pool"))


# -- calling validators by name ---------------------------------------------------------------------


def resolve_validator(validator: str | Callable[..., float]) -> tuple[str, Callable[..., float]]:
    """``(name, function)`` for a registered name or a callable."""
    if callable(validator):
        return getattr(validator, "__name__", "validator"), validator
    return validator, VALIDATORS.get(validator)


def validator_inputs(validator: str | Callable[..., float]) -> tuple[str, ...]:
    """The array arguments a validator requires, e.g. ``("target_probs",)``. (IWCV and DEV list
    their features, which ``params={"weights": w}`` can replace.)"""
    _, fn = resolve_validator(validator)
    return tuple(name for name, p in inspect.signature(fn).parameters.items()
                 if name in ARRAY_ARGS and p.default is p.empty)


def score_candidate(validator: str | Callable[..., float], *, source_probs: Any = None,
                    source_labels: Any = None, target_probs: Any = None,
                    source_features: Any = None, target_features: Any = None,
                    mixup_probs: Any = None, mixup_partner: Any = None,
                    params: Mapping[str, Any] | None = None) -> float:
    """Score one candidate with ``validator`` (a registered name or a function), passing it only
    the arrays it takes (see the module docstring for their shapes) and ``params``.

    Raises :class:`ConfigError` naming the missing arrays when the validator needs one that is
    None, or an unknown parameter.
    """
    name, fn = resolve_validator(validator)
    arrays = {"source_probs": source_probs, "source_labels": source_labels,
              "target_probs": target_probs, "source_features": source_features,
              "target_features": target_features, "mixup_probs": mixup_probs,
              "mixup_partner": mixup_partner}
    sig = inspect.signature(fn)
    params = dict(params or {})
    kwargs: dict[str, Any] = {}
    missing = []
    for arg, p in sig.parameters.items():
        if arg not in ARRAY_ARGS:
            continue
        if arrays[arg] is not None or p.default is not p.empty:
            if arrays[arg] is not None:
                kwargs[arg] = arrays[arg]
        elif arg.endswith("_features") and params.get("weights") is not None:
            kwargs[arg] = None  # precomputed importance weights replace the features
        else:
            missing.append(arg)
    if missing:
        raise ConfigError(f"validator {name!r} needs {', '.join(missing)}; pass "
                          f"{' and '.join(missing)} (shapes in transferkit.selection.validators)")
    allowed = [a for a in sig.parameters if a not in ARRAY_ARGS]
    bad = [k for k in params if k not in allowed]
    if bad:
        raise ConfigError(f"validator {name!r} has no parameter {', '.join(map(repr, bad))}; "
                          f"its parameters: {', '.join(allowed) or 'none'}")
    return float(fn(**kwargs, **params))
