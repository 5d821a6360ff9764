"""Few-shot sentiment on the four ``amazon_reviews_text`` domains: SetFit-style contrastive
fine-tuning of all-MiniLM-L6-v2 + logistic regression vs the frozen MiniLM linear probe
(logistic regression) on the same labelled reviews.

Protocol, per domain (books, dvd, electronics, kitchen) and per draw (5 draws):

* the domain's 2,000 reviews are split as the benchmark splits a target domain (stratified,
  seed 0): a fixed held-out half (1,000 reviews) used only to measure accuracy, and the other
  half, from which ``--shots`` (8) reviews per class are drawn at random (seed derived from the
  domain and the draw number);
* frozen probe: logistic regression (C = 1) on the frozen, mean-pooled, L2-normalised MiniLM
  embeddings (max 256 tokens) of the 16 labelled reviews, read from the feature cache;
* SetFit: :class:`transferkit.fewshot.SetFitClassifier` with its defaults (20 pair iterations per
  example -> 640 pairs, 1 epoch, AdamW lr 2e-5, batch 16 pairs, 128 tokens while fine-tuning), then
  logistic regression (C = 1) on the fine-tuned embeddings (256 tokens) of the same 16 reviews;
* both are scored on the same held-out reviews (all 1,000 unless ``--eval-limit``).

Nothing is tuned: every setting above is fixed in advance. Each draw is saved to
``<out>/<domain>_<draw>.json`` and skipped when present (the run resumes).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 \\
        python benchmarks/fewshot_text.py --out runs/fewshot_text
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = {"B": "books", "D": "dvd", "E": "electronics", "K": "kitchen"}


def draw_indices(pool: np.ndarray, y: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """``shots`` indices per class from ``pool`` (indices into ``y``), uniformly without replacement."""
    g = np.random.default_rng(seed)
    out = [g.choice(pool[y[pool] == c], size=shots, replace=False) for c in np.unique(y)]
    return np.sort(np.concatenate(out))


def eval_subset(te: np.ndarray, y: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if not limit or limit >= len(te):
        return te
    g = np.random.default_rng(seed)
    per = limit // 2
    return np.sort(np.concatenate([g.choice(te[y[te] == c], size=per, replace=False) for c in np.unique(y)]))


def run(args: argparse.Namespace) -> None:
    import torch
    from sklearn.linear_model import LogisticRegression

    from transferkit.core.seed import derive_seed
    from transferkit.data.text import AmazonReviewsText
    from transferkit.fewshot import SetFitClassifier
    from transferkit.models.encoders import create_encoder

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = AmazonReviewsText(encoder="minilm", progress=False, cache_dir=args.cache_dir)
    base = None
    for key in args.domains.split(","):
        texts, y = ds.domain_texts(key)
        tr, te = ds.target_split(key)
        te = eval_subset(te, y, args.eval_limit, derive_seed(0, "fewshot_text-eval", DOMAINS[key]))
        t0 = time.perf_counter()
        feats = ds.domain_x(key)  # frozen features through the feature cache
        cache_info = ds.encoded.log.get(DOMAINS[key], {})
        t_feats = time.perf_counter() - t0
        for d in range(args.draws):
            path = out / f"{DOMAINS[key]}_{d}.json"
            if path.is_file():
                print(f"{path.name}: done, skipped", flush=True)
                continue
            seed = derive_seed(0, "fewshot_text", DOMAINS[key], d)
            idx = draw_indices(tr, y, args.shots, seed)
            probe = LogisticRegression(C=1.0, max_iter=5000, random_state=0).fit(feats[idx], y[idx])
            acc_frozen = float(np.mean(probe.predict(feats[te]) == y[te]))
            if base is None:
                base = create_encoder("minilm")
            t1 = time.perf_counter()
            clf = SetFitClassifier(base, num_iterations=args.num_iterations, seed=seed % (2**31))
            clf.fit([texts[i] for i in idx], y[idx])
            t_fit = time.perf_counter() - t1
            t2 = time.perf_counter()
            acc_setfit = float(np.mean(clf.predict([texts[i] for i in te]) == y[te]))
            t_eval = time.perf_counter() - t2
            rec = {"domain": DOMAINS[key], "draw": d, "seed": seed, "shots": args.shots, "train_idx": idx.tolist(),
                   "n_eval": len(te), "frozen_probe": acc_frozen, "setfit": acc_setfit,
                   "num_pairs": clf.history_.num_pairs, "num_steps": clf.history_.num_steps,
                   "loss_first": clf.history_.losses[:5], "loss_last": clf.history_.losses[-5:],
                   "fit_seconds": t_fit, "eval_seconds": t_eval, "frozen_features_seconds": t_feats,
                   "frozen_features_cache": {k: v for k, v in cache_info.items() if k != "key"}}
            path.write_text(json.dumps(rec, indent=1))
            print(f"{DOMAINS[key]} draw {d}: frozen {100 * acc_frozen:.1f}  setfit {100 * acc_setfit:.1f}  "
                  f"(fit {t_fit:.0f} s, eval {t_eval:.0f} s)", flush=True)


def write_tables(args: argparse.Namespace) -> None:
    import torch

    out = Path(args.out)
    recs = [json.loads(p.read_text()) for p in sorted(out.glob("*_*.json"))]
    by: dict[str, list[dict]] = {}
    for r in recs:
        by.setdefault(r["domain"], []).append(r)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    with open(results / "fewshot_text.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["domain", "draw", "seed", "n_eval", "frozen_probe", "setfit", "gain", "fit_seconds",
                    "eval_seconds"])
        for r in recs:
            w.writerow([r["domain"], r["draw"], r["seed"], r["n_eval"], f"{100 * r['frozen_probe']:.2f}",
                        f"{100 * r['setfit']:.2f}", f"{100 * (r['setfit'] - r['frozen_probe']):.2f}",
                        f"{r['fit_seconds']:.0f}", f"{r['eval_seconds']:.0f}"])
    eval_note = ("all 1,000 held-out reviews of the domain" if not args.eval_limit else
                 f"a fixed stratified subsample of {args.eval_limit} of the domain's 1,000 held-out reviews")
    machine = (f"2 CPU cores, shared with other jobs ({os.cpu_count()} visible), {platform.system()} "
               f"{platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}, one torch thread")
    cmd = ("OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 python "
           f"benchmarks/fewshot_text.py --out {args.out}"
           + (f" --eval-limit {args.eval_limit}" if args.eval_limit else "")
           + (f" --num-iterations {args.num_iterations}" if args.num_iterations != 20 else ""))
    lines = [f"<!-- produced by: {cmd} -->",
             f"<!-- date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; machine: {machine} -->", "",
             (f"# Few-shot sentiment, {args.shots} labelled reviews per class: contrastive fine-tuning (SetFit) vs "
              "frozen linear probe"), "",
             (f"amazon_reviews_text, each domain on its own. {args.shots} labelled reviews per class drawn from the "
              "domain's adaptation half (stratified split, seed 0); accuracy on "
              f"{eval_note} (the benchmark's fixed held-out half). Frozen probe: logistic regression (C = 1) on "
              "frozen all-MiniLM-L6-v2 embeddings (mean pooling, L2-normalised, 256 tokens; from the feature "
              "cache). SetFit: `transferkit.fewshot.SetFitClassifier` with its defaults — "
              f"{args.num_iterations} pair iterations per example ({2 * args.num_iterations * 2 * args.shots} pairs),"
              " 1 epoch, AdamW lr 2e-5 (10% warm-up, linear decay), batch 16 pairs, cosine-similarity loss, "
              "128 tokens while fine-tuning — then logistic regression (C = 1) on the fine-tuned embeddings "
              "(256 tokens) of the same reviews. Same labelled reviews and same evaluation reviews for both; "
              "nothing tuned. Mean ± sample standard deviation over the draws."), "",
             "| domain | draws | frozen probe (%) | SetFit (%) | gain (pt) | min / max gain |", "|---|---|---|---|---|---|"]
    means_f, means_s, gains = [], [], []
    for dom in DOMAINS.values():
        rs = by.get(dom, [])
        if not rs:
            lines.append(f"| {dom} | 0 | | | | |")
            continue
        f = np.array([r["frozen_probe"] for r in rs]) * 100
        s = np.array([r["setfit"] for r in rs]) * 100
        g = s - f
        sd = (lambda a: float(np.std(a, ddof=1)) if len(a) > 1 else 0.0)
        lines.append(f"| {dom} | {len(rs)} | {f.mean():.1f} ± {sd(f):.1f} | {s.mean():.1f} ± {sd(s):.1f} | "
                     f"{g.mean():+.1f} ± {sd(g):.1f} | {g.min():+.1f} / {g.max():+.1f} |")
        means_f.append(f.mean())
        means_s.append(s.mean())
        gains.append(g.mean())
    complete = len(gains) == 4 and all(len(by.get(d, [])) == args.draws for d in DOMAINS.values())
    if gains:
        lines.append(f"| **mean of the {len(gains)} domains** | | **{np.mean(means_f):.1f}** | **{np.mean(means_s):.1f}** | "
                     f"**{np.mean(gains):+.1f}** | |")
    if not complete:
        lines += ["", f"Incomplete: {len(recs)} of {4 * args.draws} draws finished."]
    fit_s = [r["fit_seconds"] for r in recs]
    ev_s = [r["eval_seconds"] for r in recs]
    if recs:
        lines += ["", (f"Time per draw (one torch thread on a shared machine): SetFit fine-tuning + head "
                       f"{np.median(fit_s):.0f} s median, embedding the {recs[0]['n_eval']} evaluation reviews with the "
                       f"fine-tuned encoder {np.median(ev_s):.0f} s median. The frozen probe reads the cached features.")]
    text = "\n".join(lines) + "\n"
    (results / "fewshot_text.md").write_text(text)
    print(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/fewshot_text", help="folder for the per-draw JSON records")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--domains", default="B,D,E,K")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--shots", type=int, default=8)
    ap.add_argument("--num-iterations", type=int, default=20)
    ap.add_argument("--eval-limit", type=int, default=0, help="subsample the held-out reviews (0 = all 1,000)")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--tables-only", action="store_true")
    args = ap.parse_args()
    if not args.tables_only:
        run(args)
    write_tables(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
