"""``transferkit assess``: shift tests, distances, transferability and the advisor's advice."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "assess", help="before training: is there a shift, and should the target be adapted?",
        description="Run the shift tests (MMD, energy, classifier two-sample test; p-values), the "
                    "distances (proxy A-distance, CORAL), LogME on the source labels, a label-shift "
                    "estimate and a quick pilot (source-only against cheap adaptations, judged by "
                    "label-free validators and the collapse guard), then print the advisor's "
                    "recommendation with its reasons. Target labels are never read. Without "
                    "arguments: the built-in digits shift (MNIST -> UCI).",
        epilog="examples:\n  transferkit assess\n"
               "  transferkit assess --source src.npz --target tgt.npz --out assess/\n"
               "  transferkit assess --config exp.yaml --task C-A\n"
               "  transferkit assess --encoder input --encoder efficientnet_lite0:image_size=64\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", help="labelled source file (.npz, .csv, .svmlight, .mat)")
    p.add_argument("--target", help="target file (its labels, if any, are ignored)")
    p.add_argument("--config", help="experiment YAML: assess the tasks of its data set")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (with --config)")
    p.add_argument("--task", action="append", default=None,
                   help="task(s) of the config's data set to assess (default: all)")
    p.add_argument("--label-column", default=None, help="label column of .csv files (default: last)")
    p.add_argument("--x-key", default=None, help="variable holding the samples in .npz/.mat files")
    p.add_argument("--y-key", default=None, help="variable holding the labels in .npz/.mat files")
    p.add_argument("--classifier", default="logreg", choices=("logreg", "svm", "1nn"),
                   help="classifier of every pilot pipeline (default: logreg)")
    p.add_argument("--validator", default=None,
                   help="label-free validator of the pilot (default: the library default; "
                        "see 'transferkit list validators')")
    p.add_argument("--encoder", action="append", default=None, metavar="NAME[:key=value,...]",
                   help="candidate encoder (repeat for several): 'input' (the samples as they are) or a "
                        "registered encoder with its parameters (see 'transferkit list encoders'), e.g. "
                        "efficientnet_lite0:pretrained=false. Each one's frozen features (cached on disk) "
                        "are scored by LogME on the source labels and the best one is assessed")
    p.add_argument("--cache-dir", default=None,
                   help="feature cache folder of --encoder (default: the library's cache folder)")
    p.add_argument("--deep", action="store_true", help="add a small DANN to the pilot (slower)")
    p.add_argument("--permutations", type=int, default=200,
                   help="permutations of the MMD and energy tests (default: 200)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--embedding", default="pca", choices=("pca", "auto", "tsne", "off"),
                   help="2-D map of the features in the HTML report (default: pca)")
    p.add_argument("--out", default=None, help="write report.json, report.md and report.html here")
    p.set_defaults(func=main)


def _tasks(args: argparse.Namespace, encoded: bool = False) -> tuple[str, list[Any]]:
    """(description, tasks) from the arguments. ``encoded`` (``--encoder`` given): a text data set
    without an encoder gives its raw texts (:class:`~transferkit.data.text.TextTask`), for the
    candidate encoders to read."""
    from transferkit.core.errors import ConfigError

    if (args.source is None) != (args.target is None):
        raise ConfigError("give both --source and --target (or neither, for the built-in digits shift)")
    if args.source is not None and args.config is not None:
        raise ConfigError("give either --source/--target files or --config, not both")
    if args.overrides and args.config is None:
        raise ConfigError(f"key=value overrides ({args.overrides[0]}) need --config")
    if args.source is not None:
        from transferkit.data.readers import load_domain_dataset

        label_column: int | str | None = args.label_column
        if isinstance(label_column, str) and label_column.lstrip("-").isdigit():
            label_column = int(label_column)
        task = load_domain_dataset(source=args.source, target=args.target, x_key=args.x_key,
                                   y_key=args.y_key,
                                   label_column=-1 if label_column is None else label_column)
        return f"files {args.source} -> {args.target}", [task]
    from transferkit.core.registries import DATASETS
    from transferkit.experiment.config import DEFAULT_CONFIG, load_config

    if args.config is not None:
        cfg = load_config(args.config, args.overrides)
        data_name, params, desc = cfg.data.name, dict(cfg.data.params), f"config {args.config}"
    else:
        data_name = DEFAULT_CONFIG["data"]["name"]
        params = dict(DEFAULT_CONFIG["data"]["params"])
        desc = "built-in digits shift (MNIST -> UCI)"
    data = DATASETS.create(data_name, params, path="data")
    if encoded and getattr(data, "encoded", None) is not None:
        raise ConfigError(f"--encoder reads the raw samples, but the data set {data_name!r} already encodes "
                          f"them ({data.encoded.describe()}); remove data.params.encoder (and "
                          "encoder_params) to compare encoders on its raw data", "--encoder")
    names = data.task_names()
    if args.task:
        known = {n.lower(): n for n in names}
        picked = []
        for t in args.task:
            if t in names:
                picked.append(t)
            elif t.lower() in known:
                picked.append(known[t.lower()])
            else:
                try:
                    picked.append(data.canonical_task(t))
                except AttributeError:
                    raise ConfigError(f"unknown task {t!r}; tasks: {', '.join(names)}", "--task") from None
        names = picked
    if encoded and hasattr(data, "load_texts"):   # a text set without an encoder (checked above)
        return desc, [data.load_texts(n) for n in names]
    return desc, [data.load_task(n) for n in names]


def parse_encoder_specs(specs: list[str] | None, cache_dir: str | None = None) -> dict[str, Any]:
    """``--encoder`` values -> ``{label: EncodedInputs or None}`` (None: ``input``, the samples as
    they are). ``NAME[:key=value,...]`` names a registered encoder; names and parameters are checked
    here, before any data is read; the encoders are built on first use."""
    from transferkit.core.errors import ConfigError
    from transferkit.data.encoded import EncodedInputs
    from transferkit.experiment.config import _parse_value

    out: dict[str, Any] = {}
    for spec in specs or ():
        label = spec.strip()
        name, _, rest = label.partition(":")
        name = name.strip()
        if label in out:
            raise ConfigError(f"--encoder {label!r} is given twice; give each candidate once")
        if name == "input":
            if rest.strip():
                raise ConfigError(f"--encoder {label!r}: 'input' (the samples as they are) takes no "
                                  "parameters")
            out[label] = None
            continue
        params: dict[str, Any] = {}
        for item in filter(None, (t.strip() for t in rest.split(","))):
            key, eq, text = item.partition("=")
            if not eq or not key.strip():
                raise ConfigError(f"--encoder {label!r}: parameter {item!r} must look like key=value "
                                  "(e.g. efficientnet_lite0:pretrained=false,image_size=64)")
            params[key.strip()] = _parse_value(text.strip())
        try:   # unknown names: the error lists the known ones
            out[label] = EncodedInputs(name, params, cache_dir=cache_dir, progress=False)
        except ConfigError as e:
            raise ConfigError(f"--encoder {label!r}: {e}") from e
    return out


def encoder_candidates(encoders: dict[str, Any], source: Any, target: Any, *, task: str) -> dict[str, Any]:
    """``advise`` candidates of one task: label -> ``(source features, target features)`` from each
    encoder (through the feature cache; ``input``: the samples themselves)."""
    from transferkit.core.errors import ConfigError, DataError

    out: dict[str, Any] = {}
    for lbl, enc in encoders.items():
        if enc is None:
            out[lbl] = (source, target)
            continue
        feats = []
        for part, raw in (("source", source), ("target", target)):
            try:
                feats.append(enc(raw, label=f"{task} {part}"))
            except (ConfigError, DataError) as e:   # e.g. texts given to an image encoder
                raise DataError(f"--encoder {lbl} on the samples of {task}: {e}") from e
            print(f"{task}: {lbl}: {enc.log[f'{task} {part}']['summary']}", flush=True)
        out[lbl] = tuple(feats)
    return out


def main(args: argparse.Namespace) -> int:
    import datetime as _dt

    from transferkit.assess.advisor import advise
    from transferkit.core.errors import ConfigError, DataError
    from transferkit.data.text import TextTask

    if args.permutations < 1:
        raise ConfigError(f"--permutations must be at least 1, got {args.permutations}")
    # unknown names and bad parameters fail before any work
    encoders = parse_encoder_specs(args.encoder, args.cache_dir)
    desc, tasks = _tasks(args, encoded=bool(encoders))
    for task in tasks:  # before any work: every task needs both domains
        if (len(task.target_texts) == 0) if isinstance(task, TextTask) else task.train.is_source.all():
            raise DataError(f"task {task.name!r} has no target samples; assess compares the labelled source "
                            "with unlabelled target data: give the data set a target (for 'files', "
                            "'text_files' or 'image_folders': data.params.target)")
        if isinstance(task, TextTask) and any(enc is None for enc in encoders.values()):
            raise ConfigError(f"task {task.name!r} holds texts, which are not features: drop '--encoder input' "
                              "and compare text encoders (e.g. --encoder minilm)", "--encoder")
    if encoders:
        import torch

        for enc in encoders.values():   # built once, for every task
            if enc is not None:
                torch.manual_seed(args.seed)   # the initialisation of an encoder without pretrained weights
                enc.encoder  # noqa: B018
    results = {}
    for task in tasks:
        if isinstance(task, TextTask):
            inputs = {"source": task.source_texts, "target": task.target_texts,
                      "source_labels": task.source_labels}
            raw = (task.source_texts, task.target_texts)
        else:
            inputs = {"source": task}
            raw = (task.train.x[task.train.is_source], task.train.x[~task.train.is_source])
        candidates = encoder_candidates(encoders, *raw, task=task.name) if encoders else None
        advice = advise(**inputs, candidates=candidates,
                        finetunable=[lbl for lbl, enc in encoders.items() if enc is not None],
                        classifier=args.classifier, validator=args.validator, deep=args.deep,
                        n_permutations=args.permutations, seed=args.seed,
                        embedding=None if args.embedding == "off" or args.out is None else args.embedding)
        results[task.name] = advice
        print(f"== {task.name} ==")
        print(advice.to_text())
        print(f"(assessed in {advice.timings['total']:.1f} s)")
        print()
    if args.out is not None:
        from transferkit.experiment.report import write_assessment_report
        from transferkit.experiment.runner import versions

        report = {"kind": "assessment", "source": desc,
                  "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  "versions": versions(), "seed": args.seed,
                  "tasks": {name: a.to_dict() for name, a in results.items()}}
        paths = write_assessment_report(report, Path(args.out))
        print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0
