"""Elementary losses: gradient reversal, entropy, domain classification."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class GradientReverse(torch.autograd.Function):
    """Identity forward; gradient multiplied by ``-coeff`` backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:  # type: ignore[override]
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    return GradientReverse.apply(x, coeff)


def grl_schedule(progress: float, gamma: float = 10.0, high: float = 1.0, low: float = 0.0) -> float:
    """Warm-up of the reversal coefficient, ``low + (high-low)(2/(1+exp(-gamma p)) - 1)`` for
    training progress ``p`` in [0, 1] (Ganin et al. JMLR 2016, Sec. 5.2.2)."""
    return low + (high - low) * (2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0)


def entropy(logits: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Shannon entropy of softmax(logits) per row (B,) or its mean."""
    logp = F.log_softmax(logits, dim=1)
    h = -(logp.exp() * logp).sum(dim=1)
    return h.mean() if reduction == "mean" else h


def binary_domain_loss(d_source: torch.Tensor, d_target: torch.Tensor,
                       w_source: torch.Tensor | None = None, w_target: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy of a domain discriminator's logits: source = 1, target = 0, averaged
    over both domains (each domain weighs half, whatever the batch sizes)."""
    ls = F.binary_cross_entropy_with_logits(d_source.view(-1), torch.ones_like(d_source.view(-1)),
                                            weight=w_source, reduction="mean")
    lt = F.binary_cross_entropy_with_logits(d_target.view(-1), torch.zeros_like(d_target.view(-1)),
                                            weight=w_target, reduction="mean")
    return 0.5 * (ls + lt)
