"""Scale check of the subspace methods: TCA and JDA on n = 50,000 samples.

Synthetic data: 10 classes of Gaussian blobs in 100 dimensions; the target domain is rotated in
ten coordinate planes, rescaled and shifted, then each domain is z-scored; 25,000 samples per
domain (sizes, dimension and seed on the command line). Each configuration is
fitted on source + target and predicts the 25,000 target samples; the script prints wall time,
peak resident memory of a fresh process (``resource.getrusage(...).ru_maxrss``) and the peak of
Python-tracked allocations (``tracemalloc``, numpy included), against the targets of the
"Shallow adaptation family" issue: < 2 minutes and < 4 GiB per fit.

Every configuration runs in its own subprocess so that peak memory is per configuration. The
exact rbf path is included to show that it refuses at once (with the hint ``solver="nystroem"``)
instead of trying to allocate its ``n x n`` matrices.

    python benchmarks/shallow_scale.py                 # all configurations, n = 50,000
    python benchmarks/shallow_scale.py --n 20000 --only tca-rbf-nystroem
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CONFIGS: dict[str, tuple[str, dict]] = {
    # name: (registry name, parameters)
    "tca-linear-exact": ("tca", {"kernel": "linear", "n_components": 30}),
    "tca-rbf-nystroem": ("tca", {"kernel": "rbf", "n_components": 30, "solver": "nystroem", "n_landmarks": 1000}),
    "jda-linear-exact": ("jda", {"kernel": "linear", "n_components": 100}),
    "jda-rbf-nystroem": ("jda", {"kernel": "rbf", "n_components": 100, "solver": "nystroem", "n_landmarks": 1000}),
    "tca-rbf-auto": ("tca", {"kernel": "rbf", "n_components": 30}),
    # the exact rbf path would need ~4 n^2 doubles (75 GiB at n = 50,000): it must refuse at once
    "tca-rbf-exact": ("tca", {"kernel": "rbf", "n_components": 30, "solver": "exact"}),
}
TIME_LIMIT_S = 120.0
MEMORY_LIMIT_GIB = 4.0


def make_data(n: int, d: int, n_classes: int, seed: int):
    """Source and target blobs ``(X, y, sample_domain, y_target)``, ``n`` samples in total.

    Class means ``~ N(0, 0.4^2 I)``, unit within-class noise; the target is rotated by 0.7 rad in
    ten coordinate planes, scaled by 1.5 and shifted; each domain is then z-scored (the
    Office-Caltech protocol). 1-NN on the source alone gets about 70% of the target right.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    ns = n // 2
    nt = n - ns
    means = rng.normal(scale=0.4, size=(n_classes, d))
    ys = rng.integers(0, n_classes, ns)
    yt = rng.integers(0, n_classes, nt)
    Xs = means[ys] + rng.normal(size=(ns, d))
    R = np.eye(d)
    c, s = np.cos(0.7), np.sin(0.7)
    for i in range(0, min(20, d - 1), 2):
        R[i:i + 2, i:i + 2] = [[c, -s], [s, c]]
    Xt = (means[yt] + rng.normal(size=(nt, d))) @ R * 1.5 + 2.0 * rng.normal(size=d)
    Xs = (Xs - Xs.mean(0)) / Xs.std(0)
    Xt = (Xt - Xt.mean(0)) / Xt.std(0)
    X = np.vstack([Xs, Xt])
    y = np.r_[ys, np.full(nt, -1)]
    sd = np.r_[np.ones(ns, dtype=int), -np.ones(nt, dtype=int)]
    return X, y, sd, yt


def run_one(name: str, n: int, d: int, seed: int) -> dict:
    """Fit and predict one configuration in this process; return its figures."""
    import resource
    import tracemalloc

    import numpy as np

    from transferkit.core.errors import ConfigError
    from transferkit.core.registries import SHALLOW

    X, y, sd, yt = make_data(n, d, 10, seed)
    reg_name, params = CONFIGS[name]
    est = SHALLOW.create(reg_name, params)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        est.fit(X, y, sample_domain=sd)
    except ConfigError as exc:
        return {"config": name, "refused": str(exc), "wall_s": round(time.perf_counter() - t0, 3),
                "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}
    pred = est.predict(X[sd < 0])
    wall = time.perf_counter() - t0
    _, peak_traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "config": name, "n": n, "d": d, "wall_s": round(wall, 2),
        "peak_rss_gib": round(rss_kib / 2**20, 3), "peak_traced_gib": round(peak_traced / 2**30, 3),
        "solver": getattr(est, "solver_", None), "n_iter": getattr(est, "n_iter_", None),
        "target_acc": round(float(np.mean(pred == yt)) * 100, 2),
    }


def source_only(n: int, d: int, seed: int) -> float:
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier

    X, y, sd, yt = make_data(n, d, 10, seed)
    clf = KNeighborsClassifier(n_neighbors=1).fit(X[sd > 0], y[sd > 0])
    return round(float(np.mean(clf.predict(X[sd < 0]) == yt)) * 100, 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50_000, help="total samples (half source, half target)")
    ap.add_argument("--d", type=int, default=100, help="features")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", choices=sorted(CONFIGS), help="configurations to run")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(args.child, args.n, args.d, args.seed)))
        return 0
    names = args.only or list(CONFIGS)
    print(f"n = {args.n} ({args.n // 2} source + {args.n - args.n // 2} target), d = {args.d}; "
          f"targets: < {TIME_LIMIT_S:.0f} s and < {MEMORY_LIMIT_GIB:.0f} GiB per fit")
    print(f"1-NN on the source only: {source_only(args.n, args.d, args.seed):.2f}% target accuracy")
    header = f"{'config':<20} {'solver':<9} {'iters':>5} {'wall s':>8} {'peak RSS GiB':>13} {'traced GiB':>11} {'target acc':>10}  ok"
    print(header)
    print("-" * len(header))
    ok_all = True
    for name in names:
        cmd = [sys.executable, __file__, "--child", name, "--n", str(args.n), "--d", str(args.d),
               "--seed", str(args.seed)]
        out = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{name:<20} FAILED\n{out.stderr[-2000:]}")
            ok_all = False
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if "refused" in r:
            print(f"{name:<20} refused in {r['wall_s']:.3f} s (peak RSS {r['peak_rss_gib']:.2f} GiB): {r['refused']}")
            continue
        ok = r["wall_s"] < TIME_LIMIT_S and r["peak_rss_gib"] < MEMORY_LIMIT_GIB
        ok_all &= ok
        print(f"{name:<20} {r['solver'] or '':<9} {r['n_iter'] or '':>5} {r['wall_s']:>8.1f} "
              f"{r['peak_rss_gib']:>13.2f} {r['peak_traced_gib']:>11.2f} {r['target_acc']:>10.2f}  "
              f"{'yes' if ok else 'NO'}")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
