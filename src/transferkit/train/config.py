"""Training settings, validated like every other config section."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from transferkit.core.errors import ConfigError
from transferkit.core.params import bind_params


def keep_without_holdout(keep: str) -> str:
    """The error for ``keep`` other than ``last`` with no held-out source samples to choose by."""
    return (f"keep: {keep} chooses the weights by the accuracy on held-out source samples, but none "
            "are held out (val_fraction is 0); set train.val_fraction (e.g. 0.1) or keep: last")


@dataclass
class TrainConfig:
    """Settings of the one training loop (per run).

    steps: optimisation steps; batch_size: samples per domain per step (per process);
    optimizer/lr/momentum/weight_decay/nesterov: SGD or Adam(W); lr_schedule: ``constant``,
    ``dann`` (``lr / (1 + 10 p)^0.75``, Ganin et al.) or ``cosine``; warmup_steps: linear warm-up;
    backbone_lr_mult: learning-rate multiplier of the backbone group (e.g. 0.1 for pretrained);
    grad_clip: max gradient norm (0 = off); val_fraction: share of source samples held out to
    measure source accuracy (a label-free signal); eval_every: steps between target evaluations
    written to the history (curves only, never used to choose); log_every: steps between history
    rows; checkpoint_every: steps between checkpoints (0 = off); devices: processes for
    data-parallel training; accelerator: ``cpu`` or ``auto``; progress: show a progress bar;
    finetune: the fine-tuning strategy (``transferkit.finetune``), a name or ``{name, params}``,
    e.g. ``{name: gradual_unfreeze, params: {every: 200}}``; ``full`` (every parameter trains) by
    default. Stored as ``{name, params}`` with the params bound and checked.
    augment: ``none`` or ``weak``: every step, the source and target batches are replaced by weak
    views (:func:`transferkit.data.augment.augment`: shift-and-crop for images, Gaussian noise for
    feature vectors), drawn from a generator seeded by the run's sampling seed, the process rank
    and the step (a resumed run draws the same views). Methods that build their own views
    (FixMatch) need it off.
    keep: which weights the run ends with: ``last`` (default) or ``best_source_accuracy``: the
    held-out source accuracy (``val_fraction`` of the source, no target label) is measured every
    ``keep_every`` steps (0: every ``log_every``) and at the last step, and the weights where it was
    highest (ties: the later) are kept -- label-free early stopping.
    """

    steps: int = 1000
    batch_size: int = 64
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    lr_schedule: Literal["constant", "dann", "cosine"] = "dann"
    warmup_steps: int = 0
    backbone_lr_mult: float = 1.0
    grad_clip: float = 0.0
    val_fraction: float = 0.1
    eval_every: int = 0
    log_every: int = 50
    checkpoint_every: int = 200
    devices: int = 1
    accelerator: Literal["cpu", "auto"] = "cpu"
    progress: bool = True
    finetune: Any = field(default_factory=lambda: {"name": "full", "params": {}})
    augment: Literal["none", "weak"] = "none"
    keep: Literal["last", "best_source_accuracy"] = "last"
    keep_every: int = 0

    def __post_init__(self) -> None:
        checks = [
            ("steps", self.steps >= 1, "at least 1"),
            ("batch_size", self.batch_size >= 1, "at least 1"),
            ("lr", self.lr > 0, "positive"),
            ("val_fraction", 0 <= self.val_fraction < 1, "in [0, 1)"),
            ("devices", self.devices >= 1, "at least 1"),
            ("log_every", self.log_every >= 1, "at least 1"),
            ("checkpoint_every", self.checkpoint_every >= 0, "0 (off) or more"),
            ("eval_every", self.eval_every >= 0, "0 (off) or more"),
            ("backbone_lr_mult", self.backbone_lr_mult >= 0, "0 or more"),
        ]
        checks.append(("augment", self.augment in ("none", "weak"), "'none' or 'weak'"))
        checks.append(("keep", self.keep in ("last", "best_source_accuracy"), "'last' or 'best_source_accuracy'"))
        checks.append(("keep_every", self.keep_every >= 0, "0 (every log_every steps) or more"))
        for key, ok, what in checks:
            if not ok:
                raise ConfigError(f"got {getattr(self, key)!r}; must be {what}", f"train.{key}")
        from transferkit.finetune.base import finetune_spec

        self.finetune = finetune_spec(self.finetune, "train.finetune")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, path: str = "train") -> "TrainConfig":
        bound = bind_params(cls, dict(d or {}), path=path)
        if "finetune" in bound:  # checked here too, so errors carry this section's own key path
            from transferkit.finetune.base import finetune_spec

            bound["finetune"] = finetune_spec(bound["finetune"], f"{path}.finetune")
        return cls(**bound)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> "TrainConfig":
        known = {f.name for f in fields(self)}
        bad = set(changes) - known
        if bad:
            raise ConfigError(f"unknown train setting(s) {sorted(bad)}", "train")
        return TrainConfig(**{**self.to_dict(), **changes})
