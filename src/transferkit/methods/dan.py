"""DAN: deep adaptation network with multi-kernel MMD (Long et al., ICML 2015).

Loss: ``CE(h(f_s), y_s) + trade_off * MK-MMD^2(f_s, f_t)`` where the kernel is a sum of Gaussians
with bandwidths ``kernel_mults`` (2^-3 .. 2^1) x the batch's mean squared distance, as TLlib's
DAN (the paper learns the kernel weights by a quadratic program; here they are equal). The
estimate is the paper's linear-time one (``linear=True``, also TLlib's default) or the unbiased
quadratic U-statistic. The paper adapts fc6-fc8 of AlexNet; here the features the model exposes
(the bottleneck, as TLlib). Shapes: features (ns, d), (nt, d) -> scalar.
"""

from __future__ import annotations

import torch
from torch import nn

from transferkit.core.registries import METHODS
from transferkit.losses.mmd import mk_mmd
from transferkit.methods.base import Batch, Method, Step


@METHODS.register("dan", description="Multi-kernel MMD between source and target features (Long et al. 2015)")
class DAN(Method):
    """Deep adaptation network.

    ``trade_off``: weight of the MMD term (1, as TLlib); ``linear``: linear-time estimate (the
    paper's) instead of the quadratic unbiased one; ``kernel_mults``: bandwidth multipliers of the
    mean squared distance.
    """

    def __init__(self, *, trade_off: float = 1.0, linear: bool = True,
                 kernel_mults: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0)) -> None:
        super().__init__()
        self.trade_off = trade_off
        self.linear = linear
        self.kernel_mults = kernel_mults

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        logits_s, _, f_s, f_t = self.forward_both(model, batch)
        return {
            "cls": self.classification(logits_s, batch.ys),
            "mmd": self.trade_off * mk_mmd(f_s, f_t, self.kernel_mults, self.linear),
        }
