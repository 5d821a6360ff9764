"""AdaBN: adaptive batch normalisation (Li et al., "Revisiting batch normalization for practical
domain adaptation", ICLR-W 2017 / Pattern Recognition 2018).

Train on the source with ``L = CE(h(f(xs)), ys)``; at test time every BatchNorm layer normalises
with *target* statistics instead of source ones. The paper re-estimates the statistics over all
target data after training; this method keeps target statistics during training and re-estimates
them over all target samples at the end (``on_fit_end``):

1. the source batch goes through the model in train mode with the BatchNorm layers' running
   statistics switched off for that pass (``track_running_stats=False``), so it is normalised by
   its own batch statistics, as in source training, and never enters the running statistics;
2. the target batch then goes through the model in train mode without gradients, so the running
   statistics are a moving average of target batch statistics only (each layer's ``momentum``).

3. after the last step the running statistics are reset and recomputed as the cumulative average
   over every target training sample under the final weights (the paper's re-estimation). Models without BatchNorm (``tiny_mlp``, plain
MLPs) are trained exactly as ``source_only``. Shapes: xs (Bs, ...), xt (Bt, ...).
"""

from __future__ import annotations

import torch
from torch import nn

from transferkit.core.registries import METHODS
from transferkit.methods.base import Batch, Method, Step

_BN = (nn.modules.batchnorm._BatchNorm,)


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm layers of ``model`` that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, _BN) and m.track_running_stats]


@METHODS.register("adabn", description="Source training with target batch-norm statistics (Li et al. 2017)")
class AdaBN(Method):
    """Source-only training whose BatchNorm running statistics come from target batches alone.

    ``label_smoothing``: smoothing of the source cross-entropy; ``update_stats``: feed target
    batches to the BatchNorm layers (``False`` gives plain source-only training).
    """

    def __init__(self, *, label_smoothing: float = 0.0, update_stats: bool = True) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing
        self.update_stats = update_stats

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        layers = batchnorm_layers(model) if self.update_stats else []
        try:  # the source batch is normalised by its own statistics and never enters the running ones
            for layer in layers:
                layer.track_running_stats = False
            logits_s, _ = model(batch.xs)
        finally:
            for layer in layers:
                layer.track_running_stats = True
        if layers and model.training:
            with torch.no_grad():
                model(batch.xt)
        return {"cls": self.classification(logits_s, batch.ys, self.label_smoothing)}

    @torch.no_grad()
    def on_fit_end(self, model: nn.Module, target_x: torch.Tensor, batch_size: int = 256) -> None:
        """Re-estimate every BatchNorm layer's statistics over all target samples."""
        layers = batchnorm_layers(model) if self.update_stats else []
        if not layers:
            return
        saved = [(layer, layer.momentum) for layer in layers]
        was = model.training
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average over the batches below
        model.train()
        for i in range(0, len(target_x), batch_size):
            chunk = target_x[i:i + batch_size]
            if len(chunk) > 1:
                model(chunk)
        for layer, momentum in saved:
            layer.momentum = momentum
        model.train(was)
