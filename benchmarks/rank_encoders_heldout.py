"""Should ``rank_encoders`` score standardised features? A check on encoder-ranking tasks that
were never used to look at the question.

Why this script exists. On the two digits images tasks (``rank_encoders_digits.py``, table
``results/rank_encoders_digits.md``) LogME on the encoders' outputs as they are ranks four encoders
with Kendall tau +0.333 (MNIST-USPS) and +0.667 (USPS-MNIST) against their target linear-probe
accuracy; on the same features z-scored per column, the form the probe itself sees, +0.667 and
+1.000. Both forms were fixed before that run (the first as primary, the second as secondary), but
choosing ``rank_encoders``' default from those two tasks would choose it on the tasks it is judged
on. The a-priori argument for standardising: LogME is the evidence of a Bayesian linear model with
an isotropic Gaussian prior on the weights, so on raw outputs it depends on each encoder's units
(a column in [0, 1] and one in [-30, 30] get the same prior), while the probe it is meant to predict
(``StandardScaler`` then L2-regularised logistic regression) puts its isotropic penalty on z-scored
columns. This script tests the choice on five tasks not used before for it.

Protocol (fixed before running; committed before the first full run):

* **Fashion-MNIST** (Debian's ``dataset-fashion-mnist``): labelled target part 5,000 images drawn
  from the train split (seed 0), target test 5,000 drawn from the test split (seed 1), 28x28 grey
  scaled to [0, 1]. Candidates: ``raw_pixels`` (784-d); ``lenet_mnist``: the LeNet trained on the
  labelled MNIST images of the digits images task MNIST-USPS (the very model
  ``rank_encoders_digits.py`` trains, same settings and seed, reused from ``--work-dir`` when
  there), 500-d penultimate features; ``effnet_imagenet`` and ``effnet_random`` exactly as in
  ``rank_encoders_digits.py`` (64x64, the weights' normalisation, torch seed 0 before
  construction). LEEP and NCE for the two candidates with a head (LeNet's 10 digit classes,
  EfficientNet's 1000 ImageNet classes).
* **Amazon reviews text**, each domain as the target (books, dvd, electronics, kitchen; 4 tasks):
  labelled target part = the domain's adaptation half of ``amazon_reviews_text`` (1,000 reviews)
  with its labels, target test = its held-out half (1,000), the data set's own fixed split.
  Candidates: ``tfidf`` (``TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2,
  max_features=384)`` fitted on the labelled part's texts: as wide as the MiniLM candidates and
  narrower than the 1,000 labelled reviews. A first draft of this protocol had 5,000 features; a
  check of the script, before any probe accuracy or tau was computed, showed that with more
  dimensions than samples LogME on the raw tf-idf features fits the labels exactly and its
  evidence has no finite maximum (``logme`` now warns), so that candidate could not test the
  question); ``minilm`` (the ``minilm`` encoder
  with its defaults: mean pooling, L2-normalised, 256 tokens, 384-d); ``minilm_static`` (the same
  model's input word-piece embeddings averaged over the text's tokens, [CLS] and [SEP] included,
  pads excluded: a static bag of embeddings, 384-d); ``minilm_random`` (``minilm`` with
  ``pretrained=False``, torch seed 0 before construction). No candidate has a sentiment head, so
  only the feature scores are computed.
* Scores: ``logme``, ``hscore``, ``gbc``, ``transrate`` through ``rank_encoders`` on the labelled
  target part, default parameters, once with ``standardize=False`` and once with
  ``standardize=True``. Probe: ``StandardScaler`` + ``LogisticRegression(C=1.0, max_iter=5000)``
  on the labelled part, accuracy on the target test (as in ``rank_encoders_digits.py``). Kendall
  tau-b between each score and the probe accuracies, per task.
* **Decision rule** (fixed now): let T_raw and T_std be the mean over the five tasks of LogME's
  Kendall tau without and with standardisation. If T_std >= T_raw, ``rank_encoders`` gets
  ``standardize=True`` as its default; otherwise the default stays ``False``. If the two are equal
  the held-out tasks do not discriminate, and the table says that the choice then rests on the
  a-priori argument above and on the digits tasks. Whatever the outcome, every figure is reported.

Usage (full protocol, writes the table and CSV)::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/rank_encoders_heldout.py --tasks fashion \\
        --csv /tmp/rank_heldout_fashion.csv
    (same with --tasks text --csv /tmp/rank_heldout_text.csv), then
    .venv/bin/python benchmarks/rank_encoders_heldout.py --tables /tmp/rank_heldout_fashion.csv \\
        /tmp/rank_heldout_text.csv --out benchmarks/results/rank_encoders_heldout.md \\
        --csv benchmarks/results/rank_encoders_heldout.csv [--made-by "<part command>" ...] \\
        [--notes-file notes.md]

A quick check (nothing written unless asked): ``--tasks text --n-labelled 60 --n-test 60``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from rank_encoders_digits import (  # the shared pieces of the digits protocol
    FEATURE_SCORES,
    IMAGE_SIZE,
    PROB_SCORES,
    effnet_features,
    imagenet_head,
    kendall,
    lenet_outputs,
    load_task,
    probe,
    softmax,
    subset,
    train_lenet,
)

IMAGE_CANDIDATES = ("raw_pixels", "lenet_mnist", "effnet_imagenet", "effnet_random")
TEXT_CANDIDATES = ("tfidf", "minilm", "minilm_static", "minilm_random")
TEXT_DOMAINS = ("B", "D", "E", "K")
FASHION_N = 5000
TFIDF_FEATURES = 384
LENET_STEPS = 1500


# ------------------------------------------------------------------------------------------------
# candidates
# ------------------------------------------------------------------------------------------------
def fashion_task(args: argparse.Namespace) -> dict[str, Any]:
    """Features of the four image candidates on Fashion-MNIST, plus the two heads' probabilities."""
    import torch

    from transferkit.core.registries import DATASETS
    from transferkit.data.fashion_mnist import load_fashion_mnist
    from transferkit.models.encoders import create_encoder

    xtr, ytr = load_fashion_mnist("train")
    xte, yte = load_fashion_mnist("test")
    lab = subset(len(ytr), args.n_labelled or FASHION_N, args.seed, "n-labelled")
    tst = subset(len(yte), args.n_test or FASHION_N, args.seed + 1, "n-test")
    img = lambda a: (np.asarray(a, dtype=np.float32) / 255.0)[:, None, :, :]
    xl, yl, xt, yt = img(xtr[lab]), ytr[lab], img(xte[tst]), yte[tst]
    feats: dict[str, tuple[np.ndarray, np.ndarray]] = {"raw_pixels": (xl.reshape(len(xl), -1),
                                                                      xt.reshape(len(xt), -1))}
    probs: dict[str, np.ndarray] = {}
    notes: list[str] = []
    digits = load_task(DATASETS.create("digits_images", {}), "MNIST-USPS")
    model, secs, reused = train_lenet(digits, args.lenet_steps, args.seed, Path(args.work_dir))
    notes.append(f"LeNet (MNIST-USPS source model): {'reused' if reused else f'trained in {secs:.0f} s'}")
    fl, pl = lenet_outputs(model, xl)
    ft, _ = lenet_outputs(model, xt)
    feats["lenet_mnist"], probs["lenet_mnist"] = (fl, ft), pl
    for cand, pretrained in (("effnet_imagenet", True), ("effnet_random", False)):
        torch.manual_seed(args.seed)
        enc = create_encoder("efficientnet_lite0", {"pretrained": pretrained, "image_size": IMAGE_SIZE})
        a, ia = effnet_features(enc, xl, f"fashion {cand} labelled", args.cache_dir)
        b, ib = effnet_features(enc, xt, f"fashion {cand} test", args.cache_dir)
        feats[cand] = (a, b)
        notes.append(f"{cand}: labelled part {ia['summary']}; test {ib['summary']}")
    W, bias = imagenet_head()
    probs["effnet_imagenet"] = softmax(feats["effnet_imagenet"][0].astype(np.float64) @ W.T + bias)
    return {"task": "Fashion-MNIST", "y": yl, "y_test": yt, "feats": feats, "probs": probs,
            "candidates": IMAGE_CANDIDATES, "notes": notes}


