"""ESZSL (Romera-Paredes & Torr, ICML 2015) on Fashion-MNIST features of ImageNet
EfficientNet-Lite0, with class descriptions embedded by all-MiniLM-L6-v2 as the semantic space;
every one of the 45 ways to hold out 2 of the 10 classes as unseen.

Data: Fashion-MNIST from the Debian package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``). Training images: ``--train-per-class`` (500) per class
drawn from the 60,000 training images (seed 0); test images: ``--test-per-class`` (300) per class
from the 10,000 test images (seed 0). Features: frozen EfficientNet-Lite0 (ImageNet-1k weights),
images resized 28 -> 64 pixels, 1280-d globally pooled, through the feature cache; no other
preprocessing.

Semantic vectors: the MiniLM embedding (mean pooling, L2-normalised, 384-d) of one description
per class, written before any run from the template ``"a photo of a {name}."`` with the class
names in plain words (:data:`NAMES`). Nothing else is used about the classes.

Per split (2 unseen classes, 8 seen), everything is chosen on the 8 seen classes only, by
:func:`transferkit.zeroshot.select_eszsl_params` (5 times, 2 of the 8 seen classes held out as
pseudo-unseen classes; zero-shot accuracy among them): no unseen-class image or label is used.
Two protocols:

* ``--protocol authors`` (run first): raw features and semantic vectors, gamma and lambda from
  the authors' grid 10^-3..10^3. Every split chose gamma = 10^3, the grid's upper edge;
* ``--protocol select`` (default, run second): gamma from 10^-3..10^7, lambda from 10^-3..10^3,
  and the preprocessing among {raw, z-scored features} x {raw, centred semantic vectors} chosen
  by the same seen-class validation.

ESZSL is then fitted on the training images of the 8 seen classes, and the test images of all 10
classes are scored:

* ZSL unseen: images of the 2 unseen classes, predictions among those 2 (chance 50%);
* GZSL seen / unseen: predictions among all 10 classes (chance 10%), harmonic mean H;
* supervised seen: images of seen classes, predictions among the 8 seen classes.

Accuracies are per-class means (Xian et al., TPAMI 2019). Calibrated stacking (Chao et al.,
ECCV 2016: a constant subtracted from the seen-class scores before predicting over all classes)
chooses the constant on the training classes only: on each validation split the seen classes'
training images are halved, ESZSL is fitted on the first halves of the 6 training classes, and the
constant (in units of the score spread) that maximises H between the second halves (seen) and the
2 pseudo-unseen classes is kept; the median over the splits is used. Control: the same pipeline,
selection and calibration included, with random Gaussian semantic vectors instead of the MiniLM
embeddings, which shows what the descriptions contribute.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 \\
        python benchmarks/eszsl_fashion_mnist.py [--protocol select|authors]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: Fashion-MNIST classes 0..9 in plain words (the data set's names: T-shirt/top, Trouser, Pullover,
#: Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot)
NAMES = ["T-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
         "ankle boot"]
TEMPLATE = "a photo of a {}."
#: ``--descriptions visual`` (written 2026-11-24 before its first run, from what each garment looks
#: like, not tuned): one sentence per class naming its shape and parts, in the order of NAMES
VISUAL = [
    "a T-shirt: a light top with short sleeves and a round neck, worn on the upper body.",
    "a pair of trousers: long clothing for the legs, two long tubes of fabric joined at the waist.",
    "a pullover: a knitted sweater with long sleeves, pulled over the head and worn on the upper body.",
    "a dress: a one-piece garment for women that covers the body from the shoulders down to a skirt.",
    ("a coat: a long outer garment with long sleeves and buttons or a zip down the front, worn over "
     "other clothes."),
    "a sandal: an open summer shoe made of straps, with the toes and the heel showing.",
    "a shirt: a top with a collar, buttons down the front and sleeves, worn on the upper body.",
    "a sneaker: a low sports shoe with laces and a flat rubber sole.",
    "a bag: a handbag or purse with handles or a shoulder strap, for carrying things.",
    "an ankle boot: a closed shoe whose top covers the ankle, often with a heel.",
]


def subsample(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    return np.sort(np.concatenate([g.choice(np.flatnonzero(y == c), size=per_class, replace=False)
                                   for c in range(10)]))


def features(args: argparse.Namespace) -> dict:
    import torch

    from transferkit.data.fashion_mnist import load_fashion_mnist
    from transferkit.models.cache import FeatureCache
    from transferkit.models.encoders import create_encoder

    torch.set_num_threads(1)
    xtr, ytr = load_fashion_mnist("train")
    xte, yte = load_fashion_mnist("test")
    itr, ite = subsample(ytr, args.train_per_class, 0), subsample(yte, args.test_per_class, 0)
    enc = create_encoder("efficientnet_lite0", {"image_size": args.image_size})
    cache = FeatureCache(args.cache_dir)
    got_tr = cache.features(enc, np.ascontiguousarray(xtr[itr]), batch_size=64, progress=False, desc="fmnist train")
    got_te = cache.features(enc, np.ascontiguousarray(xte[ite]), batch_size=64, progress=False, desc="fmnist test")
    text = create_encoder("minilm")
    descriptions = VISUAL if args.descriptions == "visual" else [TEMPLATE.format(n) for n in NAMES]
    S = text.encode(descriptions, batch_size=16).astype(np.float64)
    return {"Xtr": got_tr.features.astype(np.float64), "ytr": ytr[itr].astype(np.int64),
            "Xte": got_te.features.astype(np.float64), "yte": yte[ite].astype(np.int64), "S": S,
            "descriptions": descriptions,
            "cache": {"train": got_tr.describe(), "test": got_te.describe()}}


def calibrate(Xtr: np.ndarray, ytr: np.ndarray, S: np.ndarray, seen: np.ndarray, gamma: float, lam: float,
              splits: list[list[int]], seed: int) -> float:
    """Calibrated-stacking constant chosen on seen classes only (module docstring), in units of
    the standard deviation of the scores."""
    from transferkit.zeroshot import ESZSL, generalized_zsl_accuracy

    g = np.random.default_rng(seed)
    consts = []
    grid = np.linspace(-1.0, 3.0, 81)
    for val in splits:
        val = np.asarray(val)
        train = np.setdiff1d(seen, val)
        fit_idx, held_idx = [], []
        for c in train:
            idx = g.permutation(np.flatnonzero(ytr == c))
            fit_idx.append(idx[: len(idx) // 2])
            held_idx.append(idx[len(idx) // 2:])
        fi, hi = np.concatenate(fit_idx), np.concatenate(held_idx)
        vi = np.flatnonzero(np.isin(ytr, val))
        m = ESZSL(gamma=gamma, lam=lam).fit(Xtr[fi], ytr[fi], S)
        cand = np.concatenate([train, val])
        ev = np.concatenate([hi, vi])
        scores = m.decision_function(Xtr[ev], cand)
        sd = float(np.std(scores))
        is_tr = np.isin(cand, train)
        best, best_h = 0.0, -1.0
        for c in grid:
            pred = cand[np.argmax(scores - c * sd * is_tr[None, :], axis=1)]
            h = generalized_zsl_accuracy(ytr[ev], pred, train, val)["harmonic"]
            if h > best_h + 1e-12:
                best, best_h = float(c), h
        consts.append(best)
    return float(np.median(consts))


#: gamma grid of the validation-selected protocol: the authors' 10^-3..10^3 extended upwards (with raw
#: features the authors' grid put every choice of gamma at its upper edge, 10^3)
GAMMAS_WIDE = tuple(10.0 ** k for k in range(-3, 8))
#: (feature preprocessing, semantic-vector preprocessing) candidates of the validation-selected protocol
VARIANTS = (("raw", "raw"), ("standardised", "raw"), ("raw", "centred"), ("standardised", "centred"))


def prepare(Xtr: np.ndarray, Xte: np.ndarray, seen_rows: np.ndarray, S: np.ndarray, fx: str,
            fs: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features as they are or z-scored with the statistics of the seen classes' training images;
    semantic vectors as they are or centred on the mean of the 10 class vectors and re-normalised."""
    if fx == "standardised":
        mu, sd = Xtr[seen_rows].mean(axis=0), Xtr[seen_rows].std(axis=0) + 1e-6
        Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    if fs == "centred":
        S = S - S.mean(axis=0)
        S = S / np.linalg.norm(S, axis=1, keepdims=True)
    return Xtr, Xte, S


