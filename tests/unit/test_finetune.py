"""Fine-tuning strategies applied by the loop: frozen parameters stay bit-identical, learning rates
per group, gradual unfreezing at the planned steps with exact resume, the L2-SP and BSS terms
against direct computations, LoRA through peft, every strategy with dann and source_only, config
errors with their key paths, integer token ids end to end."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
from torch import nn

from transferkit.core.errors import ConfigError
from transferkit.core.registries import FINETUNE, METHODS
from transferkit.core.seed import derive_seed
from transferkit.data.dataset import DomainDataset
from transferkit.finetune import create_strategy, layer_view
from transferkit.methods.source_only import SourceOnly
from transferkit.models import Classifier, create_model
from transferkit.testing import Crash, crash_at
from transferkit.train import TrainConfig, evaluate, fit
from transferkit.train.checkpoint import load_checkpoint
from transferkit.train.loop import EpochSampler, param_groups

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before peft (and transformers) are first imported
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


#: every registered strategy, with its defaults: a new strategy is tested here without being listed
ALL = FINETUNE.names()


class Blocks(nn.Module):
    """A backbone of ``n`` blocks (Linear, BatchNorm, ReLU, Dropout) exposing ``layer_groups()``."""

    def __init__(self, d: int = 6, h: int = 8, n: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(d if i == 0 else h, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(dropout))
            for i in range(n))
        self.num_features = h

    def layer_groups(self) -> list[nn.Module]:
        return list(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return x


def _model(seed: int = 0, **kw) -> Classifier:
    torch.manual_seed(seed)
    return Classifier(Blocks(**kw), 8, 3)


def _method(name: str = "dann", model: nn.Module | None = None):
    me = METHODS.create(name, {"disc_hidden": 16} if name == "dann" else {})
    me.setup(8, 3)
    return me


def _cfg(finetune, steps: int = 30, **kw) -> TrainConfig:
    base = {"steps": steps, "batch_size": 16, "progress": False, "checkpoint_every": 0, "log_every": 1,
            "lr": 0.05, "weight_decay": 0.01}
    return TrainConfig(**{**base, **kw}, finetune=finetune)


def _snap(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class Recorder(SourceOnly):
    """source_only that records, at every update, the lr of each optimizer group and which
    parameters require gradients and whether the first block is in training mode."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict] = []

    def training_step(self, model, batch, step, optim):
        opt = optim.optimizers["all"]
        self.seen.append({
            "step": step.index,
            "lr": {g["name"]: g["lr"] for g in opt.param_groups},
            "trains": [all(p.requires_grad for p in b.parameters()) for b in model.backbone.blocks],
            "block_training": [b.training for b in model.backbone.blocks],
        })
        return super().training_step(model, batch, step, optim)


# -- layer groups -------------------------------------------------------------------------------
def test_layer_groups_from_layer_groups_or_children():
    view = layer_view(_model())
    assert len(view.groups) == 3 and [len(ps) for ps in view.group_params] == [4, 4, 4]
    assert len(view.head_params) == 2  # head weight and bias
    mlp = create_model("mlp", (6,), 3, {"hidden": [8, 5], "dropout": 0.1})
    v2 = layer_view(mlp)  # Flatten, Linear, ReLU, Dropout, Linear, ReLU, Dropout
    assert [[type(m).__name__ for m in g] for g in v2.groups] == [
        ["Flatten", "Linear", "ReLU", "Dropout"], ["Linear", "ReLU", "Dropout"]]
    with pytest.raises(ConfigError, match="backbone"):
        create_strategy("linear_probe").setup(nn.Linear(3, 2), 10)


# -- frozen parameters stay bit-identical -------------------------------------------------------
FROZEN = {  # strategy -> (state-dict prefixes that must not change, prefixes that must change)
    "linear_probe": (["backbone."], ["head."]),
    "freeze": (["backbone.blocks.0.", "backbone.blocks.1."], ["backbone.blocks.2.0.", "head."]),
}


