"""Two-sample shift tests: is the target drawn from the same distribution as the source?

Every test takes ``source`` ``(m, d)`` and ``target`` ``(k, d)`` (a 1-D array is one feature) and
returns a :class:`ShiftTestResult` with a p-value for ``H0: P_source = P_target``.

- :func:`mmd_test` -- kernel maximum mean discrepancy (Gretton, Borgwardt, Rasch, Schoelkopf &
  Smola, "A Kernel Two-Sample Test", JMLR 2012), unbiased ``MMD^2_u`` with a Gaussian kernel whose
  bandwidth is the median heuristic on the pooled sample, permutation p-value.
- :func:`mmd_linear` -- the linear-time statistic ``MMD^2_l`` of the same paper (Sec. 6) with its
  Gaussian null (or a permutation null), for very large samples.
- :func:`energy_test` -- energy distance (Szekely & Rizzo, "Energy statistics", J. Stat. Planning
  and Inference 2013; "Testing for equal distributions in high dimension", InterStat 2004),
  permutation p-value.
- :func:`classifier_test` -- classifier two-sample test (Lopez-Paz & Oquab, "Revisiting Classifier
  Two-Sample Tests", ICLR 2017): held-out accuracy of a domain classifier, exact p-value.

Permutation p-values are ``(1 + #{T_b >= T_obs}) / (1 + B)`` (valid at every ``B``; the smallest
attainable value is ``1 / (B + 1)``). The quadratic tests compute the pooled ``n x n`` kernel or
distance matrix once; a permutation then only needs ``a' M a`` and ``a' M 1`` for the 0/1 vector
``a`` marking the samples relabelled "source", evaluated for a batch of permutations with one
matrix product ``A M`` (``A``: ``(B, n)``), i.e. ``O(B n^2)`` BLAS work and no Python loop per
permutation. Above ``max_samples`` pooled samples they subsample (or switch to ``mmd_linear``).
:func:`permutation_test` runs the same engine on a precomputed pooled kernel or distance matrix.

Standardise features with statistics of the *pooled* sample (or not at all): preprocessing fitted
on each domain separately removes mean/variance shift and breaks the permutation null; the tests
warn when both domains arrive separately centred.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from transferkit.assess._registry import DISTANCES, SHIFT_TESTS
from transferkit.core.errors import ConfigError, DataError
from transferkit.core.linalg import sq_dists
from transferkit.core.seed import rng as _rng

Seed = int | np.random.Generator | None

#: pooled sample size above which the quadratic tests subsample (or use the linear-time test)
MAX_SAMPLES = 4000
#: pooled rows used for the median heuristic when the sample is larger than this
_MEDIAN_ROWS = 1000
#: float64 entries of one batch of permutation indicator rows (about 32 MB)
_BATCH_ENTRIES = 4_000_000


@dataclass(frozen=True)
class ShiftTestResult:
    """Outcome of a two-sample test.

    ``statistic``: the test statistic (its meaning depends on ``method``); ``p_value``: probability
    under ``H0`` (same distribution) of a statistic at least as large; ``n_permutations``: ``B``
    for permutation p-values, 0 for analytic/exact ones; ``method``: registry name of the test;
    ``details``: bandwidth, sample sizes, subsampling, ... (JSON-friendly values).
    """

    statistic: float
    p_value: float
    n_permutations: int
    method: str
    details: dict[str, Any] = field(default_factory=dict)

    def rejects(self, alpha: float = 0.05) -> bool:
        """``True`` when ``p_value <= alpha`` (the test has level ``alpha``)."""
        return bool(self.p_value <= alpha)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "statistic": self.statistic, "p_value": self.p_value,
                "n_permutations": self.n_permutations, "details": dict(self.details)}


# ----------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------
def _as_matrix(a: Any, what: str, name: str, min_samples: int) -> np.ndarray:
    if a is None:
        raise DataError(f"{name}: the {what} sample is missing (got None)")
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists, ...
        raise DataError(f"{name}: cannot read the {what} sample as an array: {exc}") from exc
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{name}: the {what} sample must be 2-D (n_samples, n_features) or 1-D, "
                        f"got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise DataError(f"{name}: the {what} domain is empty (0 samples); both domains need samples")
    if arr.shape[1] == 0:
        raise DataError(f"{name}: the {what} sample has no features (shape {arr.shape})")
    if arr.shape[0] < min_samples:
        raise DataError(f"{name}: the {what} domain has {arr.shape[0]} sample(s); "
                        f"this test needs at least {min_samples}")
    return check_finite_matrix(arr, f"{name} ({what})")


def check_finite_matrix(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` (2-D) as float64; :class:`DataError` for non-numeric data and NaN/inf.

    Same checks and messages as :func:`transferkit.shallow.base.check_domain_arrays` for ``X``,
    kept here in numpy only: importing ``transferkit.shallow`` loads scikit-learn (seconds), which
    the array-only tests and scores do not need.
    """
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{name}: X must be numeric, got dtype {arr.dtype}")
    X = arr.astype(np.float64, copy=False)
    finite = np.isfinite(X)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        raise DataError(f"{name}: X contains NaN or infinite values (rows {rows[:5].tolist()}); "
                        "impute or drop them first")
    return X


