"""One recipe, several seeds: collect ``transferkit bench amazon_reviews_text`` output folders that
differ only in ``seed=`` into one table (target accuracy per task and seed, the 12-task mean of each
seed, the mean over seeds and its spread). Nothing is trained here; every figure is read from the
folders' ``report.json``.

    python benchmarks/amazon_text_bench_seeds.py --runs runs/bench_amazon_text_full \
        runs/bench_amazon_text_full_seed1 runs/bench_amazon_text_full_seed2 \
        --method full --csv benchmarks/results/amazon_reviews_text_bench_seeds.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

from amazon_text_finetune_table import TASKS


def read_bench(folder: Path, method: str) -> tuple[int, dict[str, dict]]:
    """``(seed, {task: run})`` of one bench output folder; refuses a folder with a task missing or
    failed, so that no mean is taken over fewer tasks than the benchmark has."""
    rep = json.loads((folder / "report.json").read_text())
    runs = {r["task"]: r for r in rep["runs"] if r["method"] == method and r.get("status") == "ok"}
    missing = [t for t in TASKS if t not in runs]
    if missing:
        raise SystemExit(f"{folder}: no finished {method!r} run for {', '.join(missing)}")
    return int(rep["seed"]), runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, nargs="+", required=True, help="bench output folders, one per seed")
    ap.add_argument("--method", default="full")
    ap.add_argument("--csv", type=Path, required=True)
    args = ap.parse_args()

    benches = sorted((read_bench(f, args.method) + (f,) for f in args.runs), key=lambda b: b[0])
    seeds = [b[0] for b in benches]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"two folders have the same seed: {seeds}")
    acc = {s: {t: float(runs[t]["metrics"]["target_accuracy"]) for t in TASKS} for s, runs, _ in benches}
    kept = {s: {t: runs[t]["metrics"].get("kept_step") for t in TASKS} for s, runs, _ in benches}
    src = {s: {t: runs[t]["metrics"].get("source_accuracy") for t in TASKS} for s, runs, _ in benches}

    with open(args.csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["task", *(f"seed{s}_accuracy" for s in seeds), "mean", "sd",
                    *(f"seed{s}_source_heldout_accuracy" for s in seeds), *(f"seed{s}_kept_step" for s in seeds)])
        for t in TASKS:
            vals = [acc[s][t] for s in seeds]
            w.writerow([t, *(f"{v:.1f}" for v in vals), f"{statistics.mean(vals):.2f}",
                        f"{statistics.stdev(vals):.2f}" if len(vals) > 1 else "",
                        *(src[s][t] for s in seeds), *(int(kept[s][t]) if kept[s][t] is not None else ""
                                                       for s in seeds)])

    print(f"| task | {' | '.join(f'seed {s}' for s in seeds)} | mean | sd |")
    print("|---|" + "---|" * (len(seeds) + 2))
    for t in TASKS:
        vals = [acc[s][t] for s in seeds]
        sd = f"{statistics.stdev(vals):.1f}" if len(vals) > 1 else ""
        print(f"| {t} | {' | '.join(f'{v:.1f}' for v in vals)} | {statistics.mean(vals):.1f} | {sd} |")
    means = [statistics.mean(acc[s][t] for t in TASKS) for s in seeds]
    sd_means = f"{statistics.stdev(means):.2f}" if len(means) > 1 else ""
    print(f"| **12-task mean** | {' | '.join(f'**{m:.2f}**' for m in means)} | **{statistics.mean(means):.2f}** "
          f"| {sd_means} |")
    for s, _, folder in benches:
        print(f"seed {s}: {folder}")


if __name__ == "__main__":
    main()
