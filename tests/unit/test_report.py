"""Reports: report.json / report.md / report.html from one ExperimentResult, and terminal tables."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from transferkit.core.errors import DataError
from transferkit.experiment.report import (
    format_table,
    long_table,
    render_html,
    render_markdown,
    render_report,
    results_table,
    write_report,
)
from transferkit.experiment.result import ExperimentResult, RunResult

EVIL = "<b>x</b>"


def make_result() -> ExperimentResult:
    """2 tasks x 3 methods: a deep method with history, a shallow one, and one that failed."""
    runs = []
    for t, task in enumerate(["A->W", EVIL]):
        history = [{"step": s, "total": 2.0 - 0.1 * s, "cls": 1.0 - 0.05 * s, "transfer": 0.5}
                   for s in range(0, 10)]
        for h in history[::3]:
            h["target_accuracy"] = 50.0 + 2 * h["step"]
        runs.append(RunResult(
            task=task, method="dann", kind="deep", params={"lr": 0.01, "trade_off": 1.0},
            metrics={"target_accuracy": 71.24 + t, "source_accuracy": 98.0, "snd": 0.4321},
            history=history, timings={"fit": 12.5, "evaluate": 0.25, "total": 12.75},
            published=70.1 + t, published_source="Ganin et al. 2016, Table 2",
            per_class_accuracy=[90.0, 60.0, None], confusion=[[9, 1, 0], [3, 6, 1], [0, 0, 0]]))
        runs.append(RunResult(
            task=task, method="coral", kind="shallow", metrics={"target_accuracy": 64.5 + t},
            timings={"fit": 0.5, "total": 0.6}))
        runs.append(RunResult(
            task=task, method="mcc", kind="deep", status="failed",
            error="TrainingDivergedError: loss term 'mcc' is NaN at step 3", published=72.0))
    return ExperimentResult(
        name="office31 demo", config={"benchmark": "office31", "methods": [{"name": "dann"}],
                                      "seed": 0},
        seed=0, versions={"transferkit": "0.1.0", "torch": "2.2.0"}, runs=runs,
        timings={"total": 30.0}, created="2025-01-02T03:04:05", benchmark="office31",
        notes=["target labels used for evaluation only"],
        task_info={"A->W": {"n_source": 2817, "n_target": 795, "classes": 31},
                   EVIL: {"n_source": 10, "n_target": 5, "classes": 3}})


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_report(make_result(), tmp_path_factory.mktemp("report"))


def test_write_report_creates_three_files(written: dict[str, Path]) -> None:
    assert set(written) == {"json", "md", "html"}
    for key, name in [("json", "report.json"), ("md", "report.md"), ("html", "report.html")]:
        assert written[key].name == name and written[key].is_file()
    assert not list(written["json"].parent.glob("*.tmp"))


def test_json_round_trips(written: dict[str, Path]) -> None:
    assert ExperimentResult.load_json(written["json"]).to_dict() == \
        json.loads(json.dumps(make_result().to_dict()))


def test_markdown_contains_results_with_published_and_gap(written: dict[str, Path]) -> None:
    md = written["md"].read_text()
    for section in ["## Data", "## Results", "## Failures", "## Timings", "## Per-class accuracy",
                    "## Config", "## Notes"]:
        assert section in md
    assert "| task | dann | coral | mcc |" in md
    assert "71.2 (pub 70.1, +1.1)" in md          # ours, published and gap per task
    assert "| mean | 71.7 (pub 70.6, +1.1) | 65.0 | failed |" in md  # mean per method
    assert "loss term 'mcc' is NaN at step 3" in md  # failures with their error
    assert "```yaml\nbenchmark: office31" in md       # resolved config as YAML
    assert "Ganin et al. 2016, Table 2" in md
    assert "&lt;b>x&lt;/b>" in md and "<b>" not in md


def test_html_is_self_contained_with_plots(written: dict[str, Path]) -> None:
    page = written["html"].read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count('<img src="data:image/png;base64,') >= 4  # bars, 2 curves, confusions
    assert "http://" not in page and "https://" not in page
    links = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", page)
    assert links and all(v.startswith(("data:image/png;base64,", "#")) for v in links)
    assert "<script" not in page and "@import" not in page and "url(" not in page
    assert "71.2" in page and "pub 70.1" in page and "+1.1" in page
    assert "TrainingDivergedError" in page


def test_html_escapes_text(written: dict[str, Path]) -> None:
    page = written["html"].read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert EVIL not in page


def test_render_report_recreates_md_and_html(written: dict[str, Path]) -> None:
    md, page = written["md"].read_text(), written["html"].read_text()
    written["md"].unlink()
    written["html"].unlink()
    again = render_report(written["json"].parent)
    assert again["md"].read_text() == md and again["html"].read_text() == page  # deterministic
    assert render_report(written["json"])["html"] == written["html"]  # the json path works too


def test_render_report_without_json_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="report.json"):
        render_report(tmp_path)


def test_format_table_contains_numbers() -> None:
    result = make_result()
    rows = results_table(result)
    assert rows[0] == ["task", "dann", "coral", "mcc"]
    assert rows[1] == ["A->W", "71.2 (pub 70.1, +1.1)", "64.5", "failed"]
    assert rows[-1][0] == "mean"
    text = format_table(result)
    for needle in ["71.2 (pub 70.1, +1.1)", "72.2 (pub 71.1, +1.1)", "64.5", "65.5", "failed"]:
        assert needle in text
    long = format_table(result, layout="long")
    assert "A->W" in long and "70.1" in long and "+1.1" in long and "65.0" in long
    assert len(long_table(result)) == 1 + len(result.runs)


def test_format_table_many_tasks_stays_readable() -> None:
    runs = [RunResult(task=f"T{t:02d}", method=f"method{m}", kind="shallow",
                      metrics={"target_accuracy": 40.0 + t + m}, published=41.0 + t)
            for t in range(12) for m in range(6)]
    result = ExperimentResult(name="wide", config={}, seed=1, versions={}, runs=runs)
    wide = format_table(result)
    assert max(len(line) for line in wide.splitlines()) <= 160
    assert len(wide.splitlines()) == 2 + 12 + 2  # header, rule, 12 tasks, rule, mean
    long = format_table(result, max_width=40)  # too narrow for the wide form: one line per run
    assert len(long.splitlines()) > 12 * 6 and "T11" in long and "method5" in long


def test_edge_cases_zero_runs_nan_and_no_published(tmp_path: Path) -> None:
    empty = ExperimentResult(name="empty", config={}, seed=0, versions={})
    assert format_table(empty) == "(no runs)"
    paths = write_report(empty, tmp_path / "empty")
    assert "No runs." in paths["md"].read_text() and "No runs." in paths["html"].read_text()

    nan_run = RunResult(task="t", method="m", kind="deep", metrics={"target_accuracy": math.nan},
                        history=[{"step": 0, "loss": math.nan}, {"step": 1, "loss": math.inf}],
                        confusion=[[0, 0], [0, 0]])
    no_hist = RunResult(task="t", method="n", kind="deep", metrics={"target_accuracy": 50.0})
    odd = ExperimentResult(name="nan", config={"x": math.nan}, seed=0, versions={},
                           runs=[nan_run, no_hist])
    assert "nan" in format_table(odd)
    paths = write_report(odd, tmp_path / "nan")
    assert "could not be drawn" not in paths["html"].read_text()
    assert render_markdown(odd) == render_markdown(odd) and render_html(odd) == render_html(odd)


def test_odd_histories_and_duplicates_do_not_break_plots(tmp_path: Path) -> None:
    runs = [RunResult(task="$t$", method="_m", kind="deep", metrics={"target_accuracy": 10.0},
                      history=[{"step": "x", "note": "text"}, {"loss": "nan"}]),
            RunResult(task="$t$", method="k", kind="deep", metrics={"target_accuracy": 20.0},
                      history=[{"target_accuracy": 5.0}, {"step": 4, "target_accuracy": 9.0}],
                      confusion=[[3, 1, 0], [0, 2, 2]]),
            RunResult(task="$t$", method="k", kind="deep", metrics={"target_accuracy": 99.0})]
    result = ExperimentResult(name="odd", config={}, seed=0, versions={}, runs=runs)
    page = write_report(result, tmp_path)["html"].read_text()
    assert "could not be drawn" not in page
    assert page.count("data:image/png;base64,") == 3  # bars, one curve figure, one confusion
    assert results_table(result)[-1] == ["mean", "10.0", "20.0"]  # the mean of the shown cells


def test_import_is_lazy() -> None:
    import subprocess
    import sys

    code = ("import sys, transferkit.experiment.report; "
            "print(any(m.split('.')[0] in ('matplotlib', 'yaml') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
