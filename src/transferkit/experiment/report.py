"""Reports of an experiment: ``report.json``, ``report.md`` and ``report.html`` from one result.

Everything here is made from a single :class:`~transferkit.experiment.result.ExperimentResult`.
:func:`write_report` saves the result as ``report.json`` and renders the two human-readable files
from that JSON (so :func:`render_report` on the same directory later gives byte-identical files).

* ``report.md``: metadata, data summary, the results table (ours / published / gap per task and the
  mean per method), all runs with their metrics, failures, timings, per-class accuracy, run
  parameters, the resolved config as YAML, and notes.
* ``report.html``: the same content, self-contained (inline CSS, no scripts, no external fonts or
  links), plus plots drawn by :mod:`transferkit.experiment.figures` with matplotlib's Agg renderer
  and embedded as base64 PNG data URIs: a bar chart of target accuracy per task and method with
  published markers, learning curves per task (loss terms and ``target_accuracy`` against ``step``
  for every run with a ``history``), a confusion-matrix heat map for every run that has
  ``confusion``, and 2-D maps (PCA or t-SNE) of the source and target features coloured by domain,
  before adaptation (the input) and after it (each run's features).
* With label-free selection (a ``selection:`` config section) both files have a "Selection"
  section: per task, each candidate's validator scores, the collapse guard's verdict, the pick and
  why, and -- only when labelled target data exist -- an oracle column (target accuracy) that is
  shown for reference and never used for the pick.

:func:`results_table`, :func:`long_table` and :func:`format_table` give the same results as plain
text for the terminal. Accuracies are percentages; "gap" is always ours minus published.

Output is deterministic: the same result gives the same bytes (PNG metadata carries no version or
date). matplotlib and PyYAML are imported inside the functions that need them (matplotlib only in
:mod:`~transferkit.experiment.figures`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from transferkit.experiment._report_util import (
    MISSING,
    _as_float,
    _esc,
    _fmt_gap,
    _fmt_num,
    _gap,
    _mean,
    _method_score,
    _ordered_runs,
    _run_score,
)
from transferkit.experiment.figures import (
    _accuracy_bar_chart,
    _confusion_figure,
    _embedding_figure,
    _learning_curve_figure,
    _method_colors,
    _png_base64,
)
from transferkit.experiment.result import ExperimentResult, RunResult

__all__ = [
    "REPORT_HTML",
    "REPORT_JSON",
    "REPORT_MD",
    "format_table",
    "long_table",
    "render_assessment_html",
    "render_assessment_markdown",
    "render_html",
    "render_markdown",
    "render_report",
    "results_table",
    "write_assessment_report",
    "write_report",
]

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"

_MAX_CLASSES_LISTED = 40  # per-class accuracy values shown before "... +N more"
_TIMING_ORDER = ("fit", "fit_cpu", "evaluate", "total")
_MAIN_METRICS = ("target_accuracy", "source_accuracy")


# ================================================================================================
# Public API
# ================================================================================================
def write_report(result: ExperimentResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` for ``result`` into ``out_dir``.

    The JSON is written with :meth:`ExperimentResult.save_json`; the Markdown and HTML are then
    rendered from that JSON (as :func:`render_report` does), so both ways give identical files.
    ``out_dir`` is created when missing. Returns ``{"json": ..., "md": ..., "html": ...}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result.save_json(out / REPORT_JSON)
    return render_report(out)


def render_report(out_dir: str | Path) -> dict[str, Path]:
    """Re-render ``report.md`` and ``report.html`` from the ``report.json`` in ``out_dir``.

    ``out_dir`` may also be the path of the ``report.json`` itself; the files are written beside
    it. Raises :class:`~transferkit.core.errors.DataError` (naming the path) when the JSON is
    missing or is not a transferkit report. Returns ``{"json": ..., "md": ..., "html": ...}``.
    """
    path = Path(out_dir)
    json_path = path if path.suffix == ".json" and not path.is_dir() else path / REPORT_JSON
    result = ExperimentResult.load_json(json_path)
    out = json_path.parent
    md_path = _write_text(out / REPORT_MD, render_markdown(result))
    html_path = _write_text(out / REPORT_HTML, render_html(result))
    return {"json": json_path, "md": md_path, "html": html_path}


def results_table(result: ExperimentResult) -> list[list[str]]:
    """The results as rows of strings: a header row, one row per task, then a ``mean`` row.

    Columns are ``task`` then one per method (tasks × methods, so long task lists stay readable).
    A cell is our target accuracy, with the published figure and the gap beside it where known:
    ``"71.2 (pub 70.1, +1.1)"``; ``"failed"`` for a failed run, ``"-"`` for a missing one. The mean
    row averages the successful runs; it shows published/gap only when every run of the method has
    both figures, and ``[n/N]`` when only n of the N tasks contributed.
    """
    methods = result.methods()
    rows = [["task", *methods]]
    for task in result.tasks():
        rows.append([task, *(_run_score(result.get(task, m)).text() for m in methods)])
    if result.runs:
        rows.append(["mean", *(_method_score(result, m).text() for m in methods)])
    return rows


def long_table(result: ExperimentResult) -> list[list[str]]:
    """One row per run (task × method) with a header row: the long form of :func:`results_table`.

    Columns: task, method, kind, status, target acc, published, gap, source acc, time (s).
    """
    rows = [["task", "method", "kind", "status", "target acc", "published", "gap", "source acc",
             "time (s)"]]
    for run in _ordered_runs(result):
        rows.append([
            run.task, run.method, run.kind, run.status,
            _fmt_num(run.metrics.get("target_accuracy")),
            _fmt_num(run.published),
            _fmt_gap(_gap(run)),
            _fmt_num(run.metrics.get("source_accuracy")),
            _fmt_seconds(_total_time(run)),
        ])
    return rows


def format_table(result: ExperimentResult, *, layout: str = "auto", max_width: int = 160) -> str:
    """The results as a plain-text table for the terminal.

    ``layout="wide"`` prints :func:`results_table` (rows = tasks plus a mean row, columns =
    methods); ``"long"`` prints :func:`long_table` (one line per run) followed by the per-method
    means; ``"auto"`` uses the wide form when it fits in ``max_width`` characters, else the long
    one.
    """
    if layout not in ("auto", "wide", "long"):
        raise ValueError(f"format_table: layout must be 'auto', 'wide' or 'long', not {layout!r}")
    if not result.runs:
        return "(no runs)"
    wide = _text_table(results_table(result), rule_before_last=True)
    if layout == "wide" or (layout == "auto" and _width(wide) <= max_width):
        return wide
    means = [["method", "mean target acc"]]
    means += [[m, _method_score(result, m).text()] for m in result.methods()]
    return _text_table(long_table(result)) + "\n\n" + _text_table(means)


def render_markdown(result: ExperimentResult) -> str:
    """The Markdown report of ``result`` (the content of ``report.md``)."""
    out: list[str] = [f"# transferkit report: {_md(result.name)}", ""]
    out += [f"- **{_md(k)}:** {_md(v)}" for k, v in _meta_items(result)]
    out.append("")

    out += ["## Data", ""]
    data_rows = _task_info_table(result)
    out += [_md_table(data_rows) if data_rows else "No data summary recorded.", ""]

    out += ["## Results", ""]
    if result.runs:
        out += [_RESULTS_CAPTION, "", _md_table(results_table(result)), ""]
        out += ["### All runs", "", _md_table(_all_runs_table(result)), ""]
        sources = _published_sources(result)
        if sources:
            out += ["Published figures from:", ""]
            out += [f"- {_md(src)} ({_md(', '.join(ms))})" for src, ms in sources]
            out.append("")
    else:
        out += ["No runs.", ""]

    if result.selection:
        out += ["## Selection", ""]
        for line in _selection_intro(result):
            out += [_md(line), ""]
        for task, sel in _selection_items(result):
            out += [f"### {_md(task)}", "", f"**Picked: {_md(sel.get('picked') or 'nothing')}.** "
                    f"{_md(sel.get('reason', ''))}", ""]
            rows = _selection_table(result, task, sel)
            if rows:
                out += [_md_table(rows), ""]
            out += [_md(x) for x in _oracle_note(result, task, sel)] + [""]
        summary = _selection_summary(result)
        if summary:
            out += [_md(summary), ""]

    out += ["## Failures", ""]
    failed = _failed_runs(result)
    if failed:
        for run in failed:
            out += [f"- **{_md(run.task)} / {_md(run.method)}**", ""]
            out += [_indent(_fence(run.error or "(no error message recorded)", "text"), "  "), ""]
    else:
        out += ["None.", ""]

    out += ["## Timings", ""]
    timing_rows = _timings_table(result)
    out += [_md_table(timing_rows) if timing_rows else "No run timings recorded.", ""]
    if result.timings:
        out += ["Experiment: " + ", ".join(f"{_md(k)} {_fmt_seconds(v)} s"
                                           for k, v in result.timings.items()), ""]

    out += ["## Per-class accuracy", ""]
    pc_rows = _per_class_table(result)
    out += [_md_table(pc_rows) if pc_rows else "No per-class accuracy recorded.", ""]

    params = _params_table(result)
    if params:
        out += ["## Run parameters", "", _md_table(params), ""]

    out += ["## Config", "", _fence(_config_yaml(result.config), "yaml"), ""]

    out += ["## Notes", ""]
    out += [f"- {_md(n)}" for n in result.notes] if result.notes else ["None."]
    out.append("")
    return "\n".join(out)


def render_html(result: ExperimentResult) -> str:
    """The self-contained HTML report of ``result`` (the content of ``report.html``).

    No external resources: CSS is inline, there is no JavaScript, and plots are base64 PNG data
    URIs. All text from the result is escaped with :func:`html.escape`.
    """
    e = _esc
    body: list[str] = [f"<h1>transferkit report: {e(result.name)}</h1>", '<dl class="meta">']
    body += [f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in _meta_items(result)]
    body.append("</dl>")
    sections = [("data", "Data"), ("results", "Results")]
    if result.selection:
        sections.append(("selection", "Selection"))
    if _has_embeddings(result):
        sections.append(("features", "Feature maps"))
    sections += [("curves", "Learning curves"),
                ("failures", "Failures"), ("timings", "Timings"),
                ("per-class", "Per-class accuracy and confusion"), ("params", "Run parameters"),
                ("config", "Config"), ("notes", "Notes")]
    body.append('<nav class="toc">' + " · ".join(f'<a href="#{sid}">{e(title)}</a>'
                                                  for sid, title in sections) + "</nav>")

    # -- data
    body.append(_h2("data", "Data"))
    data_rows = _task_info_table(result)
    body.append(_html_table(data_rows) if data_rows else "<p>No data summary recorded.</p>")

    # -- results
    body.append(_h2("results", "Results"))
    if result.runs:
        body.append(f'<p class="caption">{e(_RESULTS_CAPTION)}</p>')
        body.append(_html_results_table(result))
        body.append(_html_figure(_accuracy_bar_chart, result,
                                 alt="Target accuracy per task and method",
                                 caption="Target accuracy (%) per task and method; black bars mark "
                                         "published figures."))
        body.append("<h3>All runs</h3>")
        body.append(_html_table(_all_runs_table(result)))
        sources = _published_sources(result)
        if sources:
            body.append("<p>Published figures from:</p><ul>")
            body += [f"<li>{e(src)} ({e(', '.join(ms))})</li>" for src, ms in sources]
            body.append("</ul>")
    else:
        body.append("<p>No runs.</p>")

    # -- selection
    if result.selection:
        body.append(_h2("selection", "Selection"))
        body += [f"<p>{e(line)}</p>" for line in _selection_intro(result)]
        for task, sel in _selection_items(result):
            body.append(f"<h3>{e(task)}</h3>")
            body.append(f'<p><b>Picked: {e(sel.get("picked") or "nothing")}.</b> '
                        f'{e(sel.get("reason", ""))}</p>')
            rows = _selection_table(result, task, sel)
            if rows:
                body.append(_html_table(rows))
            body += [f'<p class="caption">{e(x)}</p>' for x in _oracle_note(result, task, sel)]
        summary = _selection_summary(result)
        if summary:
            body.append(f"<p>{e(summary)}</p>")

    # -- feature maps before and after adaptation
    if _has_embeddings(result):
        body.append(_h2("features", "Feature maps"))
        body.append('<p class="caption">Source (blue) and target (orange) samples in 2-D (PCA or '
                    't-SNE, fitted on both domains), before adaptation (the input features) and '
                    "after it (the features each run classifies: a deep model's features, a shallow "
                    "method's transformed features; methods without a transform classify the input "
                    "and share its map). Separate clouds: the representation still tells the "
                    "domains apart.</p>")
        for task in _embedding_tasks(result):
            shared = _shared_input_map(result, task)
            fig_html = _html_figure(_embedding_figure, result, task,
                                    alt=f"Feature maps on {task}",
                                    caption=f"{task}: source vs target features before and after "
                                            "adaptation." + (f" The input map is also that of "
                                                             f"{', '.join(shared)}." if shared else ""))
            if fig_html:
                body += [f"<h3>{e(task)}</h3>", fig_html]

    # -- learning curves
    body.append(_h2("curves", "Learning curves"))
    curves = [(t, [r for r in _ordered_runs(result) if r.task == t and r.history])
              for t in result.tasks()]
    curves = [(t, runs) for t, runs in curves if runs]
    colors = _method_colors(result) if curves else {}
    n_figures = 0
    for task, runs in curves:
        fig_html = _html_figure(_learning_curve_figure, task, runs, colors,
                                alt=f"Learning curves on {task}",
                                caption="Loss terms per run and target accuracy against "
                                        "training step.")
        if fig_html:
            body += [f"<h3>{e(task)}</h3>", fig_html]
            n_figures += 1
    if not n_figures:
        body.append("<p>No run recorded a training history.</p>")

    # -- failures
    body.append(_h2("failures", "Failures"))
    failed = _failed_runs(result)
    if failed:
        for run in failed:
            body.append(f'<div class="failure"><p><b>{e(run.task)} / {e(run.method)}</b></p>'
                        f"<pre>{e(run.error or '(no error message recorded)')}</pre></div>")
    else:
        body.append("<p>None.</p>")

    # -- timings
    body.append(_h2("timings", "Timings"))
    timing_rows = _timings_table(result)
    body.append(_html_table(timing_rows) if timing_rows else "<p>No run timings recorded.</p>")
    if result.timings:
        body.append("<p>Experiment: " + e(", ".join(f"{k} {_fmt_seconds(v)} s"
                                                    for k, v in result.timings.items())) + "</p>")

    # -- per-class accuracy and confusion matrices
    body.append(_h2("per-class", "Per-class accuracy and confusion"))
    pc_rows = _per_class_table(result)
    body.append(_html_table(pc_rows) if pc_rows else "<p>No per-class accuracy recorded.</p>")
    conf_runs = [r for r in _ordered_runs(result) if r.confusion]
    if conf_runs:
        body.append('<div class="grid">')
        for run in conf_runs:
            body.append(_html_figure(_confusion_figure, run,
                                     alt=f"Confusion matrix of {run.method} on {run.task}",
                                     caption=f"{run.task} / {run.method}: rows true class, columns "
                                             "predicted; colour = fraction of the true class."))
        body.append("</div>")

    # -- parameters, config, notes
    body.append(_h2("params", "Run parameters"))
    params = _params_table(result)
    body.append(_html_table(params) if params else "<p>No run parameters recorded.</p>")
    body.append(_h2("config", "Config"))
    body.append(f"<pre>{e(_config_yaml(result.config))}</pre>")
    body.append(_h2("notes", "Notes"))
    body.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in result.notes) + "</ul>"
                if result.notes else "<p>None.</p>")
    body.append('<footer>Generated by transferkit from report.json.</footer>')

    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>transferkit report: {e(result.name)}</title>\n<style>{_CSS}</style>\n"
            "</head>\n<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n")


# ================================================================================================
# Assessment reports (``transferkit assess``): tests, distances, scores, pilot and advice
# ================================================================================================
def write_assessment_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.json`` (``report`` as given: ``kind: assessment``, ``source``, ``created``,
    ``versions``, ``tasks``: task -> :meth:`transferkit.assess.advisor.Advice.to_dict`),
    ``report.md`` and ``report.html`` into ``out_dir``. Returns the three paths."""
    from transferkit.experiment.result import _json_default

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, default=_json_default)
    json_path = _write_text(out / REPORT_JSON, text)
    report = json.loads(text)
    md_path = _write_text(out / REPORT_MD, render_assessment_markdown(report))
    html_path = _write_text(out / REPORT_HTML, render_assessment_html(report))
    return {"json": json_path, "md": md_path, "html": html_path}


