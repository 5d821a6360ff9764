"""Label-free selection across the finished deep runs of ``transferkit bench digits_images``.

Post-hoc, without retraining: every finished deep run found under the ``--runs`` folders (the
output folders of ``transferkit bench digits_images``, holding
``runs/<task>/<method>/{result.json,checkpoint.pt}``) is a *candidate* of its task. For each one:

1. the model and method are rebuilt exactly as :func:`transferkit.experiment.runner.run_deep`
   builds them, from the benchmark preset
   (``bench_config("digits_images", <the task's methods>)`` + ``validate_config``), with the run
   seed ``derive_seed(cfg.seed, task, label)``; the run's config fingerprint is recomputed and
   must equal the one stored in ``result.json`` (else the run was trained with another config and
   is skipped, saying so). Runs started before the runner left ``data.params.tasks`` out of the
   fingerprint carry its earlier form (the same settings plus the task list); it is accepted too;
2. the final checkpoint's bundle (model + method) is loaded; the checkpoint must be at
   ``train.steps`` and carry the same fingerprint (else the run is skipped, saying so);
3. the run's own held-out source rows are recovered with the runner's
   ``_source_split(task, train.val_fraction, run_seed)`` (10 % of the source, stratified, never
   trained on), and the target accuracy (labelled target test split) and held-out source accuracy
   are recomputed from the loaded model and checked against ``result.json`` (they must match: the
   checkpoint is then the final model the result was measured on);
4. the candidate dict is built as ``run_deep`` builds it under ``selection:``: probabilities and
   features (``deep_outputs``) on the held-out source rows and on the unlabelled target part;
   every registered validator scores it (``score_all``) and the collapse guard checks its target
   predictions (``check_collapse``, expected proportions = the source label frequencies).

Then, per task, selection by the default validator
(``transferkit.selection.candidates.DEFAULT_VALIDATOR``) with the guard picks one candidate exactly
as ``benchmarks/selection_vs_oracle.py`` does (its ``pick``: ``select`` with ``guard=True``,
``min_agreement=-2``, no ensemble; fallback: ``source_only`` when every candidate is rejected).
The oracle pick is the candidate with the best target accuracy (from ``result.json``). Printed per
task: picked, oracle, gap, whether the pick collapsed (target accuracy < 1.5 x chance); then the
same summary for every single registered validator.

Scope: this is only the *across-method* part of the selection study, each method at the preset's
default hyper-parameters. There is no per-method hyper-parameter grid here: a grid of deep runs
would need retraining. Target labels are used only to measure accuracy after every choice is made.

Each run holds out its own 10 % of the source (the split's seed derives from the method label, as
in ``run_deep`` without ``selection:``), so held-out source accuracies of two candidates are
measured on different (equally sized, stratified) source samples.

The run fingerprint covers the parameters a config names, not a method's code defaults: a run
trained before a method's defaults changed passes the check. When a task's method has a usable
run in several ``--runs`` folders, the first folder listed wins (list the newest first).

Usage (forward passes only; single-threaded, low priority on shared machines)::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 15 \\
        python benchmarks/selection_digits_deep.py --runs OUT1 [OUT2 ...] \\
        --out benchmarks/results/selection_digits_deep.md --csv benchmarks/results/selection_digits_deep.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from selection_vs_oracle import fmt, pick, provenance_header

BENCH = "digits_images"
#: the candidate picked when the guard rejects every candidate (as the runner's ``select`` default)
FALLBACK = "source_only"
#: agreement tolerance between result.json and the recomputed accuracies (percentage points)
ACC_TOL = 1e-6


def find_runs(dirs: list[str]) -> tuple[list[Path], list[str]]:
    """Finished run folders (holding ``result.json``) below ``dirs``, and notes about folders with
    a checkpoint but no result yet (runs still training)."""
    found: list[Path] = []
    notes: list[str] = []
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            raise SystemExit(f"--runs {d}: no such folder; give the output folder of "
                             f"`transferkit bench {BENCH} --out DIR` (it holds runs/<task>/<method>/)")
        hits = sorted({p.parent for p in root.rglob("result.json")}
                      | {p.parent for p in root.rglob("checkpoint.pt")})
        for run_dir in hits:
            if (run_dir / "result.json").is_file():
                found.append(run_dir)
            else:
                notes.append(f"{run_dir}: checkpoint but no result.json (still training?); left out")
    return found, notes


def read_result(run_dir: Path) -> dict[str, Any]:
    saved = json.loads((run_dir / "result.json").read_text())
    run = saved["run"]
    return {"dir": run_dir, "fingerprint": saved.get("fingerprint"), "task": run["task"],
            "method": run["method"], "kind": run.get("kind"), "status": run.get("status"),
            "metrics": run.get("metrics", {})}


def accepted_fingerprints(cfg: Any, spec: Any, task: Any) -> dict[str, str]:
    """``{fingerprint: form}`` of the run of ``spec`` on ``task`` under ``cfg``: the runner's
    current fingerprint, and the earlier form (before the runner left ``data.params.tasks`` out of
    it) for a run started with ``data.params.tasks=<task>`` or over every task. The settings that
    change the trained model are the same in every form."""
    from dataclasses import asdict

    from transferkit.experiment.runner import _fingerprint
    from transferkit.train.loop import config_fingerprint

    out = {_fingerprint(cfg, spec, task): "current"}
    train = (spec.train or cfg.train).to_dict()
    for k in ("progress", "log_every", "eval_every", "checkpoint_every"):
        train.pop(k, None)
    model = spec.model or cfg.model
    for tasks in (task.name, "all"):
        data = {**cfg.raw["data"], "params": {**cfg.raw["data"].get("params", {}), "tasks": tasks}}
        parts: list[Any] = [cfg.seed, data, task.name, spec.name, spec.params,
                            asdict(model) if spec.kind == "deep" else None,
                            train if spec.kind == "deep" else None]
        if cfg.selection is not None:
            raise SystemExit("the digits_images preset has no selection section; this script "
                             "does not handle one")
        out.setdefault(config_fingerprint(*parts), f"earlier form, data.params.tasks={tasks}")
    return out


def evaluate_task(task_name: str, results: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """One record per usable run of ``task_name`` (candidate arrays scored, guard checked); notes
    for the runs left out."""
    import torch

    from transferkit.core.registries import DATASETS, METHODS
    from transferkit.core.seed import derive_seed
    from transferkit.experiment.bench import BENCH_PRESETS, bench_config
    from transferkit.experiment.config import validate_config
    from transferkit.experiment.runner import _source_split, deep_outputs
    from transferkit.models import create_model
    from transferkit.selection._registry import VALIDATORS
    from transferkit.selection.candidates import score_all
    from transferkit.selection.guard import check_collapse
    from transferkit.train.checkpoint import load_checkpoint
    from transferkit.train.loop import evaluate

    notes: list[str] = []
    preset = BENCH_PRESETS[BENCH]["methods"]
    labels = sorted(dict.fromkeys(r["method"] for r in results),
                    key=lambda m: (preset.index(m) if m in preset else len(preset), m))
    # candidates in the preset's method order (select breaks ties by order), then --runs order
    results = sorted(results, key=lambda r: labels.index(r["method"]))
    cfg = validate_config(bench_config(BENCH, labels))
    specs = {s.label: s for s in cfg.methods}
    data = DATASETS.create(cfg.data.name, {**cfg.data.params, "tasks": task_name}, path="data")
    task = data.load_task(task_name)
    K = task.num_classes
    ys_all = task.train.y[task.train.is_source]
    prior = np.bincount(ys_all, minlength=K).astype(float)  # source label frequencies
    tgt_rows = np.flatnonzero(~task.train.is_source)
    recs: list[dict[str, Any]] = []
    for res in results:
        label, run_dir = res["method"], res["dir"]
        spec = specs[label]
        where = f"{task_name} {label} ({run_dir})"
        if res["status"] != "ok" or res["kind"] != "deep":
            notes.append(f"{where}: status {res['status']!r}, kind {res['kind']!r}; left out")
            continue
        accepted = accepted_fingerprints(cfg, spec, task)
        fp = res["fingerprint"]
        if fp not in accepted:
            notes.append(f"{where}: trained with another config than the {BENCH} preset "
                         f"(fingerprint {fp} is none of {', '.join(accepted)}); left out")
            continue
        ckpt = run_dir / "checkpoint.pt"
        if not ckpt.is_file():
            notes.append(f"{where}: no checkpoint.pt; left out")
            continue
        t0 = time.perf_counter()
        train_cfg = spec.train or cfg.train
        model_spec = spec.model or cfg.model
        run_seed = derive_seed(cfg.seed, task.name, spec.label)
        torch.manual_seed(run_seed)
        model = create_model(model_spec.name, task.train.sample_shape, K, model_spec.params, path="model")
        method = METHODS.create(spec.name, spec.params, path=f"methods.{spec.label}")
        method.setup(model.num_features, K)
        state = load_checkpoint(ckpt)
        if int(state.get("step", -1)) != train_cfg.steps:
            notes.append(f"{where}: checkpoint at step {state.get('step')} (not the final "
                         f"{train_cfg.steps}); left out")
            continue
        if state.get("fingerprint") != fp:
            notes.append(f"{where}: checkpoint fingerprint {state.get('fingerprint')} != {fp}; left out")
            continue
        torch.nn.ModuleDict({"model": model, "method": method}).load_state_dict(state["bundle"])
        model.eval()
        _, val_idx = _source_split(task, train_cfg.val_fraction, run_seed)
        acc_saved = float(res["metrics"]["target_accuracy"])
        acc_re = evaluate(model, task.x_test, task.y_test, K)["accuracy"]
        src_saved = res["metrics"].get("source_accuracy")
        src_re = evaluate(model, task.train.x[val_idx], task.train.y[val_idx], K)["accuracy"]
        match = abs(acc_re - acc_saved) <= ACC_TOL and (src_saved is None or abs(src_re - src_saved) <= ACC_TOL)
        if not match:
            notes.append(f"{where}: the checkpoint's model gives target {acc_re:.3f} / source {src_re:.3f} "
                         f"but result.json says {acc_saved:.3f} / {src_saved}; not the final model, left out")
            continue
        first = next((r for r in recs if r["method"] == label), None)
        if first is not None:
            notes.append(f"{where}: a second usable run of {task_name} {label} (first: {first['run_dir']}); "
                         "left out")
            continue
        ps, fs = deep_outputs(model, task.train.x[val_idx])
        pt, ft = deep_outputs(model, task.train.x[tgt_rows])
        cand = {"name": label, "source_probs": ps, "source_labels": task.train.y[val_idx],
                "target_probs": pt, "source_features": fs, "target_features": ft}
        scores = score_all(cand, {v: None for v in VALIDATORS.names()})
        g = check_collapse(pt, expected_proportions=prior)
        rec = {"task": task_name, "method": label, "name": label, "run_dir": str(run_dir), "status": "ok",
               "step": int(state["step"]), "fingerprint_form": accepted[fp],
               "accuracy": acc_saved, "accuracy_recomputed": acc_re,
               "source_accuracy": src_saved, "source_accuracy_recomputed": src_re,
               "n_val": len(val_idx), "n_target": len(tgt_rows),
               "scores": {k: (v if math.isfinite(v) else None) for k, v in scores.items()},
               "guard_ok": g.ok, "guard": g.summary() if not g.ok else "",
               "effective_classes": g.stats["effective_classes"], "chance": 100.0 / K,
               "seconds": time.perf_counter() - t0}
        recs.append(rec)
        print(f"  {task_name} {label}: target acc {acc_saved:.2f} (recomputed {acc_re:.2f}), held-out "
              f"source {src_re:.2f} on {len(val_idx)}, guard {'ok' if g.ok else 'REJECTS: ' + rec['guard']}, "
              + ", ".join(f"{k} {'-' if v is None else f'{v:.4g}'}" for k, v in rec["scores"].items())
              + f" ({rec['seconds']:.1f} s)", flush=True)
    return recs, notes


def selection_rows(records: dict[str, list[dict[str, Any]]], validator: str) -> dict[str, Any]:
    """Per task: the across-method pick by ``validator`` (guard on), the oracle pick and the gap."""
    rows = []
    for task, recs in records.items():
        ok = [r for r in recs if r["status"] == "ok"]
        if not ok:
            continue
        p, reason = pick(ok, validator, FALLBACK)
        o = max(ok, key=lambda r: r["accuracy"])
        if p is None:
            rows.append({"task": task, "picked": None, "reason": reason, "oracle": o["name"],
                         "oracle_acc": o["accuracy"], "gap": math.nan, "collapsed": False})
            continue
        rows.append({"task": task, "picked": p["name"], "picked_acc": p["accuracy"], "reason": reason,
                     "oracle": o["name"], "oracle_acc": o["accuracy"], "gap": o["accuracy"] - p["accuracy"],
                     "collapsed": p["accuracy"] < 1.5 * p["chance"], "n": len(ok)})
    gaps = [r["gap"] for r in rows if math.isfinite(r["gap"])]
    return {"rows": rows, "mean_gap": float(np.mean(gaps)) if gaps else math.nan,
            "max_gap": float(np.max(gaps)) if gaps else math.nan,
            "collapsed": sum(r["collapsed"] for r in rows),
            "none_picked": sum(r["picked"] is None for r in rows)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", required=True, metavar="DIR",
                    help=f"output folders of `transferkit bench {BENCH}` (searched for runs/<task>/<method>/); "
                    "when a task's method has a usable run in several folders, the first folder listed wins")
    ap.add_argument("--csv", default=None, help="write every candidate record as CSV")
    ap.add_argument("--out", default=None, help="write the Markdown summary here")
    args = ap.parse_args(argv)

    import torch

    from transferkit.experiment.bench import BENCH_PRESETS
    from transferkit.selection._registry import VALIDATORS
    from transferkit.selection.candidates import DEFAULT_VALIDATOR

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    run_dirs, notes = find_runs(args.runs)
    by_task: dict[str, list[dict[str, Any]]] = {}
    for d in run_dirs:
        r = read_result(d)
        by_task.setdefault(r["task"], []).append(r)
    if not by_task:
        raise SystemExit("no finished run (result.json) under " + ", ".join(args.runs))
    records: dict[str, list[dict[str, Any]]] = {}
    for task_name in sorted(by_task):
        print(f"{BENCH} {task_name}: {len(by_task[task_name])} finished runs", flush=True)
        records[task_name], n = evaluate_task(task_name, by_task[task_name])
        notes += n
    for n in notes:
        print("  note: " + n, flush=True)

    lines: list[str] = []
    say = lambda s="": (print(s), lines.append(s))
    n_cands = sum(len(r) for r in records.values())
    say(f"# Label-free selection vs the oracle: deep {BENCH} runs (across methods)")
    say()
    steps = BENCH_PRESETS[BENCH]["train"]["steps"]
    say(f"{len(records)} tasks, {n_cands} candidates: the finished runs of `transferkit bench {BENCH}` "
        f"(LeNet, each method at the preset's default hyper-parameters, {steps} steps), reloaded from their "
        "final checkpoints without retraining. Validators see each run's own held-out 10 % of the source "
        "(never trained on) and the unlabelled target part; the guard's expected proportions are the "
        "source label frequencies; accuracy is on the labelled target test split, used only after every "
        "choice. **Only the across-method part** of the selection study: there is no per-method "
        "hyper-parameter grid here, because a grid of deep runs would need retraining.")
    say()
    say("## Candidates")
    say()
    vnames = list(VALIDATORS.names())
    say("| task | method | target acc | held-out source acc (n) | guard | " + " | ".join(vnames) + " |")
    say("|---|---|---|---|---|" + "---|" * len(vnames))
    for task, recs in records.items():
        for r in recs:
            sc = [("-" if r["scores"].get(v) is None else f"{r['scores'][v]:.4g}") for v in vnames]
            say(f"| {task} | {r['method']} | {r['accuracy']:.2f} | {r['source_accuracy_recomputed']:.2f} "
                f"({r['n_val']}) | {'ok' if r['guard_ok'] else 'rejected: ' + r['guard']} | " + " | ".join(sc) + " |")
    say()
    say(f"## Selection by the default validator `{DEFAULT_VALIDATOR}` with the collapse guard")
    say()
    res = selection_rows(records, DEFAULT_VALIDATOR)
    say("| task | candidates | picked (across methods) | acc | oracle pick | acc | gap | collapsed pick |")
    say("|---|---|---|---|---|---|---|---|")
    for r in res["rows"]:
        say(f"| {r['task']} | {r.get('n', '-')} | {r['picked'] or 'none (' + r['reason'] + ')'} | "
            f"{fmt(r.get('picked_acc'))} | {r['oracle']} | {fmt(r['oracle_acc'])} | {fmt(r['gap'])} | "
            f"{'yes' if r['collapsed'] else 'no'} |")
    say()
    met = math.isfinite(res["mean_gap"]) and res["mean_gap"] <= 1.5 and res["collapsed"] == 0 \
        and res["none_picked"] == 0
    ok_rows = [r for r in res["rows"] if r["picked"] is not None]
    fixed = {m: [r["accuracy"] for recs in records.values() for r in recs if r["method"] == m]
             for m in dict.fromkeys(r["method"] for recs in records.values() for r in recs)}
    say(f"Mean target accuracy over the tasks: picked {fmt(float(np.mean([r['picked_acc'] for r in ok_rows])) if ok_rows else math.nan)}, "
        f"oracle {fmt(float(np.mean([r['oracle_acc'] for r in res['rows']])))}; each method always "
        "(tasks where it finished): " + ", ".join(f"{m} {fmt(float(np.mean(a)))} ({len(a)})" for m, a in fixed.items())
        + ".")
    say()
    say(f"Mean gap {fmt(res['mean_gap'])} pt (max {fmt(res['max_gap'])}), {res['collapsed']} collapsed "
        f"picks over {len(res['rows'])} tasks: issue target (mean gap <= 1.5 pt, no collapsed pick) "
        f"{'met' if met else 'missed'} for this across-method, default-hyper-parameter part.")
    say()
    say("## Every validator (same candidates, guard on)")
    say()
    tasks = list(records)
    say("| validator | " + " | ".join(f"{t}: pick (gap)" for t in tasks) + " | mean gap | max gap | collapsed picks |")
    say("|---|" + "---|" * (len(tasks) + 3))
    summary: dict[str, dict[str, Any]] = {}
    for v in [DEFAULT_VALIDATOR, *vnames]:
        rv = selection_rows(records, v)
        summary[v] = rv
        cells = {r["task"]: (f"{r['picked']} ({fmt(r['gap'])})" if r["picked"] else "none") for r in rv["rows"]}
        say(f"| {v} | " + " | ".join(cells.get(t, "-") for t in tasks)
            + f" | {fmt(rv['mean_gap'])} | {fmt(rv['max_gap'])} | {rv['collapsed']} |")
    say()
    say("Protocol details: each candidate is the run's final checkpoint (step = train.steps), whose "
        "target and held-out source accuracies were recomputed and equal the ones in result.json. "
        "Each run holds out its own stratified 10 % of the source (seed derived from the method label, "
        "as run_deep does without a selection section), so held-out source accuracies of two candidates "
        "are measured on different samples of the same size (a difference of 0.1 pt on MNIST's 1000 "
        "held-out images is one image). Selection is `select` with the guard, no agreement check "
        f"(min_agreement -2), no ensemble, fallback `{FALLBACK}` when every candidate is rejected, exactly "
        "as benchmarks/selection_vs_oracle.py (whose `pick` this script calls); ties go to the earlier "
        "candidate in the preset's method order. The guard's expected proportions are the label "
        "frequencies of the whole source (selection_vs_oracle.py uses its 80 % training part; both are "
        "the same up to rounding, the holdouts being stratified). A collapsed pick has target accuracy "
        "< 1.5 x chance (15 % for 10 classes).")
    say()
    if notes:
        say("Runs left out:")
        say()
        for n in notes:
            say(f"- {n}")
        say()
    say(f"Wall time {time.perf_counter() - t_start:.0f} s.")

    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["benchmark", "task", "method", "step", "target_accuracy", "target_accuracy_recomputed",
                        "source_accuracy", "source_accuracy_recomputed", "n_val", "n_target", "guard_ok",
                        "guard", "effective_classes", *vnames, "picked_by_default", "oracle",
                        "fingerprint_form", "run_dir"])
            picked = {r["task"]: r["picked"] for r in res["rows"]}
            oracle = {r["task"]: r["oracle"] for r in res["rows"]}
            for task, recs in records.items():
                for r in recs:
                    w.writerow([BENCH, task, r["method"], r["step"], f"{r['accuracy']:.4f}",
                                f"{r['accuracy_recomputed']:.4f}",
                                "" if r["source_accuracy"] is None else f"{r['source_accuracy']:.4f}",
                                f"{r['source_accuracy_recomputed']:.4f}", r["n_val"], r["n_target"],
                                r["guard_ok"], r["guard"], f"{r['effective_classes']:.3f}",
                                *("" if r["scores"].get(v) is None else f"{r['scores'][v]:.6g}" for v in vnames),
                                picked.get(task) == r["method"], oracle.get(task) == r["method"],
                                r["fingerprint_form"], r["run_dir"]])
    if args.out:
        head = provenance_header("selection_digits_deep.py", argv, launcher="nice -n 15 ")
        Path(args.out).write_text("\n".join(head + lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
