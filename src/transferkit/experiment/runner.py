"""Run every method of a config on every task and collect one :class:`ExperimentResult`.

Layout of an output folder::

    OUT/report.json, report.md, report.html
    OUT/runs/<task>/<label>/result.json     # one finished run (reused when the config matches)
    OUT/runs/<task>/<label>/checkpoint.pt   # the deep loop's last checkpoint (resume)
    OUT/runs/_shared_source/<key>/           # with share_source_training: a target-free model
                                            # trained once per source (model.pt, fit.json)

A finished run is never recomputed and an interrupted one resumes from its checkpoint, so a
crashed or killed experiment loses no work. Target labels are used only to measure accuracy.

With a ``selection:`` section every run of a task is fitted on the same training part of the
source (``selection.val_fraction`` of it, stratified, is held out), scored right after fitting by
every registered label-free validator on the held-out source and the unlabelled target, and one
run per task is then picked by :func:`transferkit.selection.select` (collapse guard first). A
``selection.search`` adds validator-driven Optuna trials of the listed methods as candidates.
The report's oracle column (target accuracy) is shown beside the pick and never used for it.

With ``share_source_training: true`` a deep run whose method reads no target data (``source_only``
with any fine-tuning strategy; not under ``selection:``) is trained once per distinct labelled
source -- same source rows, classes, method, model and training settings -- and that model is
scored on every task sharing the source (B->D, B->E, B->K: one training). Its seed derives from
that source key instead of the task, and it keeps no per-task target-accuracy curve.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from transferkit.core.errors import TransferkitError
from transferkit.core.seed import derive_seed, seed_everything
from transferkit.data.dataset import SOURCE, Task
from transferkit.experiment.config import ExperimentConfig, MethodSpec, SelectionSpec
from transferkit.experiment.result import ExperimentResult, RunResult

Split = tuple[np.ndarray, np.ndarray]


def versions() -> dict[str, str]:
    """Versions of Python, transferkit and the main libraries (only those already imported or
    cheap to query through package metadata)."""
    from importlib import metadata

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("transferkit", "numpy", "scipy", "scikit-learn", "torch", "lightning-fabric"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


#: a run's probabilities on the unlabelled target part, kept beside result.json under selection
TARGET_PROBS_FILE = "target_probs.npy"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text.replace("->", "-to-")).strip("_") or "run"


def _run_dir(out: Path, task_name: str, label: str) -> Path:
    """The folder of one run (``result.json``, ``checkpoint.pt``, ``target_probs.npy``)."""
    return out / "runs" / _slug(task_name) / _slug(label)


def _keep_target_probs(run: RunResult, probs: np.ndarray | None) -> RunResult:
    """Attach a run's target probabilities (under selection) to it, as float32, without making them
    part of its serialised result: :func:`_run_one` writes them to ``target_probs.npy``."""
    if probs is not None:
        run.target_probs = np.asarray(probs, dtype=np.float32)  # type: ignore[attr-defined]
    return run


def _published(task: Task, method: str) -> tuple[float | None, str | None]:
    if not task.benchmark:
        return None, None
    try:
        from transferkit.data.reference import published
    except ImportError:  # pragma: no cover - reference table module always ships
        return None, None
    hit = published(task.reference or task.benchmark, task.name, method)
    return (hit[0], hit[1]) if hit else (None, None)


def _with_defaults(kind: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` over the registered defaults of ``name`` (values JSON cannot hold stand as their
    type's name, so the fingerprint stays stable across processes)."""
    from transferkit.core.registries import METHODS, MODELS, SHALLOW

    reg = {"deep": METHODS, "shallow": SHALLOW, "model": MODELS}.get(kind)
    try:
        defaults = reg.entry(name, kind).defaults() if reg is not None else {}
    except TransferkitError:  # an unknown name fails elsewhere, with its own message
        defaults = {}

    def stable(v: Any) -> Any:
        if v is None or isinstance(v, (str, int, float, bool)):
            return v
        if isinstance(v, (list, tuple)):
            return [stable(x) for x in v]
        if isinstance(v, dict):
            return {str(k): stable(x) for k, x in v.items()}
        return type(v).__qualname__

    return {k: stable(v) for k, v in {**defaults, **params}.items()}


