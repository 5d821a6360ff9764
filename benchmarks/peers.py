"""transferkit beside skada, ADAPT and POT on Office-Caltech10 SURF (12 tasks), in one run.

For every shallow method transferkit shares with a peer library (CORAL, SA, TCA, KMM, KLIEP and
OT: exact, entropic, class-regularised), each library runs on the same preprocessed arrays (row-sum
normalisation, then a per-domain z-score; transductive: the unlabelled target is the test set) with
the same hyper-parameters and the same classifier; the script prints accuracy and wall time per
library, our time as a ratio of each peer's, and our accuracy minus skada's.

Peers are never dependencies of transferkit: they live in their own virtualenv (gitignored):

    python3 -m venv benchmarks/.peers-venv
    benchmarks/.peers-venv/bin/pip install -r benchmarks/requirements-peers.txt
    benchmarks/.peers-venv/bin/pip install --no-deps adapt==0.4.5   # its "tensorflow" pin: we use tensorflow-cpu

Run (from the repository root, with transferkit's own venv):

    .venv/bin/python benchmarks/peers.py                  # all methods, all peers, 12 tasks
    .venv/bin/python benchmarks/peers.py --methods kmm,ot_emd --tasks C-A,D-W --threads 2

Each library runs in its own subprocess (skada switches scikit-learn's metadata routing on globally
at import; ADAPT imports TensorFlow), one method at a time with the libraries alternating (so that
a change of the machine's load during the run hits all of them alike), with ``--threads`` BLAS/OpenMP threads
(default 1: on a shared 2-core machine multi-threaded BLAS timings are dominated by contention).
Times are wall-clock seconds of ``fit`` + ``predict`` summed over the tasks, after one untimed
warm-up fit per method on a small subsample (imports, JIT caches). The data are read in place from
``$TRANSFERKIT_DATA/office_caltech10_surf`` (default ``../shared/data``) with ``scipy.io.loadmat``.

Shared settings (fixed in advance, never tuned on target labels):

- CORAL: covariance regulariser 1 added to both covariances (paper), linear SVM (C=1). ADAPT's CORAL
  aligns covariances only (``lambda_=1``) and is compared with ours ``align_mean=False``; skada's
  also centres both domains and is compared with ours ``align_mean=True``. skada's ``reg`` is a
  shrinkage ``(1-s) C + s tr(C)/d I``; ``s = 0.5`` gives ``(C + I)/2`` on z-scored features, the
  same alignment as ``C + I`` (the map is invariant to a common scale).
- SA: 20 components, 1-NN.  TCA: linear kernel, 30 components, mu = 1, 1-NN (ours without its
  default per-sample L2 normalisation, which the peers do not have).
- KMM: rbf kernel with the median-heuristic gamma of the task (computed once here and given to
  every library), B = 1000, eps = (sqrt(n_s) - 1)/sqrt(n_s), linear SVM with sample weights.
  ADAPT solves the QP with cvxopt on the whole source (``max_size`` raised so it does not split it);
  skada uses its Frank-Wolfe solver (its default).
- KLIEP: Gaussian kernel, 100 target centres, 5-fold likelihood CV over the same five gammas
  (median heuristic / f^2, f in 0.25, 0.5, 1, 2, 4), linear SVM with sample weights; ADAPT with its
  ``algo="original"`` (Sugiyama's projected gradient).
- OT: squared Euclidean cost normalised by its median; EMD; Sinkhorn reg_e = 0.1; class-regularised
  group lasso (l1l2) reg_e = 0.1, reg_cl = 0.1; 1-NN on the barycentrically mapped source. skada's
  class-regularised adapter has no cost normalisation, so it gets features divided by
  sqrt(median cost) (the same problem: the squared Euclidean cost scales with the features' square,
  and 1-NN and the barycentric map are scale-equivariant).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = Path(os.environ.get("TRANSFERKIT_DATA", REPO.parent / "shared" / "data")) / "office_caltech10_surf"
DOMAINS = {"C": "Caltech10", "A": "amazon", "W": "webcam", "D": "dslr"}
TASKS = ["C-A", "C-W", "C-D", "A-C", "A-W", "A-D", "W-C", "W-A", "W-D", "D-C", "D-A", "D-W"]
BANDWIDTH_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
PEERS = ("skada", "adapt", "pot")

# method -> libraries that implement it (ours always does, when registered)
METHODS = {
    "coral": ("adapt",),          # covariance only
    "coral_mean": ("skada",),     # covariance + means
    "sa": ("skada", "adapt"),
    "tca": ("skada", "adapt"),
    "kmm": ("skada", "adapt"),
    "kliep": ("skada", "adapt"),
    "ot_emd": ("skada", "pot"),
    "ot_sinkhorn": ("skada", "pot"),
    "ot_class_reg": ("skada", "pot"),
}


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------

def load_domain(key: str) -> tuple[np.ndarray, np.ndarray]:
    """Row-sum normalised, per-domain z-scored SURF features (float64) and labels 0..9."""
    import scipy.io

    path = DATA / f"{DOMAINS[key]}_SURF_L10.mat"
    if not path.is_file():
        sys.exit(f"peers.py: {path} not found; set TRANSFERKIT_DATA to the folder holding office_caltech10_surf/")
    m = scipy.io.loadmat(path)
    X = m["fts"].astype(np.float64)
    X = X / X.sum(axis=1, keepdims=True)
    sd = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    return X, m["labels"].ravel().astype(np.int64) - 1


def task_arrays(data: dict, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    s, t = task.split("-")
    return data[f"X_{s}"], data[f"y_{s}"], data[f"X_{t}"], data[f"y_{t}"]


def median_gamma(Xs: np.ndarray, Xt: np.ndarray) -> float:
    """transferkit's median heuristic (the same call its KMM and KLIEP make by default)."""
    from transferkit.shallow._kernels import median_heuristic_gamma

    return median_heuristic_gamma(np.vstack([Xs, Xt]), random_state=0)


