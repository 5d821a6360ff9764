"""The contract of a fine-tuning strategy, the layer view of a model, and configs by name.

A :class:`Strategy` acts on the *model* (a ``backbone`` followed by new layers: bottleneck and
``head``) and is combinable with any adaptation method: the method's own parts (discriminators,
second heads) always train at the base learning rate in their own optimizer groups.

A strategy declares, once per run, a list of :class:`GroupPlan` (which parameters, their
learning-rate multiplier, from which step they train, or never), and optionally a regulariser added
to every update's loss. The loop (``transferkit.train.loop``) applies the plan:

- a parameter of a group that never trains (``trainable_from=None``) is left out of the optimizer
  and has ``requires_grad=False``, so neither its gradient step nor weight decay touches it;
- a group that starts training later (gradual unfreezing) is in the optimizer from the start but
  has ``requires_grad=False`` (so no gradient, no momentum, no weight decay: optimizers skip
  parameters without a gradient) until its step; the state is a pure function of the step, so a
  resumed run unfreezes at the same steps;
- while a group is frozen its modules run in evaluation mode: batch-norm running statistics stay
  fixed and dropout is off, so a frozen group is exactly a fixed feature extractor;
- a strategy only ever freezes: parameters the model itself built frozen stay frozen, and fit
  restores every ``requires_grad`` flag when it returns.

Layer groups come from ``backbone.layer_groups()`` (ordered input -> output) when the backbone has
it, else from the backbone's top-level children in order (a child without parameters, e.g. ReLU
or Dropout, joins the group before it; leading ones join the first group). Backbone parameters
outside every group join the first (input-side) group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from transferkit.core.errors import ConfigError

#: what ``train.finetune`` holds when nothing is set: today's full fine-tuning
DEFAULT_SPEC: dict[str, Any] = {"name": "full", "params": {}}


@dataclass
class GroupPlan:
    """One optimizer group of the model as a strategy declares it.

    ``lr_mult``: multiplier of the base learning rate (``backbone=True`` groups are also
    multiplied by ``train.backbone_lr_mult``); ``trainable_from``: first step at which the group
    trains (0 = always, ``None`` = never); ``modules``: run in evaluation mode while the group is
    frozen; ``weight_decay``: overrides ``train.weight_decay`` for the group when set.
    """

    name: str
    params: list[nn.Parameter]
    lr_mult: float = 1.0
    trainable_from: int | None = 0
    modules: list[nn.Module] = field(default_factory=list)
    backbone: bool = False
    weight_decay: float | None = None

    def trainable_at(self, step: int) -> bool:
        return self.trainable_from is not None and step >= self.trainable_from


@dataclass
class LayerView:
    """A model seen as layer groups of its backbone (input -> output) and the new layers.

    ``groups[i]``: the modules of group ``i``; ``group_params[i]``: their parameters (each
    parameter once); ``head_params``: parameters of the model outside the backbone."""

    backbone: nn.Module
    groups: list[list[nn.Module]]
    group_params: list[list[nn.Parameter]]
    head_params: list[nn.Parameter]

    @property
    def backbone_params(self) -> list[nn.Parameter]:
        return [p for ps in self.group_params for p in ps]


def _unique(params: Any, seen: set[int]) -> list[nn.Parameter]:
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def layer_view(model: nn.Module, strategy: str = "this strategy") -> LayerView:
    """Split ``model`` into backbone layer groups and new layers (see the module docstring)."""
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, nn.Module):
        raise ConfigError(f"fine-tuning strategy {strategy!r} needs a model with a 'backbone' module "
                          f"(a transferkit Classifier); {type(model).__name__} has none. Use 'full', or "
                          "build the model with transferkit.models.Classifier", "train.finetune")
    if callable(getattr(backbone, "layer_groups", None)):
        groups = [[m] for m in backbone.layer_groups()]
        if not groups or not all(isinstance(m, nn.Module) for g in groups for m in g):
            raise ConfigError(f"{type(backbone).__name__}.layer_groups() must return a non-empty list of "
                              "nn.Module (input -> output)", "model")
    else:
        groups = []
        pending: list[nn.Module] = []
        for child in backbone.children():
            if any(True for _ in child.parameters()):
                groups.append(pending + [child])
                pending = []
            elif groups:
                groups[-1].append(child)
            else:
                pending.append(child)
        if not groups:
            groups = [[backbone]]
        elif pending:
            groups[-1].extend(pending)
    seen: set[int] = set()
    group_params = [_unique((p for m in g for p in m.parameters()), seen) for g in groups]
    rest = _unique(backbone.parameters(), seen)
    group_params[0] = rest + group_params[0]
    head = _unique(model.parameters(), seen)
    return LayerView(backbone, groups, group_params, head)


class Strategy:
    """Base class of fine-tuning strategies.

    Subclasses: keyword-only hyper-parameters in ``__init__`` (store each under its own name;
    check them there, raising ``ConfigError(message, "<param>")``), the groups in :meth:`setup`,
    optionally a structural change in :meth:`prepare` and a regulariser in :meth:`regularizer`.
    """

    #: set by :func:`create_strategy`: the registry name
    name: str = "strategy"
    #: whether :meth:`regularizer` needs the batch's features (the labelled rows of the update)
    needs_features: ClassVar[bool] = False
    #: batch-norm layers in the backbone's layer groups keep their running statistics while their
    #: group trains (strategies with a ``freeze_bn`` parameter set it per instance)
    freeze_bn: bool = False

    def prepare(self, model: nn.Module) -> None:
        """Change the model's structure (e.g. insert adapters) before anything else. Must be
        idempotent: the loop may call it twice on the same model (data-parallel launch)."""

    def setup(self, model: nn.Module, total_steps: int) -> list[GroupPlan]:
        """Once per run, before the optimizer is built: the model's groups. May remember what the
        regulariser needs (e.g. a frozen copy of the pretrained weights)."""
        raise NotImplementedError

    def regularizer(self, model: nn.Module, features: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Named terms added to the loss of every update (already weighted). ``features``: the
        features of the update's labelled samples when :attr:`needs_features`, else None."""
        return {}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors a checkpoint must hold to resume exactly (e.g. the pretrained weights)."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state_dict` (called after :meth:`setup` when a run resumes)."""

    def extra_repr(self) -> str:
        from transferkit.core.params import get_params

        return ", ".join(f"{k}={v!r}" for k, v in get_params(self).items())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


