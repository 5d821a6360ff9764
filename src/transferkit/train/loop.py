"""The one training loop: devices and data-parallel processes (Lightning Fabric), optimizers and
schedules, progress, periodic checkpoints with exact resume, and a NaN/inf guard.

Sampling is a pure function of (seed, step): each step's source and target batches are drawn from
per-epoch permutations seeded by the epoch number, so a resumed run sees the same batches as an
uninterrupted one.

Fine-tuning strategies (``train.finetune``) are applied here: the optimizer groups and their
learning rates, which parameters train at each step (a pure function of the step, so gradual
unfreezing resumes exactly; the strategy's own state, e.g. L2-SP's starting point, is in the
checkpoint), evaluation mode for frozen layer groups, and the regulariser added to each update.
Integer samples (token ids) stay int64; floating-point samples become float32.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from transferkit.core.errors import ConfigError, DataError, TrainingDivergedError
from transferkit.core.seed import derive_seed
from transferkit.data.dataset import DomainDataset
from transferkit.methods.base import Batch, Method, Optim, Step
from transferkit.train.checkpoint import load_checkpoint, save_checkpoint
from transferkit.train.config import TrainConfig, keep_without_holdout

if TYPE_CHECKING:
    from transferkit.finetune.base import GroupPlan, Strategy

Callback = Callable[[int, dict[str, float]], None]


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    resumed_from: int | None = None
    seconds: float = 0.0
    #: CPU time of this process over the same span (every thread): on a shared machine, the cost
    #: of the run itself, where ``seconds`` (wall) also counts the time other jobs took
    cpu_seconds: float = 0.0
    #: ``keep: best_source_accuracy``: the step whose weights were kept, and their held-out source
    #: accuracy at every measurement ``{step: accuracy}`` (None / empty with ``keep: last``)
    kept_step: int | None = None
    keep_scores: dict[int, float] = field(default_factory=dict)


class EpochSampler:
    """Indices of batch ``step`` for a pool of ``n`` samples: the concatenation of per-epoch
    permutations (seeded by ``seed`` and the epoch), cut into consecutive batches. Stateless.
    With ``world > 1`` each rank takes its own slice of a ``batch * world`` global batch. An empty
    pool gives empty batches."""

    def __init__(self, n: int, batch: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.batch, self.seed, self.rank, self.world = n, batch, seed, rank, world
        self._cache: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._cache:
            if len(self._cache) > 4:
                self._cache.clear()
            self._cache[epoch] = np.random.default_rng(derive_seed(self.seed, epoch)).permutation(self.n)
        return self._cache[epoch]

    def indices(self, step: int) -> np.ndarray:
        if self.n == 0:  # an empty pool (no target data, for a method that reads none): empty batches
            return np.zeros(0, dtype=np.int64)
        g = self.batch * self.world
        start = step * g + self.rank * self.batch
        pos = np.arange(start, start + self.batch)
        epochs, offs = np.divmod(pos, self.n)
        return np.array([self._perm(int(e))[o] for e, o in zip(epochs, offs)])


def _weak_views(batch: Batch, seed: int) -> Batch:
    """``train.augment="weak"``: the batch with weak views of its source and target samples."""
    from transferkit.data.augment import augment, make_generator

    g = make_generator(seed, batch.xs.device)
    with torch.no_grad():
        return Batch(xs=augment(batch.xs, "weak", g), ys=batch.ys, xt=augment(batch.xt, "weak", g),
                     extra=batch.extra)


def _lr_factor(cfg: TrainConfig, step: int) -> float:
    p = step / max(1, cfg.steps)
    if cfg.lr_schedule == "dann":
        f = (1.0 + 10.0 * p) ** -0.75
    elif cfg.lr_schedule == "cosine":
        f = 0.5 * (1.0 + math.cos(math.pi * p))
    else:
        f = 1.0
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        f *= (step + 1) / cfg.warmup_steps
    return f


def _make_optimizer(cfg: TrainConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    groups = [g for g in groups if g["params"]]
    for g in groups:
        g["initial_lr"] = g["lr"]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def param_groups(model: nn.Module, method: Method, cfg: TrainConfig,
                 plans: list[GroupPlan] | None = None) -> list[dict[str, Any]]:
    """Optimizer groups: the model's groups as the fine-tuning strategy plans them (by default
    backbone at ``lr * backbone_lr_mult`` and head at ``lr``), then the method's parts at ``lr``.
    Parameters that never train (``requires_grad=False``, or frozen by the strategy for the whole
    run) are left out; groups that start later (gradual unfreezing) are in from the start."""
    from transferkit.finetune.base import full_groups

    groups: list[dict[str, Any]] = []
    seen: set[int] = set()
    for plan in plans if plans is not None else full_groups(model):
        ps = [p for p in plan.params if id(p) not in seen]
        seen.update(id(p) for p in ps)
        if plan.trainable_from is None:
            continue
        mult = plan.lr_mult * (cfg.backbone_lr_mult if plan.backbone else 1.0)
        group = {"params": ps, "lr": cfg.lr * mult, "name": plan.name}
        if plan.weight_decay is not None:
            group["weight_decay"] = plan.weight_decay
        groups.append(group)
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in seen]
    if rest:
        seen.update(id(p) for p in rest)
        groups.append({"params": rest, "lr": cfg.lr, "name": "model_other"})
    for name, params in method.param_groups().items():
        ps = [p for p in params if p.requires_grad and id(p) not in seen]
        seen.update(id(p) for p in ps)
        groups.append({"params": ps, "lr": cfg.lr, "name": name})
    return groups


class _Applied:
    """A fine-tuning strategy applied to one run: its plans restricted to the parameters the model
    lets train, ``requires_grad`` and evaluation mode as functions of the step, the per-update
    regulariser with the features it needs, and the restoration of every flag at the end."""

    def __init__(self, strategy: Strategy, model: nn.Module, total: int) -> None:
        strategy.prepare(model)
        self.strategy, self.model = strategy, model
        self.flags = [(p, p.requires_grad) for p in model.parameters()]
        trainable = {id(p) for p, f in self.flags if f}
        self.plans = strategy.setup(model, total)
        for plan in self.plans:
            plan.params = [p for p in plan.params if id(p) in trainable]
        self.delayed = [g for g in self.plans if g.trainable_from is not None and g.trainable_from > 0]
        for plan in self.plans:
            if plan.trainable_from != 0:
                for p in plan.params:
                    p.requires_grad_(False)
        self.features: list[torch.Tensor] = []
        self.num_labelled = 0
        self.logged: dict[str, torch.Tensor] = {}
        self._hook = model.register_forward_hook(self._capture) if strategy.needs_features else None

    def _capture(self, module: nn.Module, inputs: Any, output: Any) -> None:
        if module.training and torch.is_grad_enabled() and not self.features:
            if not (isinstance(output, (tuple, list)) and len(output) >= 2):
                raise ConfigError(f"fine-tuning strategy {self.strategy.name!r} needs a model whose forward "
                                  "returns (logits, features), like transferkit Classifier", "train.finetune")
            self.features.append(output[1])

    def begin_step(self, step: int) -> None:
        """Trainability at ``step`` (a pure function of the step: exact resume)."""
        for plan in self.delayed:
            on = plan.trainable_at(step)
            for p in plan.params:
                p.requires_grad_(on)
        self.features.clear()
        self.logged = {}

    def frozen_to_eval(self, step: int) -> None:
        """Modules of groups frozen at ``step`` run in evaluation mode (fixed batch-norm statistics,
        no dropout); with the strategy's ``freeze_bn``, so do the batch-norm layers of the groups
        that train. Call after ``train()``."""
        keep_bn = self.strategy.freeze_bn
        for plan in self.plans:
            frozen = not plan.trainable_at(step)
            for m in plan.modules:
                if frozen:
                    m.eval()
                elif keep_bn:
                    for sub in m.modules():
                        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                            sub.eval()

    def regularize(self, loss: torch.Tensor, optim: Optim) -> torch.Tensor:
        """``loss`` plus the strategy's terms for this update (the first update's are logged)."""
        feats = None
        if self.strategy.needs_features:
            if not self.features:
                return loss
            f = self.features[0]
            feats = f[: self.num_labelled] if len(f) >= self.num_labelled else f
            self.features.clear()
        extra = self.strategy.regularizer(self.model, feats)
        if not extra:
            return loss
        optim.check(extra)
        if not self.logged:
            self.logged = {k: v.detach() for k, v in extra.items()}
        return loss + sum(extra.values())

    def close(self) -> None:
        if self._hook is not None:
            self._hook.remove()
        self.features.clear()
        for p, f in self.flags:
            p.requires_grad_(f)


def config_fingerprint(*parts: Any) -> str:
    """A short hash of the settings that must match for a checkpoint to be resumed."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _make_fabric(cfg: TrainConfig) -> Any:
    from lightning_fabric import Fabric

    if cfg.devices == 1:
        return Fabric(accelerator=cfg.accelerator, devices=1, strategy="auto", precision="32-true")
    # processes are forked (no pickling, no __main__ guard needed); gloo on CPU, NCCL on GPUs
    return Fabric(accelerator=cfg.accelerator, devices=cfg.devices, strategy="ddp_fork", precision="32-true")


