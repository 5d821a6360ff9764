"""Label-free selection against the oracle, and the advisor against fixed methods.

For every task of the shallow benchmarks, every method's hyper-parameter grid (fixed below, 2-4
values of its main parameter) is fitted on 80 % of the source (stratified, seeded) plus the
unlabelled target. Each fitted model (a *candidate*) is scored without target labels by every
registered validator on the held-out 20 % of the source and on the target, and checked by the
collapse guard (expected proportions: the source label frequencies). Then:

1. **Selection vs oracle.** Per task, selection by the default validator
   (``transferkit.selection.candidates.DEFAULT_VALIDATOR``) with the guard picks one candidate
   (a) within each method's grid and (b) across all methods and grids. The oracle pick is the
   candidate with the best target accuracy. Printed per task: picked, oracle, gap; then the mean
   gaps and whether any pick collapsed (target accuracy < 1.5 x chance). The same summary is
   printed for every single registered validator, for comparison.
2. **The advisor.** Per task, :func:`transferkit.assess.advise` runs on the input features (tests,
   distances, LogME, BBSE, pilot of source-only logistic regression vs CORAL and SA with the same
   classifier) and recommends a pipeline. Each pilot pipeline is then fitted on the *whole* source
   and applied to the target: the advisor's mean accuracy is compared with the best fixed
   pipeline's mean, and, where the advisor says adaptation is not worth it (``no_adaptation`` or
   ``negative_transfer_likely``), the oracle gain of adapting (best adaptation minus source-only
   accuracy) is checked to be below 1 point.

Target labels are used only to measure accuracy after every choice is made.

Usage (single-threaded BLAS recommended on shared machines)::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        python benchmarks/selection_vs_oracle.py --out benchmarks/results/selection_vs_oracle.md

Per-candidate records (accuracy and every validator score) are cached in ``--cache`` (one JSON
object per line) so an interrupted run resumes; ``--csv`` writes them as a table.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import functools
import hashlib
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: hyper-parameter grids, fixed in advance (the main parameter of each method; others default)
GRIDS: dict[str, list[dict[str, Any]]] = {
    "logreg": [{"C": c} for c in (0.01, 0.1, 1.0, 10.0)],
    "svm": [{"C": c} for c in (0.01, 0.1, 1.0)],
    "coral": [{"reg": r} for r in (0.1, 1.0, 10.0)],
    "sa": [{"n_components": d} for d in (10, 20, 40, 80)],
    "gfk": [{"n_components": d} for d in (10, 20, 40)],
    "tca": [{"n_components": d} for d in (10, 30, 60)],
    "jda": [{"lam": v} for v in (0.1, 1.0, 10.0)],
    "easytl": [{"reg": r} for r in (0.1, 1.0, 10.0)],
    "meda": [{"lam": v} for v in (1.0, 10.0, 100.0)],
    "kmm": [{"B": b} for b in (1.0, 10.0, 1000.0)],
    "ot_sinkhorn": [{"reg_e": r} for r in (0.1, 1.0)],
}
#: methods run on the 5000-d Amazon reviews (the others are too slow at that width here)
AMAZON_METHODS = ("logreg", "svm", "coral", "sa", "tca", "kmm")
BENCHMARKS = ("office_caltech10_surf", "mnist_usps_jda")
#: the source-only candidate selection falls back to when the guard rejects every candidate
FALLBACK = ("logreg", {"C": 1.0})
SPLIT_SEED = 0


def cand_name(method: str, params: dict[str, Any]) -> str:
    return method + "(" + ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in params.items()) + ")"


def load_cache(path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["key"]] = rec
    return out


def probs_file(probs_dir: Path, key: str) -> Path:
    """Where a candidate's target probabilities are kept (``--probs-dir``)."""
    return probs_dir / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".npy")


def with_probs(rec: dict[str, Any], probs_dir: Path | None) -> dict[str, Any]:
    """The record with the path of its kept target probabilities (not written to the cache)."""
    if probs_dir is None or rec["status"] != "ok":
        return rec
    return {**rec, "probs_file": str(probs_file(probs_dir, rec["key"]))}


@functools.lru_cache(maxsize=64)
def load_probs(path: str) -> np.ndarray:
    return np.load(path)


