"""Shift tests and distances (transferkit.assess.shift / .distances) against direct computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from transferkit.assess import (
    DISTANCES,
    SHIFT_TESTS,
    ShiftTestResult,
    bbse,
    classifier_test,
    coral_distance,
    energy_distance,
    energy_test,
    mmd2_unbiased,
    mmd_linear,
    mmd_test,
    proxy_a_distance,
    shift_test,
    sliced_wasserstein,
)
from transferkit.assess.shift import (
    _energy_from_sums,
    _mmd2_from_sums,
    _pooled_dists,
    _rbf_pooled,
    permutation_statistics,
)
from transferkit.core.errors import ConfigError, DataError, UnknownNameError


def _pair(n=40, m=None, d=3, shift=0.0, seed=0):
    r = np.random.default_rng(seed)
    m = n if m is None else m
    return r.normal(size=(n, d)), r.normal(size=(m, d)) + shift


# ---------------------------------------------------------------------------------------------
# naive references (double loops, straight from the definitions)
# ---------------------------------------------------------------------------------------------
def naive_median_sigma2(Z):
    vals = [np.sum((Z[i] - Z[j]) ** 2) for i in range(len(Z)) for j in range(i + 1, len(Z))]
    return float(np.median(vals))


def naive_mmd2(X, Y, sigma2):
    def k(a, b):
        return math.exp(-np.sum((a - b) ** 2) / (2 * sigma2))

    m, n = len(X), len(Y)
    sxx = sum(k(X[i], X[j]) for i in range(m) for j in range(m) if i != j)
    syy = sum(k(Y[i], Y[j]) for i in range(n) for j in range(n) if i != j)
    sxy = sum(k(X[i], Y[j]) for i in range(m) for j in range(n))
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n)


def naive_energy(X, Y):
    def dist(a, b):
        return math.sqrt(np.sum((a - b) ** 2))

    m, n = len(X), len(Y)
    exy = sum(dist(X[i], Y[j]) for i in range(m) for j in range(n)) / (m * n)
    exx = sum(dist(X[i], X[j]) for i in range(m) for j in range(m)) / (m * m)
    eyy = sum(dist(Y[i], Y[j]) for i in range(n) for j in range(n)) / (n * n)
    return 2 * exy - exx - eyy


# ---------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------
def test_mmd2_matches_naive_double_loop_with_median_heuristic():
    X, Y = _pair(n=15, m=11, d=3, shift=0.5)
    sigma2 = naive_median_sigma2(np.vstack([X, Y]))
    assert mmd2_unbiased(X, Y) == pytest.approx(naive_mmd2(X, Y, sigma2), rel=1e-10, abs=1e-12)
    assert mmd2_unbiased(X, Y, bandwidth=0.7) == pytest.approx(naive_mmd2(X, Y, 0.49), rel=1e-10)
    res = mmd_test(X, Y, n_permutations=20, seed=0)
    assert res.statistic == pytest.approx(naive_mmd2(X, Y, sigma2), rel=1e-10)
    assert res.details["bandwidth"] == pytest.approx(math.sqrt(sigma2))


def test_energy_matches_naive_and_scipy():
    from scipy.stats import energy_distance as scipy_energy

    X, Y = _pair(n=13, m=9, d=4, shift=0.3, seed=1)
    assert energy_distance(X, Y) == pytest.approx(naive_energy(X, Y), rel=1e-10)
    u, v = X[:, 0], Y[:, 0]
    # scipy's 1-D energy distance is the square root of the V-statistic energy distance
    assert energy_distance(u, v) == pytest.approx(scipy_energy(u, v) ** 2, rel=1e-9)
    assert energy_test(X, Y, n_permutations=10).statistic == pytest.approx(naive_energy(X, Y), rel=1e-10)


def test_vectorised_permutations_match_recomputation_on_permuted_data():
    X, Y = _pair(n=9, m=7, d=2, shift=0.2, seed=2)
    Z = np.vstack([X, Y])
    m = len(X)
    K, sigma = _rbf_pooled(Z, None, np.random.default_rng(0))
    D = _pooled_dists(Z)
    for M, stat, naive in ((K, _mmd2_from_sums, lambda a, b: naive_mmd2(a, b, sigma**2)),
                           (D, _energy_from_sums, naive_energy)):
        gen = np.random.default_rng(5)
        obs, perms = permutation_statistics(M, m, stat, 6, gen)
        assert obs == pytest.approx(naive(X, Y), rel=1e-10)
        # replay the same random draws and recompute each permuted statistic naively
        gen = np.random.default_rng(5)
        keys = gen.random((6, len(Z)))
        idx = np.argpartition(keys, m - 1, axis=1)[:, :m]
        for b in range(6):
            a = np.zeros(len(Z), bool)
            a[idx[b]] = True
            assert perms[b] == pytest.approx(naive(Z[a], Z[~a]), rel=1e-9, abs=1e-12)


def test_mmd_linear_statistic_matches_pairwise_definition():
    X, Y = _pair(n=21, m=30, d=2, shift=0.0, seed=3)
    res = mmd_linear(X, Y, bandwidth=1.3, seed=4)
    gen = np.random.default_rng(4)
    Xs, Ys = X[gen.permutation(len(X))], Y[gen.permutation(len(Y))]

    def k(a, b):
        return math.exp(-np.sum((a - b) ** 2) / (2 * 1.3**2))

    P = 10
    h = [k(Xs[2 * i], Xs[2 * i + 1]) + k(Ys[2 * i], Ys[2 * i + 1]) - k(Xs[2 * i], Ys[2 * i + 1])
         - k(Xs[2 * i + 1], Ys[2 * i]) for i in range(P)]
    assert res.details["n_pairs"] == P
    assert res.statistic == pytest.approx(np.mean(h), rel=1e-10)
    assert 0.0 <= res.p_value <= 1.0


# ---------------------------------------------------------------------------------------------
# p-values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["mmd", "energy"])
def test_permutation_p_values_small_under_shift_and_in_range(method):
    X, Y = _pair(n=60, d=3, shift=1.0, seed=6)
    res = shift_test(X, Y, method, n_permutations=199, seed=0)
    assert isinstance(res, ShiftTestResult)
    assert res.p_value == pytest.approx(1 / 200) and res.rejects(0.01)
    assert res.n_permutations == 199 and res.method == method
    X, Y = _pair(n=60, d=3, shift=0.0, seed=7)
    res = shift_test(X, Y, method, n_permutations=199, seed=0)
    assert 0.0 < res.p_value <= 1.0


def test_p_values_roughly_uniform_without_shift():
    """Quick calibration (the full one is benchmarks/shift_calibration.py): 50 null repeats."""
    pm, pe = [], []
    for rep in range(50):
        X, Y = _pair(n=25, d=2, shift=0.0, seed=100 + rep)
        pm.append(mmd_test(X, Y, n_permutations=99, seed=rep).p_value)
        pe.append(energy_test(X, Y, n_permutations=99, seed=rep).p_value)
    for p in (np.array(pm), np.array(pe)):
        assert 0.3 < p.mean() < 0.7
        assert np.mean(p <= 0.1) <= 0.24          # nominal 0.10; binomial sd ~0.04
        assert np.mean(p <= 0.5) > 0.3


def test_mmd_linear_detects_shift_and_is_calibrated_roughly():
    X, Y = _pair(n=2000, d=2, shift=0.5, seed=8)
    assert mmd_linear(X, Y).p_value < 1e-3
    ps = [mmd_linear(*_pair(n=200, d=2, seed=200 + r), seed=r).p_value for r in range(50)]
    assert np.mean(np.array(ps) <= 0.1) <= 0.24
    res = mmd_linear(*_pair(n=30, d=2, shift=2.0, seed=9), n_permutations=99)
    assert res.n_permutations == 99 and res.p_value <= 0.05


def test_large_samples_subsample_or_switch_to_linear():
    X, Y = _pair(n=300, m=200, d=2, shift=0.5, seed=10)
    res = mmd_test(X, Y, n_permutations=50, max_samples=100)
    assert res.details["subsampled"] and res.details["n_source_used"] + res.details["n_target_used"] == 100
    assert res.details["n_source_used"] == 60
    res = mmd_test(X, Y, n_permutations=50, max_samples=100, large="linear")
    assert res.method == "mmd_linear"
    res = energy_test(X, Y, n_permutations=50, max_samples=100)
    assert res.details["subsampled"]


def test_classifier_test_detects_shift_and_is_valid_without():
    X, Y = _pair(n=200, d=5, shift=1.0, seed=11)
    res = classifier_test(X, Y, seed=0)
    assert res.statistic > 0.7 and res.p_value < 1e-4
    # unbalanced domains: the exact (hypergeometric) p-value must not flag the size difference
    rej = [classifier_test(*_pair(n=120, m=40, d=3, seed=300 + r), seed=r).p_value <= 0.1
           for r in range(20)]
    assert np.mean(rej) <= 0.3
    res = classifier_test(X, Y, n_permutations=99, seed=0)
    assert res.n_permutations == 99 and res.p_value == pytest.approx(0.01)


def test_results_are_reproducible_with_a_seed():
    X, Y = _pair(n=30, d=2, shift=0.3, seed=12)
    assert mmd_test(X, Y, n_permutations=50, seed=3) == mmd_test(X, Y, n_permutations=50, seed=3)


# ---------------------------------------------------------------------------------------------
# distances
# ---------------------------------------------------------------------------------------------
def test_proxy_a_distance_zero_for_same_and_two_for_separated():
    X, Y = _pair(n=300, d=5, shift=0.0, seed=13)
    assert proxy_a_distance(X, Y) < 0.3
    X, Y = _pair(n=300, d=5, shift=6.0, seed=13)
    assert proxy_a_distance(X, Y) > 1.95


def test_coral_distance_matches_direct_formula():
    X, Y = _pair(n=30, m=25, d=4, seed=14)
    Y = Y * np.array([1.0, 2.0, 0.5, 1.0])
    d = 4

    def cov(A):
        n = len(A)
        ones = np.ones((1, n))
        return (A.T @ A - (ones @ A).T @ (ones @ A) / n) / (n - 1)   # Sun & Saenko, Eq. 2

    direct = np.sum((cov(X) - cov(Y)) ** 2) / (4 * d * d)
    assert coral_distance(X, Y) == pytest.approx(direct, rel=1e-10)
    assert coral_distance(X, X + 5.0) == pytest.approx(0.0, abs=1e-12)


def test_sliced_wasserstein_matches_scipy_in_one_dimension_and_sorting_formula():
    from scipy.stats import wasserstein_distance

    r = np.random.default_rng(15)
    u, v = r.normal(size=17), r.normal(size=11) + 0.4
    assert sliced_wasserstein(u, v, p=1) == pytest.approx(wasserstein_distance(u, v), rel=1e-10)
    a, b = r.normal(size=(20, 3)), r.normal(size=(20, 3)) + 1.0
    gen = np.random.default_rng(0)
    theta = gen.standard_normal((3, 8))
    theta /= np.linalg.norm(theta, axis=0)
    w2 = [np.mean((np.sort(a @ theta[:, l]) - np.sort(b @ theta[:, l])) ** 2) for l in range(8)]
    assert sliced_wasserstein(a, b, n_projections=8, p=2, seed=0) == pytest.approx(np.sqrt(np.mean(w2)))
    assert sliced_wasserstein(a, a) == pytest.approx(0.0, abs=1e-12)


def test_bbse_recovers_known_target_proportions():
    r = np.random.default_rng(16)
    means = np.array([-2.0, 0.0, 2.0])

    def sample(props, n):
        y = r.choice(3, size=n, p=props)
        return r.normal(means[y], 1.0), y

    def classifier(x):      # the Bayes classifier under equal priors: nearest class mean
        return np.argmin(np.abs(x[:, None] - means[None, :]), axis=1)

    def probs(x):
        logit = -0.5 * (x[:, None] - means[None, :]) ** 2
        e = np.exp(logit - logit.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    xs, ys = sample([1 / 3, 1 / 3, 1 / 3], 20000)
    q = np.array([0.6, 0.3, 0.1])
    xt, _ = sample(q, 20000)
    est = bbse(classifier(xs), ys, classifier(xt))
    assert np.allclose(est.target_proportions, q, atol=0.03)
    assert np.allclose(est.weights, est.target_proportions / est.source_proportions, rtol=1e-10)
    assert est.target_proportions.sum() == pytest.approx(1.0)
    soft = bbse(probs(xs), ys, probs(xt))
    assert np.allclose(soft.target_proportions, q, atol=0.03)
    # naive label-proportion estimate (no correction) is biased: BBSE must do better
    naive = np.bincount(classifier(xt), minlength=3) / len(xt)
    assert np.abs(est.target_proportions - q).sum() < np.abs(naive - q).sum()


def test_bbse_string_labels_and_errors():
    ys = np.array(["a", "b", "a", "b", "a", "b"])
    est = bbse(ys, ys, np.array(["a", "a", "b"]))
    assert est.classes.tolist() == ["a", "b"] and est.target_proportions == pytest.approx([2 / 3, 1 / 3])
    with pytest.raises(DataError, match="same held-out source samples"):
        bbse(ys[:5], ys, ys)
    with pytest.raises(DataError, match="not source classes"):
        bbse(ys, ys, np.array(["a", "c"]))
    with pytest.raises(DataError, match="columns"):
        bbse(np.full((6, 3), 1 / 3), ys, np.full((2, 3), 1 / 3))
    with pytest.raises(DataError, match="single class"):
        bbse(ys, np.array(["a"] * 6), ys)


# ---------------------------------------------------------------------------------------------
# bad input, registry
# ---------------------------------------------------------------------------------------------
BAD_FUNCS = [mmd_test, energy_test, mmd_linear, classifier_test, mmd2_unbiased, energy_distance,
             coral_distance, sliced_wasserstein, proxy_a_distance]


@pytest.mark.parametrize("fn", BAD_FUNCS, ids=lambda f: f.__name__)
def test_bad_input_raises_data_error(fn):
    X, Y = _pair(n=12, d=3, seed=17)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        fn(Xn, Y)
    with pytest.raises(DataError, match="empty"):
        fn(X, np.empty((0, 3)))
    with pytest.raises(DataError, match="3 features but target has 2"):
        fn(X, Y[:, :2])
    with pytest.raises(DataError, match="2-D"):
        fn(X, np.zeros((4, 3, 2)))


def test_bad_parameters_raise_config_error():
    X, Y = _pair(n=12, d=2, seed=18)
    with pytest.raises(ConfigError, match="n_permutations"):
        mmd_test(X, Y, n_permutations=0)
    with pytest.raises(ConfigError, match="bandwidth"):
        mmd_test(X, Y, bandwidth=-1.0)
    with pytest.raises(ConfigError, match="large"):
        mmd_test(X, Y, large="fast")
    with pytest.raises(DataError, match="at least 2"):
        mmd_test(X[:1], Y)


def test_registries_list_tests_and_distances():
    assert set(SHIFT_TESTS.names()) == {"mmd", "mmd_linear", "energy", "classifier"}
    assert {"proxy_a", "coral", "sliced_wasserstein", "mmd2", "energy"} <= set(DISTANCES.names())
    assert SHIFT_TESTS.entry("mmd_linear").tags["complexity"] == "linear"
    for e in SHIFT_TESTS.entries() + DISTANCES.entries():
        assert e.description
    with pytest.raises(UnknownNameError, match="Did you mean 'energy'"):
        shift_test(np.zeros((3, 1)), np.ones((3, 1)), method="enrgy")


def test_permutation_test_on_a_precomputed_matrix_matches_the_end_to_end_tests():
    from transferkit.assess.shift import permutation_test, pooled_sq_dists

    X, Y = _pair(n=30, m=20, d=3, shift=0.4, seed=19)
    Z = np.vstack([X, Y])
    D2 = pooled_sq_dists(Z)
    K = np.exp(-D2 / (2 * 1.5**2))
    a = mmd_test(X, Y, n_permutations=99, seed=7, bandwidth=1.5)
    b = permutation_test(K, 30, statistic="mmd", n_permutations=99, seed=7)
    assert b.statistic == pytest.approx(a.statistic, rel=1e-12) and b.p_value == a.p_value
    a = energy_test(X, Y, n_permutations=99, seed=7)
    b = permutation_test(np.sqrt(D2), 30, statistic="energy", n_permutations=99, seed=7)
    assert b.statistic == pytest.approx(a.statistic, rel=1e-12) and b.p_value == a.p_value
    with pytest.raises(DataError, match="symmetric"):
        permutation_test(K + np.triu(np.ones_like(K)), 30)
    with pytest.raises(DataError, match="at least 2 source"):
        permutation_test(K, 49)
    with pytest.raises(ConfigError, match="statistic"):
        permutation_test(K, 30, statistic="ks")
