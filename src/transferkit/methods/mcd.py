"""MCD: maximum classifier discrepancy (Saito et al., CVPR 2018).

Two classifiers read the generator's features: F1 is the model's own ``head`` (so evaluation uses
it), F2 a head the method builds with the same shape (Linear(d, C)). With ``p1, p2`` the two
heads' target probabilities and ``disc = mean |p1 - p2|``, each training step makes three updates:

* A: G, F1, F2 minimise ``CE(F1, y_s) + CE(F2, y_s) + trade_off_entropy * (E(p1) + E(p2))``;
* B: F1, F2 (G fixed) minimise the same minus ``trade_off * disc`` (maximise the discrepancy);
* C: ``num_k`` times, G (heads fixed) minimises ``trade_off * disc``.

``E(p) = -(1/C) sum_k log(mean_i p_ik)`` is TLlib's class-balance term (weight 0.01; 0 gives the
paper's loss). Defaults ``trade_off = 1``, ``num_k = 4`` as the paper (digits) and TLlib.
Shapes: features (B, d) -> logits (B, C) from each head.

Implementation: the loop lends one optimizer holding every parameter; a part is kept out of an
update by switching its ``requires_grad`` off for that forward pass, so its gradient stays
``None`` and PyTorch's optimizers skip it (no weight decay or momentum step either), and no
gradient is computed for it at all. This file is longer than the others because of the three-step
update.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from transferkit.core.errors import ConfigError
from transferkit.core.registries import METHODS
from transferkit.losses.alignment import classifier_discrepancy, marginal_entropy_loss
from transferkit.methods.base import Batch, Method, Optim, Step


@contextmanager
def frozen(params: list[nn.Parameter]) -> Iterator[None]:
    """Switch ``requires_grad`` off for ``params`` (those that had it) and restore it afterwards."""
    live = [p for p in params if p.requires_grad]
    for p in live:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in live:
            p.requires_grad_(True)


@METHODS.register("mcd", description="Two classifiers: maximise their target discrepancy, then train "
                  "features to minimise it (Saito et al. 2018)")
class MCD(Method):
    """Maximum classifier discrepancy. ``trade_off``: discrepancy weight (1); ``trade_off_entropy``:
    class-balance weight (0.01, TLlib); ``num_k``: generator updates per step (4)."""

    def __init__(self, *, trade_off: float = 1.0, trade_off_entropy: float = 0.01, num_k: int = 4) -> None:
        super().__init__()
        self.trade_off = trade_off
        self.trade_off_entropy = trade_off_entropy
        self.num_k = num_k

    def setup(self, num_features: int, num_classes: int) -> None:
        super().setup(num_features, num_classes)
        self.head2 = nn.Linear(num_features, num_classes)

    def _forward(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, ...]:
        """Source logits of F1 and F2, target probabilities of F1 and F2."""
        ns = batch.xs.shape[0]
        logits1, f = model(torch.cat([batch.xs, batch.xt]))
        logits2 = self.head2(f)
        return logits1[:ns], logits2[:ns], F.softmax(logits1[ns:], dim=1), F.softmax(logits2[ns:], dim=1)

    def _source_terms(self, out: tuple[torch.Tensor, ...], ys: torch.Tensor) -> dict[str, torch.Tensor]:
        l1, l2, p1, p2 = out
        terms = {"cls": self.classification(l1, ys), "cls2": self.classification(l2, ys)}
        if self.trade_off_entropy > 0:
            terms["balance"] = self.trade_off_entropy * (marginal_entropy_loss(p1) + marginal_entropy_loss(p2))
        return terms

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        """The terms of update A (source classification by both heads); the full update is
        :meth:`training_step`."""
        return self._source_terms(self._forward(model, batch), batch.ys)

    def _parts(self, model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        head = getattr(model, "head", None)
        if not isinstance(head, nn.Module):
            raise ConfigError("mcd needs a model with a 'head' module (a transferkit Classifier) to use as "
                              "its first classifier", "model")
        head_ids = {id(p) for p in head.parameters()}
        generator = [p for p in model.parameters() if id(p) not in head_ids]
        return generator, list(head.parameters()) + list(self.head2.parameters())

    def _update(self, optim: Optim, terms: dict[str, torch.Tensor]) -> None:
        optim.check(terms)
        optim.zero_grad()
        optim.backward(sum(terms.values()))
        optim.step()

    def training_step(self, model: nn.Module, batch: Batch, step: Step, optim: Optim) -> dict[str, torch.Tensor]:
        generator, heads = self._parts(model)
        # A: everything learns the source task
        log = self._source_terms(self._forward(model, batch), batch.ys)
        self._update(optim, log)
        # B: the heads maximise their disagreement on the target, the generator is fixed
        with frozen(generator):
            out = self._forward(model, batch)
            terms = self._source_terms(out, batch.ys)
            disc = classifier_discrepancy(out[2], out[3])
            terms["discrepancy"] = -self.trade_off * disc
            self._update(optim, terms)
        log["disc_max"] = disc.detach()
        # C: the generator minimises the disagreement, the heads are fixed
        with frozen(heads):
            for _ in range(self.num_k):
                out = self._forward(model, batch)
                disc = self.trade_off * classifier_discrepancy(out[2], out[3])
                self._update(optim, {"disc": disc})
        if self.num_k > 0:
            log["disc"] = disc.detach()
        return {k: v.detach() for k, v in log.items()}
