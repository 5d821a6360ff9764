"""Deep CORAL (Sun & Saenko, ECCV Workshops 2016): correlation alignment inside the network.

Loss: ``CE(h(f_s), y_s) + trade_off * |C_s - C_t|_F^2 / (4 d^2)`` with ``C`` the unbiased
covariance of a layer's activations in each domain. The paper aligns the last layer (fc8, the
logits: ``layer="logits"``); TLlib, DomainBed and skada align the features (the default here).
Shapes: activations (ns, d), (nt, d) -> scalar.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from transferkit.core.registries import METHODS
from transferkit.losses.alignment import coral_loss
from transferkit.methods.base import Batch, Method, Step


@METHODS.register("deep_coral", description="Match second-order statistics of source and target "
                  "activations (Sun & Saenko 2016)")
class DeepCORAL(Method):
    """Deep CORAL. ``trade_off``: weight of the CORAL term (1; the paper picks it so both terms
    end up comparable); ``layer``: ``features`` or ``logits``."""

    def __init__(self, *, trade_off: float = 1.0, layer: Literal["features", "logits"] = "features") -> None:
        super().__init__()
        self.trade_off = trade_off
        self.layer = layer

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        logits_s, logits_t, f_s, f_t = self.forward_both(model, batch)
        a, b = (f_s, f_t) if self.layer == "features" else (logits_s, logits_t)
        return {"cls": self.classification(logits_s, batch.ys), "coral": self.trade_off * coral_loss(a, b)}
