"""FixMatch consistency on unlabelled target data (Sohn et al., "FixMatch: simplifying
semi-supervised learning with consistency and confidence", NeurIPS 2020; used for domain
adaptation as in TLlib).

Loss: ``CE(h(weak(xs)), ys) + lambda_u * (1/Bt) sum_i 1[max q_i >= tau] CE(h(strong(xt_i)), argmax q_i)``
with ``q = softmax(h(weak(xt)))`` detached. The three views go through the model in one forward
pass (shared batch-norm statistics, as in FixMatch).

Across domains, plain FixMatch can collapse: early confident target predictions of one class
become pseudo-labels that teach every target sample that class (on digits_images the target
predictions ended on one or two classes). Two label-free corrections from AdaMatch (Berthelot et
al., "AdaMatch: a unified approach to semi-supervised learning and domain adaptation", ICLR 2022),
on by default: **distribution alignment** -- ``q`` is multiplied by ``mean_batch p_s / mean_batch
q`` (``p_s`` the source weak-view predictions) and renormalised, so the pseudo-labels of a target
batch follow the source class proportions instead of piling onto one class; **relative
threshold** -- a pseudo-label needs ``max q >= tau * mean_batch max p_s`` (the source batch's
mean confidence sets the scale). ``distribution_alignment=False, relative_threshold=False`` is
Sohn et al.'s FixMatch. Views come from
:func:`transferkit.data.augment.augment` with a generator seeded by a draw from torch's global
generator, so a seeded run is reproducible and the loop needs no data pipeline: images
(B, C, H, W) / (B, H, W) get shift-and-crop (weak) and RandAugment + Cutout (strong); feature
vectors (B, D) get Gaussian noise (weak) and noise + feature masking (strong).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from transferkit.core.registries import METHODS
from transferkit.data.augment import augment, make_generator
from transferkit.losses.information import aligned_pseudo_labels, pseudo_label_loss
from transferkit.methods.base import Batch, Method, Step


@METHODS.register("fixmatch", description="Weak-to-strong pseudo-label consistency on target data (Sohn et al. 2020; AdaMatch alignment)")
class FixMatch(Method):
    """FixMatch for domain adaptation.

    ``threshold``: confidence ``tau`` a weak-view prediction needs to become a pseudo-label (0.95);
    ``trade_off``: ``lambda_u`` (1); ``n_ops``/``magnitude``: RandAugment ops per image and their
    largest strength (fraction of each op's range) for image inputs; ``flip``: random horizontal
    flips (off: digits and text are not mirror-symmetric); ``augment_source``: train the source
    term on the weak view (as FixMatch does for labelled data) instead of the clean samples;
    ``distribution_alignment``/``relative_threshold``: AdaMatch's corrections (module docstring).
    """

    makes_own_views = True

    def __init__(self, *, threshold: float = 0.95, trade_off: float = 1.0, n_ops: int = 2,
                 magnitude: float = 1.0, flip: bool = False, augment_source: bool = True,
                 distribution_alignment: bool = True, relative_threshold: bool = True) -> None:
        super().__init__()
        self.distribution_alignment = distribution_alignment
        self.relative_threshold = relative_threshold
        self.threshold = threshold
        self.trade_off = trade_off
        self.n_ops = n_ops
        self.magnitude = magnitude
        self.flip = flip
        self.augment_source = augment_source

    def views(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Weak and strong views of ``x``."""
        image = x.dim() >= 3
        weak_opts = {"flip": self.flip} if image else {}
        strong_opts = {"flip": self.flip, "n_ops": self.n_ops, "magnitude": self.magnitude} if image else {}
        return augment(x, "weak", generator, **weak_opts), augment(x, "strong", generator, **strong_opts)

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        g = make_generator(None, batch.xt.device)
        xs = batch.xs
        if self.augment_source:
            xs = augment(xs, "weak", g, **({"flip": self.flip} if xs.dim() >= 3 else {}))
        xt_weak, xt_strong = self.views(batch.xt, g)
        ns, nt = xs.shape[0], xt_weak.shape[0]
        logits, _ = model(torch.cat([xs, xt_weak, xt_strong]))
        logits_s, logits_w, logits_st = logits[:ns], logits[ns:ns + nt], logits[ns + nt:]
        labels, mask = aligned_pseudo_labels(
            F.softmax(logits_w.detach(), dim=1), F.softmax(logits_s.detach(), dim=1), self.threshold,
            distribution_alignment=self.distribution_alignment, relative_threshold=self.relative_threshold)
        return {
            "cls": self.classification(logits_s, batch.ys),
            "consistency": self.trade_off * pseudo_label_loss(logits_st, labels, mask),
        }
