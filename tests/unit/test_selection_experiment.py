"""`selection:` in experiment configs: validation with key paths, label-free picks recorded by the
runner, the report's selection table and oracle column, feature maps, and validator-driven search."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from transferkit.core.errors import ConfigError
from transferkit.experiment.config import (
    DEFAULT_CONFIG,
    apply_overrides,
    validate_config,
)
from transferkit.experiment.runner import run_experiment


def _blobs(n, shift, seed, K=3, d=5):
    r = np.random.default_rng(seed)
    centers = np.random.default_rng(100).normal(scale=3.0, size=(K, d))
    y = np.arange(n) % K
    return centers[y] + r.normal(size=(n, d)) + shift, y


@pytest.fixture()
def files(tmp_path):
    xs, ys = _blobs(120, 0.0, 1)
    xt, yt = _blobs(90, 1.0, 2)
    np.savez(tmp_path / "s.npz", x=xs, y=ys)
    np.savez(tmp_path / "t.npz", x=xt, y=yt)                                  # labelled target
    np.savez(tmp_path / "tp.npz", x=xt, y=np.random.default_rng(5).permutation(yt))  # permuted labels
    np.savez(tmp_path / "tn.npz", x=xt)                                       # no target labels
    return tmp_path


def _raw(tmp_path, target="t.npz", selection=None, methods=None, report=None):
    raw = {"name": "sel", "seed": 0,
           "data": {"name": "files", "params": {"source": str(tmp_path / "s.npz"),
                                                "target": str(tmp_path / target),
                                                "task_name": "s->t"}},
           "model": {"name": "tiny_mlp"},
           "train": {"steps": 20, "batch_size": 16, "progress": False, "checkpoint_every": 0},
           "methods": methods or ["logreg", {"name": "coral", "params": {"estimator": "logreg"}},
                                  {"name": "sa", "params": {"n_components": 3, "estimator": "logreg"}},
                                  "1nn"],
           "selection": selection if selection is not None else {"validator": "source_accuracy+snd"}}
    if report is not None:
        raw["report"] = report
    return raw


# -- config ----------------------------------------------------------------------------------------


def test_default_config_still_validates_without_selection():
    cfg = validate_config(DEFAULT_CONFIG)
    assert cfg.selection is None and "selection" not in cfg.raw and cfg.report.embedding == "pca"


def test_selection_defaults_and_fallback(files):
    cfg = validate_config(_raw(files, selection={}))
    sel = cfg.selection
    assert sel.validator == "source_accuracy+snd" and sel.val_fraction == 0.2
    assert sel.fallback == "logreg"                     # the first source-only method
    assert sel.guard.enabled and sel.guard.expected == "source_prior"
    assert cfg.raw["selection"]["validator"] == "source_accuracy+snd"


@pytest.mark.parametrize("override, match", [
    (["selection.validator=devv"], r"selection\.validator: unknown validator 'devv'.*Did you mean 'dev'"),
    (["selection.validator=dev+snnd"], r"selection\.validator: unknown validator 'snnd'"),
    (["selection.params.metrc=nll", "selection.validator=dev"], r"selection\.params\.metrc: unknown parameter"),
    (["selection.val_fraction=1.5"], r"selection\.val_fraction: got 1\.5"),
    (["selection.fallback=lgreg"], r"selection\.fallback: got 'lgreg'.*Did you mean 'logreg'"),
    (["selection.guard.max_tv=2"], r"selection\.guard\.max_tv: got 2"),
    (["selection.guard.expectd=uniform"], r"selection\.guard\.expectd: unknown key.*Did you mean 'expected'"),
    (["selection.guard.expected=target"], r"selection\.guard\.expected: got 'target'"),
    (["selection.ensemble=[im, sndd]"], r"selection\.ensemble\[1\]: unknown validator 'sndd'"),
    (["selection.search.n_trials=0", "selection.search.space.coral.reg=[1, 2]"],
     r"selection\.search\.n_trials: got 0"),
    (["selection.search.n_trials=2", "selection.search.space.corall.reg=[1]"],
     r"selection\.search\.space\.corall: no method labelled 'corall'.*Did you mean 'coral'"),
    (["selection.search.n_trials=2", "selection.search.space.coral.regg=[1]"],
     r"selection\.search\.space\.coral\.regg: coral has no parameter 'regg'.*Did you mean 'reg'"),
    (["selection.search.n_trials=2", "selection.search.space.coral.reg.low=5",
      "selection.search.space.coral.reg.high=1"], r"selection\.search\.space\.coral\.reg: low \(5\)"),
    (["selection.search.n_trials=2", "selection.search.space.coral.reg=[1]",
      "selection.search.sampler=tpf"], r"selection\.search\.sampler: got 'tpf'"),
    (["selection.serch.n_trials=2"], r"selection\.serch: unknown key.*Did you mean 'search'"),
    (["report.embedding=umap"], r"report\.embedding: got 'umap'"),
])
def test_selection_errors_name_the_key_path(files, override, match):
    with pytest.raises(ConfigError, match=match):
        validate_config(apply_overrides(_raw(files), override))


# -- runner + report -------------------------------------------------------------------------------


def _pick(result, task=None):
    task = task or result.tasks()[0]
    return result.selection[task]


def test_run_records_scores_pick_and_report_shows_oracle(files):
    out = files / "out"
    result = run_experiment(validate_config(_raw(files)), out, progress=False)
    sel = _pick(result)
    names = {"logreg", "coral", "sa", "1nn"}
    assert {r["name"] for r in sel["table"]} == names and sel["picked"] in names
    assert sel["reason"].startswith("Picked") and sel["validator"] == "source_accuracy+snd"
    for run in result.runs:
        rec = run.selection
        assert rec["n_val"] == 24 and rec["n_target"] == 90          # 20 % of 120 source held out
        assert set(rec["scores"]) >= {"source_accuracy", "snd", "iwcv", "dev", "reverse"}
        assert abs(sum(rec["predicted_proportions"]) - 1) < 1e-9
        assert "source_accuracy" in run.metrics and "target_accuracy" in run.metrics
    md = (out / "report.md").read_text()
    assert "## Selection" in md and "oracle: target acc" in md and "(picked)" in md
    assert "never used to pick" in md
    html = (out / "report.html").read_text()
    assert 'id="selection"' in html and 'id="features"' in html and "Feature maps" in html
    rep = json.loads((out / "report.json").read_text())
    assert rep["selection"][result.tasks()[0]]["picked"] == sel["picked"]
    assert rep["embeddings"][result.tasks()[0]]["method"] == "pca"


def test_pick_ignores_target_labels(files):
    """Same scores and the same pick whether the target file has its labels, permuted labels or
    none; the oracle column appears only with labelled target data."""
    picks, scores = [], []
    for target in ("t.npz", "tp.npz", "tn.npz"):
        out = files / f"out_{target}"
        res = run_experiment(validate_config(_raw(files, target=target)), out, progress=False)
        sel = _pick(res)
        picks.append(sel["picked"])
        scores.append({r["name"]: {k: v for k, v in r.items() if k != "rank"} for r in sel["table"]})
        md = (out / "report.md").read_text()
        assert ("oracle: target acc" in md) == (target != "tn.npz")
    assert picks[0] == picks[1] == picks[2]
    assert json.dumps(scores[0], sort_keys=True, default=str) == json.dumps(scores[1], sort_keys=True, default=str) \
        == json.dumps(scores[2], sort_keys=True, default=str)


def test_guard_rejects_a_collapsed_run_and_fallback(files):
    """A 1-NN on a target pushed far away predicts one class: the guard rejects it."""
    xt, _ = _blobs(90, 0.0, 2)
    xt = xt + np.array([40.0, 0, 0, 0, 0])
    np.savez(files / "far.npz", x=xt)
    res = run_experiment(validate_config(_raw(files, target="far.npz", methods=["1nn", "logreg"])),
                         files / "far_out", progress=False)
    sel = _pick(res)
    rows = {r["name"]: r for r in sel["table"]}
    assert any(not r["guard_ok"] for r in rows.values())
    rejected = [n for n, r in rows.items() if not r["guard_ok"]]
    assert sel["picked"] not in rejected or sel["fell_back"]


def test_deep_run_selection_and_embedding(files):
    raw = _raw(files, methods=["source_only", "logreg"], report={"embedding": "tsne", "max_points": 60})
    res = run_experiment(validate_config(raw), files / "deep_out", progress=False)
    deep = next(r for r in res.runs if r.method == "source_only")
    assert deep.selection["n_val"] == 24 and set(deep.selection["scores"]) >= {"dev", "snd"}
    for run in res.runs:  # both kinds of run make MixVal's probes on the (real-valued) target
        assert 0.0 <= run.selection["scores"]["mixval"] <= 1.0
    assert deep.embedding["method"] == "tsne" and len(deep.embedding["source"]) == 30
    assert res.get(res.tasks()[0], "logreg").embedding == {"same_as_input": True}
    assert _pick(res)["picked"] in ("source_only", "logreg")


def test_search_adds_trials_as_candidates(files):
    pytest.importorskip("optuna")
    sel = {"validator": "source_accuracy+snd",
           "search": {"n_trials": 3, "sampler": "random", "seed": 1,
                      "space": {"coral": {"reg": {"low": 0.01, "high": 10.0, "log": True}}}}}
    raw = _raw(files, selection=sel, methods=["logreg", {"name": "coral", "params": {"estimator": "logreg"}}])
    out = files / "search_out"
    res = run_experiment(validate_config(raw), out, progress=False)
    trials = [r for r in res.runs if r.method.startswith("coral#")]
    assert len(trials) == 3 and len({r.params["reg"] for r in trials}) == 3
    assert all(r.params["estimator"] == "logreg" for r in trials)
    assert {r["name"] for r in _pick(res)["table"]} == {"logreg", "coral", *(r.method for r in trials)}
    assert list(out.glob("runs/*/coral/study.db"))
    # a second run reuses the study (its budget is spent) and every finished run
    res2 = run_experiment(validate_config(raw), out, progress=False)
    assert sorted(r.method for r in res2.runs) == sorted(r.method for r in res.runs)


def test_embedding_off_and_old_reports_load(files, tmp_path):
    from transferkit.experiment.result import ExperimentResult

    raw = _raw(files, report={"embedding": "off"})
    raw.pop("selection")
    res = run_experiment(validate_config(raw), files / "off_out", progress=False)
    assert not res.embeddings and all(r.embedding is None and r.selection is None for r in res.runs)
    html = (files / "off_out" / "report.html").read_text()
    assert 'id="selection"' not in html and 'id="features"' not in html
    d = copy.deepcopy(res.to_dict())
    for k in ("selection", "embeddings"):
        d.pop(k)
    for r in d["runs"]:
        r.pop("selection"), r.pop("embedding")
    (tmp_path / "old.json").write_text(json.dumps(d))
    assert ExperimentResult.load_json(tmp_path / "old.json").runs


def test_pool_validator_ensv_in_a_run(files):
    """selection.validator = ensv: each run keeps its target probabilities beside result.json;
    the pick is the run agreeing most with the mean of the accepted runs' probabilities, the same
    when the runs are reused from disk; a run without them gives a clear reason, not a crash."""
    methods = ["logreg", {"name": "coral", "params": {"estimator": "logreg"}},
               {"name": "sa", "params": {"n_components": 3, "estimator": "logreg"}}, "1nn", "source_only"]
    raw = _raw(files, selection={"validator": "ensv"}, methods=methods)
    out = files / "ensv_out"
    res = run_experiment(validate_config(raw), out, progress=False)
    sel = _pick(res)
    rows = {r["name"]: r for r in sel["table"]}
    probs = {m: np.load(next(out.glob(f"runs/*/{m}/target_probs.npy"))) for m in rows}
    assert all(p.shape == (90, 3) for p in probs.values())
    accepted = [m for m in rows if rows[m]["guard_ok"]]
    ref = np.mean([probs[m].astype(np.float64) for m in accepted], axis=0).argmax(axis=1)
    expect = {m: float(np.mean(probs[m].argmax(axis=1) == ref)) for m in accepted}
    for m, v in expect.items():
        assert rows[m]["ensv"] == pytest.approx(v)
    assert sel["picked"] == max(expect, key=lambda m: (expect[m], -list(rows).index(m)))
    assert all("ensv" not in run.selection["scores"] for run in res.runs)  # never stored per run
    # reused from disk: same scores and pick
    again = _pick(run_experiment(validate_config(raw), out, progress=False))
    assert again["picked"] == sel["picked"]
    assert [r["ensv"] for r in again["table"]] == [r["ensv"] for r in sel["table"]]
    # a reused run without its probabilities: nothing picked, the reason says why and what to do
    next(out.glob("runs/*/sa/target_probs.npy")).unlink()
    third = _pick(run_experiment(validate_config(raw), out, progress=False))
    assert third["picked"] is None and "'sa'" in third["reason"] and "target_probs.npy" in third["reason"]


def test_pool_validator_cannot_drive_a_search(files):
    sel = {"validator": "ensv", "search": {"n_trials": 2, "space": {"coral": {"reg": {"low": 0.1, "high": 1.0}}}}}
    raw = _raw(files, selection=sel, methods=["logreg", {"name": "coral", "params": {"estimator": "logreg"}}])
    with pytest.raises(ConfigError, match=r"selection\.validator.*whole pool.*'source_accuracy\+ensv'"):
        validate_config(raw)
    sel["validator"] = "source_accuracy+ensv"
    assert validate_config(raw).selection.validator == "source_accuracy+ensv"