def _assess_tables(a: dict[str, Any]) -> dict[str, list[list[str]]]:
    """The tables of one task's assessment, as rows of strings (header first)."""
    tables: dict[str, list[list[str]]] = {}
    tests = [["test", "statistic", "p-value", "permutations"]]
    for t in a.get("tests") or []:
        p = _as_float(t.get("p_value"))
        tests.append([str(t.get("method")), _fmt_score(t.get("statistic")),
                      MISSING if p is None else (f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"),
                      str(t.get("n_permutations")) if t.get("n_permutations") else "exact"])
    tables["tests"] = tests
    meas = [["measure", "value"]]
    meas += [[k, _fmt_score(v)] for k, v in (a.get("distances") or {}).items()]
    for enc, sc in (a.get("transferability") or {}).items():
        meas += [[f"{k} ({enc})", _fmt_score(v)] for k, v in sc.items()]
    ls = a.get("label_shift") or {}
    if ls.get("tv") is not None:
        meas.append(["label shift: TV(estimated target proportions, source proportions)",
                     _fmt_score(ls["tv"])])
    tables["measures"] = meas
    pilot = a.get("pilot") or []
    if pilot:
        v = a.get("validator") or ""
        vs = [v] + [k for k in (pilot[0].get("scores") or {}) if k != v]
        rows = [["pipeline", *(f"{k} (decides)" if k == v else k for k in vs),
                 "estimated gain", "guard"]]
        for r in pilot:
            g = _as_float(r.get("gain"))
            rows.append([str(r.get("name")), *(_fmt_score((r.get("scores") or {}).get(k)) for k in vs),
                         MISSING if g is None else f"{100 * g:+.1f} pt",
                         "ok" if r.get("guard_ok") else "collapsed: " + "; ".join(r.get("guard_reasons") or [])])
        tables["pilot"] = rows
    return tables


def _assess_meta(report: dict[str, Any]) -> list[tuple[str, str]]:
    versions = ", ".join(f"{k} {v}" for k, v in (report.get("versions") or {}).items())
    return [("Created", str(report.get("created") or MISSING)),
            ("Data", str(report.get("source") or MISSING)),
            ("Seed", str(report.get("seed", MISSING))), ("Versions", versions or MISSING)]


_ASSESS_CAPTION = ("Target labels are never read: the tests compare feature distributions, the "
                   "pilot's validators use held-out source labels and unlabelled target samples.")


def render_assessment_markdown(report: dict[str, Any]) -> str:
    """The Markdown assessment report (``report.md`` of ``transferkit assess``)."""
    out = ["# transferkit assessment", ""]
    out += [f"- **{_md(k)}:** {_md(v)}" for k, v in _assess_meta(report)]
    out += ["", _ASSESS_CAPTION, ""]
    for task, a in (report.get("tasks") or {}).items():
        out += [f"## {_md(task)}", "", f"**Advice: {_md(a.get('recommendation'))}** -- "
                f"{_md(a.get('summary', ''))}", ""]
        out += [f"- {_md(r)}" for r in a.get("reasons") or []] + [""]
        d = a.get("data") or {}
        out += [f"Data: {d.get('n_source')} source and {d.get('n_target')} target samples, "
                f"{d.get('n_features')} features ({_md(d.get('features'))}), {d.get('n_classes')} "
                "classes.", ""]
        t = _assess_tables(a)
        out += ["### Shift tests", "", _md_table(t["tests"]), ""]
        out += ["### Distances and scores", "", _md_table(t["measures"]), ""]
        if "pilot" in t:
            out += ["### Pilot", "", _md_table(t["pilot"]), ""]
        rules = a.get("rules") or {}
        if rules:
            out += ["Rules (fixed thresholds): " + ", ".join(f"{_md(k)} = {v}" for k, v in rules.items()), ""]
    return "\n".join(out)


def render_assessment_html(report: dict[str, Any]) -> str:
    """The self-contained HTML assessment report (with a 2-D map of source vs target features when
    the assessment has one)."""
    e = _esc
    body = ["<h1>transferkit assessment</h1>", '<dl class="meta">']
    body += [f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in _assess_meta(report)]
    body += ["</dl>", f'<p class="caption">{e(_ASSESS_CAPTION)}</p>']
    for task, a in (report.get("tasks") or {}).items():
        body.append(f"<h2>{e(task)}</h2>")
        body.append(f"<p><b>Advice: {e(a.get('recommendation'))}</b> -- {e(a.get('summary', ''))}</p>")
        body.append("<ul>" + "".join(f"<li>{e(r)}</li>" for r in a.get("reasons") or []) + "</ul>")
        t = _assess_tables(a)
        body += ["<h3>Shift tests</h3>", _html_table(t["tests"]),
                 "<h3>Distances and scores</h3>", _html_table(t["measures"])]
        if "pilot" in t:
            body += ["<h3>Pilot</h3>", _html_table(t["pilot"])]
        emb = a.get("embedding")
        if isinstance(emb, dict) and emb.get("source") is not None:
            fake = ExperimentResult(name="", config={}, seed=0, versions={}, embeddings={task: emb})
            body.append(_html_figure(_embedding_figure, fake, task, alt=f"Features of {task}",
                                     caption="Source (blue) and target (orange) features in 2-D."))
        rules = a.get("rules") or {}
        if rules:
            body.append('<p class="caption">Rules (fixed thresholds): '
                        + e(", ".join(f"{k} = {v}" for k, v in rules.items())) + "</p>")
    body.append('<footer>Generated by transferkit assess.</footer>')
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>transferkit assessment</title>\n<style>{_CSS}</style>\n"
            "</head>\n<body>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n")


