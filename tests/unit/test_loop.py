"""The loop: exact resume after a crash or a kill, determinism, the NaN guard."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from transferkit import DataError, TrainingDivergedError
from transferkit.core.registries import METHODS
from transferkit.methods.base import Method
from transferkit.models import create_model
from transferkit.testing import Crash, crash_at
from transferkit.train import TrainConfig, evaluate, fit
from transferkit.train.checkpoint import load_checkpoint


def _setup(name="dann", seed=0):
    torch.manual_seed(seed)
    model = create_model("tiny_mlp", (6,), 3)
    method = METHODS.create(name, {"disc_hidden": 32} if name == "dann" else {})
    method.setup(model.num_features, 3)
    return model, method


CFG = TrainConfig(steps=120, batch_size=16, checkpoint_every=25, log_every=10, progress=False)


def test_resume_after_crash_matches_uninterrupted(blobs_task, tmp_path):
    model, method = _setup()
    full = fit(model, method, blobs_task.train, CFG, seed=3)
    ref = [p.detach().clone() for p in model.parameters()]
    assert full.seconds > 0 and 0 < full.cpu_seconds < 4 * full.seconds + 1  # wall and CPU time recorded

    ckpt = tmp_path / "ckpt.pt"
    m1, me1 = _setup()
    with pytest.raises(Crash):
        fit(m1, me1, blobs_task.train, CFG, seed=3, checkpoint_path=ckpt, fingerprint="x", callbacks=[crash_at(63)])
    assert load_checkpoint(ckpt)["step"] == 50
    m2, me2 = _setup(seed=99)  # a fresh process would build fresh weights
    res = fit(m2, me2, blobs_task.train, CFG, seed=3, checkpoint_path=ckpt, fingerprint="x")
    assert res.resumed_from == 50
    assert all(torch.equal(a, b) for a, b in zip(ref, m2.parameters()))
    assert res.history == full.history


def test_checkpoint_of_other_config_is_not_resumed(blobs_task, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    m, me = _setup()
    fit(m, me, blobs_task.train, CFG, seed=3, checkpoint_path=ckpt, fingerprint="a")
    m, me = _setup()
    assert fit(m, me, blobs_task.train, CFG, seed=3, checkpoint_path=ckpt, fingerprint="b").resumed_from is None


def test_same_seed_same_metrics(blobs_task):
    accs = []
    for _ in range(2):
        m, me = _setup()
        fit(m, me, blobs_task.train, CFG, seed=5)
        accs.append(evaluate(m, blobs_task.x_test, blobs_task.y_test, 3))
    assert accs[0] == accs[1]


class _Exploding(Method):
    """Test method whose adversarial term becomes NaN at step 40."""

    def __init__(self) -> None:
        super().__init__()

    def compute_loss(self, model, batch, step):
        logits, _ = model(batch.xs)
        dom = logits.mean() * 0 + (float("nan") if step.index >= 40 else 0.5)
        return {"cls": self.classification(logits, batch.ys), "domain": dom}


def test_nan_guard_names_method_term_step_and_keeps_checkpoint(blobs_task, tmp_path):
    torch.manual_seed(0)
    model = create_model("tiny_mlp", (6,), 3)
    method = _Exploding()
    method.setup(model.num_features, 3)
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(TrainingDivergedError) as info:
        fit(model, method, blobs_task.train, CFG, seed=0, checkpoint_path=ckpt, fingerprint="n")
    msg = str(info.value)
    assert "'_exploding'" in msg and "'domain'" in msg and "step 40" in msg and str(ckpt) in msg
    state = load_checkpoint(ckpt)
    assert state["step"] == 25 and all(torch.isfinite(v).all() for v in state["bundle"].values()
                                       if v.dtype.is_floating_point)


KILL_SCRIPT = """
import sys, time, numpy as np, torch
torch.set_num_threads(1)  # a tiny model; several threads only lose time on a busy machine
from transferkit.testing import shifted_blobs
from transferkit.data import make_task
from transferkit.experiment.config import validate_config
from transferkit.experiment.runner import run_experiment
from transferkit.core.registries import DATASETS

