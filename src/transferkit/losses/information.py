"""Information maximisation and pseudo-labelling: pure functions on logits, probabilities and
features (no state, no randomness).

- :func:`information_maximization` (Hu et al. 2017; SHOT, Liang et al. ICML 2020):
  ``mean_i H(p_i) - w * H(mean_i p_i)`` — confident per sample, diverse over the batch.
- :func:`confidence_pseudo_labels` (FixMatch, Sohn et al. 2020): argmax where max prob >= tau.
- :func:`class_balanced_thresholds` / :func:`class_balanced_pseudo_labels` (CBST, Zou et al. ECCV
  2018): per-class confidence thresholds keeping the top ``portion`` of each predicted class.
- :func:`cluster_pseudo_labels` (SHOT): labels from nearest cosine centroids, centroids weighted
  by the soft predictions then refined with hard labels.
- :func:`pseudo_label_loss`: cross-entropy on the selected samples.

Shapes: logits/probs (N, K), features (N, D), labels (N,) long, masks (N,) bool.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F


def marginal_entropy(logits: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``H(mean_i softmax(logits_i))``: entropy of the average prediction (diversity), scalar."""
    p_bar = F.softmax(logits, dim=1).mean(0)
    return -(p_bar * torch.log(p_bar + eps)).sum()


def information_maximization(logits: torch.Tensor, diversity_weight: float = 1.0) -> torch.Tensor:
    """``mean_i H(softmax(logits_i)) - diversity_weight * H(mean_i softmax(logits_i))`` (scalar,
    to minimise): low conditional entropy, high marginal entropy. Its minimum is ``-log K``."""
    logp = F.log_softmax(logits, dim=1)
    cond = -(logp.exp() * logp).sum(1).mean()
    return cond - diversity_weight * marginal_entropy(logits)


def confidence_pseudo_labels(probs: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(argmax_k p_ik, max_k p_ik >= threshold)`` for probabilities ``probs`` (N, K)."""
    conf, labels = probs.max(1)
    return labels, conf >= threshold


def aligned_pseudo_labels(probs_t: torch.Tensor, probs_s: torch.Tensor, threshold: float, *,
                          distribution_alignment: bool = True, relative_threshold: bool = True
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pseudo-labels of target predictions ``probs_t`` (Nt, K) with AdaMatch's corrections
    (Berthelot et al., ICLR 2022), given the source predictions ``probs_s`` (Ns, K) of the same step:

    - distribution alignment: ``q = normalize(probs_t * mean(probs_s) / mean(probs_t))`` (batch
      means over samples), so the batch's pseudo-labels follow the source class proportions;
    - relative threshold: ``tau = threshold * mean_i max_k probs_s[i, k]``.

    Returns ``(argmax_k q_ik, max_k q_ik >= tau)``; with both off it is
    :func:`confidence_pseudo_labels` (FixMatch)."""
    q = probs_t
    if distribution_alignment:
        q = q * (probs_s.mean(0) / q.mean(0).clamp_min(1e-6))
        q = q / q.sum(1, keepdim=True).clamp_min(1e-12)
    tau = threshold * (float(probs_s.max(1).values.mean()) if relative_threshold else 1.0)
    return confidence_pseudo_labels(q, tau)


def class_balanced_thresholds(probs: torch.Tensor, portion: float) -> torch.Tensor:
    """Per-class thresholds (K,) from reference predictions ``probs`` (N, K): for each class k,
    the confidence of the ``ceil(portion * n_k)``-th most confident sample predicted as k (CBST's
    ``lambda_k``), so that the top ``portion`` of every predicted class passes. Classes nobody
    predicts get ``+inf`` (never selected)."""
    conf, pred = probs.max(1)
    k = probs.shape[1]
    thr = torch.full((k,), float("inf"), device=probs.device, dtype=probs.dtype)
    for c in range(k):
        vals = conf[pred == c]
        if vals.numel():
            top = min(vals.numel(), max(1, math.ceil(portion * vals.numel() - 1e-9)))
            thr[c] = vals.sort(descending=True).values[top - 1]
    return thr


def class_balanced_pseudo_labels(probs: torch.Tensor, thresholds: torch.Tensor
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """CBST's class-normalised selection: label ``argmax_k p_ik / lambda_k``, kept when
    ``max_k p_ik / lambda_k >= 1``. Returns ``(labels, mask)``."""
    ratio = probs / thresholds.clamp_min(1e-12)
    best, labels = ratio.max(1)
    return labels, best >= 1.0


def pseudo_label_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
                      normalize: Literal["batch", "selected"] = "batch") -> torch.Tensor:
    """Cross-entropy on the samples where ``mask`` holds, summed and divided by the batch size
    (``"batch"``, FixMatch) or the number selected (``"selected"``; 0 when none is)."""
    ce = F.cross_entropy(logits, labels, reduction="none") * mask.to(logits.dtype)
    if normalize == "batch":
        return ce.sum() / max(1, logits.shape[0])
    return ce.sum() / mask.sum().clamp_min(1)


def cosine_normalize(features: torch.Tensor) -> torch.Tensor:
    """SHOT's feature map for cosine clustering: append a constant 1 and L2-normalise, (N, D+1)."""
    ones = torch.ones(features.shape[0], 1, device=features.device, dtype=features.dtype)
    return F.normalize(torch.cat([features, ones], 1), dim=1)


def cluster_pseudo_labels(features: torch.Tensor, probs: torch.Tensor, rounds: int = 1,
                          min_count: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """SHOT's self-supervised pseudo-labels. Centroids ``c_k = sum_i p_ik f_i / sum_i p_ik`` over
    cosine-normalised features (:func:`cosine_normalize`); labels = nearest centroid by cosine
    distance; then ``rounds`` times: centroids from the hard labels, labels again. Only classes
    predicted (argmax) by more than ``min_count`` samples may receive labels.
    Returns ``(labels (N,), centroids (K, D+1))``; unused classes have zero centroids."""
    f = cosine_normalize(features)
    k = probs.shape[1]
    allowed = torch.bincount(probs.argmax(1), minlength=k) > min_count

    def centroids(w: torch.Tensor) -> torch.Tensor:
        return (w.t() @ f) / (w.sum(0)[:, None] + 1e-8)

    def nearest(c: torch.Tensor) -> torch.Tensor:
        sim = F.normalize(f, dim=1) @ F.normalize(c, dim=1).t()
        return sim.masked_fill(~allowed[None], float("-inf")).argmax(1)

    c = centroids(probs)
    labels = nearest(c)
    for _ in range(rounds):
        c = centroids(F.one_hot(labels, k).to(f.dtype))
        labels = nearest(c)
    return labels, c * allowed[:, None].to(c.dtype)


def nearest_centroid(features: torch.Tensor, centroids: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Labels (N,) of the closest of ``centroids`` (K, D+1) by cosine distance, for features
    (N, D) mapped with :func:`cosine_normalize`; classes where ``valid`` is False are skipped."""
    sim = cosine_normalize(features) @ F.normalize(centroids, dim=1).t()
    if valid is not None:
        sim = sim.masked_fill(~valid[None], float("-inf"))
    return sim.argmax(1)


__all__ = ["class_balanced_pseudo_labels", "class_balanced_thresholds", "cluster_pseudo_labels",
           "confidence_pseudo_labels", "cosine_normalize", "information_maximization", "marginal_entropy",
           "nearest_centroid", "pseudo_label_loss"]
