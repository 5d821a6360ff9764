"""Transferability scores (transferkit.assess.transferability) against direct computations written
from the papers' definitions with plain loops."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from transferkit.assess import (
    SCORES,
    gbc,
    hscore,
    hscore_shrinkage,
    leep,
    logme,
    nce,
    nleep,
    parc,
    rank_encoders,
    sfda,
    transrate,
)
from transferkit.assess.transferability import LogMEDegenerateWarning, logme_details
from transferkit.core.errors import ConfigError, DataError, UnknownNameError


def _task(n=60, d=4, C=3, sep=1.5, seed=0):
    r = np.random.default_rng(seed)
    y = np.arange(n) % C
    centers = r.normal(size=(C, d)) * sep
    return centers[y] + r.normal(size=(n, d)), y


def _probs(n=40, Z=5, C=3, seed=0, informative=True):
    r = np.random.default_rng(seed)
    y = np.arange(n) % C
    logits = r.normal(size=(n, Z))
    if informative:
        logits[np.arange(n), y] += 3.0          # source class z = y tends to fire on target class y
    P = np.exp(logits)
    return P / P.sum(axis=1, keepdims=True), y


# ---------------------------------------------------------------------------------------------
# LogME: the fixed point against a brute-force search of the closed-form evidence
# ---------------------------------------------------------------------------------------------
def direct_evidence(F, y, alpha, beta):
    """log p(y | F, alpha, beta) / n from You et al. (2021), with numpy determinants."""
    n, D = F.shape
    A = alpha[..., None, None] * np.eye(D) + beta[..., None, None] * (F.T @ F)
    m = beta[..., None] * np.linalg.solve(A, np.broadcast_to(F.T @ y, A.shape[:-1])[..., None])[..., 0]
    resid = np.sum((m @ F.T - y) ** 2, axis=-1)
    mm = np.sum(m * m, axis=-1)
    L = (n / 2 * np.log(beta) + D / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
         - beta / 2 * resid - alpha / 2 * mm - 0.5 * np.log(np.linalg.det(A)))
    return L / n


@pytest.mark.parametrize("n,D", [(12, 3), (5, 7)])
def test_logme_fixed_point_reaches_the_grid_maximum(n, D):
    from scipy.optimize import minimize

    r = np.random.default_rng(n * 10 + D)
    F = r.normal(size=(n, D))
    labels = np.arange(n) % 2
    F[:, 0] += 1.5 * labels
    det = logme_details(F, labels)
    la, lb = np.meshgrid(np.linspace(-5, 5, 201), np.linspace(-5, 5, 201), indexing="ij")
    alpha, beta = 10.0 ** la.ravel(), 10.0 ** lb.ravel()
    for c in range(2):
        y = (labels == c).astype(float)
        grid = direct_evidence(F, y, alpha, beta)
        best = int(np.argmax(grid))
        assert det["evidence"][c] >= grid[best] - 1e-6
        # the grid maximum refined by a local optimiser bounds it from above
        res = minimize(lambda t, y=y: -direct_evidence(F, y, np.array(10.0 ** t[0]), np.array(10.0 ** t[1])),
                       [la.ravel()[best], lb.ravel()[best]], method="Nelder-Mead",
                       options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 4000})
        assert det["evidence"][c] <= -res.fun + 1e-7
        assert det["evidence"][c] == pytest.approx(-res.fun, abs=1e-6)
        # the reported evidence is the closed form at the reported (alpha, beta)
        at = direct_evidence(F, y, np.array(det["alpha"][c]), np.array(det["beta"][c]))
        assert det["evidence"][c] == pytest.approx(float(at), abs=1e-6)   # A is ill-conditioned if D > n
    assert logme(F, labels) == pytest.approx(np.mean(det["evidence"]))


def test_logme_prefers_informative_features():
    F, y = _task(n=200, d=8, C=4, sep=2.0, seed=1)
    noise = np.random.default_rng(2).normal(size=F.shape)
    assert logme(F, y) > logme(noise, y)


# ---------------------------------------------------------------------------------------------
# LEEP, NCE
# ---------------------------------------------------------------------------------------------
def loop_leep(theta, y):
    n, Z = len(theta), len(theta[0])
    C = max(y) + 1
    joint = [[0.0] * Z for _ in range(C)]
    for i in range(n):
        for z in range(Z):
            joint[y[i]][z] += theta[i][z] / n
    pz = [sum(joint[c][z] for c in range(C)) for z in range(Z)]
    total = 0.0
    for i in range(n):
        total += math.log(sum(joint[y[i]][z] / pz[z] * theta[i][z] for z in range(Z)))
    return total / n


def loop_nce(zs, y):
    n = len(y)
    pair, marg = {}, {}
    for a, b in zip(y, zs):
        pair[(a, b)] = pair.get((a, b), 0) + 1
        marg[b] = marg.get(b, 0) + 1
    h = 0.0
    for (a, b), cnt in pair.items():
        h -= cnt / n * math.log(cnt / marg[b])
    return -h


def test_leep_matches_loops():
    P, y = _probs(n=30, Z=4, C=3, seed=3)
    assert leep(P, y) == pytest.approx(loop_leep(P.tolist(), y.tolist()), rel=1e-12)
    assert leep(P, y) <= 0


def test_nce_matches_loops_for_probabilities_and_hard_labels():
    P, y = _probs(n=30, Z=4, C=3, seed=4)
    z = P.argmax(axis=1)
    expected = loop_nce(z.tolist(), y.tolist())
    assert nce(P, y) == pytest.approx(expected, rel=1e-12)
    assert nce(z, y) == pytest.approx(expected, rel=1e-12)
    assert nce(y + 10, y) == pytest.approx(0.0, abs=1e-15)       # z determines y


def test_probability_scores_prefer_an_informative_source_model():
    P, y = _probs(n=300, Z=6, C=3, seed=5, informative=True)
    Q, _ = _probs(n=300, Z=6, C=3, seed=5, informative=False)
    assert leep(P, y) > leep(Q, y)
    assert nce(P, y) > nce(Q, y)


# ---------------------------------------------------------------------------------------------
# H-score, GBC, TransRate
# ---------------------------------------------------------------------------------------------
def loop_cov(rows):
    n, d = len(rows), len(rows[0])
    mu = [sum(r[a] for r in rows) / n for a in range(d)]
    return np.array([[sum((r[a] - mu[a]) * (r[b] - mu[b]) for r in rows) / (n - 1)
                      for b in range(d)] for a in range(d)])


def loop_hscore(F, y):
    rows = F.tolist()
    classes = sorted(set(y))
    means = {}
    for c in classes:
        members = [rows[i] for i in range(len(rows)) if y[i] == c]
        means[c] = [sum(r[a] for r in members) / len(members) for a in range(len(rows[0]))]
    g = [means[y[i]] for i in range(len(rows))]
    return float(np.trace(np.linalg.inv(loop_cov(rows)) @ loop_cov(g)))


def loop_gbc(Z, y, floor=1e-4):
    rows = Z.tolist()
    d = len(rows[0])
    stats = {}
    for c in sorted(set(y)):
        members = [rows[i] for i in range(len(rows)) if y[i] == c]
        mu = [sum(r[a] for r in members) / len(members) for a in range(d)]
        var = [max(sum((r[a] - mu[a]) ** 2 for r in members) / len(members), floor) for a in range(d)]
        stats[c] = (mu, var)
    total = 0.0
    for ci, (m1, v1) in stats.items():
        for cj, (m2, v2) in stats.items():
            if ci == cj:
                continue
            db = 0.0
            for a in range(d):
                s = (v1[a] + v2[a]) / 2
                db += (m1[a] - m2[a]) ** 2 / s / 8 + 0.5 * math.log(s / math.sqrt(v1[a] * v2[a]))
            total += math.exp(-db)
    return -total


def loop_transrate(F, y, eps, uniform=False):
    n, d = F.shape
    Z = F - F.mean(axis=0)

    def rate(M):
        k = len(M)
        G = np.eye(d)
        for r in M:
            G = G + np.outer(r, r) / (k * eps)
        return 0.5 * math.log(np.linalg.det(G))

    classes = sorted(set(y.tolist()))
    cond = 0.0
    for c in classes:
        Zc = Z[y == c]
        cond += (1 / len(classes) if uniform else len(Zc) / n) * rate(Zc)
    return rate(Z) - cond


def test_hscore_matches_loops():
    F, y = _task(n=40, d=3, C=3, seed=6)
    assert hscore(F, y) == pytest.approx(loop_hscore(F, y.tolist()), rel=1e-9)


def test_gbc_matches_loops_with_and_without_pca():
    from sklearn.decomposition import PCA

    F, y = _task(n=45, d=4, C=3, sep=0.8, seed=7)
    assert gbc(F, y, n_components=None) == pytest.approx(loop_gbc(F, y.tolist()), rel=1e-9)
    Z = PCA(n_components=2).fit_transform(F)          # signs of the axes do not matter
    assert gbc(F, y, n_components=2) == pytest.approx(loop_gbc(Z, y.tolist()), rel=1e-7)
    assert -6.0 <= gbc(F, y) <= 0.0


def test_transrate_matches_loops():
    F, y = _task(n=36, d=3, C=3, seed=8)
    y = np.where(np.arange(36) < 4, 0, y)                      # unequal class sizes
    assert transrate(F, y, eps=0.1) == pytest.approx(loop_transrate(F, y, 0.1), rel=1e-9)
    assert transrate(F, y, eps=0.1, class_weighting="uniform") == pytest.approx(
        loop_transrate(F, y, 0.1, uniform=True), rel=1e-9)
    # more samples than features and the reverse use different Gram matrices: same value
    G, g = _task(n=8, d=12, C=2, seed=9)
    assert transrate(G, g, eps=0.5) == pytest.approx(loop_transrate(G, g, 0.5), rel=1e-9)


def loop_parc(F, y, n_components, orient=True, flip=None):
    """PARC from its definition: PCA by an eigendecomposition of the covariance, each axis
    oriented so that its largest-magnitude score is positive, z-score, Pearson between every pair
    of rows with loops, then scipy's Spearman over the pairs i < j. ``orient=False`` keeps the
    eigensolver's signs, with axis ``flip`` negated."""
    from scipy.stats import spearmanr

    Z = F - F.mean(axis=0)
    if n_components is not None:
        w, V = np.linalg.eigh(np.cov(Z, rowvar=False))
        Z = Z @ V[:, np.argsort(w)[::-1][:n_components]]
        if flip is not None:
            Z[:, flip] = -Z[:, flip]
        for k in range(Z.shape[1] if orient else 0):
            if Z[np.argmax(np.abs(Z[:, k])), k] < 0:
                Z[:, k] = -Z[:, k]
    Z = (Z - Z.mean(axis=0)) / Z.std(axis=0)
    Yh = np.eye(int(max(y)) + 1)[y]

    def pearson(a, b):
        ma, mb = sum(a) / len(a), sum(b) / len(b)
        num = sum((u - ma) * (v - mb) for u, v in zip(a, b))
        den = math.sqrt(sum((u - ma) ** 2 for u in a) * sum((v - mb) ** 2 for v in b))
        return num / den

    pairs = [(i, j) for i in range(len(F)) for j in range(i + 1, len(F))]
    df = [1 - pearson(Z[i].tolist(), Z[j].tolist()) for i, j in pairs]
    dl = [1 - pearson(Yh[i].tolist(), Yh[j].tolist()) for i, j in pairs]
    return 100 * spearmanr(df, dl)[0]