def _distributed_worker(fabric: Any, model: nn.Module, method: Method, train: DomainDataset,
                        cfg: TrainConfig, kwargs: dict[str, Any], out: Path) -> None:
    """One data-parallel process: train, then (rank 0 only) write the trained weights and the
    result to ``out``. Nothing large is returned: the launcher sends rank 0's return value through
    a pipe that the parent reads only after every process has exited, so a return value larger
    than the pipe's buffer (64 KiB on Linux; a LeNet's weights are ~0.5 MB) would block rank 0
    forever and hang the run."""
    res = fit(model, method, train, cfg, fabric=fabric, **kwargs)
    if fabric.global_rank == 0:
        # tensors saved to a file (not shared memory, which would not outlive the worker)
        save_checkpoint({"bundle": nn.ModuleDict({"model": model, "method": method}).state_dict(),
                         "result": res}, out)


def check_domains(train: DomainDataset, who: str, uses_target: bool, source_alone: str) -> None:
    """Source samples are always needed; target samples only by a method that adapts to them.
    ``who`` names the method, ``source_alone`` how to train without a target instead."""
    if not train.is_source.any():
        raise DataError(f"the training data {train.name!r} have no source samples; every method trains "
                        "on labelled source data")
    if train.is_source.all() and uses_target:
        raise DataError(f"{who} adapts to a target domain, but the training data {train.name!r} have no "
                        f"target samples; give unlabelled target data, or train on the source alone with "
                        f"{source_alone}")