@pytest.mark.parametrize("name", sorted(FROZEN))
@pytest.mark.parametrize("method", ["dann", "source_only"])
def test_frozen_parameters_and_bn_statistics_stay_identical(name, method, blobs_task):
    spec = {"name": name, "params": {"k": 2}} if name == "freeze" else name
    model = _model(dropout=0.3)
    before = _snap(model)
    fit(model, _method(method), blobs_task.train, _cfg(spec, optimizer="adamw"), seed=1)
    after = model.state_dict()
    frozen, trained = FROZEN[name]
    for k, v in before.items():
        if any(k.startswith(p) for p in frozen):  # weights and batch-norm running statistics
            assert torch.equal(v, after[k]), k
    for prefix in trained:
        assert any(not torch.equal(v, after[k]) for k, v in before.items() if k.startswith(prefix)), prefix
    assert all(p.requires_grad for p in model.parameters())  # flags restored after fit


def test_frozen_groups_run_in_eval_mode_and_are_not_optimized(blobs_task):
    rec = Recorder()
    rec.setup(8, 3)
    fit(_model(), rec, blobs_task.train, _cfg({"name": "freeze", "params": {"k": 1}}, steps=3), seed=0)
    s = rec.seen[0]
    assert s["trains"] == [False, True, True] and s["block_training"] == [False, True, True]
    assert "backbone.0" not in s["lr"] and {"backbone.1", "backbone.2", "head"} <= set(s["lr"])


def test_freeze_more_groups_than_the_backbone_has_is_a_config_error(blobs_task):
    with pytest.raises(ConfigError, match=r"train\.finetune\.params\.k.*3 layer group"):
        fit(_model(), _method(), blobs_task.train, _cfg({"name": "freeze", "params": {"k": 4}}, steps=2))


# -- learning rates -----------------------------------------------------------------------------
def test_discriminative_lr_groups_have_decayed_lrs(blobs_task):
    rec = Recorder()
    rec.setup(8, 3)
    cfg = _cfg({"name": "discriminative_lr", "params": {"decay": 0.5}}, steps=2, lr=0.08,
               lr_schedule="constant", backbone_lr_mult=0.5)
    fit(_model(), rec, blobs_task.train, cfg, seed=0)
    lrs = rec.seen[0]["lr"]
    assert lrs["head"] == pytest.approx(0.08)
    # group i from the top (i = 1 for the topmost) at lr * decay**i, times backbone_lr_mult
    assert lrs["backbone.2"] == pytest.approx(0.08 * 0.5 * 0.5)
    assert lrs["backbone.1"] == pytest.approx(0.08 * 0.25 * 0.5)
    assert lrs["backbone.0"] == pytest.approx(0.08 * 0.125 * 0.5)
    assert set(lrs) == {"backbone.0", "backbone.1", "backbone.2", "head"}


def test_full_strategy_keeps_the_default_groups():
    model = _model()
    cfg = _cfg("full", backbone_lr_mult=0.1)
    plans = create_strategy("full").setup(model, 10)
    groups = param_groups(model, _method(), cfg, plans)
    assert [(g["name"], g["lr"]) for g in groups] == [("backbone", pytest.approx(0.005)), ("head", 0.05),
                                                      ("method", 0.05)]
    default = param_groups(model, _method(), cfg)  # what the loop did before strategies existed
    assert [[id(p) for p in g["params"]] for g in default[:2]] == [[id(p) for p in g["params"]] for g in groups[:2]]


