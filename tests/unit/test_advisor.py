"""The advisor (transferkit.assess.advise): its rules on measured figures, its inputs, and that
target labels are never read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from transferkit.assess import RECOMMENDATIONS, RULES, Advice, advise, decide
from transferkit.core.errors import ConfigError, DataError
from transferkit.data.dataset import DomainDataset


def _blobs(n, seed, K=3, d=6, shift=None, scale=1.0):
    r = np.random.default_rng(seed)
    centers = np.random.default_rng(7).normal(scale=3.0, size=(K, d))
    y = np.arange(n) % K
    x = (centers[y] + r.normal(size=(n, d))) * scale
    if shift is not None:
        x = x + shift
    return x, y


def _row(name, gain, ok=True, score=0.8):
    return {"name": name, "guard_ok": ok, "gain": gain, "scores": {"iwcv": score}}


SHIFTED = [("mmd", 0.001), ("energy", 0.002), ("classifier", 1e-9)]


@pytest.mark.parametrize("kwargs, expected, pick", [
    # no test rejects at 0.05 / 3
    (dict(tests=[("mmd", 0.2), ("energy", 0.03), ("classifier", 0.5)]), "no_adaptation", "source_only"),
    # a shift, and coral is estimated 3 points better and passes the guard
    (dict(pilot=[_row("source_only", None), _row("coral", 0.03), _row("sa", 0.005)]), "adapt", "coral"),
    # the best gain is below 1 point
    (dict(pilot=[_row("source_only", None), _row("coral", 0.009), _row("sa", -0.01)]), "no_adaptation",
     "source_only"),
    # a large gain but the guard rejects that adaptation: the next one decides
    (dict(pilot=[_row("source_only", None), _row("coral", 0.2, ok=False), _row("sa", 0.004)]),
     "no_adaptation", "source_only"),
    # every adaptation is worse by >= 2 points or collapsed
    (dict(pilot=[_row("source_only", None), _row("coral", -0.05), _row("sa", 0.3, ok=False)]),
     "negative_transfer_likely", "source_only"),
    # strong label shift estimated from a healthy source-only model
    (dict(label_shift_tv=0.45, pilot=[_row("source_only", None), _row("coral", 0.05)]),
     "negative_transfer_likely", "source_only"),
    # the source-only model collapses and no adaptation rescues it
    (dict(source_only_guard=(False, ["2.0 effective classes"]),
          pilot=[_row("source_only", None, ok=False), _row("coral", 0.002)]),
     "negative_transfer_likely", "source_only"),
    # ... but an adaptation that passes the guard and gains does
    (dict(source_only_guard=(False, ["2.0 effective classes"]), label_shift_tv=0.6,
          pilot=[_row("source_only", None, ok=False), _row("sa", 0.3)]), "adapt", "sa"),
    # encoders that can be trained, poor frozen features, no gain
    (dict(finetunable=True, source_accuracy=0.6,
          pilot=[_row("source_only", None), _row("coral", 0.0)]), "fine_tune", None),
    (dict(finetunable=True, source_accuracy=0.95,
          pilot=[_row("source_only", None), _row("coral", 0.0)]), "no_adaptation", "source_only"),
])
def test_decide_rules(kwargs, expected, pick):
    args = dict(tests=SHIFTED, proxy_a=1.5, source_only_guard=(True, []), label_shift_tv=0.05,
                pilot=[_row("source_only", None), _row("coral", 0.0)], validator="iwcv",
                source_accuracy=0.9)
    args.update(kwargs)
    rec, chosen, reasons = decide(**args)
    assert rec == expected and chosen == pick and rec in RECOMMENDATIONS
    assert reasons and all(isinstance(r, str) and r for r in reasons)
    # every reason cites a measured figure (a number)
    assert all(any(ch.isdigit() for ch in r) for r in reasons)


def test_label_shift_verdict_states_bbse_assumption():
    _, _, reasons = decide(tests=SHIFTED, proxy_a=1.5, source_only_guard=(True, []), label_shift_tv=0.45,
                           pilot=[_row("source_only", None), _row("coral", 0.05)], validator="iwcv",
                           source_accuracy=0.9)
    assert "only the class proportions change" in reasons[-1] and "0.45" in reasons[-1]


def test_decide_thresholds_are_the_documented_ones():
    assert RULES == {"alpha": 0.05, "min_gain": 0.01, "harm_margin": 0.02, "max_label_shift_tv": 0.3,
                     "fine_tune_source_acc": 0.85}
    rec, _, _ = decide(tests=SHIFTED, proxy_a=1.0, source_only_guard=(True, []), label_shift_tv=0.0,
                       pilot=[_row("source_only", None), _row("coral", 0.01)], validator="iwcv",
                       source_accuracy=0.9)
    assert rec == "adapt"                                       # exactly at the 1-point margin
    rec, _, _ = decide(tests=[("mmd", 0.0167), ("energy", 1.0), ("classifier", 1.0)], proxy_a=0.1,
                       source_only_guard=(True, []), label_shift_tv=0.0,
                       pilot=[_row("source_only", None)], validator="iwcv", source_accuracy=0.9)
    assert rec == "no_adaptation"                                # 0.0167 > 0.05 / 3


def test_no_shift_gives_no_adaptation():
    x, y = _blobs(400, 0)
    perm = np.random.default_rng(1).permutation(400)
    a = advise(x[perm[:200]], x[perm[200:]], source_labels=y[perm[:200]], n_permutations=100)
    assert a.recommendation == "no_adaptation" and a.pipeline["method"] == "logreg"
    assert a.figures["min_p_value"] > RULES["alpha"] / 3 and not a.figures["shift_detected"]
    assert {t["method"] for t in a.tests} == {"mmd", "energy", "classifier"}
    assert set(a.distances) == {"proxy_a", "coral"} and "logme" in a.transferability["input"]
    assert [r["name"] for r in a.pilot] == ["source_only", "coral", "sa"]
    json.dumps(a.to_dict())                                     # JSON-ready
    text = a.to_text()
    assert "p-value" in text and "Advice: NO_ADAPTATION" in text


def test_collapsing_shift_is_flagged_and_target_labels_are_never_read():
    xs, ys = _blobs(300, 1)
    xt, yt = _blobs(240, 2)
    xt, yt = xt[yt == 0] + 3.0, yt[yt == 0]                  # one class only, moved: predictions collapse
    ds = DomainDataset.from_arrays(xs, ys, xt, yt)
    ds_unlabelled = DomainDataset.from_arrays(xs, ys, xt, None)
    ds_permuted = DomainDataset.from_arrays(xs, ys, xt, np.random.default_rng(0).permutation(yt))
    advs = [advise(d, n_permutations=60, seed=3) for d in (ds, ds_unlabelled, ds_permuted)]
    a = advs[0]
    assert a.figures["shift_detected"] and a.distances["proxy_a"] > 1.5
    assert not a.figures["source_only_guard_ok"]
    assert a.recommendation in ("negative_transfer_likely", "adapt")
    assert any("collapse" in r for r in a.reasons)
    for b in advs[1:]:
        assert b.recommendation == a.recommendation and b.pipeline == a.pipeline
        assert b.figures == a.figures and b.reasons == a.reasons


def test_candidates_pick_the_most_transferable_features():
    x, y = _blobs(300, 3)
    xt, _ = _blobs(200, 4, shift=0.5)
    r = np.random.default_rng(0)
    noise = (r.normal(size=(300, 6)), r.normal(size=(200, 6)))
    a = advise(x, xt, source_labels=y, candidates={"noise": noise, "good": lambda v: v * 2.0},
               n_permutations=60)
    assert a.data["features"] == "good" and a.pipeline["features"] == "good"
    assert a.transferability["good"]["logme"] > a.transferability["noise"]["logme"]
    assert any("highest LogME" in r for r in a.reasons)


def test_bad_inputs_raise_clear_errors():
    x, y = _blobs(60, 0)
    with pytest.raises(ConfigError, match="source_labels"):
        advise(x, x)
    with pytest.raises(DataError, match="features"):
        advise(x, x[:, :3], source_labels=y)
    with pytest.raises(DataError, match="NaN"):
        bad = x.copy()
        bad[0, 0] = np.nan
        advise(x, bad, source_labels=y)
    with pytest.raises(ConfigError, match="classifier"):
        advise(x, x, source_labels=y, classifier="forest")
    with pytest.raises(ConfigError, match="unknown rule"):
        advise(x, x, source_labels=y, rules={"alpah": 0.1})
    with pytest.raises(ConfigError, match="accuracy"):
        advise(x, x, source_labels=y, validator="source_accuracy+snd")
    with pytest.raises(ConfigError, match="n_permutations"):
        advise(x, x, source_labels=y, n_permutations=20)


def test_advice_round_trips_as_dict():
    a = Advice(recommendation="adapt", pipeline={"method": "coral", "label": "coral", "features": "input"},
               reasons=["coral is estimated +3.0 points better"], figures={"min_p_value": 0.001})
    d = a.to_dict()
    assert d["summary"] == "adapt: use coral" and d["recommendation"] == "adapt"


def test_deep_pilot_adds_a_small_dann():
    xs, ys = _blobs(120, 1)
    xt, _ = _blobs(90, 2, shift=1.0)
    a = advise(xs, xt, source_labels=ys, deep=True, deep_steps=20, n_permutations=60)
    rows = {r["name"]: r for r in a.pilot}
    assert rows["dann"]["kind"] == "deep" and rows["deep_source_only"]["kind"] == "deep"
    assert rows["dann"]["scores"]["iwcv"] is not None and "gain" in rows["dann"]


def test_finetunable_names_the_trainable_candidates():
    from transferkit.assess.advisor import _trainable

    names = ["input", "enc"]
    assert _trainable(True, names)("input") and not _trainable(False, names)("enc")
    only_enc = _trainable(["enc"], names)
    assert only_enc("enc") and not only_enc("input")
    assert _trainable({"enc"}, names)("enc")
    with pytest.raises(ConfigError, match="'nope'.*candidates: input, enc"):
        _trainable(["nope"], names)
    with pytest.raises(ConfigError, match="list of candidate names"):
        _trainable("enc", names)
    # checked by advise before any test or pilot runs
    x, y = _blobs(60, 0)
    with pytest.raises(ConfigError, match="'other'"):
        advise(x, x, source_labels=y, candidates={"a": lambda v: v}, finetunable=["other"],
               n_permutations=60)
