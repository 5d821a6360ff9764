"""The contract of a deep adaptation method.

A :class:`Method` holds its hyper-parameters (set in ``__init__``, keyword-only, no logic), builds
its own trainable parts in :meth:`setup` (a domain discriminator, a second head, ...) and returns
named loss terms from :meth:`compute_loss`. It never touches devices, optimizers, epochs or
logging: the loop (``transferkit.train``) owns those. A method with a different update rule
overrides :meth:`training_step`, using the :class:`Optim` handle the loop passes in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from transferkit.core.errors import TrainingDivergedError

#: key of the per-step forward cache in ``Batch.extra``, set by ``compose`` while its parts run so
#: that they share one forward pass (never outlives a parameter update)
FORWARD_CACHE = "_transferkit_forward_cache"


@dataclass
class Batch:
    """One training step's data: labelled source ``xs``/``ys`` and unlabelled target ``xt``.
    Target labels never reach a method. ``extra`` carries optional views (augmentations)."""

    xs: torch.Tensor
    ys: torch.Tensor
    xt: torch.Tensor
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """Where training is: ``index`` in ``0..total-1``; ``progress`` in [0, 1] drives schedules."""

    index: int
    total: int

    @property
    def progress(self) -> float:
        return self.index / max(1, self.total)


class Optim:
    """What the loop lends a method for one update: backward with a finiteness guard, step, and
    zero-grad over one or all optimizers (``group`` names a parameter group set up by the loop)."""

    def __init__(self, backward: Any, optimizers: dict[str, torch.optim.Optimizer], method: str, step: Step) -> None:
        self._backward = backward
        self.optimizers = optimizers
        self.method = method
        self.step_info = step

    def check(self, terms: dict[str, torch.Tensor]) -> None:
        """Raise :class:`TrainingDivergedError` naming the first non-finite term."""
        for name, value in terms.items():
            if not torch.isfinite(value.detach()).all():
                raise TrainingDivergedError(
                    f"method {self.method!r}: loss term {name!r} is {value.detach().float().mean().item()} "
                    f"at step {self.step_info.index}; lower the learning rate or the term's weight"
                )

    def backward(self, loss: torch.Tensor) -> None:
        self._backward(loss)

    def zero_grad(self, *names: str) -> None:
        for n in names or tuple(self.optimizers):
            self.optimizers[n].zero_grad(set_to_none=True)

    def step(self, *names: str) -> None:
        for n in names or tuple(self.optimizers):
            self.optimizers[n].step()


class Method(nn.Module):
    """Base class of deep adaptation methods.

    Subclasses: keyword-only hyper-parameters in ``__init__`` (call ``super().__init__()`` first,
    store each under its own name), parts in :meth:`setup`, terms in :meth:`compute_loss`.
    ``uses_target = False`` marks methods that train on source data alone.
    """

    uses_target: ClassVar[bool] = True
    #: True for methods that draw their own augmented views of the batches (FixMatch); the loop
    #: then refuses ``train.augment="weak"``, which would augment the views a second time
    makes_own_views: ClassVar[bool] = False
    #: a plain label, kept for compatibility (the loop and its messages name methods by their class)
    name: str = "method"

    def setup(self, num_features: int, num_classes: int) -> None:
        """Build trainable parts for features of width ``num_features``."""
        self.num_features = num_features
        self.num_classes = num_classes

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        """Named loss terms (scalars, already weighted); the loop minimises their sum."""
        raise NotImplementedError

    def training_step(self, model: nn.Module, batch: Batch, step: Step, optim: Optim) -> dict[str, torch.Tensor]:
        """One update. The default: terms from :meth:`compute_loss`, guard, backward of the sum,
        one step of every optimizer. Returns the terms (for logging)."""
        terms = self.compute_loss(model, batch, step)
        optim.check(terms)
        optim.zero_grad()
        optim.backward(sum(terms.values()))
        optim.step()
        return terms

    def on_fit_end(self, model: nn.Module, target_x: torch.Tensor) -> None:
        """Called once after the last step with all (unlabelled) target training samples; e.g.
        AdaBN re-estimates batch-norm statistics here. Default: nothing."""

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameter groups of the method's own parts (learning rate multiplier 1 by default)."""
        return {"method": [p for p in self.parameters() if p.requires_grad]}

    # -- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def forward_both(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward pass over source and target together (shared batch-norm statistics):
        ``(logits_s, logits_t, features_s, features_t)``; reused within a step when the batch
        carries a forward cache (composed methods)."""
        cache = batch.extra.get(FORWARD_CACHE)
        if isinstance(cache, dict):
            hit = cache.get(id(model))
            if hit is not None and hit[0] is model:
                return hit[1]
        ns = batch.xs.shape[0]
        logits, feats = model(torch.cat([batch.xs, batch.xt]))
        out = (logits[:ns], logits[ns:], feats[:ns], feats[ns:])
        if isinstance(cache, dict):
            cache[id(model)] = (model, out)
        return out

    @staticmethod
    def classification(logits_s: torch.Tensor, ys: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        return F.cross_entropy(logits_s, ys, label_smoothing=label_smoothing)

    def extra_repr(self) -> str:
        from transferkit.core.params import get_params

        return ", ".join(f"{k}={v!r}" for k, v in get_params(self).items())


def discriminator(in_features: int, hidden: int, layers: int = 2, out: int = 1, dropout: float = 0.5) -> nn.Sequential:
    """MLP domain discriminator: ``layers`` x (Linear, BatchNorm, ReLU, Dropout) then Linear(-> out).
    ``layers=0`` gives a single linear (logistic) layer."""
    mods: list[nn.Module] = []
    width = in_features
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    mods.append(nn.Linear(width, out))
    return nn.Sequential(*mods)