# -- gradual unfreezing -------------------------------------------------------------------------
def test_gradual_unfreezing_unfreezes_top_down_at_the_planned_steps(blobs_task):
    rec = Recorder()
    rec.setup(8, 3)
    model = _model()
    first_block = _snap(model.backbone.blocks[0])
    steps_seen = []
    fit(model, rec, blobs_task.train, _cfg("gradual_unfreeze", steps=40), seed=0,
        callbacks=[lambda done, terms: steps_seen.append(
            (done, all(torch.equal(v, model.backbone.blocks[0].state_dict()[k]) for k, v in first_block.items())))])
    trains = {s["step"]: s["trains"] for s in rec.seen}
    # 3 groups, 40 steps: even split every 40 // 4 = 10 steps, from the top down
    assert trains[0] == trains[9] == [False, False, False]
    assert trains[10] == trains[19] == [False, False, True]
    assert trains[20] == trains[29] == [False, True, True]
    assert trains[30] == trains[39] == [True, True, True]
    assert rec.seen[0]["block_training"] == [False, False, False]
    assert rec.seen[25]["block_training"] == [False, True, True]
    # the input-side block is bit-identical (weights and batch-norm statistics) until step 30
    unchanged = dict(steps_seen)
    assert unchanged[30] and not unchanged[31]
    assert {"backbone.0", "backbone.1", "backbone.2", "head"} <= set(rec.seen[0]["lr"])
    with pytest.raises(ConfigError, match="every"):
        create_strategy({"name": "gradual_unfreeze", "params": {"every": -1}})


def test_gradual_unfreezing_every_n_steps():
    s = create_strategy({"name": "gradual_unfreeze", "params": {"every": 7}})
    assert s.unfreeze_steps(3, 1000) == [21, 14, 7]




@pytest.mark.parametrize("name", ALL)
def test_every_strategy_resumes_exactly(name, blobs_task, tmp_path):
    if name == "lora":
        pytest.importorskip("peft")
    spec = {"name": name, "params": {"every": 6}} if name == "gradual_unfreeze" else name
    cfg = _cfg(spec, steps=30, checkpoint_every=5, optimizer="adam", lr=0.01)
    ref_model = _model()
    ref = fit(ref_model, _method(), blobs_task.train, cfg, seed=3)
    ckpt = tmp_path / "c.pt"
    with pytest.raises(Crash):
        fit(_model(), _method(), blobs_task.train, cfg, seed=3, checkpoint_path=ckpt, fingerprint="f",
            callbacks=[crash_at(17)])
    assert load_checkpoint(ckpt)["step"] == 15
    m2 = _model(seed=99)  # a fresh process builds fresh weights (and L2-SP must not take them as its start)
    res = fit(m2, _method(), blobs_task.train, cfg, seed=3, checkpoint_path=ckpt, fingerprint="f")
    assert res.resumed_from == 15
    a, b = ref_model.state_dict(), m2.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert res.history == ref.history


# -- regularisers against direct computations ---------------------------------------------------
def test_l2sp_term_equals_direct_computation(blobs_task):
    model = _model()
    start = {k: v.detach().double().clone() for k, v in model.named_parameters()}
    snaps, logged = [], []

    def cb(done, terms):
        logged.append(terms["l2sp"])
        snaps.append({k: v.detach().double().clone() for k, v in model.named_parameters()})

    alpha, beta = 0.3, 0.07
    fit(model, _method(), blobs_task.train, _cfg({"name": "l2sp", "params": {"alpha": alpha, "beta": beta}},
                                                 steps=6), seed=0, callbacks=[cb])

    def direct(w):
        pulled = sum(((w[k] - start[k]) ** 2).sum() for k in w if k.startswith("backbone."))
        new = sum((w[k] ** 2).sum() for k in w if not k.startswith("backbone."))
        return float(alpha / 2 * pulled + beta / 2 * new)

    # the term logged at step s+1 was computed on the weights after step s
    assert logged[0] == pytest.approx(direct(start), rel=1e-5)
    for s in range(1, 6):
        assert logged[s] == pytest.approx(direct(snaps[s - 1]), rel=1e-4)
    assert direct(snaps[-1]) != direct(start)  # the weights moved


def test_l2sp_replaces_weight_decay_on_the_model_only():
    model = _model()
    plans = create_strategy("l2sp").setup(model, 10)
    groups = param_groups(model, _method(), _cfg("l2sp"), plans)
    wd = {g["name"]: g.get("weight_decay") for g in groups}
    assert wd == {"backbone": 0.0, "head": 0.0, "method": None}