def _check_domains(method: Method, train: DomainDataset) -> None:
    check_domains(train, type(method).__name__, method.uses_target,
                  "the source_only method (with any fine-tuning strategy)")


def fit(
    model: nn.Module,
    method: Method,
    train: DomainDataset,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    checkpoint_path: str | Path | None = None,
    fingerprint: str = "",
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    select_fn: Callable[[nn.Module], float] | None = None,
    callbacks: Sequence[Callback] = (),
    desc: str = "train",
    fabric: Any = None,
) -> FitResult:
    """Train ``model`` with ``method`` on ``train`` (labelled source + unlabelled target) for
    ``cfg.steps`` steps. ``method.setup`` must have been called. When ``checkpoint_path`` holds a
    checkpoint with the same ``fingerprint`` training resumes from it. ``eval_fn(model)`` is called
    every ``cfg.eval_every`` steps and its figures go into the history (curves only).
    ``callbacks(step, terms)`` run after every step (e.g. to stop a run from outside).
    ``select_fn(model)``: the held-out source accuracy, needed by ``cfg.keep =
    "best_source_accuracy"`` (measured every ``cfg.keep_every`` steps; the best weights are
    restored at the end and kept in checkpoints, so a resumed run keeps the same choice).

    ``cfg.finetune`` names the fine-tuning strategy (:mod:`transferkit.finetune`): what is frozen,
    the learning rate of each group, a regulariser added to every update's loss (logged as its own
    term, e.g. ``l2sp``). Frozen parameters are never in the optimizer (or, while gradual
    unfreezing waits, have no gradient), so they stay bit-identical; frozen layer groups run in
    evaluation mode. ``requires_grad`` flags are restored when fit returns. ``train`` may have no
    target samples when the method does not adapt (``source_only``: plain fine-tuning)."""
    _check_domains(method, train)
    if cfg.keep != "last" and select_fn is None:
        raise ConfigError(keep_without_holdout(cfg.keep), "train.keep")
    if cfg.augment != "none" and method.makes_own_views:
        raise ConfigError(f"{type(method).__name__} draws its own weak and strong views of each batch; "
                          f"train.augment={cfg.augment!r} would augment them a second time; set train.augment: "
                          "none (the method's own parameters set its augmentation)", "train.augment")
    if fabric is None and cfg.devices > 1:
        # data-parallel: every process trains on its slice of each global batch; rank 0 writes
        # checkpoints and returns the trained weights, loaded here into the caller's objects
        from transferkit.finetune.base import create_strategy

        strategy = create_strategy(cfg.finetune)
        strategy.prepare(model)  # adapters exist here too, so the trained weights load back
        if any(g.trainable_from for g in strategy.setup(model, cfg.steps)):
            raise ConfigError(f"fine-tuning strategy {strategy.name!r} changes which parameters train during "
                              "the run, which data-parallel training does not support; use devices: 1",
                              "train.finetune")
        fabric = _make_fabric(cfg)
        kwargs = dict(seed=seed, checkpoint_path=checkpoint_path, fingerprint=fingerprint,
                      eval_fn=eval_fn, select_fn=select_fn, callbacks=callbacks, desc=desc)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="transferkit-ddp-") as tmp:
            out = Path(tmp) / "rank0.pt"
            fabric.launch(_distributed_worker, model, method, train, cfg, kwargs, out)
            if not out.is_file():
                raise RuntimeError(f"data-parallel training ended without rank 0's result ({out})")
            # written moments ago by our own rank-0 process into a private temporary folder; the
            # result (history rows, etc.) is a plain object, hence not weights_only
            state = torch.load(out, map_location="cpu", weights_only=False)
        nn.ModuleDict({"model": model, "method": method}).load_state_dict(state["bundle"])
        return state["result"]
    fabric = fabric or _make_fabric(cfg)
    src, tgt = train.source(), train.target()
    xs_all, xt_all = input_tensor(src.x), input_tensor(tgt.x)
    ys_all = torch.as_tensor(src.y)
    if (ys_all < 0).any():
        raise DataError("every source sample used for training needs a label")
    rank, world = fabric.global_rank, fabric.world_size
    s_sampler = EpochSampler(len(xs_all), cfg.batch_size, derive_seed(seed, "source"), rank, world)
    t_sampler = EpochSampler(len(xt_all), cfg.batch_size, derive_seed(seed, "target"), rank, world)

    from transferkit.finetune.base import create_strategy

    applied = _Applied(create_strategy(cfg.finetune), model, cfg.steps)
    try:
        return _fit(model, method, cfg, applied, fabric, xs_all, ys_all, xt_all, s_sampler, t_sampler,
                    checkpoint_path=checkpoint_path, fingerprint=fingerprint, eval_fn=eval_fn,
                    select_fn=select_fn if cfg.keep != "last" else None, callbacks=callbacks, desc=desc)
    finally:
        applied.close()


