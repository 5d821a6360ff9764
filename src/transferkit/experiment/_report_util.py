"""Helpers shared by the report text and HTML (:mod:`transferkit.experiment.report`) and its plots
(:mod:`transferkit.experiment.figures`): the results-table cells, the order of runs, and number
formatting. Private to the two modules; kept apart so that neither has to import the other.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transferkit.experiment.result import ExperimentResult, RunResult

MISSING = "-"


# ================================================================================================
# Scores: one cell of the results table
# ================================================================================================
@dataclass(frozen=True)
class _Score:
    """One results cell: our accuracy, the published one and their gap; or a failed/missing run."""

    status: str  # "ok" | "failed" | "missing"
    ours: float | None = None
    published: float | None = None
    gap: float | None = None
    note: str = ""

    def text(self) -> str:
        if self.status != "ok":
            return "failed" if self.status == "failed" else MISSING
        s = _fmt_num(self.ours)
        if self.published is not None:
            s += f" (pub {_fmt_num(self.published)}"
            s += f", {_fmt_gap(self.gap)})" if self.gap is not None else ")"
        return f"{s} {self.note}" if self.note else s

    def html(self) -> str:
        if self.status != "ok":
            cls = "failed" if self.status == "failed" else "missing"
            return f'<span class="{cls}">{_esc(self.text())}</span>'
        parts = [f'<span class="ours">{_esc(_fmt_num(self.ours))}</span>']
        if self.published is not None:
            parts.append(f'<span class="pub">pub {_esc(_fmt_num(self.published))}</span>')
            if self.gap is not None:
                cls = "pos" if self.gap > 0 else "neg" if self.gap < 0 else "zero"
                parts.append(f'<span class="gap {cls}">{_esc(_fmt_gap(self.gap))}</span>')
        if self.note:
            parts.append(f'<span class="note">{_esc(self.note)}</span>')
        return " ".join(parts)


def _run_score(run: RunResult | None) -> _Score:
    if run is None:
        return _Score("missing")
    if run.status == "failed":
        return _Score("failed")
    return _Score("ok", _as_float(run.metrics.get("target_accuracy")), _as_float(run.published),
                  _gap(run))


def _method_score(result: ExperimentResult, method: str) -> _Score:
    """Mean over the method's successful runs; published/gap only when known for every run.

    The runs are those the table shows (:meth:`ExperimentResult.get`, the first run of each task),
    so the mean row always summarises the cells above it.
    """
    runs = [r for r in (result.get(t, method) for t in result.tasks()) if r is not None]
    accs = [_as_float(r.metrics.get("target_accuracy")) for r in runs if r.status != "failed"]
    accs_known = [a for a in accs if a is not None]
    n_tasks = len(result.tasks())
    if not accs_known:
        if not runs:
            return _Score("missing")
        if all(r.status == "failed" for r in runs):
            return _Score("failed")
        return _Score("ok", None, note=f"[0/{n_tasks}]")
    mean = _mean(accs_known)
    note = f"[{len(accs_known)}/{n_tasks}]" if len(accs_known) < n_tasks else ""
    pubs = [_as_float(r.published) for r in runs]
    if note or len(accs) != len(runs) or any(p is None for p in pubs):
        return _Score("ok", mean, note=note)
    pub_mean = _mean([p for p in pubs if p is not None])
    return _Score("ok", mean, pub_mean, mean - pub_mean)


# ================================================================================================
# Run order
# ================================================================================================
def _ordered_runs(result: ExperimentResult) -> list[RunResult]:
    """Runs ordered by task then method (first-appearance order); stable for duplicates."""
    t_idx = {t: i for i, t in enumerate(result.tasks())}
    m_idx = {m: i for i, m in enumerate(result.methods())}
    return sorted(result.runs, key=lambda r: (t_idx[r.task], m_idx[r.method]))


# ================================================================================================
# Formatting helpers
# ================================================================================================
def _as_float(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _mean(vals: Sequence[float]) -> float:
    return sum(vals) / len(vals)


def _gap(run: RunResult) -> float | None:
    acc, pub = _as_float(run.metrics.get("target_accuracy")), _as_float(run.published)
    return None if acc is None or pub is None else acc - pub


def _fmt_num(x: Any, digits: int = 1) -> str:
    """Accuracy-style number: one decimal; ``-`` for None, ``nan``/``inf`` spelled out."""
    if x is None:
        return MISSING
    f = _as_float(x)
    if f is None:
        return str(x)
    if math.isnan(f):
        return "nan"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    return f"{f:.{digits}f}"


def _fmt_gap(g: float | None) -> str:
    if g is None:
        return MISSING
    return f"{g:+.1f}" if math.isfinite(g) else _fmt_num(g)


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)
