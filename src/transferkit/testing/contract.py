"""``check_method``: the contract every registered deep method must pass.

1. constructible with defaults; parameters round-trip through the registry;
2. ``compute_loss``/``training_step`` give finite named scalar terms that back-propagate into the model;
3. never reads target labels (training with and without target labels in the data gives
   bit-identical weights);
4. works with unequal source and target batch sizes;
5. same seed, same loss;
6. a few steps on shifted blobs reduce the monitored term (``Method.monitor``, default ``cls``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from transferkit.core.params import get_params
from transferkit.core.registries import METHODS
from transferkit.data.dataset import DomainDataset
from transferkit.methods.base import Batch, Method, Optim, Step
from transferkit.testing.data import shifted_blobs


def _build(name: str, params: dict[str, Any], d: int, k: int, seed: int) -> tuple[Any, Method]:
    from transferkit.models import create_model

    torch.manual_seed(seed)
    model = create_model("tiny_mlp", (d,), k)
    method = METHODS.create(name, params)
    method.setup(model.num_features, k)
    return model, method


def _terms(name: str, seed: int, ns: int, nt: int) -> dict[str, torch.Tensor]:
    xs, ys, xt, _ = shifted_blobs()
    model, method = _build(name, {}, xs.shape[1], 3, seed)
    torch.manual_seed(seed)
    batch = Batch(torch.from_numpy(xs[:ns]), torch.from_numpy(ys[:ns]), torch.from_numpy(xt[:nt]))
    return _step(model, method, batch, Step(5, 100))


def _step(model: Any, method: Method, batch: Batch, step: Step) -> dict[str, torch.Tensor]:
    params = [p for p in list(model.parameters()) + list(method.parameters()) if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-3)
    return method.training_step(model, batch, step, Optim(lambda loss: loss.backward(), {"all": opt},
                                                              type(method).__name__, step))


def check_method(name: str, *, steps: int = 120) -> None:
    """Run every check on registered method ``name``; raise AssertionError on the first failure."""
    from transferkit.train.config import TrainConfig
    from transferkit.train.loop import fit

    entry = METHODS.entry(name)
    method = METHODS.create(name)
    defaults = entry.defaults()
    assert get_params(method) == defaults, f"{name}: attributes {get_params(method)} != defaults {defaults}"
    again = METHODS.create(name, get_params(method))
    assert get_params(again) == defaults, f"{name}: parameters do not round-trip"
    assert isinstance(method, Method), f"{name} must subclass transferkit.methods.Method"

    # finite named terms that back-propagate into the model
    xs, ys, xt, yt = shifted_blobs()
    model, method = _build(name, {}, xs.shape[1], 3, 0)
    before = [p.detach().clone() for p in model.parameters()]
    terms = _step(model, method, Batch(torch.from_numpy(xs[:16]), torch.from_numpy(ys[:16]),
                                       torch.from_numpy(xt[:16])), Step(5, 100))
    assert terms and all(isinstance(k, str) for k in terms), f"{name}: no named loss terms"
    for k, v in terms.items():
        assert v.dim() == 0, f"{name}: term {k!r} is not a scalar (shape {tuple(v.shape)})"
        assert torch.isfinite(v).all(), f"{name}: term {k!r} is not finite"
    moved = any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
    assert moved, f"{name}: one training step did not change the model's parameters"

    # unequal batch sizes
    t = _terms(name, 0, 12, 7)
    assert all(torch.isfinite(v) for v in t.values()), f"{name}: non-finite terms with batch sizes 12/7"
    t = _terms(name, 0, 5, 13)
    assert all(torch.isfinite(v) for v in t.values()), f"{name}: non-finite terms with batch sizes 5/13"

    # same seed, same loss
    a, b = _terms(name, 3, 16, 16), _terms(name, 3, 16, 16)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"{name}: same seed gave different losses"

    # never reads target labels: weights identical whether target labels are present or not
    cfg = TrainConfig(steps=30, batch_size=16, progress=False, checkpoint_every=0, lr=0.01)
    weights = []
    for labels in (yt, np.full_like(yt, -1)):
        ds = DomainDataset.from_arrays(xs, ys, xt, labels, name="blobs")
        m, meth = _build(name, {}, xs.shape[1], 3, 7)
        fit(m, meth, ds, cfg, seed=7)
        weights.append([p.detach().clone() for p in m.parameters()])
    assert all(torch.equal(p, q) for p, q in zip(*weights)), f"{name}: training depends on target labels"

    # a few steps reduce the monitored term
    monitor = getattr(type(method), "monitor", "cls")
    m, meth = _build(name, {}, xs.shape[1], 3, 1)
    ds = DomainDataset.from_arrays(xs, ys, xt, None, name="blobs")
    log = max(1, steps // 6)
    res = fit(m, meth, ds, TrainConfig(steps=steps, batch_size=32, progress=False, checkpoint_every=0,
                                       lr=0.01, log_every=log), seed=1)
    series = [row[monitor] for row in res.history if monitor in row]
    assert len(series) >= 2, f"{name}: term {monitor!r} was not logged"
    assert series[-1] < series[0], f"{name}: {monitor!r} did not decrease ({series[0]:.4f} -> {series[-1]:.4f})"