def check_two_samples(source: Any, target: Any, *, name: str = "shift test",
                      min_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(source, target)`` as float64 ``(m, d)`` and ``(k, d)`` arrays.

    Raises :class:`DataError` on an empty or too small domain, NaN/inf, non-numeric data and
    feature widths that differ. 1-D inputs are read as one feature.
    """
    xs = _as_matrix(source, "source", name, min_samples)
    xt = _as_matrix(target, "target", name, min_samples)
    if xs.shape[1] != xt.shape[1]:
        raise DataError(f"{name}: source has {xs.shape[1]} features but target has {xt.shape[1]}; "
                        "both domains must be described by the same features (same encoder and "
                        "preprocessing)")
    return xs, xt


def separately_centred(xs: np.ndarray, xt: np.ndarray) -> bool:
    """True when *both* domains have every feature mean at 0 (each standardised on its own).

    Preprocessing fitted per domain (centring, z-scoring) depends on the domain labels: it removes
    mean shift by construction and breaks the exchangeability that permutation and classifier
    tests rely on (p-values near 1 even for clearly different domains). Standardise with
    statistics of the pooled sample (a label-blind transform keeps the tests exact) before testing.
    """
    def centred(x: np.ndarray) -> bool:
        if len(x) < 2:
            return False
        scale = np.maximum(np.abs(x).max(axis=0), 1e-300)
        return bool(np.all(np.abs(x.mean(axis=0)) <= 1e-9 * scale))

    return centred(xs) and centred(xt)


_CENTRED_WARNING = ("both domains are centred separately (every feature has mean 0 in each domain): "
                    "per-domain standardisation removes mean shift and invalidates the test's null "
                    "distribution; standardise on the pooled sample instead")


def _warn_if_separately_centred(centred: bool, name: str, details: dict[str, Any]) -> None:
    if centred:
        import warnings

        details["warning"] = _CENTRED_WARNING
        warnings.warn(f"{name}: {_CENTRED_WARNING}", UserWarning, stacklevel=3)


def _check_permutations(n_permutations: int, name: str, minimum: int = 1) -> int:
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) \
            or n_permutations < minimum:
        raise ConfigError(f"{name}: n_permutations must be an integer >= {minimum}, "
                          f"got {n_permutations!r}")
    return int(n_permutations)


def _subsample(xs: np.ndarray, xt: np.ndarray, max_samples: int, gen: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, bool]:
    """At most ``max_samples`` pooled rows, keeping the source/target proportion."""
    m, k = len(xs), len(xt)
    if max_samples is None or m + k <= max_samples:
        return xs, xt, False
    ms = min(m, max(2, round(max_samples * m / (m + k))))
    ks = min(k, max(2, max_samples - ms))
    xs = xs[np.sort(gen.choice(m, ms, replace=False))]
    xt = xt[np.sort(gen.choice(k, ks, replace=False))]
    return xs, xt, True


# ----------------------------------------------------------------------------------------------
# pooled matrices and the permutation engine
# ----------------------------------------------------------------------------------------------
def pooled_sq_dists(Z: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(n, n)`` between the rows of ``Z``, exact zero diagonal."""
    return sq_dists(Z)


def median_heuristic(D2: np.ndarray, gen: np.random.Generator | None = None) -> float:
    """``sigma^2`` = median of the off-diagonal squared distances in ``D2`` (pooled sample).

    Above 1000 rows the median is taken over a random subset of 1000 rows (label-blind, so the
    bandwidth stays a function of the pooled sample and permutation tests stay exact). Falls back to the mean, then 1, when the
    median is 0 (many duplicated points). The kernel is ``exp(-||x - y||^2 / (2 sigma^2))``.
    """
    n = len(D2)
    if n < 2:
        return 1.0
    if n > _MEDIAN_ROWS:
        gen = gen if gen is not None else np.random.default_rng(0)
        idx = np.sort(gen.choice(n, _MEDIAN_ROWS, replace=False))
        D2 = D2[np.ix_(idx, idx)]
        n = _MEDIAN_ROWS
    vals = D2[np.triu_indices(n, k=1)]
    med = float(np.median(vals))
    if not np.isfinite(med) or med <= 1e-12:
        med = float(np.mean(vals))
        if not np.isfinite(med) or med <= 1e-12:
            med = 1.0
    return med


def _pair_sums(M: np.ndarray, r: np.ndarray, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For 0/1 rows ``a`` of ``A``: ``(a' M a, a' r)`` with ``r = M 1``."""
    return np.einsum("bi,bi->b", A @ M, A), A @ r


def _mmd2_from_sums(q: np.ndarray, ar: np.ndarray, T: float, m: int, k: int) -> np.ndarray:
    """Unbiased ``MMD^2_u`` from ``Sxx = q``, ``Sxy = ar - q``, ``Syy = T - 2 ar + q`` (zero
    diagonal kernel matrix, so ``Sxx`` and ``Syy`` are sums over ``i != j``)."""
    sxx, sxy, syy = q, ar - q, T - 2.0 * ar + q
    return sxx / (m * (m - 1)) + syy / (k * (k - 1)) - 2.0 * sxy / (m * k)


def _energy_from_sums(q: np.ndarray, ar: np.ndarray, T: float, m: int, k: int) -> np.ndarray:
    """Energy distance ``2 mean|x-y| - mean|x-x'| - mean|y-y'|`` (V-statistics) from the sums."""
    sxx, sxy, syy = q, ar - q, T - 2.0 * ar + q
    return 2.0 * sxy / (m * k) - sxx / (m * m) - syy / (k * k)


def permutation_statistics(M: np.ndarray, m: int, stat: Any, n_permutations: int,
                           gen: np.random.Generator) -> tuple[float, np.ndarray]:
    """Observed and permuted values of a statistic that is a function of pooled pair sums.

    ``M`` is the symmetric ``(n, n)`` pooled matrix with zero diagonal whose first ``m`` rows are
    the source; ``stat(q, ar, T, m, k)`` maps ``q = a' M a``, ``ar = a' M 1``, ``T = 1' M 1`` to
    the statistic. Returns ``(T_obs, T_perm)`` with ``T_perm`` of shape ``(n_permutations,)``;
    each permutation relabels a uniformly random subset of ``m`` pooled samples as source, and a
    batch of permutations costs one ``(B, n) x (n, n)`` matrix product.
    """
    n = len(M)
    k = n - m
    r = M.sum(axis=1)
    T = float(r.sum())
    a0 = np.zeros((1, n))
    a0[0, :m] = 1.0
    q0, ar0 = _pair_sums(M, r, a0)
    observed = float(stat(q0, ar0, T, m, k)[0])
    out = np.empty(n_permutations)
    batch = max(1, min(n_permutations, _BATCH_ENTRIES // max(n, 1)))
    rows = np.arange(batch)[:, None]
    for start in range(0, n_permutations, batch):
        b = min(batch, n_permutations - start)
        keys = gen.random((b, n))
        idx = np.argpartition(keys, m - 1, axis=1)[:, :m]
        A = np.zeros((b, n))
        A[rows[:b], idx] = 1.0
        q, ar = _pair_sums(M, r, A)
        out[start:start + b] = stat(q, ar, T, m, k)
    return observed, out


_STATISTICS = {"mmd": _mmd2_from_sums, "energy": _energy_from_sums}


def permutation_test(M: Any, n_source: int, *, statistic: Literal["mmd", "energy"] = "mmd",
                     n_permutations: int = 500, seed: Seed = 0) -> ShiftTestResult:
    """Permutation two-sample test on a precomputed pooled matrix.

    ``M`` ``(n, n)``: symmetric pooled kernel matrix (``statistic="mmd"``, unbiased ``MMD^2_u``)
    or pooled distance matrix (``statistic="energy"``, energy distance) whose first ``n_source``
    rows/columns are the source samples and the rest the target; the diagonal is ignored. Use it
    for custom kernels or distances, or to test many splits of one pooled sample without
    recomputing the matrix. :func:`mmd_test` and :func:`energy_test` build ``M`` and call the same
    engine. Cost ``O(B n^2)``.
    """
    if statistic not in _STATISTICS:
        raise ConfigError(f"permutation_test: statistic={statistic!r}; choose 'mmd' or 'energy'")
    B = _check_permutations(n_permutations, "permutation_test")
    M = np.array(M, dtype=np.float64)     # a copy: the diagonal is zeroed below
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise DataError(f"permutation_test: M must be a square (n, n) matrix, got shape {M.shape}")
    n = len(M)
    if isinstance(n_source, bool) or not isinstance(n_source, (int, np.integer)) \
            or not 2 <= n_source <= n - 2:
        raise DataError(f"permutation_test: n_source={n_source!r} must leave at least 2 source and "
                        f"2 target samples among the {n} rows of M")
    if not np.isfinite(M).all():
        raise DataError("permutation_test: M contains NaN or infinite values")
    rows = np.unique(np.linspace(0, n - 1, min(n, 64)).astype(np.int64))   # cheap spot check
    if not np.allclose(M[rows], M[:, rows].T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(M[rows]).max()))):
        raise DataError("permutation_test: M must be symmetric (a pooled kernel or distance matrix)")
    np.fill_diagonal(M, 0.0)
    observed, perms = permutation_statistics(M, int(n_source), _STATISTICS[statistic], B, _rng(seed))
    return ShiftTestResult(statistic=observed, p_value=permutation_p_value(observed, perms),
                           n_permutations=B, method=statistic,
                           details={"statistic": "MMD^2_u" if statistic == "mmd" else "energy distance",
                                    "n_source": int(n_source), "n_target": n - int(n_source),
                                    "precomputed": True})


def permutation_p_value(observed: float, permuted: np.ndarray) -> float:
    """``(1 + #{T_b >= T_obs}) / (1 + B)``, with a relative tolerance of ``1e-10`` for ties."""
    tol = 1e-10 * max(1.0, abs(observed))
    return float((1 + np.count_nonzero(permuted >= observed - tol)) / (1 + len(permuted)))


# ----------------------------------------------------------------------------------------------
# MMD
# ----------------------------------------------------------------------------------------------
def _rbf_pooled(Z: np.ndarray, bandwidth: float | None, gen: np.random.Generator
                ) -> tuple[np.ndarray, float]:
    K = pooled_sq_dists(Z)
    sigma2 = median_heuristic(K, gen) if bandwidth is None else _check_bandwidth(bandwidth) ** 2
    K *= -1.0 / (2.0 * sigma2)
    np.exp(K, out=K)
    np.fill_diagonal(K, 0.0)
    return K, math.sqrt(sigma2)


def _check_bandwidth(bandwidth: float) -> float:
    if not isinstance(bandwidth, (int, float, np.floating)) or not bandwidth > 0 \
            or not math.isfinite(bandwidth):
        raise ConfigError(f"bandwidth must be a positive number (kernel width sigma) or None for "
                          f"the median heuristic, got {bandwidth!r}")
    return float(bandwidth)


def _observed(M: np.ndarray, m: int, from_sums: Any) -> float:
    """The statistic of the observed split (first ``m`` rows source) from a pooled matrix, through
    the same pair-sum engine the permutations use."""
    r = M.sum(axis=1)
    a = np.zeros((1, len(M)))
    a[0, :m] = 1.0
    q, ar = _pair_sums(M, r, a)
    return float(from_sums(q, ar, float(r.sum()), m, len(M) - m)[0])


@DISTANCES.register("mmd2", description="Unbiased MMD^2 with a Gaussian kernel, median-heuristic "
                                        "bandwidth (Gretton et al. 2012)")
def mmd2_unbiased(source: Any, target: Any, *, bandwidth: float | None = None) -> float:
    """Unbiased squared maximum mean discrepancy (Gretton et al., JMLR 2012, Lemma 6).

    ``MMD^2_u = 1/(m(m-1)) sum_{i!=j} k(x_i, x_j) + 1/(k(k-1)) sum_{i!=j} k(y_i, y_j)
    - 2/(m k) sum_{i,j} k(x_i, y_j)`` with ``k(x, y) = exp(-||x - y||^2 / (2 sigma^2))``;
    ``sigma`` = ``bandwidth`` or the median pairwise distance of the pooled sample. ``source``
    ``(m, d)``, ``target`` ``(k, d)``, ``m, k >= 2``. Can be slightly negative under no shift.
    Cost ``O((m + k)^2 d)`` time and ``O((m + k)^2)`` memory.
    """
    xs, xt = check_two_samples(source, target, name="mmd2_unbiased", min_samples=2)
    K, _ = _rbf_pooled(np.vstack([xs, xt]), bandwidth, np.random.default_rng(0))
    return _observed(K, len(xs), _mmd2_from_sums)


@SHIFT_TESTS.register("mmd", description="Kernel MMD two-sample test, Gaussian kernel with median "
                                         "heuristic, permutation p-value (Gretton et al. 2012)",
                      complexity="quadratic")
def mmd_test(source: Any, target: Any, *, n_permutations: int = 500, seed: Seed = 0,
             bandwidth: float | None = None, max_samples: int | None = MAX_SAMPLES,
             large: Literal["subsample", "linear"] = "subsample") -> ShiftTestResult:
    """MMD permutation test (Gretton et al., "A Kernel Two-Sample Test", JMLR 2012).

    Statistic: the unbiased ``MMD^2_u`` (see :func:`mmd2_unbiased`) with a Gaussian kernel whose
    width ``sigma`` is the median pairwise distance of the pooled sample (of 1000 random pooled
    rows above that size; label-blind, so it is the same for every permutation and the test stays
    exact). p-value: ``n_permutations`` random relabellings
    of the pooled sample. ``source`` ``(m, d)``, ``target`` ``(k, d)``, ``m, k >= 2``.

    When ``m + k > max_samples`` (default 4000), ``large="subsample"`` draws ``max_samples`` pooled
    rows (keeping the domain proportions, with ``seed``), ``large="linear"`` runs
    :func:`mmd_linear` on all rows instead. ``max_samples=None`` never subsamples.
    Cost: ``O(n^2 d + B n^2)`` for ``n = m + k`` pooled samples and ``B`` permutations.
    """
    B = _check_permutations(n_permutations, "mmd_test")
    if large not in ("subsample", "linear"):
        raise ConfigError(f"mmd_test: large={large!r}; choose 'subsample' or 'linear'")
    xs, xt = check_two_samples(source, target, name="mmd_test", min_samples=2)
    gen = _rng(seed)
    n_in = (len(xs), len(xt))
    centred = separately_centred(xs, xt)
    if max_samples is not None and len(xs) + len(xt) > max_samples and large == "linear":
        return mmd_linear(xs, xt, n_permutations=0, seed=gen, bandwidth=bandwidth)
    xs, xt, sub = _subsample(xs, xt, max_samples, gen)
    m, k = len(xs), len(xt)
    K, sigma = _rbf_pooled(np.vstack([xs, xt]), bandwidth, gen)
    observed, perms = permutation_statistics(K, m, _mmd2_from_sums, B, gen)
    details = {"statistic": "MMD^2_u", "kernel": "rbf", "bandwidth": sigma,
               "bandwidth_rule": "median" if bandwidth is None else "given",
               "n_source": n_in[0], "n_target": n_in[1], "n_source_used": m, "n_target_used": k,
               "subsampled": sub, "null_mean": float(perms.mean()), "null_std": float(perms.std())}
    _warn_if_separately_centred(centred, "mmd_test", details)
    return ShiftTestResult(statistic=observed, p_value=permutation_p_value(observed, perms),
                           n_permutations=B, method="mmd", details=details)


def _linear_h(xs: np.ndarray, xt: np.ndarray, n_pairs: int, sigma2: float) -> np.ndarray:
    """``h_i = k(x_{2i-1}, x_{2i}) + k(y_{2i-1}, y_{2i}) - k(x_{2i-1}, y_{2i}) - k(x_{2i}, y_{2i-1})``."""
    x1, x2 = xs[0:2 * n_pairs:2], xs[1:2 * n_pairs:2]
    y1, y2 = xt[0:2 * n_pairs:2], xt[1:2 * n_pairs:2]

    def kern(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-np.einsum("ij,ij->i", a - b, a - b) / (2.0 * sigma2))

    return kern(x1, x2) + kern(y1, y2) - kern(x1, y2) - kern(x2, y1)


@SHIFT_TESTS.register("mmd_linear", description="Linear-time MMD test with Gaussian null (Gretton "
                                                "et al. 2012, Sec. 6), for very large samples",
                      complexity="linear")
def mmd_linear(source: Any, target: Any, *, n_permutations: int = 0, seed: Seed = 0,
               bandwidth: float | None = None) -> ShiftTestResult:
    """Linear-time MMD test (Gretton et al., JMLR 2012, Sec. 6 and Corollary 16).

    Both samples are shuffled (``seed``) and cut into ``P = floor(min(m, k) / 2)`` disjoint pairs;
    ``MMD^2_l = 1/P sum_i h_i`` with ``h_i = k(x_{2i-1}, x_{2i}) + k(y_{2i-1}, y_{2i})
    - k(x_{2i-1}, y_{2i}) - k(x_{2i}, y_{2i-1})``. Under ``H0`` it is asymptotically
    ``N(0, var(h) / P)``, so ``p = 1 - Phi(sqrt(P) MMD^2_l / std(h))`` (``n_permutations=0``);
    ``n_permutations > 0`` uses that many pooled relabellings instead (``O(B n d)``). The kernel
    width is the median pairwise distance of at most 1000 pooled rows. Time ``O(n d)``, memory
    ``O(n d)``: use it beyond tens of thousands of samples; it has less power than
    :func:`mmd_test` at the same ``n``. Samples beyond ``2 P`` per domain are not used.
    """
    B = _check_permutations(n_permutations, "mmd_linear", minimum=0)
    xs, xt = check_two_samples(source, target, name="mmd_linear", min_samples=2)
    gen = _rng(seed)
    m, k = len(xs), len(xt)
    Z = np.vstack([xs, xt])
    if bandwidth is None:
        rows = np.sort(gen.choice(m + k, min(m + k, _MEDIAN_ROWS), replace=False))
        sigma2 = median_heuristic(pooled_sq_dists(Z[rows]), gen)
    else:
        sigma2 = _check_bandwidth(bandwidth) ** 2
    P = min(m, k) // 2
    xs_sh, xt_sh = xs[gen.permutation(m)], xt[gen.permutation(k)]
    h = _linear_h(xs_sh, xt_sh, P, sigma2)
    stat = float(h.mean())
    details: dict[str, Any] = {"statistic": "MMD^2_l", "kernel": "rbf", "bandwidth": math.sqrt(sigma2),
                               "bandwidth_rule": "median" if bandwidth is None else "given",
                               "n_source": m, "n_target": k, "n_pairs": P}
    if B == 0:
        sd = float(h.std(ddof=1)) if P > 1 else 0.0
        if sd <= 0.0:
            p = 1.0 if stat <= 0 else 0.0
        else:   # upper tail of N(0, 1): 1 - Phi(z) = erfc(z / sqrt 2) / 2
            p = 0.5 * math.erfc(math.sqrt(P) * stat / sd / math.sqrt(2.0))
        details["null"] = "gaussian"
        details["h_std"] = sd
        return ShiftTestResult(stat, p, 0, "mmd_linear", details)
    perms = np.empty(B)
    for b in range(B):
        order = gen.permutation(m + k)
        zs, zt = Z[order[:m]], Z[order[m:]]
        perms[b] = _linear_h(zs, zt, P, sigma2).mean()
    details["null"] = "permutation"
    return ShiftTestResult(stat, permutation_p_value(stat, perms), B, "mmd_linear", details)


# ----------------------------------------------------------------------------------------------
# energy distance
# ----------------------------------------------------------------------------------------------
def _pooled_dists(Z: np.ndarray) -> np.ndarray:
    D = pooled_sq_dists(Z)
    np.sqrt(D, out=D)
    return D


@DISTANCES.register("energy", description="Energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'| "
                                          "(Szekely & Rizzo 2013)")
def energy_distance(source: Any, target: Any) -> float:
    """Energy distance (Szekely & Rizzo, J. Stat. Planning and Inference 2013, Eq. 2.1).

    ``E = 2/(m k) sum_{i,j} ||x_i - y_j|| - 1/m^2 sum_{i,j} ||x_i - x_j|| - 1/k^2 sum_{i,j}
    ||y_i - y_j||`` (V-statistics), ``>= 0`` and 0 only for identical empirical distributions.
    In one dimension it is the square of :func:`scipy.stats.energy_distance`. Shapes: ``(m, d)``,
    ``(k, d)``. Cost ``O((m + k)^2 d)``.
    """
    xs, xt = check_two_samples(source, target, name="energy_distance")
    return _observed(_pooled_dists(np.vstack([xs, xt])), len(xs), _energy_from_sums)


@SHIFT_TESTS.register("energy", description="Energy-distance two-sample test with permutation "
                                            "p-value (Szekely & Rizzo 2004)",
                      complexity="quadratic")
def energy_test(source: Any, target: Any, *, n_permutations: int = 500, seed: Seed = 0,
                max_samples: int | None = MAX_SAMPLES) -> ShiftTestResult:
    """Energy test of equal distributions (Szekely & Rizzo, InterStat 2004; JSPI 2013).

    Statistic: the energy distance ``E`` of :func:`energy_distance` (the classical test statistic
    ``m k / (m + k) E`` is in ``details["scaled_statistic"]``; both give the same permutation
    p-value). p-value from ``n_permutations`` relabellings of the pooled sample. No tuning
    parameter; invariant to rotations and translations, not to feature scaling. ``m + k >
    max_samples`` subsamples as :func:`mmd_test` does. Cost ``O(n^2 d + B n^2)``.
    """
    B = _check_permutations(n_permutations, "energy_test")
    xs, xt = check_two_samples(source, target, name="energy_test", min_samples=2)
    gen = _rng(seed)
    n_in = (len(xs), len(xt))
    centred = separately_centred(xs, xt)
    xs, xt, sub = _subsample(xs, xt, max_samples, gen)
    m, k = len(xs), len(xt)
    D = _pooled_dists(np.vstack([xs, xt]))
    observed, perms = permutation_statistics(D, m, _energy_from_sums, B, gen)
    details = {"statistic": "energy distance", "scaled_statistic": observed * m * k / (m + k),
               "n_source": n_in[0], "n_target": n_in[1], "n_source_used": m, "n_target_used": k,
               "subsampled": sub, "null_mean": float(perms.mean()), "null_std": float(perms.std())}
    _warn_if_separately_centred(centred, "energy_test", details)
    return ShiftTestResult(statistic=observed, p_value=permutation_p_value(observed, perms),
                           n_permutations=B, method="energy", details=details)


# ----------------------------------------------------------------------------------------------
# classifier two-sample test
# ----------------------------------------------------------------------------------------------
def default_domain_classifier(random_state: int = 0) -> Any:
    """Standardisation + L2 logistic regression with balanced class weights (a linear classifier)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(
        C=1.0, solver="liblinear", max_iter=1000, class_weight="balanced", random_state=random_state))


@SHIFT_TESTS.register("classifier", description="Classifier two-sample test: held-out accuracy of "
                                                "a domain classifier (Lopez-Paz & Oquab 2017)",
                      complexity="classifier")
def classifier_test(source: Any, target: Any, *, n_permutations: int = 0, seed: Seed = 0,
                    estimator: Any = None, test_size: float = 0.5) -> ShiftTestResult:
    """Classifier two-sample test (C2ST; Lopez-Paz & Oquab, ICLR 2017).

    Pool the samples with domain labels (1 = target, 0 = source), split them (stratified,
    ``test_size``, ``seed``), train ``estimator`` (default: standardisation + logistic regression
    with balanced class weights) on one part and predict the other. Statistic: held-out accuracy.
    Under ``H0`` the held-out domain labels are exchangeable given the predictions, so the number
    of correctly detected target samples is hypergeometric (margins fixed): the exact one-sided
    p-value is Fisher's test on the held-out confusion table. This equals the paper's
    ``N(1/2, 1/(4 n_te))`` approximation for balanced domains and stays valid for unbalanced ones.
    ``n_permutations > 0`` replaces it with a Monte-Carlo permutation of the held-out labels.
    Shapes: ``(m, d)``, ``(k, d)``, at least 4 samples per domain.
    """
    B = _check_permutations(n_permutations, "classifier_test", minimum=0)
    if not 0.0 < float(test_size) < 1.0:
        raise ConfigError(f"classifier_test: test_size must be in (0, 1), got {test_size!r}")
    xs, xt = check_two_samples(source, target, name="classifier_test", min_samples=4)
    from sklearn.base import clone
    from sklearn.model_selection import train_test_split

    gen = _rng(seed)
    rs = int(gen.integers(2**31 - 1))
    Z = np.vstack([xs, xt])
    d = np.r_[np.zeros(len(xs), dtype=np.int64), np.ones(len(xt), dtype=np.int64)]
    Ztr, Zte, dtr, dte = train_test_split(Z, d, test_size=test_size, stratify=d, random_state=rs)
    clf = clone(estimator) if estimator is not None else default_domain_classifier(rs)
    pred = np.asarray(clf.fit(Ztr, dtr).predict(Zte)).astype(np.int64)
    n_te = len(dte)
    acc = float(np.mean(pred == dte))
    tp = int(np.sum((pred == 1) & (dte == 1)))
    t1, p1 = int(dte.sum()), int(pred.sum())
    tpr = tp / t1 if t1 else 0.0
    tnr = float(np.sum((pred == 0) & (dte == 0))) / (n_te - t1) if n_te - t1 else 0.0
    details: dict[str, Any] = {"statistic": "held-out accuracy", "balanced_accuracy": (tpr + tnr) / 2,
                               "n_source": len(xs), "n_target": len(xt), "n_test": n_te,
                               "confusion": [[n_te - t1 - (p1 - tp), p1 - tp], [t1 - tp, tp]],
                               "estimator": type(clf).__name__ if estimator is not None else
                               "StandardScaler+LogisticRegression(balanced)"}
    _warn_if_separately_centred(separately_centred(xs, xt), "classifier_test", details)
    if B == 0:
        from scipy.stats import hypergeom

        p = float(hypergeom.sf(tp - 1, n_te, t1, p1))
        details["null"] = "exact (hypergeometric / one-sided Fisher)"
        return ShiftTestResult(acc, min(1.0, max(0.0, p)), 0, "classifier", details)
    perms = np.empty(B)
    for b in range(B):
        perms[b] = np.mean(pred == gen.permutation(dte))
    details["null"] = "permutation of held-out labels"
    return ShiftTestResult(acc, permutation_p_value(acc, perms), B, "classifier", details)


def shift_test(source: Any, target: Any, method: str = "mmd", **kwargs: Any) -> ShiftTestResult:
    """Run the registered shift test ``method`` (``mmd``, ``mmd_linear``, ``energy``,
    ``classifier``) with ``kwargs`` (``n_permutations``, ``seed``, ...)."""
    return SHIFT_TESTS.get(method, "method")(source, target, **kwargs)