xs, ys, xt, yt = shifted_blobs(n=200, seed=0)
np.savez(sys.argv[2] + '/src.npz', x=xs, y=ys)
np.savez(sys.argv[2] + '/tgt.npz', x=xt, y=yt)
slow = [lambda step, terms: time.sleep(0.02)] if sys.argv[3] == 'slow' else []
cfg = validate_config({'name': 'kill', 'seed': 1,
    'data': {'name': 'files', 'params': {'source': sys.argv[2] + '/src.npz', 'target': sys.argv[2] + '/tgt.npz'}},
    'model': {'name': 'tiny_mlp'},
    'train': {'steps': 300, 'batch_size': 16, 'checkpoint_every': 20, 'progress': False},
    'methods': [{'name': 'dann', 'params': {'disc_hidden': 32}}]})
r = run_experiment(cfg, sys.argv[1], progress=False, callbacks=slow)
print('ACC', r.runs[0].metrics['target_accuracy'], r.runs[0].metrics.get('resumed_from_step'))
"""


def test_killed_run_resumes_to_same_metrics(tmp_path):
    """A real SIGKILL part way; the same command again resumes and ends with the same metrics."""
    from transferkit.core.registries import DATASETS

    if "files" not in DATASETS:
        pytest.skip("the 'files' data set is not registered")
    script = tmp_path / "k.py"
    script.write_text(KILL_SCRIPT)
    ref = subprocess.run([sys.executable, str(script), str(tmp_path / "ref"), str(tmp_path), "fast"],
                         capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, str(script), str(out), str(tmp_path), "slow"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ckpt = next(iter([]), None)
    deadline = time.time() + 120
    while time.time() < deadline:
        found = list(out.glob("runs/*/*/checkpoint.pt"))
        if found and load_checkpoint(found[0])["step"] >= 60:
            ckpt = found[0]
            break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert ckpt is not None, "no checkpoint appeared"
    assert not (out / "report.json").exists()
    again = subprocess.run([sys.executable, str(script), str(out), str(tmp_path), "fast"],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    acc_ref = ref.stdout.split("ACC")[1].split()[0]
    acc, resumed = again.stdout.split("ACC")[1].split()[:2]
    assert acc == acc_ref and float(resumed) >= 60


def test_same_seed_same_config_identical_experiment_metrics(tmp_path):
    """Two runs of one config (same seed) on CPU give identical metrics and histories."""
    from transferkit.experiment.config import validate_config
    from transferkit.experiment.runner import run_experiment
    from transferkit.testing import shifted_blobs

    xs, ys, xt, yt = shifted_blobs(n=150, seed=4)
    np.savez(tmp_path / "s.npz", x=xs, y=ys)
    np.savez(tmp_path / "t.npz", x=xt, y=yt)
    cfg = validate_config({
        "name": "det", "seed": 11,
        "data": {"name": "files", "params": {"source": str(tmp_path / "s.npz"), "target": str(tmp_path / "t.npz")}},
        "model": {"name": "tiny_mlp"},
        "train": {"steps": 60, "batch_size": 16, "progress": False, "checkpoint_every": 0, "log_every": 10},
        "methods": ["source_only", {"name": "dann", "params": {"disc_hidden": 16}}, "coral"]})
    a = run_experiment(cfg, None, progress=False)
    b = run_experiment(cfg, None, progress=False)
    for ra, rb in zip(a.runs, b.runs):
        assert ra.metrics == rb.metrics and ra.history == rb.history and ra.confusion == rb.confusion


def test_predict_outputs_takes_token_ids_and_builds_no_graph():
    """Evaluation outputs come without autograd, and integer inputs (token ids) stay integers."""
    from torch import nn

    from transferkit.experiment.runner import deep_outputs
    from transferkit.train.loop import predict_outputs

    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.head = nn.Embedding(20, 4), nn.Linear(4, 3)

        def forward(self, ids):
            f = self.emb(ids).mean(1)
            return self.head(f), f

    model = Tokens().train()
    ids = np.random.default_rng(0).integers(0, 20, (7, 5))
    logits, feats = predict_outputs(model, ids, batch_size=3)
    assert logits.shape == (7, 3) and feats.shape == (7, 4) and not logits.requires_grad
    assert model.training
    probs, f64 = deep_outputs(model, ids)
    np.testing.assert_allclose(probs.sum(1), 1.0)
    assert f64.dtype == np.float64 and f64.shape == (7, 4)


class _Recorder(Method):
    """Source-only training that keeps a copy of every batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def compute_loss(self, model, batch, step):
        self.seen.append((batch.xs.clone(), batch.xt.clone()))
        logits, _ = model(batch.xs)
        return {"cls": self.classification(logits, batch.ys)}