# ------------------------------------------------------------------------------------------------
# one runner per library: fit + predict of one method on one task, returns target predictions
# ------------------------------------------------------------------------------------------------

def run_ours(method: str, Xs, ys, Xt, spec):
    from transferkit.core.registries import SHALLOW

    params = {
        "coral": ("coral", {"reg": 1.0, "align_mean": False, "estimator": "svm"}),
        "coral_mean": ("coral", {"reg": 1.0, "align_mean": True, "estimator": "svm"}),
        "sa": ("sa", {"n_components": 20, "estimator": "1nn"}),
        "tca": ("tca", {"n_components": 30, "mu": 1.0, "kernel": "linear", "normalize": False, "estimator": "1nn"}),
        "kmm": ("kmm", {"gamma": spec["gamma"], "B": 1000.0, "estimator": "svm"}),
        "kliep": ("kliep", {"bandwidth_factors": list(BANDWIDTH_FACTORS), "n_centers": 100, "cv": 5, "estimator": "svm"}),
        "ot_emd": ("ot_emd", {"estimator": "1nn"}),
        "ot_sinkhorn": ("ot_sinkhorn", {"reg_e": 0.1, "norm": "median", "estimator": "1nn"}),
        "ot_class_reg": ("ot_class_reg", {"reg_e": 0.1, "reg_cl": 0.1, "penalty": "l1l2", "norm": "median",
                                          "estimator": "1nn"}),
    }
    name, p = params[method]
    if name not in SHALLOW:
        raise LookupError(f"'{name}' is not registered in transferkit's SHALLOW registry")
    X = np.vstack([Xs, Xt])
    y = np.r_[ys, np.full(len(Xt), -1)]
    sd = np.r_[np.ones(len(Xs), int), -np.ones(len(Xt), int)]
    return SHALLOW.create(name, p).fit(X, y, sample_domain=sd).predict(Xt)


