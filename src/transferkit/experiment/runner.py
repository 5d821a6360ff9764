"""Run every method of a config on every task and collect one :class:`ExperimentResult`.

Layout of an output folder::

    OUT/report.json, report.md, report.html
    OUT/runs/<task>/<label>/result.json     # one finished run (reused when the config matches)
    OUT/runs/<task>/<label>/checkpoint.pt   # the deep loop's last checkpoint (resume)

A finished run is never recomputed and an interrupted one resumes from its checkpoint, so a
crashed or killed experiment loses no work. Target labels are used only to measure accuracy.
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
from transferkit.data.dataset import Task
from transferkit.experiment.config import ExperimentConfig, MethodSpec
from transferkit.experiment.result import ExperimentResult, RunResult


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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text.replace("->", "-to-")).strip("_") or "run"


def _published(task: Task, method: str) -> tuple[float | None, str | None]:
    if not task.benchmark:
        return None, None
    try:
        from transferkit.data.reference import published
    except ImportError:  # pragma: no cover - reference table module always ships
        return None, None
    hit = published(task.reference or task.benchmark, task.name, method)
    return (hit[0], hit[1]) if hit else (None, None)


def _fingerprint(cfg: ExperimentConfig, spec: MethodSpec, task: Task) -> str:
    from transferkit.train.loop import config_fingerprint

    train = (spec.train or cfg.train).to_dict()
    for k in ("progress", "log_every", "eval_every", "checkpoint_every"):
        train.pop(k, None)  # do not change the trained model
    model = spec.model or cfg.model
    return config_fingerprint(cfg.seed, cfg.raw["data"], task.name, spec.name, spec.params,
                              asdict(model) if spec.kind == "deep" else None,
                              train if spec.kind == "deep" else None)


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


def run_shallow(task: Task, spec: MethodSpec, seed: int) -> RunResult:
    """Fit a shallow estimator on flattened features and evaluate it on the labelled target split."""
    from transferkit.core.registries import SHALLOW
    from transferkit.train.loop import classification_summary

    est = SHALLOW.create(spec.name, spec.params, path=f"methods.{spec.label}")
    if "random_state" in est.get_params():
        est.set_params(random_state=derive_seed(seed, task.name, spec.label) % (2**31))
    X, y, sd = task.train.to_numpy()
    t0 = time.perf_counter()
    est.fit(X, y, sample_domain=sd)
    t_fit = time.perf_counter() - t0
    metrics: dict[str, float] = {}
    extra: dict[str, Any] = {}
    t1 = time.perf_counter()
    if task.has_test:
        pred = est.predict(task.x_test.reshape(len(task.x_test), -1))
        s = classification_summary(task.y_test, np.asarray(pred, dtype=np.int64), task.num_classes)
        metrics["target_accuracy"] = s["accuracy"]
        extra = {"per_class_accuracy": s["per_class"], "confusion": s["confusion"]}
    return RunResult(task=task.name, method=spec.label, kind="shallow", params=spec.params, metrics=metrics,
                     timings={"fit": t_fit, "evaluate": time.perf_counter() - t1}, **extra)


def run_deep(task: Task, spec: MethodSpec, cfg: ExperimentConfig, run_dir: Path | None,
             fingerprint: str, callbacks: Iterable[Callable[[int, dict[str, float]], None]] = ()) -> RunResult:
    """Train a deep method with the one loop and evaluate it on the labelled target split."""
    import torch

    from transferkit.core.registries import METHODS
    from transferkit.models import create_model
    from transferkit.train.loop import evaluate, fit

    train_cfg = spec.train or cfg.train
    model_spec = spec.model or cfg.model
    run_seed = derive_seed(cfg.seed, task.name, spec.label)
    torch.manual_seed(run_seed)
    model = create_model(model_spec.name, task.train.sample_shape, task.num_classes, model_spec.params,
                         path="model")
    method = METHODS.create(spec.name, spec.params, path=f"methods.{spec.label}")
    method.setup(model.num_features, task.num_classes)
    tr_idx, val_idx = _source_split(task, train_cfg.val_fraction, run_seed)
    train_ds = task.train.subset(np.concatenate([tr_idx, np.flatnonzero(~task.train.is_source)]))
    eval_fn = None
    if task.has_test and train_cfg.eval_every:
        def eval_fn(m: Any) -> dict[str, float]:
            return {"target_accuracy": evaluate(m, task.x_test, task.y_test, task.num_classes)["accuracy"]}

    fr = fit(model, method, train_ds, train_cfg, seed=run_seed,
             checkpoint_path=(run_dir / "checkpoint.pt") if run_dir and train_cfg.checkpoint_every else None,
             fingerprint=fingerprint, eval_fn=eval_fn, callbacks=list(callbacks),
             desc=f"{task.name} {spec.label}")
    t1 = time.perf_counter()
    metrics: dict[str, float] = {}
    extra: dict[str, Any] = {}
    if len(val_idx):
        metrics["source_accuracy"] = evaluate(model, task.train.x[val_idx], task.train.y[val_idx],
                                              task.num_classes)["accuracy"]
    if task.has_test:
        s = evaluate(model, task.x_test, task.y_test, task.num_classes)
        metrics["target_accuracy"] = s["accuracy"]
        extra = {"per_class_accuracy": s["per_class"], "confusion": s["confusion"]}
    timings = {"fit": fr.seconds, "evaluate": time.perf_counter() - t1}
    if fr.resumed_from is not None:
        metrics["resumed_from_step"] = float(fr.resumed_from)
    return RunResult(task=task.name, method=spec.label, kind="deep", params=spec.params, metrics=metrics,
                     history=fr.history, timings=timings, **extra)


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
    data = DATASETS.create(cfg.data.name, cfg.data.params, path="data")
    result = ExperimentResult(name=cfg.name, config=cfg.raw, seed=cfg.seed, versions=versions(),
                              created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    names = data.task_names()
    bar = tqdm(names, desc="tasks", disable=not progress or len(names) < 2, dynamic_ncols=True)
    for task_name in bar:
        bar.set_postfix_str(task_name)
        t_load = time.perf_counter()
        task = data.load_task(task_name)
        result.benchmark = task.benchmark or cfg.data.name
        result.task_info[task.name] = {**task.train.summary(), "test_n": 0 if task.x_test is None else len(task.x_test),
                                       "notes": task.notes, "load_seconds": time.perf_counter() - t_load}
        for spec in cfg.methods:
            result.runs.append(_run_one(task, spec, cfg, out, progress, callbacks))
        if out is not None and write:
            result.timings["total"] = time.perf_counter() - t_start
            result.save_json(out / "report.json")
    result.timings["total"] = time.perf_counter() - t_start
    if out is not None and write:
        from transferkit.experiment.report import write_report

        write_report(result, out)
    return result


def _run_one(task: Task, spec: MethodSpec, cfg: ExperimentConfig, out: Path | None, progress: bool,
             callbacks: Iterable[Callable[[int, dict[str, float]], None]]) -> RunResult:
    fp = _fingerprint(cfg, spec, task)
    run_dir = out / "runs" / _slug(task.name) / _slug(spec.label) if out is not None else None
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
            run = run_shallow(task, spec, cfg.seed)
        else:
            if run_dir is not None:
                run_dir.mkdir(parents=True, exist_ok=True)
            run = run_deep(task, spec, cfg, run_dir, fp, callbacks)
    except TransferkitError as exc:
        run = RunResult(task=task.name, method=spec.label, kind=spec.kind, params=spec.params,
                        status="failed", error=str(exc))
    run.timings["total"] = time.perf_counter() - t0
    run.published, run.published_source = _published(task, spec.name)
    if done_file is not None and run.status == "ok":
        done_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = done_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": fp, "run": asdict(run)}, default=float))
        tmp.replace(done_file)
    return run


def _quiet(spec: MethodSpec, cfg: ExperimentConfig) -> MethodSpec:
    from dataclasses import replace

    if spec.kind != "deep":
        return spec
    return replace(spec, train=(spec.train or cfg.train).replace(progress=False))
