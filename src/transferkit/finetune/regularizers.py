"""Strategies that fine-tune every parameter under a regulariser added to the loss.

``l2sp``: L2-SP (Li, Grandvalet & Davoine, ICML 2018), weights pulled towards the pretrained
starting point instead of zero. ``bss``: Batch Spectral Shrinkage (Chen, Wang, Fu, Long & Wang,
NeurIPS 2019), the smallest singular values of each batch's feature matrix are penalised.
"""

from __future__ import annotations

import torch
from torch import nn

from transferkit.core.errors import DataError
from transferkit.core.registries import FINETUNE
from transferkit.finetune.base import (
    GroupPlan,
    Strategy,
    check,
    full_groups,
    layer_view,
)


def l2sp_penalty(backbone: list[torch.Tensor], start: list[torch.Tensor], new: list[torch.Tensor],
                 alpha: float, beta: float) -> torch.Tensor:
    """``alpha/2 * sum ||w - w0||^2`` over the pretrained weights plus ``beta/2 * sum ||w||^2``
    over the new ones (a scalar)."""
    ref = (backbone or new)[0] if (backbone or new) else torch.zeros(())
    total = ref.new_zeros(())
    if backbone:
        total = total + alpha / 2 * sum(((w - w0.to(w.device)) ** 2).sum() for w, w0 in zip(backbone, start))
    if new and beta:
        total = total + beta / 2 * sum((w ** 2).sum() for w in new)
    return total


@FINETUNE.register("l2sp", description="L2-SP: pull weights towards the pretrained ones (Li et al. 2018)")
class L2SP(Strategy):
    """L2-SP (Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning with
    Convolutional Networks", ICML 2018). Every parameter trains under

        Omega(w) = alpha/2 * ||w_S - w0_S||^2 + beta/2 * ||w_new||^2

    where ``w_S`` are the backbone's (pretrained) weights, ``w0_S`` a frozen copy of them taken
    when training starts (kept in checkpoints), and ``w_new`` the new layers (bottleneck, head).
    The term appears in the history as ``l2sp``. As in the paper the penalty *replaces* weight
    decay: the model's groups get ``weight_decay = 0`` (the method's own parts keep
    ``train.weight_decay``). Choose ``alpha``/``beta`` without target labels.
    """

    def __init__(self, *, alpha: float = 0.1, beta: float = 0.01) -> None:
        check(alpha >= 0, "alpha", f"got {alpha!r}; must be 0 or more")
        check(beta >= 0, "beta", f"got {beta!r}; must be 0 or more")
        self.alpha = alpha
        self.beta = beta

    def setup(self, model: nn.Module, total_steps: int) -> list[GroupPlan]:
        view = layer_view(model, self.name)
        self._backbone = [p for p in view.backbone_params if p.requires_grad]
        self._new = [p for p in view.head_params if p.requires_grad]
        self._start = [p.detach().clone() for p in self._backbone]
        return full_groups(model, weight_decay=0.0)

    def regularizer(self, model: nn.Module, features: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return {"l2sp": l2sp_penalty(self._backbone, self._start, self._new, self.alpha, self.beta)}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"start.{i}": w for i, w in enumerate(self._start)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        start = [state[f"start.{i}"] for i in range(len(self._start))]
        if [w.shape for w in start] != [w.shape for w in self._start]:
            raise DataError("the checkpoint's pretrained (L2-SP starting point) weights do not match the "
                            "model; delete the checkpoint to start this run afresh")
        self._start = [w.to(p.device) for w, p in zip(start, self._backbone)]


def bss_penalty(features: torch.Tensor, k: int) -> torch.Tensor:
    """``sum_{i=1..k} sigma_{-i}^2``: the squares of the ``k`` smallest singular values of the
    feature matrix (B, d) (of its ``min(B, d)`` singular values)."""
    sigma = torch.linalg.svdvals(features.float())
    return (sigma[-k:] ** 2).sum()


@FINETUNE.register("bss", description="Batch Spectral Shrinkage: penalise the k smallest singular values of "
                   "the batch features (Chen et al. 2019)")
class BSS(Strategy):
    """Batch Spectral Shrinkage (Chen et al., "Catastrophic Forgetting Meets Negative Transfer:
    Batch Spectral Shrinkage for Safe Transfer Learning", NeurIPS 2019). Every parameter trains
    under ``eta * sum_{i=1..k} sigma_{-i}^2``, the ``k`` smallest singular values of the feature
    matrix ``F`` (B, num_features) of the update's labelled samples (the model's features, i.e.
    the bottleneck output when there is one). Defaults ``k = 1``, ``eta = 0.001``; choose them
    without target labels.
    The term appears in the history as ``bss``.

    Which rows: the first ``len(xs)`` rows of the first training forward pass of each update
    (every method puts the labelled source batch first).
    """

    needs_features = True

    def __init__(self, *, eta: float = 0.001, k: int = 1) -> None:
        check(eta >= 0, "eta", f"got {eta!r}; must be 0 or more")
        check(k >= 1, "k", f"got {k!r}; must be at least 1")
        self.eta = eta
        self.k = k

    def setup(self, model: nn.Module, total_steps: int) -> list[GroupPlan]:
        return full_groups(model)

    def regularizer(self, model: nn.Module, features: torch.Tensor | None) -> dict[str, torch.Tensor]:
        if features is None:
            return {}
        return {"bss": self.eta * bss_penalty(features.reshape(len(features), -1), self.k)}
