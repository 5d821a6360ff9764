"""ESZSL: "An embarrassingly simple approach to zero-shot learning" (Romera-Paredes & Torr, ICML
2015, PMLR 37:2152-2161).

Model. Features ``X`` (``d x m``, one column per training sample), labels ``Y`` (``m x z``,
``Y[i, k] = 1`` when sample ``i`` is of seen class ``k``, else ``-1``: the paper's
``Y in {-1, 1}^{m x z}``), class semantic vectors ``S`` (``a x z``, one column per seen class).
A linear map ``V`` (``d x a``) from features to the semantic space is learnt so that
``X' V S`` fits ``Y``:

    min_V  ||X' V S - Y||_F^2 + gamma ||V S||_F^2 + lambda ||X' V||_F^2 + gamma lambda ||V||_F^2

whose minimiser has the closed form (setting the gradient to zero gives
``(X X' + gamma I) V (S S' + lambda I) = X Y S'``)

    V = (X X' + gamma I_d)^-1  X Y S'  (S S' + lambda I_a)^-1.

A sample ``x`` of any class, seen or unseen, is assigned ``argmax_k x' V s_k`` over the semantic
vectors ``s_k`` of the candidate classes. Sources for the formula and the coding: the paper (Sec.
3.1), the authors' MATLAB code (github.com/bernard24/Embarrassingly-simple-ZSL,
``validationClasses_generalscript.m``: the same two inverses, kernelised, with ``gamma`` and
``lambda`` chosen from ``10^{-3..3}`` on classes held out from the seen ones), and the
re-implementation of Xian et al.'s benchmark (github.com/mvp18/Popular-ZSL-Algorithms,
``ESZSL/eszsl.py``). Both codes fill ``Y`` with 0/1 rather than -1/1
(``label_coding="onehot"`` here); the paper's -1/1 is the default.

Here the semantic vectors come from anywhere: binary attributes, or (as in transferkit's
benchmarks) sentence embeddings of class descriptions ("a photo of a sandal") by MiniLM.

:func:`select_eszsl_params` chooses ``gamma`` and ``lambda`` as the authors did, by zero-shot
accuracy on seen classes held out in turn as pseudo-unseen classes: no unseen-class label is used.
Generalised zero-shot evaluation (predictions over seen and unseen classes, harmonic mean) is in
:meth:`ESZSL.evaluate` (:mod:`transferkit.zeroshot.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from transferkit.core.errors import ConfigError, DataError
from transferkit.zeroshot.metrics import generalized_zsl_accuracy, per_class_accuracy

__all__ = ["ESZSL", "ESZSLSelection", "eszsl_weights", "select_eszsl_params"]

#: the authors' search grid for gamma and lambda
DEFAULT_GRID = tuple(10.0 ** k for k in range(-3, 4))


def _check_reg(value: Any, name: str) -> float:
    if not isinstance(value, (int, float, np.floating)) or isinstance(value, bool) or not np.isfinite(value) \
            or value <= 0:
        raise ConfigError(f"got {value!r}; expected a positive number", name)
    return float(value)


def eszsl_weights(X: np.ndarray, Y: np.ndarray, S: np.ndarray, *, gamma: float, lam: float) -> np.ndarray:
    """The closed form ``V = (X X' + gamma I)^-1 X Y S' (S S' + lam I)^-1`` in the paper's
    orientation: ``X`` ``(d, m)`` features by columns, ``Y`` ``(m, z)``, ``S`` ``(a, z)``;
    returns ``V`` ``(d, a)``. Two symmetric positive-definite solves, no explicit inverse."""
    import scipy.linalg as sla

    g, lmb = _check_reg(gamma, "gamma"), _check_reg(lam, "lam")
    X, Y, S = (np.asarray(a, dtype=np.float64) for a in (X, Y, S))
    if X.ndim != 2 or Y.ndim != 2 or S.ndim != 2 or X.shape[1] != Y.shape[0] or Y.shape[1] != S.shape[1]:
        raise DataError(f"eszsl_weights: expected X (d, m), Y (m, z), S (a, z); got {X.shape}, {Y.shape}, {S.shape}")
    A = X @ X.T
    A[np.diag_indices_from(A)] += g
    B = S @ S.T
    B[np.diag_indices_from(B)] += lmb
    left = sla.solve(A, X @ (Y @ S.T), assume_a="pos")  # (d, a)
    return sla.solve(B, left.T, assume_a="pos").T  # right-multiply by B^-1 (B symmetric)


def _code_labels(y_idx: np.ndarray, z: int, coding: str) -> np.ndarray:
    if coding not in ("pm1", "onehot"):
        raise ConfigError(f"got {coding!r}; expected 'pm1' (the paper's -1/1) or 'onehot' (0/1)", "label_coding")
    Y = np.full((len(y_idx), z), -1.0 if coding == "pm1" else 0.0)
    Y[np.arange(len(y_idx)), y_idx] = 1.0
    return Y


class _SpectralSolver:
    """ESZSL for many (gamma, lambda) at once: with ``X X' = U diag(e) U'`` and
    ``S S' = W diag(f) W'``, ``V = U [ (U' X Y S' W) / ((e + gamma)(f + lambda)') ] W'``."""

    def __init__(self, Xr: np.ndarray, Y: np.ndarray, S: np.ndarray) -> None:
        e, self.U = np.linalg.eigh(Xr.T @ Xr)
        f, self.W = np.linalg.eigh(S @ S.T)
        self.e, self.f = np.clip(e, 0.0, None), np.clip(f, 0.0, None)
        self.M = self.U.T @ (Xr.T @ (Y @ S.T)) @ self.W  # (d, a)

    def core(self, gamma: float, lam: float) -> np.ndarray:
        return self.M / np.outer(self.e + gamma, self.f + lam)

    def weights(self, gamma: float, lam: float) -> np.ndarray:
        return self.U @ self.core(gamma, lam) @ self.W.T


def _check_inputs(X: Any, y: Any, class_embeddings: Any, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from transferkit.shallow.base import check_features

    X = check_features(X, name)
    S = np.asarray(class_embeddings, dtype=np.float64) if not isinstance(class_embeddings, np.ndarray) \
        else class_embeddings.astype(np.float64)
    if S.ndim != 2 or S.shape[0] < 2 or S.shape[1] < 1:
        raise DataError(f"{name}: class_embeddings must be a 2-D array (n_classes >= 2, n_dims), one row per class "
                        f"(seen and unseen); got shape {S.shape}")
    if not np.all(np.isfinite(S)):
        raise DataError(f"{name}: class_embeddings contain NaN or infinite values")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise DataError(f"{name}: y must be 1-D with one label per row of X; got shape {y.shape} for {len(X)} rows")
    if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
        raise DataError(f"{name}: y must hold integer class indices (rows of class_embeddings), got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= len(S):
        raise DataError(f"{name}: labels must index rows of class_embeddings, 0..{len(S) - 1}; got values in "
                        f"[{y.min()}, {y.max()}]")
    return X, y, S


class ESZSL(ClassifierMixin, BaseEstimator):
    """ESZSL (Romera-Paredes & Torr, ICML 2015): module docstring.

    ``gamma``: regulariser of the feature side (``(X X' + gamma I)^-1``); ``lam``: of the
    semantic side (``(S S' + lambda I)^-1``); ``label_coding``: ``"pm1"`` (-1/1, the paper) or
    ``"onehot"`` (0/1, the authors' code). ``seen_penalty``: subtracted from the scores of seen
    classes when predicting over seen and unseen classes together (calibrated stacking, Chao et al.,
    ECCV 2016; 0 = plain ESZSL).

    ``fit(X, y, class_embeddings)``: ``X`` ``(n, d)`` features of samples of seen classes, ``y``
    their class indices, ``class_embeddings`` ``(K, a)`` the semantic vectors of **all** ``K``
    classes (row ``k`` = class ``k``); classes absent from ``y`` are the unseen ones. Fitted:
    ``V_`` ``(d, a)``, ``classes_`` (``0..K-1``), ``seen_classes_``, ``unseen_classes_``,
    ``class_embeddings_``.
    """

    def __init__(self, *, gamma: float = 1.0, lam: float = 1.0,
                 label_coding: Literal["pm1", "onehot"] = "pm1", seen_penalty: float = 0.0) -> None:
        self.gamma = gamma
        self.lam = lam
        self.label_coding = label_coding
        self.seen_penalty = seen_penalty

    def fit(self, X: Any, y: Any, class_embeddings: Any) -> ESZSL:
        X, y, S = _check_inputs(X, y, class_embeddings, "ESZSL")
        seen = np.unique(y)
        if len(seen) < 2:
            raise DataError(f"ESZSL: the training samples cover {len(seen)} class; give samples of at least 2 "
                            "seen classes")
        if not isinstance(self.seen_penalty, (int, float)) or not np.isfinite(self.seen_penalty):
            raise ConfigError(f"got {self.seen_penalty!r}; expected a finite number", "seen_penalty")
        Y = _code_labels(np.searchsorted(seen, y), len(seen), self.label_coding)
        self.V_ = eszsl_weights(X.T, Y, S[seen].T, gamma=self.gamma, lam=self.lam)
        self.classes_ = np.arange(len(S))
        self.seen_classes_ = seen
        self.unseen_classes_ = np.setdiff1d(self.classes_, seen)
        self.class_embeddings_ = S
        self.n_features_in_ = X.shape[1]
        return self

    def _check_X(self, X: Any) -> np.ndarray:
        from sklearn.exceptions import NotFittedError

        from transferkit.shallow.base import check_features

        if not hasattr(self, "V_"):
            raise NotFittedError("this ESZSL is not fitted yet; call fit(X, y, class_embeddings) first")
        X = check_features(X, "ESZSL")
        if X.shape[1] != self.n_features_in_:
            raise DataError(f"ESZSL: X has {X.shape[1]} features, but the model was fitted on {self.n_features_in_}")
        return X

    def _classes(self, classes: Any) -> np.ndarray:
        if not hasattr(self, "V_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this ESZSL is not fitted yet; call fit(X, y, class_embeddings) first")
        if classes is None:
            return self.classes_
        c = np.asarray(classes, dtype=np.int64).ravel()
        if c.size == 0 or c.min() < 0 or c.max() >= len(self.classes_):
            raise DataError(f"ESZSL: candidate classes must be indices in 0..{len(self.classes_) - 1}, got "
                            f"{np.asarray(classes).tolist()}")
        return c

    def decision_function(self, X: Any, classes: Any = None) -> np.ndarray:
        """Scores ``x' V s_k`` ``(n, len(classes))`` for the candidate ``classes`` (default all
        classes; ``seen_penalty`` is subtracted from the seen ones)."""
        X = self._check_X(X)
        c = self._classes(classes)
        scores = X @ self.V_ @ self.class_embeddings_[c].T
        if self.seen_penalty:
            scores = scores - self.seen_penalty * np.isin(c, self.seen_classes_)[None, :]
        return scores

    def predict(self, X: Any, classes: Any = None) -> np.ndarray:
        """The best-scoring class among ``classes`` (default all: generalised zero-shot)."""
        c = self._classes(classes)
        return c[np.argmax(self.decision_function(X, c), axis=1)]

    def evaluate(self, X: Any, y: Any) -> dict[str, float]:
        """Accuracies on labelled test samples ``X``, ``y`` (class indices) of seen and unseen
        classes, all per-class means (Xian et al. 2019):

        - ``zsl_unseen``: samples of unseen classes, predictions among the unseen classes only
          (conventional zero-shot);
        - ``supervised_seen``: samples of seen classes, predictions among the seen classes only;
        - ``gzsl_seen``, ``gzsl_unseen``: predictions among all classes (generalised zero-shot);
        - ``harmonic``: their harmonic mean H.
        """
        X = self._check_X(X)
        y = np.asarray(y).astype(np.int64)
        if y.shape != (len(X),):
            raise DataError(f"ESZSL.evaluate: y must hold one class index per row of X, got shape {y.shape}")
        seen, unseen = self.seen_classes_, self.unseen_classes_
        if len(unseen) == 0:
            raise DataError("ESZSL.evaluate: every class was seen in training; there is no unseen class to evaluate")
        mu, ms = np.isin(y, unseen), np.isin(y, seen)
        out = {"zsl_unseen": per_class_accuracy(y[mu], self.predict(X[mu], unseen)) if mu.any() else float("nan"),
               "supervised_seen": per_class_accuracy(y[ms], self.predict(X[ms], seen)) if ms.any() else float("nan")}
        g = generalized_zsl_accuracy(y, self.predict(X), seen, unseen)
        out.update(gzsl_seen=g["seen"], gzsl_unseen=g["unseen"], harmonic=g["harmonic"])
        return out


@dataclass
class ESZSLSelection:
    """Result of :func:`select_eszsl_params`: the chosen ``gamma`` and ``lam``, the mean
    validation accuracy of every grid point (``scores[i, j]`` for ``gammas[i]``, ``lams[j]``)
    and the validation class splits."""

    gamma: float
    lam: float
    score: float
    gammas: list[float]
    lams: list[float]
    scores: np.ndarray
    splits: list[list[int]] = field(default_factory=list)


def select_eszsl_params(X: Any, y: Any, class_embeddings: Any, *, gammas: Any = DEFAULT_GRID, lams: Any = DEFAULT_GRID,
                        label_coding: Literal["pm1", "onehot"] = "pm1", n_splits: int = 5, val_fraction: float = 0.2,
                        seed: int = 0) -> ESZSLSelection:
    """Choose ``gamma`` and ``lam`` without unseen classes, as Romera-Paredes & Torr's code
    does: ``n_splits`` times, a random ``val_fraction`` of the *seen* classes (at least 2) is held
    out as pseudo-unseen classes, ESZSL is fitted on the others, and its zero-shot accuracy
    (per-class mean, predictions among the held-out classes) is measured on their samples. The
    grid point with the best mean accuracy wins (ties: the first, i.e. the smallest values)."""
    X, y, S = _check_inputs(X, y, class_embeddings, "select_eszsl_params")
    g_list = [_check_reg(g, "gammas") for g in np.ravel(gammas)]
    l_list = [_check_reg(v, "lams") for v in np.ravel(lams)]
    if not g_list or not l_list:
        raise ConfigError("empty search grid", "gammas")
    if not isinstance(n_splits, int) or n_splits < 1:
        raise ConfigError(f"got {n_splits!r}; expected a positive integer", "n_splits")
    seen = np.unique(y)
    n_val = max(2, round(float(val_fraction) * len(seen)))
    if len(seen) - n_val < 2:
        raise DataError(f"select_eszsl_params: {len(seen)} seen classes are too few to hold {n_val} out for validation "
                        "and train on at least 2; give more seen classes or fix gamma and lam")
    gen = np.random.default_rng(seed)
    scores = np.zeros((len(g_list), len(l_list)))
    splits = []
    for _ in range(n_splits):
        val = np.sort(gen.choice(seen, size=n_val, replace=False))
        train = np.setdiff1d(seen, val)
        splits.append(val.tolist())
        mt, mv = np.isin(y, train), np.isin(y, val)
        Y = _code_labels(np.searchsorted(train, y[mt]), len(train), label_coding)
        solver = _SpectralSolver(X[mt], Y, S[train].T)
        P = X[mv] @ solver.U  # (n_val, d)
        Q = solver.W.T @ S[val].T  # (a, z_val)
        for i, g in enumerate(g_list):
            for j, lmb in enumerate(l_list):
                pred = val[np.argmax(P @ (solver.core(g, lmb) @ Q), axis=1)]
                scores[i, j] += per_class_accuracy(y[mv], pred) / n_splits
    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return ESZSLSelection(gamma=g_list[i], lam=l_list[j], score=float(scores[i, j]), gammas=g_list, lams=l_list,
                          scores=scores, splits=splits)
