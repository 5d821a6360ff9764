"""Frozen all-MiniLM-L6-v2 + logistic regression on the 12 ``amazon_reviews_text`` tasks, run
twice in fresh processes: the first run extracts the features (or finds them cached), the second
must read every domain from the feature cache. Writes ``<results>/amazon_reviews_text_frozen.md``
and ``.csv`` with per-task accuracy, the extraction and cache-hit timings and their ratio.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        python benchmarks/amazon_text_frozen.py --cache-dir /tmp/tk-features --out runs/amazon_text_frozen

The experiment is the same as ``transferkit bench amazon_reviews_text --methods logreg`` with
the data set's preset (``encoder: minilm``): logistic regression (C = 1, fixed in advance) on the
labelled source features, accuracy on the target's held-out half.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def config(cache_dir: str | None) -> dict:
    params: dict = {"tasks": "all", "encoder": "minilm", "progress": False}
    if cache_dir:
        params["cache_dir"] = cache_dir
    return {"name": "amazon_reviews_text-frozen-minilm", "seed": 0,
            "data": {"name": "amazon_reviews_text", "params": params},
            "methods": [{"name": "logreg", "params": {}}]}


def single_run(cache_dir: str | None, summary: Path) -> None:
    """One run in this process: (1) load the 12 tasks through the data set, which extracts or
    reads the features of the 4 domains (timed); (2) the experiment itself (logreg on every task).
    The cache records, timings and accuracies go to ``summary`` (JSON)."""
    import torch

    from transferkit.core.registries import DATASETS
    from transferkit.experiment.config import validate_config
    from transferkit.experiment.runner import run_experiment

    torch.set_num_threads(1)
    records: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if hasattr(record, "cache"):
                records.append(dict(record.cache))  # type: ignore[attr-defined]

    log = logging.getLogger("transferkit.cache")
    log.setLevel(logging.INFO)
    log.addHandler(Collect())
    cfg = config(cache_dir)
    t0 = time.perf_counter()
    data = DATASETS.create("amazon_reviews_text", cfg["data"]["params"])
    for name in data.task_names():
        data.load_task(name)
    load_all = time.perf_counter() - t0
    out = {"cache": list(records), "load_all_tasks_seconds": load_all, "load_average": os.getloadavg()}
    summary.write_text(json.dumps(out, indent=1))
    t1 = time.perf_counter()
    result = run_experiment(validate_config(cfg), None, progress=False, write=False)
    out["experiment_seconds"] = time.perf_counter() - t1
    out["accuracy"] = {r.task: r.metrics.get("target_accuracy") for r in result.runs}
    out["errors"] = {r.task: r.error for r in result.runs if r.status != "ok"}
    summary.write_text(json.dumps(out, indent=1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/amazon_text_frozen", help="folder for the two runs' summaries")
    ap.add_argument("--cache-dir", default=None, help="feature cache folder (default: $TRANSFERKIT_CACHE or "
                    "~/.cache/transferkit/features)")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"), help="where the tables go")
    ap.add_argument("--single", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--tables-only", action="store_true", help="rewrite the tables from the runs in --out")
    args = ap.parse_args()
    out = Path(args.out)
    if args.tables_only:
        write_tables({n: json.loads((out / f"{n}.json").read_text()) for n in ("run1", "run2")},
                     Path(args.results), args)
        return 0
    if args.single:
        single_run(args.cache_dir, out / f"{args.single}.json")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for name in ("run1", "run2"):
        cmd = [sys.executable, __file__, "--out", str(out), "--single", name]
        if args.cache_dir:
            cmd += ["--cache-dir", args.cache_dir]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        runs[name] = json.loads((out / f"{name}.json").read_text())
        runs[name]["process_seconds"] = time.perf_counter() - t0
        (out / f"{name}.json").write_text(json.dumps(runs[name], indent=1))
        print(f"{name}: {runs[name]['process_seconds']:.1f} s", flush=True)
    write_tables(runs, Path(args.results), args)
    return 0


def write_tables(runs: dict, results: Path, args: argparse.Namespace) -> None:
    import torch

    r1, r2 = runs["run1"], runs["run2"]
    acc = r1.get("accuracy") or r2["accuracy"]
    tasks = list(acc)
    same = all(r1.get("accuracy", {}).get(t) == r2.get("accuracy", {}).get(t) for t in tasks)
    vals = [acc[t] for t in tasks if acc[t] is not None]
    mean = sum(vals) / len(vals) if len(vals) == len(tasks) else None
    results.mkdir(parents=True, exist_ok=True)
    with open(results / "amazon_reviews_text_frozen.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["task", "method", "accuracy"])
        for t in tasks:
            a = acc[t]
            w.writerow([t, "minilm+logreg", "" if a is None else f"{a:.2f}"])
        w.writerow(["mean", "minilm+logreg", "" if mean is None else f"{mean:.2f}"])
    cache_cmd = f" --cache-dir {args.cache_dir}" if args.cache_dir else ""
    default_results = str(ROOT / "benchmarks" / "results")
    res_cmd = "" if str(Path(args.results).resolve()) == default_results else f" --results {args.results}"
    cmd = (f"OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/amazon_text_frozen.py"
           f"{cache_cmd} --out {args.out}{res_cmd}")
    machine = (f"{os.cpu_count()} CPU cores (shared with other jobs), {platform.system()} {platform.machine()}, "
               f"Python {platform.python_version()}, torch {torch.__version__}")
    lines = [f"<!-- produced by: {cmd} -->",
             f"<!-- date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; machine: {machine}; one torch thread -->",
             "", "# amazon_reviews_text: frozen all-MiniLM-L6-v2 + logistic regression", "",
             ("Source-only logistic regression (C = 1, fixed in advance) on mean-pooled, L2-normalised "
              "all-MiniLM-L6-v2 embeddings of the review body (max 256 tokens). 2,000 labelled source reviews; "
              "accuracy on the target's held-out half (1,000 reviews, stratified split, seed 0); target labels "
              "are used only to measure accuracy. Same experiment as `transferkit bench amazon_reviews_text "
              "--methods logreg` with the data set's preset (`encoder: minilm`)."), "",
             "| task | accuracy (%) |", "|---|---|"]
    for t in tasks:
        a = acc[t]
        lines.append(f"| {t} | {'failed' if a is None else f'{a:.1f}'} |")
    lines.append(f"| **mean** | **{'' if mean is None else f'{mean:.1f}'}** |")
    lines += ["", f"The second run gave {'identical' if same else 'DIFFERENT'} accuracies.", "",
              "## Feature cache", "",
              ("Features are extracted once per domain (2,000 reviews) and encoder, then read back. Run 1 and "
               "run 2 are separate processes on the same cache folder."), "",
              "| domain | run 1 | extraction (s) | run 2 | cache read (s) | extraction / read |", "|---|---|---|---|---|---|"]
    by2 = {c["what"]: c for c in r2["cache"]}
    tot_x = tot_l = 0.0
    for c in r1["cache"]:
        c2 = by2.get(c["what"], {})
        x, ld = c["extract_seconds"], c2.get("load_seconds")
        tot_x += x or 0.0
        tot_l += ld or 0.0
        ratio = f"{x / ld:,.0f}x" if ld else ""
        lines.append(f"| {c['what'].split()[-1]} | {'hit' if c['hit'] else 'extracted'} | {x:.1f} | "
                     f"{'hit' if c2.get('hit') else 'miss'} | {'' if ld is None else f'{ld:.3f}'} | {ratio} |")
    lines.append(f"| all | | {tot_x:.1f} | | {tot_l:.3f} | {tot_x / tot_l:,.0f}x |" if tot_l else "| all | | | | | |")
    key2 = sum(c.get("key_seconds", 0.0) for c in r2["cache"])
    l1, l2 = r1["load_all_tasks_seconds"], r2["load_all_tasks_seconds"]
    lines += ["", (f"Loading the 12 tasks (reading the reviews, building the encoder, hashing its weights for the "
                   f"cache key, then extracting or reading the features): run 1 {l1:.0f} s, run 2 {l2:.1f} s "
                   f"({l1 / l2:.0f}x). Hashing the texts for the cache keys took {key2:.2f} s in run 2. "
                   f"The 12 logistic regressions then took {r1.get('experiment_seconds', float('nan')):.0f} s "
                   "(run 1, features already in the cache)."),
              "", ("Extraction: batches of 64 reviews sorted by length, each trimmed to its longest review, one "
                   "torch thread. The machine was shared with other jobs (load average "
                   f"{r1['load_average'][1]:.1f} over the 5 minutes before run 1 finished loading, on 2 cores), so "
                   "the extraction times are longer than on an idle machine.")]
    if not r1["cache"] or r1["cache"][0]["hit"]:
        lines += ["", ("Note: run 1 found the features already cached; its extraction times are those recorded "
                       "when the entries were made.")]
    text = "\n".join(lines) + "\n"
    (results / "amazon_reviews_text_frozen.md").write_text(text)
    print(text)


if __name__ == "__main__":
    raise SystemExit(main())