# ================================================================================================
# Scores: one cell of the results table (_Score, _run_score and _method_score are in
# _report_util, shared with the bar chart in figures.py)
# ================================================================================================
_RESULTS_CAPTION = ("Target accuracy (%) on the labelled held-out target split (evaluation only, "
                    "never used to choose). \"pub\" = published figure, gap = ours - published. "
                    "The mean row averages successful runs; [n/N] = only n of N tasks.")


# ================================================================================================
# Tables shared by Markdown and HTML (lists of string rows, header first)
# ================================================================================================
def _meta_items(result: ExperimentResult) -> list[tuple[str, str]]:
    n_failed = len(_failed_runs(result))
    runs = (f"{len(result.runs)} ({len(result.runs) - n_failed} ok, {n_failed} failed) on "
            f"{len(result.tasks())} task(s) x {len(result.methods())} method(s)")
    items = [("Created", result.created or MISSING), ("Benchmark", result.benchmark or MISSING),
             ("Seed", str(result.seed)), ("Runs", runs)]
    if result.timings:
        items.append(("Total time", ", ".join(f"{k} {_fmt_seconds(v)} s"
                                              for k, v in result.timings.items())))
    versions = ", ".join(f"{k} {v}" for k, v in result.versions.items())
    items.append(("Versions", versions or MISSING))
    return items


