"""Does ``rank_encoders`` order candidate encoders like their target linear-probe accuracy?

Digits images (``digits_images``: MNIST 10k test split <-> USPS, 28x28 grey in [0, 1]; see the
module docstring of :mod:`transferkit.data.digits_images`), both tasks, four candidate encoders:

* ``raw_pixels`` — the 28x28 image flattened, 784-d.
* ``lenet_source`` — the ``lenet`` model (:mod:`transferkit.models.zoo`, default parameters)
  trained on the labelled source alone: method ``source_only`` through the library's training
  loop (:func:`transferkit.train.loop.fit`) with the settings of ``configs/digits.yaml`` (1,500
  SGD steps, batch 64, lr 0.01 with the ``dann`` schedule, momentum 0.9, Nesterov, weight decay
  5e-4), seed 0, on the whole source. Features: its 500-d penultimate layer (after ReLU, eval
  mode). The trained weights are kept in ``--work-dir`` and reused by later runs.
* ``effnet_imagenet`` — ``efficientnet_lite0`` with the packaged ImageNet-1k weights, 1280-d.
* ``effnet_random`` — ``efficientnet_lite0(pretrained=False)``: the same architecture randomly
  initialised as the reference implementation does (torch seed 0 right before construction), no
  weights loaded. (The first full run used PyTorch's default initialisation, whose eval-mode
  features were ~1e-9 in size; the encoder was fixed after that run and the table re-made.)

Feeding digits to EfficientNet (fixed before any result): the encoder's own ``preprocess`` on the
(n, 1, 28, 28) arrays in [0, 1] — the grey channel repeated to 3, bilinear resize to 64x64
(``image_size=64``), then the weights' own normalisation ``(pixel - 127/255) / (128/255)``
(``normalization="lite"``, the encoder's default: these weights were trained with
inception-style scaling, not the torchvision mean/std). The random network gets the same input.
EfficientNet features go through the feature cache (:class:`transferkit.models.cache.FeatureCache`).

Protocol (fixed before running):

* Labelled target part: the task's whole target adaptation part (``MNIST-USPS``: USPS train,
  7,291 images; ``USPS-MNIST``: the first 5,000 MNIST test images) *with its labels*, which the
  task itself hides; they are read from the same files by the data set's loaders and the images
  are checked equal to the task's. Target test split: the task's (USPS test 2,007 / the other
  5,000 MNIST images).
* Transferability scores are computed on the labelled target part through
  :func:`transferkit.assess.transferability.rank_encoders` with the registered scores and their
  default parameters. Feature scores (``logme``, ``hscore``, ``gbc``, ``transrate``) for all four
  candidates. Probability scores (``leep``, ``nce``) need a classifier head: only two candidates
  have one — the LeNet's 10-class source head and EfficientNet's 1000-class ImageNet head (the
  packaged ``_fc`` weights applied to the cached features) — so they are computed for those two
  only; raw pixels and the random network have no head (a random head would be meaningless).
* Primary: scores on each encoder's output as it is (what ``rank_encoders`` sees by default).
  Secondary (also fixed in advance, because TransRate and GBC's variance floor depend on the
  feature scale): scores on the same features standardised per column (z-score fitted on the
  labelled target part; zero-variance columns stay 0), i.e. exactly what the probe sees.
* Since 2026-11-24 ``rank_encoders`` standardises by default (``standardize=True``), chosen by a
  rule fixed in advance on five other tasks (``benchmarks/rank_encoders_heldout.py``,
  ``results/rank_encoders_heldout.md``). The criterion below reads the form ``rank_encoders``
  uses by default, now the standardised one; both forms are still computed and reported, and the
  post-hoc bootstrap follows the criterion's form.
* Target linear-probe accuracy: ``StandardScaler`` then ``LogisticRegression(C=1.0,
  max_iter=5000)`` (lbfgs, multinomial) fitted on the labelled target part, accuracy on the
  task's target test split. No setting is tuned.
* Kendall tau (``scipy.stats.kendalltau``, tau-b) between each score's values and the probe
  accuracies of the candidates, per task. The issue's criterion: tau >= 0.6 for the default
  score of ``rank_encoders`` (``logme``) on both tasks (with 4 candidates: at most one of the 6
  pairs out of order). For ``leep``/``nce`` (2 candidates) tau is +1 or -1: whether the pair is
  ordered right.

Post-hoc diagnostic, added after the first full run (it changes no figure above): a paired
bootstrap of the target test split (1,000 resamples) giving the 95 % interval of every pairwise
accuracy difference and the share of resamples in which tau(logme) >= 0.6.

Every step is timed (data, LeNet training, each feature extraction, each score over the
candidates, each probe). Target labels are used only by the scores (the transferability setting:
a labelled target set, scored without training) and by the probe.

Usage (the full protocol; writes the results table and CSV)::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 15 \\
        .venv/bin/python benchmarks/rank_encoders_digits.py \\
        --out benchmarks/results/rank_encoders_digits.md --csv benchmarks/results/rank_encoders_digits.csv

A quick check (seconds to a minute, nothing written): ``--n-labelled 300 --n-test 300
--lenet-steps 30 --work-dir /tmp/rank_smoke``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import inspect
import math
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FEATURE_SCORES = ("logme", "hscore", "gbc", "transrate", "hscore_shrinkage", "parc", "nleep", "sfda")
PROB_SCORES = ("leep", "nce")
ENCODERS = ("raw_pixels", "lenet_source", "effnet_imagenet", "effnet_random")
#: LeNet source training: the settings of configs/digits.yaml (fixed in advance)
LENET_TRAIN = {"steps": 1500, "batch_size": 64, "lr": 0.01}
IMAGE_SIZE = 64
PROBE_C = 1.0
PROBE_MAX_ITER = 5000
TAU_TARGET = 0.6
#: resamples of the post-hoc bootstrap diagnostic
BOOTSTRAP = 1000


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------
def load_task(data: Any, name: str) -> dict[str, Any]:
    """The task's arrays plus the labels of its target adaptation part (hidden by the task), read
    by the data set's own loaders and checked against the task's images."""
    task = data.load_task(name)
    tmask = ~task.train.is_source
    xt = task.train.x[tmask]
    if name == "MNIST-USPS":
        x_lab, y_lab = data._usps("train")
    else:
        xm, ym = data._mnist()
        x_lab, y_lab = xm[:5000], ym[:5000]
    if x_lab.shape != xt.shape or not np.array_equal(x_lab.reshape(xt.shape), xt):
        raise RuntimeError(f"{name}: the target images read for their labels differ from the task's "
                           "target part; the data set's loader changed, update load_task")
    return {"task": task, "xs": task.train.x[~tmask], "ys": task.train.y[~tmask], "xt": xt,
            "yt": np.asarray(y_lab, dtype=np.int64), "xte": task.x_test, "yte": np.asarray(task.y_test)}


def subset(n: int, k: int | None, seed: int, what: str) -> np.ndarray:
    """All indices, or ``k`` of them drawn once with ``seed`` (sorted) for quick checks."""
    if k is None or k >= n:
        return np.arange(n)
    if k < 20:
        raise SystemExit(f"--{what} must be at least 20 (got {k})")
    return np.sort(np.random.default_rng(seed).permutation(n)[:k])


# ------------------------------------------------------------------------------------------------
# candidates
# ------------------------------------------------------------------------------------------------
def train_lenet(d: dict[str, Any], steps: int, seed: int, work_dir: Path) -> tuple[Any, float, bool]:
    """LeNet trained on the labelled source with ``source_only``; ``(model, seconds, reused)``."""
    import torch

    from transferkit.core.registries import METHODS
    from transferkit.models import create_model
    from transferkit.train.config import TrainConfig
    from transferkit.train.loop import config_fingerprint, fit

    task = d["task"]
    cfg = TrainConfig(steps=steps, batch_size=LENET_TRAIN["batch_size"], lr=LENET_TRAIN["lr"],
                      checkpoint_every=0, eval_every=0, progress=False, val_fraction=0.0)
    fp = config_fingerprint("rank_encoders_digits/lenet", task.name, seed, cfg.to_dict(),
                            list(task.train.sample_shape), len(d["xs"]))
    path = work_dir / f"lenet_{task.name}_{fp}.pt"
    torch.manual_seed(seed)
    model = create_model("lenet", task.train.sample_shape, task.num_classes)
    if path.is_file():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval(), 0.0, True
    method = METHODS.create("source_only", {})
    method.setup(model.num_features, task.num_classes)
    t0 = time.perf_counter()
    fit(model, method, task.train, cfg, seed=seed, desc=f"{task.name} lenet source_only")
    seconds = time.perf_counter() - t0
    work_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return model.eval(), seconds, False


def lenet_outputs(model: Any, x: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """``(500-d penultimate features, source-class probabilities)`` in eval mode."""
    import torch

    feats, probs = [], []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            logits, f = model(torch.as_tensor(np.ascontiguousarray(x[i:i + batch_size]), dtype=torch.float32))
            feats.append(f.numpy())
            probs.append(torch.softmax(logits.double(), dim=1).numpy())
    return np.concatenate(feats), np.concatenate(probs)


def imagenet_head() -> tuple[np.ndarray, np.ndarray]:
    """The packaged EfficientNet-Lite0 ImageNet classifier ``(W (1000, 1280), b (1000,))``."""
    from transferkit.models.encoders.efficientnet import packaged_weights_path
    from transferkit.models.encoders.weights import read_state_dict

    state = read_state_dict(packaged_weights_path())
    return (state["_fc.weight"].double().numpy(), state["_fc.bias"].double().numpy())


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def effnet_features(encoder: Any, x: np.ndarray, label: str, cache_dir: str | None
                    ) -> tuple[np.ndarray, dict[str, Any]]:
    """Cached EfficientNet features of images ``x`` and what the cache did."""
    from transferkit.models.cache import FeatureCache

    got = FeatureCache(cache_dir).features(encoder, x, batch_size=64, progress=False, desc=label)
    return got.features, {"hit": got.hit, "extract_seconds": got.extract_seconds,
                          "load_seconds": got.load_seconds, "summary": got.describe()}


def standardise(F: np.ndarray, G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-score both with the mean/std of ``F`` (the labelled target part); zero-variance columns -> 0."""
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(F.astype(np.float64))
    return sc.transform(F.astype(np.float64)), sc.transform(G.astype(np.float64))


