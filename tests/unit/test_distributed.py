"""Data-parallel training on CPU (gloo, 2 processes): same accuracy as one process within noise,
and exact resume under DDP after a crash."""

import pytest
import torch

from transferkit.core.registries import METHODS
from transferkit.data import make_task
from transferkit.models import create_model
from transferkit.testing import crash_at, shifted_blobs
from transferkit.train import TrainConfig, evaluate, fit
from transferkit.train.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def hard_task():
    xs, ys, xt, yt = shifted_blobs(n=600, d=6, k=4, shift=1.5, seed=2)
    xs = xs / 2.5  # overlapping classes: accuracy well below 100
    xt = xt / 2.5
    return make_task(xs, ys, xt, xt, yt, name="hard")


def _train(task, devices, steps=150, **kw):
    torch.manual_seed(0)
    m = create_model("tiny_mlp", (6,), 4)
    me = METHODS.create("dann", {"disc_hidden": 32})
    me.setup(m.num_features, 4)
    cfg = TrainConfig(steps=steps, batch_size=16, devices=devices, progress=False, checkpoint_every=25, log_every=25)
    res = fit(m, me, task.train, cfg, seed=0, **kw)
    return m, res


def test_two_processes_match_one_within_noise(hard_task):
    m1, _ = _train(hard_task, 1)
    m2, res2 = _train(hard_task, 2)
    a1 = evaluate(m1, hard_task.x_test, hard_task.y_test, 4)["accuracy"]
    a2 = evaluate(m2, hard_task.x_test, hard_task.y_test, 4)["accuracy"]
    assert 40 < a1 < 99.5 and abs(a1 - a2) <= 5.0, (a1, a2)
    assert len(res2.history) == 6  # metrics from rank 0 only, once


def test_logged_loss_is_the_mean_over_processes(hard_task):
    """Each process computes the loss of its half of the global batch (2 x 8 samples); the history
    holds their mean, which for the first step (same weights everywhere) is the loss one process
    logs on the same 16 samples."""
    def first_loss(devices):
        torch.manual_seed(0)
        m = create_model("tiny_mlp", (6,), 4)
        me = METHODS.create("source_only", {})
        me.setup(m.num_features, 4)
        cfg = TrainConfig(steps=1, batch_size=16 // devices, devices=devices, progress=False, checkpoint_every=0,
                          log_every=1)
        return fit(m, me, hard_task.train, cfg, seed=0).history[0]["cls"]

    assert first_loss(2) == pytest.approx(first_loss(1), rel=1e-5)


def test_resume_under_ddp_is_exact(hard_task, tmp_path):
    ref, ref_res = _train(hard_task, 2, checkpoint_path=tmp_path / "ref.pt", fingerprint="f")
    ckpt = tmp_path / "c.pt"

    crash = crash_at(90)

    with pytest.raises(torch.multiprocessing.ProcessRaisedException, match="killed"):
        _train(hard_task, 2, checkpoint_path=ckpt, fingerprint="f", callbacks=[crash])
    assert load_checkpoint(ckpt)["step"] == 75
    m, res = _train(hard_task, 2, checkpoint_path=ckpt, fingerprint="f")
    assert res.resumed_from == 75
    assert all(torch.equal(a, b) for a, b in zip(ref.parameters(), m.parameters()))
    assert res.history == ref_res.history


def test_keep_best_under_ddp_returns_the_kept_weights(hard_task):
    """keep: best_source_accuracy with two processes: every process measures the same held-out
    samples with the same weights, and the caller receives the weights of the kept step. The score
    here is the *error* on held-out samples, so the kept step is an early one, not the last."""
    xv, yv = hard_task.x_test[:200], hard_task.y_test[:200]

    def error(m):
        return 100.0 - evaluate(m, xv, yv, 4)["accuracy"]

    torch.manual_seed(0)
    m = create_model("tiny_mlp", (6,), 4)
    me = METHODS.create("dann", {"disc_hidden": 32})
    me.setup(m.num_features, 4)
    cfg = TrainConfig(steps=150, batch_size=16, devices=2, progress=False, checkpoint_every=0, log_every=25,
                      keep="best_source_accuracy", keep_every=25)
    res = fit(m, me, hard_task.train, cfg, seed=0, select_fn=error)
    assert sorted(res.keep_scores) == [25, 50, 75, 100, 125, 150]
    best = max(res.keep_scores.values())
    assert res.kept_step == max(s for s, a in res.keep_scores.items() if a == best) < 150
    assert error(m) == pytest.approx(best) and best > res.keep_scores[150]
