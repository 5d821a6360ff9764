"""Figures of the reports: matplotlib plots embedded in ``report.html`` as base64 PNG data URIs.

The target-accuracy bar chart (:func:`_accuracy_bar_chart`), the learning curves of one task
(:func:`_learning_curve_figure`), a run's confusion-matrix heat map (:func:`_confusion_figure`) and
the 2-D feature maps of source vs target before and after adaptation (:func:`_embedding_figure`,
also used by the assessment report), plus :func:`_png_base64`, which renders a figure with the Agg
renderer. matplotlib is imported inside the functions that draw, never when this module is
imported; PNG metadata carries no version or date, so the same result gives the same bytes.
"""

from __future__ import annotations

import base64
import io
import math
from typing import TYPE_CHECKING, Any

from transferkit.experiment._report_util import (
    _as_float,
    _method_score,
    _ordered_runs,
    _run_score,
)
from transferkit.experiment.result import ExperimentResult, RunResult

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_PNG_DPI = 90
_ANNOTATE_CONFUSION_UP_TO = 15  # classes; larger matrices get colours only
_NON_SERIES_KEYS = frozenset({"step", "epoch", "lr", "learning_rate"})


# ================================================================================================
# Plots (matplotlib, Agg, imported lazily; Figure objects are used directly, never pyplot)
# ================================================================================================
def _new_figure(width: float, height: float, *, constrained: bool = False) -> Figure:
    """A pyplot-free figure (no global state). Constrained layout is exact but about twice as
    slow to draw, so only the single bar chart uses it; the per-task and per-run figures, of
    which there can be many, use fixed margins given in inches."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained" if constrained else None)


def _fixed_grid(nrows: int, ncols: int, panel_w: float, panel_h: float, *, left: float = 0.65,
                right: float = 0.2, top: float = 0.55, bottom: float = 0.5, wspace: float = 0.7,
                hspace: float = 0.75) -> tuple[Figure, list[Axes]]:
    """Figure with an ``nrows x ncols`` grid of ``panel_w x panel_h`` inch axes; margins in
    inches, so panels keep their size whatever the grid."""
    width = left + right + ncols * panel_w + (ncols - 1) * wspace
    height = top + bottom + nrows * panel_h + (nrows - 1) * hspace
    fig = _new_figure(width, height)
    axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw={
        "left": left / width, "right": 1 - right / width, "bottom": bottom / height,
        "top": 1 - top / height, "wspace": wspace / panel_w, "hspace": hspace / panel_h})
    return fig, list(axes.ravel())


def _png_base64(fig: Figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_PNG_DPI, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _label(text: Any) -> str:
    """Text safe for matplotlib: no mathtext (``$``) and no legend-hiding leading underscore."""
    s = str(text).replace("$", r"\$")
    return " " + s if s.startswith("_") else s


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _method_colors(result: ExperimentResult) -> dict[str, Any]:
    """One colour per method, the same in every plot of the report."""
    methods = result.methods()
    return dict(zip(methods, _colors(len(methods))))


def _finite_or_nan(v: Any) -> float:
    f = _as_float(v)
    return f if f is not None and math.isfinite(f) else math.nan


def _accuracy_bar_chart(result: ExperimentResult) -> Figure | None:
    """Grouped bars: target accuracy per task (and the mean) for each method; published marks."""
    tasks, methods = result.tasks(), result.methods()
    groups = tasks + (["mean"] if len(tasks) > 1 else [])
    scores = {m: [_run_score(result.get(t, m)) for t in tasks]
              + ([_method_score(result, m)] if len(tasks) > 1 else []) for m in methods}
    if all(math.isnan(_finite_or_nan(s.ours)) for v in scores.values() for s in v):
        return None  # no finite accuracy anywhere
    width = 0.8 / len(methods)
    fig = _new_figure(min(max(6.0, 0.22 * len(groups) * len(methods) + 3.0), 18.0), 3.8,
                      constrained=True)
    ax = fig.subplots()
    top = 100.0
    pub_labelled = False
    colors = _method_colors(result)
    for i, m in enumerate(methods):
        color = colors[m]
        xs = [g + (i - (len(methods) - 1) / 2) * width for g in range(len(groups))]
        ys = [_finite_or_nan(s.ours) for s in scores[m]]
        ax.bar(xs, ys, width * 0.92, color=color, label=_label(m))
        for x, s, y in zip(xs, scores[m], ys):
            if s.status == "failed":
                ax.text(x, 1.0, "failed", rotation=90, fontsize=7, color="#c62828",
                        ha="center", va="bottom")
            pub = _finite_or_nan(s.published)
            if not math.isnan(pub):
                ax.hlines(pub, x - width / 2, x + width / 2, colors="black", linewidth=2,
                          label=None if pub_labelled else "published", zorder=3)
                pub_labelled = True
                top = max(top, pub)
            if not math.isnan(y):
                top = max(top, y)
    ax.set_xticks(range(len(groups)))
    long_names = max(len(g) for g in groups) > 8 or len(groups) > 8
    ax.set_xticklabels([_label(g) for g in groups], rotation=30 if long_names else 0,
                       ha="right" if long_names else "center", fontsize=8)
    ax.set_ylim(0, top * 1.02)
    ax.set_ylabel("target accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def _history_series(history: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of ``key`` over the history entries that have it; non-finite -> NaN."""
    xs, ys = [], []
    for i, h in enumerate(history):
        if isinstance(h, dict) and key in h:
            step = _as_float(h.get("step"))
            xs.append(float(i) if step is None else step)
            ys.append(_finite_or_nan(h[key]))
    return xs, ys


def _loss_keys(history: list[dict[str, Any]]) -> list[str]:
    keys = dict.fromkeys(k for h in history if isinstance(h, dict) for k in h)
    return [k for k in keys if k not in _NON_SERIES_KEYS and "accuracy" not in k]