def _fit(model: nn.Module, method: Method, cfg: TrainConfig, applied: _Applied, fabric: Any,
         xs_all: torch.Tensor, ys_all: torch.Tensor, xt_all: torch.Tensor, s_sampler: EpochSampler,
         t_sampler: EpochSampler, *, checkpoint_path: str | Path | None, fingerprint: str,
         eval_fn: Callable[[nn.Module], dict[str, float]] | None,
         select_fn: Callable[[nn.Module], float] | None, callbacks: Sequence[Callback],
         desc: str) -> FitResult:
    from tqdm.auto import tqdm

    rank = fabric.global_rank
    bundle = nn.ModuleDict({"model": model, "method": method})
    optimizer = _make_optimizer(cfg, param_groups(model, method, cfg, applied.plans))
    start, history, resumed = 0, [], None
    # keep: best_source_accuracy -- the best weights so far (a copy), their step and every score
    kept: dict[str, Any] = {"step": None, "state": None, "scores": {}}
    keep_every = cfg.keep_every or cfg.log_every
    ckpt = Path(checkpoint_path) if checkpoint_path else None
    if ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt)
        if state.get("fingerprint") == fingerprint:
            bundle.load_state_dict(state["bundle"])
            optimizer.load_state_dict(state["optimizer"])
            applied.strategy.load_state_dict(state.get("finetune", {}))
            torch.set_rng_state(state["torch_rng"])
            start, history, resumed = int(state["step"]), list(state["history"]), int(state["step"])
            if select_fn is not None and state.get("kept"):
                kept = dict(state["kept"])
    wrapped, optimizer = fabric.setup(bundle, optimizer)
    wmodel, wmethod = wrapped.module["model"], wrapped.module["method"]
    # Methods call the model and their own parts directly (``wrapped.module[...]``), never the
    # DDP wrapper's forward, so DDP's gradient hooks never fire: with several processes, the
    # gradients are averaged here right before every optimizer step, and the buffers (batch-norm
    # statistics, a method's running state) follow rank 0 at the start of every step.
    if cfg.grad_clip > 0:  # clip the averaged gradients: install clipping first (inner)
        _clip_before_step(optimizer, bundle, cfg.grad_clip)
    if fabric.world_size > 1:
        _average_before_step(optimizer, fabric.world_size)
    optim = Optim(lambda loss: fabric.backward(applied.regularize(loss, optim)), {"all": optimizer},
                  type(method).__name__.lower(), Step(start, cfg.steps))

    def checkpoint(step: int) -> None:
        if ckpt is not None and fabric.global_rank == 0:
            save_checkpoint({"bundle": bundle.state_dict(), "optimizer": optimizer.state_dict(),
                             "torch_rng": torch.get_rng_state(), "step": step, "history": history,
                             "finetune": applied.strategy.state_dict(), "fingerprint": fingerprint,
                             **({"kept": kept} if select_fn is not None else {})}, ckpt)

    def measure_for_keep(done: int) -> None:
        rng = torch.get_rng_state()  # evaluation draws nothing, but keep the run's stream intact
        score = float(select_fn(model))  # type: ignore[misc]
        torch.set_rng_state(rng)
        kept["scores"][done] = score
        if kept["step"] is None or score >= kept["scores"][kept["step"]]:
            kept["step"] = done  # ties: the later weights
            kept["state"] = {k: v.detach().clone() for k, v in bundle.state_dict().items()}

    t0, c0 = time.perf_counter(), time.process_time()
    bar = tqdm(total=cfg.steps, initial=start, desc=desc, disable=not cfg.progress or rank != 0,
               leave=False, dynamic_ncols=True)
    running: dict[str, float] = {}
    try:
        for step in range(start, cfg.steps):
            applied.begin_step(step)
            wrapped.train()
            applied.frozen_to_eval(step)
            factor = _lr_factor(cfg, step)
            for g in optimizer.param_groups:
                g["lr"] = g["initial_lr"] * factor
            si, ti = s_sampler.indices(step), t_sampler.indices(step)
            batch = Batch(xs=fabric.to_device(xs_all[si]), ys=fabric.to_device(ys_all[si]),
                          xt=fabric.to_device(xt_all[ti]))
            if cfg.augment == "weak":
                batch = _weak_views(batch, derive_seed(s_sampler.seed, "augment", rank, step))
            applied.num_labelled = len(si)
            info = Step(step, cfg.steps)
            optim.step_info = info
            if fabric.world_size > 1:
                broadcast_buffers(bundle)
            terms = method.training_step(wmodel, batch, info, optim) if wmethod is method else \
                wmethod.training_step(wmodel, batch, info, optim)
            for k, v in applied.logged.items():  # the strategy's regulariser, as its own terms
                terms = {**terms, (k if k not in terms else f"finetune.{k}"): v}
            vals = {k: float(v.detach()) for k, v in terms.items()}
            for k, v in vals.items():
                running[k] = running.get(k, 0.0) + v
            done = step + 1
            if select_fn is not None and (done % keep_every == 0 or done == cfg.steps):
                measure_for_keep(done)
            if done % cfg.log_every == 0 or done == cfg.steps:
                n = cfg.log_every if done % cfg.log_every == 0 else done % cfg.log_every
                if fabric.world_size > 1:  # each process saw its slice of the batches: log the mean over all
                    running = average_over_processes(running, fabric.world_size)
                row = {"step": done, **{k: v / n for k, v in running.items()}, "lr": cfg.lr * factor}
                if eval_fn is not None and cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.steps):
                    row.update(eval_fn(model))
                if done in kept["scores"]:
                    row["source_val_accuracy"] = kept["scores"][done]
                history.append(row)
                running = {}
                bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k not in ("step", "lr")})
            for cb in callbacks:
                cb(done, vals)
            bar.update(1)
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.steps:
                checkpoint(done)
    except TrainingDivergedError as exc:
        where = f"; the last good checkpoint is {ckpt}" if ckpt is not None and ckpt.exists() else ""
        raise TrainingDivergedError(f"{exc}{where}") from None
    finally:
        bar.close()
    if start < cfg.steps:  # a run resumed from its final checkpoint already did this
        if kept["state"] is not None and kept["step"] != cfg.steps:
            bundle.load_state_dict(kept["state"])
        with torch.no_grad():
            wmethod.on_fit_end(wmodel, fabric.to_device(xt_all))
    checkpoint(cfg.steps)
    return FitResult(history=history, steps=cfg.steps, resumed_from=resumed, seconds=time.perf_counter() - t0,
                     cpu_seconds=time.process_time() - c0, kept_step=kept["step"],
                     keep_scores=dict(kept["scores"]))