def static_embeddings(enc: Any, texts: list[str]) -> np.ndarray:
    """Mean of the model's input word-piece embeddings over each text's tokens (pads excluded)."""
    import torch

    ids = torch.as_tensor(enc.preprocess(texts))
    table = enc.bert.embeddings.word_embeddings.weight.detach()
    out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
    with torch.no_grad():
        for i in range(0, len(ids), 256):
            block = ids[i:i + 256]
            mask = (block != enc.pad_id).unsqueeze(-1).float()
            out[i:i + 256] = ((table[block] * mask).sum(1) / mask.sum(1).clamp(min=1.0)).numpy()
    return out


def text_task(key: str, args: argparse.Namespace) -> dict[str, Any]:
    """Features of the four text candidates on one Amazon domain as the target."""
    import torch
    from sklearn.feature_extraction.text import TfidfVectorizer

    from transferkit.core.registries import DATASETS
    from transferkit.models.cache import FeatureCache
    from transferkit.models.encoders import create_encoder

    data = DATASETS.create("amazon_reviews_text", {})
    texts, y = data.domain_texts(key)
    tr, te = data.target_split(key)
    tr = tr[subset(len(tr), args.n_labelled, args.seed, "n-labelled")]
    te = te[subset(len(te), args.n_test, args.seed + 1, "n-test")]
    tl, tt = [texts[i] for i in tr], [texts[i] for i in te]
    feats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    notes: list[str] = []
    vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2, max_features=TFIDF_FEATURES)
    feats["tfidf"] = (vec.fit_transform(tl).toarray(), vec.transform(tt).toarray())
    cache = FeatureCache(args.cache_dir)
    for cand, params in (("minilm", {}), ("minilm_random", {"pretrained": False})):
        torch.manual_seed(args.seed)
        enc = create_encoder("minilm", params)
        a = cache.features(enc, tl, progress=False, desc=f"{key} {cand} labelled")
        b = cache.features(enc, tt, progress=False, desc=f"{key} {cand} test")
        feats[cand] = (a.features, b.features)
        notes.append(f"{cand}: labelled part {a.describe()}; test {b.describe()}")
        if cand == "minilm":
            feats["minilm_static"] = (static_embeddings(enc, tl), static_embeddings(enc, tt))
    return {"task": f"text {data.DOMAINS[key]}", "y": np.asarray(y)[tr], "y_test": np.asarray(y)[te],
            "feats": feats, "probs": {}, "candidates": TEXT_CANDIDATES, "notes": notes}