def full_groups(model: nn.Module, weight_decay: float | None = None) -> list[GroupPlan]:
    """Every parameter trains: the model's own ``parameter_groups()`` when it has them (the
    ``backbone`` group takes ``train.backbone_lr_mult``), then any other parameter."""
    plans: list[GroupPlan] = []
    seen: set[int] = set()
    named = model.parameter_groups() if hasattr(model, "parameter_groups") else {"model": list(model.parameters())}
    for name, params in named.items():
        plans.append(GroupPlan(name, _unique(params, seen), backbone=name == "backbone", weight_decay=weight_decay))
    rest = _unique(model.parameters(), seen)
    if rest:
        plans.append(GroupPlan("model_other", rest, weight_decay=weight_decay))
    return plans


def layered_groups(view: LayerView, *, trainable_from: list[int | None], lr_mult: list[float],
                   weight_decay: float | None = None) -> list[GroupPlan]:
    """One plan per backbone layer group ``backbone.<i>`` (``i`` counted from the input), then
    ``head`` (the new layers, always trained at ``lr``)."""
    plans = [GroupPlan(f"backbone.{i}", ps, lr_mult=m, trainable_from=t, modules=list(mods), backbone=True,
                       weight_decay=weight_decay)
             for i, (ps, mods, t, m) in enumerate(zip(view.group_params, view.groups, trainable_from, lr_mult))]
    plans.append(GroupPlan("head", view.head_params, weight_decay=weight_decay))
    return plans


def finetune_spec(value: Any, path: str = "train.finetune") -> dict[str, Any]:
    """Validate a ``finetune`` setting and return it as ``{name, params}`` with bound params.

    Accepts a strategy name (``"lora"``) or ``{name: lora, params: {r: 4}}``; errors name the
    exact key path (``train.finetune.params.r``)."""
    from transferkit.core.params import bind_params

    if value is None:
        value = DEFAULT_SPEC
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise ConfigError(f"got {value!r}; expected a strategy name (e.g. linear_probe) or "
                          "{name: ..., params: {...}}", path)
    for k in value:
        if k not in ("name", "params"):
            raise ConfigError(f"unknown key {k!r}; a finetune setting has 'name' and 'params'", f"{path}.{k}")
    name = value.get("name")
    if not isinstance(name, str):
        raise ConfigError(f"missing or non-string 'name' (got {name!r}); e.g. name: gradual_unfreeze", f"{path}.name")
    cls = strategy_class(name, f"{path}.name")
    params = bind_params(cls, value.get("params") or {}, path=f"{path}.params")
    _construct(cls, name, params, path)  # runs the strategy's own checks now, before anything trains
    return {"name": name, "params": params}


def strategy_class(name: str, path: str = "train.finetune.name") -> type[Strategy]:
    """The registered strategy class ``name`` (unknown names get the closest known ones)."""
    from transferkit.core.registries import FINETUNE
    from transferkit.core.registry import suggest

    if name not in FINETUNE:
        choices = FINETUNE.names()
        raise ConfigError(f"unknown fine-tuning strategy {name!r}.{suggest(name, choices)} "
                          f"Known strategies: {', '.join(choices)}.", path)
    return FINETUNE.get(name)


def _construct(cls: type[Strategy], name: str, params: dict[str, Any], path: str) -> Strategy:
    try:
        obj = cls(**params)
    except ConfigError as exc:
        key = exc.path or ""
        msg = str(exc)[len(key) + 2:] if key and str(exc).startswith(f"{key}: ") else str(exc)
        raise ConfigError(msg, f"{path}.params.{key}" if key else path) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot create fine-tuning strategy {name!r}: {exc}", path) from exc
    obj.name = name
    return obj


def create_strategy(spec: Any = None, path: str = "train.finetune") -> Strategy:
    """A strategy from a ``finetune`` setting (name or ``{name, params}``; None = ``full``)."""
    spec = finetune_spec(spec, path)
    return _construct(strategy_class(spec["name"], f"{path}.name"), spec["name"], spec["params"], path)


def check(ok: bool, key: str, message: str) -> None:
    """Raise ``ConfigError(message, key)`` unless ``ok`` (for strategies' parameter checks)."""
    if not ok:
        raise ConfigError(message, key)
