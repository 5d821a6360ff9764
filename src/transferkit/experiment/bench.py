"""``transferkit bench``: a named benchmark, a list of methods, ours beside the published figures.

Each benchmark has a preset (the usual methods, the model and training settings of the papers'
protocol); ``--methods`` and ``key=value`` overrides change it. The table is written as CSV
(``task,method,accuracy,published,gap``, one row per task and method, then one ``mean`` row per
method) and Markdown.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from transferkit.experiment.config import apply_overrides, validate_config
from transferkit.experiment.result import ExperimentResult

#: per benchmark: default methods, model and training settings (the papers' protocols)
BENCH_PRESETS: dict[str, dict[str, Any]] = {
    "office_caltech10_surf": {
        "methods": ["1nn", "svm", "coral", "sa", "gfk", "tca", "jda", "bda", "easytl", "meda", "kmm", "kliep",
                    "ot_emd", "ot_sinkhorn", "ot_class_reg"],
        # CORAL's classifier protocol (Sun et al. 2016; the code shared with Fernando et al. 2013): an
        # SVM on the similarities Xs A Xs' / Xt (Xs A)', C by 2-fold cross-validation on the source
        "method_params": {"coral": {"protocol": "similarity"}},
    },
    "mnist_usps_jda": {
        "methods": ["1nn", "gfk", "tca", "jda"],
        # the JDA paper's digits protocol (Long et al. 2013, Sec. 5): primal (no kernel), k = 100,
        # lambda = 0.1 -- fixed in advance, as the paper states it
        "method_params": {"tca": {"kernel": "primal", "n_components": 100, "mu": 0.1},
                          "jda": {"kernel": "primal", "n_components": 100, "lam": 0.1},
                          "bda": {"kernel": "primal", "n_components": 100, "lam": 0.1}},
    },
    "amazon_reviews_5000d": {
        "methods": ["logreg", "svm", "coral", "source_only", "dann"],
        # Ganin et al. 2016, Sec. 5.1.2: one hidden layer of 50 sigmoid units, logistic domain
        # regressor on the hidden layer, SGD; 5000-d inputs
        "model": {"name": "mlp", "params": {"hidden": [50], "activation": "sigmoid"}},
        "train": {"steps": 3000, "batch_size": 64, "lr": 0.01, "weight_decay": 0.0, "lr_schedule": "dann"},
        "method_params": {"dann": {"disc_layers": 0, "trade_off": 0.1}},
    },
    "digits": {
        "methods": ["source_only", "coral", "dann"],
        "model": {"name": "lenet", "params": {}},
        "train": {"steps": 1500, "batch_size": 64, "lr": 0.01},
        "method_params": {"coral": {"estimator": "1nn", "align_mean": True}, "dann": {"disc_hidden": 500}},
    },
    "amazon_reviews_text": {
        # frozen all-MiniLM-L6-v2 sentence embeddings (through the feature cache) + the method
        "methods": ["logreg"],
        "data_params": {"encoder": "minilm"},
        # deep methods and fine-tuning strategies fine-tune MiniLM itself on token ids, with the
        # per-source recipe of benchmarks/amazon_text_source_finetune.py (fixed there before its
        # runs): 128 tokens, a new linear head after dropout 0.1, AdamW (weight decay 0.01), batch
        # 16, lr 5e-5 (LoRA: 5e-4), 3 epochs of the 1,800 training reviews (113 steps each), 10 %
        # warm-up then cosine decay, gradient clipping 1.0; 10 % of the source held out, and, as
        # there, the weights of the epoch with the best held-out source accuracy are kept (ties:
        # the later epoch; train.keep). Target-free runs train once per source
        # (share_source_training). Long reviews keep their first 32 and last 94 word pieces
        # (head_tail): with it, held-out *source* accuracy was higher on all four source domains
        # (benchmarks/results/amazon_reviews_text_truncation.md).
        "finetune": {
            "data_params": {"encoder": "minilm", "representation": "inputs",
                            "encoder_params": {"max_length": 128, "truncation": "head_tail"}},
            "model": {"name": "minilm", "params": {"normalize": False, "dropout": 0.1}},
            "train": {"steps": 339, "batch_size": 16, "optimizer": "adamw", "lr": 5e-5, "weight_decay": 0.01,
                      "lr_schedule": "cosine", "warmup_steps": 34, "grad_clip": 1.0, "val_fraction": 0.1,
                      "log_every": 113, "checkpoint_every": 113, "keep": "best_source_accuracy",
                      "keep_every": 113},
            "strategy_train": {"lora": {"lr": 5e-4}},
            "share_source_training": True,
            # the report's feature maps cost a MiniLM pass over their points in every run: 400, not 1,000
            "report": {"max_points": 400},
        },
    },
    "digits_images": {
        # TLlib's digits protocol for the network (LeNet, 500 features, then its ImageClassifier's
        # bottleneck Linear(500, 256) + BatchNorm + ReLU; discriminators with 1024 hidden units;
        # SGD momentum 0.9, weight decay 1e-3, lr 0.01 with the lr / (1 + 10 p)^0.75 decay), with a
        # budget that fits the 10 minutes per method and task on 2 cores: 6000 steps of 64
        # source + 64 target images (TLlib: 50,000 steps of 128). Fixed before the runs; nothing is
        # tuned on target labels.
        "methods": ["source_only", "dann", "cdan", "mcc", "fixmatch", "shot"],
        "model": {"name": "lenet", "params": {"bottleneck": 256}},
        "train": {"steps": 6000, "batch_size": 64, "lr": 0.01, "weight_decay": 1e-3, "eval_every": 1000,
                  "checkpoint_every": 1000},
        "method_params": {"dann": {"disc_hidden": 1024}, "cdan": {"disc_hidden": 1024}},
    },
}


def bench_config(name: str, methods: list[str] | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """The raw experiment config of benchmark ``name`` (before validation). A preset with a
    ``finetune`` part (pretrained encoders) uses it when the methods are deep ones or fine-tuning
    strategies: they train the encoder on its inputs, where shallow methods read frozen features."""
    from transferkit.core.registries import DATASETS

    DATASETS.entry(name, "bench")  # unknown names fail here, with suggestions
    preset = BENCH_PRESETS.get(name, {"methods": ["1nn"]})
    mparams = preset.get("method_params", {})
    entries = [_method_entry(m, mparams) for m in (methods or preset["methods"])]
    if "finetune" in preset and _fine_tunes(name, preset["finetune"], entries):
        preset = {**preset, **preset["finetune"]}
    raw: dict[str, Any] = {
        "name": f"bench-{name}",
        "seed": 0,
        "data": {"name": name, "params": {"tasks": "all", **preset.get("data_params", {})}},
        "model": preset.get("model", {"name": "mlp", "params": {}}),
        "train": dict(preset.get("train", {})),
        "methods": entries,
    }
    for key in ("share_source_training", "report"):
        if key in preset:
            raw[key] = preset[key]
    return apply_overrides(raw, overrides or [])


def _fine_tunes(name: str, finetune: dict[str, Any], entries: list[dict[str, Any]]) -> bool:
    """Whether the entries are deep methods (which fine-tune the encoder on its inputs, with the
    preset's ``finetune`` part); their fine-tuning strategies get their own training settings here.
    A mix of deep and shallow methods, which need different inputs, is refused."""
    from transferkit.core.errors import ConfigError
    from transferkit.core.registries import METHODS, SHALLOW

    deep = [e for e in entries if e["name"] in METHODS]
    for e in deep:
        extra = finetune.get("strategy_train", {}).get((e.get("train") or {}).get("finetune", "full"))
        if extra:
            e["train"] = {**e.get("train", {}), **extra}
    # unknown names are neither: the config check names them with suggestions
    shallow = sorted(e["name"] for e in entries if e["name"] in SHALLOW)
    if deep and shallow:
        raise ConfigError(f"{name}: {', '.join(shallow)} read frozen encoder features, while "
                          f"{', '.join(sorted(e.get('label', e['name']) for e in deep))} fine-tune the encoder "
                          "on its inputs; run them in two bench commands", "--methods")
    return bool(deep)


def _method_entry(name: str, mparams: dict[str, Any]) -> dict[str, Any]:
    """A method entry of the bench config. Besides adaptation methods, ``name`` may be a
    fine-tuning strategy (``lora``: source-only training with that strategy) or ``method+strategy``
    (``dann+lora``: the adaptation method trained with the strategy)."""
    from transferkit.core.registries import FINETUNE, METHODS, SHALLOW

    base, _, strategy = name.partition("+")
    if not strategy and base not in METHODS and base not in SHALLOW and base in FINETUNE:
        base, strategy = "source_only", base
    entry: dict[str, Any] = {"name": base, "params": dict(mparams.get(base, {}))}
    if strategy:
        entry["label"] = name
        entry["train"] = {"finetune": strategy}
    return entry


def bench_rows(result: ExperimentResult) -> list[dict[str, Any]]:
    """Rows ``task, method, accuracy, published, gap``, then a ``mean`` row per method (the
    published mean only when every task has a published figure)."""
    rows: list[dict[str, Any]] = []
    for r in result.runs:
        acc = r.metrics.get("target_accuracy")
        rows.append({"task": r.task, "method": r.method, "accuracy": acc, "published": r.published,
                     "gap": r.gap, "status": r.status})
    for m in result.methods():
        mean, pub = result.mean(m), result.mean_published(m)
        rows.append({"task": "mean", "method": m, "accuracy": mean, "published": pub,
                     "gap": None if mean is None or pub is None else mean - pub,
                     "status": "ok" if all(r.status == "ok" for r in result.runs if r.method == m) else "failed"})
    return rows


def _f(v: Any, nd: int = 1) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def write_bench_tables(result: ExperimentResult, out: Path) -> str:
    """Write ``bench.csv`` and ``bench.md``; return the Markdown text."""
    rows = bench_rows(result)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "bench.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["task", "method", "accuracy", "published", "gap"])
        for r in rows:
            w.writerow([r["task"], r["method"], _f(r["accuracy"], 2), _f(r["published"], 2), _f(r["gap"], 2)])
    methods = result.methods()
    tasks = result.tasks() + ["mean"]
    head = "| task | " + " | ".join(methods) + " |"
    lines = [f"# {result.name}", "", "Target accuracy (%): ours / published (gap). Hyper-parameters are "
             "fixed in advance; target labels are used only to measure accuracy.", "", head,
             "|" + "---|" * (len(methods) + 1)]
    by = {(r["task"], r["method"]): r for r in rows}
    for t in tasks:
        cells = []
        for m in methods:
            r = by.get((t, m))
            if r is None or r["accuracy"] is None:
                cells.append("failed" if r and r["status"] == "failed" else "")
            elif r["published"] is None:
                cells.append(_f(r["accuracy"]))
            else:
                cells.append(f"{_f(r['accuracy'])} / {_f(r['published'])} ({r['gap']:+.1f})")
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    notes = sorted({info.get("notes", "") for info in result.task_info.values() if info.get("notes")})
    if notes:
        lines += ["", "Protocol: " + " ".join(notes)]
    caches = [(t, info["feature_cache"]) for t, info in result.task_info.items() if info.get("feature_cache")]
    if caches:
        lines += ["", "Frozen-encoder features:"] + [f"- {t}: {c}" for t, c in caches]
    failed = [r for r in result.runs if r.status != "ok"]
    if failed:
        lines += ["", "Failed runs:"] + [f"- {r.task} {r.method}: {r.error}" for r in failed]
    text = "\n".join(lines) + "\n"
    (out / "bench.md").write_text(text)
    return text


def run_bench(name: str, methods: list[str] | None, out: str | Path, *, overrides: list[str] | None = None,
              progress: bool = True) -> str:
    """Run benchmark ``name`` and write report + ``bench.csv``/``bench.md`` to ``out``; return the
    Markdown table."""
    from transferkit.experiment.runner import run_experiment

    cfg = validate_config(bench_config(name, methods, overrides))
    result = run_experiment(cfg, out, progress=progress)
    return write_bench_tables(result, Path(out))