def _recorded(task, cfg, seed=3, **kw):
    torch.manual_seed(0)
    model = create_model("tiny_mlp", (6,), 3)
    rec = _Recorder()
    rec.setup(model.num_features, 3)
    res = fit(model, rec, task.train, cfg, seed=seed, **kw)
    return rec.seen, model, res


def test_weak_augmentation_of_both_domains_is_seeded_by_step(blobs_task, tmp_path):
    cfg = TrainConfig(steps=40, batch_size=16, checkpoint_every=10, log_every=10, progress=False)
    plain, _, _ = _recorded(blobs_task, cfg)
    aug_cfg = cfg.replace(augment="weak")
    aug, model, _ = _recorded(blobs_task, aug_cfg)
    # the same samples in the same order, each with its own noise: views of both domains
    for (xs0, xt0), (xs1, xt1) in zip(plain, aug):
        assert xs1.shape == xs0.shape and xt1.shape == xt0.shape
        assert not torch.equal(xs0, xs1) and not torch.equal(xt0, xt1)
        assert float((xs1 - xs0).abs().mean()) < 0.5 * float(xs0.abs().mean())  # weak: close to the sample
    # the same views again with the same seed; other views with another seed
    again, _, _ = _recorded(blobs_task, aug_cfg)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(aug, again))
    # a resumed run draws the views the uninterrupted run drew, and ends on the same weights
    ckpt = tmp_path / "aug.pt"
    with pytest.raises(Crash):
        _recorded(blobs_task, aug_cfg, checkpoint_path=ckpt, fingerprint="x", callbacks=[crash_at(25)])
    resumed, model3, res = _recorded(blobs_task, aug_cfg, checkpoint_path=ckpt, fingerprint="x")
    assert res.resumed_from == 20
    assert all(torch.equal(a[0], b[0]) for a, b in zip(aug[20:], resumed))
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model3.parameters()))
    from transferkit.core.errors import ConfigError

    with pytest.raises(ConfigError, match="augment"):
        TrainConfig(augment="strong")


def test_source_only_trains_without_target_data(blobs_task):
    """Plain fine-tuning needs no target domain: source_only on the source rows alone ends with the
    same weights as with the target rows present (it never reads them); an adapting method is
    refused with a message naming the fix."""
    src_only = blobs_task.train.subset(blobs_task.train.is_source)
    assert not (~src_only.is_source).any()
    cfg = TrainConfig(steps=30, batch_size=16, progress=False)
    m_with, me_with = _setup("source_only")
    fit(m_with, me_with, blobs_task.train, cfg, seed=5)
    m_without, me_without = _setup("source_only")
    res = fit(m_without, me_without, src_only, cfg, seed=5)
    assert res.history and all(torch.equal(a, b) for a, b in zip(m_with.parameters(), m_without.parameters()))
    m, me = _setup("dann")
    with pytest.raises(DataError, match="DANN adapts to a target domain.*no target samples.*source_only"):
        fit(m, me, src_only, cfg, seed=5)
    with pytest.raises(DataError, match="no source samples"):
        fit(m, me, blobs_task.train.subset(~blobs_task.train.is_source), cfg, seed=5)


def _weights(model):
    return [p.detach().clone() for p in model.parameters()]