def run_skada(method: str, Xs, ys, Xt, spec):
    import skada
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    def svm(weighted=False):
        est = SVC(kernel="linear", C=1.0)
        return est.set_fit_request(sample_weight=True) if weighted else est

    knn = KNeighborsClassifier(n_neighbors=1)
    if method == "ot_class_reg":  # skada passes no cost normalisation to POT here: scale the features
        import ot

        scale = np.sqrt(np.median(ot.dist(Xs, Xt)))
        Xs, Xt = Xs / scale, Xt / scale
    adapters = {
        "coral_mean": (lambda: skada.CORALAdapter(reg=0.5), svm),
        "sa": (lambda: skada.SubspaceAlignmentAdapter(n_components=20, random_state=0), lambda: knn),
        "tca": (lambda: skada.TransferComponentAnalysisAdapter(kernel="linear", n_components=30, mu=1.0), lambda: knn),
        "kmm": (lambda: skada.KMMReweightAdapter(kernel="rbf", gamma=spec["gamma"], B=1000.0), lambda: svm(True)),
        "kliep": (lambda: skada.KLIEPReweightAdapter(gamma=spec["kliep_gammas"], cv=5, n_centers=100, random_state=0),
                  lambda: svm(True)),
        "ot_emd": (lambda: skada.OTMappingAdapter(metric="sqeuclidean", norm="median"), lambda: knn),
        "ot_sinkhorn": (lambda: skada.EntropicOTMappingAdapter(reg_e=0.1, metric="sqeuclidean", norm="median"), lambda: knn),
        "ot_class_reg": (lambda: skada.ClassRegularizerOTMappingAdapter(reg_e=0.1, reg_cl=0.1, norm="l1l2"), lambda: knn),
    }
    if method not in adapters:
        raise LookupError(f"skada has no {method}")
    adapter, clf = adapters[method]
    pipe = skada.make_da_pipeline(adapter(), clf())
    X = np.vstack([Xs, Xt])
    y = np.r_[ys, np.full(len(Xt), -1)]
    sd = np.r_[np.ones(len(Xs), int), -np.ones(len(Xt), int)]
    pipe.fit(X, y, sample_domain=sd)
    return pipe.predict(Xt, sample_domain=-np.ones(len(Xt), int))


def run_adapt(method: str, Xs, ys, Xt, spec):
    from adapt.feature_based import CORAL, SA, TCA
    from adapt.instance_based import KLIEP, KMM
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    svm, knn = SVC(kernel="linear", C=1.0), KNeighborsClassifier(n_neighbors=1)
    Xs, Xt = np.asarray(Xs, np.float64), np.asarray(Xt, np.float64)  # ADAPT's KMM needs float64
    models = {
        "coral": lambda: CORAL(svm, Xt=Xt, lambda_=1.0, verbose=0, random_state=0),
        "sa": lambda: SA(knn, Xt=Xt, n_components=20, verbose=0, random_state=0),
        "tca": lambda: TCA(knn, Xt=Xt, n_components=30, mu=1.0, kernel="linear", verbose=0, random_state=0),
        "kmm": lambda: KMM(svm, Xt=Xt, kernel="rbf", gamma=spec["gamma"], B=1000, eps=None, max_size=10**9,
                           verbose=0, random_state=0),
        "kliep": lambda: KLIEP(svm, Xt=Xt, kernel="rbf", gamma=spec["kliep_gammas"], max_centers=100, cv=5,
                               algo="original", verbose=0, random_state=0),
    }
    if method not in models:
        raise LookupError(f"ADAPT has no {method}")
    return models[method]().fit(Xs, ys).predict(Xt)


def run_pot(method: str, Xs, ys, Xt, spec):
    import ot
    from sklearn.neighbors import KNeighborsClassifier

    transports = {
        "ot_emd": lambda: ot.da.EMDTransport(metric="sqeuclidean", norm="median"),
        "ot_sinkhorn": lambda: ot.da.SinkhornTransport(reg_e=0.1, metric="sqeuclidean", norm="median"),
        "ot_class_reg": lambda: ot.da.SinkhornL1l2Transport(reg_e=0.1, reg_cl=0.1, metric="sqeuclidean", norm="median"),
    }
    if method not in transports:
        raise LookupError(f"POT has no {method}")
    T = transports[method]().fit(Xs=Xs, ys=ys, Xt=Xt)
    return KNeighborsClassifier(n_neighbors=1).fit(T.transform(Xs=Xs), ys).predict(Xt)


RUNNERS = {"ours": run_ours, "skada": run_skada, "adapt": run_adapt, "pot": run_pot}