# ------------------------------------------------------------------------------------------------
# scoring one task
# ------------------------------------------------------------------------------------------------
def score_task(t: dict[str, Any]) -> list[dict[str, Any]]:
    """One CSV row per candidate (scores raw/std, probe accuracy) and one per tau variant."""
    from transferkit.assess.transferability import rank_encoders

    cands, y = t["candidates"], t["y"]
    train = {c: t["feats"][c][0] for c in cands}
    rows = {c: {"task": t["task"], "candidate": c, "dim": train[c].shape[1]} for c in cands}
    for variant, std in (("raw", False), ("std", True)):
        ranked = rank_encoders(train, y=y, score=list(FEATURE_SCORES), standardize=std)
        for c, vals in ranked:
            for s, v in vals.items():
                rows[c][f"{s}_{variant}"] = v
    if t["probs"]:
        ranked = rank_encoders(t["probs"], y=y, score=list(PROB_SCORES))
        for c, vals in ranked:
            rows[c].update(vals)
    for c in cands:
        p = probe(t["feats"][c][0], y, t["feats"][c][1], t["y_test"])
        rows[c]["probe_accuracy"] = p["accuracy"]
        rows[c]["probe_converged"] = p["converged"]
        print(f"{t['task']}: {c}: probe {p['accuracy']:.2f} %, logme raw {rows[c]['logme_raw']:.4f} "
              f"std {rows[c]['logme_std']:.4f}", flush=True)
    taurow: dict[str, Any] = {"task": t["task"], "candidate": "kendall_tau"}
    acc = {c: rows[c]["probe_accuracy"] for c in cands}
    cols = [f"{s}_{v}" for s in FEATURE_SCORES for v in ("raw", "std")] + (list(PROB_SCORES) if t["probs"] else [])
    for col in cols:
        have = [c for c in cands if col in rows[c]]
        taurow[col] = kendall(np.array([rows[c][col] for c in have]), np.array([acc[c] for c in have]))
    return [*rows.values(), taurow]


# ------------------------------------------------------------------------------------------------
# tables
# ------------------------------------------------------------------------------------------------
def read_rows(paths: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in paths:
        with open(p, newline="") as fh:
            out.extend(csv.DictReader(fh))
    return out


def write_rows(rows: list[dict[str, Any]], path: str) -> None:
    """CSV with the union of the rows' keys as columns (first seen first)."""
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)


def fmt(v: Any, digits: int = 3, signed: bool = False) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "-" if v in ("", None) else str(v)
    return "-" if np.isnan(f) else f"{f:+.{digits}f}" if signed else f"{f:.{digits}f}"


def tau(v: Any) -> str:
    return fmt(v, 3, signed=True)


