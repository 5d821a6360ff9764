"""MCC: minimum class confusion (Jin et al., ECCV 2020).

Loss: ``CE(h(f_s), y_s) + trade_off * MCC(h(f_t))``. With ``P = softmax(logits_t / T)``
(T = 2.5), entropy weights ``w_i = 1 + exp(-H(P_i))`` rescaled to sum to B, the class confusion
``M = P^T diag(w) P`` (C, C) is normalised column-wise and its off-diagonal mass, divided by C, is
minimised. A regulariser that also composes with other methods (``compose: [cdan, mcc]``).
Shapes: target logits (B, C) -> scalar.
"""

from __future__ import annotations

import torch
from torch import nn

from transferkit.core.registries import METHODS
from transferkit.losses.alignment import mcc_loss
from transferkit.methods.base import Batch, Method, Step


@METHODS.register("mcc", description="Minimum class confusion on target predictions (Jin et al. 2020)")
class MCC(Method):
    """Minimum class confusion. ``trade_off``: weight (1, paper and TLlib); ``temperature``:
    probability rescaling T (2.5 in the paper; TLlib uses 2-3 on VisDA/DomainNet)."""

    def __init__(self, *, trade_off: float = 1.0, temperature: float = 2.5) -> None:
        super().__init__()
        self.trade_off = trade_off
        self.temperature = temperature

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        logits_s, logits_t, _, _ = self.forward_both(model, batch)
        return {"cls": self.classification(logits_s, batch.ys),
                "mcc": self.trade_off * mcc_loss(logits_t, self.temperature)}
