"""``transferkit assess``: files, configs, reports, bad input; the built-in default (slow)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from transferkit.cli.main import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _files(tmp_path, shift=1.5):
    r = np.random.default_rng(0)
    centers = r.normal(scale=3.0, size=(3, 5))
    ys, yt = np.arange(150) % 3, np.arange(120) % 3
    np.savez(tmp_path / "s.npz", x=centers[ys] + r.normal(size=(150, 5)), y=ys)
    np.savez(tmp_path / "t.npz", x=centers[yt] + r.normal(size=(120, 5)) + shift, y=yt)
    return str(tmp_path / "s.npz"), str(tmp_path / "t.npz")


def test_assess_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["assess", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--source" in out and "--config" in out and "--out" in out


def test_assess_files_prints_tests_scores_advice_and_writes_reports(tmp_path, capsys):
    src, tgt = _files(tmp_path)
    out_dir = tmp_path / "rep"
    code, out, err = run_cli(capsys, "assess", "--source", src, "--target", tgt, "--out", str(out_dir),
                             "--permutations", "100")
    assert code == 0, err
    for needle in ("Shift tests", "mmd", "energy", "classifier", "p-value", "proxy_a", "logme",
                   "Pilot", "source_only", "coral", "Advice:"):
        assert needle in out
    for f in ("report.json", "report.md", "report.html"):
        assert (out_dir / f).is_file()
    rep = json.loads((out_dir / "report.json").read_text())
    assert rep["kind"] == "assessment"
    (task, a), = rep["tasks"].items()
    assert a["recommendation"] in ("no_adaptation", "fine_tune", "adapt", "negative_transfer_likely")
    assert {t["method"] for t in a["tests"]} == {"mmd", "energy", "classifier"}
    md = (out_dir / "report.md").read_text()
    assert "## " + task in md and "### Shift tests" in md and "Advice:" in md
    html = (out_dir / "report.html").read_text()
    assert "data:image/png;base64," in html and "Shift tests" in html   # the feature map


def test_assess_config_task(tmp_path, capsys):
    src, tgt = _files(tmp_path, shift=0.0)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(f"name: x\ndata: {{name: files, params: {{source: {src}, target: {tgt}, "
                   "task_name: mytask}}\nmethods: [1nn]\n")
    code, out, err = run_cli(capsys, "assess", "--config", str(cfg), "--task", "mytask",
                             "--permutations", "100", "--embedding", "off")
    assert code == 0, err
    assert "== mytask ==" in out and "Advice:" in out


def test_assess_config_without_target_says_what_is_missing(tmp_path, capsys):
    """A data set with labelled source and a test set but no unlabelled target: refused up front
    with the fix named (before: 'advise: the target samples must be a non-empty array')."""
    src, tgt = _files(tmp_path)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(f"name: x\ndata: {{name: files, params: {{source: {src}, target_test: {tgt}}}}}\n"
                   "methods: [1nn]\n")
    code, out, err = run_cli(capsys, "assess", "--config", str(cfg), "--permutations", "10")
    assert code == 2 and "Traceback" not in err and out == ""
    assert "no target samples" in err and "data.params.target" in err


@pytest.mark.parametrize("argv, needle", [
    (["--source", "s.npz"], "give both --source and --target"),
    (["--source", "nope.npz", "--target", "nope2.npz"], "not found"),
    (["--permutations", "0"], "--permutations"),
    (["train.steps=3"], "need --config"),
])
def test_assess_bad_input_exits_2_with_one_line(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "assess", *argv)
    assert code == 2 and needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_assess_default_digits_under_a_minute(capsys):
    t0 = time.perf_counter()
    code, out, err = run_cli(capsys, "assess")
    seconds = time.perf_counter() - t0
    assert code == 0, err
    assert "mnist->uci" in out and "p-value" in out and "Advice:" in out
    assert seconds < 60, f"took {seconds:.1f} s"