def _clip_before_step(optimizer: torch.optim.Optimizer, bundle: nn.Module, max_norm: float) -> None:
    """Wrap ``optimizer.step`` once so gradients are clipped right before every update."""
    if getattr(optimizer, "_tk_clip", False):
        return
    inner = optimizer.step

    def step(*a: Any, **k: Any) -> Any:
        torch.nn.utils.clip_grad_norm_([p for p in bundle.parameters() if p.grad is not None], max_norm)
        return inner(*a, **k)

    optimizer.step = step  # type: ignore[method-assign]
    optimizer._tk_clip = True  # type: ignore[attr-defined]


def _by_dtype(tensors: list[torch.Tensor]) -> dict[tuple[torch.dtype, torch.device], list[int]]:
    groups: dict[tuple[torch.dtype, torch.device], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.dtype, t.device), []).append(i)
    return groups


def average_gradients(params: Sequence[torch.Tensor], world: int) -> None:
    """Replace the gradients of ``params`` by their mean over the ``world`` processes of the
    default process group: one all-reduce per dtype, in the same order on every process.

    A parameter without a gradient on some process counts as zero there (that process's loss did
    not depend on it); one without a gradient on every process keeps none, so the optimizer skips
    it as in single-process training. Every process must call this the same number of times."""
    import torch.distributed as dist

    params = list(params)
    for p in params:
        if p.grad is not None and p.grad.is_sparse:
            raise NotImplementedError("data-parallel training does not average sparse gradients; "
                                      "use dense parameters (e.g. nn.Embedding(sparse=False)) or devices: 1")
    for (dtype, device), idx in _by_dtype(params).items():
        ps = [params[i] for i in idx]
        parts = [p.grad.detach().reshape(-1) if p.grad is not None else torch.zeros(p.numel(), dtype=dtype,
                                                                                     device=device)
                 for p in ps]
        parts.append(torch.tensor([float(p.grad is not None) for p in ps], dtype=dtype, device=device))
        flat = torch.cat(parts)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        has = flat[-len(ps):]
        offset = 0
        for p, count in zip(ps, has.tolist()):
            chunk = flat[offset:offset + p.numel()].view(p.shape)
            offset += p.numel()
            if count == 0:
                continue
            if p.grad is None:
                p.grad = torch.empty_like(p)  # keeps the parameter's memory format (channels-last)
            p.grad.copy_(chunk).div_(world)


