"""The collapse guard, validator agreement and select (transferkit.selection.guard)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from transferkit.core.errors import ConfigError
from transferkit.selection import agreement, check_collapse, select, softmax

K = 10


def _probs_from_labels(pred, K=K, conf=0.9):
    p = np.full((len(pred), K), (1 - conf) / (K - 1))
    p[np.arange(len(pred)), pred] = conf
    return p


def _predictions(props, n=1000, seed=0):
    """Hard predictions with class proportions ``props`` (shuffled)."""
    counts = np.floor(np.asarray(props) * n).astype(int)
    counts[np.argmax(counts)] += n - counts.sum()
    pred = np.repeat(np.arange(len(props)), counts)
    return np.random.default_rng(seed).permutation(pred)


# -- check_collapse ----------------------------------------------------------------------------


def test_guard_accepts_healthy_imbalanced_models():
    r = np.random.default_rng(0)
    for i in range(200):
        q = r.dirichlet(np.full(K, 5.0))
        y = r.choice(K, size=600, p=q)
        # a 70 %-accurate model, errors spread over the other classes
        wrong = r.random(600) > 0.7
        pred = np.where(wrong, (y + r.integers(1, K, 600)) % K, y)
        p = softmax(np.eye(K)[pred] * 3 + r.normal(size=(600, K)) * 0.3)
        res = check_collapse(p)
        assert res.ok, (i, res.reasons)
        # with the (uniform) source prior as the expected proportions: the label shift fits in max_tv
        assert check_collapse(p, expected_proportions=np.ones(K)).ok
        # with the true proportions (e.g. a good BBSE estimate)
        assert check_collapse(p, expected_proportions=q).ok
    # balanced and perfect
    assert check_collapse(_probs_from_labels(np.arange(1000) % K)).ok


@pytest.mark.parametrize("props", [
    [1.0] + [0.0] * 9,  # one class: the SKADA-Bench collapse (~10 % accuracy)
    [0.45, 0.45] + [0.1 / 8] * 8,  # mostly 2 classes
    [0.3, 0.3, 0.3] + [0.1 / 7] * 7,  # mostly 3 classes
])
def test_guard_rejects_collapsed_models(props):
    p = _probs_from_labels(_predictions(props))
    res = check_collapse(p)
    assert not res.ok
    assert any("effective classes" in r for r in res.reasons)
    assert any("classes receive" in r for r in res.reasons)
    res = check_collapse(p, expected_proportions=np.full(K, 0.1))
    assert any("total variation" in r for r in res.reasons)
    assert res.stats["tv"] > 0.5 and res.stats["effective_classes"] < 5


def test_guard_stats_and_expected_proportions():
    pred = _predictions([0.3, 0.3, 0.2, 0.2, 0, 0], n=100)
    p = _probs_from_labels(pred, K=6)
    res = check_collapse(p)
    assert res.stats["predicted_proportions"] == pytest.approx([0.3, 0.3, 0.2, 0.2, 0, 0])
    assert res.stats["covered_classes"] == 4 and res.ok
    assert res.stats["effective_classes"] == pytest.approx(np.exp(-(2 * 0.3 * np.log(0.3) +
                                                                   2 * 0.2 * np.log(0.2))))
    # partial DA: with the expected proportions the absent classes are not required
    q = [0.25, 0.25, 0.25, 0.25, 0, 0]
    res = check_collapse(p, expected_proportions=q)
    assert res.ok and res.stats["tv"] == pytest.approx(0.1)
    assert not check_collapse(p, expected_proportions=q, max_tv=0.05).ok
    # binary: both classes must get a fifth of their expected share
    assert not check_collapse(_probs_from_labels(np.zeros(50, int), K=2)).ok
    minority = _probs_from_labels(np.r_[np.zeros(96, int), np.ones(4, int)], K=2)
    assert not check_collapse(minority).ok
    assert check_collapse(minority, expected_proportions=[0.95, 0.05]).ok
    with pytest.raises(Exception, match="expected_proportions"):
        check_collapse(p, expected_proportions=[1, 2])


# -- agreement ---------------------------------------------------------------------------------


def _tau_loop(a, b):
    conc = disc = ta = tb = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        s = np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
        if a[i] == a[j] and b[i] == b[j]:
            continue
        if a[i] == a[j]:
            ta += 1
        elif b[i] == b[j]:
            tb += 1
        elif s > 0:
            conc += 1
        else:
            disc += 1
    return (conc - disc) / np.sqrt((conc + disc + ta) * (conc + disc + tb))


def test_agreement_is_mean_pairwise_kendall_tau():
    r = {"a": [0.1, 0.5, 0.3, 0.9], "b": [1.0, 2.0, 3.0, 4.0], "c": [4.0, 1.0, 1.0, 0.0]}
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    ref = np.mean([_tau_loop(r[x], r[y]) for x, y in pairs])
    assert agreement(r) == pytest.approx(ref)
    assert agreement({"a": [1, 2, 3], "b": [10, 20, 30]}) == pytest.approx(1.0)
    assert agreement({"a": [1, 2, 3], "b": [3, 2, 1]}) == pytest.approx(-1.0)
    assert agreement({"a": [1, 2, 3], "b": [5, 5, 5]}) == 0.0
    assert agreement({"a": [1, 2, 3]}) == 1.0
    with pytest.raises(Exception, match="one score per candidate"):
        agreement({"a": [1, 2], "b": [1, 2, 3]})


# -- select ------------------------------------------------------------------------------------


def _candidate(name, pred_target, *, src_acc=0.9, n_src=100, seed=0, conf=0.95, **extra):
    r = np.random.default_rng(seed)
    ys = np.arange(n_src) % K
    ok = r.random(n_src) < src_acc
    ps_pred = np.where(ok, ys, (ys + 1) % K)
    return {"name": name, "source_probs": _probs_from_labels(ps_pred),
            "source_labels": ys, "target_probs": _probs_from_labels(pred_target, conf=conf),
            **extra}


def _healthy(seed):
    return np.random.default_rng(seed).integers(0, K, 500)


def test_select_picks_the_best_by_the_validator_among_accepted():
    cands = [
        _candidate("source_only", _healthy(0), src_acc=0.8),
        _candidate("dann", _healthy(1), src_acc=0.95),
        _candidate("mcc", _predictions([1.0] + [0.0] * 9, n=500), src_acc=0.99, conf=0.99),  # collapsed
    ]
    sel = select(cands, validator="source_accuracy", ensemble=[])
    assert sel.picked == "dann" and not sel.fell_back
    assert "highest source_accuracy" in sel.reason and "'mcc': 1.0 effective classes" in sel.reason
    assert sel.reason.endswith(".")
    rows = {r["name"]: r for r in sel.table}
    assert rows["mcc"]["guard_ok"] is False and rows["mcc"]["rank"] is None
    assert rows["dann"]["rank"] == 1
    # without the guard the collapsed model wins
    assert select(cands, validator="source_accuracy", guard=False, ensemble=[]).picked == "mcc"
    # entropy prefers the confident collapse too; the guard stops it
    assert select(cands, validator="entropy", guard=False, ensemble=[]).picked == "mcc"
    assert select(cands, validator="entropy", ensemble=[]).picked != "mcc"


def test_select_falls_back_when_all_are_rejected_or_validators_disagree():
    collapsed = _predictions([0.5, 0.5] + [0.0] * 8, n=500)
    cands = [_candidate("source_only", collapsed), _candidate("dann", collapsed, seed=1)]
    sel = select(cands, validator="source_accuracy", ensemble=[])
    assert sel.picked == "source_only" and sel.fell_back
    assert "rejected by the collapse guard" in sel.reason
    assert "fallback itself was flagged" in sel.reason
    none = select(cands, validator="source_accuracy", fallback=None, ensemble=[])
    assert none.picked is None and "no fallback" in none.reason

    # two validators ranking three healthy candidates in opposite orders
    cands = [_candidate(n, _healthy(i), scores={"snd": float(i), "entropy": float(-i)})
             for i, n in enumerate(["source_only", "a", "b"])]
    sel = select(cands, validator="snd", ensemble=["entropy"], min_agreement=0.0)
    assert sel.fell_back and sel.picked == "source_only"
    assert sel.agreement == pytest.approx(-1.0) and "disagree" in sel.reason
    sel = select(cands, validator="snd", ensemble=["entropy"], min_agreement=-1.0)
    assert sel.picked == "b" and not sel.fell_back


class _NoOracle(dict):
    """A candidate that fails the test if anything reads its oracle entry."""

    def __getitem__(self, key):
        if key == "oracle":
            raise AssertionError("select read the oracle")
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key == "oracle":
            raise AssertionError("select read the oracle")
        return super().get(key, default)

    def items(self):
        raise AssertionError("select iterated over the candidate (could read the oracle)")

    def values(self):
        raise AssertionError("select iterated over the candidate (could read the oracle)")

    def copy(self):
        raise AssertionError("select copied the candidate (could read the oracle)")


def test_select_never_reads_the_oracle():
    # the oracle says 'b' is far better; the validator prefers 'a'
    cands = [
        _NoOracle(_candidate("source_only", _healthy(0), src_acc=0.7, oracle=0.99)),
        _NoOracle(_candidate("a", _healthy(1), src_acc=0.95, oracle=0.10)),
        _NoOracle(_candidate("b", _healthy(2), src_acc=0.80, oracle=0.99)),
    ]
    sel = select(cands, validator="source_accuracy", min_agreement=-1.0)
    assert sel.picked == "a" and not sel.fell_back
    assert all("oracle" not in row for row in sel.table)
    # flipping the oracle values changes nothing
    for c in cands:
        dict.__setitem__(c, "oracle", 1.0 - dict.__getitem__(c, "oracle"))
    assert select(cands, validator="source_accuracy", min_agreement=-1.0).picked == "a"


def test_select_with_default_ensemble_and_features():
    r = np.random.default_rng(0)
    cands = []
    for i, name in enumerate(["source_only", "coral"]):
        c = _candidate(name, _healthy(i), src_acc=0.8 + 0.1 * i, seed=i)
        c["source_features"] = r.normal(size=(100, 3))
        c["target_features"] = r.normal(size=(500, 3)) + 0.3
        cands.append(c)
    sel = select(cands)  # DEV, every computable validator in the ensemble
    assert sel.validator == "dev" and sel.picked in ("source_only", "coral")
    assert {"dev", "iwcv", "snd", "entropy", "im", "source_accuracy"} <= set(sel.table[0])
    assert sel.agreement is not None and sel.to_dict()["picked"] == sel.picked


def test_select_input_errors():
    c = _candidate("a", _healthy(0))
    with pytest.raises(ConfigError, match="fallback 'source_only' is not among"):
        select([c], validator="entropy")
    with pytest.raises(ConfigError, match="needs source_features"):
        select([c], validator="dev", fallback=None)
    with pytest.raises(ConfigError, match="unique"):
        select([c, dict(c)], validator="entropy", fallback=None)
    with pytest.raises(ConfigError, match="no candidates"):
        select([])


# -- the pool validator ensv (EnsV) -----------------------------------------------------------------


def test_ensemble_agreement_counts_argmax_matches_and_checks_its_input():
    from transferkit.core.errors import DataError
    from transferkit.selection import ensemble_agreement, score_all

    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(4), size=40)
    r = rng.dirichlet(np.ones(4), size=40)
    same = sum(int(np.argmax(p[i]) == np.argmax(r[i])) for i in range(40))
    assert ensemble_agreement(p, reference_probs=r) == pytest.approx(same / 40)
    assert ensemble_agreement(p, reference_probs=p) == 1.0
    with pytest.raises(ConfigError, match="reference_probs is missing"):
        ensemble_agreement(p)
    with pytest.raises(DataError, match="same target rows"):
        ensemble_agreement(p, reference_probs=r[:30])
    # scored one candidate at a time it has no pool: NaN, never an error
    assert np.isnan(score_all({"target_probs": p}, {"ensv": None})["ensv"])


def test_select_with_ensv_compares_with_the_mean_of_the_accepted_candidates():
    rng = np.random.default_rng(5)
    n = 300
    truth = rng.integers(0, K, n)
    cands = []
    for i, noise in enumerate([0.1, 0.3, 0.5, 0.7]):
        pred = np.where(rng.random(n) < noise, rng.integers(0, K, n), truth)
        cands.append({"name": f"m{i}", "target_probs": _probs_from_labels(pred, conf=0.6 + 0.05 * i)})
    # a confident collapsed candidate: rejected by the guard, so it must not vote in the ensemble
    cands.append({"name": "collapsed", "target_probs": _probs_from_labels(np.zeros(n, int), conf=0.999)})
    sel = select(cands, validator="ensv", fallback=None, ensemble=[])
    accepted = [c for c in cands if c["name"] != "collapsed"]
    ref = np.mean([c["target_probs"] for c in accepted], axis=0).argmax(axis=1)
    expect = {c["name"]: float(np.mean(c["target_probs"].argmax(axis=1) == ref)) for c in accepted}
    rows = {r["name"]: r for r in sel.table}
    for name, v in expect.items():
        assert rows[name]["ensv"] == pytest.approx(v)
    assert sel.picked == max(expect, key=expect.get) == "m0"
    assert rows["collapsed"]["guard_ok"] is False
    # without the guard the collapsed candidate votes: the reference, hence the scores, change
    ref_all = np.mean([c["target_probs"] for c in cands], axis=0).argmax(axis=1)
    unguarded = {r["name"]: r["ensv"] for r in select(cands, validator="ensv", guard=False,
                                                      fallback=None, ensemble=[]).table}
    assert unguarded["m3"] == pytest.approx(np.mean(cands[3]["target_probs"].argmax(axis=1) == ref_all))
    assert not np.array_equal(ref, ref_all)
    # combined with another validator by mean rank
    for c, acc in zip(cands, [0.9, 0.95, 0.8, 0.7, 0.99]):
        c["scores"] = {"source_accuracy": acc}
    both = select(cands, validator="source_accuracy+ensv", fallback=None, ensemble=[])
    assert both.picked in ("m0", "m1")


def test_select_with_ensv_needs_every_candidates_target_probs():
    cands = [{"name": "a", "target_probs": _probs_from_labels(_healthy(0))},
             {"name": "b", "scores": {"snd": 1.0}}]
    with pytest.raises(ConfigError, match="every candidate needs target_probs.*'b'"):
        select(cands, validator="ensv", guard=False, fallback=None, ensemble=[])
