"""``transferkit bench NAME [--methods a,b] [--out DIR] [key=value ...]``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="run methods on every task of a named benchmark beside the published figures",
        description="Run the listed methods on every task of a named benchmark with the papers' "
                    "preprocessing and print and write (CSV task,method,accuracy,published,gap and "
                    "Markdown) our accuracy, the published accuracy and the gap, per task and mean. "
                    "Hyper-parameters are the methods' defaults (the papers'); nothing is tuned on "
                    "target labels.",
        epilog="example:\n  transferkit bench office_caltech10_surf --methods 1nn,coral,tca,jda",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", help="benchmark name (see 'transferkit list datasets')")
    p.add_argument("--methods", default=None, help="comma-separated method names (default: the benchmark's usual set)")
    p.add_argument("--out", default=None, help="output folder (default: runs/bench-<name>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.steps=2000")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from transferkit.experiment.bench import run_bench

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    out = Path(args.out) if args.out else Path("runs") / f"bench-{args.name}"
    text = run_bench(args.name, methods, out, overrides=args.overrides, progress=not args.quiet)
    print(text)
    print(f"written: {out / 'bench.csv'}, {out / 'bench.md'}, {out / 'report.html'}")
    return 0
