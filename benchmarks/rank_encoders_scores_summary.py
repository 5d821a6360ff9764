"""Kendall tau of every feature score against target linear-probe accuracy, on the seven encoder
ranking tasks: the two digits images tasks (``rank_encoders_digits.py --csv``) and the five
held-out tasks (``rank_encoders_heldout.py --tables ... --csv``). Nothing is computed here but the
taus (``scipy.stats.kendalltau``, tau-b, as both scripts) from the scores and accuracies in those
CSVs; both variants: the features as they are (``raw``) and z-scored per column (``std``, the
default of ``rank_encoders``).

    python benchmarks/rank_encoders_scores_summary.py --digits digits.csv --heldout heldout.csv \
        --csv benchmarks/results/rank_encoders_more_scores.csv
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
from rank_encoders_digits import FEATURE_SCORES, kendall


def _rows(path: Path, cand_col: str, raw_suffix: str) -> dict[str, list[tuple[str, float, dict[str, float]]]]:
    """``{task: [(candidate, probe accuracy, {score_variant: value})]}``."""
    out: dict[str, list[tuple[str, float, dict[str, float]]]] = defaultdict(list)
    with open(path) as fh:
        for r in csv.DictReader(fh):
            if not r.get(cand_col) or not r.get("probe_accuracy"):
                continue          # summary rows (taus) of the digits CSV
            vals = {}
            for s in FEATURE_SCORES:
                vals[f"{s}_raw"] = float(r[f"{s}{raw_suffix}"])
                vals[f"{s}_std"] = float(r[f"{s}_std"])
            out[r["task"]].append((r[cand_col], float(r["probe_accuracy"]), vals))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--digits", type=Path, required=True)
    ap.add_argument("--heldout", type=Path, required=True)
    ap.add_argument("--csv", type=Path, required=True)
    args = ap.parse_args()

    tasks = {**_rows(args.digits, "encoder", ""), **_rows(args.heldout, "candidate", "_raw")}
    held = [t for t in tasks if t not in ("MNIST-USPS", "USPS-MNIST")]
    cols = [f"{s}_{v}" for s in FEATURE_SCORES for v in ("std", "raw")]
    taus = {t: {c: kendall(np.array([r[2][c] for r in rows]), np.array([r[1] for r in rows])) for c in cols}
            for t, rows in tasks.items()}
    with open(args.csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["task", "candidates", *cols])
        for t, rows in tasks.items():
            w.writerow([t, len(rows), *(f"{taus[t][c]:+.3f}" for c in cols)])

    print("| score | " + " | ".join(tasks) + " | mean, 5 held-out | mean, all 7 |")
    print("|---|" + "---|" * (len(tasks) + 2))
    for c in cols:
        s, v = c.rsplit("_", 1)
        name = f"{s} ({'z-scored' if v == 'std' else 'as they are'})"
        print(f"| {name} | " + " | ".join(f"{taus[t][c]:+.3f}" for t in tasks)
              + f" | {statistics.mean(taus[t][c] for t in held):+.3f}"
              + f" | {statistics.mean(taus[t][c] for t in tasks):+.3f} |")


if __name__ == "__main__":
    main()
