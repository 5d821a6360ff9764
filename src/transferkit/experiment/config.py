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
    selection:                                # optional: pick one candidate without target labels
      validator: reverse                      # a registered validator (transferkit list validators)
      guard: {enabled: true, expected: source_prior}
      search: {n_trials: 10, space: {coral: {reg: {low: 0.01, high: 10, log: true}}}}
    report: {embedding: pca}                  # 2-D maps of the features: pca | auto | tsne | off
    share_source_training: false              # true: target-free deep runs train once per source

``name:`` fields are registry keys, ``params:`` are bound to the constructor's signature.
:func:`apply_overrides` applies ``key=value`` strings (dotted paths; list items by index or by
method name/label; values parsed as YAML). :func:`validate_config` reports the exact key path,
the bad value and the allowed ones before anything trains.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from transferkit.core.errors import ConfigError
from transferkit.core.registry import suggest
from transferkit.train.config import TrainConfig, keep_without_holdout

TOP_KEYS = ("name", "seed", "data", "model", "train", "methods", "selection", "report", "notes",
            "share_source_training")
METHOD_KEYS = ("name", "params", "train", "model", "label")
COMPONENT_KEYS = ("name", "params")
SELECTION_KEYS = ("validator", "params", "ensemble", "val_fraction", "fallback", "min_agreement",
                  "guard", "search")
GUARD_KEYS = ("enabled", "expected", "min_classes_fraction", "max_tv", "min_share_fraction")
SEARCH_KEYS = ("n_trials", "space", "sampler", "pruner", "storage", "seed", "timeout")
REPORT_KEYS = ("embedding", "max_points")
#: method names that train a classifier on the source alone (the default fallback of selection)
SOURCE_ONLY_NAMES = ("source_only", "logreg", "svm", "1nn")


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
class GuardSpec:
    """The collapse guard of selection (see :func:`transferkit.selection.check_collapse`).
    ``expected``: the class proportions the target predictions are compared with,
    ``source_prior`` (the source label frequencies) or ``uniform``."""

    enabled: bool = True
    expected: str = "source_prior"
    min_classes_fraction: float = 0.5
    max_tv: float | None = 0.5
    min_share_fraction: float = 0.2


@dataclass
class SearchSpec:
    """Validator-driven hyper-parameter search (Optuna): ``space`` maps a method label to its
    search space (see :func:`transferkit.selection.suggest_params`); ``n_trials`` per method and
    task; the study lives in ``storage`` (None: an SQLite file in the run folder). The objective is
    the selection's validator (the first one of a combined ``a+b`` validator, whose mean rank
    depends on the other candidates); collapsed trials score ``-inf``."""

    n_trials: int
    space: dict[str, dict[str, Any]]
    sampler: str = "tpe"
    pruner: str = "none"
    storage: str | None = None
    seed: int = 0
    timeout: float | None = None


@dataclass
class SelectionSpec:
    """The ``selection:`` section: after the runs of a task, every run is scored by label-free
    validators on held-out source samples (``val_fraction``) and the unlabelled target, the guard
    rejects collapsed runs and one run is picked by ``validator`` (a registered name, or ``a+b``:
    the mean rank over several). ``fallback``: the method label
    picked when every candidate is rejected or the validators disagree (below ``min_agreement``)."""

    validator: str
    params: dict[str, Any] = field(default_factory=dict)
    ensemble: list[str] | None = None
    val_fraction: float = 0.2
    fallback: str | None = None
    min_agreement: float | None = None
    guard: GuardSpec = field(default_factory=GuardSpec)
    search: SearchSpec | None = None


@dataclass
class ReportSpec:
    """The ``report:`` section: ``embedding`` = 2-D maps of source/target features before and after
    adaptation (``pca``, the default: a fraction of a second per map; ``auto``: t-SNE when the task
    has at most 2000 samples, PCA above; ``tsne``; ``off``) with at most ``max_points`` points each.
    t-SNE costs seconds per map on a CPU, and a benchmark draws one map per run."""

    embedding: str = "pca"
    max_points: int = 1000


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
    selection: SelectionSpec | None = None
    report: ReportSpec = field(default_factory=ReportSpec)
    #: deep runs of methods that read no target data (``source_only`` with any fine-tuning
    #: strategy) train once per distinct labelled source and are scored on every task sharing it
    share_source_training: bool = False


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
        raw = yaml.load(p.read_text(), Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: a config must be a mapping with keys {', '.join(TOP_KEYS)}")
    return raw


_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)$")