@pytest.mark.parametrize("method", ["dann", "source_only"])
def test_bss_term_equals_direct_svd(method, blobs_task):
    torch.manual_seed(0)
    model = create_model("mlp", (6,), 3, {"hidden": [8], "bottleneck": 0})  # no BN, no dropout
    snaps, logged = [], []

    def cb(done, terms):
        logged.append(terms["bss"])
        snaps.append({k: v.detach().clone() for k, v in model.state_dict().items()})

    eta, k = 0.01, 2
    fit(model, _method(method), blobs_task.train, _cfg({"name": "bss", "params": {"eta": eta, "k": k}}, steps=5),
        seed=4, callbacks=[cb])
    xs = blobs_task.train.source().x
    sampler = EpochSampler(len(xs), 16, derive_seed(4, "source"))
    probe = create_model("mlp", (6,), 3, {"hidden": [8], "bottleneck": 0})
    for s in range(1, 5):
        probe.load_state_dict(snaps[s - 1])
        with torch.no_grad():
            f = probe(torch.as_tensor(xs[sampler.indices(s)], dtype=torch.float32))[1].double().numpy()
        sigma = np.linalg.svd(f, compute_uv=False)  # descending
        assert logged[s] == pytest.approx(eta * float((np.sort(sigma)[:k] ** 2).sum()), rel=1e-3, abs=1e-7)


# -- LoRA ---------------------------------------------------------------------------------------
class Attention(nn.Module):
    def __init__(self, h: int) -> None:
        super().__init__()
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)

    def forward(self, x):
        a = torch.softmax(self.query(x) @ self.key(x).transpose(-1, -2) / x.shape[-1] ** 0.5, -1)
        return x + a @ self.value(x)


class TinyEncoder(nn.Module):
    """Token ids (B, L) -> mean of contextual embeddings (B, h); BERT-style module names."""

    def __init__(self, vocab: int = 20, h: int = 8, layers: int = 2) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(vocab, h)
        self.layer = nn.ModuleList(nn.ModuleDict({"attention": Attention(h), "output": nn.Linear(h, h)})
                                   for _ in range(layers))
        self.num_features = h

    def layer_groups(self):
        return [self.embeddings, *self.layer]

    def forward(self, ids):
        x = self.embeddings(ids)
        for blk in self.layer:
            x = torch.relu(blk["output"](blk["attention"](x)))
        return x.mean(1)


