"""DomainDataset: samples, labels and a domain id per sample, source and target together.

The convention is skada's: ``sample_domain >= 0`` marks source samples, ``< 0`` target samples,
and unknown labels are ``-1``, so ``(X, y, sample_domain)`` flow unchanged into scikit-learn and
skada pipelines.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from transferkit.core.errors import DataError

SOURCE = 1
TARGET = -2  # skada's default target id


@dataclass
class DomainDataset:
    """Samples ``x`` (n, ...), labels ``y`` (n,) with -1 where unknown, domain ids
    ``sample_domain`` (n,), names of the domains and of the classes.

    Build one with :meth:`from_arrays`; :meth:`validate` runs in the constructor.
    """

    x: np.ndarray
    y: np.ndarray
    sample_domain: np.ndarray
    domain_names: dict[int, str] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    name: str = "dataset"

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x)
        if self.x.dtype.kind in "iub":  # counts, pixels
            self.x = self.x.astype(np.float32)
        self.y = np.asarray(self.y).astype(np.int64, copy=False)
        self.sample_domain = np.asarray(self.sample_domain).astype(np.int64, copy=False)
        if not self.classes:
            labelled = self.y[self.y >= 0]
            self.classes = [str(c) for c in range(int(labelled.max()) + 1)] if labelled.size else []
        self.validate()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        xs: np.ndarray,
        ys: np.ndarray,
        xt: np.ndarray,
        yt: np.ndarray | None = None,
        *,
        source_name: str = "source",
        target_name: str = "target",
        classes: Sequence[str] | None = None,
        name: str = "dataset",
    ) -> "DomainDataset":
        """One source and one target domain. ``yt`` is kept only when given (use ``-1`` rows, or
        :meth:`without_target_labels`, for the unlabelled view a method sees)."""
        xs, xt = np.asarray(xs), np.asarray(xt)
        if xs.ndim < 2 or xt.ndim < 2:
            raise DataError(f"{name}: samples must be arrays of shape (n, features...); got source "
                            f"{xs.shape} and target {xt.shape}")
        if xs.shape[1:] != xt.shape[1:]:
            raise DataError(
                f"{name}: source samples have shape {xs.shape[1:]} but target samples have "
                f"{xt.shape[1:]}; both domains must share one feature space (same width / image size)"
            )
        ys = np.asarray(ys)
        if ys.shape != (len(xs),):
            raise DataError(f"{name}: {len(xs)} source samples but source labels have shape {ys.shape}")
        yt_ = np.full(len(xt), -1, dtype=np.int64) if yt is None else np.asarray(yt)
        if yt_.shape != (len(xt),):
            raise DataError(f"{name}: {len(xt)} target samples but target labels have shape {yt_.shape}")
        x = np.concatenate([xs, xt]).astype(np.result_type(xs.dtype, xt.dtype, np.float32), copy=False)
        return cls(
            x=x,
            y=np.concatenate([ys, yt_]).astype(np.int64),
            sample_domain=np.concatenate([np.full(len(xs), SOURCE), np.full(len(xt), TARGET)]),
            domain_names={SOURCE: source_name, TARGET: target_name},
            classes=list(classes) if classes is not None else [],
            name=name,
        )

    # -- checks -------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`DataError` on inconsistent lengths, NaN/inf, labels outside the classes,
        an empty source domain. An empty target domain is allowed (plain fine-tuning on labelled
        source data); what needs target samples (adaptation methods, label-free selection, shift
        tests) checks for them where it uses them."""
        n = len(self.x)
        if self.y.shape != (n,) or self.sample_domain.shape != (n,):
            raise DataError(f"{self.name}: {n} samples but y has shape {self.y.shape} and "
                            f"sample_domain {self.sample_domain.shape}; give one label and one domain id per sample")
        if self.x.dtype.kind not in "fc":
            raise DataError(f"{self.name}: samples must be numeric, got dtype {self.x.dtype}")
        finite = np.isfinite(self.x.reshape(n, -1)).all(axis=1) if n else np.ones(0, bool)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise DataError(
                f"{self.name}: {bad.size} sample(s) contain NaN or infinite features (first rows: "
                f"{bad[:5].tolist()}); impute or drop them before adaptation"
            )
        if not (self.sample_domain >= 0).any():
            raise DataError(f"{self.name}: the source domain has no samples")
        k = len(self.classes)
        bad_labels = (self.y < -1) | (self.y >= k)
        if bad_labels.any():
            vals = np.unique(self.y[bad_labels])[:5].tolist()
            raise DataError(
                f"{self.name}: labels {vals} are outside the declared classes 0..{k - 1} "
                f"({k} classes); map labels to 0..{k - 1} and use -1 for unknown"
            )
        src_labels = self.y[(self.sample_domain >= 0)]
        if (src_labels < 0).all():
            raise DataError(f"{self.name}: the source domain has no labelled samples")

    # -- views --------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def num_features(self) -> int:
        return int(np.prod(self.sample_shape))

    @property
    def is_source(self) -> np.ndarray:
        return self.sample_domain >= 0

    def subset(self, mask: np.ndarray) -> "DomainDataset":
        """Rows selected by a boolean mask or an index array (no validation of emptiness)."""
        ds = object.__new__(DomainDataset)
        ds.__dict__.update(self.__dict__)
        ds.x, ds.y, ds.sample_domain = self.x[mask], self.y[mask], self.sample_domain[mask]
        return ds

    def source(self) -> "DomainDataset":
        return self.subset(self.is_source)

    def target(self) -> "DomainDataset":
        return self.subset(~self.is_source)

    def without_target_labels(self) -> "DomainDataset":
        """A copy whose target labels are -1: what every adaptation method is given."""
        y = self.y.copy()
        y[~self.is_source] = -1
        return replace(self, y=y)

    def to_numpy(self, *, flatten: bool = True, mask_target: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, y, sample_domain)`` with samples flattened to 2-D and target labels masked."""
        x = self.x.reshape(len(self.x), -1) if flatten else self.x
        y = self.y.copy()
        if mask_target:
            y[~self.is_source] = -1
        return x, y, self.sample_domain.copy()

    def to_torch(self) -> dict[str, Any]:
        """Tensors ``x`` (float32), ``y`` (int64) and ``sample_domain`` (int64)."""
        import torch

        return {
            "x": torch.as_tensor(np.ascontiguousarray(self.x), dtype=torch.float32),
            "y": torch.as_tensor(self.y),
            "sample_domain": torch.as_tensor(self.sample_domain),
        }

    def summary(self) -> dict[str, Any]:
        src, tgt = self.is_source, ~self.is_source
        return {
            "name": self.name, "num_classes": self.num_classes, "sample_shape": list(self.sample_shape),
            "source": {"name": self.domain_names.get(SOURCE, "source"), "n": int(src.sum())},
            "target": {"name": self.domain_names.get(TARGET, "target"), "n": int(tgt.sum()),
                       "labelled": int((self.y[tgt] >= 0).sum())},
        }

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class Task:
    """One adaptation problem: ``train`` holds labelled source and unlabelled target samples
    (target labels are always -1 there); ``x_test``/``y_test`` are labelled target samples used
    only to measure accuracy (the oracle column), never to choose anything.
    """

    name: str
    train: DomainDataset
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    benchmark: str | None = None
    notes: str = ""
    #: name of this task's benchmark in ``reference_results.csv`` when it differs from ``benchmark``
    reference: str | None = None

    def __post_init__(self) -> None:
        self.train = self.train.without_target_labels()
        if (self.x_test is None) != (self.y_test is None):
            raise DataError(f"{self.name}: give both x_test and y_test, or neither")
        if self.x_test is not None and self.y_test is not None:
            self.x_test = np.asarray(self.x_test, dtype=np.float32)
            self.y_test = np.asarray(self.y_test).astype(np.int64)
            if not len(self.x_test):
                raise DataError(f"{self.name}: the labelled test set has no samples; give labelled target "
                                "samples to measure accuracy on, or none at all")
            if self.x_test.shape[1:] != self.train.sample_shape:
                raise DataError(f"{self.name}: test samples have shape {self.x_test.shape[1:]} "
                                f"but training samples have {self.train.sample_shape}")
            if self.y_test.shape != (len(self.x_test),):
                raise DataError(f"{self.name}: {len(self.x_test)} test samples but test labels "
                                f"have shape {self.y_test.shape}")
            bad = (self.y_test < 0) | (self.y_test >= self.train.num_classes)
            if bad.any():
                raise DataError(f"{self.name}: test labels {np.unique(self.y_test[bad])[:5].tolist()} "
                                f"are outside the classes 0..{self.train.num_classes - 1}")
            if not np.isfinite(self.x_test.reshape(len(self.x_test), -1)).all():
                raise DataError(f"{self.name}: test samples contain NaN or infinite features")

    @property
    def num_classes(self) -> int:
        return self.train.num_classes

    @property
    def has_test(self) -> bool:
        return self.x_test is not None


def make_task(
    xs: np.ndarray, ys: np.ndarray, xt_train: np.ndarray, xt_test: np.ndarray | None = None,
    yt_test: np.ndarray | None = None, *, name: str, source_name: str = "source",
    target_name: str = "target", classes: Sequence[str] | None = None,
    benchmark: str | None = None, notes: str = "", reference: str | None = None,
) -> Task:
    """A :class:`Task` from arrays: unlabelled ``xt_train`` for adaptation, labelled ``xt_test``
    for evaluation (they may be the same array: the transductive protocol of shallow papers)."""
    ys = np.asarray(ys)
    if classes is None:
        top = ys.max(initial=-1) if yt_test is None else max(ys.max(initial=-1), np.max(yt_test, initial=-1))
        classes = [str(c) for c in range(int(top) + 1)]
    train = DomainDataset.from_arrays(xs, ys, xt_train, None, source_name=source_name,
                                      target_name=target_name, classes=classes, name=name)
    return Task(name=name, train=train, x_test=xt_test, y_test=yt_test, benchmark=benchmark, notes=notes,
                reference=reference)
