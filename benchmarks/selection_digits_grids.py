"""Label-free selection over deep methods' hyper-parameter grids on digits_images.

Inputs: finished ``transferkit run`` folders of grid configs with a ``selection:`` section
(``configs/digits_images_<method>_grid.yaml``; every run of a task shares the held-out 10 % of
the source the runner draws for selection). Nothing is retrained: for every run

1. its config fingerprint is recomputed (:func:`transferkit.experiment.runner._fingerprint`) and
   must equal the one stored in ``result.json``; the final checkpoint (step = ``train.steps``,
   same fingerprint) is loaded into the model and method rebuilt as the runner builds them;
2. the model's probabilities and features on the held-out source and on the unlabelled target part
   are recomputed; its held-out source accuracy must equal the stored one (the checkpoint is then
   the model whose target accuracy ``result.json`` holds);
3. the candidate gets the validator scores the runner stored for it (what ``transferkit run``'s own
   selection used), the collapse guard's verdict from its stored predicted target proportions
   (:func:`~transferkit.selection.check_proportions`, expected proportions = the source label
   frequencies, the runner's settings), and its target probabilities for the pool validator
   ``ensv`` (agreement with the ensemble of the accepted candidates, Hu et al. NeurIPS 2024).

Then, per task, with the default validator and the guard: the pick within each method's grid and
across every grid, the oracle pick (best target accuracy) and the gap; then the same for every
registered validator. Target labels are used only to measure accuracy after every choice. The
within-grid pick of the default validator is checked against the pick in each run folder's
``report.json`` (the runner's own selection).

Usage::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/selection_digits_grids.py \\
        --grid configs/digits_images_dann_grid.yaml runs/digits-dann-grid \\
        --grid configs/digits_images_mcc_grid.yaml runs/digits-mcc-grid ... \\
        --out benchmarks/results/selection_digits_grids.md --csv benchmarks/results/selection_digits_grids.csv
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

#: held-out source accuracy recomputed from the checkpoint must match the stored one this closely
ACC_TOL = 1e-6


def load_grid(config: Path, out: Path) -> tuple[Any, dict[str, list[dict[str, Any]]], list[str]]:
    """``(cfg, {task: [candidate record]}, notes)`` for one grid's run folder."""
    import torch

    from transferkit.core.registries import DATASETS, METHODS
    from transferkit.core.seed import derive_seed
    from transferkit.experiment.config import load_config
    from transferkit.experiment.runner import (
        _fingerprint,
        _slug,
        deep_outputs,
        selection_split,
    )
    from transferkit.models import create_model
    from transferkit.selection.candidates import mixup_arrays
    from transferkit.selection.guard import check_proportions
    from transferkit.selection.validators import mixval
    from transferkit.train.checkpoint import load_checkpoint
    from transferkit.train.loop import evaluate

    cfg = load_config(config)
    if cfg.selection is None:
        raise SystemExit(f"{config}: no selection section; this script reads selection grids")
    sel = cfg.selection
    data = DATASETS.create(cfg.data.name, dict(cfg.data.params), path="data")
    out_recs: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    for task_name in data.task_names():
        task = data.load_task(task_name)
        K = task.num_classes
        ys = task.train.y[task.train.is_source]
        expected = np.bincount(ys, minlength=K) / max(len(ys), 1)
        _, val_idx = selection_split(task, sel, cfg.seed)
        tgt = np.flatnonzero(~task.train.is_source)
        recs = []
        for spec in cfg.methods:
            run_dir = out / "runs" / _slug(task.name) / _slug(spec.label)
            where = f"{task_name} {spec.label} ({run_dir})"
            res_file, ckpt = run_dir / "result.json", run_dir / "checkpoint.pt"
            if not res_file.is_file() or not ckpt.is_file():
                notes.append(f"{where}: no result.json or checkpoint.pt (not finished); left out")
                continue
            saved = json.loads(res_file.read_text())
            fp = _fingerprint(cfg, spec, task)
            run = saved["run"]
            if saved.get("fingerprint") != fp or run.get("status") != "ok" or not run.get("selection"):
                notes.append(f"{where}: fingerprint, status or selection record does not match the "
                             "config; left out")
                continue
            t0 = time.perf_counter()
            train_cfg = spec.train or cfg.train
            model_spec = spec.model or cfg.model
            state = load_checkpoint(ckpt)
            if int(state.get("step", -1)) != train_cfg.steps or state.get("fingerprint") != fp:
                notes.append(f"{where}: the checkpoint is not the final one of this config; left out")
                continue
            torch.manual_seed(derive_seed(cfg.seed, task.name, spec.label))
            model = create_model(model_spec.name, task.train.sample_shape, K, model_spec.params, path="model")
            method = METHODS.create(spec.name, spec.params, path=f"methods.{spec.label}")
            method.setup(model.num_features, K)
            torch.nn.ModuleDict({"model": model, "method": method}).load_state_dict(state["bundle"])
            model.eval()
            src_re = evaluate(model, task.train.x[val_idx], task.train.y[val_idx], K)["accuracy"]
            src_saved = float(run["metrics"]["source_accuracy"])
            if abs(src_re - src_saved) > ACC_TOL:
                notes.append(f"{where}: the checkpoint gives held-out source accuracy {src_re:.4f}, "
                             f"result.json {src_saved:.4f}; left out")
                continue
            pt, _ = deep_outputs(model, task.train.x[tgt])
            rec_sel = run["selection"]
            scores = dict(rec_sel["scores"])
            if "mixval" not in scores:  # runs made before the validator existed: probe the model now
                mix = mixup_arrays(lambda x, m=model: deep_outputs(m, x)[0], task.train.x[tgt])
                scores["mixval"] = mixval(pt, **mix) if mix else None
            g = check_proportions(rec_sel["predicted_proportions"], n_samples=rec_sel.get("n_target"),
                                  expected_proportions=expected,
                                  min_classes_fraction=sel.guard.min_classes_fraction,
                                  max_tv=sel.guard.max_tv, min_share_fraction=sel.guard.min_share_fraction)
            recs.append({"task": task_name, "grid": cfg.name, "method": spec.name, "name": spec.label,
                         "params": spec.params, "train": (spec.train.to_dict() if spec.train else {}),
                         "status": "ok", "accuracy": float(run["metrics"]["target_accuracy"]),
                         "source_accuracy": src_saved, "scores": scores,
                         "guard_ok": g.ok, "guard": g.summary() if not g.ok else "",
                         "chance": 100.0 / K, "target_probs": pt, "run_dir": str(run_dir),
                         "seconds": time.perf_counter() - t0})
        out_recs[task_name] = recs
    return cfg, out_recs, notes