def _task_info_table(result: ExperimentResult) -> list[list[str]]:
    """Rows of the data summary: one per task in ``task_info``; columns = union of its keys."""
    if not result.task_info:
        return []
    tasks = [t for t in result.tasks() if t in result.task_info]
    tasks += [t for t in result.task_info if t not in tasks]
    keys: list[str] = []
    for t in tasks:
        info = result.task_info[t]
        items = info.items() if isinstance(info, dict) else [("summary", info)]
        keys += [str(k) for k, _ in items if str(k) not in keys]
    rows = [["task", *keys]]
    for t in tasks:
        info = result.task_info[t]
        info = {str(k): v for k, v in info.items()} if isinstance(info, dict) else {"summary": info}
        rows.append([t, *(_fmt_value(info[k]) if k in info else MISSING for k in keys)])
    return rows


def _all_runs_table(result: ExperimentResult) -> list[list[str]]:
    rows = long_table(result)
    rows[0].append("other metrics")
    for row, run in zip(rows[1:], _ordered_runs(result)):
        other = [f"{k}={_fmt_value(v)}" for k, v in run.metrics.items() if k not in _MAIN_METRICS]
        row.append(", ".join(other) or MISSING)
    return rows


def _timings_table(result: ExperimentResult) -> list[list[str]]:
    runs = [r for r in _ordered_runs(result) if r.timings]
    if not runs:
        return []
    seen = list(dict.fromkeys(k for r in runs for k in r.timings))
    keys = [k for k in _TIMING_ORDER if k in seen] + [k for k in seen if k not in _TIMING_ORDER]
    rows = [["task", "method", "status", *(f"{k} (s)" for k in keys)]]
    rows += [[r.task, r.method, r.status,
              *(_fmt_seconds(r.timings[k]) if k in r.timings else MISSING for k in keys)]
             for r in runs]
    return rows