def _run_settings(cfg: ExperimentConfig, spec: MethodSpec) -> list[Any]:
    """What a run computes from, besides its data and seed: the method with every parameter at its
    current default (a changed default changes the run), and for deep runs the model likewise and
    the training settings (logging and checkpoint cadence left out: they do not change the model)."""
    parts: list[Any] = [spec.name, _with_defaults(spec.kind, spec.name, spec.params)]
    if spec.kind != "deep":
        return parts + [None, None]
    train = (spec.train or cfg.train).to_dict()
    for k in ("progress", "log_every", "eval_every", "checkpoint_every"):
        train.pop(k, None)
    if train.get("augment") == "none":  # the default: runs made before the setting existed stay reusable
        train.pop("augment")
    if train.get("keep") == "last":  # likewise; keep_every only matters with another keep
        train.pop("keep")
        train.pop("keep_every", None)
    model = spec.model or cfg.model
    return parts + [[model.name, _with_defaults("model", model.name, model.params)], train]


def _fingerprint(cfg: ExperimentConfig, spec: MethodSpec, task: Task) -> str:
    from transferkit.train.loop import config_fingerprint

    # which other tasks the data section lists does not change this task's run (its seed derives
    # from the experiment seed, the task and the method), so a single-task run is reused later
    data = dict(cfg.raw["data"])
    if isinstance(data.get("params"), dict):
        data["params"] = {k: v for k, v in data["params"].items() if k != "tasks"}
    parts: list[Any] = [cfg.seed, data, task.name, *_run_settings(cfg, spec)]
    if _shares_source(cfg, spec):  # another seed (from the source) and no target curve
        parts.append("share_source_training")
    if cfg.selection is not None:  # another training split; scores of every validator are stored,
        sel = cfg.selection        # so only a validator with non-default params changes them
        parts.append({"selection": [sel.val_fraction] +
                      ([sel.validator, sel.params] if sel.params else [])})
    # report.embedding is left out on purpose: a plot setting must not retrain a model (a reused
    # run keeps the feature map drawn when it was trained)
    return config_fingerprint(*parts)


SHARED_SOURCE_DIR = "_shared_source"


def _shares_source(cfg: ExperimentConfig, spec: MethodSpec) -> bool:
    """Whether ``spec`` trains once per source (``share_source_training``; target-free deep method)."""
    from transferkit.core.registries import METHODS

    return (cfg.share_source_training and spec.kind == "deep" and cfg.selection is None
            and not METHODS.get(spec.name).uses_target)


def _source_key(cfg: ExperimentConfig, spec: MethodSpec, task: Task) -> str:
    """What a target-free run's model depends on: the labelled source rows, the classes, the
    method, the model and the training settings (never the target or the task's name)."""
    from transferkit.models.cache import data_sha256
    from transferkit.train.loop import config_fingerprint

    src = task.train.is_source
    rows = [data_sha256(task.train.x[src]), data_sha256(task.train.y[src])]
    return config_fingerprint(cfg.seed, rows, list(task.train.classes), *_run_settings(cfg, spec))


def _fit_shared(model: Any, method: Any, task: Task, tr_idx: np.ndarray, train_cfg: Any, key: str, seed: int,
                folder: Path | None, memo: dict[str, Any], desc: str,
                callbacks: Iterable[Callable[[int, dict[str, float]], None]] = (),
                select_fn: Callable[[Any], float] | None = None) -> tuple[Any, bool]:
    """Train ``model`` on the task's labelled source rows ``tr_idx`` once per ``key`` (with
    ``seed``), or load the weights trained for an earlier task with the same source. With a
    ``folder`` the weights live there alone (``memo`` keeps only the fit record, so an experiment
    sharing many models holds none of them in memory); without, ``memo`` keeps them. Returns
    ``(fit result, reused)``."""
    import torch
    from torch import nn

    from transferkit.finetune.base import create_strategy
    from transferkit.train.loop import FitResult, fit

    bundle = nn.ModuleDict({"model": model, "method": method})
    if key not in memo and folder is not None and (folder / "model.pt").is_file():
        saved = json.loads((folder / "fit.json").read_text())
        saved["keep_scores"] = {int(k): v for k, v in saved.get("keep_scores", {}).items()}  # JSON keys are text
        memo[key] = (None, FitResult(**saved))
    if key in memo:
        state, fr = memo[key]
        if state is None:
            state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)  # type: ignore[operator]
        create_strategy(train_cfg.finetune).prepare(model)  # adapters (LoRA) exist before the weights load
        bundle.load_state_dict(state)
        return fr, True
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    fr = fit(model, method, task.train.subset(tr_idx), train_cfg, seed=seed,
             checkpoint_path=(folder / "checkpoint.pt") if folder is not None and train_cfg.checkpoint_every else None,
             fingerprint=key, select_fn=select_fn, callbacks=list(callbacks), desc=desc)
    if folder is not None:
        torch.save(bundle.state_dict(), folder / "model.tmp")
        (folder / "model.tmp").replace(folder / "model.pt")
        (folder / "fit.json").write_text(json.dumps(asdict(fr), default=float))
        memo[key] = (None, fr)
    else:
        memo[key] = ({k: v.detach().clone() for k, v in bundle.state_dict().items()}, fr)
    return fr, False


