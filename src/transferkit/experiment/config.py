"""Experiment configs: YAML -> validated objects.

A config is data::

    name: digits-default
    seed: 0
    data: {name: digits, params: {tasks: mnist->uci}}
    model: {name: lenet, params: {}}          # backbone of the deep methods
    train: {steps: 1500, batch_size: 64}      # the loop's settings (TrainConfig)
    methods:
      - source_only                           # a bare name, or
      - {name: coral, params: {estimator: logreg}}
      - {name: dann, params: {trade_off: 1.0}, train: {steps: 2000}, label: dann-long}

``name:`` fields are registry keys, ``params:`` are bound to the constructor's signature.
:func:`apply_overrides` applies ``key=value`` strings (dotted paths; list items by index or by
method name/label; values parsed as YAML). :func:`validate_config` reports the exact key path,
the bad value and the allowed ones before anything trains.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from transferkit.core.errors import ConfigError
from transferkit.core.registry import suggest
from transferkit.train.config import TrainConfig

TOP_KEYS = ("name", "seed", "data", "model", "train", "methods", "notes")
METHOD_KEYS = ("name", "params", "train", "model", "label")
COMPONENT_KEYS = ("name", "params")


@dataclass
class ComponentSpec:
    """A registry name with its parameters."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodSpec:
    """A method to run: its registry name, params, optional per-method train/model overrides
    and the label it carries in reports (defaults to the name)."""

    name: str
    kind: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig | None = None
    model: ComponentSpec | None = None


@dataclass
class ExperimentConfig:
    """A validated experiment. ``raw`` is the resolved dictionary written into the report."""

    name: str
    seed: int
    data: ComponentSpec
    model: ComponentSpec
    train: TrainConfig
    methods: list[MethodSpec]
    raw: dict[str, Any]
    notes: str = ""