def worker(lib: str, data_path: str, spec_path: str, out_path: str) -> None:
    """Run every requested method of one library over the tasks; write JSON results."""
    import warnings

    warnings.filterwarnings("ignore")
    data = dict(np.load(data_path))
    spec = json.loads(Path(spec_path).read_text())
    run = RUNNERS[lib]
    results: dict = {"versions": {}, "methods": {}}
    try:
        if lib == "ours":
            import transferkit

            results["versions"]["transferkit"] = getattr(transferkit, "__version__", "?")
        else:
            mod = {"skada": "skada", "adapt": "adapt", "pot": "ot"}[lib]
            t0 = time.perf_counter()
            m = __import__(mod)
            results["versions"][lib] = getattr(m, "__version__", "?")
            results["import_s"] = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001  (the whole library is unavailable: report it)
        results["error"] = f"{type(exc).__name__}: {exc}"
        Path(out_path).write_text(json.dumps(results))
        return
    for method in spec["methods"]:
        if lib != "ours" and lib not in METHODS[method]:
            continue
        rows = {}
        try:
            # untimed warm-up on a subsample of the first task (lazy imports, caches)
            Xs, ys, Xt, _ = task_arrays(data, spec["tasks"][0])
            rng = np.random.default_rng(0)
            i_s = np.sort(np.concatenate([rng.permutation(np.flatnonzero(ys == c))[:8] for c in np.unique(ys)]))
            run(method, Xs[i_s], ys[i_s], Xt[:80], spec["per_task"][spec["tasks"][0]])
            for task in spec["tasks"]:
                Xs, ys, Xt, yt = task_arrays(data, task)
                t0, c0 = time.perf_counter(), time.process_time()
                pred = run(method, Xs, ys, Xt, spec["per_task"][task])
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                rows[task] = {"acc": float(np.mean(np.asarray(pred) == yt) * 100), "wall": wall, "cpu": cpu}
                print(f"  [{lib}] {method} {task}: {rows[task]['acc']:.1f}% {wall:.2f}s", file=sys.stderr, flush=True)
            results["methods"][method] = rows
        except LookupError as exc:
            results["methods"][method] = {"skipped": str(exc)}
        except Exception as exc:  # noqa: BLE001  (a peer's failure is a result to print)
            results["methods"][method] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    Path(out_path).write_text(json.dumps(results))


# ------------------------------------------------------------------------------------------------
# driver
# ------------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated, from: " + ", ".join(METHODS))
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated, from: " + ", ".join(PEERS))
    ap.add_argument("--peers-python", default=str(HERE / ".peers-venv" / "bin" / "python"))
    ap.add_argument("--threads", type=int, default=1, help="BLAS / OpenMP threads of every library (default 1)")
    ap.add_argument("--json", default=None, help="also write every measurement to this JSON file")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--data", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.spec, args.out)
        return

    methods = [m for m in args.methods.split(",") if m]
    tasks = [t for t in args.tasks.split(",") if t]
    peers = [p for p in args.peers.split(",") if p]
    bad = [m for m in methods if m not in METHODS] + [t for t in tasks if t not in TASKS] + [p for p in peers if p not in PEERS]
    if bad:
        sys.exit(f"peers.py: unknown method/task/peer {bad}")

    from transferkit.core.registries import SHALLOW

    ours_name = {"coral_mean": "coral"}
    for m in methods:
        if ours_name.get(m, m) not in SHALLOW:
            print(f"note: '{ours_name.get(m, m)}' is not registered in transferkit's SHALLOW registry: "
                  f"transferkit's {m} is skipped")

    domains = {k: load_domain(k) for k in DOMAINS}
    arrays = {}
    for k, (X, y) in domains.items():
        arrays[f"X_{k}"], arrays[f"y_{k}"] = X, y
    per_task = {}
    for t in tasks:
        Xs, _, Xt, _ = task_arrays(arrays, t)
        g = median_gamma(Xs, Xt)
        per_task[t] = {"gamma": g, "kliep_gammas": [g / f ** 2 for f in BANDWIDTH_FACTORS]}

    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = str(args.threads)
    env.update({"TF_NUM_INTRAOP_THREADS": str(args.threads), "TF_NUM_INTEROP_THREADS": "1",
                "TF_CPP_MIN_LOG_LEVEL": "3", "POT_BACKEND_DISABLE_TENSORFLOW": "1",
                "POT_BACKEND_DISABLE_PYTORCH": "1", "POT_BACKEND_DISABLE_JAX": "1", "POT_BACKEND_DISABLE_CUPY": "1",
                "PYTHONWARNINGS": "ignore"})
    results: dict = {}
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        data_path = f"{tmp}/data.npz"
        np.savez(data_path, **arrays)
        # libraries alternate method by method, so that a change of the machine's load during the
        # run affects every library alike
        for m in methods:
            for lib in ["ours"] + [p for p in peers if p in METHODS[m]]:
                python = sys.executable if lib == "ours" else args.peers_python
                entry = results.setdefault(lib, {"methods": {}, "versions": {}})
                if lib != "ours" and not Path(python).exists():
                    entry["error"] = f"no peers venv at {python} (see the top of this script)"
                    continue
                if "error" in entry:
                    continue
                print(f"running {m} with {lib} ...", flush=True)
                spec_path, out = f"{tmp}/spec_{m}_{lib}.json", f"{tmp}/{m}_{lib}.json"
                Path(spec_path).write_text(json.dumps({"methods": [m], "tasks": tasks, "per_task": per_task}))
                proc = subprocess.run([python, str(Path(__file__).resolve()), "--worker", lib, "--data", data_path,
                                       "--spec", spec_path, "--out", out], env=env, cwd=str(REPO), check=False)
                if proc.returncode != 0 or not Path(out).exists():
                    entry["methods"][m] = {"error": f"worker exited with {proc.returncode}"}
                    continue
                got = json.loads(Path(out).read_text())
                if "error" in got:
                    entry["error"] = got["error"]
                    print(f"skip {lib}: {got['error']}")
                    continue
                entry["methods"].update(got.get("methods", {}))
                entry["versions"].update(got.get("versions", {}))
                if "import_s" in got:
                    entry["import_s"] = got["import_s"]
    load1 = os.getloadavg()

    report(results, methods, tasks, peers)
    print(f"\nthreads per library: {args.threads}; load average before/after: {load0[0]:.1f} / {load1[0]:.1f} "
          f"on {os.cpu_count()} cores")
    for lib, r in results.items():
        if r.get("versions"):
            print(f"{lib}: {r['versions']}" + (f" (import {r['import_s']:.1f}s, not timed)" if "import_s" in r else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "per_task": per_task, "threads": args.threads,
                                               "load": [load0, load1]}, indent=1))


