"""Label-free validators (transferkit.selection.validators) against direct computations from their
definitions, sanity checks, and the domain-aware splitters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from transferkit.core.errors import ConfigError, DataError
from transferkit.selection import (
    VALIDATORS,
    LeaveOneDomainOut,
    SourceTargetShuffleSplit,
    check_collapse,
    dev,
    importance_weights,
    information_maximization,
    iwcv,
    prediction_entropy,
    score_candidate,
    snd,
    softmax,
    source_accuracy,
    validator_inputs,
)


def _probs(n, K, seed=0, scale=2.0):
    r = np.random.default_rng(seed)
    return softmax(r.normal(size=(n, K)) * scale)


def _H(row):
    return -sum(p * math.log(p) for p in row if p > 0)


@pytest.fixture
def tiny():
    r = np.random.default_rng(3)
    ps, pt = _probs(7, 3, seed=1), _probs(6, 3, seed=2)
    ys = np.array([0, 1, 2, 0, 1, 2, 1])
    w = r.uniform(0.2, 3.0, size=7)
    return ps, ys, pt, w


# -- direct computations -----------------------------------------------------------------------


def test_registry_lists_the_validators():
    assert set(VALIDATORS.names()) == {"source_accuracy", "iwcv", "dev", "snd", "entropy", "im",
                                       "reverse", "ensv", "mixval"}
    for e in VALIDATORS.entries():
        assert e.description and e.obj.__doc__
    assert validator_inputs("snd") == ("target_probs",)
    assert validator_inputs("dev") == ("source_probs", "source_labels", "source_features",
                                       "target_features")


def test_source_accuracy_matches_loop(tiny):
    ps, ys, _, _ = tiny
    ref = sum(int(max(range(3), key=lambda k: ps[i][k]) == ys[i]) for i in range(len(ys))) / len(ys)
    assert source_accuracy(ps, ys) == pytest.approx(ref)


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("metric", ["accuracy", "nll"])
def test_iwcv_matches_loop(tiny, metric, normalize):
    ps, ys, _, w = tiny
    losses = []
    for i in range(len(ys)):
        if metric == "accuracy":
            losses.append(0.0 if int(np.argmax(ps[i])) == ys[i] else 1.0)
        else:
            losses.append(-math.log(ps[i][ys[i]]))
    num = sum(w[i] * losses[i] for i in range(len(ys)))
    risk = num / sum(w) if normalize else num / len(ys)
    ref = 1 - risk if metric == "accuracy" else -risk
    got = iwcv(ps, ys, None, None, weights=w, metric=metric, normalize=normalize)
    assert got == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("metric", ["accuracy", "nll"])
def test_dev_matches_loop(tiny, metric):
    ps, ys, _, w = tiny
    n = len(ys)
    L = []
    for i in range(n):
        loss = (0.0 if int(np.argmax(ps[i])) == ys[i] else 1.0) if metric == "accuracy" \
            else -math.log(ps[i][ys[i]])
        L.append(w[i] * loss)
    mL, mW = sum(L) / n, sum(w) / n
    cov = sum((L[i] - mL) * (w[i] - mW) for i in range(n)) / (n - 1)
    var = sum((w[i] - mW) ** 2 for i in range(n)) / (n - 1)
    eta = -cov / var
    risk = mL + eta * mW - eta
    ref = 1 - risk if metric == "accuracy" else -risk
    assert dev(ps, ys, None, None, weights=w, metric=metric) == pytest.approx(ref, abs=1e-12)


def test_snd_matches_loop():
    pt = _probs(6, 3, seed=5)
    n, tau = len(pt), 0.05
    f = [row / math.sqrt(sum(v * v for v in row)) for row in pt]
    total = 0.0
    for i in range(n):
        sims = {j: sum(f[i][k] * f[j][k] for k in range(3)) / tau for j in range(n) if j != i}
        z = sum(math.exp(s) for s in sims.values())
        total += -sum((math.exp(s) / z) * math.log(math.exp(s) / z) for s in sims.values())
    assert snd(pt) == pytest.approx(total / n, rel=1e-10)
    # chunking does not change the value
    assert snd(pt, chunk_size=2) == pytest.approx(snd(pt), rel=1e-12)


def test_entropy_and_im_match_loops():
    pt = _probs(5, 4, seed=7)
    n = len(pt)
    mean_h = sum(_H(pt[i]) for i in range(n)) / n
    pbar = [sum(pt[i][k] for i in range(n)) / n for k in range(4)]
    assert prediction_entropy(pt) == pytest.approx(-mean_h, rel=1e-12)
    assert information_maximization(pt) == pytest.approx(_H(pbar) - mean_h, rel=1e-12)


def test_importance_weights_match_a_direct_fit():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    r = np.random.default_rng(0)
    xs, xt = r.normal(size=(30, 2)), r.normal(size=(20, 2)) + 1.0
    w = importance_weights(xs, xt, cv=None, max_weight=None)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=0))
    clf.fit(np.vstack([xs, xt]), np.r_[np.zeros(30), np.ones(20)])
    p = clf.predict_proba(xs)[:, 1]
    for i in range(30):
        assert w[i] == pytest.approx(p[i] / (1 - p[i]) * 30 / 20, rel=1e-9)
    # source points closer to the target get larger weights; clipping bounds them
    order = np.argsort(xs.sum(1))
    assert w[order[-5:]].mean() > w[order[:5]].mean()
    assert importance_weights(xs, xt, cv=5, max_weight=2.0).max() <= 2.0


# -- sanity ------------------------------------------------------------------------------------


def test_iwcv_and_dev_with_equal_domains_reduce_to_source_validation():
    r = np.random.default_rng(1)
    ps, ys = _probs(80, 3, seed=2), r.integers(0, 3, 80)
    x = r.normal(size=(80, 4))
    acc = source_accuracy(ps, ys)
    nll = -np.mean(np.log(ps[np.arange(80), ys]))
    ones = np.ones(80)
    # exactly equal weights: plain source validation
    assert iwcv(ps, ys, None, None, weights=ones) == pytest.approx(acc)
    assert iwcv(ps, ys, None, None, weights=ones, metric="nll", normalize=False) == pytest.approx(-nll)
    assert dev(ps, ys, None, None, weights=ones) == pytest.approx(-nll)
    assert dev(ps, ys, None, None, weights=ones, metric="accuracy") == pytest.approx(acc)
    # the same features for both domains: the domain classifier finds no shift, weights ~ 1
    w = importance_weights(x, x, cv=None)
    assert np.allclose(w, 1.0, atol=1e-3)
    assert iwcv(ps, ys, x, x, cv=None) == pytest.approx(acc, abs=1e-3)
    assert dev(ps, ys, x, x, cv=None) == pytest.approx(-nll, abs=1e-2)
    # two samples of one distribution (cross-fitted weights): close to source validation
    xt = r.normal(size=(80, 4))
    assert iwcv(ps, ys, x, xt) == pytest.approx(acc, abs=0.06)


def _confident_correct(n=120, K=4, seed=0):
    y = np.arange(n) % K
    p = np.full((n, K), 0.02 / (K - 1))
    p[np.arange(n), y] = 0.98
    return p


def _confident_collapsed(n=120, K=4):
    p = np.full((n, K), 0.02 / (K - 1))
    p[:, 0] = 0.98
    return p


def test_sanity_confident_correct_beats_collapsed_and_confused_models():
    good = _confident_correct()
    collapsed = _confident_collapsed()
    uniformish = softmax(np.random.default_rng(0).normal(size=(120, 4)) * 0.1)  # soft collapse
    confused = np.random.default_rng(1).dirichlet(np.ones(4), size=120)  # scattered predictions
    # IM's diversity term sees the collapse
    assert information_maximization(good) > information_maximization(collapsed)
    assert information_maximization(good) > information_maximization(uniformish)
    # entropy: confident beats uncertain
    assert prediction_entropy(good) > prediction_entropy(uniformish)
    assert prediction_entropy(good) > prediction_entropy(confused)
    # SND: clustered predictions beat scattered ones
    assert snd(good) > snd(confused)


def test_snd_and_entropy_favour_a_confident_collapse_which_the_guard_rejects():
    """The SKADA-Bench failure: a model predicting one class confidently is 'dense' and
    'certain'. SND and entropy do not penalise it; the collapse guard does."""
    good, collapsed = _confident_correct(), _confident_collapsed()
    assert snd(collapsed) > snd(good)
    assert prediction_entropy(collapsed) >= prediction_entropy(good) - 1e-12
    assert check_collapse(good).ok
    assert not check_collapse(collapsed).ok


# -- calling by name, input errors -------------------------------------------------------------


def test_score_candidate_passes_only_what_each_validator_takes():
    r = np.random.default_rng(0)
    ps, ys, pt = _probs(40, 3, seed=1), r.integers(0, 3, 40), _probs(50, 3, seed=2)
    xs, xt = r.normal(size=(40, 2)), r.normal(size=(50, 2))
    kw = dict(source_probs=ps, source_labels=ys, target_probs=pt, source_features=xs,
              target_features=xt)
    assert score_candidate("snd", **kw) == pytest.approx(snd(pt))
    assert score_candidate("source_accuracy", **kw) == pytest.approx(source_accuracy(ps, ys))
    assert score_candidate("dev", **kw) == pytest.approx(dev(ps, ys, xs, xt))
    assert score_candidate("snd", target_probs=pt, params={"temperature": 0.1}) == \
        pytest.approx(snd(pt, temperature=0.1))
    assert score_candidate(prediction_entropy, target_probs=pt) == pytest.approx(prediction_entropy(pt))
    w = np.ones(40)
    assert score_candidate("iwcv", source_probs=ps, source_labels=ys, params={"weights": w}) == \
        pytest.approx(source_accuracy(ps, ys))
    with pytest.raises(ConfigError, match="needs source_features, target_features"):
        score_candidate("dev", source_probs=ps, source_labels=ys)
    with pytest.raises(ConfigError, match="no parameter 'temp'"):
        score_candidate("snd", target_probs=pt, params={"temp": 1})
    with pytest.raises(ConfigError, match="unknown validator"):
        score_candidate("sdn", target_probs=pt)


def test_bad_inputs_get_clear_errors():
    logits = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(DataError, match="softmax"):
        prediction_entropy(logits)
    with pytest.raises(DataError, match="2-D"):
        snd(np.ones(4) / 4)
    with pytest.raises(DataError, match=r"\[0, 3\)"):
        source_accuracy(_probs(3, 3), [0, 1, 3])
    with pytest.raises(DataError, match="NaN"):
        information_maximization(np.full((2, 2), np.nan))
    with pytest.raises(DataError, match="columns"):
        importance_weights(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ConfigError, match="metric"):
        iwcv(_probs(3, 3), [0, 1, 2], None, None, weights=np.ones(3), metric="f1")


# -- splitters ---------------------------------------------------------------------------------


def _domain_data():
    r = np.random.default_rng(0)
    y = np.r_[np.repeat([0, 1, 2], 10), np.full(12, -1)]
    sd = np.r_[np.zeros(30, dtype=int), np.full(12, -1)]
    return r.normal(size=(42, 2)), y, sd


def test_source_target_shuffle_split_holds_out_stratified_source_and_keeps_target():
    X, y, sd = _domain_data()
    cv = SourceTargetShuffleSplit(n_splits=3, test_size=0.2, random_state=0)
    splits = list(cv.split(X, y, groups=sd))
    assert len(splits) == cv.get_n_splits() == 3
    for train, test in splits:
        src_test = test[sd[test] >= 0]
        assert len(src_test) == 6 and np.bincount(y[src_test]).tolist() == [2, 2, 2]
        assert not set(src_test) & set(train[sd[train] >= 0])
        assert set(np.flatnonzero(sd < 0)) <= set(train) and set(np.flatnonzero(sd < 0)) <= set(test)
    # the same with sample_domain= or y == -1 alone; inductive target split
    a = [t.tolist() for t, _ in cv.split(X, y, sample_domain=sd)]
    b = [t.tolist() for t, _ in cv.split(X, y)]
    assert a == b == [t.tolist() for t, _ in splits]
    ind = SourceTargetShuffleSplit(2, target_test_size=0.25, random_state=0)
    for train, test in ind.split(X, y, groups=sd):
        assert not set(train) & set(test) and (sd[test] < 0).sum() == 3
    with pytest.raises(DataError, match="stratify"):
        next(cv.split(X, np.r_[np.arange(30), np.full(12, -1)], groups=sd))


def test_splitters_work_with_scikit_learn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import check_cv, cross_val_score

    X, y, sd = _domain_data()
    cv = SourceTargetShuffleSplit(n_splits=2, random_state=0)
    assert check_cv(cv) is cv
    src = sd >= 0
    scores = cross_val_score(LogisticRegression(), X[src], y[src], cv=LeaveOneDomainOut(),
                             groups=np.repeat([0, 1, 2], 10))
    assert len(scores) == 3


def test_leave_one_domain_out():
    sd = np.r_[np.zeros(4, int), np.ones(3, int), np.full(2, 2), np.full(5, -1)]
    X = np.zeros((len(sd), 1))
    lodo = LeaveOneDomainOut()
    splits = list(lodo.split(X, groups=sd))
    assert lodo.get_n_splits(groups=sd) == len(splits) == 3
    for d, (train, test) in zip([0, 1, 2], splits):
        assert set(sd[test]) == {d}
        assert d not in set(sd[train]) and (sd[train] < 0).sum() == 5
    no_t = list(LeaveOneDomainOut(include_target=False).split(X, groups=sd))
    assert all((sd[tr] >= 0).all() for tr, _ in no_t)
    assert len(list(LeaveOneDomainOut(max_n_splits=2, random_state=0).split(X, groups=sd))) == 2
    with pytest.raises(DataError, match="2 source domains"):
        list(lodo.split(X, groups=np.r_[np.zeros(9, int), np.full(5, -1)]))


# -- mixval (MixVal): predictions on mixed target samples --------------------------------------------


def test_mixup_probe_mixes_each_sample_with_a_seeded_partner_and_rejects_what_cannot_be_mixed():
    from transferkit.selection import mixup_probe

    x = np.random.default_rng(0).normal(size=(30, 2, 3))  # any trailing shape (images)
    mixed, partner = mixup_probe(x, ratio=0.6, seed=4)
    assert sorted(partner) == list(range(30))
    for i in (0, 7, 29):
        np.testing.assert_allclose(mixed[i], 0.6 * x[i] + 0.4 * x[partner[i]])
    again, partner2 = mixup_probe(x, ratio=0.6, seed=4)
    np.testing.assert_array_equal(partner, partner2)
    np.testing.assert_array_equal(mixed, again)
    with pytest.raises(DataError, match="floating point"):
        mixup_probe(np.arange(20).reshape(10, 2))  # token ids
    with pytest.raises(DataError, match="at least 2"):
        mixup_probe(x[:1])
    with pytest.raises(DataError, match="NaN"):
        mixup_probe(np.array([[0.0], [np.nan]]))
    with pytest.raises(ConfigError, match="ratio"):
        mixup_probe(x, ratio=0.5)


def test_mixval_against_a_direct_count():
    from transferkit.selection import mixval

    r = np.random.default_rng(1)
    n, K = 50, 3
    pt, pm = _probs(n, K, seed=2), _probs(n, K, seed=3)
    partner = r.permutation(n)
    a, m = pt.argmax(1), pm.argmax(1)
    intra = [m[i] == a[i] for i in range(n) if a[i] == a[partner[i]]]
    inter = [m[i] == a[i] for i in range(n) if a[i] != a[partner[i]]]
    assert intra and inter
    expected = (sum(intra) / len(intra) + sum(inter) / len(inter)) / 2
    assert mixval(pt, pm, partner) == pytest.approx(expected)
    # one kind of probe only: the mean over what exists
    assert mixval(pt, pt, np.arange(n)) == 1.0  # every sample mixed with itself: all intra, all kept
    with pytest.raises(DataError, match="shape"):
        mixval(pt, pm[:40], partner)
    with pytest.raises(DataError, match="mixup_partner"):
        mixval(pt, pm, np.r_[partner[:-1], n])
    assert validator_inputs("mixval") == ("target_probs", "mixup_probs", "mixup_partner")


def test_mixval_prefers_a_boundary_between_target_clusters_to_one_through_a_cluster():
    from transferkit.selection import mixup_probe, mixval

    r = np.random.default_rng(0)
    xt = np.r_[r.normal(-10, 0.2, 100), r.normal(10, 0.2, 100)][:, None]
    mixed, partner = mixup_probe(xt, seed=1)

    def probs(x, threshold):
        pos = (x[:, 0] > threshold).astype(float)
        return np.c_[1 - pos, pos]

    in_gap = mixval(probs(xt, 0.0), probs(mixed, 0.0), partner)
    through_cluster = mixval(probs(xt, 10.0), probs(mixed, 10.0), partner)
    assert in_gap == 1.0
    assert through_cluster < 0.9


def test_shallow_candidates_carry_their_mixup_predictions():
    from transferkit.core.registries import SHALLOW
    from transferkit.selection import fit_shallow_candidate, mixup_probe, mixval, score_all

    r = np.random.default_rng(0)
    xs = r.normal(size=(120, 4))
    ys = (xs[:, 0] > 0).astype(int)
    xt = r.normal(size=(80, 4)) + 0.3
    c = fit_shallow_candidate(SHALLOW.create("logreg", {}), "logreg", xs, ys, xt, n_classes=2)
    mixed, partner = mixup_probe(xt)
    np.testing.assert_array_equal(c["mixup_partner"], partner)
    np.testing.assert_allclose(c["mixup_probs"], c["model"].decision_scores(mixed))
    direct = mixval(c["model"].decision_scores(xt), c["model"].decision_scores(mixed), partner)
    assert score_all(c, {"mixval": None})["mixval"] == pytest.approx(direct)
    # token ids cannot be mixed: no probes (mixval then has no score for the candidate, not an error)
    from transferkit.selection import mixup_arrays

    calls = []
    assert mixup_arrays(lambda x: calls.append(x), np.arange(20).reshape(10, 2)) == {}
    assert calls == []
    assert np.isnan(score_all({"target_probs": c["target_probs"]}, {"mixval": None})["mixval"])
