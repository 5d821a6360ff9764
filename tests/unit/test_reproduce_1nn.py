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


def test_single_task_run_is_reused_by_an_all_tasks_run(shared_data, tmp_path):
    """A run's fingerprint leaves out which other tasks the data section lists: after a run of one
    task, the same experiment over every task reads that run back instead of recomputing it."""
    import json

    from transferkit.experiment.bench import bench_config
    from transferkit.experiment.config import validate_config

    one = run_experiment(validate_config(bench_config("mnist_usps_jda", ["1nn"], ["data.params.tasks=[MNIST-USPS]"])),
                         tmp_path, progress=False)
    assert [r.task for r in one.runs] == ["MNIST-USPS"]
    saved = tmp_path / "runs" / "MNIST-USPS" / "1nn" / "result.json"
    doc = json.loads(saved.read_text())
    doc["run"]["metrics"]["target_accuracy"] = -1.0  # a marker only a reused run can carry
    saved.write_text(json.dumps(doc))
    both = run_experiment(validate_config(bench_config("mnist_usps_jda", ["1nn"])), tmp_path, progress=False)
    acc = {r.task: r.metrics["target_accuracy"] for r in both.runs}
    assert acc["MNIST-USPS"] == -1.0 and acc["USPS-MNIST"] > 30
