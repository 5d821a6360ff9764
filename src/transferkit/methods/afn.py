"""AFN: adaptive feature norm, stepwise variant SAFN (Xu et al., ICCV 2019).

Loss: ``CE(h(f_s), y_s) + trade_off * (L_d(f_s) + L_d(f_t)) [+ trade_off_entropy * H(h(f_t))]``
with ``L_d(f) = mean_i (|f_i| - (|f_i|_previous + delta))^2``: every step pushes each feature
norm up by ``delta`` from where it stands (the term's value is constantly ``2 * delta^2``; what
matters is its gradient). Paper and TLlib defaults on Office-31/VisDA: ``delta = 1.0``,
``trade_off = 0.05``; the optional target-entropy term (SAFN+ENT) is 0.1 on Office-31 and 0.03 on
digits in TLlib's scripts (TLlib digits also use ``delta`` 0.1-0.3). The paper's L2-preserved
dropout lives in the model, not here. Shapes: features (ns, d), (nt, d) -> scalar.
"""

from __future__ import annotations

import torch
from torch import nn

from transferkit.core.registries import METHODS
from transferkit.losses import entropy
from transferkit.losses.alignment import afn_loss
from transferkit.methods.base import Batch, Method, Step


@METHODS.register("afn", description="Stepwise adaptive feature norm: enlarge feature norms on both "
                  "domains (Xu et al. 2019)")
class AFN(Method):
    """Stepwise adaptive feature norm. ``trade_off``: weight of the norm term (0.05);
    ``delta``: norm increment per step (1.0); ``trade_off_entropy``: target entropy weight (0 = off)."""

    def __init__(self, *, trade_off: float = 0.05, delta: float = 1.0, trade_off_entropy: float = 0.0) -> None:
        super().__init__()
        self.trade_off = trade_off
        self.delta = delta
        self.trade_off_entropy = trade_off_entropy

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        logits_s, logits_t, f_s, f_t = self.forward_both(model, batch)
        terms = {"cls": self.classification(logits_s, batch.ys),
                 "norm": self.trade_off * (afn_loss(f_s, self.delta) + afn_loss(f_t, self.delta))}
        if self.trade_off_entropy > 0:
            terms["entropy"] = self.trade_off_entropy * entropy(logits_t)
        return terms