def evaluate_candidates(bench: str, task: Any, methods: list[str], cache: dict[str, Any],
                        cache_path: Path, probs_dir: Path | None = None) -> list[dict[str, Any]]:
    """Fit every grid point of ``methods`` on the task; one record per candidate. With
    ``probs_dir``, each candidate's probabilities on the unlabelled target are kept there too (the
    pool-level validator ``ensv`` needs them); a cached record without them is fitted again."""
    from transferkit.core.registries import SHALLOW
    from transferkit.selection._registry import VALIDATORS
    from transferkit.selection.candidates import (
        fit_shallow_candidate,
        score_all,
        stratified_holdout,
    )
    from transferkit.selection.guard import check_collapse

    X, y, sd = task.train.to_numpy()
    xs, ys, xt = X[sd >= 0], y[sd >= 0], X[sd < 0]
    K = task.num_classes
    split = stratified_holdout(ys, 0.2, SPLIT_SEED)
    prior = np.bincount(ys[split[0]], minlength=K).astype(float)
    xtest = task.x_test.reshape(len(task.x_test), -1)
    recs = []
    for m in methods:
        for p in GRIDS[m]:
            key = f"{bench}|{task.name}|{m}|{json.dumps(p, sort_keys=True)}"
            if key in cache and (probs_dir is None or cache[key]["status"] != "ok"
                                 or probs_file(probs_dir, key).is_file()):
                recs.append(with_probs(cache[key], probs_dir))
                continue
            t0 = time.perf_counter()
            rec: dict[str, Any] = {"key": key, "benchmark": bench, "task": task.name, "method": m,
                                   "params": p, "name": cand_name(m, p)}
            try:
                est = SHALLOW.create(m, p)
                c = fit_shallow_candidate(est, rec["name"], xs, ys, xt, split=split, n_classes=K)
                acc = float(np.mean(np.asarray(c["model"].predict(xtest)) == task.y_test) * 100)
                scores = score_all(c, {v: None for v in VALIDATORS.names()})
                g = check_collapse(c["target_probs"], expected_proportions=prior)
                if probs_dir is not None:
                    np.save(probs_file(probs_dir, key), np.asarray(c["target_probs"], dtype=np.float32))
                rec.update(status="ok", accuracy=acc,
                           scores={k: (v if math.isfinite(v) else None) for k, v in scores.items()},
                           guard_ok=g.ok, guard=g.summary() if not g.ok else "",
                           effective_classes=g.stats["effective_classes"])
            except Exception as exc:  # noqa: BLE001 - a candidate that cannot be fitted is recorded
                rec.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:300])
            rec["seconds"] = time.perf_counter() - t0
            cache[key] = rec
            with open(cache_path, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
            recs.append(with_probs(rec, probs_dir))
            print(f"  {task.name} {rec['name']}: " + (f"acc {rec['accuracy']:.1f}" if rec["status"] == "ok"
                                                      else rec["error"][:80]), flush=True)
    return recs


def pick(recs: list[dict[str, Any]], validator: str, fallback: str | None
         ) -> tuple[dict[str, Any] | None, str]:
    """The candidate ``select`` picks among ``recs`` (ok ones), with the reason; None when the
    guard rejects all of them and there is no fallback."""
    from transferkit.selection.guard import select
    from transferkit.selection.validators import is_pool_validator

    ok = [r for r in recs if r["status"] == "ok"]
    cands = [{"name": r["name"], "guard": {"ok": r["guard_ok"], "reasons": [r["guard"]] if r["guard"] else []},
              "scores": {k: (math.nan if v is None else v) for k, v in r["scores"].items()
                         if not is_pool_validator(k)}} for r in ok]
    if any(is_pool_validator(v) for v in validator.split("+")):  # scored on the pool by select
        if not all("probs_file" in r or "target_probs" in r for r in ok):
            return None, "no target probabilities kept (run with --probs-dir)"
        for c, r in zip(cands, ok):
            c["target_probs"] = r["target_probs"] if "target_probs" in r else load_probs(r["probs_file"])
    fb = fallback if fallback in {r["name"] for r in ok} else None
    sel = select(cands, validator, guard=True, fallback=fb, min_agreement=-2.0, ensemble=[])
    if sel.picked is None:  # the guard rejected every candidate and there is no fallback
        return None, sel.reason
    by = {r["name"]: r for r in ok}
    return by[sel.picked], sel.reason


def selection_table(records: dict[str, list[dict[str, Any]]], validator: str, chance: dict[str, float]
                    ) -> dict[str, Any]:
    """Per task: across-method pick, oracle, gap; per (task, method): within-grid gap."""
    rows, within = [], []
    rejected_grids = 0
    fb = cand_name(*FALLBACK)
    for task, recs in records.items():
        ok = [r for r in recs if r["status"] == "ok"]
        if not ok:
            continue
        p, _ = pick(ok, validator, fb)
        o = max(ok, key=lambda r: r["accuracy"])
        if p is None:
            continue
        rows.append({"task": task, "picked": p["name"], "picked_acc": p["accuracy"], "oracle": o["name"],
                     "oracle_acc": o["accuracy"], "gap": o["accuracy"] - p["accuracy"],
                     "collapsed": p["accuracy"] < 1.5 * chance[task]})
        for m in dict.fromkeys(r["method"] for r in ok):
            rm = [r for r in ok if r["method"] == m]
            pm, _ = pick(rm, validator, None)
            om = max(rm, key=lambda r: r["accuracy"])
            if pm is None:  # every grid point collapsed: this method is not picked at all
                rejected_grids += 1
                continue
            within.append({"task": task, "method": m, "picked": pm["name"], "picked_acc": pm["accuracy"],
                           "oracle": om["name"], "oracle_acc": om["accuracy"],
                           "gap": om["accuracy"] - pm["accuracy"],
                           "collapsed": pm["accuracy"] < 1.5 * chance[task]})
    return {"rows": rows, "within": within,
            "mean_gap": float(np.mean([r["gap"] for r in rows])) if rows else math.nan,
            "mean_within_gap": float(np.mean([r["gap"] for r in within])) if within else math.nan,
            "collapsed": sum(r["collapsed"] for r in rows) + sum(r["collapsed"] for r in within),
            "rejected_grids": rejected_grids}


def run_advisor(task: Any, seed: int = 0, deep: bool = False) -> dict[str, Any]:
    """The advisor on the input features, then every shallow pilot pipeline fitted on the whole
    source (``deep``: the advisor's pilot also trains its small MLP source-only and DANN; those are
    not refitted, and their accuracy is left blank)."""
    from transferkit.assess.advisor import advise
    from transferkit.core.registries import SHALLOW

    t0 = time.perf_counter()
    adv = advise(task, seed=seed, deep=deep)
    X, y, sd = task.train.to_numpy()
    xtest = task.x_test.reshape(len(task.x_test), -1)
    accs = {}
    for row in adv.pilot:
        if row.get("kind") == "deep":
            accs[row["name"]] = math.nan
            continue
        est = SHALLOW.create(row["method"], row["params"])
        if "random_state" in est.get_params():
            est.set_params(random_state=seed)
        try:
            est.fit(X, y, sample_domain=sd)
            accs[row["name"]] = float(np.mean(np.asarray(est.predict(xtest)) == task.y_test) * 100)
        except Exception as exc:  # noqa: BLE001
            accs[row["name"]] = math.nan
            print(f"  advisor pipeline {row['name']} failed: {exc}")
    chosen = adv.pipeline.get("label") or "source_only"
    if chosen not in accs:  # fine_tune cannot happen here (no encoders); keep source-only
        chosen = "source_only"
    adapt = [v for k, v in accs.items() if k != "source_only" and math.isfinite(v)]
    return {"task": task.name, "recommendation": adv.recommendation, "pipeline": chosen,
            "accuracy": accs[chosen], "accuracies": accs,
            "oracle_gain": (max(adapt) - accs["source_only"]) if adapt else math.nan,
            "reasons": adv.reasons, "figures": {k: v for k, v in adv.figures.items()
                                                if isinstance(v, (int, float, bool, str)) or v is None},
            "seconds": time.perf_counter() - t0}


def provenance_header(script: str, argv: list[str] | None, *, launcher: str = "",
                      machine: str = "2 CPU cores (shared with other jobs)") -> list[str]:
    """The two comment lines every results file starts with (command, date, machine), then a blank."""
    args = " ".join(argv if argv is not None else sys.argv[1:])
    return [(f"<!-- produced by: OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 {launcher}"
             f"python benchmarks/{script} {args} -->"),
            (f"<!-- date: {_dt.date.today().isoformat()}; machine: {machine}, {platform.system()} "
             f"{platform.machine()}, Python {platform.python_version()} -->"), ""]


def fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--benchmarks", default=",".join(BENCHMARKS))
    ap.add_argument("--methods", default=None, help="comma-separated subset of the grids")
    ap.add_argument("--tasks", default="all")
    ap.add_argument("--data-params", default=None, type=json.loads,
                    help='JSON object of data-set parameters added to "tasks", e.g. '
                         '\'{"encoder": "minilm", "encoder_params": {"segment": "sentence"}}\'')
    ap.add_argument("--cache", default="selection_vs_oracle.cache.jsonl")
    ap.add_argument("--csv", default=None, help="write every candidate record as CSV")
    ap.add_argument("--out", default=None, help="write the Markdown summary here")
    ap.add_argument("--no-advisor", action="store_true")
    ap.add_argument("--advisor-only", action="store_true", help="no candidate grids, only the advisor")
    ap.add_argument("--advisor-deep", action="store_true",
                    help="the advisor's pilot also trains its small MLP (source-only and DANN)")
    ap.add_argument("--probs-dir", default=None,
                    help="keep each candidate's target probabilities here (needed by ensv)")
    args = ap.parse_args(argv)

    from transferkit.core.registries import DATASETS
    from transferkit.selection._registry import VALIDATORS
    from transferkit.selection.candidates import DEFAULT_VALIDATOR
    from transferkit.selection.validators import is_pool_validator

    t_start = time.perf_counter()
    cache_path = Path(args.cache)
    cache = load_cache(cache_path)
    probs_dir = Path(args.probs_dir) if args.probs_dir else None
    if probs_dir is not None:
        probs_dir.mkdir(parents=True, exist_ok=True)
    benches = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    records: dict[str, dict[str, list[dict[str, Any]]]] = {}
    chance: dict[str, float] = {}
    advisor: list[dict[str, Any]] = []
    for bench in benches:
        methods = [m.strip() for m in args.methods.split(",")] if args.methods else \
            list(AMAZON_METHODS if bench == "amazon_reviews_5000d" else GRIDS)
        if args.advisor_only:
            methods = []
        data = DATASETS.create(bench, {"tasks": args.tasks, **(args.data_params or {})})
        records[bench] = {}
        for name in data.task_names():
            task = data.load_task(name)
            chance[name] = 100.0 / task.num_classes
            print(f"{bench} {name}", flush=True)
            records[bench][name] = evaluate_candidates(bench, task, methods, cache, cache_path, probs_dir)
            if not args.no_advisor:
                a = run_advisor(task, deep=args.advisor_deep)
                a["benchmark"] = bench
                advisor.append(a)
                print(f"  advisor: {a['recommendation']} -> {a['pipeline']} ({fmt(a['accuracy'])}); "
                      f"oracle gain of adapting {fmt(a['oracle_gain'])}", flush=True)

    lines: list[str] = []
    say = lambda s="": (print(s), lines.append(s))
    all_records = {t: r for b in records.values() for t, r in b.items()}
    n_cands = sum(len(r) for r in all_records.values())
    n_failed = sum(1 for r in all_records.values() for c in r if c["status"] != "ok")
    say("# Label-free selection vs the oracle; the advisor vs fixed methods")
    say()
    say(f"{len(all_records)} tasks ({', '.join(benches)}), {n_cands} candidates "
        f"({n_failed} could not be fitted and are left out). Candidates are fitted on 80 % of the "
        "source (stratified, seed 0) + the unlabelled target; validators see the held-out 20 % and "
        "the target; accuracy is on the labelled target split, used only after every choice.")
    say()
    if n_cands:  # (none with --advisor-only)
        say(f"## Selection by the default validator `{DEFAULT_VALIDATOR}` with the collapse guard")
        say()
        res = {b: selection_table(r, DEFAULT_VALIDATOR, chance) for b, r in records.items()}
        say("| benchmark | task | picked (across methods) | acc | oracle pick | acc | gap |")
        say("|---|---|---|---|---|---|---|")
        for b, rr in res.items():
            for r in rr["rows"]:
                say(f"| {b} | {r['task']} | {r['picked']} | {fmt(r['picked_acc'])}{' COLLAPSED' if r['collapsed'] else ''} "
                    f"| {r['oracle']} | {fmt(r['oracle_acc'])} | {fmt(r['gap'])} |")
        say()
        say("| benchmark | mean gap across methods | mean gap within each method's grid | collapsed picks | "
            "grids rejected whole by the guard |")
        say("|---|---|---|---|---|")
        all_rows = [r for rr in res.values() for r in rr["rows"]]
        all_within = [r for rr in res.values() for r in rr["within"]]
        for b, rr in res.items():
            say(f"| {b} | {fmt(rr['mean_gap'])} | {fmt(rr['mean_within_gap'])} | {rr['collapsed']} | "
                f"{rr['rejected_grids']} |")
        say(f"| all ({len(all_rows)} tasks) | {fmt(np.mean([r['gap'] for r in all_rows]))} | "
            f"{fmt(np.mean([r['gap'] for r in all_within]))} | "
            f"{sum(r['collapsed'] for r in all_rows) + sum(r['collapsed'] for r in all_within)} | "
            f"{sum(rr['rejected_grids'] for rr in res.values())} |")
        say()
        say("Within-grid gaps per method (mean over tasks):")
        say()
        say("| method | " + " | ".join(res) + " |")
        say("|---|" + "---|" * len(res))
        for m in GRIDS:
            cells = []
            for b, rr in res.items():
                g = [r["gap"] for r in rr["within"] if r["method"] == m]
                cells.append(fmt(float(np.mean(g))) if g else "-")
            if any(c != "-" for c in cells):
                say(f"| {m} | " + " | ".join(cells) + " |")
        say()
        say("## Every validator (same candidates, guard on)")
        say()
        say("| validator | " + " | ".join(f"{b}: across / within" for b in res) + " | all: across / within | collapsed |")
        say("|---|" + "---|" * (len(res) + 2))
        for v in [DEFAULT_VALIDATOR, *VALIDATORS.names()]:
            if probs_dir is None and is_pool_validator(v):
                continue  # needs the candidates' target probabilities
            rv = {b: selection_table(r, v, chance) for b, r in records.items()}
            a_rows = [r for rr in rv.values() for r in rr["rows"]]
            a_within = [r for rr in rv.values() for r in rr["within"]]
            coll = sum(r["collapsed"] for r in a_rows) + sum(r["collapsed"] for r in a_within)
            say(f"| {v} | " + " | ".join(f"{fmt(rr['mean_gap'])} / {fmt(rr['mean_within_gap'])}" for rr in rv.values())
                + f" | {fmt(np.mean([r['gap'] for r in a_rows]))} / {fmt(np.mean([r['gap'] for r in a_within]))} | {coll} |")
        say()
    if advisor:
        say("## The advisor")
        say()
        say("| benchmark | task | advice | pipeline | its acc | source_only | coral | sa | oracle gain of adapting |")
        say("|---|---|---|---|---|---|---|---|---|")
        for a in advisor:
            acc = a["accuracies"]
            say(f"| {a['benchmark']} | {a['task']} | {a['recommendation']} | {a['pipeline']} | "
                f"{fmt(a['accuracy'])} | {fmt(acc.get('source_only'))} | {fmt(acc.get('coral'))} | "
                f"{fmt(acc.get('sa'))} | {fmt(a['oracle_gain'])} |")
        say()
        names = list(advisor[0]["accuracies"])
        fixed = {n: float(np.mean([a["accuracies"][n] for a in advisor])) for n in names
                 if all(math.isfinite(a["accuracies"][n]) for a in advisor)}  # deep pilots: not refitted
        adv_mean = float(np.mean([a["accuracy"] for a in advisor]))
        best = max(fixed, key=lambda n: fixed[n])
        say(f"Advisor's pipeline, mean over {len(advisor)} tasks: {fmt(adv_mean)}. Fixed pipelines: "
            + ", ".join(f"{n} {fmt(v)}" for n, v in fixed.items())
            + f". Best fixed: {best} ({fmt(fixed[best])}); advisor - best fixed = {adv_mean - fixed[best]:+.2f} "
            f"({'target met' if adv_mean >= fixed[best] else 'target missed'}: advisor mean >= best fixed mean).")
        say()
        no = [a for a in advisor if a["recommendation"] in ("no_adaptation", "negative_transfer_likely")]
        agree = [a for a in no if a["oracle_gain"] < 1.0]
        rate = len(agree) / len(no) if no else math.nan
        say(f"Adaptation judged not worth it on {len(no)} of {len(advisor)} tasks; the oracle agrees "
            f"(adapting gains < 1 pt) on {len(agree)} of them ({fmt(100 * rate) if no else '-'} %; target >= 80 %: "
            f"{'met' if no and rate >= 0.8 else 'missed' if no else 'not applicable'}).")
        counts = {r: sum(a["recommendation"] == r for a in advisor) for r in dict.fromkeys(a["recommendation"] for a in advisor)}
        say("Recommendations: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ".")
        say()
    say(f"Wall time {time.perf_counter() - t_start:.0f} s.")

    if args.csv:
        keys = sorted({k for r in all_records.values() for c in r if c["status"] == "ok" for k in c["scores"]})
        with open(args.csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["benchmark", "task", "method", "params", "status", "target_accuracy", "guard_ok", *keys])
            for recs in all_records.values():
                for c in recs:
                    sc = c.get("scores") or {}
                    w.writerow([c["benchmark"], c["task"], c["method"], json.dumps(c["params"]), c["status"],
                                "" if c.get("accuracy") is None else f"{c['accuracy']:.2f}", c.get("guard_ok", ""),
                                *("" if sc.get(k) is None else f"{sc[k]:.6g}" for k in keys)])
    if args.out:
        head = provenance_header("selection_vs_oracle.py", argv)
        Path(args.out).write_text("\n".join(head + lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
