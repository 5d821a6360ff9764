"""Shared pieces of the feature-level (shallow) methods.

Every shallow method is a scikit-learn classifier: ``fit(X, y, sample_domain=None)`` with the
skada convention (``sample_domain >= 0`` source, ``< 0`` target; ``y == -1`` for unknown labels),
``predict(X)`` for target samples. Hyper-parameters are stored unchanged in ``__init__``; fitted
state ends with ``_``; so ``clone``, ``Pipeline`` (``pipe.fit(X, y, step__sample_domain=sd)``)
and ``GridSearchCV`` work.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from transferkit.core.errors import ConfigError, DataError

#: classifiers that shallow methods accept by name
CLASSIFIERS = ("1nn", "svm", "svm_cv", "logreg", "linear_svm")
#: the C grid of ``svm_cv`` (the CORAL / SA papers' code: libsvm ``-v 2`` over these values)
SVM_CV_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)


def make_classifier(spec: str | BaseEstimator | None, *, random_state: int | None = 0) -> BaseEstimator:
    """A fresh classifier from a name (``1nn``, ``svm``, ``linear_svm``, ``logreg``) or a clone
    of a given estimator. ``svm`` is libsvm's linear-kernel SVC with C = 1 (the model of the
    papers' "linear SVM"), computed by :class:`~transferkit.shallow._weighting.LinearKernelSVC`
    through a precomputed Gram matrix (same predictions, a few times faster). ``svm_cv`` is the
    same SVM with C picked from :data:`SVM_CV_GRID` by 2-fold cross-validation on the training
    (source) samples, the classifier protocol of the CORAL and SA papers' code (libsvm ``-v 2``);
    no target label is involved."""
    if spec is None:
        spec = "1nn"
    if not isinstance(spec, str):
        return clone(spec)
    if spec == "1nn":
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=1)
    if spec == "svm":  # libsvm's linear-kernel SVC (C = 1), through a precomputed Gram matrix
        from transferkit.shallow._weighting import LinearKernelSVC

        return LinearKernelSVC(C=1.0, random_state=random_state)
    if spec == "svm_cv":  # C chosen by 2-fold cross-validation on the (adapted) source only
        from sklearn.model_selection import GridSearchCV, StratifiedKFold

        from transferkit.shallow._weighting import LinearKernelSVC

        return GridSearchCV(LinearKernelSVC(C=1.0, random_state=random_state), {"C": list(SVM_CV_GRID)},
                            cv=StratifiedKFold(2, shuffle=True, random_state=random_state))
    if spec == "linear_svm":
        from sklearn.svm import LinearSVC

        return LinearSVC(C=1.0, random_state=random_state)
    if spec == "logreg":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=1.0, max_iter=2000, random_state=random_state)
    from transferkit.core.registry import suggest

    raise ConfigError(f"unknown classifier {spec!r}.{suggest(spec, list(CLASSIFIERS))} "
                      f"Known: {', '.join(CLASSIFIERS)}, or pass a scikit-learn estimator.")


def check_features(X: Any, name: str, *, ensure_min_samples: int = 1) -> np.ndarray:
    """``X`` as a dense, finite, 2-D float64 array, or a :class:`DataError` naming ``name`` and the
    problem (scikit-learn's input validation underneath, so its usual messages are kept: sparse
    input, complex or non-numeric values, NaN/inf, no samples or no features)."""
    from sklearn.utils.validation import check_array

    if hasattr(X, "ndim") and getattr(X, "ndim", 2) != 2 or (isinstance(X, (list, tuple)) and np.ndim(X) != 2):
        raise DataError(f"{name}: X must be 2-D (n_samples, n_features), got shape {np.shape(X)}. Reshape your "
                        "data either using X.reshape(-1, 1) if it has a single feature or X.reshape(1, -1) "
                        "if it contains a single sample")
    try:
        X = check_array(X, dtype=np.float64, ensure_min_samples=ensure_min_samples, ensure_min_features=1,
                        input_name="X")
    except TypeError as exc:
        import scipy.sparse as sp

        if sp.issparse(X):
            raise DataError(f"{name}: {exc} Convert it with X.toarray().") from None
        raise TypeError(f"{name}: X must hold numbers: {exc}") from None
    except ValueError as exc:
        msg = str(exc)
        if "NaN" in msg or "infinity" in msg:
            rows = np.flatnonzero(~np.isfinite(np.asarray(X, dtype=np.float64)).all(axis=1))
            msg = f"X contains NaN or infinite values (rows {rows[:5].tolist()}); impute or drop them first"
        raise DataError(f"{name}: {msg}") from None
    return X


def check_domain_arrays(
    X: Any, y: Any = None, sample_domain: Any = None, *, require_target: bool = True,
    require_labels: bool = True, name: str = "fit",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate ``(X, y, sample_domain)`` and return them as arrays.

    When ``sample_domain`` is None, samples with ``y == -1`` are target and the rest source.
    Raises :class:`DataError` on NaN/inf, shape mismatches, an empty source or target domain,
    unlabelled source samples and a source with a single class.
    """
    X = check_features(X, name)
    n = len(X)
    if y is None:
        if require_labels:
            raise DataError(f"{name} requires y to be passed, but the target y is None; pass the source "
                            "labels (-1 for unlabelled target rows)")
        y = np.full(n, -1)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        import warnings

        from sklearn.exceptions import DataConversionWarning

        warnings.warn(f"A column-vector y was passed when a 1d array was expected ({name}); it is raveled: "
                      "pass y with shape (n_samples,)",
                      DataConversionWarning, stacklevel=3)
        y = y.ravel()
    if y.shape != (n,):
        raise DataError(f"{name}: X has {n} rows but y has shape {y.shape}")
    if y.dtype.kind not in "iufb":
        raise DataError(f"{name}: Unknown label type: y must hold integer class labels (-1 for unknown), got "
                        f"dtype {y.dtype}; "
                        "encode other labels with sklearn.preprocessing.LabelEncoder first")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{name}: Unknown label type: y holds continuous values; it must hold integer "
                            "class labels (-1 for unknown)")
    y = y.astype(np.int64)
    if sample_domain is None:
        sample_domain = np.where(y == -1, -2, 1)
    sample_domain = np.asarray(sample_domain).astype(np.int64)
    if sample_domain.shape != (n,):
        raise DataError(f"{name}: X has {n} rows but sample_domain has shape {sample_domain.shape}")
    src = sample_domain >= 0
    if not src.any():
        raise DataError(f"{name}: no source samples (sample_domain >= 0)")
    if require_labels:
        ys = y[src]
        if (ys < 0).any():
            raise DataError(f"{name}: {int((ys < 0).sum())} source samples have no label (-1)")
        if np.unique(ys).size < 2:
            raise DataError(f"{name}: the source domain has a single class (one class only: {ys[0]}); "
                            "at least two classes are needed to train a classifier")
    if require_target and src.all():
        raise DataError(f"{name}: no target samples; pass sample_domain with negative ids for "
                        "target rows (or y = -1 for them)")
    return X, y, sample_domain


