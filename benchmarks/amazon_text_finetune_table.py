"""Collect the fine-tuning runs of ``amazon_reviews_text`` (one ``transferkit bench`` output folder per
task, see ``--runs``) into one table: target accuracy per task and method, the frozen MiniLM +
logistic-regression accuracy beside it, source validation accuracy and the time of every run.

Only finished runs (``runs/<task>/<method>/result.json``) are read; a task or method without one
is left blank and listed as missing. Nothing is trained here.

    python benchmarks/amazon_text_finetune_table.py --runs runs/amazon_text_finetune \
        --frozen benchmarks/results/amazon_reviews_text_frozen.csv \
        --csv benchmarks/results/amazon_reviews_text_finetune.csv --md-table /tmp/table.md
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

TASKS = [f"{s}-{t}" for s in "BDEK" for t in "BDEK" if s != t]


def collect(runs: Path) -> dict[tuple[str, str], dict]:
    """``{(task, method): run}`` of every finished run below ``runs`` (``<task>/runs/<task>/<method>``)."""
    out: dict[tuple[str, str], dict] = {}
    for f in sorted(runs.glob("*/runs/*/*/result.json")):
        run = json.loads(f.read_text())["run"]
        if run.get("status") == "ok":
            out[(run["task"], run["method"])] = run
    return out


def frozen_accuracy(path: Path | None) -> dict[str, float]:
    if path is None or not path.is_file():
        return {}
    with open(path) as fh:
        return {r["task"]: float(r["accuracy"]) for r in csv.DictReader(fh)}


def _f(v: float | None, nd: int = 1) -> str:
    return "" if v is None else f"{v:.{nd}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--frozen", type=Path, default=Path("benchmarks/results/amazon_reviews_text_frozen.csv"))
    ap.add_argument("--methods", default="full,lora,gradual_unfreeze,l2sp,dann+full")
    ap.add_argument("--csv", type=Path, required=True)
    ap.add_argument("--md-table", type=Path, required=True, help="where to write the Markdown tables")
    args = ap.parse_args()

    runs = collect(args.runs)
    methods = args.methods.split(",")
    frozen = frozen_accuracy(args.frozen)
    tasks = [t for t in TASKS if any((t, m) in runs for m in methods)]

    with open(args.csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["task", "method", "accuracy", "source_val_accuracy", "fit_seconds", "evaluate_seconds",
                    "total_seconds", "frozen_logreg_accuracy"])
        for t in tasks:
            for m in methods:
                r = runs.get((t, m))
                if r is None:
                    continue
                tm, mt = r.get("timings", {}), r.get("metrics", {})
                w.writerow([t, m, _f(mt.get("target_accuracy"), 2), _f(mt.get("source_accuracy"), 2),
                            _f(tm.get("fit"), 0), _f(tm.get("evaluate"), 0), _f(tm.get("total"), 0),
                            _f(frozen.get(t), 2)])
        for m in methods:
            accs = [runs[(t, m)]["metrics"]["target_accuracy"] for t in tasks if (t, m) in runs]
            if accs and len(accs) == len(tasks):
                w.writerow(["mean", m, _f(sum(accs) / len(accs), 2), "", "", "", "",
                            _f(sum(frozen[t] for t in tasks) / len(tasks), 2) if all(t in frozen for t in tasks)
                            else ""])

    lines = ["| task | frozen + logreg | " + " | ".join(methods) + " |", "|---" * (len(methods) + 2) + "|"]
    for t in tasks:
        cells = [_f(runs[(t, m)]["metrics"]["target_accuracy"]) if (t, m) in runs else "not run" for m in methods]
        lines.append(f"| {t} | {_f(frozen.get(t))} | " + " | ".join(cells) + " |")
    mean_cells = []
    for m in methods:
        accs = [runs[(t, m)]["metrics"]["target_accuracy"] for t in tasks if (t, m) in runs]
        mean_cells.append(_f(sum(accs) / len(accs)) if accs and len(accs) == len(tasks) else "")
    fz = _f(sum(frozen[t] for t in tasks) / len(tasks)) if tasks and all(t in frozen for t in tasks) else ""
    lines.append(f"| **mean of these {len(tasks)} tasks** | {fz} | " + " | ".join(mean_cells) + " |")

    lines += ["", "| task | method | source val. acc. (%) | training (s) | evaluation (s) | run total (s) |",
              "|---|---|---|---|---|---|"]
    for t in tasks:
        for m in methods:
            r = runs.get((t, m))
            if r is None:
                continue
            tm = r.get("timings", {})
            lines.append(f"| {t} | {m} | {_f(r['metrics'].get('source_accuracy'))} | {_f(tm.get('fit'), 0)} | "
                         f"{_f(tm.get('evaluate'), 0)} | {_f(tm.get('total'), 0)} |")
    missing = [f"{t} {m}" for t in tasks for m in methods if (t, m) not in runs]
    if missing:
        lines += ["", "Not run (no finished result): " + ", ".join(missing) + "."]
    args.md_table.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
