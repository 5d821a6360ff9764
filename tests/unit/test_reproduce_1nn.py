"""The shipped 1NN config reproduces the published Office-Caltech SURF row, printed beside ours."""

from pathlib import Path

from transferkit.experiment.config import load_config
from transferkit.experiment.report import format_table
from transferkit.experiment.runner import run_experiment

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "office_caltech_1nn.yaml"


def test_office_caltech_1nn_matches_published_row(shared_data, tmp_path):
    result = run_experiment(load_config(CONFIG), tmp_path, progress=False)
    assert len(result.runs) == 12
    for r in result.runs:
        assert r.published is not None, r.task
        assert abs(r.metrics["target_accuracy"] - r.published) <= 0.1, (r.task, r.metrics, r.published)
    assert abs(result.mean("1nn") - 31.4) <= 0.05
    table = format_table(result)
    assert "pub 23.7" in table  # C-A, the published figure beside ours
    md = (tmp_path / "report.md").read_text()
    assert "23.7" in md and "31.4" in md
