"""share_source_training: a target-free deep run trains once per source and serves every task
sharing that source; adapting methods still train per task."""

import pytest

from transferkit.core.errors import ConfigError
from transferkit.core.registries import DATASETS
from transferkit.core.registry import Entry
from transferkit.data.dataset import make_task
from transferkit.experiment.config import validate_config
from transferkit.experiment.runner import SHARED_SOURCE_DIR, _run_dir, run_experiment
from transferkit.testing import shifted_blobs


class ThreeDomains:
    """Domains A, B, C (shifted blobs); tasks A->B, A->C, B->A."""

    name = "three_domains"

    def __init__(self, tasks: str = "A->B,A->C,B->A") -> None:
        self.names = tasks.split(",")
        xa, ya, xb, yb = shifted_blobs(n=120, shift=1.0, seed=1)
        _, _, xc, yc = shifted_blobs(n=120, shift=2.0, seed=2)
        self.dom = {"A": (xa, ya), "B": (xb, yb), "C": (xc, yc)}

    def task_names(self):
        return list(self.names)

    def load_task(self, name):
        s, t = name.split("->")
        (xs, ys), (xt, yt) = self.dom[s], self.dom[t]
        return make_task(xs, ys, xt, xt, yt, name=name, source_name=s, target_name=t, classes=["0", "1", "2"])


@pytest.fixture
def three_domains(monkeypatch):
    DATASETS._load()
    monkeypatch.setitem(DATASETS._entries, "three_domains", Entry("three_domains", ThreeDomains, "test data"))


def _cfg(tasks="A->B,A->C,B->A", share=True):
    return validate_config(_raw(tasks, share))


def _raw(tasks="A->B,A->C,B->A", share=True):
    return ({
        "name": "shared", "seed": 3, "share_source_training": share,
        "data": {"name": "three_domains", "params": {"tasks": tasks}},
        "model": {"name": "tiny_mlp"},
        "train": {"steps": 40, "batch_size": 16, "progress": False, "checkpoint_every": 20},
        "methods": ["source_only", {"name": "source_only", "label": "lora", "train": {"finetune": {"name": "lora"}}},
                    {"name": "dann", "params": {"disc_hidden": 16}}]})


def _acc(res):
    return {(r.task, r.method): r.metrics["target_accuracy"] for r in res.runs}


def test_target_free_runs_train_once_per_source(three_domains, tmp_path):
    res = run_experiment(_cfg(), tmp_path / "o", progress=False)
    fit = {(r.task, r.method): r.timings["fit"] for r in res.runs}
    for label in ("source_only", "lora"):
        assert fit[("A->B", label)] > 0 and fit[("A->C", label)] == 0.0 and fit[("B->A", label)] > 0
        shared = [r.timings["shared_fit"] for r in res.runs if r.method == label and r.task != "B->A"]
        assert shared[0] == shared[1] == fit[("A->B", label)]
    assert all(fit[(t, "dann")] > 0 for t in ("A->B", "A->C", "B->A"))  # reads the target: per task
    assert len(list((tmp_path / "o" / "runs" / SHARED_SOURCE_DIR).iterdir())) == 4  # 2 methods x 2 sources

    # the shared model does not depend on which task trained it: A->C alone gives the same figures
    alone = run_experiment(_cfg("A->C"), tmp_path / "alone", progress=False)
    acc, acc_alone = _acc(res), _acc(alone)
    for label in ("source_only", "lora"):
        assert acc[("A->C", label)] == acc_alone[("A->C", label)]
        assert next(r for r in alone.runs if r.method == label).timings["fit"] > 0

    # a task whose result is gone reads the shared weights from disk (new process: empty memory)
    for label in ("source_only", "lora"):
        (_run_dir(tmp_path / "o", "A->C", label) / "result.json").unlink()
    again = run_experiment(_cfg(), tmp_path / "o", progress=False)
    assert _acc(again) == acc
    assert all(r.timings["fit"] == 0.0 for r in again.runs if r.task == "A->C" and r.method != "dann")