def selection_split(task: Task, sel: SelectionSpec, seed: int) -> Split:
    """The held-out source split shared by every run of ``task`` under selection: indices into
    ``task.train`` of the source rows used for fitting and of those held out for the validators."""
    from transferkit.selection.candidates import stratified_holdout

    src_idx = np.flatnonzero(task.train.is_source)
    tr, va = stratified_holdout(task.train.y[src_idx], sel.val_fraction,
                                derive_seed(seed, task.name, "selection") % (2**31))
    return src_idx[tr], src_idx[va]


def _validator_params(sel: SelectionSpec) -> dict[str, Any]:
    """Every registered validator with default parameters; the selection's validator with its own."""
    from transferkit.selection._registry import VALIDATORS
    from transferkit.selection.validators import is_pool_validator

    # a pool validator is not a per-run score: select_runs computes it from every run's target_probs
    out: dict[str, Any] = {v: None for v in VALIDATORS.names() if not is_pool_validator(v)}
    if "+" not in sel.validator and not is_pool_validator(sel.validator):
        out[sel.validator] = dict(sel.params) or None
    return out


def _selection_record(cand: dict[str, Any], sel: SelectionSpec) -> dict[str, Any]:
    """What a run keeps for selection: validator scores and its predicted target proportions."""
    from transferkit.selection.candidates import score_all

    scores = score_all(cand, _validator_params(sel))
    tp = cand["target_probs"]
    K = tp.shape[1]
    pi = np.bincount(tp.argmax(axis=1), minlength=K) / max(len(tp), 1)
    return {"scores": {k: (float(v) if np.isfinite(v) else None) for k, v in scores.items()},
            "predicted_proportions": [float(x) for x in pi],
            "mean_confidence": float(tp.max(axis=1).mean()) if len(tp) else None,
            "n_val": len(cand["source_labels"]), "n_target": len(tp)}


def _embedding(task: Task, fs: np.ndarray, ft: np.ndarray, cfg: ExperimentConfig,
               n_source: int, n_target: int) -> dict[str, Any] | None:
    """2-D map of already subsampled features (``fs``, ``ft``); the method is chosen from the
    full sizes (t-SNE up to 2000 samples under ``auto``). None when it cannot be drawn."""
    from transferkit.assess.embedding import embed_2d, resolve_method

    method = resolve_method(cfg.report.embedding, n_source + n_target)
    try:
        emb = embed_2d(fs, ft, method=method, max_points=max(cfg.report.max_points, len(fs) + len(ft)),
                       seed=derive_seed(cfg.seed, task.name, "embedding") % (2**31))
    except TransferkitError:
        return None
    emb["n_source"], emb["n_target"] = int(n_source), int(n_target)
    return emb


def _embedding_rows(task: Task, cfg: ExperimentConfig) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``task.train`` of the source and target rows drawn in the feature maps (the same
    rows for every run of the task, so the maps are comparable)."""
    gen = np.random.default_rng(derive_seed(cfg.seed, task.name, "embedding rows") % (2**31))
    src = np.flatnonzero(task.train.is_source)
    tgt = np.flatnonzero(~task.train.is_source)
    half = cfg.report.max_points // 2
    return (np.sort(gen.choice(src, size=min(half, len(src)), replace=False)),
            np.sort(gen.choice(tgt, size=min(half, len(tgt)), replace=False)))


def input_embedding(task: Task, cfg: ExperimentConfig) -> dict[str, Any] | None:
    """The 2-D map of the task's input features (before adaptation)."""
    if cfg.report.embedding == "off":
        return None
    rs, rt = _embedding_rows(task, cfg)
    x = task.train.x.reshape(len(task.train.x), -1)
    return _embedding(task, x[rs], x[rt], cfg, int(task.train.is_source.sum()),
                      int((~task.train.is_source).sum()))