def test_ledoit_wolf_shrinkage_matches_scikit_learn():
    from sklearn.covariance import ledoit_wolf_shrinkage as sk_shrinkage

    from transferkit.assess.transferability import ledoit_wolf_shrinkage

    for n, d, seed in [(50, 5, 1), (30, 80, 2), (200, 3, 3)]:
        F = np.random.default_rng(seed).normal(size=(n, d)) * np.linspace(0.5, 3.0, d) + 2.0
        alpha, mu = ledoit_wolf_shrinkage(F)
        assert alpha == pytest.approx(sk_shrinkage(F), rel=1e-9, abs=1e-12)
        Fc = F - F.mean(axis=0)
        assert mu == pytest.approx(np.trace(Fc.T @ Fc / n) / d, rel=1e-12)
    # isotropic data: nothing to shrink towards, alpha stays in [0, 1]
    a, _ = ledoit_wolf_shrinkage(np.random.default_rng(4).normal(size=(400, 4)))
    assert 0.0 <= a <= 1.0


def test_hscore_shrinkage_matches_the_direct_formula():
    from sklearn.covariance import ledoit_wolf_shrinkage as sk_shrinkage

    for n, d, C, seed in [(60, 4, 3, 12), (25, 40, 3, 13)]:     # n > d, and d > n (S singular)
        F, y = _task(n=n, d=d, C=C, sep=1.0, seed=seed)
        a = sk_shrinkage(F)
        Fc = F - F.mean(axis=0)
        S = Fc.T @ Fc / n
        G = np.array([Fc[y == c].mean(axis=0) for c in y])
        direct = np.trace(np.linalg.inv((1 - a) * S + a * np.trace(S) / d * np.eye(d)) @ ((1 - a) * G.T @ G / n))
        assert hscore_shrinkage(F, y) == pytest.approx(direct, rel=1e-8)
    with pytest.raises(DataError, match="constant"):
        hscore_shrinkage(np.ones((10, 3)), np.arange(10) % 2)


