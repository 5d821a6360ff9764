"""A real DANN run whose adversarial loss diverges stops at that step, names method, term and step,
and leaves the last good checkpoint intact."""

import math

import pytest
import torch

from transferkit import TrainingDivergedError
from transferkit.core.registries import METHODS
from transferkit.models import create_model
from transferkit.train import TrainConfig, fit
from transferkit.train.checkpoint import load_checkpoint


def test_dann_adversarial_divergence_stops_at_the_step(blobs_task, tmp_path):
    torch.manual_seed(0)
    model = create_model("tiny_mlp", (6,), 3)
    method = METHODS.create("dann", {"disc_hidden": 16})
    method.setup(model.num_features, 3)
    cfg = TrainConfig(steps=100, batch_size=16, checkpoint_every=25, log_every=10, progress=False)

    def blow_up(step, terms):
        # the domain discriminator's output layer becomes infinite after step 30: the
        # adversarial (domain) loss of the next step is non-finite, the classification loss is not
        if step == 30:
            with torch.no_grad():
                last = [m for m in method.disc.modules() if isinstance(m, torch.nn.Linear)][-1]
                last.bias.fill_(math.inf)

    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(TrainingDivergedError) as info:
        fit(model, method, blobs_task.train, cfg, seed=0, checkpoint_path=ckpt, fingerprint="d",
            callbacks=[blow_up])
    msg = str(info.value)
    assert "'dann'" in msg and "'domain'" in msg and "step 30" in msg and str(ckpt) in msg
    state = load_checkpoint(ckpt)
    assert state["step"] == 25
    assert all(torch.isfinite(v).all() for v in state["bundle"].values() if v.dtype.is_floating_point)
