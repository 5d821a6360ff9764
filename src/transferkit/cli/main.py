"""``transferkit`` command line: parses arguments and calls public functions, nothing more.

Each subcommand lives in its own module exposing ``add_parser(subparsers)`` and ``main(args)``.
Errors caused by input print one clear line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

SUBCOMMANDS = ("run", "bench", "validate", "list", "report", "assess")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="transferkit",
        description="Transfer learning and domain adaptation: assess the shift, transfer, and "
                    "decide without target labels.",
        epilog="Run 'transferkit COMMAND --help' for the options of a command.",
    )
    from transferkit import __version__

    parser.add_argument("--version", action="version", version=f"transferkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"transferkit.cli.{name}_cmd").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from transferkit.core.errors import TransferkitError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # ``key=value`` overrides may come after options (``bench NAME --methods a,b train.steps=10``):
    # argparse stops filling a positional list at the first option, so collect the rest here
    if extra and hasattr(args, "overrides") and all("=" in a and not a.startswith("-") for a in extra):
        args.overrides = list(args.overrides or []) + list(extra)
    elif extra:
        parser.error("unrecognized arguments: " + " ".join(extra))
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except TransferkitError as exc:
        print(f"transferkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; finished runs and the last checkpoints are kept — run the same "
              "command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