def _per_class_table(result: ExperimentResult) -> list[list[str]]:
    runs = [r for r in _ordered_runs(result) if r.per_class_accuracy]
    if not runs:
        return []
    rows = [["task", "method", "classes", "mean", "worst (class)", "per class"]]
    for r in runs:
        vals = [_as_float(v) for v in r.per_class_accuracy or []]
        known = [(i, v) for i, v in enumerate(vals) if v is not None and not math.isnan(v)]
        worst = min(known, key=lambda iv: iv[1]) if known else None
        shown = " ".join(_fmt_num(v) for v in vals[:_MAX_CLASSES_LISTED])
        if len(vals) > _MAX_CLASSES_LISTED:
            shown += f" ... +{len(vals) - _MAX_CLASSES_LISTED} more"
        rows.append([r.task, r.method, str(len(vals)),
                     _fmt_num(_mean([v for _, v in known])) if known else MISSING,
                     f"{_fmt_num(worst[1])} ({worst[0]})" if worst else MISSING, shown])
    return rows


def _params_table(result: ExperimentResult) -> list[list[str]]:
    runs = [r for r in _ordered_runs(result) if r.params]
    if not runs:
        return []
    return [["task", "method", "params"]] + [
        [r.task, r.method, ", ".join(f"{k}={_fmt_value(v)}" for k, v in r.params.items())]
        for r in runs]