def probe(F: np.ndarray, y: np.ndarray, G: np.ndarray, y_test: np.ndarray) -> dict[str, Any]:
    """Linear probe: logistic regression on standardised features; accuracy (%) on the test part."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    Fs, Gs = standardise(F, G)
    t0 = time.perf_counter()
    clf = LogisticRegression(C=PROBE_C, max_iter=PROBE_MAX_ITER)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(Fs, y)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    correct = clf.predict(Gs) == y_test
    return {"accuracy": 100.0 * float(np.mean(correct)), "n_iter": int(np.max(clf.n_iter_)),
            "converged": converged, "seconds": time.perf_counter() - t0, "correct": correct}


# ------------------------------------------------------------------------------------------------
# one task
# ------------------------------------------------------------------------------------------------
def run_task(data: Any, name: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from transferkit.assess.transferability import logme_details, rank_encoders
    from transferkit.models.encoders import create_encoder

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    d = load_task(data, name)
    lab = subset(len(d["yt"]), args.n_labelled, args.seed, "n-labelled")
    tst = subset(len(d["yte"]), args.n_test, args.seed + 1, "n-test")
    xt, yt, xte, yte = d["xt"][lab], d["yt"][lab], d["xte"][tst], d["yte"][tst]
    timings["data"] = time.perf_counter() - t0
    print(f"\n=== {name}: source {len(d['xs'])} labelled, labelled target part {len(yt)}, target test "
          f"{len(yte)} (data {timings['data']:.1f} s)", flush=True)

    feats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    probs: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {}

    feats["raw_pixels"] = (xt.reshape(len(xt), -1), xte.reshape(len(xte), -1))

    model, secs, reused = train_lenet(d, args.lenet_steps, args.seed, Path(args.work_dir))
    timings["lenet_train"] = secs
    t1 = time.perf_counter()
    ft, pt = lenet_outputs(model, xt)
    fte, pte = lenet_outputs(model, xte)
    timings["lenet_features"] = time.perf_counter() - t1
    feats["lenet_source"] = (ft, fte)
    probs["lenet_source"] = pt
    info["lenet_head_target_test_accuracy"] = 100.0 * float(np.mean(pte.argmax(1) == yte))
    info["lenet_reused"] = reused
    print(f"lenet: {'reused trained weights' if reused else f'trained in {secs:.0f} s'}; its source head on "
          f"the target test split: {info['lenet_head_target_test_accuracy']:.1f} %", flush=True)

    cache_dir = args.cache_dir
    for cand, pretrained in (("effnet_imagenet", True), ("effnet_random", False)):
        torch.manual_seed(args.seed)  # the random network's initialisation (no effect when pretrained)
        enc = create_encoder("efficientnet_lite0", {"pretrained": pretrained, "image_size": IMAGE_SIZE})
        t2 = time.perf_counter()
        a, ia = effnet_features(enc, xt, f"{name} {cand} target part", cache_dir)
        b, ib = effnet_features(enc, xte, f"{name} {cand} target test", cache_dir)
        timings[f"{cand}_features"] = time.perf_counter() - t2
        feats[cand] = (a, b)
        info[f"{cand}_cache"] = f"target part: {ia['summary']}; test: {ib['summary']}"
        print(f"{cand}: {info[f'{cand}_cache']}", flush=True)
    W, bias = imagenet_head()
    probs["effnet_imagenet"] = softmax(feats["effnet_imagenet"][0].astype(np.float64) @ W.T + bias)

    for cand in ENCODERS:
        F = feats[cand][0]
        info[f"{cand}_dim"] = F.shape[1]
        info[f"{cand}_scale"] = float(np.sqrt(np.mean(np.var(F.astype(np.float64), axis=0))))
        info[f"{cand}_dead_columns"] = int(np.sum(np.ptp(F, axis=0) == 0))

    # -- scores through rank_encoders ------------------------------------------------------------
    scores: dict[str, dict[str, dict[str, float]]] = {"raw": {}, "std": {}}
    rankings: dict[str, dict[str, list[str]]] = {"raw": {}, "std": {}}
    fmap = {c: feats[c][0] for c in ENCODERS}
    for variant in ("raw", "std"):   # the library's own z-scoring for the standardised variant
        for s in FEATURE_SCORES:
            t3 = time.perf_counter()
            ranked = rank_encoders(fmap, y=yt, score=s, standardize=variant == "std")
            timings[f"score_{variant}_{s}"] = time.perf_counter() - t3
            scores[variant][s] = dict(ranked)
            rankings[variant][s] = [n for n, _ in ranked]
    for s in PROB_SCORES:
        t3 = time.perf_counter()
        ranked = rank_encoders(probs, y=yt, score=s)
        timings[f"score_probs_{s}"] = time.perf_counter() - t3
        scores["raw"][s] = dict(ranked)
        rankings["raw"][s] = [n for n, _ in ranked]
    for cand in ENCODERS:  # diagnostics: did LogME's fixed point converge?
        det = logme_details(feats[cand][0], yt)
        info[f"{cand}_logme_iters"] = int(det["n_iter"])

    # -- linear probes --------------------------------------------------------------------------
    probes: dict[str, dict[str, Any]] = {}
    for cand in ENCODERS:
        probes[cand] = probe(feats[cand][0], yt, feats[cand][1], yte)
        timings[f"probe_{cand}"] = probes[cand]["seconds"]
        print(f"probe {cand}: {probes[cand]['accuracy']:.2f} % ({probes[cand]['n_iter']} iterations"
              f"{'' if probes[cand]['converged'] else ', NOT converged'}, {probes[cand]['seconds']:.0f} s)",
              flush=True)

    acc = np.array([probes[c]["accuracy"] for c in ENCODERS])
    taus: dict[str, dict[str, float]] = {"raw": {}, "std": {}}
    for variant in ("raw", "std"):
        for s, vals in scores[variant].items():
            cands = [c for c in ENCODERS if c in vals]
            taus[variant][s] = kendall(np.array([vals[c] for c in cands]),
                                       np.array([probes[c]["accuracy"] for c in cands]))
    t4 = time.perf_counter()
    boot = bootstrap(probes, scores[args.default_form]["logme"], args.seed)
    timings["bootstrap"] = time.perf_counter() - t4
    timings["task_total"] = time.perf_counter() - t0
    res = {"bootstrap": boot, "task": name, "n_labelled": len(yt), "n_test": len(yte), "scores": scores, "rankings": rankings,
           "probes": probes, "taus": taus, "timings": timings, "info": info,
           "accuracy_order": [ENCODERS[i] for i in np.argsort(-acc, kind="stable")]}
    print_task(res)
    return res


def bootstrap(probes: dict[str, dict[str, Any]], logme_scores: dict[str, float], seed: int
              ) -> dict[str, Any]:
    """Post-hoc diagnostic (added after the first full run; changes no other figure): how firm is
    the accuracy order? ``BOOTSTRAP`` resamples of the target test split (paired: the same samples
    for every candidate): the 95 % interval of each pairwise accuracy difference and the share of
    resamples in which Kendall tau between LogME and the resampled accuracies is >= the target."""
    correct = np.stack([probes[c]["correct"] for c in ENCODERS]).astype(np.float64)   # (4, n)
    n = correct.shape[1]
    gen = np.random.default_rng(seed)
    accs = np.empty((BOOTSTRAP, len(ENCODERS)))
    for b in range(BOOTSTRAP):
        accs[b] = 100.0 * correct[:, gen.integers(0, n, n)].mean(axis=1)
    lv = np.array([logme_scores[c] for c in ENCODERS])
    taus = np.array([kendall(lv, a) for a in accs])
    pairs = []
    for i in range(len(ENCODERS)):
        for j in range(i + 1, len(ENCODERS)):
            diff = accs[:, i] - accs[:, j]
            obs = probes[ENCODERS[i]]["accuracy"] - probes[ENCODERS[j]]["accuracy"]
            lo, hi = np.percentile(diff, [2.5, 97.5])
            pairs.append({"a": ENCODERS[i], "b": ENCODERS[j], "diff": obs, "lo": float(lo), "hi": float(hi),
                          "same_sign": float(np.mean(np.sign(diff) == np.sign(obs))),
                          "logme_agrees": bool(np.sign(lv[i] - lv[j]) == np.sign(obs))})
    return {"p_tau_ok": float(np.mean(taus >= TAU_TARGET)), "tau_median": float(np.median(taus)),
            "pairs": pairs}


def kendall(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import kendalltau

    if len(a) < 2 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("nan")
    return float(kendalltau(a, b).statistic)


# ------------------------------------------------------------------------------------------------
# output
# ------------------------------------------------------------------------------------------------
def fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    av = abs(v)
    if av != 0 and (av < 1e-3 or av >= 1e5):
        return f"{v:.3e}"
    return f"{v:.4f}" if av < 10 else f"{v:.2f}"


def task_table(res: dict[str, Any], variant: str) -> list[str]:
    """Markdown rows: encoder, every score, probe accuracy; then Kendall tau per score."""
    sc = res["scores"][variant]
    names = list(FEATURE_SCORES) + (list(PROB_SCORES) if variant == "raw" else [])
    head = "| encoder | dim | " + " | ".join(names) + " | probe acc (%) |"
    lines = [head, "|" + "---|" * (len(names) + 3)]
    for c in ENCODERS:
        cells = [fmt(sc[s].get(c)) for s in names]
        lines.append(f"| {c} | {res['info'][f'{c}_dim']} | " + " | ".join(cells) +
                     f" | {res['probes'][c]['accuracy']:.2f} |")
    taus = res["taus"][variant]
    lines.append("| **Kendall tau** | | " + " | ".join(
        (f"**{taus[s]:+.3f}**" + (" (2 cand.)" if s in PROB_SCORES else "")) for s in names) + " | |")
    return lines


def print_task(res: dict[str, Any]) -> None:
    print(f"\n{res['task']}: scores on the labelled target part ({res['n_labelled']}), probe accuracy on the "
          f"target test split ({res['n_test']})")
    for variant, title in (("raw", "scores on encoder outputs as they are (primary)"),
                           ("std", "scores on standardised features (secondary)")):
        print(f"-- {title}")
        for line in task_table(res, variant):
            print(line)
    print("accuracy order:      " + " > ".join(res["accuracy_order"]))
    print("logme order (raw):   " + " > ".join(res["rankings"]["raw"]["logme"]))
    for line in bootstrap_lines(res):
        print(line)
    print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in res["timings"].items()), flush=True)


def bootstrap_lines(res: dict[str, Any]) -> list[str]:
    bt = res["bootstrap"]
    L = [(f"Post-hoc diagnostic (added after the first full run): {BOOTSTRAP} paired bootstrap resamples of the "
         f"target test split; tau(logme, the criterion's form) >= {TAU_TARGET} in {100 * bt['p_tau_ok']:.1f} % of "
         "them (median tau "
         f"{bt['tau_median']:+.3f})."), "",
         ("| pair (a vs b) | acc(a) - acc(b) | 95 % bootstrap interval | resamples keeping the sign | logme orders "
         "the pair the same way |"), "|---|---|---|---|---|"]
    for p in bt["pairs"]:
        L.append(f"| {p['a']} vs {p['b']} | {p['diff']:+.2f} | [{p['lo']:+.2f}, {p['hi']:+.2f}] | "
                 f"{100 * p['same_sign']:.1f} % | {'yes' if p['logme_agrees'] else 'no'} |")
    return L


def write_csv(path: Path, results: list[dict[str, Any]]) -> None:
    cols = (["task", "encoder", "dim", "n_labelled", "n_test", "probe_accuracy", "probe_iterations",
             "probe_converged", "probe_seconds", "feature_rms_std", "dead_columns", "logme_iterations"]
            + [f"{s}" for s in FEATURE_SCORES + PROB_SCORES] + [f"{s}_std" for s in FEATURE_SCORES])
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in results:
            for c in ENCODERS:
                p, info = r["probes"][c], r["info"]
                row = [r["task"], c, info[f"{c}_dim"], r["n_labelled"], r["n_test"], f"{p['accuracy']:.4f}",
                       p["n_iter"], p["converged"], f"{p['seconds']:.2f}", f"{info[f'{c}_scale']:.6g}",
                       info[f"{c}_dead_columns"], info[f"{c}_logme_iters"]]
                row += [repr(r["scores"]["raw"][s].get(c, "")) if c in r["scores"]["raw"][s] else ""
                        for s in FEATURE_SCORES + PROB_SCORES]
                row += [repr(r["scores"]["std"][s][c]) for s in FEATURE_SCORES]
                w.writerow(row)
            for variant in ("raw", "std"):
                row = [r["task"], f"kendall_tau_{variant}"] + [""] * 10
                names = FEATURE_SCORES + PROB_SCORES
                vals = [f"{r['taus'][variant][s]:.4f}" if s in r["taus"][variant] else "" for s in names]
                if variant == "raw":
                    row += vals + [""] * len(FEATURE_SCORES)
                else:
                    row += [""] * len(names) + vals[:len(FEATURE_SCORES)]
                w.writerow(row)


def write_md(path: Path, results: list[dict[str, Any]], command: str, wall: float, default_score: str,
             default_form: str = "raw", full: bool = True) -> None:
    from importlib import metadata

    import torch

    date = _dt.date.today().isoformat()
    L = [f"<!-- produced by: {command} -->",
         (f"<!-- date: {date}; machine: 2 CPU cores, shared with other benchmark jobs, {platform.system()} "
         f"{platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}, scikit-learn "
         f"{metadata.version('scikit-learn')}; one thread; wall time {wall:.0f} s -->"), "",
         "# rank_encoders on the digits images tasks: transferability scores vs target linear-probe accuracy",
         "",
         *([] if full else ["**Quick check on subsets / a short LeNet run, not the full protocol.**", ""]),
         ("Protocol (fixed before running; details in the docstring of `benchmarks/rank_encoders_digits.py`): "
         "`digits_images` (MNIST 10k test split <-> USPS, 28x28 grey), both tasks. Candidates: raw pixels "
         "(784-d); LeNet trained on the labelled source alone (`source_only`, 1,500 SGD steps as in "
         "configs/digits.yaml, seed 0; 500-d penultimate features); EfficientNet-Lite0 with its ImageNet "
         "weights and the same network randomly initialised (`pretrained=False`, PyTorch default init, torch "
         "seed 0), both fed the grey image repeated to 3 channels, resized to 64x64 (bilinear) and normalised "
         "as the weights expect ((x - 127/255) / (128/255)); 1280-d pooled features, via the feature cache. "
         "Scores are computed with `rank_encoders` on the task's whole target adaptation part with its labels "
         "(MNIST-USPS: USPS train, 7,291; USPS-MNIST: the first 5,000 MNIST images), default parameters. "
         "LEEP and NCE need class probabilities: only the LeNet (its 10-class source head) and the ImageNet "
         "EfficientNet (its 1000-class ImageNet head) have a head, so they rank those two only (tau = +-1). "
         "Target linear-probe accuracy: StandardScaler + LogisticRegression(C=1.0, max_iter=5000) fitted on "
         "that same labelled part, accuracy on the task's target test split (USPS test 2,007 / the other "
         "5,000 MNIST images). Kendall tau-b (scipy) between each score and the probe accuracies, per task. "
         "Primary: scores on each encoder's output as it is; secondary (also fixed in advance): scores on "
         "the standardised features the probe sees. Since 2026-11-24 `rank_encoders` standardises by "
         "default (chosen on five other tasks: `rank_encoders_heldout.md`); the criterion reads the "
         "default form."), ""]
    form, other = ("standardised", "as they are") if default_form == "std" else ("as they are", "standardised")
    L.append(f"## Criterion: default score of `rank_encoders` = `{default_score}` on features {form} "
             f"(its default), Kendall tau >= {TAU_TARGET}")
    L.append("")
    L.append("| task | accuracy order | " + default_score + " order | tau (" + default_score + ") | >= "
             f"{TAU_TARGET} | tau ({default_score}, {other}) |")
    L.append("|---|---|---|---|---|---|")
    for r in results:
        t = r["taus"][default_form][default_score]
        L.append(f"| {r['task']} | {' > '.join(r['accuracy_order'])} | "
                 f"{' > '.join(r['rankings'][default_form][default_score])} | {t:+.3f} | "
                 f"{'yes' if t >= TAU_TARGET else 'no'} | "
                 f"{r['taus']['raw' if default_form == 'std' else 'std'][default_score]:+.3f} |")
    L.append("")
    L.append("## Kendall tau per score")
    L.append("")
    names = list(FEATURE_SCORES) + list(PROB_SCORES)
    L.append("| task | " + " | ".join(names) + " | " + " | ".join(f"{s} (std)" for s in FEATURE_SCORES) + " |")
    L.append("|" + "---|" * (1 + len(names) + len(FEATURE_SCORES)))
    for r in results:
        L.append(f"| {r['task']} | " + " | ".join(f"{r['taus']['raw'][s]:+.3f}" for s in names) + " | " +
                 " | ".join(f"{r['taus']['std'][s]:+.3f}" for s in FEATURE_SCORES) + " |")
    L.append("")
    L.append("(leep and nce: 2 candidates, lenet_source and effnet_imagenet.)")
    for r in results:
        L += ["", f"## {r['task']} (labelled target part {r['n_labelled']}, target test {r['n_test']})", "",
              "Scores on the encoder outputs as they are (primary):", ""]
        L += task_table(r, "raw")
        L += ["", "Scores on standardised features (secondary):", ""]
        L += task_table(r, "std")
        info = r["info"]
        L += ["", ("| encoder | feature RMS std | constant columns | LogME iterations | probe iterations | "
              "probe converged | probe time (s) |"), "|---|---|---|---|---|---|---|"]
        for c in ENCODERS:
            p = r["probes"][c]
            L.append(f"| {c} | {info[f'{c}_scale']:.3g} | {info[f'{c}_dead_columns']} | {info[f'{c}_logme_iters']} | "
                     f"{p['n_iter']} | {'yes' if p['converged'] else 'no'} | {p['seconds']:.1f} |")
        L += [""] + bootstrap_lines(r)
        L += ["", (f"LeNet's own source head on the target test split: {info['lenet_head_target_test_accuracy']:.2f} %"
              f" ({'weights reused from an earlier run' if info['lenet_reused'] else 'trained in this run'}). "
              f"Feature cache: effnet_imagenet {info['effnet_imagenet_cache']}; effnet_random "
              f"{info['effnet_random_cache']}."), "",
              "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["timings"].items()) + "."]
    L.append("")
    path.write_text("\n".join(L) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="all", help="MNIST-USPS, USPS-MNIST or all (default)")
    ap.add_argument("--n-labelled", type=int, default=None,
                    help="quick checks only: a seeded subset of the labelled target part (default: all)")
    ap.add_argument("--n-test", type=int, default=None,
                    help="quick checks only: a seeded subset of the target test split (default: all)")
    ap.add_argument("--lenet-steps", type=int, default=LENET_TRAIN["steps"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work-dir", default=str(ROOT / "runs" / "rank_encoders_digits"),
                    help="where the trained LeNet weights are kept (reused when the settings match)")
    ap.add_argument("--cache-dir", default=None, help="feature cache folder (default: the library's)")
    ap.add_argument("--out", default=None, help="results table (.md); nothing is written without it")
    ap.add_argument("--csv", default=None, help="per-encoder rows (.csv)")
    args = ap.parse_args()

    import torch

    from transferkit.assess.transferability import rank_encoders
    from transferkit.data.digits_images import DigitsImages

    torch.set_num_threads(1)
    default_score = inspect.signature(rank_encoders).parameters["score"].default
    args.default_form = "std" if inspect.signature(rank_encoders).parameters["standardize"].default else "raw"
    full = args.n_labelled is None and args.n_test is None and args.lenet_steps == LENET_TRAIN["steps"]
    t0 = time.perf_counter()
    data = DigitsImages(tasks=args.tasks)
    results = [run_task(data, name, args) for name in data.task_names()]
    wall = time.perf_counter() - t0

    print(f"\nrank_encoders default score: {default_score} on features "
          f"{'standardised' if args.default_form == 'std' else 'as they are'}")
    for r in results:
        t = r["taus"][args.default_form][default_score]
        print(f"{r['task']}: Kendall tau ({default_score}) = {t:+.3f} -> "
              f"{'meets' if t >= TAU_TARGET else 'misses'} tau >= {TAU_TARGET}; per score, as they are: " +
              ", ".join(f"{s} {v:+.2f}" for s, v in r["taus"]["raw"].items()) + "; standardised: " +
              ", ".join(f"{s} {v:+.2f}" for s, v in r["taus"]["std"].items()))
    ok = all(r["taus"][args.default_form][default_score] >= TAU_TARGET for r in results)
    print(f"criterion (tau >= {TAU_TARGET} for {default_score} on every task): {'met' if ok else 'NOT met'}"
          f"{'' if full else ' [quick check, not the full protocol]'}; total {wall:.0f} s")
    if args.out:
        if not full:
            print("note: --out with a quick-check setting; the table says so in its header", file=sys.stderr)
        cmd = "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 15 .venv/bin/python " + \
              " ".join(["benchmarks/rank_encoders_digits.py", *sys.argv[1:]])
        write_md(Path(args.out), results, cmd, wall, default_score, args.default_form, full)
        print(f"wrote {args.out}")
    if args.csv:
        write_csv(Path(args.csv), results)
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
