"""LoRA through the ``peft`` library: low-rank adapters on the backbone's linear layers.

LoRA (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022): a frozen
weight ``W`` (out, in) becomes ``W + (alpha / r) * B A`` with ``A`` (r, in), ``B`` (out, r) and
``B = 0`` at the start, so training begins from the pretrained function. Only ``A``, ``B`` and the
new layers (bottleneck, head) train; the base weights stay bit-identical.

``peft`` is an optional dependency (the ``text`` extra); it is imported only when this strategy
prepares a model.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from transferkit.core.errors import ConfigError
from transferkit.core.registries import FINETUNE
from transferkit.finetune.base import GroupPlan, Strategy, check, layer_view

_MARK = "_transferkit_lora"


def default_targets(backbone: nn.Module) -> list[str]:
    """Modules that get adapters when ``target_modules`` is not given: the backbone's own
    ``lora_target_modules`` attribute when it has one; else the attention ``query`` and ``value``
    projections when the backbone has them (BERT-style encoders such as MiniLM); else every
    ``nn.Linear`` of the backbone."""
    own = getattr(backbone, "lora_target_modules", None)
    if own:
        return list(own)
    names = [n for n, m in backbone.named_modules()
             if isinstance(m, nn.Linear) and "lora_" not in n and "base_layer" not in n]
    leaves = {n.rsplit(".", 1)[-1] for n in names}
    if {"query", "value"} <= leaves:
        return ["query", "value"]
    return names


def is_lora_param(name: str) -> bool:
    return "lora_" in name


@FINETUNE.register("lora", description="LoRA adapters (peft) on the backbone's linear layers; only adapters "
                   "and head train")
class LoRA(Strategy):
    """Low-rank adapters on the backbone (Hu et al., ICLR 2022) through ``peft``.

    ``r``: rank; ``alpha``: scaling (the update is ``alpha / r * B A``); ``dropout``: dropout on the
    adapters' input; ``target_modules``: names of the ``nn.Linear`` modules to adapt (a name
    matches a module whose dotted name ends with it); empty = :func:`default_targets`
    (query/value projections for BERT-style encoders). The backbone's base weights are frozen
    (its batch-norm layers, if any, run in evaluation mode); adapters train at ``lr`` (not
    multiplied by ``train.backbone_lr_mult``: they are new weights).
    """

    def __init__(self, *, r: int = 8, alpha: float = 16.0, dropout: float = 0.1,
                 target_modules: list[str] = []) -> None:  # noqa: B006 (copied, never mutated)
        check(r >= 1, "r", f"got {r!r}; the rank must be at least 1")
        check(alpha > 0, "alpha", f"got {alpha!r}; must be positive")
        check(0 <= dropout < 1, "dropout", f"got {dropout!r}; must be in [0, 1)")
        self.r = r
        self.alpha = alpha
        self.dropout = dropout
        self.target_modules = list(target_modules)

    def _config(self, backbone: nn.Module) -> dict[str, Any]:
        return {"r": self.r, "lora_alpha": self.alpha, "lora_dropout": self.dropout,
                "target_modules": self.target_modules or default_targets(backbone)}

    def prepare(self, model: nn.Module) -> None:
        backbone = layer_view(model, self.name).backbone
        mark = {"r": self.r, "alpha": self.alpha, "dropout": self.dropout, "target_modules": self.target_modules}
        done = getattr(backbone, _MARK, None)
        if done is not None:
            if done != mark:
                raise ConfigError(f"the model already carries LoRA adapters with {done}; build a fresh model "
                                  f"for {mark}", "train.finetune")
            return
        cfg = self._config(backbone)
        if not cfg["target_modules"]:
            raise ConfigError(f"the backbone {type(backbone).__name__} has no nn.Linear layer for LoRA adapters",
                              "train.finetune")
        try:
            import peft
        except ImportError as exc:
            raise ConfigError("the 'lora' strategy needs the peft package: pip install 'transferkit[text]'",
                              "train.finetune.name") from exc
        flags = {id(p): p.requires_grad for p in backbone.parameters()}
        try:
            peft.inject_adapter_in_model(peft.LoraConfig(**cfg), backbone)
        except ValueError as exc:  # no module matched target_modules, or an unsupported layer type
            names = [n for n, m in backbone.named_modules() if isinstance(m, nn.Linear)][:8]
            raise ConfigError(f"cannot add LoRA adapters to {cfg['target_modules']}: {exc}. Linear layers of "
                              f"the backbone include: {', '.join(names)}", "train.finetune.params.target_modules") from None
        for p in backbone.parameters():  # peft froze the base weights; the loop owns trainability
            if id(p) in flags:
                p.requires_grad_(flags[id(p)])
        setattr(backbone, _MARK, mark)

    def setup(self, model: nn.Module, total_steps: int) -> list[GroupPlan]:
        view = layer_view(model, self.name)
        named = dict(view.backbone.named_parameters())
        if not any(is_lora_param(n) for n in named):
            raise ConfigError("the model has no LoRA adapters; LoRA.prepare(model) must run first", "train.finetune")
        adapters = [p for n, p in named.items() if is_lora_param(n)]
        ids = {id(p) for p in adapters}
        base = [p for p in view.backbone_params if id(p) not in ids]
        norms = [m for m in view.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        return [GroupPlan("backbone", base, trainable_from=None, modules=norms, backbone=True),
                GroupPlan("lora", adapters),
                GroupPlan("head", view.head_params)]
