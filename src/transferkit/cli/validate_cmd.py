"""``transferkit validate CONFIG [key=value ...]``: check a config without training."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a config (names, parameters, types) without running it",
                       description="Check every key, registry name and parameter of an experiment "
                                   "config and print the resolved config. Exits 2 naming the key path "
                                   "of the first problem.")
    p.add_argument("config", help="YAML experiment config")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides, as for 'run'")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import yaml

    from transferkit.experiment.config import load_config

    cfg = load_config(args.config, args.overrides)
    print(yaml.safe_dump(cfg.raw, sort_keys=False).rstrip())
    print(f"config OK: {len(cfg.methods)} method(s) on data set {cfg.data.name!r}")
    return 0
