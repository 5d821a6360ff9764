"""Calibration and power of transferkit's shift tests on real benchmark features.

(a) No shift: one domain is split into two random halves ``--splits`` times (default 200); the MMD
    and energy permutation tests at alpha = 0.05 should reject in about 5% of the splits (target
    <= 0.08; the permutation tests are exact, so the expected rate is 10/201 = 0.0498 and its
    binomial standard deviation over 200 splits is 0.015). Domains: Office-Caltech10 SURF
    (amazon, Caltech10, webcam, dslr; each row divided by its sum, then every feature z-scored
    over the whole domain before halving) and the JDA digits (MNIST 2,000 and USPS 1,800, 16x16,
    each sample scaled to unit L2 norm). The pooled matrices are computed once per domain (see
    :func:`no_shift`).
(b) Shift: every one of the 12 Office-Caltech SURF tasks (source -> target) should be detected
    with p < 0.01 by MMD and energy (``--permutations`` 200 gives p >= 1/201, enough for 0.01).
    Rows are divided by their sum and features z-scored with the mean and deviation of the
    *pooled* source + target sample: a label-blind transform, so the permutation null stays exact.
    The classifier two-sample test, the proxy A-distance and the CORAL distance are printed
    beside them, and so is the MMD p-value after the usual per-domain z-scoring (column
    "p/dom"): standardising each domain on its own removes every mean and variance difference and
    breaks exchangeability, so the tests cannot see the shift (p near 1) -- do not test that way.

Data are read in place from the benchmark folder (``TRANSFERKIT_DATA`` or ``../shared/data``),
checked against its ``SHA256SUMS``. Usage::

    .venv/bin/python benchmarks/shift_calibration.py [--splits 200] [--permutations 200]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from transferkit.assess import (
    classifier_test,
    coral_distance,
    energy_test,
    mmd_test,
    proxy_a_distance,
)
from transferkit.assess.shift import median_heuristic, permutation_test, pooled_sq_dists
from transferkit.data.paths import resolve_data_dir, verified_path

SURF = {"C": "Caltech10", "A": "amazon", "W": "webcam", "D": "dslr"}
TASKS = ["C-A", "C-W", "C-D", "A-C", "A-W", "A-D", "W-C", "W-A", "W-D", "D-C", "D-A", "D-W"]
ALPHA = 0.05


def load_surf(data_dir, name: str) -> np.ndarray:
    """Office-Caltech10 SURF features of one domain, each row divided by its sum (bag-of-words
    frequencies; a per-sample transform)."""
    from scipy.io import loadmat

    mat = loadmat(verified_path(data_dir, f"office_caltech10_surf/{name}_SURF_L10.mat"))
    X = mat["fts"].astype(np.float64)
    return X / np.maximum(X.sum(axis=1, keepdims=True), 1e-12)


def zscore(X: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
    """``(X - mean(ref)) / std(ref)`` per feature (``ref`` defaults to ``X``; constant features kept)."""
    ref = X if ref is None else ref
    sd = ref.std(axis=0)
    return (X - ref.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def load_digits(data_dir) -> dict[str, np.ndarray]:
    """JDA's MNIST (2,000) and USPS (1,800) 16x16 digits, each sample scaled to unit L2 norm."""
    import h5py

    path = verified_path(data_dir, "mnist_usps_jda/MNIST_vs_USPS.mat")
    out = {}
    with h5py.File(path, "r") as fh:
        for key, name in (("Xs", "MNIST"), ("Xt", "USPS")):
            X = np.asarray(fh[key], dtype=np.float64)
            if X.shape[1] != 256:
                X = X.T
            out[name] = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return out