def average_over_processes(values: dict[str, float], world: int) -> dict[str, float]:
    """The mean of ``values`` over the ``world`` data-parallel processes (one all-reduce; every
    process must call it at the same step with the same keys)."""
    import torch.distributed as dist

    keys = sorted(values)
    flat = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    return {k: float(v) / world for k, v in zip(keys, flat.tolist())}


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy every buffer of ``module`` from process ``src`` to the others (one broadcast per dtype),
    as DDP does before each forward pass: all processes then compute with the same batch-norm
    statistics and method state, and a run resumed from rank 0's checkpoint is exact."""
    import torch.distributed as dist

    bufs = [b for b in module.buffers()]
    for idx in _by_dtype(bufs).values():
        group = [bufs[i] for i in idx]
        flat = torch.cat([b.detach().reshape(-1) for b in group])
        dist.broadcast(flat, src=src)
        offset = 0
        for b in group:
            with torch.no_grad():
                b.copy_(flat[offset:offset + b.numel()].view(b.shape))
            offset += b.numel()


def _average_before_step(optimizer: torch.optim.Optimizer, world: int) -> None:
    """Wrap ``optimizer.step`` once so the gradients of its parameters are averaged over the
    processes right before every update (before clipping, if clipping is installed first)."""
    if getattr(optimizer, "_tk_average", False):
        return
    inner = optimizer.step
    params = [p for g in optimizer.param_groups for p in g["params"]]

    def step(*a: Any, **k: Any) -> Any:
        average_gradients(params, world)
        return inner(*a, **k)

    optimizer.step = step  # type: ignore[method-assign]
    optimizer._tk_average = True  # type: ignore[attr-defined]