#: the built-in default experiment: digits MNIST -> UCI with source-only, CORAL and DANN
DEFAULT_CONFIG: dict[str, Any] = {
    "name": "digits-default",
    "seed": 0,
    "data": {"name": "digits", "params": {"tasks": "mnist->uci"}},
    "model": {"name": "lenet", "params": {}},
    "train": {"steps": 1500, "batch_size": 64, "lr": 0.01, "log_every": 50, "eval_every": 250,
              "checkpoint_every": 250},
    "methods": [
        {"name": "source_only"},
        # on raw pixels CORAL needs the mean shift removed too and a non-linear classifier
        {"name": "coral", "params": {"estimator": "1nn", "align_mean": True}},
        # the discriminator as wide as LeNet's 500 features
        {"name": "dann", "params": {"trade_off": 1.0, "disc_hidden": 500}},
    ],
}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML config; a missing file or bad YAML raises ConfigError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist; give the path to a YAML file "
                          "(see configs/ for examples)")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: a config must be a mapping with keys {', '.join(TOP_KEYS)}")
    return raw


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides to a copy of ``raw``. List items are addressed by index
    (``methods.1.params.reg=2``) or by method name/label (``methods.dann.params.trade_off=0.3``);
    missing mappings are created."""
    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.steps=200)")
        key, text = item.split("=", 1)
        parts = [k for k in key.strip().split(".") if k]
        if not parts:
            raise ConfigError(f"override {item!r} has an empty key")
        value = _parse_value(text)
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            where = ".".join(parts[: i + 1])
            if isinstance(node, list):
                idx = _list_index(node, part, where)
                if last:
                    node[idx] = value
                else:
                    if isinstance(node[idx], str):  # bare method name -> mapping
                        node[idx] = {"name": node[idx]}
                    node = node[idx]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:
                        node[part] = {}
                    node = node[part]
            else:
                raise ConfigError(f"cannot set {key!r}: {'.'.join(parts[:i])!r} is a value, not a section", key)
    return out


def _list_index(node: list[Any], part: str, where: str) -> int:
    if part.lstrip("-").isdigit():
        idx = int(part)
        if not -len(node) <= idx < len(node):
            raise ConfigError(f"index {idx} is out of range (the list has {len(node)} items)", where)
        return idx
    for i, item in enumerate(node):
        name = item if isinstance(item, str) else (item or {}).get("label") or (item or {}).get("name")
        if name == part:
            return i
    names = [i if isinstance(i, str) else (i or {}).get("label") or (i or {}).get("name") for i in node]
    raise ConfigError(f"no item named {part!r}.{suggest(part, [str(n) for n in names])} "
                      f"Items: {', '.join(map(str, names))}.", where)


def _check_keys(d: Any, allowed: tuple[str, ...], path: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ConfigError(f"expected a mapping with keys {', '.join(allowed)}; got {d!r}", path)
    for k in d:
        if k not in allowed:
            raise ConfigError(f"unknown key {k!r}.{suggest(str(k), list(allowed))} "
                              f"Allowed: {', '.join(allowed)}.", f"{path}.{k}" if path else str(k))
    return d


def _component(d: Any, path: str, registry: Any) -> ComponentSpec:
    if isinstance(d, str):
        d = {"name": d}
    d = _check_keys(d, COMPONENT_KEYS, path)
    if "name" not in d:
        raise ConfigError("missing 'name'", path)
    entry = registry.entry(d["name"], f"{path}.name")
    from transferkit.core.params import bind_params

    params = bind_params(entry.obj, d.get("params") or {}, path=f"{path}.params")
    return ComponentSpec(d["name"], params)


def validate_config(raw: dict[str, Any]) -> ExperimentConfig:
    """Check every key, name and parameter of a raw config and return the validated objects.
    Nothing is trained or loaded (beyond imports of the registries)."""
    from transferkit.core.params import bind_params
    from transferkit.core.registries import DATASETS, METHODS, MODELS, SHALLOW, method_kind

    raw = _check_keys(copy.deepcopy(raw), TOP_KEYS, "")
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"got {seed!r}; expected a non-negative integer", "seed")
    if "data" not in raw:
        raise ConfigError("missing 'data' (e.g. data: {name: digits})", "data")
    data = _component(raw["data"], "data", DATASETS)
    model = _component(raw.get("model") or DEFAULT_CONFIG["model"], "model", MODELS)
    train = TrainConfig.from_dict(raw.get("train"), "train")
    methods_raw = raw.get("methods")
    if not methods_raw or not isinstance(methods_raw, list):
        raise ConfigError("give a non-empty list of methods (e.g. methods: [source_only, dann])", "methods")
    methods: list[MethodSpec] = []
    labels: set[str] = set()
    for i, m in enumerate(methods_raw):
        path = f"methods[{i}]"
        if isinstance(m, str):
            m = {"name": m}
        m = _check_keys(m, METHOD_KEYS, path)
        if "name" not in m:
            raise ConfigError("missing 'name'", path)
        try:
            kind = method_kind(m["name"])
        except ConfigError as exc:
            raise ConfigError(str(exc), f"{path}.name") from None
        registry = METHODS if kind == "deep" else SHALLOW
        params = bind_params(registry.get(m["name"]), m.get("params") or {}, path=f"{path}.params")
        label = str(m.get("label") or m["name"])
        if label in labels:
            raise ConfigError(f"two methods are labelled {label!r}; give each a distinct 'label'", path)
        labels.add(label)
        mtrain = None
        if m.get("train"):
            if kind == "shallow":
                raise ConfigError("shallow methods take no train settings", f"{path}.train")
            mtrain = TrainConfig.from_dict({**train.to_dict(), **_check_keys(
                m["train"], tuple(TrainConfig.__dataclass_fields__), f"{path}.train")}, f"{path}.train")
        mmodel = _component(m["model"], f"{path}.model", MODELS) if m.get("model") else None
        methods.append(MethodSpec(m["name"], kind, label, params, mtrain, mmodel))
    resolved = {
        "name": str(raw.get("name") or "experiment"), "seed": seed,
        "data": {"name": data.name, "params": data.params},
        "model": {"name": model.name, "params": model.params},
        "train": train.to_dict(),
        "methods": [{"name": s.name, "label": s.label, "kind": s.kind, "params": s.params,
                     **({"train": s.train.to_dict()} if s.train else {}),
                     **({"model": {"name": s.model.name, "params": s.model.params}} if s.model else {})}
                    for s in methods],
    }
    return ExperimentConfig(resolved["name"], seed, data, model, train, methods, resolved,
                            str(raw.get("notes") or ""))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read (or take the built-in default when ``path`` is None), override and validate."""
    raw = copy.deepcopy(DEFAULT_CONFIG) if path is None else load_config_file(path)
    return validate_config(apply_overrides(raw, overrides or []))
