"""Source-only baselines on features: 1-nearest-neighbour, linear SVM, logistic regression."""

from __future__ import annotations

from transferkit.core.registries import SHALLOW
from transferkit.shallow.base import _SourceOnly


@SHALLOW.register("1nn", description="1-nearest-neighbour trained on the source only (baseline)")
class OneNN(_SourceOnly):
    """1-nearest-neighbour classifier on source features (the 1NN row of shallow DA papers)."""

    def __init__(self) -> None:
        pass

    estimator = "1nn"


@SHALLOW.register("svm", description="Linear SVM trained on the source only (baseline)")
class SourceSVM(_SourceOnly):
    """Linear-kernel SVM (libsvm, one-vs-one) trained on source features, penalty ``C``."""

    def __init__(self, *, C: float = 1.0) -> None:
        self.C = C

    @property
    def estimator(self):  # type: ignore[override]
        from sklearn.svm import SVC

        return SVC(kernel="linear", C=self.C)


@SHALLOW.register("logreg", description="Logistic regression trained on the source only (baseline)")
class SourceLogReg(_SourceOnly):
    """L2-regularised logistic regression (lbfgs) trained on source features, inverse penalty ``C``."""

    def __init__(self, *, C: float = 1.0, max_iter: int = 2000) -> None:
        self.C = C
        self.max_iter = max_iter

    @property
    def estimator(self):  # type: ignore[override]
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, max_iter=self.max_iter)
