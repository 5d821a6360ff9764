"""Self-training with confident, class-balanced pseudo-labels (CBST: Zou et al., "Unsupervised
domain adaptation for semantic segmentation via class-balanced self-training", ECCV 2018).

Loss: ``CE(h(xs), ys) + w(p) * (1/Bt) sum_i m_i CE(h(xt_i), yhat_i)`` where the pseudo-label
``yhat`` and mask ``m`` come from the model's own (detached) target predictions:

- ``selection="class_balanced"`` (CBST): per-class thresholds ``lambda_k`` keep the most confident
  ``portion`` of the target samples predicted as each class, so that easy classes do not swamp the
  pseudo-labels; ``yhat = argmax_k p_k / lambda_k``, kept when ``max_k p_k / lambda_k >= 1``. The
  thresholds are computed over a memory of the last ``memory_size`` target predictions (CBST
  computes them over the whole target set once per round), and ``portion`` grows linearly from
  ``portion_start`` to ``portion_end`` over training (CBST's rounds: 20% -> 50%);
- ``selection="threshold"``: ``yhat = argmax p``, kept when ``max p >= threshold``.

``w(p) = trade_off * min(1, p / warmup)`` ramps up over the first ``warmup`` fraction of training,
while the model's predictions are still poor. Shapes: logits (B, K); memory (memory_size, K).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from transferkit.core.registries import METHODS
from transferkit.losses.information import (
    class_balanced_pseudo_labels,
    class_balanced_thresholds,
    confidence_pseudo_labels,
    pseudo_label_loss,
)
from transferkit.methods.base import Batch, Method, Step


def warmup_weight(progress: float, weight: float, warmup: float) -> float:
    """``weight * min(1, progress / warmup)`` (``weight`` at once when ``warmup`` is 0)."""
    return weight if warmup <= 0 else weight * min(1.0, progress / warmup)


class PredictionMemory(nn.Module):
    """A first-in-first-out memory of the last ``size`` rows (buffers, so checkpoints keep it)."""

    def __init__(self, size: int, width: int) -> None:
        super().__init__()
        self.register_buffer("rows", torch.zeros(size, width))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, values: torch.Tensor) -> None:
        size = self.rows.shape[0]
        values = values.detach()[-size:].to(self.rows.dtype)
        idx = (self.ptr + torch.arange(values.shape[0], device=values.device)) % size
        self.rows[idx] = values
        self.ptr.copy_((self.ptr + values.shape[0]) % size)
        self.count.copy_(torch.clamp(self.count + values.shape[0], max=size))

    def valid(self) -> torch.Tensor:
        return self.rows[: int(self.count)]


@METHODS.register("self_training", description="Self-training on confident class-balanced pseudo-labels (CBST, Zou et al. 2018)")
class SelfTraining(Method):
    """Self-training on the model's own confident target predictions.

    ``selection``: ``"class_balanced"`` (CBST) or ``"threshold"``; ``threshold``: confidence
    ``tau`` of the threshold mode; ``portion_start``/``portion_end``: share of each predicted class
    kept by CBST at the start and end of training; ``memory_size``: target predictions the CBST
    thresholds are computed from; ``trade_off``: weight of the pseudo-label term; ``warmup``:
    fraction of training over which that weight ramps up from 0.
    """

    def __init__(self, *, selection: Literal["class_balanced", "threshold"] = "class_balanced",
                 threshold: float = 0.9, portion_start: float = 0.2, portion_end: float = 0.5,
                 memory_size: int = 512, trade_off: float = 1.0, warmup: float = 0.2) -> None:
        super().__init__()
        self.selection = selection
        self.threshold = threshold
        self.portion_start = portion_start
        self.portion_end = portion_end
        self.memory_size = memory_size
        self.trade_off = trade_off
        self.warmup = warmup

    def setup(self, num_features: int, num_classes: int) -> None:
        super().setup(num_features, num_classes)
        self.memory = PredictionMemory(max(1, self.memory_size), num_classes)

    def portion(self, progress: float) -> float:
        return self.portion_start + (self.portion_end - self.portion_start) * min(1.0, progress)

    def pseudo_labels(self, probs: torch.Tensor, progress: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(labels, mask)`` for target probabilities ``probs`` (B, K); updates the memory."""
        if self.selection == "threshold":
            return confidence_pseudo_labels(probs, self.threshold)
        self.memory.push(probs)
        thresholds = class_balanced_thresholds(self.memory.valid(), self.portion(progress))
        return class_balanced_pseudo_labels(probs, thresholds)

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        logits_s, logits_t, _, _ = self.forward_both(model, batch)
        labels, mask = self.pseudo_labels(F.softmax(logits_t.detach(), dim=1), step.progress)
        weight = warmup_weight(step.progress, self.trade_off, self.warmup)
        return {
            "cls": self.classification(logits_s, batch.ys),
            "pseudo": weight * pseudo_label_loss(logits_t, labels, mask),
        }