def no_shift(domains: dict[str, np.ndarray], splits: int, permutations: int) -> list[tuple]:
    """Rejection rates of MMD and energy over ``splits`` random halvings of each domain.

    Every halving pools the same samples (the whole domain), so the pooled kernel and distance
    matrices -- and the median-heuristic bandwidth -- are computed once per domain and each split
    re-indexes them and calls :func:`permutation_test` (the engine of ``mmd_test`` and
    ``energy_test``). The first split is also run end to end through ``mmd_test`` /
    ``energy_test`` on the two halves to show that both paths give the same result.
    """
    rows = []
    for name, X in domains.items():
        t0 = time.perf_counter()
        D2 = pooled_sq_dists(X)
        sigma2 = median_heuristic(D2, np.random.default_rng(0))
        K = np.exp(-D2 / (2 * sigma2))
        D = np.sqrt(D2)
        gen = np.random.default_rng(12345)
        rej = {"mmd": 0, "energy": 0}
        half = len(X) // 2
        for s in range(splits):
            perm = gen.permutation(len(X))
            ix = np.ix_(perm, perm)
            r_mmd = permutation_test(K[ix], half, statistic="mmd", n_permutations=permutations, seed=s)
            r_en = permutation_test(D[ix], half, statistic="energy", n_permutations=permutations, seed=s)
            if s == 0:   # the same split through the public end-to-end tests
                a, b = X[perm[:half]], X[perm[half:]]
                e_mmd = mmd_test(a, b, n_permutations=permutations, seed=s, bandwidth=float(np.sqrt(sigma2)))
                e_en = energy_test(a, b, n_permutations=permutations, seed=s)
                assert abs(e_mmd.statistic - r_mmd.statistic) <= 1e-9 * max(1.0, abs(r_mmd.statistic))
                assert abs(e_en.statistic - r_en.statistic) <= 1e-9 * max(1.0, abs(r_en.statistic))
                assert e_mmd.p_value == r_mmd.p_value and e_en.p_value == r_en.p_value
            rej["mmd"] += r_mmd.p_value <= ALPHA
            rej["energy"] += r_en.p_value <= ALPHA
        rows.append((name, len(X), rej["mmd"] / splits, rej["energy"] / splits,
                     time.perf_counter() - t0))
        print(f"  {name:<10} n={len(X):5d}  rejection rate MMD {rej['mmd'] / splits:.3f}  "
              f"energy {rej['energy'] / splits:.3f}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    return rows


def shifted_tasks(surf: dict[str, np.ndarray], permutations: int) -> list[dict]:
    rows = []
    for task in TASKS:
        s, t = task.split("-")
        raw_s, raw_t = surf[SURF[s]], surf[SURF[t]]
        pooled = np.vstack([raw_s, raw_t])
        xs, xt = zscore(raw_s, pooled), zscore(raw_t, pooled)
        t0 = time.perf_counter()
        with warnings.catch_warnings():     # the per-domain variant warns, as it should
            warnings.simplefilter("ignore", UserWarning)
            p_dom = mmd_test(zscore(raw_s), zscore(raw_t), n_permutations=permutations, seed=0).p_value
        mmd = mmd_test(xs, xt, n_permutations=permutations, seed=0)
        en = energy_test(xs, xt, n_permutations=permutations, seed=0)
        c2 = classifier_test(xs, xt, seed=0)
        row = {"task": task, "n_s": len(xs), "n_t": len(xt), "mmd2": mmd.statistic, "p_mmd": mmd.p_value,
               "energy": en.statistic, "p_energy": en.p_value, "c2st_acc": c2.statistic,
               "p_c2st": c2.p_value, "pad": proxy_a_distance(xs, xt, seed=0),
               "coral": coral_distance(xs, xt), "p_mmd_per_domain": p_dom,
               "seconds": time.perf_counter() - t0}
        rows.append(row)
        print(f"  {task:<5} {row['n_s']:5d} {row['n_t']:5d}  {row['mmd2']:8.4f} {row['p_mmd']:7.4f}  "
              f"{row['energy']:8.4f} {row['p_energy']:7.4f}  {row['c2st_acc']:6.3f} {row['p_c2st']:9.2e}  "
              f"{row['pad']:5.3f}  {row['coral']:8.2e}  {p_dom:6.3f}  {row['seconds']:5.1f}s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--splits", type=int, default=200, help="random halvings per domain in (a)")
    ap.add_argument("--permutations", type=int, default=200, help="permutations per test")
    ap.add_argument("--data-dir", default=None, help="benchmark data folder (default: TRANSFERKIT_DATA "
                                                     "or ../shared/data)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    data_dir = resolve_data_dir(args.data_dir)
    surf = {name: load_surf(data_dir, name) for name in SURF.values()}
    digits = load_digits(data_dir)
    t_cpu = time.process_time()

    print(f"(a) no shift: {args.splits} random halvings per domain, {args.permutations} permutations, "
          f"alpha = {ALPHA} (target rejection rate <= 0.08)")
    # each domain is z-scored as a whole before it is halved (pooled = the domain: exact null)
    calib = no_shift({**{k: zscore(v) for k, v in surf.items()}, **digits}, args.splits,
                     args.permutations)
    worst = max(max(r[2], r[3]) for r in calib)

    print(f"\n(b) shift: the 12 Office-Caltech10 SURF tasks, {args.permutations} permutations "
          f"(smallest p = {1 / (args.permutations + 1):.4f})")
    print(f"  {'task':<5} {'n_s':>5} {'n_t':>5}  {'MMD^2_u':>8} {'p':>7}  {'energy':>8} {'p':>7}  "
          f"{'C2ST':>6} {'p':>9}  {'PAD':>5}  {'CORAL':>8}  {'p/dom':>6}  time")
    rows = shifted_tasks(surf, args.permutations)
    detected_mmd = sum(r["p_mmd"] < 0.01 for r in rows)
    detected_en = sum(r["p_energy"] < 0.01 for r in rows)

    total = time.perf_counter() - t_start
    print("\nSummary")
    print("  (a) rejection rate at alpha=0.05 without shift (MMD / energy):")
    for name, n, rm, re_, sec in calib:
        print(f"      {name:<10} n={n:5d}  {rm:.3f} / {re_:.3f}")
    print(f"      worst {worst:.3f}  -> {'OK' if worst <= 0.08 else 'ABOVE TARGET'} (target <= 0.08)")
    print(f"  (b) tasks detected with p < 0.01: MMD {detected_mmd}/12, energy {detected_en}/12, "
          f"classifier {sum(r['p_c2st'] < 0.01 for r in rows)}/12")
    print(f"  total wall time {total:.1f} s (CPU time of this process {time.process_time() - t_cpu:.1f} s)")
    return 0 if worst <= 0.08 and detected_mmd == 12 and detected_en == 12 else 1


if __name__ == "__main__":
    raise SystemExit(main())