def _token_task(seed: int = 0, n: int = 120, length: int = 6, vocab: int = 20):
    """Class c uses tokens from its own half of the vocabulary; the target shifts the token mix."""
    rng = np.random.default_rng(seed)

    def draw(m, shift):
        y = rng.integers(0, 2, m)
        lo = np.where(y == 0, 1, vocab // 2)
        ids = lo[:, None] + rng.integers(0, vocab // 2 - 1, (m, length)) // (1 + shift)
        return ids.astype(np.int64), y

    xs, ys = draw(n, 0)
    xt, yt = draw(n, 1)
    ds = DomainDataset.from_arrays(xs.astype(np.float32), ys, xt.astype(np.float32))
    ds.x = np.concatenate([xs, xt])  # DomainDataset stores floats today; the loop must keep ints as int64
    return ds, xt, yt


def test_lora_trains_only_adapters_and_head_and_keeps_base_weights(no_network):
    pytest.importorskip("peft")
    ds, xt, yt = _token_task()
    torch.manual_seed(0)
    model = Classifier(TinyEncoder(), 8, 2)
    base = _snap(model.backbone)
    total_before = sum(p.numel() for p in model.parameters())
    me = _method("dann")
    me.setup(8, 2)
    rec = {}

    def cb(done, terms):
        if done == 1:
            opt_params = [p for n, p in model.named_parameters() if p.requires_grad]
            rec["trainable"] = sum(p.numel() for p in opt_params)

    fit(model, me, ds, _cfg({"name": "lora", "params": {"r": 2, "alpha": 4}}, steps=20, optimizer="adamw"),
        seed=0, callbacks=[cb])
    # defaults: adapters on the attention query and value projections (BERT-style names)
    adapted = [n for n, _ in model.backbone.named_modules() if n.endswith(("query", "value"))]
    assert len(adapted) == 4
    lora_params = {n: p for n, p in model.backbone.named_parameters() if "lora_" in n}
    assert sum(p.numel() for p in lora_params.values()) == 4 * 2 * (8 + 8)
    assert rec["trainable"] == 4 * 2 * (8 + 8) + sum(p.numel() for p in model.head.parameters())
    assert rec["trainable"] / total_before < 0.2  # 146 of 754 in this tiny encoder
    after = {k.replace(".base_layer", ""): v for k, v in model.backbone.state_dict().items() if "lora_" not in k}
    assert after.keys() == base.keys() and all(torch.equal(base[k], after[k]) for k in base)
    assert any(n.endswith("lora_B.default.weight") and p.abs().sum() > 0 for n, p in lora_params.items())
    assert len(evaluate(model, xt, yt, 2)["per_class"]) == 2  # evaluates on int64 ids after training


def test_lora_targets_and_errors(no_network):
    pytest.importorskip("peft")
    from transferkit.finetune.lora import default_targets

    assert default_targets(TinyEncoder()) == ["query", "value"]
    assert default_targets(Blocks()) == ["blocks.0.0", "blocks.1.0", "blocks.2.0"]
    model = _model()
    s = create_strategy({"name": "lora", "params": {"target_modules": ["nothere"]}})
    with pytest.raises(ConfigError, match="target_modules"):
        s.prepare(model)
    s2 = create_strategy({"name": "lora", "params": {"r": 2}})
    s2.prepare(model)
    s2.prepare(model)  # idempotent
    assert sum("lora_A" in n for n, _ in model.named_parameters()) == 3
    with pytest.raises(ConfigError, match="already carries"):
        create_strategy({"name": "lora", "params": {"r": 3}}).prepare(model)


# -- the contract: every strategy with dann and with source_only -----------------------------------
@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("method", ["dann", "source_only"])
def test_every_strategy_runs_with_dann_and_source_only(name, method, blobs_task, no_network):
    if name == "lora":
        pytest.importorskip("peft")
    model = _model()
    res = fit(model, _method(method), blobs_task.train, _cfg(name, steps=8, log_every=4), seed=0)
    assert len(res.history) == 2
    row = res.history[-1]
    assert all(np.isfinite(v) for v in row.values())
    assert "cls" in row
    if name in ("l2sp", "bss"):
        assert name in row
    acc = evaluate(model, blobs_task.x_test, blobs_task.y_test, 3)["accuracy"]
    assert 0 <= acc <= 100


def test_the_issue_strategies_are_registered():
    assert {"full", "linear_probe", "freeze", "gradual_unfreeze", "discriminative_lr", "l2sp", "bss",
            "lora"} <= set(ALL)


# -- config ---------------------------------------------------------------------------------------
def test_config_shape_and_errors_name_the_key_path():
    assert TrainConfig().finetune == {"name": "full", "params": {}}
    assert TrainConfig.from_dict({"finetune": "lora"}).finetune == {"name": "lora", "params": {}}
    cfg = TrainConfig.from_dict({"finetune": {"name": "freeze", "params": {"k": 2.0}}})
    assert cfg.finetune == {"name": "freeze", "params": {"k": 2}}
    cases = [
        ({"finetune": "lorra"}, r"train\.finetune\.name: unknown fine-tuning strategy 'lorra'\. Did you mean 'lora'"),
        ({"finetune": {"name": "freeze", "params": {"kk": 1}}}, r"train\.finetune\.params\.kk: unknown parameter"),
        ({"finetune": {"name": "freeze", "params": {"k": -1}}}, r"train\.finetune\.params\.k: got -1"),
        ({"finetune": {"name": "lora", "params": {"r": "big"}}}, r"train\.finetune\.params\.r: .*integer"),
        ({"finetune": {"name": "bss", "params": {"k": 0}}}, r"train\.finetune\.params\.k"),
        ({"finetune": {"nam": "bss"}}, r"train\.finetune\.nam: unknown key"),
        ({"finetune": 3}, r"train\.finetune: got 3"),
    ]
    for d, msg in cases:
        with pytest.raises(ConfigError, match=msg):
            TrainConfig.from_dict(d)


def test_experiment_config_validates_finetune_with_key_paths():
    from transferkit.experiment.config import validate_config

    raw = {"data": {"name": "digits"}, "train": {"finetune": "linear_probe"},
           "methods": ["source_only", {"name": "dann", "train": {"finetune": {"name": "l2sp", "params": {"alpha": 1}}}}]}
    cfg = validate_config(raw)
    assert cfg.train.finetune["name"] == "linear_probe"
    assert cfg.methods[1].train.finetune == {"name": "l2sp", "params": {"alpha": 1.0}}
    assert cfg.raw["methods"][1]["train"]["finetune"]["name"] == "l2sp"
    bad = {**raw, "methods": [{"name": "dann", "train": {"finetune": {"name": "gradual_unfreeze",
                                                                       "params": {"evry": 3}}}}]}
    with pytest.raises(ConfigError, match=r"methods\[0\]\.train\.finetune\.params\.evry"):
        validate_config(bad)
    with pytest.raises(ConfigError, match=r"^train\.finetune\.name"):
        validate_config({**raw, "train": {"finetune": "nope"}})


def test_data_parallel_refuses_a_changing_schedule(blobs_task):
    with pytest.raises(ConfigError, match="devices: 1"):
        fit(_model(), _method(), blobs_task.train, _cfg("gradual_unfreeze", devices=2))


# -- integer token ids ----------------------------------------------------------------------------
class TokenMean(nn.Module):
    def __init__(self, vocab: int = 20, h: int = 8) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, h)
        self.proj = nn.Sequential(nn.Linear(h, h), nn.ReLU())

    def forward(self, ids):
        assert ids.dtype == torch.int64
        return self.proj(self.emb(ids).mean(1))


@pytest.mark.parametrize("method", ["source_only", "dann"])
def test_integer_token_ids_end_to_end(method):
    ds, xt, yt = _token_task()
    torch.manual_seed(0)
    model = Classifier(TokenMean(), 8, 2)
    me = _method(method)
    me.setup(8, 2)
    fit(model, me, ds, _cfg("discriminative_lr", steps=60, lr=0.1), seed=0)
    acc = evaluate(model, xt, yt, 2)["accuracy"]
    assert acc > 80, acc  # the two classes use disjoint token ranges


@pytest.mark.parametrize("name, params", [("gradual_unfreeze", {"every": 5}), ("freeze", {"k": 1})])
def test_freeze_bn_keeps_running_statistics_of_training_groups(name, params, blobs_task):
    """``freeze_bn``: batch norm of backbone groups keeps its running statistics once the group
    trains (its affine parameters still train); without it the statistics move."""
    moved = {}
    for freeze_bn in (False, True):
        model = _model()
        before = [b[1].running_mean.clone() for b in model.backbone.blocks]
        weights = [b[1].weight.detach().clone() for b in model.backbone.blocks]
        fit(model, _method("source_only"), blobs_task.train,
            _cfg({"name": name, "params": {**params, "freeze_bn": freeze_bn}}, steps=30), seed=0)
        top = model.backbone.blocks[-1][1]
        moved[freeze_bn] = not torch.equal(top.running_mean, before[-1])
        if freeze_bn:
            assert all(torch.equal(b[1].running_mean, m) for b, m in zip(model.backbone.blocks, before))
            assert not torch.equal(top.weight, weights[-1])  # the scale still trains
    assert moved == {False: True, True: False}
