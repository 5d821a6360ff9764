import pytest

from transferkit.core.errors import ConfigError, UnknownNameError
from transferkit.experiment.config import DEFAULT_CONFIG, apply_overrides, load_config, validate_config


def test_default_config_validates():
    cfg = validate_config(DEFAULT_CONFIG)
    assert [m.label for m in cfg.methods] == ["source_only", "coral", "dann"]
    assert [m.kind for m in cfg.methods] == ["deep", "shallow", "deep"]


def test_overrides_by_path_index_and_name():
    raw = apply_overrides(DEFAULT_CONFIG, ["train.steps=10", "methods.dann.params.trade_off=0.3",
                                          "methods.0.label=base", "seed=4"])
    cfg = validate_config(raw)
    assert cfg.train.steps == 10 and cfg.seed == 4
    assert cfg.methods[2].params["trade_off"] == 0.3 and cfg.methods[0].label == "base"
    assert DEFAULT_CONFIG["train"]["steps"] == 1500  # the default is not mutated


@pytest.mark.parametrize("override, match", [
    (["methods.1.name=corral"], r"methods\[1\]\.name: unknown method 'corral'.*Did you mean 'coral'"),
    (["methods.dann.params.lamda=1"], r"methods\[2\]\.params\.lamda: unknown parameter.*Allowed: .*trade_off"),
    (["train.steps=many"], r"train\.steps: got 'many'.*integer"),
    (["train.lr=-1"], r"train\.lr: got -1.*positive"),
    (["data.name=digitz"], r"data\.name: unknown dataset 'digitz'.*Did you mean 'digits'"),
    (["model.name=lenett"], r"model\.name: unknown model 'lenett'"),
    (["trian.steps=3"], r"trian: unknown key 'trian'.*Did you mean 'train'"),
    (["methods.foo.params.x=1"], r"no item named 'foo'"),
])
def test_validation_errors_name_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        validate_config(apply_overrides(DEFAULT_CONFIG, override))


def test_unknown_name_is_config_error():
    assert issubclass(UnknownNameError, ConfigError)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("methods: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_exponent_without_dot_is_a_number(tmp_path):
    """YAML 1.1 reads ``2e-5`` as a string; overrides and config files read it as a float."""
    raw = apply_overrides(DEFAULT_CONFIG, ["train.lr=2e-5", "train.weight_decay=1E-4", "name=1e"])
    assert raw["train"]["lr"] == 2e-5 and raw["train"]["weight_decay"] == 1e-4 and raw["name"] == "1e"
    p = tmp_path / "c.yaml"
    p.write_text("name: x\ntrain:\n  lr: 3e-4\n  steps: 5\n")
    from transferkit.experiment.config import load_config_file

    raw = load_config_file(p)
    assert raw["train"]["lr"] == 3e-4 and raw["train"]["steps"] == 5


def test_run_fingerprint_follows_defaults_not_the_task_list(monkeypatch):
    """A saved run is reused only while what it computed is unchanged: a new default of the method
    or the model changes the fingerprint; the list of other tasks does not."""
    from types import SimpleNamespace

    from transferkit.core.registry import Entry
    from transferkit.experiment.bench import bench_config
    from transferkit.experiment.runner import _fingerprint

    task = SimpleNamespace(name="t")
    cfg = validate_config(bench_config("digits", ["dann"]))
    fp = _fingerprint(cfg, cfg.methods[0], task)
    other_tasks = validate_config(bench_config("digits", ["dann"], ["data.params.tasks=[mnist->uci]"]))
    assert _fingerprint(other_tasks, other_tasks.methods[0], task) == fp
    augmented = validate_config(bench_config("digits", ["dann"], ["train.augment=weak"]))
    assert _fingerprint(augmented, augmented.methods[0], task) != fp  # the default ('none') is left out
    original = Entry.defaults
    monkeypatch.setattr(Entry, "defaults", lambda self: {**original(self), "trade_off": 9.0}
                        if self.name == "dann" else original(self))
    assert _fingerprint(cfg, cfg.methods[0], task) != fp
    monkeypatch.setattr(Entry, "defaults", lambda self: {**original(self), "dropout": 0.1}
                        if self.name == "lenet" else original(self))
    assert _fingerprint(cfg, cfg.methods[0], task) != fp
