"""KLIEP: Kullback-Leibler importance estimation procedure (Sugiyama, Nakajima, Kashima, von Buenau
& Kawanabe, "Direct Importance Estimation with Model Selection and Its Application to Covariate
Shift Adaptation", NIPS 2007; Annals of the Institute of Statistical Mathematics 60, 2008).

The density ratio ``w(x) = p_target(x) / p_source(x)`` is modelled as a non-negative combination
of Gaussian kernels centred on ``b`` target samples ``c_l``:

    w(x) = sum_l alpha_l exp(-gamma ||x - c_l||^2),   alpha >= 0,

and fitted by maximising the target log-likelihood under the normalisation constraint on the source:

    max_alpha  sum_j log w(xt_j)   s.t.  (1/n_s) sum_i w(xs_i) = 1,  alpha >= 0,

with the paper's projected gradient ascent (gradient step, projection onto the constraint,
clipping at 0, renormalisation), taking the largest of a decreasing list of step sizes that still
increases the objective. The width ``gamma`` is chosen by likelihood cross-validation on the
*unlabelled target* samples (``cv`` folds: fit on the others, score the mean held-out ``log w``);
no label is used. A classifier that accepts ``sample_weight`` is then trained on the weighted
source.

Shapes: ``X`` (n, d) with source and target rows; centres (b, d), ``b = min(n_centers, n_t)``;
``alpha_`` (b,); ``weights_`` (n_source,) with mean 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from transferkit.core.errors import ConfigError, DataError
from transferkit.core.registries import SHALLOW
from transferkit.shallow._weighting import (
    ImportanceWeightingClassifier,
    _check_positive,
)

#: step sizes tried from the largest down (Sugiyama et al.'s reference code uses 10^3 ... 10^-3)
_STEPS = tuple(10.0 ** k for k in range(3, -4, -1))


def kliep_fit_alpha(A: np.ndarray, bvec: np.ndarray, *, max_iter: int = 100, tol: float = 1e-6) -> np.ndarray:
    """``alpha`` maximising ``mean_j log (A alpha)_j`` s.t. ``b'alpha = 1``, ``alpha >= 0``.

    ``A`` (n_t, b): kernel between target samples and centres; ``bvec`` (b,): mean kernel between
    source samples and centres. For each step size (large to small) up to ``max_iter`` projected
    gradient steps are taken while the objective increases; a step size is left when a step
    increases it by less than ``tol`` relative (and a step that decreases it is rejected).
    """
    bb = float(bvec @ bvec)
    if bb <= 0:
        raise DataError("KLIEP: the source samples are too far from every centre (all kernel values 0); "
                        "use a wider kernel (smaller gamma)")

    def project(a: np.ndarray) -> np.ndarray:
        a = a + (1.0 - float(bvec @ a)) * bvec / bb
        a = np.maximum(a, 0.0)
        s = float(bvec @ a)
        return a / s if s > 0 else np.full_like(a, 1.0 / float(bvec.sum()))

    alpha = project(np.ones(A.shape[1]))
    Aa = np.maximum(A @ alpha, 1e-300)
    best = float(np.mean(np.log(Aa)))
    n = len(A)
    for step in _STEPS:
        for _ in range(max_iter):
            cand = project(alpha + (step / n) * (A.T @ (1.0 / Aa)))
            Ac = np.maximum(A @ cand, 1e-300)
            s = float(np.mean(np.log(Ac)))
            if s <= best:
                break
            gain = s - best
            alpha, Aa, best = cand, Ac, s
            if gain <= tol * max(abs(best), 1e-12):
                break
    return alpha


@SHALLOW.register("kliep", description="KLIEP: density-ratio source weights + weighted classifier (Sugiyama et al. 2008)")
class KLIEP(ImportanceWeightingClassifier):
    """KLIEP importance weighting (Sugiyama et al., NIPS 2007 / AISM 2008), then a weighted classifier.

    Parameters
    ----------
    gamma : width of ``exp(-gamma ||x - c||^2)``; ``None`` chooses it by likelihood cross-validation
        on the unlabelled target samples among ``gamma_med / f^2`` for ``f`` in ``bandwidth_factors``
        (``gamma_med`` from the median heuristic on source + target, i.e. the kernel width
        ``sigma`` is scaled by ``f``).
    bandwidth_factors : the candidate multipliers of the median-heuristic width.
    n_centers : number of target samples used as kernel centres (paper: 100).
    cv : folds of the likelihood cross-validation (paper: 5).
    max_iter : projected-gradient steps per step size.
    tol : a step size is left when a step improves the mean log-likelihood by less than this
        (relative).
    estimator : classifier name (``"svm"``, ``"linear_svm"``, ``"logreg"``) or any scikit-learn
        classifier whose ``fit`` accepts ``sample_weight``.
    random_state : seed of the centre subsample and of the CV folds.

    Fitted: ``weights_`` (n_source,), ``gamma_``, ``cv_scores_`` (candidate gamma -> mean held-out
    log-likelihood), ``centers_`` (b, d), ``alpha_`` (b,), ``estimator_``.
    """

    def __init__(self, *, gamma: float | None = None,
                 bandwidth_factors: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0), n_centers: int = 100,
                 cv: int = 5, max_iter: int = 100, tol: float = 1e-6, estimator: Any = "svm",
                 random_state: int | None = 0) -> None:
        self.gamma = gamma
        self.bandwidth_factors = bandwidth_factors
        self.n_centers = n_centers
        self.cv = cv
        self.max_iter = max_iter
        self.tol = tol
        self.estimator = estimator
        self.random_state = random_state

    def _check_params(self) -> None:
        _check_positive("gamma", self.gamma, allow_none=True)
        _check_positive("tol", self.tol)
        try:
            factors = [float(f) for f in self.bandwidth_factors]
        except (TypeError, ValueError):
            factors = []
        if not factors or not all(np.isfinite(f) and f > 0 for f in factors):
            raise ConfigError(f"bandwidth_factors={self.bandwidth_factors!r} must be a non-empty list of positive numbers")
        for name, low in (("n_centers", 1), ("cv", 2), ("max_iter", 1)):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
                raise ConfigError(f"{name}={v!r} must be an integer >= {low}")

    def _centre_dists(self, Xs: np.ndarray, Xt_fit: np.ndarray, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centres drawn from ``Xt_fit`` and squared distances target-centres, source-centres."""
        from transferkit.shallow._kernels import sq_dists

        b = min(int(self.n_centers), len(Xt_fit))
        centers = Xt_fit[np.sort(rng.choice(len(Xt_fit), b, replace=False))]
        return centers, sq_dists(Xt_fit, centers), sq_dists(Xs, centers)

    def _alpha(self, D_tc: np.ndarray, D_sc: np.ndarray, gamma: float) -> np.ndarray:
        return kliep_fit_alpha(np.exp(-gamma * D_tc), np.exp(-gamma * D_sc).mean(axis=0), max_iter=int(self.max_iter),
                               tol=float(self.tol))

    def _source_weights(self, Xs: np.ndarray, Xt: np.ndarray) -> np.ndarray:
        from transferkit.shallow._kernels import median_heuristic_gamma, sq_dists

        rng = np.random.default_rng(self.random_state)
        if self.gamma is not None:
            gamma = float(self.gamma)
            self.cv_scores_ = {}
        else:
            if len(Xt) < self.cv:
                raise DataError(f"KLIEP.fit: {len(Xt)} target samples cannot be split into cv={self.cv} folds; "
                                "lower cv or pass a fixed gamma")
            g_med = median_heuristic_gamma(np.vstack([Xs, Xt]), random_state=self.random_state)
            candidates = [g_med / float(f) ** 2 for f in self.bandwidth_factors]
            folds = np.array_split(rng.permutation(len(Xt)), int(self.cv))
            held: dict[float, list[np.ndarray]] = {g: [] for g in candidates}
            for k in range(len(folds)):
                train = np.concatenate([folds[i] for i in range(len(folds)) if i != k])
                # centres from the training folds only; distances shared by every candidate width
                centers, D_tc, D_sc = self._centre_dists(Xs, Xt[train], np.random.default_rng(self.random_state))
                D_hc = sq_dists(Xt[folds[k]], centers)
                for g in candidates:
                    wk = np.exp(-g * D_hc) @ self._alpha(D_tc, D_sc, g)
                    held[g].append(np.log(np.maximum(wk, 1e-300)))
            scores = {g: float(np.mean(np.concatenate(v))) for g, v in held.items()}
            gamma = max(scores, key=scores.get)
            self.cv_scores_ = scores
        centers, D_tc, D_sc = self._centre_dists(Xs, Xt, rng)
        alpha = self._alpha(D_tc, D_sc, gamma)
        self.gamma_ = gamma
        self.centers_ = centers
        self.alpha_ = alpha
        return np.exp(-gamma * D_sc) @ alpha