def run_split(data: dict, unseen: tuple[int, int], semantic: np.ndarray, args: argparse.Namespace) -> dict:
    from transferkit.zeroshot import ESZSL, select_eszsl_params

    ytr, yte = data["ytr"], data["yte"]
    seen = np.setdiff1d(np.arange(10), unseen)
    mtr = np.isin(ytr, seen)
    t0 = time.perf_counter()
    variants = VARIANTS if args.protocol == "select" else (("raw", "raw"),)
    gammas = GAMMAS_WIDE if args.protocol == "select" else None
    best = None
    for fx, fs in variants:
        Xtr, Xte, S = prepare(data["Xtr"], data["Xte"], mtr, semantic, fx, fs)
        kw = {"gammas": gammas} if gammas else {}
        sel = select_eszsl_params(Xtr[mtr], ytr[mtr], S, n_splits=5, seed=0, **kw)
        if best is None or sel.score > best[0].score + 1e-12:  # validation on seen classes only
            best = (sel, fx, fs, Xtr, Xte, S)
    assert best is not None
    sel, fx, fs, Xtr, Xte, S = best
    model = ESZSL(gamma=sel.gamma, lam=sel.lam).fit(Xtr[mtr], ytr[mtr], S)
    rec = {"unseen": list(unseen), "features": fx, "semantic": fs, "gamma": sel.gamma, "lam": sel.lam,
           "val_zsl": sel.score, **model.evaluate(Xte, yte)}
    c = calibrate(Xtr[mtr], ytr[mtr], S, seen, sel.gamma, sel.lam, sel.splits, seed=1)
    sd = float(np.std(model.decision_function(Xtr[mtr])))
    cal = ESZSL(gamma=sel.gamma, lam=sel.lam, seen_penalty=c * sd).fit(Xtr[mtr], ytr[mtr], S)
    ev = cal.evaluate(Xte, yte)
    rec.update(cal_const=c, cal_gzsl_seen=ev["gzsl_seen"], cal_gzsl_unseen=ev["gzsl_unseen"],
               cal_harmonic=ev["harmonic"])
    rec["seconds"] = time.perf_counter() - t0
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", choices=["select", "authors"], default="select",
                    help="select: preprocessing and a wider gamma grid chosen on seen classes (default); authors: raw "
                         "features and semantic vectors, the authors' grid only (the first protocol run)")
    ap.add_argument("--descriptions", choices=["names", "visual"], default="names",
                    help="names: 'a photo of a {name}.' (default, the first run); visual: one sentence per class "
                         "describing its shape and parts (VISUAL)")
    ap.add_argument("--out", default=None, help="folder for splits.json (default runs/eszsl_fashion_mnist_<protocol>)")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--train-per-class", type=int, default=500)
    ap.add_argument("--test-per-class", type=int, default=300)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    out = Path(args.out or f"runs/eszsl_fashion_mnist_{args.protocol}"
               + ("_visual" if args.descriptions == "visual" else ""))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = features(args)
    t_feat = time.perf_counter() - t0
    print(f"features ready in {t_feat:.0f} s: {data['cache']}", flush=True)
    rand = np.random.default_rng(12345).standard_normal(data["S"].shape)
    rows, ctrl = [], []
    for pair in itertools.combinations(range(10), 2):
        r = run_split(data, pair, data["S"], args)
        rc = run_split(data, pair, rand, args)
        rows.append(r)
        ctrl.append(rc)
        print(f"unseen {NAMES[pair[0]]} + {NAMES[pair[1]]} [{r['features']}/{r['semantic']}]: ZSL "
              f"{100 * r['zsl_unseen']:.1f} | GZSL S {100 * r['gzsl_seen']:.1f} U {100 * r['gzsl_unseen']:.1f} H "
              f"{100 * r['harmonic']:.1f} | calibrated U {100 * r['cal_gzsl_unseen']:.1f} H {100 * r['cal_harmonic']:.1f}"
              f" | random S: ZSL {100 * rc['zsl_unseen']:.1f} calibrated H {100 * rc['cal_harmonic']:.1f}  "
              f"({r['seconds'] + rc['seconds']:.0f} s)", flush=True)
    (out / "splits.json").write_text(json.dumps({"minilm": rows, "random": ctrl, "cache": data["cache"],
                                                 "descriptions": data["descriptions"]}, indent=1))
    write_tables(rows, ctrl, data, args, t_feat)
    return 0