def test_parc_matches_its_definition(monkeypatch):
    F, y = _task(n=24, d=6, C=3, sep=1.0, seed=14)
    assert parc(F, y, n_components=4) == pytest.approx(loop_parc(F, y, 4), rel=1e-9)
    assert parc(F, y, n_components=None) == pytest.approx(loop_parc(F, y, None), rel=1e-9)
    # the sign an eigensolver gives an axis changes the samples' correlations ...
    assert abs(loop_parc(F, y, 4, orient=False, flip=0) - loop_parc(F, y, 4, orient=False)) > 0.1
    # ... but not the score: an eigensolver returning the top axis negated
    eigh = np.linalg.eigh

    def flipped(a):
        w, V = eigh(a)
        V = V.copy()
        V[:, np.argmax(w)] *= -1.0
        return w, V

    before = parc(F, y, n_components=4)
    monkeypatch.setattr(np.linalg, "eigh", flipped)
    assert parc(F, y, n_components=4) == pytest.approx(before, rel=1e-9)
    monkeypatch.undo()
    # above max_samples a random subset of that size is scored, reproducibly
    G, g = _task(n=300, d=5, C=2, sep=1.0, seed=15)
    assert parc(G, g, max_samples=50, seed=1) == parc(G, g, max_samples=50, seed=1)
    assert parc(G, g, max_samples=50, seed=1) != parc(G, g, max_samples=None)
    with pytest.raises(ConfigError, match="n_components"):
        parc(F, y, n_components=0)
    with pytest.raises(ConfigError, match="max_samples"):
        parc(F, y, max_samples=2)


