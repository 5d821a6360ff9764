"""Source only: cross-entropy on labelled source samples; the baseline every method must beat."""

from __future__ import annotations

import torch
from torch import nn

from transferkit.core.registries import METHODS
from transferkit.methods.base import Batch, Method, Step


@METHODS.register("source_only", description="Train on labelled source data only (baseline, no adaptation)")
class SourceOnly(Method):
    """Empirical risk minimisation on the source: ``L = CE(h(xs), ys)``. Target data are unused.

    ``label_smoothing`` in [0, 1) softens the source targets (as SHOT's source model does).
    """

    uses_target = False

    def __init__(self, *, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        logits_s, _ = model(batch.xs)
        return {"cls": self.classification(logits_s, batch.ys, self.label_smoothing)}