def runner_pick(out: Path, task: str) -> str | None:
    """The pick of the run folder's own selection (``report.json``), or None when absent."""
    rep = out / "report.json"
    if not rep.is_file():
        return None
    sel = json.loads(rep.read_text()).get("selection", {}).get(task)
    return sel.get("picked") if sel else None


def gaps(records: dict[str, list[dict[str, Any]]], validator: str) -> dict[str, Any]:
    """Per task and grid the within-grid pick; per task the across-grid pick; gaps to the oracle."""
    within, across = [], []
    for task, recs in records.items():
        for grid in dict.fromkeys(r["grid"] for r in recs):
            rg = [r for r in recs if r["grid"] == grid]
            p, _ = pick(rg, validator, None)
            o = max(rg, key=lambda r: r["accuracy"])
            within.append({"task": task, "grid": grid, "picked": p, "oracle": o,
                           "gap": math.nan if p is None else o["accuracy"] - p["accuracy"]})
        p, _ = pick(recs, validator, None)
        o = max(recs, key=lambda r: r["accuracy"])
        across.append({"task": task, "picked": p, "oracle": o,
                       "gap": math.nan if p is None else o["accuracy"] - p["accuracy"]})

    def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
        g = [r["gap"] for r in rows if math.isfinite(r["gap"])]
        return {"mean": float(np.mean(g)) if g else math.nan, "max": float(np.max(g)) if g else math.nan,
                "none": sum(r["picked"] is None for r in rows),
                "collapsed": sum(r["picked"] is not None and r["picked"]["accuracy"] < 1.5 * r["picked"]["chance"]
                                 for r in rows)}

    return {"within": within, "across": across, "within_summary": summary(within),
            "across_summary": summary(across)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", nargs=2, action="append", required=True, metavar=("CONFIG", "RUN_DIR"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--csv", default=None)
    args = ap.parse_args(argv)

    from transferkit.selection._registry import VALIDATORS
    from transferkit.selection.candidates import DEFAULT_VALIDATOR

    t_start = time.perf_counter()
    records: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    runner_check: list[str] = []
    grid_names: list[str] = []
    for config, out in args.grid:
        cfg, recs, n = load_grid(Path(config), Path(out))
        grid_names.append(cfg.name)
        notes += n
        for task, rs in recs.items():
            records.setdefault(task, []).extend(rs)
            if rs:
                p, _ = pick(rs, DEFAULT_VALIDATOR, None)
                rp = runner_pick(Path(out), task)
                runner_check.append(f"{cfg.name} {task}: this script picks {p['name'] if p else None}, "
                                    f"the run folder's report {rp}"
                                    + ("" if rp is None or (p and p["name"] == rp) else " (DIFFERENT)"))
        print(f"loaded {cfg.name}: " + ", ".join(f"{t} {len(r)}" for t, r in recs.items()), flush=True)

    lines: list[str] = []
    say = lambda s="": (print(s), lines.append(s))
    n_c = sum(len(r) for r in records.values())
    say("# Label-free selection over deep hyper-parameter grids: digits_images (MNIST <-> USPS, LeNet)")
    say()
    say(f"{len(records)} tasks, {len(grid_names)} grids ({', '.join(grid_names)}), {n_c} candidates: the "
        "finished runs of the grid configs, reloaded from their final checkpoints without retraining. "
        "Validators see the held-out 10 % of the source every run of a task shares (never trained on) and "
        "the unlabelled target part; the guard's expected proportions are the source label "
        "frequencies; accuracy is on the labelled target test split, used only after every choice. "
        "A collapsed pick has target accuracy < 1.5 x chance (15 % for 10 classes).")
    say()
    say("## Candidates")
    say()
    vnames = [v for v in VALIDATORS.names() if v != "ensv"]
    say("| task | grid | candidate | target acc | held-out source acc | guard | " + " | ".join(vnames) + " |")
    say("|---|---|---|---|---|---|" + "---|" * len(vnames))
    for task, recs in records.items():
        for r in recs:
            sc = r["scores"]
            say(f"| {task} | {r['grid']} | {r['name']} | {r['accuracy']:.2f} | {r['source_accuracy']:.2f} | "
                f"{'ok' if r['guard_ok'] else 'rejected'} | "
                + " | ".join("-" if sc.get(v) is None else f"{sc[v]:.4g}" for v in vnames) + " |")
    say()
    res = gaps(records, DEFAULT_VALIDATOR)
    say(f"## Default validator `{DEFAULT_VALIDATOR}` with the collapse guard")
    say()
    say("Within each method's grid:")
    say()
    say("| task | grid | candidates | picked | acc | oracle pick | acc | gap |")
    say("|---|---|---|---|---|---|---|---|")
    for r in res["within"]:
        p, o = r["picked"], r["oracle"]
        n = sum(1 for c in records[r["task"]] if c["grid"] == r["grid"])
        say(f"| {r['task']} | {r['grid']} | {n} | {p['name'] if p else 'none'} | {fmt(p['accuracy']) if p else '-'} "
            f"| {o['name']} | {fmt(o['accuracy'])} | {fmt(r['gap'])} |")
    say()
    say("Across every grid:")
    say()
    say("| task | candidates | picked | acc | oracle pick | acc | gap |")
    say("|---|---|---|---|---|---|---|")
    for r in res["across"]:
        p, o = r["picked"], r["oracle"]
        say(f"| {r['task']} | {len(records[r['task']])} | {p['name'] if p else 'none'} | "
            f"{fmt(p['accuracy']) if p else '-'} | {o['name']} | {fmt(o['accuracy'])} | {fmt(r['gap'])} |")
    say()
    ws, as_ = res["within_summary"], res["across_summary"]
    say(f"Mean gap within grids {fmt(ws['mean'])} pt (max {fmt(ws['max'])}, {len(res['within'])} picks); "
        f"across grids {fmt(as_['mean'])} pt (max {fmt(as_['max'])}, {len(res['across'])} picks); "
        f"collapsed picks: {ws['collapsed'] + as_['collapsed']}; nothing picked: {ws['none'] + as_['none']}. "
        f"Issue target (mean gap <= 1.5 pt, no collapsed pick): within "
        f"{'met' if ws['mean'] <= 1.5 and not ws['collapsed'] else 'missed'}, across "
        f"{'met' if as_['mean'] <= 1.5 and not as_['collapsed'] else 'missed'}.")
    say()
    say("## Every validator (same candidates, guard on)")
    say()
    say("| validator | mean gap within grids | max | mean gap across grids | max | collapsed picks |")
    say("|---|---|---|---|---|---|")
    for v in [DEFAULT_VALIDATOR, *VALIDATORS.names()]:
        rv = gaps(records, v)
        w, a = rv["within_summary"], rv["across_summary"]
        say(f"| {v} | {fmt(w['mean'])} | {fmt(w['max'])} | {fmt(a['mean'])} | {fmt(a['max'])} | "
            f"{w['collapsed'] + a['collapsed']} |")
    say()
    say("Check against the runner's own selection (each run folder's report.json):")
    say()
    for c in runner_check:
        say(f"- {c}")
    if notes:
        say()
        say("Runs left out:")
        say()
        for n in notes:
            say(f"- {n}")
    say()
    say(f"Wall time {time.perf_counter() - t_start:.0f} s.")

    if args.csv:
        keys = sorted({k for rs in records.values() for r in rs for k in r["scores"]})
        with open(args.csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["task", "grid", "candidate", "method", "params", "train", "target_accuracy",
                        "source_accuracy", "guard_ok", *keys])
            for rs in records.values():
                for r in rs:
                    w.writerow([r["task"], r["grid"], r["name"], r["method"], json.dumps(r["params"]),
                                json.dumps(r["train"]), f"{r['accuracy']:.2f}", f"{r['source_accuracy']:.2f}",
                                r["guard_ok"], *("" if r["scores"].get(k) is None else f"{r['scores'][k]:.6g}"
                                                 for k in keys)])
    if args.out:
        head = provenance_header("selection_digits_grids.py", argv, machine="2 CPU cores")
        Path(args.out).write_text("\n".join(head + lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