def input_tensor(x: np.ndarray) -> torch.Tensor:
    """Samples as a tensor: floating point as float32; integers (token ids) as int64."""
    x = np.ascontiguousarray(x)
    if x.dtype.kind == "f":
        return torch.as_tensor(x, dtype=torch.float32)
    if x.dtype.kind in "iu":
        return torch.as_tensor(x.astype(np.int64, copy=False))
    if x.dtype.kind == "b":
        return torch.as_tensor(x, dtype=torch.float32)
    raise DataError(f"samples must be numbers (floating point, or integer token ids); got dtype {x.dtype}")


@torch.no_grad()
def predict_outputs(model: nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 512
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, features)`` of ``model`` on ``x`` in evaluation mode, batched, without autograd,
    on CPU (features flattened to ``(n, d)``); the model's train/eval mode is restored."""
    was = model.training
    model.eval()
    x = input_tensor(x) if isinstance(x, np.ndarray) else x
    logits, feats = [], []
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                lo, f = model(x[i:i + batch_size])[:2]
                logits.append(lo.float().cpu())
                feats.append(f.float().reshape(len(f), -1).cpu())
    finally:
        model.train(was)
    if not logits:
        return torch.zeros(0), torch.zeros(0)
    return torch.cat(logits), torch.cat(feats)


def predict_logits(model: nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in evaluation mode, batched, on CPU."""
    return predict_outputs(model, x, batch_size)[0]


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, num_classes: int) -> dict[str, Any]:
    """Accuracy (percent), per-class accuracy and confusion matrix of ``model`` on ``(x, y)``."""
    pred = predict_logits(model, x).argmax(1).numpy()
    return classification_summary(np.asarray(y), pred, num_classes)


def classification_summary(y: np.ndarray, pred: np.ndarray, num_classes: int) -> dict[str, Any]:
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(conf, (y, pred), 1)
    support = conf.sum(1)
    per_class = np.where(support > 0, np.diag(conf) / np.maximum(support, 1), np.nan) * 100
    return {"accuracy": float((pred == y).mean() * 100) if len(y) else float("nan"),
            "per_class": [None if np.isnan(v) else float(v) for v in per_class],
            "confusion": conf.tolist()}