def _source_split(task: Task, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified indices (train, validation) of the task's source samples."""
    src_idx = np.flatnonzero(task.train.is_source)
    if fraction <= 0:
        return src_idx, src_idx[:0]
    rng = np.random.default_rng(seed)
    ys = task.train.y[src_idx]
    val: list[np.ndarray] = []
    for c in np.unique(ys):
        idx = src_idx[ys == c]
        k = int(round(len(idx) * fraction))
        if 0 < k < len(idx):
            val.append(rng.choice(idx, size=k, replace=False))
    v = np.sort(np.concatenate(val)) if val else src_idx[:0]
    return np.setdiff1d(src_idx, v), v


def run_shallow(task: Task, spec: MethodSpec, seed: int, *, cfg: ExperimentConfig | None = None,
                split: Split | None = None) -> RunResult:
    """Fit a shallow estimator on flattened features and evaluate it on the labelled target split.

    With ``split`` (selection) the estimator is fitted on the training part of the source only and
    scored by the validators on the held-out part; with ``cfg`` its features are mapped to 2-D."""
    from transferkit.core.registries import SHALLOW
    from transferkit.train.loop import check_domains, classification_summary

    est = SHALLOW.create(spec.name, spec.params, path=f"methods.{spec.label}")
    check_domains(task.train, spec.label, getattr(est, "uses_target", True),
                  "a source-only baseline (logreg, svm or 1nn; deep: source_only)")
    if "random_state" in est.get_params():
        est.set_params(random_state=derive_seed(seed, task.name, spec.label) % (2**31))
    X, y, sd = task.train.to_numpy()
    fit_rows = np.arange(len(X)) if split is None else \
        np.concatenate([split[0], np.flatnonzero(~task.train.is_source)])
    t0 = time.perf_counter()
    est.fit(X[fit_rows], y[fit_rows], sample_domain=sd[fit_rows])
    t_fit = time.perf_counter() - t0
    metrics: dict[str, float] = {}
    extra: dict[str, Any] = {}
    probs = None  # target probabilities, kept under selection
    t1 = time.perf_counter()
    if task.has_test:
        pred = est.predict(task.x_test.reshape(len(task.x_test), -1))
        s = classification_summary(task.y_test, np.asarray(pred, dtype=np.int64), task.num_classes)
        metrics["target_accuracy"] = s["accuracy"]
        extra = {"per_class_accuracy": s["per_class"], "confusion": s["confusion"]}
    timings = {"fit": t_fit, "evaluate": time.perf_counter() - t1}
    if cfg is not None and cfg.selection is not None and split is not None:
        from transferkit.selection.candidates import predict_candidate

        t2 = time.perf_counter()
        cand = predict_candidate(est, spec.label, X[split[1]], y[split[1]], X[sd < 0], task.num_classes)
        extra["selection"] = _selection_record(cand, cfg.selection)
        probs = cand["target_probs"]
        metrics["source_accuracy"] = 100.0 * float(np.mean(cand["source_probs"].argmax(1) == y[split[1]]))
        timings["validate"] = time.perf_counter() - t2
    if cfg is not None and cfg.report.embedding != "off":
        from transferkit.selection.candidates import model_features

        if callable(getattr(est, "transform", None)):
            rs, rt = _embedding_rows(task, cfg)
            extra["embedding"] = _embedding(task, model_features(est, X[rs]), model_features(est, X[rt]),
                                            cfg, int((sd >= 0).sum()), int((sd < 0).sum()))
        else:  # the estimator classifies the input itself: its map is the input map
            extra["embedding"] = {"same_as_input": True}
    return _keep_target_probs(RunResult(task=task.name, method=spec.label, kind="shallow", params=spec.params,
                                        metrics=metrics, timings=timings, **extra), probs)


def deep_outputs(model: Any, x: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities, features)`` of a deep classifier on ``x``, in evaluation mode (float64)."""
    import torch

    from transferkit.train.loop import predict_outputs

    logits, feats = predict_outputs(model, x, batch_size)
    if logits.numel() == 0:
        return np.zeros((0, 0)), np.zeros((0, 0))
    return (torch.softmax(logits, dim=1).numpy().astype(np.float64), feats.numpy().astype(np.float64))


def run_deep(task: Task, spec: MethodSpec, cfg: ExperimentConfig, run_dir: Path | None,
             fingerprint: str, callbacks: Iterable[Callable[[int, dict[str, float]], None]] = (),
             split: Split | None = None, shared: dict[str, Any] | None = None) -> RunResult:
    """Train a deep method with the one loop and evaluate it on the labelled target split.

    ``split`` (selection): the source rows to train on and those held out for the validators
    (instead of ``train.val_fraction``). ``shared``: models trained once per source
    (``share_source_training``), kept across the tasks of one experiment."""
    import torch

    from transferkit.core.registries import METHODS
    from transferkit.models import create_model
    from transferkit.selection.candidates import mixup_arrays
    from transferkit.train.loop import evaluate, fit

    train_cfg = spec.train or cfg.train
    model_spec = spec.model or cfg.model
    source_key = _source_key(cfg, spec, task) if _shares_source(cfg, spec) else None
    run_seed = derive_seed(cfg.seed, task.name, spec.label) if source_key is None else \
        derive_seed(0, "shared-source", source_key)
    torch.manual_seed(run_seed)
    model = create_model(model_spec.name, task.train.sample_shape, task.num_classes, model_spec.params,
                         path="model")
    method = METHODS.create(spec.name, spec.params, path=f"methods.{spec.label}")
    method.setup(model.num_features, task.num_classes)
    tr_idx, val_idx = split if split is not None else _source_split(task, train_cfg.val_fraction, run_seed)
    select_fn = None
    if train_cfg.keep != "last" and len(val_idx):   # none held out: fit says what to set

        def select_fn(m: Any) -> float:
            return evaluate(m, task.train.x[val_idx], task.train.y[val_idx], task.num_classes)["accuracy"]
    reused = False
    if source_key is None:
        train_ds = task.train.subset(np.concatenate([tr_idx, np.flatnonzero(~task.train.is_source)]))
        eval_fn = None
        if task.has_test and train_cfg.eval_every:
            def eval_fn(m: Any) -> dict[str, float]:
                return {"target_accuracy": evaluate(m, task.x_test, task.y_test, task.num_classes)["accuracy"]}

        fr = fit(model, method, train_ds, train_cfg, seed=run_seed,
                 checkpoint_path=(run_dir / "checkpoint.pt") if run_dir and train_cfg.checkpoint_every else None,
                 fingerprint=fingerprint, eval_fn=eval_fn, select_fn=select_fn, callbacks=list(callbacks),
                 desc=f"{task.name} {spec.label}")
    else:
        folder = run_dir.parent.parent / SHARED_SOURCE_DIR / source_key if run_dir is not None else None
        fr, reused = _fit_shared(model, method, task, tr_idx, train_cfg, source_key, run_seed, folder,
                                 shared if shared is not None else {}, f"{task.train.domain_names.get(SOURCE, 'source')} "
                                 f"{spec.label} (shared by the tasks of this source)", callbacks, select_fn)
    t1 = time.perf_counter()
    metrics: dict[str, float] = {}
    extra: dict[str, Any] = {}
    probs = None  # target probabilities, kept under selection
    if len(val_idx):
        metrics["source_accuracy"] = evaluate(model, task.train.x[val_idx], task.train.y[val_idx],
                                              task.num_classes)["accuracy"]
    if task.has_test:
        s = evaluate(model, task.x_test, task.y_test, task.num_classes)
        metrics["target_accuracy"] = s["accuracy"]
        extra = {"per_class_accuracy": s["per_class"], "confusion": s["confusion"]}
    timings = {"fit": 0.0 if reused else fr.seconds, "fit_cpu": 0.0 if reused else fr.cpu_seconds,
               "evaluate": time.perf_counter() - t1}
    if source_key is not None:  # the one training shared by the tasks of this source
        timings["shared_fit"], timings["shared_fit_cpu"] = fr.seconds, fr.cpu_seconds
    if fr.resumed_from is not None:
        metrics["resumed_from_step"] = float(fr.resumed_from)
    if fr.kept_step is not None:
        metrics["kept_step"] = float(fr.kept_step)
    if cfg.selection is not None and split is not None and len(val_idx):
        t2 = time.perf_counter()
        ps, fs = deep_outputs(model, task.train.x[val_idx])
        tgt = np.flatnonzero(~task.train.is_source)
        pt, ft = deep_outputs(model, task.train.x[tgt])
        cand = {"name": spec.label, "source_probs": ps, "source_labels": task.train.y[val_idx],
                "target_probs": pt, "source_features": fs, "target_features": ft,
                **mixup_arrays(lambda x: deep_outputs(model, x)[0], task.train.x[tgt])}
        extra["selection"] = _selection_record(cand, cfg.selection)
        probs = pt
        timings["validate"] = time.perf_counter() - t2
    if cfg.report.embedding != "off":
        rs, rt = _embedding_rows(task, cfg)
        _, fs = deep_outputs(model, task.train.x[rs])
        _, ft = deep_outputs(model, task.train.x[rt])
        extra["embedding"] = _embedding(task, fs, ft, cfg, int(task.train.is_source.sum()),
                                        int((~task.train.is_source).sum()))
    return _keep_target_probs(RunResult(task=task.name, method=spec.label, kind="deep", params=spec.params,
                                        metrics=metrics, history=fr.history, timings=timings, **extra), probs)


def _feature_cache_summary(log: Any) -> str:
    """One line per encoded part of a task (frozen-encoder features): extracted, or read from the
    feature cache with both timings and their ratio (``EncodedInputs.log``)."""
    if not isinstance(log, dict):
        return ""
    parts = [f"{part}: {info['summary']}" for part, info in log.items()
             if isinstance(info, dict) and info.get("summary")]
    return "; ".join(parts)


def run_experiment(cfg: ExperimentConfig, out_dir: str | Path | None = None, *, progress: bool = True,
                   write: bool = True, callbacks: Iterable[Callable[[int, dict[str, float]], None]] = ()
                   ) -> ExperimentResult:
    """Run every method of ``cfg`` on every task of its data set; write the report to ``out_dir``.

    Failures of one run (bad data for that method, divergence) are recorded in the result with
    their message and the other runs go on; finished runs in ``out_dir`` are reused."""
    from tqdm.auto import tqdm

    from transferkit.core.registries import DATASETS

    seed_everything(cfg.seed)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    data_params = dict(cfg.data.params or {})
    if not progress and "progress" in DATASETS.entry(cfg.data.name, "data").defaults():
        data_params.setdefault("progress", False)  # no feature-extraction bars either
    data = DATASETS.create(cfg.data.name, data_params, path="data")
    result = ExperimentResult(name=cfg.name, config=cfg.raw, seed=cfg.seed, versions=versions(),
                              created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    names = data.task_names()
    shared: dict[str, Any] = {}  # share_source_training: models trained once per source
    bar = tqdm(names, desc="tasks", disable=not progress or len(names) < 2, dynamic_ncols=True)
    for task_name in bar:
        bar.set_postfix_str(task_name)
        t_load = time.perf_counter()
        task = data.load_task(task_name)
        result.benchmark = task.benchmark or cfg.data.name
        result.task_info[task.name] = {**task.train.summary(), "test_n": 0 if task.x_test is None else len(task.x_test),
                                       "notes": task.notes, "load_seconds": time.perf_counter() - t_load}
        cache_summary = _feature_cache_summary(getattr(task, "feature_cache", None))
        if cache_summary:
            result.task_info[task.name]["feature_cache"] = cache_summary
        split = selection_split(task, cfg.selection, cfg.seed) if cfg.selection is not None else None
        emb = input_embedding(task, cfg)
        if emb is not None:
            result.embeddings[task.name] = emb
        task_runs = [_run_one(task, spec, cfg, out, progress, callbacks, split, shared) for spec in cfg.methods]
        if cfg.selection is not None and cfg.selection.search is not None:
            task_runs += _search_runs(task, cfg, out, progress, split)
        result.runs.extend(task_runs)
        if cfg.selection is not None:
            result.selection[task.name] = select_runs(task_runs, cfg.selection, task, out)
        if out is not None and write:
            result.timings["total"] = time.perf_counter() - t_start
            result.save_json(out / "report.json")
    result.timings["total"] = time.perf_counter() - t_start
    if out is not None and write:
        from transferkit.experiment.report import write_report

        write_report(result, out)
    return result


def _run_one(task: Task, spec: MethodSpec, cfg: ExperimentConfig, out: Path | None, progress: bool,
             callbacks: Iterable[Callable[[int, dict[str, float]], None]], split: Split | None = None,
             shared: dict[str, Any] | None = None) -> RunResult:
    fp = _fingerprint(cfg, spec, task)
    run_dir = _run_dir(out, task.name, spec.label) if out is not None else None
    done_file = run_dir / "result.json" if run_dir else None
    if done_file is not None and done_file.is_file():
        saved = json.loads(done_file.read_text())
        if saved.get("fingerprint") == fp:
            return RunResult(**saved["run"])
    if not progress:
        spec = _quiet(spec, cfg)
    t0 = time.perf_counter()
    try:
        if spec.kind == "shallow":
            run = run_shallow(task, spec, cfg.seed, cfg=cfg, split=split)
        else:
            if run_dir is not None:
                run_dir.mkdir(parents=True, exist_ok=True)
            run = run_deep(task, spec, cfg, run_dir, fp, callbacks, split=split, shared=shared)
    except TransferkitError as exc:
        run = RunResult(task=task.name, method=spec.label, kind=spec.kind, params=spec.params,
                        status="failed", error=str(exc))
    run.timings["total"] = time.perf_counter() - t0
    run.published, run.published_source = _published(task, spec.name)
    if done_file is not None and run.status == "ok":
        done_file.parent.mkdir(parents=True, exist_ok=True)
        probs = getattr(run, "target_probs", None)
        if probs is not None:  # for pool validators (ensv), which compare the runs of a task
            np.save(done_file.parent / TARGET_PROBS_FILE, probs)
        tmp = done_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": fp, "run": asdict(run)}, default=float))
        tmp.replace(done_file)
    return run


def _quiet(spec: MethodSpec, cfg: ExperimentConfig) -> MethodSpec:
    from dataclasses import replace

    if spec.kind != "deep":
        return spec
    return replace(spec, train=(spec.train or cfg.train).replace(progress=False))


# -- selection -------------------------------------------------------------------------------------


def _run_target_probs(run: RunResult, out: Path | None, task: Task) -> np.ndarray | None:
    """A run's probabilities on the unlabelled target part: kept on the run object when it was
    trained in this process, else read from its folder (``target_probs.npy``); None when neither."""
    probs = getattr(run, "target_probs", None)
    if probs is None and out is not None:
        f = _run_dir(out, task.name, run.method) / TARGET_PROBS_FILE
        if f.is_file():
            probs = np.load(f)
    return probs


def select_runs(runs: list[RunResult], sel: SelectionSpec, task: Task, out: Path | None = None
                ) -> dict[str, Any]:
    """Pick one of a task's runs with :func:`transferkit.selection.select` from what each run
    stored (validator scores, predicted target proportions; for a pool validator such as ``ensv``
    also its target probabilities, from ``out`` when the run was reused). Target accuracy is not
    read: each candidate is built from ``run.selection`` only. Returns the Selection as a dict, with
    the guard settings and the expected class proportions it used."""
    from transferkit.selection.guard import check_proportions, select, split_validator
    from transferkit.selection.validators import is_pool_validator

    ys = task.train.y[task.train.is_source]
    K = task.num_classes
    expected = (np.bincount(ys, minlength=K) / max(len(ys), 1)).tolist() \
        if sel.guard.expected == "source_prior" else None
    pool = [v for v in (split_validator(sel.validator) or [sel.validator]) if is_pool_validator(v)]
    candidates, failed, no_probs = [], [], []
    for r in runs:
        rec = r.selection
        if r.status != "ok" or not rec:
            failed.append(r.method)
            continue
        scores = {k: (float("nan") if v is None else float(v)) for k, v in rec["scores"].items()
                  if not is_pool_validator(k)}  # a pool validator is scored here, on the whole pool
        cand: dict[str, Any] = {"name": r.method, "scores": scores}
        if pool:
            cand["target_probs"] = _run_target_probs(r, out, task)
            if cand["target_probs"] is None:
                no_probs.append(r.method)
        if sel.guard.enabled:
            cand["guard"] = check_proportions(
                rec["predicted_proportions"], n_samples=rec.get("n_target"),
                expected_proportions=expected, min_classes_fraction=sel.guard.min_classes_fraction,
                max_tv=sel.guard.max_tv, min_share_fraction=sel.guard.min_share_fraction)
        candidates.append(cand)
    info: dict[str, Any] = {"validator": sel.validator, "params": dict(sel.params),
                            "guard": asdict(sel.guard), "expected_proportions": expected,
                            "failed_runs": failed, "val_fraction": sel.val_fraction}
    def nothing(why: str) -> dict[str, Any]:
        return {**info, "picked": None, "reason": f"Nothing was picked: {why}", "table": [],
                "agreement": None, "fell_back": False}

    if not candidates:
        return nothing("no run finished with validator scores.")
    if no_probs:
        return nothing(f"the validator {sel.validator!r} compares every run with the ensemble of all "
                       f"runs, but {', '.join(map(repr, no_probs))} kept no target probabilities "
                       f"({TARGET_PROBS_FILE} in the run folder; runs finished before they were kept have "
                       "none). Delete those runs' result.json to rerun them, or choose another validator.")
    names = [c["name"] for c in candidates]
    fallback = sel.fallback if sel.fallback in names else None
    ensemble = sel.ensemble
    if ensemble is None:
        ensemble = [v for v in candidates[0]["scores"]
                    if all(np.isfinite(c["scores"].get(v, np.nan)) for c in candidates)]
    min_agree = -2.0 if sel.min_agreement is None else sel.min_agreement
    res = select(candidates, sel.validator, guard=sel.guard.enabled, fallback=fallback,
                 min_agreement=min_agree, ensemble=[v for v in ensemble if v != sel.validator])
    out = {**info, **res.to_dict()}
    if sel.fallback is not None and fallback is None:
        out["reason"] += (f" (The fallback {sel.fallback!r} has no scores on this task, so none "
                          "was available.)")
    return out


def _search_runs(task: Task, cfg: ExperimentConfig, out: Path | None, progress: bool,
                 split: Split | None) -> list[RunResult]:
    """Validator-driven Optuna trials for every method listed in ``selection.search.space``; each
    finished trial becomes a run labelled ``<label>#<trial>`` (a candidate for selection)."""
    from dataclasses import replace

    from transferkit.core.params import bind_params
    from transferkit.core.registries import METHODS, SHALLOW
    from transferkit.selection.guard import check_proportions
    from transferkit.selection.search import search, suggest_params

    sel = cfg.selection
    assert sel is not None and sel.search is not None
    sp = sel.search
    by_label = {m.label: m for m in cfg.methods}
    runs: list[RunResult] = []
    ys = task.train.y[task.train.is_source]
    expected = np.bincount(ys, minlength=task.num_classes) if sel.guard.expected == "source_prior" else None
    for label, space in sp.space.items():
        base = by_label[label]
        registry = METHODS if base.kind == "deep" else SHALLOW
        study_dir = _run_dir(out, task.name, label) if out is not None else None
        storage = sp.storage if sp.storage is not None else (None if study_dir is not None else "memory")

        def objective(trial: Any, base: MethodSpec = base, space: dict[str, Any] = space,
                      registry: Any = registry) -> float:
            suggested = suggest_params(trial, space)
            params = bind_params(registry.get(base.name), {**base.params, **suggested},
                                 path=f"selection.search.space.{base.label}")
            spec = replace(base, params=params, label=f"{base.label}#{trial.number}")
            run = _run_one(task, spec, cfg, out, progress, (), split)
            run.published, run.published_source = None, None  # published figures are for defaults
            trial.set_user_attr("run", json.loads(json.dumps(asdict(run), default=float)))
            rec = run.selection
            if run.status != "ok" or not rec:
                return float("-inf")
            score = rec["scores"].get(sel.validator.split("+")[0])
            if score is None or not np.isfinite(score):
                return float("-inf")
            if sel.guard.enabled and not check_proportions(
                    rec["predicted_proportions"], expected_proportions=expected,
                    min_classes_fraction=sel.guard.min_classes_fraction, max_tv=sel.guard.max_tv,
                    min_share_fraction=sel.guard.min_share_fraction).ok:
                return float("-inf")  # a collapsed candidate never guides the sampler
            return float(score)

        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial otherwise
        study = search(objective, n_trials=sp.n_trials, storage=storage,
                       study_name=f"{cfg.name}/{task.name}/{label}", sampler=sp.sampler,
                       pruner=sp.pruner, seed=derive_seed(sp.seed, task.name, label) % (2**31),
                       out=study_dir if study_dir is not None else ".", timeout=sp.timeout)
        for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
            saved = t.user_attrs.get("run")
            if t.state.name == "COMPLETE" and saved:
                runs.append(RunResult(**saved))
    return runs
