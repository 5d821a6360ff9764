"""SHOT: source hypothesis transfer (Liang et al., "Do we really need to access the source data?
Source hypothesis transfer for unsupervised domain adaptation", ICML 2020).

SHOT is source-free: a source model is trained first, then adapted to the target without any
source data. Phase 2 freezes the source hypothesis (the linear ``head``) and trains the feature
extractor ``f`` (backbone and bottleneck) with

``L = im_weight * [mean_i H(p_i) - diversity_weight * H(mean_i p_i)] + trade_off * CE(p, yhat)``

where ``p = softmax(head(f(xt)))``; the first part is information maximisation (confident and
diverse predictions) and ``yhat`` are self-supervised pseudo-labels: nearest cosine centroid,
centroids weighted by ``p`` and then refined once with the hard labels (SHOT's k-means step).

Deviation (the loop runs one method once): both phases live in this one method. Steps
``[0, source_steps_fraction * steps)`` train on the source with label-smoothed cross-entropy
(``label_smoothing``, 0.1 in the paper); later steps are source-free and never read the source
batch. SHOT recomputes pseudo-labels over the whole target set once per epoch; here centroids are
recomputed every ``centroid_every`` steps (and at every step while the memory fills) from a FIFO
memory of the last ``memory_size`` target features and predictions, and each batch is labelled
by its nearest centroid. Set ``source_steps_fraction=0`` to adapt a model already trained on the
source. The model must expose its hypothesis as ``model.head`` (as ``Classifier`` does); the
head is frozen by using detached weights, so it gets no gradient (and no optimizer update).
Shapes: features (B, D) -> memory (memory_size, D) and (memory_size, K); centroids (K, D+1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from transferkit.core.errors import ConfigError
from transferkit.core.registries import METHODS
from transferkit.losses.information import cluster_pseudo_labels, information_maximization, nearest_centroid
from transferkit.methods.base import Batch, Method, Step
from transferkit.methods.self_training import PredictionMemory


@METHODS.register("shot", description="Source-free hypothesis transfer: information maximisation + cluster pseudo-labels (Liang et al. 2020)")
class SHOT(Method):
    """Source training, then source-free adaptation of the feature extractor with a frozen head.

    ``source_steps_fraction``: share of the steps spent on source training (0 = the model is
    already a source model); ``label_smoothing``: of the source cross-entropy; ``im_weight``: weight
    of information maximisation; ``diversity_weight``: weight of its diversity part;
    ``trade_off``: weight ``beta`` of the pseudo-label cross-entropy (0.3 in the paper, 0 gives
    SHOT-IM); ``memory_size``/``centroid_every``: target memory and centroid refresh period;
    ``rounds``: hard-label refinements of the centroids (1 in the paper).
    """

    monitor = "im"

    def __init__(self, *, source_steps_fraction: float = 0.5, label_smoothing: float = 0.1,
                 im_weight: float = 1.0, diversity_weight: float = 1.0, trade_off: float = 0.3,
                 memory_size: int = 1024, centroid_every: int = 10, rounds: int = 1) -> None:
        super().__init__()
        self.source_steps_fraction = source_steps_fraction
        self.label_smoothing = label_smoothing
        self.im_weight = im_weight
        self.diversity_weight = diversity_weight
        self.trade_off = trade_off
        self.memory_size = memory_size
        self.centroid_every = centroid_every
        self.rounds = rounds

    def setup(self, num_features: int, num_classes: int) -> None:
        super().setup(num_features, num_classes)
        if not 0 <= self.source_steps_fraction <= 1:
            raise ConfigError(f"shot: source_steps_fraction must be in [0, 1]; got {self.source_steps_fraction}")
        size = max(1, self.memory_size)
        self.feature_memory = PredictionMemory(size, num_features)
        self.prob_memory = PredictionMemory(size, num_classes)
        self.register_buffer("centroids", torch.zeros(num_classes, num_features + 1))
        self.register_buffer("centroid_valid", torch.zeros(num_classes, dtype=torch.bool))

    def adaptation_start(self, total: int) -> int:
        """First step of the source-free phase."""
        return math.ceil(self.source_steps_fraction * total)

    @staticmethod
    def frozen_head(model: nn.Module, features: torch.Tensor) -> torch.Tensor:
        """``model.head(features)`` with detached weights: gradients reach the features only."""
        head = getattr(model, "head", None)
        if not isinstance(head, nn.Module):
            raise ConfigError("shot needs a model whose hypothesis is a 'head' module (e.g. transferkit.models."
                              f"Classifier); {type(model).__name__} has none")
        if isinstance(head, nn.Linear):
            return F.linear(features, head.weight.detach(), None if head.bias is None else head.bias.detach())
        from torch.func import functional_call

        return functional_call(head, {n: p.detach() for n, p in head.named_parameters()}, (features,))

    @torch.no_grad()
    def pseudo_labels(self, features: torch.Tensor, probs: torch.Tensor, since_start: int) -> torch.Tensor:
        """Push the batch into the memory, refresh the centroids when due, label the batch."""
        self.feature_memory.push(features)
        self.prob_memory.push(probs)
        filling = int(self.feature_memory.count) < self.feature_memory.rows.shape[0]
        if filling or since_start % max(1, self.centroid_every) == 0 or not bool(self.centroid_valid.any()):
            _, cents = cluster_pseudo_labels(self.feature_memory.valid(), self.prob_memory.valid(), self.rounds)
            self.centroids.copy_(cents)
            self.centroid_valid.copy_(cents.abs().sum(1) > 0)
        return nearest_centroid(features, self.centroids, self.centroid_valid)

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        start = self.adaptation_start(step.total)
        if step.index < start:
            logits_s, _ = model(batch.xs)
            return {"cls": self.classification(logits_s, batch.ys, self.label_smoothing)}
        _, feats = model(batch.xt)
        logits = self.frozen_head(model, feats)
        terms = {"im": self.im_weight * information_maximization(logits, self.diversity_weight)}
        if self.trade_off > 0:
            labels = self.pseudo_labels(feats.detach(), F.softmax(logits.detach(), dim=1), step.index - start)
            terms["pseudo"] = self.trade_off * F.cross_entropy(logits, labels)
        return terms
