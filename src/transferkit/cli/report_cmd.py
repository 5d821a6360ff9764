"""``transferkit report DIR``: print a finished experiment's table and re-render its reports."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="show and re-render the report of an output folder",
                       description="Read DIR/report.json, print its results table and rewrite "
                                   "report.md and report.html.")
    p.add_argument("dir", help="output folder of 'transferkit run' or 'transferkit bench'")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from transferkit.experiment.report import format_table, render_report
    from transferkit.experiment.result import ExperimentResult

    out = Path(args.dir)
    result = ExperimentResult.load_json(out / "report.json")
    paths = render_report(out)
    print(format_table(result))
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0
