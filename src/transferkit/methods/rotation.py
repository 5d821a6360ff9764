"""Rotation prediction as a self-supervised auxiliary task (Xu et al., "Self-supervised domain
adaptation for computer vision tasks", IEEE Access 2019; Sun et al., "Unsupervised domain
adaptation through self-supervision", arXiv 2019).

Loss: ``CE(h(f(xs)), ys) + trade_off * CE(r(f(rot_k(x))), k)`` where ``x`` is the target batch
(and the source batch when ``on_source``), ``k`` is drawn per sample and ``r`` is a linear 4-way
head on the shared features. Solving the pretext task on both domains pulls the feature extractor
towards structure the domains share.

Pretext task by input shape:

- images (B, C, H, W) or (B, H, W): rotation by ``k * 90`` degrees, ``k`` in {0, 1, 2, 3}; for
  non-square images only {0, 2} (0 and 180 degrees keep the shape);
- feature vectors (B, D) cannot be rotated, so the method falls back to *corrupted-block
  prediction* (in the spirit of VIME's mask estimation, Yoon et al. NeurIPS 2020): the vector is
  cut into 4 contiguous blocks (``min(4, D)``), block ``k`` is replaced by the same block of another
  sample of the batch (a draw from the marginal, so no value is out of distribution), and the head
  predicts ``k``. It is learnable only through the dependence between feature blocks, which is
  what makes it informative.

Randomness comes from a generator seeded by a draw from torch's global generator.
Shapes: features (B, num_features) -> pretext logits (B, 4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from transferkit.core.registries import METHODS
from transferkit.data.augment import make_generator, rotate90
from transferkit.methods.base import Batch, Method, Step

NUM_PRETEXT = 4


def rotate_batch(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Images rotated by a random multiple of 90 degrees each, and the multiple (B,) long."""
    square = x.shape[-1] == x.shape[-2]
    k = torch.randint(0, NUM_PRETEXT if square else 2, (x.shape[0],), generator=generator, device=x.device)
    k = k if square else 2 * k
    return rotate90(x, k), k


def corrupt_block(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Vectors (B, D) with one of ``min(4, D)`` contiguous blocks taken from another sample of the
    batch, and the block index (B,) long."""
    b, d = x.shape
    blocks = min(NUM_PRETEXT, d)
    k = torch.randint(0, blocks, (b,), generator=generator, device=x.device)
    block_of = torch.cat([torch.full((len(c),), i, device=x.device, dtype=torch.long)
                          for i, c in enumerate(torch.arange(d).tensor_split(blocks))])  # (D,)
    # another sample: a random non-zero cyclic offset, so no sample is paired with itself
    offset = torch.randint(1, b, (b,), generator=generator, device=x.device) if b > 1 else torch.zeros(b, dtype=torch.long, device=x.device)
    donor = x[(torch.arange(b, device=x.device) + offset) % b]
    return torch.where(block_of[None, :] == k[:, None], donor, x), k


@METHODS.register("rotation", description="Rotation prediction as a self-supervised auxiliary task (Xu et al. 2019; Sun et al. 2019)")
class Rotation(Method):
    """Self-supervised auxiliary task on both domains (rotation for images, corrupted-block
    prediction for feature vectors).

    ``trade_off``: weight of the pretext loss; ``on_source``: solve the pretext task on the source
    batch too (Sun et al.), not only on the target (Xu et al.).
    """

    def __init__(self, *, trade_off: float = 1.0, on_source: bool = True) -> None:
        super().__init__()
        self.trade_off = trade_off
        self.on_source = on_source

    def setup(self, num_features: int, num_classes: int) -> None:
        super().setup(num_features, num_classes)
        self.pretext_head = nn.Linear(num_features, NUM_PRETEXT)

    @staticmethod
    def pretext(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Transformed inputs and pretext labels for ``x`` (images or feature vectors)."""
        return rotate_batch(x, generator) if x.dim() >= 3 else corrupt_block(x, generator)

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        g = make_generator(None, batch.xt.device)
        xt_p, kt = self.pretext(batch.xt, g)
        parts, labels = [batch.xs, xt_p], [kt]
        if self.on_source:
            xs_p, ks = self.pretext(batch.xs, g)
            parts.append(xs_p)
            labels.append(ks)
        ns = batch.xs.shape[0]
        logits, feats = model(torch.cat(parts))
        pretext_logits = self.pretext_head(feats[ns:])
        return {
            "cls": self.classification(logits[:ns], batch.ys),
            "pretext": self.trade_off * F.cross_entropy(pretext_logits, torch.cat(labels)),
        }