def write_tables(rows: list[dict], ctrl: list[dict], data: dict, args: argparse.Namespace, t_feat: float) -> None:
    import collections

    import torch

    stem = "eszsl_fashion_mnist" if args.protocol == "select" else "eszsl_fashion_mnist_authors_grid"
    if args.descriptions == "visual":
        stem += "_visual"
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    keys = ["val_zsl", "zsl_unseen", "supervised_seen", "gzsl_seen", "gzsl_unseen", "harmonic", "cal_gzsl_seen",
            "cal_gzsl_unseen", "cal_harmonic"]
    with open(results / f"{stem}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["semantic_vectors", "unseen", "features", "semantic_prep", "gamma", "lambda", *keys])
        for name, rs in (("minilm", rows), ("random", ctrl)):
            for r in rs:
                w.writerow([name, "+".join(NAMES[i] for i in r["unseen"]), r["features"], r["semantic"], r["gamma"],
                            r["lam"], *[f"{100 * r[k]:.2f}" for k in keys]])

    def stat(rs: list[dict], k: str) -> str:
        a = np.array([r[k] for r in rs]) * 100
        return f"{a.mean():.1f} ± {a.std(ddof=1):.1f}"

    def row(label: str, rs: list[dict], bold: bool) -> str:
        b = "**" if bold else ""
        return (f"| {label} | {stat(rs, 'val_zsl')} | {b}{stat(rs, 'zsl_unseen')}{b} | {stat(rs, 'supervised_seen')} | "
                f"{stat(rs, 'gzsl_seen')} | {stat(rs, 'gzsl_unseen')} | {stat(rs, 'harmonic')} | "
                f"{stat(rs, 'cal_gzsl_seen')} | {stat(rs, 'cal_gzsl_unseen')} | {b}{stat(rs, 'cal_harmonic')}{b} |")

    machine = (f"2 CPU cores, shared with other jobs ({os.cpu_count()} visible), {platform.system()} "
               f"{platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}, one torch thread")
    cmd = ("OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 python "
           f"benchmarks/eszsl_fashion_mnist.py --protocol {args.protocol} --descriptions {args.descriptions}")
    described = (f"`{TEMPLATE}` with the names {', '.join(NAMES)}" if args.descriptions == "names" else
                 "one sentence per class describing its shape and parts (`VISUAL` in the script: "
                 + "; ".join(f"'{d}'" for d in VISUAL) + ")")
    if args.protocol == "select":
        proto = ("Per split, the preprocessing — features raw or z-scored (statistics of the seen classes' training "
                 "images), semantic vectors raw or centred on the mean of the 10 class vectors — and gamma "
                 "(10^-3..10^7) and lambda (10^-3..10^3) are chosen together by zero-shot accuracy on seen classes "
                 "held out in turn (5 splits of 2 of the 8 seen classes; column 'validation ZSL').")
    else:
        proto = ("Raw features and semantic vectors; gamma and lambda from the authors' grid 10^-3..10^3, chosen by "
                 "zero-shot accuracy on seen classes held out in turn (5 splits of 2 of the 8 seen classes; column "
                 "'validation ZSL').")
    lines = [f"<!-- produced by: {cmd} -->",
             f"<!-- date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}; machine: {machine} -->", "",
             "# ESZSL on Fashion-MNIST (EfficientNet-Lite0 features, MiniLM class descriptions), 2 unseen classes"
             + ("" if args.protocol == "select" else ": authors' grid, raw inputs"), "",
             (f"Fashion-MNIST (Debian `dataset-fashion-mnist`): {args.train_per_class} training images per class "
              f"(from the 60,000) and {args.test_per_class} test images per class (from the 10,000), seed 0. "
              f"Features: frozen ImageNet EfficientNet-Lite0, images resized to {args.image_size} px, 1280-d (feature "
              f"cache). Semantic vectors: all-MiniLM-L6-v2 embeddings of {described} "
              f"(fixed before any run). All 45 choices of 2 unseen classes. {proto} No unseen "
              "image or label is used to choose anything. Per-class mean accuracies (%), mean ± standard deviation "
              "over the 45 splits. Chance: 50 for ZSL unseen (2 candidates), 12.5 for supervised seen (8 "
              "candidates), 10 for GZSL (10 candidates)."), "",
             ("Calibrated stacking (Chao et al., ECCV 2016) subtracts a constant from the seen-class scores before "
              "predicting over all 10 classes; the constant is chosen on the training images of seen classes only "
              "(script docstring). The control replaces the MiniLM vectors by random Gaussian vectors and runs the "
              "same pipeline (selection and calibration included): what it reaches needs no semantic information "
              "(e.g. telling 'unseen' from 'seen' by low seen-class scores, then guessing between the 2 unseen "
              "classes)."), "",
             ("| semantic vectors | validation ZSL | ZSL unseen | supervised seen | GZSL seen | GZSL unseen | GZSL H | "
              "calibrated GZSL seen | calibrated GZSL unseen | calibrated GZSL H |"),
             "|---|---|---|---|---|---|---|---|---|---|",
             row("MiniLM descriptions", rows, True), row("random vectors (control)", ctrl, False), ""]
    if args.protocol == "select":
        chosen = collections.Counter(f"{r['features']} features / {r['semantic']} semantic vectors" for r in rows)
        lines += ["Preprocessing chosen by validation (MiniLM): "
                  + "; ".join(f"{k}: {v} splits" for k, v in chosen.most_common()) + ".", ""]
    lines += ["## Per split (MiniLM descriptions)", "",
              ("| unseen classes | features / semantic | gamma | lambda | validation ZSL | ZSL unseen | GZSL seen | "
               "GZSL unseen | H | calibrated H | control ZSL unseen | control calibrated H |"),
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r, rc in zip(rows, ctrl):
        lines.append(f"| {NAMES[r['unseen'][0]]} + {NAMES[r['unseen'][1]]} | {r['features']} / {r['semantic']} | "
                     f"{r['gamma']:g} | {r['lam']:g} | {100 * r['val_zsl']:.1f} | {100 * r['zsl_unseen']:.1f} | "
                     f"{100 * r['gzsl_seen']:.1f} | {100 * r['gzsl_unseen']:.1f} | {100 * r['harmonic']:.1f} | "
                     f"{100 * r['cal_harmonic']:.1f} | {100 * rc['zsl_unseen']:.1f} | {100 * rc['cal_harmonic']:.1f} |")
    secs = [r["seconds"] + rc["seconds"] for r, rc in zip(rows, ctrl)]
    lines += ["", (f"Features: {data['cache']['train']}; {data['cache']['test']} ({t_feat:.0f} s including MiniLM). "
                   f"ESZSL with selection and calibration, MiniLM and control: {np.median(secs):.0f} s median per "
                   "split.")]
    text = "\n".join(lines) + "\n"
    (results / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