class _Loader(yaml.SafeLoader):
    """YAML 1.1 safe loader that also reads ``2e-5`` (exponent without a dot) as a number."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


def _parse_value(text: str) -> Any:
    # YAML 1.1 reads ``2e-5`` (no dot) as a string; a user typing it means the number
    try:
        return yaml.load(text, Loader=_Loader) if text != "" else ""  # noqa: S506
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


def _number(d: dict[str, Any], key: str, path: str, default: Any, *, low: float | None = None,
            high: float | None = None, integer: bool = False, allow_none: bool = False,
            what: str = "") -> Any:
    v = d.get(key, default)
    if v is None and allow_none:
        return None
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    if ok and integer:
        ok = float(v).is_integer()
    if ok and low is not None:
        ok = v >= low
    if ok and high is not None:
        ok = v <= high
    if not ok:
        kind = "an integer" if integer else "a number"
        rng = what or (f" in [{low}, {high}]" if low is not None and high is not None else
                       f" >= {low}" if low is not None else "")
        raise ConfigError(f"got {v!r}; expected {kind}{rng}{' or null' if allow_none else ''}",
                          f"{path}.{key}")
    return int(v) if integer else float(v)


def _validator_name(name: Any, path: str, *, combined: bool = False) -> str:
    from transferkit.selection._registry import VALIDATORS

    if not isinstance(name, str):
        raise ConfigError(f"got {name!r}; expected a validator name (transferkit list validators)", path)
    if combined and "+" in name:
        parts = [p.strip() for p in name.split("+")]
        if len(parts) < 2 or any(not p for p in parts) or len(set(parts)) != len(parts):
            raise ConfigError(f"got {name!r}; a combined validator is 'a+b' with distinct names", path)
        for p in parts:
            VALIDATORS.entry(p, path)
        return "+".join(parts)
    VALIDATORS.entry(name, path)
    return name


def _selection(d: Any, methods: list[MethodSpec], path: str = "selection") -> SelectionSpec:
    """Validate the ``selection:`` section (every error names its key path)."""
    from transferkit.core.params import bind_params
    from transferkit.selection._registry import VALIDATORS
    from transferkit.selection.candidates import DEFAULT_VALIDATOR
    from transferkit.selection.validators import is_pool_validator

    if d is None or d is True:
        d = {}
    d = _check_keys(d, SELECTION_KEYS, path)
    validator = _validator_name(d.get("validator", DEFAULT_VALIDATOR), f"{path}.validator",
                                combined=True)
    if "+" in validator:
        if d.get("params"):
            raise ConfigError("a combined validator takes no params; give one validator to set "
                              "its parameters", f"{path}.params")
        params: dict[str, Any] = {}
    elif is_pool_validator(validator) and d.get("params"):
        raise ConfigError(f"{validator!r} takes no params in a config (its reference is computed from "
                          "the runs)", f"{path}.params")
    else:
        params = bind_params(VALIDATORS.get(validator), d.get("params") or {}, path=f"{path}.params")
    ensemble = d.get("ensemble")
    if ensemble is not None:
        if not isinstance(ensemble, list):
            raise ConfigError(f"got {ensemble!r}; expected a list of validator names", f"{path}.ensemble")
        ensemble = [_validator_name(v, f"{path}.ensemble[{i}]") for i, v in enumerate(ensemble)]
    val_fraction = _number(d, "val_fraction", path, 0.2, what=" strictly between 0 and 1")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"got {val_fraction!r}; expected a fraction strictly between 0 and 1",
                          f"{path}.val_fraction")
    labels = [m.label for m in methods]
    fallback = d.get("fallback", "auto")
    if fallback == "auto":
        fallback = next((m.label for m in methods if m.name in SOURCE_ONLY_NAMES), None)
    elif fallback is not None:
        if fallback not in labels:
            raise ConfigError(f"got {fallback!r}; expected the label of one of the methods "
                              f"({', '.join(labels)}), 'auto' or null.{suggest(str(fallback), labels)}",
                              f"{path}.fallback")
    min_agreement = _number(d, "min_agreement", path, None, low=-1.0, high=1.0, allow_none=True)
    g = _check_keys(d.get("guard") or {}, GUARD_KEYS, f"{path}.guard")
    enabled = g.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"got {enabled!r}; expected true or false", f"{path}.guard.enabled")
    expected = g.get("expected", "source_prior")
    if expected not in ("source_prior", "uniform"):
        raise ConfigError(f"got {expected!r}; expected 'source_prior' or 'uniform'",
                          f"{path}.guard.expected")
    guard = GuardSpec(
        enabled=enabled, expected=expected,
        min_classes_fraction=_number(g, "min_classes_fraction", f"{path}.guard", 0.5, low=0.0, high=1.0),
        max_tv=_number(g, "max_tv", f"{path}.guard", 0.5, low=0.0, high=1.0, allow_none=True),
        min_share_fraction=_number(g, "min_share_fraction", f"{path}.guard", 0.2, low=0.0, high=1.0))
    search = None
    if d.get("search") is not None:
        if is_pool_validator(validator.split("+")[0]):
            raise ConfigError(f"{validator.split('+')[0]!r} compares a candidate with the whole pool of "
                              "candidates, so it cannot score one search trial (the search objective is the "
                              "first validator of the selection); put another validator first, e.g. "
                              f"'source_accuracy+{validator}'", f"{path}.validator")
        search = _search(d["search"], methods, f"{path}.search")
    return SelectionSpec(validator, params, ensemble, val_fraction, fallback, min_agreement, guard,
                         search)


def _search(d: Any, methods: list[MethodSpec], path: str) -> SearchSpec:
    from transferkit.core.params import describe_params
    from transferkit.core.registries import METHODS, SHALLOW
    from transferkit.selection.search import PRUNERS, SAMPLERS

    d = _check_keys(d, SEARCH_KEYS, path)
    if "n_trials" not in d:
        raise ConfigError("missing 'n_trials' (the number of trials per searched method and task)", path)
    n_trials = _number(d, "n_trials", path, None, low=1, integer=True)
    space = d.get("space")
    if not isinstance(space, dict) or not space:
        raise ConfigError("give the search space per method label, e.g. space: {coral: {reg: "
                          "{low: 0.01, high: 10, log: true}}}", f"{path}.space")
    by_label = {m.label: m for m in methods}
    for label, sp in space.items():
        where = f"{path}.space.{label}"
        if label not in by_label:
            raise ConfigError(f"no method labelled {label!r}.{suggest(str(label), list(by_label))} "
                              f"Methods: {', '.join(by_label)}.", where)
        if not isinstance(sp, dict) or not sp:
            raise ConfigError(f"got {sp!r}; expected a mapping parameter -> spec (a list of choices, "
                              "{low, high, log, step} or a fixed value)", where)
        m = by_label[label]
        known = describe_params((METHODS if m.kind == "deep" else SHALLOW).get(m.name))
        for pname in sp:
            if pname not in known:
                raise ConfigError(f"{m.name} has no parameter {pname!r}.{suggest(str(pname), list(known))} "
                                  f"Allowed: {', '.join(sorted(known))}.", f"{where}.{pname}")
        _check_space(sp, where)
    sampler = d.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise ConfigError(f"got {sampler!r}; expected one of {', '.join(SAMPLERS)}", f"{path}.sampler")
    pruner = d.get("pruner", "none")
    if pruner not in PRUNERS:
        raise ConfigError(f"got {pruner!r}; expected one of {', '.join(PRUNERS)}", f"{path}.pruner")
    storage = d.get("storage")
    if storage is not None and not isinstance(storage, str):
        raise ConfigError(f"got {storage!r}; expected a database URL (sqlite:///study.db, "
                          "postgresql://...), 'memory' or null", f"{path}.storage")
    seed = d.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"got {seed!r}; expected a non-negative integer", f"{path}.seed")
    timeout = _number(d, "timeout", path, None, low=0.0, allow_none=True)
    return SearchSpec(n_trials, space, sampler, pruner, storage, seed, timeout)


def _check_space(space: dict[str, Any], where: str) -> None:
    """Check a search space without Optuna: suggest_params run against a stub trial."""
    from transferkit.selection.search import suggest_params

    class _Stub:
        def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
            return choices[0]

        def suggest_int(self, name: str, low: int, high: int, **kw: Any) -> int:
            return low

        def suggest_float(self, name: str, low: float, high: float, **kw: Any) -> float:
            return low

    try:
        suggest_params(_Stub(), space)
    except ConfigError as exc:
        key = exc.path.split(".", 1)[1] if exc.path and "." in exc.path else exc.path
        msg = str(exc).split(": ", 1)[1] if exc.path else str(exc)
        raise ConfigError(msg, f"{where}.{key}" if key else where) from None


def _report(d: Any, path: str = "report") -> ReportSpec:
    from transferkit.assess.embedding import EMBEDDINGS

    d = _check_keys(d or {}, REPORT_KEYS, path)
    emb = d.get("embedding", "pca")
    if emb is False:
        emb = "off"
    if emb not in EMBEDDINGS:
        raise ConfigError(f"got {emb!r}; expected one of {', '.join(EMBEDDINGS)}", f"{path}.embedding")
    max_points = _number(d, "max_points", path, 1000, low=4, integer=True)
    return ReportSpec(emb, max_points)


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
    selection = _selection(raw["selection"], methods) if raw.get("selection") is not None else None
    if selection is None:  # under selection the validators' held-out split serves keep as well
        deep = [(i, s) for i, s in enumerate(methods) if s.kind == "deep"]
        for where, tc in ([("train", train)] if any(s.train is None for _, s in deep) else []) + \
                [(f"methods[{i}].train", s.train) for i, s in deep if s.train is not None]:
            if tc.keep != "last" and tc.val_fraction == 0:
                raise ConfigError(keep_without_holdout(tc.keep), f"{where}.keep")
    report = _report(raw.get("report"))
    share = raw.get("share_source_training", False)
    if not isinstance(share, bool):
        raise ConfigError(f"got {share!r}; expected true or false", "share_source_training")
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
    if selection is not None:
        resolved["selection"] = _selection_dict(selection)
    if raw.get("report") is not None:
        resolved["report"] = {"embedding": report.embedding, "max_points": report.max_points}
    if share:
        resolved["share_source_training"] = True
    return ExperimentConfig(resolved["name"], seed, data, model, train, methods, resolved,
                            str(raw.get("notes") or ""), selection, report, share)


def _selection_dict(s: SelectionSpec) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(s)
    if s.search is None:
        d.pop("search")
    return d


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read (or take the built-in default when ``path`` is None), override and validate."""
    raw = copy.deepcopy(DEFAULT_CONFIG) if path is None else load_config_file(path)
    return validate_config(apply_overrides(raw, overrides or []))
