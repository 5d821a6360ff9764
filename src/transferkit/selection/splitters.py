"""Domain-aware cross-validation splitters with the scikit-learn splitter API.

Both take the skada convention: ``sample_domain >= 0`` marks source samples (one id per source
domain), ``< 0`` target samples, passed as ``groups`` (so ``cross_validate(..., groups=sd,
cv=splitter)`` and ``GridSearchCV(...).fit(X, y, groups=sd)`` work) or as ``sample_domain=``.
Without either, samples with ``y == -1`` are target and the others source (one source domain).

- :class:`SourceTargetShuffleSplit`: hold out a stratified share of the labelled source for
  validation; the target stays unlabelled and is in both parts (transductive UDA) or split too.
- :class:`LeaveOneDomainOut`: multi-source data; each source domain in turn is the labelled
  validation domain (DomainBed's "leave-one-domain-out" selection, Gulrajani & Lopez-Paz 2021).

Splitters yield index arrays only; they never read target labels (target ``y`` may be -1).
numpy at import; scikit-learn inside :meth:`split`.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from transferkit.core.errors import ConfigError, DataError


def _domains(X: Any, y: Any, groups: Any, sample_domain: Any, who: str) -> tuple[int, np.ndarray]:
    n = len(X) if X is not None else None
    if groups is not None and sample_domain is not None:
        if not np.array_equal(np.asarray(groups), np.asarray(sample_domain)):
            raise ConfigError(f"{who}.split: pass the domain ids as groups or as sample_domain, not "
                              "two different arrays")
    sd = sample_domain if sample_domain is not None else groups
    if sd is None:
        if y is None:
            raise DataError(f"{who}.split: needs sample_domain (as groups= or sample_domain=) or y "
                            "with -1 marking the unlabelled target samples")
        sd = np.where(np.asarray(y) == -1, -1, 0)
    sd = np.asarray(sd)
    if sd.ndim != 1 or sd.dtype.kind not in "iub":
        raise DataError(f"{who}.split: sample_domain must be a 1-D integer array (>= 0 source, "
                        f"< 0 target), got shape {sd.shape} and dtype {sd.dtype}")
    if n is not None and len(sd) != n:
        raise DataError(f"{who}.split: X has {n} rows but sample_domain has {len(sd)}")
    return len(sd), sd.astype(np.int64)


def _check_fraction(value: Any, name: str, who: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 < value < 1:
        raise ConfigError(f"{who}: {name} must be a fraction in (0, 1), got {value!r}")


class SourceTargetShuffleSplit:
    """Random source/target splits for label-free validation of domain adaptation.

    Each of ``n_splits`` splits holds out ``test_size`` of the source samples (stratified by
    class with ``stratify=True``) as labelled validation data. Target samples are unlabelled:
    with ``target_test_size=None`` every target sample is in both ``train`` (to adapt on) and
    ``test`` (so validators see target predictions) -- the transductive UDA protocol; with a
    fraction, that share of the target goes to ``test`` only (inductive).

    ``split(X, y=None, groups=None, *, sample_domain=None)`` yields ``(train, test)`` index
    arrays; ``groups`` is the ``sample_domain`` array. ``y`` must hold the source labels
    (target entries may be -1; they are never read).
    """

    def __init__(self, n_splits: int = 5, *, test_size: float = 0.2,
                 target_test_size: float | None = None, stratify: bool = True,
                 random_state: int | None = None) -> None:
        self.n_splits = n_splits
        self.test_size = test_size
        self.target_test_size = target_test_size
        self.stratify = stratify
        self.random_state = random_state

    def __repr__(self) -> str:
        return (f"SourceTargetShuffleSplit(n_splits={self.n_splits}, test_size={self.test_size}, "
                f"target_test_size={self.target_test_size}, stratify={self.stratify}, "
                f"random_state={self.random_state})")

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return int(self.n_splits)

    def split(self, X: Any, y: Any = None, groups: Any = None, *,
              sample_domain: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        who = "SourceTargetShuffleSplit"
        if isinstance(self.n_splits, bool) or not isinstance(self.n_splits, (int, np.integer)) \
                or self.n_splits < 1:
            raise ConfigError(f"{who}: n_splits must be an integer >= 1, got {self.n_splits!r}")
        _check_fraction(self.test_size, "test_size", who)
        _check_fraction(self.target_test_size, "target_test_size", who, allow_none=True)
        n, sd = _domains(X, y, groups, sample_domain, who)
        src = np.flatnonzero(sd >= 0)
        tgt = np.flatnonzero(sd < 0)
        if src.size < 2:
            raise DataError(f"{who}.split: needs at least 2 source samples (sample_domain >= 0), "
                            f"got {src.size}")
        from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

        rs = np.random.default_rng(self.random_state)
        seeds = rs.integers(2**31 - 1, size=2)
        if self.stratify:
            if y is None:
                raise DataError(f"{who}.split: stratify=True needs the source labels y")
            ys = np.asarray(y)[src]
            if ys.dtype.kind in "iuf" and (ys < 0).any():
                raise DataError(f"{who}.split: {int((ys < 0).sum())} source samples have no label "
                                "(-1); source samples must be labelled")
            classes, counts = np.unique(ys, return_counts=True)
            if counts.min() < 2:
                raise DataError(f"{who}.split: class {classes[counts.argmin()]!r} has a single source "
                                "sample, too few to stratify; pass stratify=False")
            n_test = int(np.ceil(self.test_size * src.size))
            if n_test < classes.size or src.size - n_test < classes.size:
                raise DataError(f"{who}.split: test_size={self.test_size} of {src.size} source samples "
                                f"cannot hold every one of the {classes.size} classes on both sides; "
                                "change test_size or pass stratify=False")
            s_iter = StratifiedShuffleSplit(self.n_splits, test_size=self.test_size,
                                            random_state=int(seeds[0])).split(src, ys)
        else:
            s_iter = ShuffleSplit(self.n_splits, test_size=self.test_size,
                                  random_state=int(seeds[0])).split(src)
        if self.target_test_size is not None:
            if tgt.size < 2:
                raise DataError(f"{who}.split: target_test_size needs at least 2 target samples, "
                                f"got {tgt.size}")
            t_iter = ShuffleSplit(self.n_splits, test_size=self.target_test_size,
                                  random_state=int(seeds[1])).split(tgt)
        else:
            t_iter = iter([(np.arange(tgt.size), np.arange(tgt.size))] * int(self.n_splits))
        for (s_tr, s_te), (t_tr, t_te) in zip(s_iter, t_iter):
            train = np.sort(np.concatenate([src[s_tr], tgt[t_tr]]))
            test = np.sort(np.concatenate([src[s_te], tgt[t_te]]))
            yield train, test


class LeaveOneDomainOut:
    """Leave one source domain out, for multi-source data.

    For each source domain ``d`` (each distinct ``sample_domain >= 0``), ``test`` is domain ``d``
    (labelled, a stand-in for the target when judging a method) and ``train`` the other source
    domains plus, with ``include_target=True``, the unlabelled target samples (``sample_domain <
    0``). At least two source domains are needed. ``max_n_splits`` keeps that many held-out
    domains, chosen at random with ``random_state`` (None: all, in increasing id order).

    ``split(X, y=None, groups=None, *, sample_domain=None)``; ``groups`` is ``sample_domain``.
    """

    def __init__(self, *, include_target: bool = True, max_n_splits: int | None = None,
                 random_state: int | None = None) -> None:
        self.include_target = include_target
        self.max_n_splits = max_n_splits
        self.random_state = random_state

    def __repr__(self) -> str:
        return (f"LeaveOneDomainOut(include_target={self.include_target}, "
                f"max_n_splits={self.max_n_splits}, random_state={self.random_state})")

    def _held_out(self, sd: np.ndarray) -> np.ndarray:
        who = "LeaveOneDomainOut"
        doms = np.unique(sd[sd >= 0])
        if doms.size < 2:
            raise DataError(f"{who}.split: needs at least 2 source domains (distinct sample_domain "
                            f">= 0), got {doms.size}: {doms.tolist()}")
        m = self.max_n_splits
        if m is not None:
            if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
                raise ConfigError(f"{who}: max_n_splits must be an integer >= 1 or None, got {m!r}")
            if m < doms.size:
                pick = np.random.default_rng(self.random_state).choice(doms.size, m, replace=False)
                doms = np.sort(doms[pick])
        return doms

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        if groups is None:
            raise ConfigError("LeaveOneDomainOut.get_n_splits: pass groups=sample_domain")
        return int(self._held_out(np.asarray(groups, dtype=np.int64)).size)

    def split(self, X: Any, y: Any = None, groups: Any = None, *,
              sample_domain: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        _, sd = _domains(X, y, groups, sample_domain, "LeaveOneDomainOut")
        tgt = sd < 0
        for d in self._held_out(sd):
            test = np.flatnonzero(sd == d)
            keep = (sd >= 0) & (sd != d)
            if self.include_target:
                keep |= tgt
            yield np.flatnonzero(keep), test
