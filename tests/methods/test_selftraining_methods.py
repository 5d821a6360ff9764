"""Self-training family: pure losses against direct computations, method-specific behaviour
(AdaBN statistics, SHOT's frozen head and source-free phase, pretext tasks, resume) and a quick
end-to-end check that FixMatch beats source-only where target cluster structure helps."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from transferkit.core.errors import ConfigError
from transferkit.core.registries import METHODS
from transferkit.data.dataset import DomainDataset
from transferkit.losses import (
    class_balanced_pseudo_labels,
    class_balanced_thresholds,
    cluster_pseudo_labels,
    confidence_pseudo_labels,
    information_maximization,
    marginal_entropy,
    nearest_centroid,
    pseudo_label_loss,
)
from transferkit.methods.adabn import batchnorm_layers
from transferkit.methods.base import Batch, Optim, Step
from transferkit.methods.rotation import corrupt_block, rotate_batch
from transferkit.models import create_model
from transferkit.train import TrainConfig, evaluate, fit


# -- pure losses ----------------------------------------------------------------------------------
def test_information_maximization_matches_direct_computation():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [-1.0, 3.0, 0.0], [0.0, 0.0, 0.0]])
    p = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(1, keepdims=True)
    cond = -(p * np.log(p)).sum(1).mean()
    pbar = p.mean(0)
    marg = -(pbar * np.log(pbar)).sum()
    assert math.isclose(float(marginal_entropy(logits)), marg, rel_tol=1e-5)
    assert math.isclose(float(information_maximization(logits)), cond - marg, rel_tol=1e-5)
    assert math.isclose(float(information_maximization(logits, 0.5)), cond - 0.5 * marg, rel_tol=1e-5)


def test_information_maximization_is_minimal_for_confident_diverse_predictions():
    confident_diverse = torch.eye(3) * 30
    collapsed = torch.tensor([[30.0, 0, 0]] * 3)
    assert math.isclose(float(information_maximization(confident_diverse)), -math.log(3), abs_tol=1e-4)
    assert float(information_maximization(collapsed)) > -1e-4


def test_confidence_pseudo_labels_and_loss_normalisation():
    probs = torch.tensor([[0.96, 0.04], [0.3, 0.7], [0.02, 0.98]])
    labels, mask = confidence_pseudo_labels(probs, 0.95)
    assert labels.tolist() == [0, 1, 1] and mask.tolist() == [True, False, True]
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.5, 0.5]])
    ce = F.cross_entropy(logits, labels, reduction="none")
    assert torch.isclose(pseudo_label_loss(logits, labels, mask), (ce[0] + ce[2]) / 3)
    assert torch.isclose(pseudo_label_loss(logits, labels, mask, "selected"), (ce[0] + ce[2]) / 2)
    none = torch.zeros(3, dtype=torch.bool)
    assert float(pseudo_label_loss(logits, labels, none, "selected")) == 0.0


def test_class_balanced_thresholds_keep_the_top_portion_of_each_class():
    # class 0 predicted with confidences .9 .8 .7 .6; class 1 with .95 .55; class 2 never
    probs = torch.tensor([[.9, .1, 0], [.8, .2, 0], [.7, .3, 0], [.6, .4, 0], [.05, .95, 0], [.45, .55, 0]])
    thr = class_balanced_thresholds(probs, 0.5)
    assert torch.allclose(thr[:2], torch.tensor([0.8, 0.95])) and math.isinf(thr[2])
    thr = class_balanced_thresholds(probs, 0.2)  # ceil(0.8) = 1 and ceil(0.4) = 1: the top one
    assert torch.allclose(thr[:2], torch.tensor([0.9, 0.95]))
    thr = class_balanced_thresholds(probs, 1.0)
    assert torch.allclose(thr[:2], torch.tensor([0.6, 0.55]))


def test_class_balanced_selection_normalises_by_the_class_threshold():
    thresholds = torch.tensor([0.9, 0.5, float("inf")])
    probs = torch.tensor([[0.85, 0.15, 0.0], [0.55, 0.45, 0.0], [0.95, 0.05, 0.0], [0.2, 0.2, 0.6]])
    labels, mask = class_balanced_pseudo_labels(probs, thresholds)
    # .55/.9 = .61 < .45/.5 = .9: the rarer class wins but stays below 1; .95/.9 > 1
    assert labels.tolist() == [0, 1, 0, 1] and mask.tolist() == [False, False, True, False]


def test_cluster_pseudo_labels_correct_soft_predictions_by_cluster_structure():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20, 4, generator=g) * 0.1 + torch.tensor([3.0, 0, 0, 0])
    b = torch.randn(20, 4, generator=g) * 0.1 + torch.tensor([0, 3.0, 0, 0])
    feats = torch.cat([a, b])
    probs = torch.tensor([[0.8, 0.2]] * 20 + [[0.6, 0.4]] * 5 + [[0.3, 0.7]] * 15)  # 5 of b look like a
    labels, cents = cluster_pseudo_labels(feats, probs)
    assert labels.tolist() == [0] * 20 + [1] * 20
    assert cents.shape == (2, 5)
    assert nearest_centroid(feats, cents).tolist() == labels.tolist()
    # a class nobody predicts gets no centroid and no samples
    probs3 = torch.cat([probs, torch.zeros(40, 1)], 1)
    labels3, cents3 = cluster_pseudo_labels(feats, probs3)
    assert (labels3 < 2).all() and cents3[2].abs().sum() == 0


# -- method behaviour -----------------------------------------------------------------------------
def _step(model, method, batch, index, total=100, lr=0.05):
    params = [p for p in list(model.parameters()) + list(method.parameters()) if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)
    step = Step(index, total)
    return method.training_step(model, batch, step, Optim(lambda l: l.backward(), {"all": opt}, "m", step))


def _make(name, params=None, input_shape=(6,), k=3, model="tiny_mlp", model_params=None, seed=0):
    torch.manual_seed(seed)
    m = create_model(model, input_shape, k, model_params)
    meth = METHODS.create(name, params or {})
    meth.setup(m.num_features, k)
    return m, meth


def test_adabn_running_statistics_come_from_target_batches_only():
    model, method = _make("adabn", model="mlp", model_params={"hidden": [8], "bottleneck": 4})
    bn = batchnorm_layers(model)[0]
    xs, xt = torch.randn(16, 6) + 5.0, torch.randn(16, 6) - 5.0
    with torch.no_grad():
        h = model.bottleneck[0](model.backbone(xt))
    expected = 0.9 * bn.running_mean + 0.1 * h.mean(0)  # one target update, no source update
    terms = method.compute_loss(model, Batch(xs, torch.zeros(16, dtype=torch.long), xt), Step(0, 10))
    assert torch.allclose(bn.running_mean, expected, atol=1e-6)
    assert bn.track_running_stats and set(terms) == {"cls"}


def test_adabn_without_batchnorm_is_source_only():
    m1, adabn = _make("adabn")
    m2, src = _make("source_only")
    batch = Batch(torch.randn(8, 6), torch.randint(0, 3, (8,)), torch.randn(5, 6))
    assert torch.equal(adabn.compute_loss(m1, batch, Step(0, 1))["cls"], src.compute_loss(m2, batch, Step(0, 1))["cls"])


def test_shot_adaptation_phase_freezes_the_head_and_never_reads_source():
    model, method = _make("shot", {"source_steps_fraction": 0.5})
    head = [p.detach().clone() for p in model.head.parameters()]
    backbone = [p.detach().clone() for p in model.backbone.parameters()]
    nan_source = Batch(torch.full((8, 6), float("nan")), torch.full((8,), -7), torch.randn(12, 6))
    for i in range(50, 53):
        terms = _step(model, method, nan_source, i)
        assert set(terms) == {"im", "pseudo"} and all(torch.isfinite(v) for v in terms.values())
    assert all(torch.equal(a, b) for a, b in zip(head, model.head.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(backbone, model.backbone.parameters()))
    assert int(method.feature_memory.count) == 36 and method.centroid_valid.any()
    source = Batch(torch.randn(8, 6), torch.zeros(8, dtype=torch.long), nan_source.xt)
    assert set(_step(model, method, source, 10)) == {"cls"}  # phase 1: source training


def test_shot_needs_a_head_and_a_valid_fraction():
    with pytest.raises(ConfigError, match="source_steps_fraction"):
        _make("shot", {"source_steps_fraction": 1.5})
    _, method = _make("shot", {"source_steps_fraction": 0.0})
    with pytest.raises(ConfigError, match="head"):
        method.frozen_head(torch.nn.Linear(3, 3), torch.randn(2, 3))
    holder = torch.nn.Module()
    holder.head = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())  # a non-linear hypothesis
    out = method.frozen_head(holder, torch.randn(2, 4, requires_grad=True))
    out.sum().backward()
    assert all(p.grad is None for p in holder.head.parameters())


def test_self_training_modes_select_pseudo_labels():
    model, method = _make("self_training", {"warmup": 0.0})
    batch = Batch(torch.randn(16, 6), torch.randint(0, 3, (16,)), torch.randn(16, 6))
    terms = _step(model, method, batch, 50)
    assert set(terms) == {"cls", "pseudo"} and float(terms["pseudo"].detach()) > 0  # the top of each class is kept
    assert int(method.memory.count) == 16
    model, method = _make("self_training", {"selection": "threshold", "threshold": 1.01})
    assert float(_step(model, method, batch, 50)["pseudo"].detach()) == 0.0
    model, method = _make("self_training", {"warmup": 0.5})
    assert float(method.compute_loss(model, batch, Step(0, 100))["pseudo"].detach()) == 0.0  # weight ramps from 0


@pytest.mark.parametrize("name", ["fixmatch", "rotation", "adabn", "shot", "self_training"])
@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 16, 20)])
def test_methods_run_on_images(name, shape):
    model, method = _make(name, input_shape=shape, model="lenet", model_params={"bottleneck": 8, "features": 32})
    batch = Batch(torch.rand(6, *shape), torch.randint(0, 3, (6,)), torch.rand(5, *shape))
    for index in (5, 80):
        terms = _step(model, method, batch, index)
        assert terms and all(v.dim() == 0 and torch.isfinite(v) for v in terms.values())


@pytest.mark.parametrize("relative", [False, True])
def test_fixmatch_consistency_uses_confident_weak_predictions_only(relative):
    model, method = _make("fixmatch", {"threshold": 0.0, "relative_threshold": relative})
    batch = Batch(torch.randn(8, 6), torch.randint(0, 3, (8,)), torch.randn(8, 6))
    assert float(method.compute_loss(model, batch, Step(0, 10))["consistency"].detach()) > 0
    method.threshold = 1.01 if not relative else 1e6
    assert float(method.compute_loss(model, batch, Step(0, 10))["consistency"].detach()) == 0.0


def test_aligned_pseudo_labels_against_direct_computation():
    """AdaMatch's distribution alignment and relative threshold, against a hand computation: target
    predictions piled on class 0 are re-weighted towards the source proportions."""
    from transferkit.losses import aligned_pseudo_labels, confidence_pseudo_labels

    p_s = torch.tensor([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9], [0.8, 0.1, 0.1]])
    p_t = torch.tensor([[0.97, 0.02, 0.01], [0.9, 0.08, 0.02], [0.6, 0.1, 0.3], [0.5, 0.45, 0.05]])
    ratio = p_s.mean(0) / p_t.mean(0)
    q = p_t * ratio
    q = q / q.sum(1, keepdim=True)
    tau = 0.7 * p_s.max(1).values.mean()
    labels, mask = aligned_pseudo_labels(p_t, p_s, 0.7)
    assert torch.equal(labels, q.argmax(1)) and torch.equal(mask, q.max(1).values >= tau)
    assert set(labels.tolist()) != {0}  # plain argmax would give class 0 to all four
    assert confidence_pseudo_labels(p_t, 0.7)[0].tolist() == [0, 0, 0, 0]
    plain = aligned_pseudo_labels(p_t, p_s, 0.7, distribution_alignment=False, relative_threshold=False)
    assert all(torch.equal(a, b) for a, b in zip(plain, confidence_pseudo_labels(p_t, 0.7)))


def test_pretext_tasks_have_recoverable_labels():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 1, 8, 8)
    rotated, k = rotate_batch(x, g)
    assert set(k.tolist()) == {0, 1, 2, 3}
    for i in range(32):
        assert torch.equal(torch.rot90(rotated[i], -int(k[i]), dims=(-2, -1)), x[i])
    _, k2 = rotate_batch(torch.rand(32, 1, 6, 8), g)
    assert set(k2.tolist()) <= {0, 2}
    v = torch.arange(32 * 6, dtype=torch.float32).view(32, 6)
    corrupted, kb = corrupt_block(v, g)
    blocks = [[0, 1], [2, 3], [4], [5]]
    for i in range(32):
        changed = (corrupted[i] != v[i]).nonzero().flatten().tolist()
        assert changed == blocks[int(kb[i])]


@pytest.mark.parametrize("name", ["shot", "self_training", "fixmatch"])
def test_resume_reproduces_memories_and_augmentations(name, tmp_path):
    from transferkit.testing.contract import shifted_blobs

    xs, ys, xt, _ = shifted_blobs(n=120)
    ds = DomainDataset.from_arrays(xs, ys, xt, None, name="blobs")
    cfg = TrainConfig(steps=40, batch_size=16, checkpoint_every=15, log_every=5, progress=False)
    model, method = _make(name)
    full = fit(model, method, ds, cfg, seed=2)

    class Crash(Exception):
        pass

    def crash(step, terms):
        if step == 25:
            raise Crash

    ckpt = tmp_path / "c.pt"
    m1, me1 = _make(name)
    with pytest.raises(Crash):
        fit(m1, me1, ds, cfg, seed=2, checkpoint_path=ckpt, fingerprint="x", callbacks=[crash])
    m2, me2 = _make(name, seed=5)
    res = fit(m2, me2, ds, cfg, seed=2, checkpoint_path=ckpt, fingerprint="x")
    assert res.resumed_from == 15 and res.history == full.history
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), m2.parameters()))


# -- end to end -----------------------------------------------------------------------------------
def rotated_clusters(n=400, angle=35.0, seed=0):
    """Two elongated Gaussian clusters (2-d), separated along x; the target is the source rotated
    by ``angle`` degrees, so the source boundary cuts the target clusters' tails while a gap
    still separates them (a low-density boundary exists in the target)."""
    rng = np.random.default_rng(seed)

    def draw(deg):
        y = rng.integers(0, 2, n)
        x = np.stack([np.where(y == 1, 2.0, -2.0) + 0.5 * rng.normal(size=n), 2.0 * rng.normal(size=n)], 1)
        t = np.deg2rad(deg)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        return (x @ rot.T).astype(np.float32), y

    xs, ys = draw(0.0)
    xt, yt = draw(angle)
    return xs, ys, xt, yt


def test_fixmatch_beats_source_only_where_cluster_structure_helps():
    xs, ys, xt, yt = rotated_clusters()
    ds = DomainDataset.from_arrays(xs, ys, xt, None, name="rotated")
    cfg = TrainConfig(steps=200, batch_size=64, lr=0.05, lr_schedule="constant", progress=False, checkpoint_every=0)
    acc = {}
    for name in ("source_only", "fixmatch"):
        model, method = _make(name, input_shape=(2,), k=2, model="mlp", model_params={"hidden": [32]})
        fit(model, method, ds, cfg, seed=0)
        acc[name] = evaluate(model, xt, yt, 2)["accuracy"]
    assert acc["source_only"] < 93  # the shift hurts
    assert acc["fixmatch"] > acc["source_only"] + 4, acc


def test_fixmatch_refuses_a_second_augmentation_from_the_loop():
    """FixMatch draws its own views; train.augment=weak on top would augment them twice."""
    xs, ys, xt, _ = rotated_clusters()
    ds = DomainDataset.from_arrays(xs, ys, xt, None, name="rotated")
    cfg = TrainConfig(steps=2, batch_size=8, progress=False, checkpoint_every=0, augment="weak")
    model, method = _make("fixmatch", input_shape=(2,), k=2, model="mlp", model_params={"hidden": [8]})
    with pytest.raises(ConfigError, match="FixMatch draws its own weak and strong views.*train.augment: none"):
        fit(model, method, ds, cfg, seed=0)
    model, method = _make("source_only", input_shape=(2,), k=2, model="mlp", model_params={"hidden": [8]})
    fit(model, method, ds, cfg, seed=0)  # other methods take the loop's views
