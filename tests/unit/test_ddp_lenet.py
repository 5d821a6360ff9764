"""Data-parallel training of ``lenet`` on CPU (gloo, 2 processes).

A model whose weights exceed the pipe buffer (64 KiB on Linux) used to hang the run once the
processes had registered: rank 0 sent its trained weights back through the launcher's return
pipe, which the parent drains only after every process has exited. The weights now travel through
a file. And since methods call the model directly (not DDP's forward), the gradients were never
averaged: each process trained alone. ``lenet`` (~0.5 MB of weights, channels-last convolutions,
dropout) is checked here: 2 processes give the same weights as 1 process on the same global
batches, and a run killed mid-way resumes exactly under DDP."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
import torch
import torch.distributed as dist

from transferkit.core.registries import METHODS
from transferkit.data import make_task
from transferkit.models import create_model
from transferkit.testing import crash_at
from transferkit.train import TrainConfig, fit
from transferkit.train.checkpoint import load_checkpoint
from transferkit.train.loop import average_gradients, broadcast_buffers

pytestmark = pytest.mark.timeout(150)  # a hang fails here instead of blocking the suite

SHAPE = (1, 16, 16)


@pytest.fixture(scope="module")
def image_task():
    rng = np.random.default_rng(0)
    ys = rng.integers(0, 3, 96)
    xs = rng.normal(size=(96, *SHAPE)).astype(np.float32) + ys[:, None, None, None] * 0.3
    yt = rng.integers(0, 3, 96)
    xt = rng.normal(size=(96, *SHAPE)).astype(np.float32) + yt[:, None, None, None] * 0.3 + 0.5
    return make_task(xs, ys, xt, xt, yt, name="images")


def _train(task, devices: int, batch_size: int, steps: int = 6, dropout: float = 0.5, **kw):
    torch.manual_seed(0)
    model = create_model("lenet", SHAPE, 3, {"features": 64, "dropout": dropout})
    method = METHODS.create("source_only", {})
    method.setup(model.num_features, 3)
    cfg = TrainConfig(steps=steps, batch_size=batch_size, devices=devices, progress=False,
                      checkpoint_every=2, log_every=2, lr=0.05)
    res = fit(model, method, task.train, cfg, seed=0, **kw)
    return model, res


def _conv_weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


def test_lenet_two_processes_match_one_process(image_task):
    """No dropout, so the runs are comparable: 2 processes x 8 samples average the gradients of
    the same 16-sample global batches that 1 process x 16 samples sees."""
    torch.manual_seed(0)
    init = create_model("lenet", SHAPE, 3, {"features": 64, "dropout": 0.0})
    assert sum(p.numel() * p.element_size() for p in init.parameters()) > 1 << 16  # beyond a pipe's buffer
    one, _ = _train(image_task, 1, 16, dropout=0.0)
    two, res = _train(image_task, 2, 8, dropout=0.0)
    assert res.steps == 6 and len(res.history) == 3  # rank 0's result came back
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(two))
    moved = max((p - q).abs().max().item() for p, q in zip(two.parameters(), init.parameters()))
    assert moved > 1e-3  # the trained weights were loaded back into the caller's model
    for (name, p), q in zip(one.named_parameters(), two.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5, msg=f"parameter {name} differs")



def test_lenet_resume_under_ddp_is_exact(image_task, tmp_path):
    ref, ref_res = _train(image_task, 2, 8, checkpoint_path=tmp_path / "ref.pt", fingerprint="f")
    ckpt = tmp_path / "c.pt"

    crash = crash_at(5)

    with pytest.raises(torch.multiprocessing.ProcessRaisedException, match="killed"):
        _train(image_task, 2, 8, checkpoint_path=ckpt, fingerprint="f", callbacks=[crash])
    assert load_checkpoint(ckpt)["step"] == 4
    model, res = _train(image_task, 2, 8, checkpoint_path=ckpt, fingerprint="f")
    assert res.resumed_from == 4
    assert all(torch.equal(a, b) for a, b in zip(ref.parameters(), model.parameters()))
    assert res.history == ref_res.history


def _sync_worker(rank: int, store: str, errors) -> None:
    try:
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
        conv = torch.nn.Conv2d(2, 3, 3).to(memory_format=torch.channels_last)
        a, b, c = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
        a.grad = torch.full((2,), 2.0 + 2 * rank)  # 2 and 4: mean 3
        if rank == 1:
            b.grad = torch.tensor([6.0])  # none on rank 0: counts as 0, mean 3
        conv.weight.grad = torch.full_like(conv.weight, float(rank))  # channels-last gradient
        average_gradients([a, b, c, conv.weight], world=2)
        assert torch.equal(a.grad, torch.full((2,), 3.0)), a.grad
        assert b.grad is not None and torch.equal(b.grad, torch.tensor([3.0])), b.grad
        assert c.grad is None  # no gradient anywhere: the optimizer skips it
        assert torch.equal(conv.weight.grad, torch.full_like(conv.weight, 0.5))
        assert conv.weight.grad.is_contiguous(memory_format=torch.channels_last)
        bn = torch.nn.BatchNorm1d(2)
        bn.running_mean.fill_(float(rank + 1))
        bn.num_batches_tracked.fill_(10 * (rank + 1))
        broadcast_buffers(bn)
        assert torch.equal(bn.running_mean, torch.ones(2)) and int(bn.num_batches_tracked) == 10
        dist.destroy_process_group()
    except BaseException as exc:  # reported to the parent, which fails the test
        errors.put(f"rank {rank}: {exc!r}")
        raise


def test_average_gradients_and_broadcast_buffers(tmp_path):
    ctx = multiprocessing.get_context("fork")
    errors = ctx.SimpleQueue()
    procs = [ctx.Process(target=_sync_worker, args=(r, str(tmp_path / "store"), errors)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    for p in procs:
        if p.is_alive():
            p.kill()
    msgs = []
    while not errors.empty():
        msgs.append(errors.get())
    assert not msgs and all(p.exitcode == 0 for p in procs), (msgs, [p.exitcode for p in procs])