def _published_sources(result: ExperimentResult) -> list[tuple[str, list[str]]]:
    """Distinct ``published_source`` strings with the methods that use them, in run order."""
    by_source: dict[str, list[str]] = {}
    for r in result.runs:
        if r.published_source:
            methods = by_source.setdefault(r.published_source, [])
            if r.method not in methods:
                methods.append(r.method)
    return list(by_source.items())


def _failed_runs(result: ExperimentResult) -> list[RunResult]:
    return [r for r in _ordered_runs(result) if r.status == "failed"]


def _config_yaml(config: dict[str, Any]) -> str:
    import yaml

    try:
        return yaml.safe_dump(config, sort_keys=False, allow_unicode=True,
                              default_flow_style=False).rstrip("\n") or "{}"
    except yaml.YAMLError:  # values YAML cannot represent: fall back to JSON text
        return json.dumps(config, indent=2, default=str)


# ================================================================================================
# Selection (label-free choice of one run per task) and feature maps
# ================================================================================================
def _selection_items(result: ExperimentResult) -> list[tuple[str, dict[str, Any]]]:
    tasks = [t for t in result.tasks() if t in result.selection]
    tasks += [t for t in result.selection if t not in tasks]
    return [(t, result.selection[t]) for t in tasks if isinstance(result.selection[t], dict)]


def _selection_intro(result: ExperimentResult) -> list[str]:
    sels = [s for _, s in _selection_items(result)]
    if not sels:
        return []
    s0 = sels[0]
    g = s0.get("guard") or {}
    guard = ("collapse guard off" if not g.get("enabled", True) else
             f"collapse guard on (expected class proportions: {g.get('expected', 'source_prior')}; "
             f"min_classes_fraction {g.get('min_classes_fraction')}, max_tv {g.get('max_tv')}, "
             f"min_share_fraction {g.get('min_share_fraction')})")
    params = s0.get("params") or {}
    ptxt = f" with {', '.join(f'{k}={v}' for k, v in params.items())}" if params else ""
    val = s0.get("val_fraction")
    vtxt = f"{100 * float(val):.0f} % of the source held out" if val is not None else "held-out source"
    return [f"Each run was scored without target labels by the validators on {vtxt} and on the "
            f"unlabelled target (higher is better); the pick is the accepted run with the highest "
            f"{s0.get('validator')}{ptxt} score; {guard}.",
            "Target accuracy appears only as an oracle column, for reference, where labelled target "
            "data exist; it is never used to pick."]


