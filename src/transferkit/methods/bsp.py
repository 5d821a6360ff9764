"""BSP: batch spectral penalization (Chen et al., ICML 2019), a regulariser for adversarial methods.

Loss: ``CE(h(f_s), y_s) + trade_off * sum_{i<=k} (s_i(F_s)^2 + s_i(F_t)^2)`` where ``s_i`` are the
largest singular values of the batch feature matrices F_s (ns, d) and F_t (nt, d). Penalising the
dominant directions restores the discriminability that adversarial alignment erodes, so BSP is
meant to be composed: ``{name: compose, params: {methods: [dann, bsp]}}`` is the paper's
BSP+DANN (also ``[cdan, bsp]``). Alone it is source training with the penalty.
Defaults: ``k = 1`` and ``trade_off = 1e-4`` (paper; TLlib: 1e-4 on digits, 2e-4 on Office).
"""

from __future__ import annotations

import torch
from torch import nn

from transferkit.core.registries import METHODS
from transferkit.losses.alignment import bsp_loss
from transferkit.methods.base import Batch, Method, Step


@METHODS.register("bsp", description="Penalise the largest singular values of batch features; "
                  "compose with dann/cdan (Chen et al. 2019)")
class BSP(Method):
    """Batch spectral penalization. ``trade_off``: weight (1e-4); ``k``: singular values penalised (1)."""

    def __init__(self, *, trade_off: float = 1e-4, k: int = 1) -> None:
        super().__init__()
        self.trade_off = trade_off
        self.k = k

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        logits_s, _, f_s, f_t = self.forward_both(model, batch)
        return {"cls": self.classification(logits_s, batch.ys),
                "bsp": self.trade_off * bsp_loss(f_s, f_t, self.k)}
