"""CDAN: conditional domain-adversarial network (Long et al., NeurIPS 2018), with entropy
conditioning (CDAN+E).

Loss: ``CE(h(f_s), y_s) + trade_off * BCE_w(D(GRL_lambda(T(f, g))), domain)`` where ``g =
softmax(h(f))`` (detached) and ``T`` is the multilinear map ``f (x) g`` (B, C*d), or, when
``d * C > randomized_above`` (4096 in the paper), the randomized map ``(f R_f) * (g R_g) /
sqrt(n)`` with fixed Gaussian ``R_f`` (d, n), ``R_g`` (C, n), ``n = randomized_dim``. With
``entropy_conditioning`` each sample weighs ``1 + exp(-H(g))`` (normalised to mean 1 within its
domain; each domain counts half). The reversal coefficient warms up as in DANN.
Shapes: features (B, d), logits (B, C) -> discriminator input (B, C*d or n) -> logits (B, 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from transferkit.core.registries import METHODS
from transferkit.losses import binary_domain_loss, grad_reverse, grl_schedule
from transferkit.losses.alignment import (
    entropy_weights,
    multilinear_map,
    randomized_multilinear_map,
)
from transferkit.methods.base import Batch, Method, Step, discriminator


@METHODS.register("cdan", description="Conditional adversarial adaptation on features x predictions, "
                  "entropy-weighted (Long et al. 2018)")
class CDAN(Method):
    """Conditional domain-adversarial training (CDAN+E by default).

    ``trade_off``: weight of the domain loss (1, as TLlib); ``entropy_conditioning``: CDAN+E
    weights; ``randomized``: force (True) or forbid (False) the randomized map, ``None`` picks it
    when ``d * C > randomized_above``; ``randomized_dim``: its output width (1024);
    ``gamma``/``max_coeff``: reversal warm-up; ``disc_*``: the discriminator MLP (1024 x 2).
    """

    def __init__(self, *, trade_off: float = 1.0, entropy_conditioning: bool = True,
                 randomized: bool | None = None, randomized_dim: int = 1024, randomized_above: int = 4096,
                 gamma: float = 10.0, max_coeff: float = 1.0, disc_hidden: int = 1024, disc_layers: int = 2,
                 disc_dropout: float = 0.5) -> None:
        super().__init__()
        self.trade_off = trade_off
        self.entropy_conditioning = entropy_conditioning
        self.randomized = randomized
        self.randomized_dim = randomized_dim
        self.randomized_above = randomized_above
        self.gamma = gamma
        self.max_coeff = max_coeff
        self.disc_hidden = disc_hidden
        self.disc_layers = disc_layers
        self.disc_dropout = disc_dropout

    def setup(self, num_features: int, num_classes: int) -> None:
        super().setup(num_features, num_classes)
        full = num_features * num_classes
        self.use_random_map = self.randomized if self.randomized is not None else full > self.randomized_above
        if self.use_random_map:
            # fixed random projections: buffers (saved in checkpoints, moved with the module), not trained
            self.register_buffer("rf", torch.randn(num_features, self.randomized_dim))
            self.register_buffer("rg", torch.randn(num_classes, self.randomized_dim))
        width = self.randomized_dim if self.use_random_map else full
        self.disc = discriminator(width, self.disc_hidden, self.disc_layers, 1, self.disc_dropout)

    def conditioning(self, f: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The discriminator's input ``T(f, softmax(logits))`` (gradient flows into ``f`` only)."""
        g = F.softmax(logits.detach(), dim=1)
        if self.use_random_map:
            return randomized_multilinear_map(f, g, self.rf, self.rg)
        return multilinear_map(f, g)

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        logits_s, logits_t, f_s, f_t = self.forward_both(model, batch)
        coeff = grl_schedule(step.progress, self.gamma, self.max_coeff)
        h = self.conditioning(torch.cat([f_s, f_t]), torch.cat([logits_s, logits_t]))
        d = self.disc(grad_reverse(h, coeff))
        ns = f_s.shape[0]
        ws = wt = None
        if self.entropy_conditioning:
            ws, wt = entropy_weights(logits_s), entropy_weights(logits_t)
        return {
            "cls": self.classification(logits_s, batch.ys),
            "domain": self.trade_off * binary_domain_loss(d[:ns], d[ns:], ws, wt),
        }