def _summary(rows: dict, tasks: list[str]) -> tuple[float, float, float] | None:
    if not rows or "error" in rows or "skipped" in rows or any(t not in rows for t in tasks):
        return None
    return (float(np.mean([rows[t]["acc"] for t in tasks])), float(sum(rows[t]["wall"] for t in tasks)),
            float(sum(rows[t]["cpu"] for t in tasks)))


def report(results: dict, methods: list[str], tasks: list[str], peers: list[str]) -> None:
    ours = results.get("ours", {}).get("methods", {})
    print(f"\nOffice-Caltech10 SURF, {len(tasks)} tasks: mean accuracy (%), summed wall time of fit + predict (s)")
    head = f"{'method':13s} {'library':8s} {'acc':>6s} {'wall s':>8s} {'cpu s':>8s} {'ours/lib time':>14s} {'ours-lib acc':>13s}"
    print(head)
    print("-" * len(head))
    verdicts = []
    for m in methods:
        o = _summary(ours.get(m, {}), tasks)
        if o is None:
            why = ours.get(m, {}).get("error") or ours.get(m, {}).get("skipped") or "not run"
            print(f"{m:13s} {'ours':8s} {'-':>6s}   ({why})")
        else:
            print(f"{m:13s} {'ours':8s} {o[0]:6.1f} {o[1]:8.2f} {o[2]:8.2f}")
        for lib in peers:
            if lib not in METHODS[m]:
                continue
            r = results.get(lib, {})
            rows = r.get("methods", {}).get(m, {})
            p = _summary(rows, tasks)
            if p is None:
                why = r.get("error") or rows.get("error") or rows.get("skipped") or "not run"
                print(f"{'':13s} {lib:8s} {'-':>6s}   ({why})")
                continue
            ratio = f"{o[1] / p[1]:.2f}x" if o else "-"
            gap = f"{o[0] - p[0]:+.1f}" if o else "-"
            print(f"{'':13s} {lib:8s} {p[0]:6.1f} {p[1]:8.2f} {p[2]:8.2f} {ratio:>14s} {gap:>13s}")
            if lib == "skada" and o:
                verdicts.append((m, o[1] / p[1], o[0] - p[0]))
    if verdicts:
        print("\ntargets vs skada (time <= 0.5x, accuracy >= skada - 0.5):")
        for m, ratio, gap in verdicts:
            ok_t, ok_a = ratio <= 0.5, gap >= -0.5
            print(f"  {m:13s} time {ratio:5.2f}x {'ok' if ok_t else 'MISSED'}   accuracy {gap:+5.1f} {'ok' if ok_a else 'MISSED'}")
    print("\nper task (accuracy %):")
    libs = ["ours"] + [p for p in peers]
    for m in methods:
        for lib in libs:
            if lib != "ours" and lib not in METHODS[m]:
                continue
            rows = (ours if lib == "ours" else results.get(lib, {}).get("methods", {})).get(m, {})
            if _summary(rows, tasks) is None:
                continue
            print(f"  {m:13s} {lib:6s} " + " ".join(f"{t}:{rows[t]['acc']:5.1f}" for t in tasks))


if __name__ == "__main__":
    main()