def _has_oracle(result: ExperimentResult, task: str) -> bool:
    return any(r.task == task and r.status == "ok" and
               _as_float(r.metrics.get("target_accuracy")) is not None for r in result.runs)


def _selection_table(result: ExperimentResult, task: str, sel: dict[str, Any]) -> list[list[str]]:
    rows_in = [r for r in sel.get("table") or [] if isinstance(r, dict)]
    if not rows_in:
        return []
    v = str(sel.get("validator"))
    fixed = {"name", "guard_ok", "guard_reasons", "effective_classes", "tv", "rank", v}
    others = list(dict.fromkeys(k for r in rows_in for k in r if k not in fixed))
    oracle = _has_oracle(result, task)
    header = ["candidate", f"{v} (picks)", *others, "guard", "rank"]
    if oracle:
        header.append("oracle: target acc")
    rows = [header]
    for r in rows_in:
        name = str(r.get("name"))
        mark = " (picked)" if name == sel.get("picked") else ""
        ok = r.get("guard_ok")
        guard = "-" if ok is None else ("ok" if ok else "rejected: " + "; ".join(r.get("guard_reasons") or []))
        row = [name + mark, _fmt_score(r.get(v)), *(_fmt_score(r.get(k)) for k in others), guard,
               MISSING if r.get("rank") is None else str(r.get("rank"))]
        if oracle:
            run = result.get(task, name)
            row.append(_fmt_num(run.metrics.get("target_accuracy")) if run is not None else MISSING)
        rows.append(row)
    return rows


def _oracle_note(result: ExperimentResult, task: str, sel: dict[str, Any]) -> list[str]:
    if not _has_oracle(result, task) or not sel.get("picked"):
        return []
    accs = {r.method: _as_float(r.metrics.get("target_accuracy")) for r in result.runs
            if r.task == task and r.status == "ok"}
    accs = {k: v for k, v in accs.items() if v is not None}
    names = [str(r.get("name")) for r in sel.get("table") or []]
    accs = {k: v for k, v in accs.items() if k in names} or accs
    if not accs or sel["picked"] not in accs:
        return []
    best = max(accs, key=lambda k: accs[k])
    gap = accs[best] - accs[sel["picked"]]
    return [f"Oracle (for reference only): the best candidate on target accuracy is {best} "
            f"({_fmt_num(accs[best])}); the pick ({_fmt_num(accs[sel['picked']])}) is "
            f"{_fmt_num(gap)} points below it."]


def _selection_summary(result: ExperimentResult) -> str:
    picks, oracles = [], []
    for task, sel in _selection_items(result):
        if not sel.get("picked") or not _has_oracle(result, task):
            continue
        names = {str(r.get("name")) for r in sel.get("table") or []}
        accs = {r.method: _as_float(r.metrics.get("target_accuracy")) for r in result.runs
                if r.task == task and r.status == "ok" and r.method in names}
        accs = {k: v for k, v in accs.items() if v is not None}
        if sel["picked"] in accs:
            picks.append(accs[sel["picked"]])
            oracles.append(max(accs.values()))
    if len(picks) < 2:
        return ""
    return (f"Over {len(picks)} tasks: mean target accuracy of the picks {_fmt_num(_mean(picks))}, "
            f"of the oracle picks {_fmt_num(_mean(oracles))} (gap "
            f"{_fmt_num(_mean(oracles) - _mean(picks))}).")


def _fmt_score(x: Any) -> str:
    f = _as_float(x)
    if f is None:
        return MISSING
    return f"{f:.4g}" if math.isfinite(f) else _fmt_num(f)


def _has_embeddings(result: ExperimentResult) -> bool:
    return bool(result.embeddings) or any(r.embedding for r in result.runs)


def _embedding_tasks(result: ExperimentResult) -> list[str]:
    tasks = [t for t in result.tasks() if t in result.embeddings or
             any(r.task == t and r.embedding for r in result.runs)]
    return tasks + [t for t in result.embeddings if t not in tasks]


def _shared_input_map(result: ExperimentResult, task: str) -> list[str]:
    """Runs whose classifier works on the input itself (their map is the input map)."""
    return [r.method for r in _ordered_runs(result) if r.task == task and isinstance(r.embedding, dict)
            and r.embedding.get("same_as_input")]


# ================================================================================================
# Formatting helpers
# ================================================================================================
def _total_time(run: RunResult) -> float | None:
    if "total" in run.timings:
        return _as_float(run.timings["total"])
    vals = [v for v in (_as_float(x) for x in run.timings.values()) if v is not None]
    return sum(vals) if vals else None


def _fmt_seconds(x: Any) -> str:
    f = _as_float(x)
    if f is None:
        return MISSING if x is None else str(x)
    if not math.isfinite(f):
        return _fmt_num(f)
    return f"{f:.2f}" if abs(f) < 10 else f"{f:.1f}"