def test_nleep_is_leep_of_a_gaussian_mixture_on_the_pca_features():
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    F, y = _task(n=90, d=8, C=3, sep=1.0, seed=16)
    F[:, 0] *= 6.0                                   # a dominant axis: 80 % keeps fewer than 8
    Z = PCA(n_components=0.8, svd_solver="full").fit_transform(F)
    assert 1 < Z.shape[1] < 8
    post = GaussianMixture(n_components=15, covariance_type="full", random_state=0).fit(Z).predict_proba(Z)
    assert nleep(F, y) == pytest.approx(loop_leep(post, y), rel=1e-6)
    # the count of components follows the classes
    post2 = GaussianMixture(n_components=6, covariance_type="diag", random_state=3).fit(Z).predict_proba(Z)
    assert nleep(F, y, components_per_class=2, covariance_type="diag", seed=3) == pytest.approx(
        loop_leep(post2, y), rel=1e-6)
    # fewer samples than components: one component per sample
    Z8 = PCA(n_components=0.8, svd_solver="full").fit_transform(F[:8])
    post8 = GaussianMixture(n_components=8, covariance_type="spherical", random_state=0).fit(Z8).predict_proba(Z8)
    assert nleep(F[:8], y[:8], covariance_type="spherical") == pytest.approx(loop_leep(post8, y[:8]), rel=1e-6)


