"""Collect the deep runs of ``transferkit bench amazon_reviews_5000d`` on mSDA features
(``data.params.preprocess=msda``; one or more output folders, e.g. one per half of the tasks) into
one table: target accuracy per task and method, their means, the held-out source accuracy mean,
the fit time, and the published mSDA columns of the DANN paper beside them.

Only finished runs (``<folder>/runs/<task>/<method>/result.json``) are read; nothing is trained.

    python benchmarks/amazon_msda_deep_table.py --runs runs/amazon-msda-B runs/amazon-msda-E \\
        --csv benchmarks/results/amazon_reviews_5000d_g_msda_deep.csv --md-table /tmp/table.md
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

TASKS = [f"{s}-{t}" for s in "BDEK" for t in "BDEK" if s != t]
#: Ganin et al. 2016 (JMLR) Table 1, mSDA representations (a secondary copy of the table, see
#: ../shared/FIELD.md, section C4): DANN and a plain one-hidden-layer network (NN)
PUBLISHED_MSDA = {
    "dann": [82.9, 80.4, 84.3, 82.5, 80.9, 84.9, 77.4, 78.1, 88.1, 71.8, 78.9, 85.6],
    "source_only": [82.4, 77.0, 84.2, 82.3, 76.8, 85.3, 77.0, 75.9, 86.3, 72.1, 78.9, 85.0],
}


def collect(folders: list[Path]) -> dict[tuple[str, str], dict]:
    out: dict[tuple[str, str], dict] = {}
    for folder in folders:
        for f in sorted(folder.glob("runs/*/*/result.json")):
            run = json.loads(f.read_text())["run"]
            if run.get("status") == "ok":
                out.setdefault((run["task"], run["method"]), run)
    return out


def _mean(vals: list[float]) -> float | None:
    return sum(vals) / len(vals) if vals else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, nargs="+", required=True)
    ap.add_argument("--methods", default="source_only,dann,cdan,dan,jan,deep_coral,mcc")
    ap.add_argument("--csv", type=Path, required=True)
    ap.add_argument("--md-table", type=Path, required=True)
    args = ap.parse_args()
    runs = collect(args.runs)
    methods = args.methods.split(",")

    with open(args.csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["task", "method", "target_accuracy", "source_val_accuracy", "fit_seconds", "published_msda"])
        for i, t in enumerate(TASKS):
            for m in methods:
                r = runs.get((t, m))
                if r is None:
                    continue
                pub = PUBLISHED_MSDA.get(m, [None] * 12)[i]
                w.writerow([t, m, f"{r['metrics']['target_accuracy']:.2f}", f"{r['metrics']['source_accuracy']:.2f}",
                            f"{r['timings'].get('fit', 0):.0f}", "" if pub is None else pub])

    head = ["task", *methods, "DANN (mSDA), published", "NN (mSDA), published"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    cols: dict[str, list[float]] = {m: [] for m in methods}
    complete = []
    for i, t in enumerate(TASKS):
        cells = []
        for m in methods:
            r = runs.get((t, m))
            if r is None:
                cells.append("not run")
                continue
            acc = r["metrics"]["target_accuracy"]
            cols[m].append(acc)
            cells.append(f"{acc:.1f}")
        if all((t, m) in runs for m in methods):
            complete.append(i)
        lines.append(f"| {t} | " + " | ".join(cells) + f" | {PUBLISHED_MSDA['dann'][i]:.1f} | "
                     f"{PUBLISHED_MSDA['source_only'][i]:.1f} |")
    means = [f"**{_mean(cols[m]):.1f}**" if len(cols[m]) == 12 else
             (f"{_mean(cols[m]):.1f} ({len(cols[m])} tasks)" if cols[m] else "") for m in methods]
    lines.append("| mean | " + " | ".join(means) + " | 81.3 | 80.3 |")
    src = [_mean([runs[(t, m)]["metrics"]["source_accuracy"] for t in TASKS if (t, m) in runs]) for m in methods]
    lines.append("| held-out source accuracy (mean) | " + " | ".join("" if v is None else f"{v:.1f}" for v in src)
                 + " | | |")
    fit = [_mean([runs[(t, m)]["timings"].get("fit", 0.0) for t in TASKS if (t, m) in runs]) for m in methods]
    lines.append("| fit time per task (s, mean) | " + " | ".join("" if v is None else f"{v:.0f}" for v in fit)
                 + " | | |")
    args.md_table.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