def _fmt_value(v: Any) -> str:
    """Compact text for an arbitrary summary value (numbers, strings, lists, dicts)."""
    if v is None:
        return MISSING
    if isinstance(v, bool) or isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else _fmt_num(v)
    if isinstance(v, str):
        return v
    try:
        return json.dumps(v, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):
        return str(v)


def _text_table(rows: list[list[str]], *, rule_before_last: bool = False) -> str:
    """Left-aligned plain-text table with a rule under the header (and above the last row)."""
    n = max(len(r) for r in rows)
    rows = [r + [""] * (n - len(r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(n)]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(rows[0]), rule] + [line(r) for r in rows[1:]]
    if rule_before_last and len(rows) > 2:
        lines.insert(len(lines) - 1, rule)
    return "\n".join(lines)


def _width(text: str) -> int:
    return max((len(x) for x in text.splitlines()), default=0)


# -- Markdown -----------------------------------------------------------------------------------
def _md(text: Any) -> str:
    """Text safe inside Markdown tables and lines: no raw HTML, no pipes, no line breaks."""
    s = str(text).replace("\r\n", "\n").replace("\n", " ")
    return s.replace("<", "&lt;").replace("|", "\\|")


def _md_table(rows: list[list[str]]) -> str:
    header, body = rows[0], rows[1:]
    lines = ["| " + " | ".join(_md(c) for c in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_md(c) for c in r) + " |" for r in body]
    return "\n".join(lines)


def _fence(text: str, lang: str) -> str:
    """A fenced code block whose fence is longer than any backtick run inside ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def _write_text(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


# -- HTML ---------------------------------------------------------------------------------------
def _h2(sid: str, title: str) -> str:
    return f'<h2 id="{sid}">{_esc(title)}</h2>'


def _html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _html_results_table(result: ExperimentResult) -> str:
    methods = result.methods()
    head = "<th>task</th>" + "".join(f"<th>{_esc(m)}</th>" for m in methods)
    rows = []
    for task in result.tasks():
        cells = "".join(f"<td>{_run_score(result.get(task, m)).html()}</td>" for m in methods)
        rows.append(f"<tr><th>{_esc(task)}</th>{cells}</tr>")
    cells = "".join(f"<td>{_method_score(result, m).html()}</td>" for m in methods)
    rows.append(f'<tr class="mean"><th>mean</th>{cells}</tr>')
    return ('<div class="scroll"><table class="results"><thead><tr>' + head
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def _html_figure(make: Any, *args: Any, alt: str, caption: str) -> str:
    """Render ``make(*args) -> Figure | None`` as an embedded PNG figure ('' when no figure).

    A plot that cannot be drawn from unusual data does not abort the report: the figure is
    replaced by a visible message naming the error.
    """
    try:
        fig = make(*args)
    except Exception as exc:  # noqa: BLE001 - one bad plot must not lose the whole report
        return f'<p class="plot-error">Plot "{_esc(alt)}" could not be drawn: {_esc(exc)}</p>'
    if fig is None:
        return ""
    data = _png_base64(fig)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(alt)}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


_CSS = """
:root { color-scheme: light; }
body { margin: 0; background: #f6f7f9; color: #1d232b;
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; background: #fff;
  box-shadow: 0 0 8px rgba(0,0,0,.06); }
h1 { font-size: 1.6em; margin: .2em 0 .6em; }
h2 { font-size: 1.25em; margin-top: 1.8em; padding-bottom: .2em; border-bottom: 1px solid #dde1e6; }
h3 { font-size: 1.05em; margin-top: 1.3em; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
dl.meta dt { font-weight: 600; color: #4a5562; }
dl.meta dd { margin: 0; }
nav.toc { margin: 16px 0; font-size: .92em; }
nav.toc a { color: #2459a8; text-decoration: none; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 10px 0; font-size: .9em; }
th, td { border: 1px solid #dde1e6; padding: 4px 9px; text-align: left; vertical-align: top; }
thead th { background: #eef1f5; }
tbody tr:nth-child(even) { background: #fafbfc; }
table.results td, table.results th { white-space: nowrap; }
tr.mean { font-weight: 600; background: #eef3fb !important; }
.ours { font-weight: 600; }
.pub { color: #59636e; }
.gap.pos { color: #1a7f37; } .gap.neg { color: #c62828; } .gap.zero { color: #59636e; }
.note { color: #8a6d00; }
.failed { color: #c62828; font-weight: 600; } .missing { color: #8c959f; }
.caption, figcaption { color: #59636e; font-size: .88em; }
figure { margin: 14px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eceff2; }
.grid { display: flex; flex-wrap: wrap; gap: 8px 20px; }
.grid figure { max-width: 560px; }
pre { background: #f3f5f7; border: 1px solid #e1e5e9; padding: 10px 12px; overflow-x: auto;
  font: 12.5px/1.45 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
.failure pre { border-left: 3px solid #c62828; }
.plot-error { color: #c62828; }
footer { margin-top: 2.5em; color: #8c959f; font-size: .85em; }
"""