def test_nleep_bounds():
    r = np.random.default_rng(17)
    y = np.repeat(np.arange(3), 40)
    F = np.eye(3)[y] * 50.0 + r.normal(size=(120, 3))   # one tight cluster per class
    assert -0.05 < nleep(F, y) <= 0.0
    shuffled = r.permutation(y)                          # labels unrelated to the clusters
    assert nleep(F, shuffled) < -0.8                     # near -log 3 = -1.10
    with pytest.raises(ConfigError, match="variance"):
        nleep(F, y, variance=0.0)
    with pytest.raises(ConfigError, match="components_per_class"):
        nleep(F, y, components_per_class=0)
    with pytest.raises(ConfigError, match="covariance_type"):
        nleep(F, y, covariance_type="dense")
    with pytest.raises(DataError, match="constant"):
        nleep(np.ones((10, 3)), np.arange(10) % 2)


def loop_sfda(F, y, a=5.0):
    """SFDA from its definition, with scikit-learn's shrinkage LDA for both discriminant steps."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    classes = sorted(set(y.tolist()))
    n = len(y)
    Sw = sum((np.sum(y == c) / n) * np.cov(F[y == c].T, bias=True) for c in classes)
    lam = max(math.exp(-a * np.linalg.eigvalsh(np.atleast_2d(Sw))[-1]), 1e-10)
    P = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=lam).fit(F, y).predict_proba(F)
    means = {c: F[y == c].mean(axis=0) for c in classes}
    mixed = np.empty_like(F)
    for i in range(n):
        k = classes.index(y[i])
        soft = np.exp(P[i]) / np.exp(P[i]).sum()
        others = sum(means[c] for c in classes if c != y[i]) / (len(classes) - 1)
        mixed[i] = soft[k] * F[i] + (1 - soft[k]) * others
    P2 = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=lam).fit(mixed, y).predict_proba(mixed)
    return float(np.mean([P2[i, classes.index(y[i])] for i in range(n)])), lam


@pytest.mark.parametrize("scale, C", [(1.0, 3), (0.1, 4), (1.0, 2)])
def test_sfda_against_shrinkage_lda_and_a_loop(scale, C):
    F, y = _task(n=96, d=6, C=C, sep=1.0, seed=20 + C)
    F = F * scale
    want, lam = loop_sfda(F, y)
    # scale 1: weak shrinkage (lam about 1e-3); scale 0.1: sigma_max small, strong shrinkage (about 0.93)
    assert (1e-10 < lam < 0.01) if scale == 1.0 else (0.5 < lam < 1.0)
    assert sfda(F, y) == pytest.approx(want, rel=1e-9)
    assert sfda(F, y, shrinkage=lam) == pytest.approx(want, rel=1e-9)
    names = np.array(["cat", "dog", "eel", "fox"])[y]   # string labels, same classes
    assert sfda(F, names) == pytest.approx(want, rel=1e-9)


def test_sfda_bounds_and_refusals():
    r = np.random.default_rng(21)
    y = np.repeat(np.arange(3), 40)
    F = np.eye(3)[y] * 20.0 + r.normal(size=(120, 3))
    assert 0.0 < sfda(F, r.permutation(y)) < sfda(F, y) <= 1.0
    with pytest.raises(DataError, match="two classes"):
        sfda(F, np.zeros(120, dtype=int))
    with pytest.raises(ConfigError, match="a must"):
        sfda(F, y, a=-1.0)
    with pytest.raises(ConfigError, match="shrinkage"):
        sfda(F, y, shrinkage=1.5)


@pytest.mark.parametrize("name", ["logme", "hscore", "hscore_shrinkage", "gbc", "transrate", "parc", "nleep", "sfda"])
def test_feature_scores_prefer_informative_features(name):
    F, y = _task(n=150, d=6, C=3, sep=2.0, seed=10)
    noise = np.random.default_rng(11).normal(size=F.shape)
    fn = SCORES.get(name)
    assert fn(F, y) > fn(noise, y)


# ---------------------------------------------------------------------------------------------
# registry and rank_encoders
# ---------------------------------------------------------------------------------------------
def test_scores_registered_with_kind_and_description():
    assert set(SCORES.names()) == {"logme", "leep", "nce", "hscore", "hscore_shrinkage", "gbc",
                                   "transrate", "parc", "nleep", "sfda"}
    kinds = {e.name: e.tags["kind"] for e in SCORES.entries()}
    assert kinds == {"logme": "features", "hscore": "features", "hscore_shrinkage": "features",
                     "gbc": "features", "transrate": "features", "parc": "features", "nleep": "features", "sfda": "features", "leep": "probs",
                     "nce": "probs"}
    assert all(e.description for e in SCORES.entries())


def test_rank_encoders_extracts_once_and_sorts_best_first():
    F, y = _task(n=120, d=5, C=3, sep=2.0, seed=12)
    x = np.arange(len(y))
    calls = {"good": 0, "bad": 0}
    noise = np.random.default_rng(13).normal(size=(len(y), 5))

    def good(inp):
        calls["good"] += 1
        return F[inp]

    def bad(inp):
        calls["bad"] += 1
        return noise[inp]

    ranked = rank_encoders({"bad": bad, "good": good}, x, y, score=["logme", "hscore", "gbc"])
    assert [name for name, _ in ranked] == ["good", "bad"]
    assert set(ranked[0][1]) == {"logme", "hscore", "gbc"}
    assert calls == {"good": 1, "bad": 1}
    single = rank_encoders({"bad": noise, "good": F}, None, y)       # default: z-scored columns
    z = (F - F.mean(axis=0)) / F.std(axis=0)
    assert single[0][0] == "good" and single[0][1] == pytest.approx(logme(z, y))
    assert rank_encoders({"good": F}, None, y, standardize=False)[0][1] == pytest.approx(logme(F, y))

    class FakeTensor:                       # torch-like outputs are converted with detach/cpu/numpy
        def __init__(self, a):
            self.a = a

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.a

    assert rank_encoders({"t": lambda inp: FakeTensor(F)}, x, y, score="hscore")[0][1] == pytest.approx(
        hscore(F, y))
    with pytest.raises(UnknownNameError, match="logme"):
        rank_encoders({"good": good}, x, y, score="logmee")
    assert calls["good"] == 1               # the unknown score failed before any extraction
    with pytest.raises(DataError, match="'bad'"):
        rank_encoders({"bad": np.full((len(y), 2), np.nan)}, None, y)


def test_rank_encoders_standardize_scores_z_scored_features_and_leaves_probabilities():
    F, y = _task(n=150, d=6, C=3, sep=1.5, seed=21)
    wide = F * np.array([1.0, 1000.0, 1.0, 0.001, 1.0, 50.0])     # same information, other units
    P, yp = _probs(n=150, Z=5, C=3, seed=22)
    # independent z-scoring (population std, as StandardScaler)
    z = (F - F.mean(axis=0)) / F.std(axis=0)
    for name in ("logme", "hscore", "gbc", "transrate"):
        got = dict(rank_encoders({"f": F, "w": wide}, None, y, score=name, standardize=True))
        ref = SCORES.get(name)(z, y)
        assert got["f"] == pytest.approx(ref, rel=1e-9) and got["w"] == pytest.approx(ref, rel=1e-6)
    # on the outputs as they are, the units change LogME
    raw = dict(rank_encoders({"f": F, "w": wide}, None, y, standardize=False))
    assert abs(raw["f"] - raw["w"]) > 0.05
    # probability scores never see z-scored inputs
    for name in ("leep", "nce"):
        assert rank_encoders({"p": P}, None, yp, score=name, standardize=True)[0][1] == pytest.approx(
            SCORES.get(name)(P, yp))
    # a constant column becomes 0, not NaN
    const = np.column_stack([F, np.full(len(y), 3.0)])
    assert math.isfinite(rank_encoders({"c": const}, None, y, standardize=True)[0][1])
    with pytest.raises(DataError, match="'bad'.*NaN"):
        rank_encoders({"bad": np.full((len(y), 2), np.nan)}, None, y, standardize=True)


def test_standardize_columns_treats_rounding_noise_as_constant():
    from transferkit.assess.transferability import standardize_columns

    F, y = _task(n=120, d=4, C=2, sep=0.5, seed=23)
    # a constant computed two ways: 0.1 + 0.2 != 0.3 in floating point, and the rows that differ
    # are exactly one class's; blown up to +-1 it would be a perfect (and meaningless) predictor
    noisy = np.where(y == 0, 0.1 + 0.2, 0.3)
    assert noisy.std() > 0
    z = standardize_columns(np.column_stack([F, noisy]))
    assert np.all(z[:, -1] == 0.0)
    assert logme(z, y) == pytest.approx(logme(standardize_columns(np.column_stack([F, np.zeros(len(y))])), y))
    # a real variation far below the column's magnitude is kept, z-scored
    small = 1e6 + 1e-3 * F[:, 0]
    ref = (small - small.mean()) / small.std()
    assert np.allclose(standardize_columns(small[:, None])[:, 0], ref, atol=1e-6)
    assert np.all(standardize_columns(np.zeros((5, 2))) == 0.0)


def test_logme_warns_when_the_evidence_has_no_finite_maximum():
    r = np.random.default_rng(23)
    rows = r.normal(size=(20, 200))
    F = np.repeat(rows, 2, axis=0)          # 40 samples of rank 20, each row twice with one label
    y = np.repeat(np.arange(20) % 2, 2)
    with pytest.warns(LogMEDegenerateWarning, match="no finite maximum"):
        det = logme_details(F, y)
    assert det["unbounded"] and math.isfinite(det["score"])     # finite (the noise level is capped), not NaN
    with warnings.catch_warnings():         # generic n < D (rank n) and n > D: bounded, no warning
        warnings.simplefilter("error", LogMEDegenerateWarning)
        assert not logme_details(r.normal(size=(40, 200)), np.arange(40) % 2)["unbounded"]
        G, yg = _task(n=120, d=5, C=3, seed=24)
        assert not logme_details(G, yg)["unbounded"]


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
FEATURE_SCORES = [logme, hscore, gbc, transrate]


@pytest.mark.parametrize("fn", FEATURE_SCORES, ids=lambda f: f.__name__)
def test_feature_scores_reject_bad_input(fn):
    F, y = _task(n=20, d=3, C=2, seed=14)
    Fn = F.copy()
    Fn[2, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        fn(Fn, y)
    with pytest.raises(DataError, match="20 rows but labels have shape"):
        fn(F, y[:-1])
    with pytest.raises(DataError, match="single class"):
        fn(F, np.zeros(20, int))
    with pytest.raises(DataError, match="-1 marks unknown"):
        fn(F, np.where(np.arange(20) == 3, -1, y))
    with pytest.raises(DataError, match="empty"):
        fn(np.empty((0, 3)), np.empty(0, int))
    with pytest.raises(DataError, match="2-D"):
        fn(F[:, 0], y)
    assert np.isfinite(fn(F, np.where(y == 0, "cat", "dog")))     # string labels work


@pytest.mark.parametrize("fn", [leep, nce], ids=lambda f: f.__name__)
def test_probability_scores_reject_bad_input(fn):
    P, y = _probs(n=20, Z=4, C=2, seed=15)
    with pytest.raises(DataError, match="softmax"):
        fn(np.log(P), y)
    with pytest.raises(DataError, match="20 rows but labels"):
        fn(P, y[:5])
    Pn = P.copy()
    Pn[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        fn(Pn, y)
    with pytest.raises(DataError, match="single class"):
        fn(P, np.ones(20, int))


def test_gbc_pca_when_features_outnumber_samples():
    from sklearn.decomposition import PCA

    F, y = _task(n=12, d=30, C=3, sep=1.0, seed=16)
    Z = PCA(n_components=3).fit_transform(F)
    assert gbc(F, y, n_components=3) == pytest.approx(loop_gbc(Z, y.tolist()), rel=1e-7)
