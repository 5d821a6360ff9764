"""Strategies that choose which layer groups train and at which learning rate.

``full``: every parameter trains (the loop's behaviour without a strategy). ``linear_probe``: the
backbone is frozen, only the new layers (bottleneck, head) train. ``freeze``: the first ``k``
layer groups are frozen. ``gradual_unfreeze``: ULMFiT's schedule. ``discriminative_lr``: layer-wise
learning-rate decay.
"""

from __future__ import annotations

from torch import nn

from transferkit.core.registries import FINETUNE
from transferkit.finetune.base import (
    GroupPlan,
    Strategy,
    check,
    full_groups,
    layer_view,
    layered_groups,
)


@FINETUNE.register("full", description="Full fine-tuning: every parameter trains (the default)")
class Full(Strategy):
    """Every parameter of the model trains; the backbone at ``lr * train.backbone_lr_mult``."""

    def setup(self, model: nn.Module, total_steps: int) -> list[GroupPlan]:
        return full_groups(model)


@FINETUNE.register("linear_probe", description="Backbone frozen (evaluation mode); only the new head/bottleneck trains")
class LinearProbe(Strategy):
    """The pretrained backbone is a fixed feature extractor (frozen, in evaluation mode: its
    batch-norm statistics stay fixed, its dropout is off); the bottleneck and head train."""

    def setup(self, model: nn.Module, total_steps: int) -> list[GroupPlan]:
        view = layer_view(model, self.name)
        return [GroupPlan("backbone", view.backbone_params, trainable_from=None, modules=[view.backbone],
                          backbone=True),
                GroupPlan("head", view.head_params)]


@FINETUNE.register("freeze", description="First k layer groups of the backbone frozen, the rest fine-tuned")
class Freeze(Strategy):
    """The ``k`` input-side layer groups are frozen (and run in evaluation mode); the upper
    groups and the new layers train. ``k`` equal to the number of groups is a linear probe.
    ``freeze_bn``: batch-norm layers of the backbone groups that train keep their running
    statistics too (their scale and shift still train), as Keras advises for fine-tuning."""

    def __init__(self, *, k: int = 1, freeze_bn: bool = False) -> None:
        check(k >= 0, "k", f"got {k!r}; must be 0 or more (the number of input-side layer groups to freeze)")
        self.k = k
        self.freeze_bn = freeze_bn

    def setup(self, model: nn.Module, total_steps: int) -> list[GroupPlan]:
        view = layer_view(model, self.name)
        n = len(view.groups)
        check(self.k <= n, "train.finetune.params.k",
              f"got {self.k}; the backbone {type(view.backbone).__name__} has {n} layer group(s)")
        return layered_groups(view, trainable_from=[None if i < self.k else 0 for i in range(n)],
                              lr_mult=[1.0] * n)


@FINETUNE.register("gradual_unfreeze", description="ULMFiT gradual unfreezing: head first, then one more layer "
                   "group from the top at a time")
class GradualUnfreeze(Strategy):
    """Gradual unfreezing (Howard & Ruder, ULMFiT, ACL 2018): training starts with only the new
    layers; every ``every`` steps one more backbone layer group, from the top (output side) down,
    starts training. ``every=0`` splits training evenly: with ``G`` groups, ``steps // (G + 1)``.
    Group ``i`` from the top (``i = 1`` for the topmost) trains from step ``i * every``.

    ``decay``: discriminative learning rates as in ULMFiT, group ``i`` from the top at
    ``lr * decay**i`` (1.0 = off; ULMFiT divides by 2.6 per layer, i.e. ``decay = 0.385``).
    ``freeze_bn``: batch-norm layers of the backbone keep their running statistics after their
    group is unfrozen (their scale and shift still train). Off, a group's batch norm switches
    from running to batch statistics the step it unfreezes, which shifts the features the head
    has fitted at every unfreezing (a visible jump of the training loss with small batches).
    """

    def __init__(self, *, every: int = 0, decay: float = 1.0, freeze_bn: bool = False) -> None:
        check(every >= 0, "every", f"got {every!r}; must be 0 (even split of training) or a number of steps")
        check(0 < decay <= 1, "decay", f"got {decay!r}; must be in (0, 1]")
        self.every = every
        self.decay = decay
        self.freeze_bn = freeze_bn

    def unfreeze_steps(self, num_groups: int, total_steps: int) -> list[int]:
        """First training step of each layer group, input side first."""
        every = self.every or max(1, total_steps // (num_groups + 1))
        return [(num_groups - i) * every for i in range(num_groups)]

    def setup(self, model: nn.Module, total_steps: int) -> list[GroupPlan]:
        view = layer_view(model, self.name)
        n = len(view.groups)
        starts: list[int | None] = list(self.unfreeze_steps(n, total_steps))
        return layered_groups(view, trainable_from=starts, lr_mult=[self.decay ** (n - i) for i in range(n)])


@FINETUNE.register("discriminative_lr", description="Layer-wise learning-rate decay: group i from the top at "
                   "lr * decay**i")
class DiscriminativeLR(Strategy):
    """Discriminative fine-tuning (Howard & Ruder, ULMFiT, ACL 2018; layer-wise decay as used for
    BERT-style encoders): the new layers train at ``lr``, backbone layer group ``i`` from the top
    (``i = 1`` for the topmost) at ``lr * decay**i``, so input-side layers move least."""

    def __init__(self, *, decay: float = 0.8) -> None:
        check(0 < decay <= 1, "decay", f"got {decay!r}; must be in (0, 1]")
        self.decay = decay

    def setup(self, model: nn.Module, total_steps: int) -> list[GroupPlan]:
        view = layer_view(model, self.name)
        n = len(view.groups)
        return layered_groups(view, trainable_from=[0] * n, lr_mult=[self.decay ** (n - i) for i in range(n)])
