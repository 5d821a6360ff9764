"""Candidates from fitted models, reverse validation, combined validators and precomputed guard
verdicts (transferkit.selection.candidates / validators / guard)."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit.core.errors import ConfigError, DataError
from transferkit.selection import select
from transferkit.selection.candidates import (
    as_probabilities,
    fit_shallow_candidate,
    score_all,
    source_side,
    stratified_holdout,
)
from transferkit.selection.guard import borda, check_collapse, check_proportions
from transferkit.selection.validators import (
    dev,
    importance_weights,
    iwcv,
    reverse_validation,
)
from transferkit.testing.data import shifted_blobs


def _blobs(seed=0, n=150, shift=1.0, K=3, d=4):
    r = np.random.default_rng(seed)
    centers = r.normal(scale=4.0, size=(K, d))
    ys = np.arange(n) % K
    yt = r.permutation(np.arange(n) % K)
    xs = centers[ys] + r.normal(size=(n, d))
    xt = centers[yt] + r.normal(size=(n, d)) + shift
    return xs, ys, xt, yt


def test_stratified_holdout_per_class_and_deterministic():
    y = np.repeat([0, 1, 2], [10, 20, 5])
    tr, va = stratified_holdout(y, 0.2, seed=3)
    assert np.bincount(y[va]).tolist() == [2, 4, 1]
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(y)
    tr2, va2 = stratified_holdout(y, 0.2, seed=3)
    assert np.array_equal(va, va2)
    with pytest.raises(ConfigError, match="fraction"):
        stratified_holdout(y, 1.5)


def test_as_probabilities_keeps_probs_softmaxes_scores_and_places_columns():
    p = np.array([[0.2, 0.8], [0.5, 0.5]])
    assert np.allclose(as_probabilities(p), p)
    s = np.array([[1.0, -1.0, 0.0]])
    q = as_probabilities(s)
    assert np.allclose(q, np.exp(s) / np.exp(s).sum())
    b = as_probabilities(np.array([0.0, 2.0]))          # binary decision function
    assert np.allclose(b[1], [1 / (1 + np.exp(4)), 1 / (1 + np.exp(-4))])
    placed = as_probabilities(p, 4, columns=[1, 3])
    assert placed.shape == (2, 4) and np.allclose(placed[:, [1, 3]], p) and placed[:, [0, 2]].sum() == 0
    with pytest.raises(DataError):
        as_probabilities(np.array([[np.nan, 1.0]]))


def test_fit_shallow_candidate_never_sees_target_labels_and_scores_held_out_source():
    from transferkit.core.registries import SHALLOW

    xs, ys, xt, yt = _blobs()
    split = stratified_holdout(ys, 0.2, 0)
    c = fit_shallow_candidate(SHALLOW.create("logreg", {}), "lr", xs, ys, xt, split=split, n_classes=3)
    assert c["source_probs"].shape == (len(split[1]), 3) and c["target_probs"].shape == (len(xt), 3)
    assert np.array_equal(c["source_labels"], ys[split[1]])
    # the model was fitted on the training part only: refitting there gives the same predictions
    ref = SHALLOW.create("logreg", {}).fit(np.vstack([xs[split[0]], xt]),
                                           np.r_[ys[split[0]], -np.ones(len(xt), int)])
    assert np.allclose(ref.decision_scores(xt), c["target_probs"])


def test_subspace_alignment_source_side_map():
    from transferkit.core.registries import SHALLOW

    xs, ys, xt, _ = _blobs(d=6)
    est = SHALLOW.create("sa", {"n_components": 3, "estimator": "logreg"})
    est.fit(np.vstack([xs, xt]), np.r_[ys, -np.ones(len(xt), int)])
    scores, Z = source_side(est, xs[:5])
    expected = (xs[:5] - est.source_mean_) @ est.source_basis_ @ est.alignment_
    assert np.allclose(Z, expected)
    assert np.allclose(scores, est.estimator_.predict_proba(expected))
    # methods mapping both domains alike have no separate source side
    lr = SHALLOW.create("logreg", {}).fit(np.vstack([xs, xt]), np.r_[ys, -np.ones(len(xt), int)])
    assert source_side(lr, xs[:5]) is None


def test_score_all_shares_importance_weights_and_matches_direct_calls():
    r = np.random.default_rng(1)
    ps = np.full((40, 3), 0.1)
    ps[np.arange(40), r.integers(0, 3, 40)] = 0.8
    c = {"source_probs": ps, "source_labels": r.integers(0, 3, 40),
         "target_probs": ps[:30], "source_features": r.normal(size=(40, 2)),
         "target_features": r.normal(size=(30, 2)) + 0.5}
    got = score_all(c, {"iwcv": None, "dev": {"metric": "accuracy"}, "snd": None, "nope_missing": None})
    w = importance_weights(c["source_features"], c["target_features"])
    assert got["iwcv"] == pytest.approx(iwcv(ps, c["source_labels"], None, None, weights=w))
    assert got["dev"] == pytest.approx(dev(ps, c["source_labels"], None, None, weights=w,
                                           metric="accuracy"))
    assert np.isnan(got["nope_missing"])  # an unknown validator gives NaN, not an exception


def test_reverse_validation_against_direct_computation():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xs, ys, xt, yt = _blobs(seed=2, shift=0.3)
    pt = np.eye(3)[yt] * 0.7 + 0.1                     # pseudo-labels = the true target labels
    direct = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000, random_state=0))
    expected = np.mean(direct.fit(xt, yt).predict(xs) == ys)
    assert reverse_validation(ys, pt, xs, xt) == pytest.approx(expected)
    assert expected > 0.9
    # scrambled pseudo-labels do not transfer back; a collapsed labelling gets that class's share
    scrambled = np.eye(3)[np.random.default_rng(0).permutation(yt)] * 0.7 + 0.1
    assert reverse_validation(ys, scrambled, xs, xt) < 0.6
    one = np.tile([0.8, 0.1, 0.1], (len(xt), 1))
    assert reverse_validation(ys, one, xs, xt) == pytest.approx(np.mean(ys == 0))
    with pytest.raises(DataError, match="columns"):
        reverse_validation(ys, pt, xs, xt[:, :2])


def test_borda_mean_rank_and_combined_validator_in_select():
    a = [0.9, 0.5, 0.7, 0.8]
    b = [1.0, 3.0, 2.0, 9.0]
    got = borda([a, b], among=[0, 1, 2])           # candidate 3 is not ranked (e.g. rejected)
    # ranks in a: 3,1,2 ; in b: 1,3,2 ; mean of rank/3
    assert got[:3] == pytest.approx([(3 + 1) / 6, (1 + 3) / 6, (2 + 2) / 6]) and np.isnan(got[3])
    cands = [{"name": f"c{i}", "scores": {"source_accuracy": a[i], "snd": b[i]}} for i in range(4)]
    # the two validators order these candidates in opposite ways: by default select falls back
    assert select(cands, "source_accuracy+snd", guard=False, fallback="c0").picked == "c0"
    sel = select(cands, "source_accuracy+snd", guard=False, fallback=None, min_agreement=-1.0)
    assert sel.picked == "c3"  # ranks 3 (of 4) and 4: the best mean rank
    row = next(r for r in sel.table if r["name"] == "c3")
    assert row["source_accuracy"] == 0.8 and row["snd"] == 9.0 and "mean rank" in sel.reason
    with pytest.raises(Exception, match="unknown validator"):
        select(cands, "source_accuracy+sndd", guard=False, fallback=None)


def test_precomputed_guard_verdicts_and_check_proportions_match_check_collapse():
    r = np.random.default_rng(0)
    pred = np.r_[np.zeros(90, int), r.integers(0, 10, 10)]
    p = np.full((100, 10), 0.01)
    p[np.arange(100), pred] = 0.91
    full = check_collapse(p)
    props = check_proportions(np.bincount(pred, minlength=10) / 100)
    assert full.ok == props.ok is False and full.reasons == props.reasons
    cands = [{"name": "collapsed", "scores": {"snd": 10.0}, "guard": props},
             {"name": "fine", "scores": {"snd": 1.0}, "guard": {"ok": True, "reasons": []}}]
    sel = select(cands, "snd", fallback=None)
    assert sel.picked == "fine" and sel.table[0]["guard_ok"] is False
    with pytest.raises(ConfigError, match="guard"):
        select([{"name": "x", "scores": {"snd": 1.0}, "guard": "yes"}], "snd", fallback=None)


def test_shifted_blobs_candidates_end_to_end():
    from transferkit.core.registries import SHALLOW

    xs, ys, xt, _ = shifted_blobs(seed=0)
    split = stratified_holdout(ys, 0.25, 0)
    cands = [fit_shallow_candidate(SHALLOW.create(m, p), m, xs, ys, xt, split=split)
             for m, p in (("logreg", {}), ("coral", {"estimator": "logreg"}))]
    sel = select(cands, "source_accuracy+snd", fallback="logreg")
    assert sel.picked in ("logreg", "coral") and len(sel.table) == 2