def write_tables(rows: list[dict[str, Any]], out: Path, command: str, notes: str) -> None:
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    taus = {r["task"]: r for r in rows if r["candidate"] == "kendall_tau"}
    t_raw = float(np.mean([float(taus[t]["logme_raw"]) for t in tasks]))
    t_std = float(np.mean([float(taus[t]["logme_std"]) for t in tasks]))
    if t_std > t_raw:
        verdict = "T_std > T_raw: `rank_encoders` gets `standardize=True` as its default."
    elif t_std == t_raw:
        verdict = ("T_std = T_raw: the held-out tasks do not discriminate; by the rule the default becomes "
                   "`standardize=True`, a choice that then rests on the a-priori argument and the digits tasks.")
    else:
        verdict = "T_std < T_raw: the default stays `standardize=False`."
    lines = [f"<!-- produced by: {command} -->",
             (f"<!-- date: {_dt.date.today().isoformat()}; machine: 2 CPU cores, {platform.system()} "
              f"{platform.machine()}, Python {platform.python_version()} -->"), "",
             "# Held-out check: should `rank_encoders` score standardised features?", "",
             ("Protocol and decision rule (fixed before the run): docstring of "
              "`benchmarks/rank_encoders_heldout.py`. Five tasks never used before to compare the two forms."), "",
             "## LogME: Kendall tau against target linear-probe accuracy", "",
             "| task | accuracy order | tau, raw outputs | tau, standardised |", "|---|---|---|---|"]
    for t in tasks:
        cands = [r for r in rows if r["task"] == t and r["candidate"] != "kendall_tau"]
        order = " > ".join(r["candidate"] for r in sorted(cands, key=lambda r: -float(r["probe_accuracy"])))
        lines.append(f"| {t} | {order} | {tau(taus[t]['logme_raw'])} | {tau(taus[t]['logme_std'])} |")
    lines += ["", f"Mean over the {len(tasks)} tasks: T_raw = {t_raw:+.3f}, T_std = {t_std:+.3f}. {verdict}", "",
              "## Kendall tau per score", "",
              "| task | " + " | ".join(f"{s} raw | {s} std" for s in FEATURE_SCORES) + " | leep | nce |",
              "|---|" + "---|" * (2 * len(FEATURE_SCORES) + 2)]
    for t in tasks:
        r = taus[t]
        lines.append(f"| {t} | " + " | ".join(f"{tau(r[f'{s}_raw'])} | {tau(r[f'{s}_std'])}" for s in FEATURE_SCORES)
                     + f" | {tau(r.get('leep'))} | {tau(r.get('nce'))} |")
    lines += ["", "## Scores and probe accuracy per candidate", "",
              ("| task | candidate | dim | logme raw | logme std | hscore raw | gbc raw | gbc std | transrate raw | "
               "probe acc (%) |"), "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["candidate"] == "kendall_tau":
            continue
        lines.append(f"| {r['task']} | {r['candidate']} | {r['dim']} | {fmt(r['logme_raw'], 4)} | "
                     f"{fmt(r['logme_std'], 4)} | {fmt(r['hscore_raw'], 4)} | {fmt(r['gbc_raw'], 4)} | "
                     f"{fmt(r['gbc_std'], 4)} | {fmt(r['transrate_raw'], 2)} | {fmt(r['probe_accuracy'], 2)} |")
    if notes:
        lines += ["", "## Notes", "", notes]
    out.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", choices=("fashion", "text", "all"), default=None)
    ap.add_argument("--tables", nargs="+", help="merge per-part CSVs into the results table")
    ap.add_argument("--csv", help="CSV to write (per part, or the merged one with --tables)")
    ap.add_argument("--out", help="markdown table (with --tables)")
    ap.add_argument("--notes-file", help="markdown for the table's notes section")
    ap.add_argument("--made-by", action="append", default=[],
                    help="a command that made one of the --tables CSVs (repeatable; goes in the header)")
    ap.add_argument("--n-labelled", type=int, default=None)
    ap.add_argument("--n-test", type=int, default=None)
    ap.add_argument("--lenet-steps", type=int, default=LENET_STEPS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work-dir", default="runs/rank_encoders_digits")
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)
    if args.tables:
        rows = read_rows(args.tables)
        if args.csv:
            write_rows(rows, args.csv)
        if args.out:
            notes = Path(args.notes_file).read_text().strip() if args.notes_file else ""
            argv, skip = [], False
            for a in sys.argv:   # the merge command without the --made-by texts it records
                if not skip and a != "--made-by":
                    argv.append(a)
                skip = a == "--made-by"
            merge = " ".join(["python", *argv])
            write_tables(rows, Path(args.out), " ; then ".join([*args.made_by, merge]), notes)
        return 0
    if not args.tasks:
        ap.error("give --tasks (or --tables to merge results)")
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    parts = []
    if args.tasks in ("fashion", "all"):
        parts.append(fashion_task(args))
    if args.tasks in ("text", "all"):
        parts.extend(text_task(k, args) for k in TEXT_DOMAINS)
    rows = [row for t in parts for row in score_task(t)]
    for t in parts:
        for n in t["notes"]:
            print(f"{t['task']}: {n}")
    print(f"wall time {time.perf_counter() - t0:.0f} s")
    if args.csv:
        write_rows(rows, args.csv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
