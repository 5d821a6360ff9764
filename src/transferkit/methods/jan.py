"""JAN: joint adaptation network (Long et al., ICML 2017).

Loss: ``CE(h(f_s), y_s) + trade_off * JMMD^2((f_s, g_s), (f_t, g_t))`` with ``g = softmax(h(f))``
(not detached): the MMD under the product kernel ``k_f(f, f') * k_g(g, g')``, where ``k_f`` sums
Gaussians of bandwidths ``kernel_mults`` x the mean squared distance and ``k_g`` is one Gaussian of
fixed width ``softmax_sigma`` (0.92, as TLlib). Quadratic unbiased estimate by default (TLlib),
linear-time with ``linear=True``. The adversarial variant JAN-A is not included.
Shapes: features (B, d) and probabilities (B, C) per domain -> scalar.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from transferkit.core.registries import METHODS
from transferkit.losses.mmd import GaussianKernels, joint_mmd
from transferkit.methods.base import Batch, Method, Step


@METHODS.register("jan", description="Joint MMD over features and predictions (Long et al. 2017)")
class JAN(Method):
    """Joint adaptation network.

    ``trade_off``: weight of the JMMD term (1); ``linear``: linear-time estimate;
    ``kernel_mults``: feature-kernel bandwidth multipliers; ``softmax_sigma``: width of the
    prediction kernel.
    """

    def __init__(self, *, trade_off: float = 1.0, linear: bool = False,
                 kernel_mults: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0),
                 softmax_sigma: float = 0.92) -> None:
        super().__init__()
        self.trade_off = trade_off
        self.linear = linear
        self.kernel_mults = kernel_mults
        self.softmax_sigma = softmax_sigma

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        logits_s, logits_t, f_s, f_t = self.forward_both(model, batch)
        kernels = [GaussianKernels(tuple(self.kernel_mults)), GaussianKernels(sigma=self.softmax_sigma)]
        jmmd = joint_mmd([f_s, F.softmax(logits_s, dim=1)], [f_t, F.softmax(logits_t, dim=1)],
                         kernels, self.linear)
        return {"cls": self.classification(logits_s, batch.ys), "jmmd": self.trade_off * jmmd}
