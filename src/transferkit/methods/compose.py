"""Composition by configuration: several registered methods trained as one, their terms summed.

``{name: compose, params: {methods: [dann, {name: bsp, params: {trade_off: 1.0e-4}}]}}`` is
BSP+DANN (Chen et al., ICML 2019); ``[cdan, mcc]`` is CDAN+MCC (Jin et al., ECCV 2020).

Loss: ``sum over parts of their terms``; the source classification term ``cls`` is counted once
(the first part's), every other term keeps its name unless two parts use it, then it becomes
``"<part>.<term>"`` (``"<part>_<i>"`` when a method is listed twice).

One forward pass per step: while a composed method computes its terms, ``batch.extra`` holds a
per-step cache, and :func:`forward_cached` (what the alignment methods call instead of
``Method.forward_both``) returns the cached ``(logits_s, logits_t, features_s, features_t)`` for
the same model, so the parts share one graph, one set of dropout masks and one batch-norm update.
The cache is dropped when ``compute_loss`` returns, so it never outlives a parameter update.
Methods with their own update rule (``training_step``, e.g. MCD) cannot be composed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from transferkit.core.errors import ConfigError
from transferkit.core.registries import METHODS
from transferkit.methods.base import FORWARD_CACHE, Batch, Method, Step

Outputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]

#: kept for callers of the earlier name; the cache lives in ``Method.forward_both``
forward_cached = Method.forward_both


def _spec(item: Any, i: int) -> tuple[str, dict[str, Any]]:
    path = f"compose.params.methods[{i}]"
    if isinstance(item, str):
        return item, {}
    if isinstance(item, dict) and isinstance(item.get("name"), str) and set(item) <= {"name", "params"}:
        params = item.get("params") or {}
        if not isinstance(params, dict):
            raise ConfigError(f"got {params!r}; expected a mapping of parameters", f"{path}.params")
        return item["name"], params
    raise ConfigError(f"got {item!r}; expected a method name or {{name: ..., params: {{...}}}}", path)


@METHODS.register("compose", description="Sum of several methods' terms, one shared forward pass "
                  "(e.g. BSP+DANN, CDAN+MCC)")
class Compose(Method):
    """``methods``: the parts, each a registered name or ``{name, params}``."""

    def __init__(self, *, methods: list = ["dann", "bsp"]) -> None:  # noqa: B006 (copied, never mutated)
        super().__init__()
        self.methods = [dict(m) if isinstance(m, dict) else m for m in methods]
        if not self.methods:
            raise ConfigError("give at least one method to compose", "compose.params.methods")
        parts, labels = [], []
        for i, item in enumerate(self.methods):
            name, params = _spec(item, i)
            if name == "compose":
                raise ConfigError("compose cannot contain compose; list the methods directly",
                                  f"compose.params.methods[{i}]")
            part = METHODS.create(name, params, path=f"compose.params.methods[{i}]")
            if type(part).training_step is not Method.training_step:
                raise ConfigError(f"{name!r} has its own update rule (training_step) and cannot be composed",
                                  f"compose.params.methods[{i}]")
            parts.append(part)
            labels.append(name if name not in labels else f"{name}_{labels.count(name) + 1}")
        self.parts = nn.ModuleList(parts)
        self.labels = labels

    def setup(self, num_features: int, num_classes: int) -> None:
        super().setup(num_features, num_classes)
        for part in self.parts:
            part.setup(num_features, num_classes)

    def compute_loss(self, model: nn.Module, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
        owned = FORWARD_CACHE not in batch.extra
        if owned:
            batch.extra[FORWARD_CACHE] = {}  # type: ignore[assignment]
        try:
            per_part = [part.compute_loss(model, batch, step) for part in self.parts]
        finally:
            if owned:
                batch.extra.pop(FORWARD_CACHE, None)
        counts: dict[str, int] = {}
        for terms in per_part:
            for k in terms:
                if k != "cls":
                    counts[k] = counts.get(k, 0) + 1
        out: dict[str, torch.Tensor] = {}
        for label, terms in zip(self.labels, per_part):
            for k, v in terms.items():
                if k == "cls":
                    out.setdefault("cls", v)
                else:
                    out[f"{label}.{k}" if counts[k] > 1 else k] = v
        return out
