"""``transferkit run [CONFIG] [key=value ...] [--out DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="run an experiment (the built-in digits default without a config)",
        description="Run every method of an experiment on every task of its data set, print the "
                    "results table and write report.json/.md/.html. Without CONFIG: the built-in "
                    "default (digits MNIST->UCI with source_only, coral and dann). Running again "
                    "with the same --out reuses finished runs and resumes interrupted ones.",
        epilog="examples:\n  transferkit run\n  transferkit run configs/office_caltech_1nn.yaml\n"
               "  transferkit run exp.yaml train.steps=500 methods.dann.params.trade_off=0.3 --out runs/x",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", nargs="?", help="YAML experiment config (default: the built-in digits experiment)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="override config values by dotted path, e.g. train.steps=200")
    p.add_argument("--out", default=None, help="output folder (default: runs/<experiment name>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from transferkit.experiment.config import load_config
    from transferkit.experiment.report import format_table
    from transferkit.experiment.runner import run_experiment

    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config and not Path(config).exists():
        overrides.insert(0, config)  # `transferkit run train.steps=10` on the default
        config = None
    cfg = load_config(config, overrides)
    out = Path(args.out) if args.out else Path("runs") / cfg.name
    result = run_experiment(cfg, out, progress=not args.quiet)
    print(format_table(result))
    failed = [r for r in result.runs if r.status != "ok"]
    for r in failed:
        print(f"FAILED {r.task} {r.method}: {r.error}")
    print(f"report: {out / 'report.html'} (also report.md, report.json)")
    return 1 if failed else 0
