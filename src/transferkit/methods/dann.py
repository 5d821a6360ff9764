"""DANN: domain-adversarial neural network (Ganin et al., JMLR 2016; ICML 2015).

Loss: ``CE(h(f(xs)), ys) + trade_off * BCE(D(GRL_lambda(f(x))), domain)``, where the gradient
reversal layer multiplies the discriminator's gradient by ``-lambda`` on its way into the feature
extractor, and ``lambda`` warms up as ``2/(1+exp(-gamma p)) - 1`` over training progress ``p``.
Shapes: features (B, num_features) -> discriminator logits (B, 1).
"""

from __future__ import annotations

import torch
from torch import nn

from transferkit.core.registries import METHODS
from transferkit.losses import binary_domain_loss, grad_reverse, grl_schedule
from transferkit.methods.base import Batch, Method, Step, discriminator


@METHODS.register("dann", description="Domain-adversarial training with gradient reversal (Ganin et al. 2016)")
class DANN(Method):
    """Domain-adversarial training.

    ``trade_off``: weight of the domain loss; ``gamma``: steepness of the reversal warm-up
    (10 in the paper); ``max_coeff``: final reversal coefficient; ``disc_hidden``/``disc_layers``:
    the discriminator MLP (1024 x 2 as in TLlib; ``disc_layers=0`` is the paper's logistic
    regressor for shallow networks).
    """

    def __init__(self, *, trade_off: float = 1.0, gamma: float = 10.0, max_coeff: float = 1.0,
                 disc_hidden: int = 1024, disc_layers: int = 2, disc_dropout: float = 0.5) -> None:
        super().__init__()
        self.trade_off = trade_off
        self.gamma = gamma
        self.max_coeff = max_coeff
        self.disc_hidden = disc_hidden
        self.disc_layers = disc_layers
        self.disc_dropout = disc_dropout

    def setup(self, num_features: int, num_classes: int) -> None:
        super().setup(num_features, num_classes)
        self.disc = discriminator(num_features, self.disc_hidden, self.disc_layers, 1, self.disc_dropout)

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        logits_s, _, f_s, f_t = self.forward_both(model, batch)
        coeff = grl_schedule(step.progress, self.gamma, self.max_coeff)
        d = self.disc(grad_reverse(torch.cat([f_s, f_t]), coeff))
        ns = f_s.shape[0]
        return {
            "cls": self.classification(logits_s, batch.ys),
            "domain": self.trade_off * binary_domain_loss(d[:ns], d[ns:]),
        }
