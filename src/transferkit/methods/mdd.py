"""MDD: margin disparity discrepancy (Zhang et al., ICML 2019).

An adversarial head ``h'`` reads the features through a gradient reversal layer. With
``D = -margin * CE(h'(f_s), argmax h(f_s)) + mean log(1 - softmax(h'(f_t))[argmax h(f_t)])``,
the loss is ``CE(h(f_s), y_s) - trade_off * D``: ``h'`` learns to agree with ``h`` on the source
and disagree on the target (maximising ``D``), the reversed gradient makes the features minimise
it. Defaults as TLlib (Office-31/Home, digits): ``margin = 4``, ``trade_off = 1``, reversal
coefficient warming up to ``max_coeff = 0.1``. The adversarial head has the same form as the
model's (linear) head by default; ``adv_hidden > 0`` gives TLlib's Linear-ReLU-Dropout-Linear.
Shapes: features (B, d) -> logits (B, C) from both heads.
"""

from __future__ import annotations

import torch
from torch import nn

from transferkit.core.registries import METHODS
from transferkit.losses import grad_reverse, grl_schedule
from transferkit.losses.alignment import mdd_loss
from transferkit.methods.base import Batch, Method, Step


@METHODS.register("mdd", description="Margin disparity discrepancy with an adversarial head (Zhang et al. 2019)")
class MDD(Method):
    """Margin disparity discrepancy. ``margin``: gamma (4); ``trade_off``: weight (1);
    ``gamma``/``max_coeff``: reversal warm-up (10, 0.1); ``adv_hidden``: width of the adversarial
    head's hidden layer (0 = linear, like the model's head); ``adv_dropout``: its dropout."""

    def __init__(self, *, margin: float = 4.0, trade_off: float = 1.0, gamma: float = 10.0,
                 max_coeff: float = 0.1, adv_hidden: int = 0, adv_dropout: float = 0.5) -> None:
        super().__init__()
        self.margin = margin
        self.trade_off = trade_off
        self.gamma = gamma
        self.max_coeff = max_coeff
        self.adv_hidden = adv_hidden
        self.adv_dropout = adv_dropout

    def setup(self, num_features: int, num_classes: int) -> None:
        super().setup(num_features, num_classes)
        if self.adv_hidden > 0:
            self.adv_head: nn.Module = nn.Sequential(
                nn.Linear(num_features, self.adv_hidden), nn.ReLU(), nn.Dropout(self.adv_dropout),
                nn.Linear(self.adv_hidden, num_classes))
        else:
            self.adv_head = nn.Linear(num_features, num_classes)

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        logits_s, logits_t, f_s, f_t = self.forward_both(model, batch)
        coeff = grl_schedule(step.progress, self.gamma, self.max_coeff)
        adv = self.adv_head(grad_reverse(torch.cat([f_s, f_t]), coeff))
        ns = f_s.shape[0]
        disparity = mdd_loss(logits_s, adv[:ns], logits_t, adv[ns:], self.margin)
        return {"cls": self.classification(logits_s, batch.ys), "mdd": -self.trade_off * disparity}