def test_shared_weights_stay_on_disk_when_there_is_an_out_folder(three_domains, tmp_path, monkeypatch):
    """With an out folder the experiment keeps no shared weights in memory: every reuse reads them
    back from the folder (a changed file changes the figures); without one, memory serves."""
    import inspect

    import torch

    from transferkit.experiment import runner

    memos = []
    real = runner._fit_shared

    def spy(*args, **kw):
        memos.append(inspect.signature(real).bind(*args, **kw).arguments["memo"])
        return real(*args, **kw)

    monkeypatch.setattr(runner, "_fit_shared", spy)
    cfg = validate_config({**_raw("A->B"), "methods": ["source_only"]})
    run_experiment(cfg, tmp_path / "o", progress=False)
    (key,) = memos[-1]
    assert memos[-1][key][0] is None  # the fit record alone
    # damage the weights on disk: the next task of source A must read them (and get other figures)
    path = tmp_path / "o" / "runs" / SHARED_SOURCE_DIR / key / "model.pt"
    state = torch.load(path, weights_only=True)
    torch.save({k: torch.zeros_like(v) if v.is_floating_point() else v for k, v in state.items()}, path)
    two = validate_config({**_raw("A->B,A->C"), "methods": ["source_only"]})
    res = run_experiment(two, tmp_path / "o", progress=False)
    ac = next(r for r in res.runs if r.task == "A->C")
    y_test = ThreeDomains().load_task("A->C").y_test  # zero weights: every prediction is class 0
    assert ac.timings["fit"] == 0.0 and ac.metrics["target_accuracy"] == pytest.approx(100 * (y_test == 0).mean())
    memos.clear()
    run_experiment(validate_config({**_raw("A->B,A->C"), "methods": ["source_only"]}), None, progress=False)
    (key2,) = memos[-1]
    assert key2 == key and memos[-1][key][0] is not None  # no folder: the weights are held in memory


def test_sharing_is_opt_in(three_domains):
    res = run_experiment(_cfg(share=False), None, progress=False)
    assert all(r.timings["fit"] > 0 and "shared_fit" not in r.timings for r in res.runs)
    with pytest.raises(ConfigError, match="share_source_training: got 'yes'; expected true or false"):
        validate_config({**_raw(), "share_source_training": "yes"})


def test_keep_best_source_accuracy_in_runs_and_shared_runs(three_domains, tmp_path):
    """train.keep reaches per-task and shared trainings: each run reports the step it kept, its
    held-out source accuracy is the best one measured, and keep: last runs keep their old
    fingerprints (the setting stays out of them)."""
    from transferkit.experiment.runner import _fingerprint

    raw = _raw()
    raw["train"].update(keep="best_source_accuracy", keep_every=10)
    cfg = validate_config(raw)
    res = run_experiment(cfg, tmp_path / "o", progress=False)
    assert all(r.status == "ok" for r in res.runs), [r.error for r in res.runs]
    for r in res.runs:   # log_every (50) > steps: only the last step's history row; keep_every 10
        assert r.metrics["kept_step"] in (10.0, 20.0, 30.0, 40.0)
    raw["train"]["log_every"] = 10
    res = run_experiment(validate_config(raw), tmp_path / "o2", progress=False)
    for r in res.runs:
        measured = {row["step"]: row["source_val_accuracy"] for row in r.history}
        assert sorted(measured) == [10, 20, 30, 40]
        best = max(measured.values())
        assert r.metrics["kept_step"] == max(s for s, a in measured.items() if a == best)
        assert r.metrics["source_accuracy"] == pytest.approx(best)   # measured on the kept weights
    plain = _cfg()
    task = ThreeDomains().load_task("A->B")
    before = _fingerprint(plain, plain.methods[0], task)
    raw2 = _raw()
    raw2["train"]["keep"] = "last"
    assert _fingerprint(validate_config(raw2), validate_config(raw2).methods[0], task) == before
    assert _fingerprint(cfg, cfg.methods[0], task) != before
