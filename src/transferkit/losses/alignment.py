"""Pure losses of the deep alignment methods: CORAL, MCC, BSP, AFN, MDD, MCD and CDAN's
multilinear conditioning. Each works on a batch of features (B, d) or logits (B, C), is vectorised
(no loop over samples) and returns a scalar unless stated otherwise."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from transferkit.losses.core import entropy


def covariance(x: torch.Tensor) -> torch.Tensor:
    """Unbiased covariance (d, d) of the rows of ``x`` (n, d); ``n = 1`` gives zeros."""
    xc = x - x.mean(0, keepdim=True)
    return xc.T @ xc / max(x.shape[0] - 1, 1)


def coral_loss(fs: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    """Deep CORAL (Sun & Saenko, ECCV-W 2016): ``|C_s - C_t|_F^2 / (4 d^2)`` for source (ns, d)
    and target (nt, d) features."""
    d = fs.shape[1]
    return (covariance(fs) - covariance(ft)).pow(2).sum() / (4.0 * d * d)


def mcc_loss(logits_t: torch.Tensor, temperature: float = 2.5) -> torch.Tensor:
    """Minimum class confusion (Jin et al., ECCV 2020) of target logits (B, C).

    ``P = softmax(logits / T)``; weights ``w_i = 1 + exp(-H(P_i))`` (detached) rescaled to sum
    to B; confusion ``M = P^T diag(w) P`` (C, C); each column divided by its sum; loss
    ``(sum(M) - trace(M)) / C``, i.e. the mean between-class confusion.
    """
    b, c = logits_t.shape
    scaled = logits_t / temperature
    p = F.softmax(scaled, dim=1)
    w = 1.0 + torch.exp(-entropy(scaled, reduction="none").detach())
    w = b * w / w.sum()
    m = (p * w.unsqueeze(1)).T @ p
    m = m / m.sum(0, keepdim=True)
    return (m.sum() - m.trace()) / c


def bsp_loss(fs: torch.Tensor, ft: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Batch spectral penalization (Chen et al., ICML 2019): ``sum_{i<=k} s_i(F_s)^2 + s_i(F_t)^2``
    over the ``k`` largest singular values of the source (ns, d) and target (nt, d) feature
    matrices."""
    return torch.linalg.svdvals(fs)[:k].pow(2).sum() + torch.linalg.svdvals(ft)[:k].pow(2).sum()


def afn_loss(f: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Stepwise adaptive feature norm (SAFN, Xu et al., ICCV 2019) of features (B, d):
    ``mean_i (|f_i| - (|f_i|.detach() + delta))^2``; its value is always ``delta^2``, its gradient
    enlarges every norm by ``delta`` per step."""
    norm = torch.linalg.vector_norm(f, dim=1)
    return (norm - (norm.detach() + delta)).pow(2).mean()


def _shift_log(x: torch.Tensor, offset: float = 1e-6) -> torch.Tensor:
    return torch.log(torch.clamp(x + offset, max=1.0))


def mdd_loss(logits_s: torch.Tensor, adv_s: torch.Tensor, logits_t: torch.Tensor, adv_t: torch.Tensor,
             margin: float = 4.0) -> torch.Tensor:
    """Margin disparity discrepancy (Zhang et al., ICML 2019), classification form:

    ``D = -margin * CE(adv_s, argmax logits_s) + mean log(1 - softmax(adv_t)[argmax logits_t])``,
    the sum of a source mean and a target mean. The main head's predictions only pick labels (no
    gradient); the adversarial head maximises ``D`` and the features minimise it.
    Shapes: logits and adversarial logits (ns, C) and (nt, C).
    """
    ys = logits_s.detach().argmax(1)
    yt = logits_t.detach().argmax(1)
    source = -margin * F.cross_entropy(adv_s, ys)
    p_t = F.softmax(adv_t, dim=1).gather(1, yt.unsqueeze(1)).squeeze(1)
    return source + _shift_log(1.0 - p_t).mean()


def classifier_discrepancy(p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
    """MCD's discrepancy (Saito et al., CVPR 2018): mean absolute difference of two probability
    matrices (B, C), i.e. ``mean_i (1/C) sum_k |p1_ik - p2_ik|``."""
    return (p1 - p2).abs().mean()


def marginal_entropy_loss(p: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``-(1/C) sum_k log(mean_i p_ik)`` of probabilities (B, C): small when the batch's mean
    prediction is spread over the classes (TLlib's class-balance term for MCD)."""
    return -torch.log(p.mean(0) + eps).mean()


def multilinear_map(f: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """CDAN's conditioning ``f (x) g``: the flattened outer product (B, C*d) of g (B, C) and f (B, d)."""
    return torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).flatten(1)


def randomized_multilinear_map(f: torch.Tensor, g: torch.Tensor, rf: torch.Tensor, rg: torch.Tensor) -> torch.Tensor:
    """CDAN's randomized map ``(f R_f) * (g R_g) / sqrt(n)`` for fixed random matrices ``rf`` (d, n)
    and ``rg`` (C, n); output (B, n)."""
    return (f @ rf) * (g @ rg) / math.sqrt(rf.shape[1])


def entropy_weights(logits: torch.Tensor) -> torch.Tensor:
    """CDAN+E weights ``1 + exp(-H(softmax(logits)))`` (B,), detached, rescaled to mean 1."""
    w = 1.0 + torch.exp(-entropy(logits.detach(), reduction="none"))
    return w / w.mean()