def test_keep_best_source_accuracy_restores_the_best_measured_weights(blobs_task):
    """keep: best_source_accuracy measures select_fn every keep_every steps and at the end, and the
    run ends with the weights of the best measurement (ties: the later one)."""
    cfg = CFG.replace(keep="best_source_accuracy", keep_every=20, checkpoint_every=0)
    script = {20: 0.5, 40: 0.7, 60: 0.9, 80: 0.9, 100: 0.6, 120: 0.8}   # tie at 60 and 80: 80 wins
    seen, snap = [], {}
    model, method = _setup()

    def select(m):
        step = 20 * (len(seen) + 1)
        seen.append(step)
        snap[step] = _weights(m)
        return script[step]

    res = fit(model, method, blobs_task.train, cfg, seed=3, select_fn=select)
    assert seen == [20, 40, 60, 80, 100, 120]
    assert res.kept_step == 80 and res.keep_scores == script
    assert all(torch.equal(a, b) for a, b in zip(snap[80], model.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(snap[120], model.parameters()))
    # keep: last (the default) never calls select_fn and ends with the last weights
    model2, method2 = _setup()
    res2 = fit(model2, method2, blobs_task.train, CFG.replace(checkpoint_every=0), seed=3,
               select_fn=lambda m: pytest.fail("select_fn called with keep: last"))
    assert res2.kept_step is None and all(torch.equal(a, b) for a, b in zip(snap[120], model2.parameters()))


def test_keep_best_survives_a_crash_and_resume(blobs_task, tmp_path):
    """The best weights so far live in the checkpoint: a run that crashes after its best
    measurement and resumes ends exactly like the uninterrupted run."""
    cfg = CFG.replace(keep="best_source_accuracy", keep_every=20)    # checkpoints every 25 steps
    # the weights an uninterrupted run has at step 40, made the best measurement below
    probe_model, probe_method = _setup()
    calls = []

    def grab(m):
        calls.append(_weights(m))
        return 0.0 if len(calls) != 2 else 1.0            # step 40 scores best

    full = fit(probe_model, probe_method, blobs_task.train, cfg.replace(checkpoint_every=0), seed=3, select_fn=grab)
    w40 = calls[1]
    assert full.kept_step == 40 and all(torch.equal(a, b) for a, b in zip(w40, probe_model.parameters()))

    def closeness(m):                                    # depends on the weights only: same in both runs
        return -float(sum(torch.sum((p.detach() - q) ** 2) for p, q in zip(m.parameters(), w40)))

    ckpt = tmp_path / "ckpt.pt"
    m1, me1 = _setup()
    with pytest.raises(Crash):
        fit(m1, me1, blobs_task.train, cfg, seed=3, checkpoint_path=ckpt, fingerprint="k",
            select_fn=closeness, callbacks=[crash_at(63)])
    assert load_checkpoint(ckpt)["step"] == 50 and load_checkpoint(ckpt)["kept"]["step"] == 40
    m2, me2 = _setup(seed=99)
    res = fit(m2, me2, blobs_task.train, cfg, seed=3, checkpoint_path=ckpt, fingerprint="k", select_fn=closeness)
    assert res.resumed_from == 50 and res.kept_step == 40
    assert sorted(res.keep_scores) == [20, 40, 60, 80, 100, 120] and res.keep_scores[40] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(w40, m2.parameters()))


def test_keep_best_needs_held_out_source_samples(blobs_task):
    from transferkit.core.errors import ConfigError
    from transferkit.experiment.config import validate_config

    m, me = _setup()
    with pytest.raises(ConfigError, match="train.keep.*held-out source.*val_fraction"):
        fit(m, me, blobs_task.train, CFG.replace(keep="best_source_accuracy"), seed=3)
    with pytest.raises(ConfigError, match="keep"):
        TrainConfig(keep="best_target")
    raw = {"data": {"name": "digits"}, "methods": ["source_only"],
           "train": {"keep": "best_source_accuracy", "val_fraction": 0.0}}
    with pytest.raises(ConfigError, match=r"train\.keep.*val_fraction is 0"):
        validate_config(raw)
    raw["train"]["val_fraction"] = 0.1
    assert validate_config(raw).train.keep == "best_source_accuracy"