def split_domains(X: Any, y: Any = None, sample_domain: Any = None, **kw: Any
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Xs, ys, Xt)`` after :func:`check_domain_arrays`."""
    X, y, sd = check_domain_arrays(X, y, sample_domain, **kw)
    src = sd >= 0
    return X[src], y[src], X[~src]


class DAClassifier(ClassifierMixin, BaseEstimator):
    """Base of shallow methods that adapt and then train a classifier on the adapted source.

    Subclasses implement ``_adapt(Xs, ys, Xt) -> (Zs, Zt)`` storing what ``_transform_target``
    needs, or override ``fit``/``predict`` altogether (instance weighting, transport).
    """

    def _adapt(self, Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _transform_target(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    #: False for classifiers trained on the source alone, which need no target samples
    uses_target: ClassVar[bool] = True

    def fit(self, X: Any, y: Any = None, sample_domain: Any = None) -> "DAClassifier":
        Xs, ys, Xt = split_domains(X, y, sample_domain, name=f"{type(self).__name__}.fit",
                                   require_target=self.uses_target)
        self.classes_ = np.unique(ys)
        self.n_features_in_ = X.shape[1] if hasattr(X, "shape") else np.asarray(X).shape[1]
        Zs, _ = self._adapt(Xs, ys, Xt)
        self.estimator_ = make_classifier(getattr(self, "estimator", None)).fit(Zs, ys)
        return self

    def _check_predict_input(self, X: Any) -> np.ndarray:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        X = check_features(X, f"{type(self).__name__}.predict")
        if X.shape[1] != self.n_features_in_:
            cls = type(self).__name__
            raise DataError(f"{cls}.predict: X has {X.shape[1]} features, but {cls} is expecting "
                            f"{self.n_features_in_} features as input (as in fit); pass target samples "
                            "with the same features")
        return X

    def predict(self, X: Any) -> np.ndarray:
        """Labels of target samples."""
        return self.estimator_.predict(self._transform_target(self._check_predict_input(X)))

    def decision_scores(self, X: Any) -> np.ndarray:
        """Class probabilities (or decision values) of target samples, (n, n_classes)."""
        Z = self._transform_target(self._check_predict_input(X))
        est = self.estimator_
        if hasattr(est, "predict_proba"):
            return est.predict_proba(Z)
        return est.decision_function(Z)


class _SourceOnly(DAClassifier):
    """Classifier trained on the source domain alone (target data are ignored, and may be absent)."""

    uses_target = False

    def _adapt(self, Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return Xs, Xt

    def _transform_target(self, X: np.ndarray) -> np.ndarray:
        return X
