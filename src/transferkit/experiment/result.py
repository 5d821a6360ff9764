"""The result object of an experiment: everything the reports show, JSON-serialisable."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunResult:
    """One method on one task.

    ``metrics``: ``target_accuracy`` (percent, on the labelled held-out target split; evaluation
    only, never used to choose), ``source_accuracy`` (percent, on held-out source data when the run
    has it) and anything else a method reports. ``history``: one dict per logged step, with
    ``step`` and named loss terms (deep methods) and optionally ``target_accuracy``.
    ``published``: the published accuracy for this benchmark/task/method, or None.
    ``selection``: what label-free selection measured on this run (with a ``selection:`` config
    section): ``scores`` (validator -> score, higher = better), ``predicted_proportions`` of the
    target predictions (for the collapse guard), ``n_val``/``n_target`` samples; never target labels.
    ``embedding``: 2-D coordinates of the run's features on source and target samples (see
    :func:`transferkit.assess.embedding.embed_2d`), for the report's plots.
    """

    task: str
    method: str
    kind: str  # "deep" | "shallow"
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds: fit, evaluate, total
    published: float | None = None
    published_source: str | None = None
    status: str = "ok"  # "ok" | "failed"
    error: str | None = None
    per_class_accuracy: list[float] | None = None
    confusion: list[list[int]] | None = None
    selection: dict[str, Any] | None = None
    embedding: dict[str, Any] | None = None

    @property
    def gap(self) -> float | None:
        acc = self.metrics.get("target_accuracy")
        return None if acc is None or self.published is None else acc - self.published


@dataclass
class ExperimentResult:
    """All runs of one experiment with the resolved config, versions, seed and timings.

    ``selection``: per task, the outcome of label-free selection (picked run, reason, one row per
    candidate with its validator scores and guard verdict; see
    :class:`transferkit.selection.Selection`). ``embeddings``: per task, 2-D coordinates of the
    input features (before adaptation) for the report's plots.
    """

    name: str
    config: dict[str, Any]
    seed: int
    versions: dict[str, str]
    runs: list[RunResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    created: str = ""
    benchmark: str | None = None
    notes: list[str] = field(default_factory=list)
    task_info: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> summary
    selection: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> Selection dict
    embeddings: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> input map

    # -- queries ------------------------------------------------------------------------------
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(r.task for r in self.runs))

    def methods(self) -> list[str]:
        return list(dict.fromkeys(r.method for r in self.runs))

    def get(self, task: str, method: str) -> RunResult | None:
        return next((r for r in self.runs if r.task == task and r.method == method), None)

    def mean(self, method: str, key: str = "target_accuracy") -> float | None:
        vals = [r.metrics[key] for r in self.runs if r.method == method and key in r.metrics]
        return sum(vals) / len(vals) if vals else None

    def mean_published(self, method: str) -> float | None:
        rows = [r for r in self.runs if r.method == method]
        vals = [r.published for r in rows if r.published is not None]
        return sum(vals) / len(vals) if rows and len(vals) == len(rows) else None

    # -- (de)serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ExperimentResult":
        d = dict(d)
        d["runs"] = [RunResult(**r) for r in d.get("runs", [])]
        return cls(**d)

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=_json_default))
        tmp.replace(path)
        return path

    @classmethod
    def load_json(cls, path: str | Path) -> "ExperimentResult":
        from transferkit.core.errors import DataError

        path = Path(path)
        if not path.is_file():
            raise DataError(f"no report at {path}; run an experiment with --out {path.parent} first")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise DataError(f"{path} is not a transferkit report.json ({exc})") from exc


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")
