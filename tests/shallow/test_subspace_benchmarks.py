"""Published tables reproduced by the subspace methods (slow: about 3 minutes on 2 cores).

Office-Caltech10 SURF (12 tasks) and MNIST<->USPS (JDA subsets), transductive protocol (all
target samples adapted on and evaluated), each method with its paper's / reference code's
hyper-parameters fixed in advance (no target label chooses anything):

- TCA: linear kernel, 30 components, mu = 1 (reference code; Office-Caltech). Digits: the JDA
  paper's protocol, primal, 100 components, regulariser 0.1.
- JDA: linear kernel, 100 components, lambda = 1, T = 10 (JDA paper, Office-Caltech); digits
  primal, lambda = 0.1.
- GFK: d = 20, 1-NN.  MEDA: d = 20, p = 10, lambda = 10, eta = 0.1, rho = 1, T = 10, rbf.
- SA (d = 20) and BDA (mu estimated) are printed without a published row.

Run ``python tests/shallow/test_subspace_benchmarks.py`` to print the tables only.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

OFFICE = {
    "TCA": ("tca", {}),
    "JDA": ("jda", {}),
    "GFK": ("gfk", {}),
    "MEDA": ("meda", {}),
    "SA": ("sa", {}),
    "BDA": ("bda", {"mu": "auto"}),
}
DIGITS = {
    "TCA": ("tca", {"kernel": "primal", "n_components": 100, "mu": 0.1}),
    "JDA": ("jda", {"kernel": "primal", "n_components": 100, "lam": 0.1}),
    "GFK": ("gfk", {}),
}
#: the original JDA paper's Office-Caltech row (Long et al. 2013, Table 1; FIELD.md, recalled)
JDA_PAPER = [44.78, 41.69, 45.22, 39.36, 37.97, 39.49, 31.17, 32.78, 89.17, 31.52, 33.09, 89.49]
#: acceptance floors of the "Shallow adaptation family" issue (published mean - 1)
FLOORS = {"TCA": 45.2, "JDA": 45.8, "MEDA": 51.7}


def run_table(benchmark: str, methods: dict) -> dict[str, dict]:
    """``{label: {"acc": [...], "published": [...], "seconds": s}}`` for every task."""
    from transferkit.core.registries import DATASETS, SHALLOW
    from transferkit.data.reference import published

    bench = DATASETS.create(benchmark)
    tasks = [bench.load_task(t) for t in bench.task_names()]
    out = {}
    for label, (name, params) in methods.items():
        t0 = time.perf_counter()
        accs, pubs = [], []
        for task in tasks:
            X, y, sd = task.train.to_numpy()
            est = SHALLOW.create(name, params).fit(X, y, sample_domain=sd)
            accs.append(100.0 * float(np.mean(est.predict(task.x_test) == task.y_test)))
            p = published(benchmark, task.name, label)
            pubs.append(p[0] if p else None)
        out[label] = {"tasks": [t.name for t in tasks], "acc": accs, "published": pubs,
                      "seconds": time.perf_counter() - t0}
    return out


def format_table(title: str, table: dict[str, dict]) -> str:
    tasks = next(iter(table.values()))["tasks"]
    w = max(6, *(len(t) for t in tasks))
    lines = [title, f"{'method':<10}" + "".join(f"{t:>{w + 1}}" for t in tasks) + f"{'mean':>8}{'s':>7}"]
    for label, r in table.items():
        lines.append(f"{label:<10}" + "".join(f"{a:>{w + 1}.2f}" for a in r["acc"])
                     + f"{np.mean(r['acc']):>8.2f}{r['seconds']:>7.1f}")
        if all(p is not None for p in r["published"]):
            lines.append(f"{'  pub':<10}" + "".join(f"{p:>{w + 1}.2f}" for p in r["published"])
                         + f"{np.mean(r['published']):>8.2f}")
    return "\n".join(lines)


@pytest.mark.slow
def test_office_caltech_surf_table(shared_data):
    table = run_table("office_caltech10_surf", OFFICE)
    print("\n" + format_table("Office-Caltech10 SURF, accuracy % (transductive)", table))
    for label, floor in FLOORS.items():
        assert np.mean(table[label]["acc"]) >= floor, (label, table[label]["acc"])
    # JDA reproduces the original paper's row task by task (to its two decimals)
    np.testing.assert_allclose(table["JDA"]["acc"], JDA_PAPER, atol=0.01)
    # TCA and MEDA reproduce the collected rows to the first decimal on every task
    for label in ("TCA", "MEDA"):
        np.testing.assert_allclose(table[label]["acc"], table[label]["published"], atol=0.16)


@pytest.mark.slow
def test_mnist_usps_table(shared_data):
    table = run_table("mnist_usps_jda", DIGITS)
    print("\n" + format_table("MNIST<->USPS (JDA subsets), accuracy % (transductive)", table))
    np.testing.assert_allclose(table["JDA"]["acc"], [67.28, 59.65], atol=0.01)
    for a, p in zip(table["TCA"]["acc"], table["TCA"]["published"]):
        assert a >= p - 1.0


if __name__ == "__main__":
    print(format_table("Office-Caltech10 SURF, accuracy % (transductive)", run_table("office_caltech10_surf", OFFICE)))
    print()
    print(format_table("MNIST<->USPS (JDA subsets), accuracy % (transductive)", run_table("mnist_usps_jda", DIGITS)))
