"""AdaBN re-estimates batch-norm statistics over all target samples after training."""

import torch

from transferkit.core.registries import METHODS
from transferkit.models import create_model
from transferkit.train import TrainConfig, fit


def test_running_stats_equal_target_statistics_after_fit(blobs_task):
    torch.manual_seed(0)
    model = create_model("mlp", (6,), 3, {"hidden": [8], "bottleneck": 4})
    method = METHODS.create("adabn")
    method.setup(model.num_features, 3)
    fit(model, method, blobs_task.train, TrainConfig(steps=40, batch_size=16, progress=False, checkpoint_every=0))
    xt = torch.as_tensor(blobs_task.train.target().x)  # 200 samples: one re-estimation batch
    bn = model.bottleneck[1]
    with torch.no_grad():
        pre = model.bottleneck[0](model.backbone(xt))
    assert torch.allclose(bn.running_mean, pre.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, pre.var(0, unbiased=True), atol=1e-4)