def _learning_curve_figure(task: str, runs: list[RunResult],
                           colors: dict[str, Any] | None = None) -> Figure | None:
    """Learning curves of one task: a panel of loss terms against step for each run whose history
    has any, plus one panel of ``target_accuracy`` against step with a line per method.
    Non-numeric or non-finite values leave gaps; ``None`` when there is nothing to draw."""
    loss_panels: list[tuple[RunResult, dict[str, tuple[list[float], list[float]]]]] = []
    for run in runs:
        series = {k: _history_series(run.history, k) for k in _loss_keys(run.history)}
        series = {k: v for k, v in series.items() if any(not math.isnan(y) for y in v[1])}
        if series:
            loss_panels.append((run, series))
    acc_series = {r.method: _history_series(r.history, "target_accuracy") for r in runs}
    acc_series = {m: v for m, v in acc_series.items() if any(not math.isnan(y) for y in v[1])}
    n_panels = len(loss_panels) + (1 if acc_series else 0)
    if n_panels == 0:
        return None
    ncols = min(n_panels, 3)
    fig, axes = _fixed_grid(math.ceil(n_panels / ncols), ncols, 3.6, 2.3)
    for ax, (run, series) in zip(axes, loss_panels):
        for k, (xs, ys) in series.items():
            ax.plot(xs, ys, lw=1.2, marker="o" if len(xs) < 15 else None, ms=3, label=_label(k))
        ax.set_title(_label(f"{run.method}: loss terms"), fontsize=9)
        _style_curve_axis(ax, "loss")
        ax.legend(fontsize=7, frameon=False)
    if acc_series:
        if colors is None:
            colors = dict(zip(acc_series, _colors(len(acc_series))))
        ax = axes[len(loss_panels)]
        for method, (xs, ys) in acc_series.items():
            ax.plot(xs, ys, lw=1.4, color=colors.get(method), ms=3,
                    marker="o" if len(xs) < 15 else None, label=_label(method))
        ax.set_title("target accuracy (%)", fontsize=9)
        _style_curve_axis(ax, "accuracy (%)")
        ax.legend(fontsize=7, frameon=False)
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    fig.suptitle(_label(task), fontsize=10)
    return fig


def _style_curve_axis(ax: Axes, ylabel: str) -> None:
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _confusion_figure(run: RunResult) -> Figure | None:
    """Heat map of the confusion matrix, coloured by row fraction, counts written when small."""
    import numpy as np

    cm = np.nan_to_num(np.asarray(run.confusion, dtype=float))
    if cm.ndim != 2 or cm.size == 0:
        return None
    n_true, n_pred = cm.shape
    support = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, support, out=np.zeros_like(cm), where=support > 0)
    side = min(max(3.2, 0.32 * max(n_true, n_pred) + 1.6), 9.0)
    left, bottom, top, bar = 0.7, 0.6, 0.4, 0.9  # inches
    fig = _new_figure(side + bar, side)
    ax = fig.add_axes((left / (side + bar), bottom / side, (side - left - 0.15) / (side + bar),
                       (side - bottom - top) / side))
    cax = fig.add_axes(((side + 0.05) / (side + bar), bottom / side, 0.15 / (side + bar),
                        (side - bottom - top) / side))
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    fig.colorbar(im, cax=cax).ax.tick_params(labelsize=7)
    if max(n_true, n_pred) <= _ANNOTATE_CONFUSION_UP_TO:
        for i in range(n_true):
            for j in range(n_pred):
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "#1d232b")
    if max(n_true, n_pred) <= 31:
        ax.set_xticks(range(n_pred))
        ax.set_yticks(range(n_true))
    ax.tick_params(labelsize=7)
    ax.set_xlabel("predicted class", fontsize=8)
    ax.set_ylabel("true class", fontsize=8)
    ax.set_title(_label(f"{run.task} / {run.method}"), fontsize=9)
    return fig


# ================================================================================================
# Feature maps (source vs target in 2-D, before and after adaptation)
# ================================================================================================
def _embedding_panels(result: ExperimentResult, task: str) -> list[tuple[str, dict[str, Any]]]:
    panels: list[tuple[str, dict[str, Any]]] = []
    inp = result.embeddings.get(task)
    if isinstance(inp, dict) and inp.get("source") is not None:
        panels.append(("input (before adaptation)", inp))
    shared = []
    for r in _ordered_runs(result):
        emb = r.embedding
        if r.task != task or not isinstance(emb, dict):
            continue
        if emb.get("same_as_input"):
            shared.append(r.method)
        elif emb.get("source") is not None:
            panels.append((r.method, emb))
    return panels


def _embedding_figure(result: ExperimentResult, task: str) -> Figure | None:
    """One scatter panel per map: the input, then each run's features; source blue, target orange."""
    import numpy as np

    panels = _embedding_panels(result, task)
    if not panels:
        return None
    ncols = min(len(panels), 4)
    fig, axes = _fixed_grid(math.ceil(len(panels) / ncols), ncols, 2.6, 2.3, left=0.3, wspace=0.35,
                            bottom=0.3)
    for ax, (title, emb) in zip(axes, panels):
        for key, color, label in (("source", "#1f77b4", "source"), ("target", "#ff7f0e", "target")):
            pts = np.asarray(emb.get(key) or [], dtype=float).reshape(-1, 2)
            if len(pts):
                ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.5, color=color, label=label,
                           linewidths=0)
        method = str(emb.get("method", "")).upper().replace("TSNE", "t-SNE")
        ax.set_title(_label(f"{title} [{method}]" if method else title), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].legend(fontsize=7, markerscale=3, frameon=False, loc="best")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return fig
