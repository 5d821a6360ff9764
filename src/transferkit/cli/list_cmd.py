"""``transferkit list methods|datasets|models``."""

from __future__ import annotations

import argparse

KINDS = ("methods", "datasets", "models", "validators", "scores", "tests", "distances")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered methods, data sets, models, validators, scores, shift tests or distances",
                       description="List what is registered, with a one-line description and the "
                                   "default parameters.")
    p.add_argument("kind", choices=KINDS, help="what to list")
    p.set_defaults(func=main)


def _fmt_defaults(d: dict) -> str:
    import inspect

    return ", ".join(f"{k}=<required>" if v is inspect.Parameter.empty else f"{k}={v!r}"
                     for k, v in d.items()) or "-"


def main(args: argparse.Namespace) -> int:
    from transferkit.assess._registry import DISTANCES, SCORES, SHIFT_TESTS
    from transferkit.core.registries import DATASETS, METHODS, MODELS, SHALLOW
    from transferkit.selection._registry import VALIDATORS

    sections = {
        "methods": [("deep (trained by the loop)", METHODS), ("shallow (feature-level, scikit-learn)", SHALLOW)],
        "datasets": [("data sets and benchmarks", DATASETS)],
        "models": [("models", MODELS)],
        "validators": [("label-free validators (higher is better)", VALIDATORS)],
        "scores": [("transferability scores (higher is more transferable)", SCORES)],
        "tests": [("two-sample shift tests", SHIFT_TESTS)],
        "distances": [("domain distances", DISTANCES)],
    }[args.kind]
    for title, reg in sections:
        print(f"{title}:")
        for e in reg.entries():
            print(f"  {e.name:<22} {e.description}")
            print(f"  {'':<22} defaults: {_fmt_defaults(e.defaults())}")
    return 0
