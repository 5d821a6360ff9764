"""``transferkit list methods|finetune|datasets|models|encoders|validators|scores|tests|distances``."""

from __future__ import annotations

import argparse

KINDS = ("methods", "finetune", "datasets", "models", "encoders", "validators", "scores", "tests", "distances")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered methods, fine-tuning strategies, data sets, models, encoders, validators, "
                       "scores, shift tests or distances",
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
    from transferkit.core.registries import DATASETS, ENCODERS, FINETUNE, METHODS, MODELS, SHALLOW
    from transferkit.selection._registry import VALIDATORS

    sections = {
        "methods": [("deep (trained by the loop)", METHODS), ("shallow (feature-level, scikit-learn)", SHALLOW)],
        "finetune": [("fine-tuning strategies (train.finetune; in bench: NAME or METHOD+NAME)", FINETUNE)],
        "datasets": [("data sets and benchmarks", DATASETS)],
        "encoders": [("pretrained encoders (frozen features through the cache, or backbones)", ENCODERS)],
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
