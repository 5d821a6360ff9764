"""Optimal transport for domain adaptation (Courty, Flamary, Tuia & Rakotomamonjy, "Optimal Transport
for Domain Adaptation", IEEE TPAMI 39(9), 2017), through POT (``ot.da``; optional extra ``ot``).

A coupling ``G`` (n_s, n_t) between the uniform source and target empirical distributions solves

    min_G  <G, M> + reg_e * sum G log G + reg_cl * Omega_c(G)
    s.t.   G 1 = 1/n_s,  G'1 = 1/n_t,  G >= 0,

with ``M_ij = ||xs_i - xt_j||^2`` normalised by ``norm`` (``"median"``: divided by its median, so
that ``reg_e`` is in units of a typical cost and the same defaults fit any feature scale). Three
variants:

- ``ot_emd``: exact OT (``reg_e = reg_cl = 0``, network simplex);
- ``ot_sinkhorn``: entropic OT (``reg_cl = 0``, Sinkhorn);
- ``ot_class_reg``: entropic OT plus a class regulariser ``Omega_c`` that makes each target sample
  receive mass from source samples of one class: group lasso ``l1l2`` (the TPAMI paper's
  generalised conditional gradient) or ``lpl1`` (Courty et al. 2014).

Source samples are then moved by the barycentric mapping ``xs_i -> n_s sum_j G_ij xt_j`` and a
classifier (paper: 1-nearest neighbour) is trained on the mapped source and applied to target
features unchanged. The solvers are POT's (``ot.emd``, ``ot.sinkhorn``, ``ot.da.sinkhorn_l1l2_gl``,
``ot.da.sinkhorn_lpl1_mm``, called as ``ot.da``'s transport classes call them); nothing is
re-implemented. Entropic OT uses POT's plain Sinkhorn when ``max(M) / reg_e`` is small enough for
``exp(-M / reg_e)`` not to underflow, else its log-domain variant (``method="auto"``).

Defaults (fixed in advance, never tuned on target labels): 1-NN as in the paper, ``norm="median"``,
``reg_e = 0.1`` (the kernel ``exp(-M / reg_e)`` then separates a cost at half the median from one at
the median by a factor ``e^5``), ``reg_cl = 0.1`` (POT's default). Shapes: ``X`` (n, d);
``coupling_`` (n_s, n_t).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferkit.core.errors import ConfigError
from transferkit.core.registries import SHALLOW
from transferkit.shallow.base import DAClassifier

_NORMS = (None, "median", "max", "log", "loglog")
_METRICS = ("sqeuclidean", "euclidean", "cityblock", "cosine")


#: above this ``max(M) / reg``, ``exp(-M / reg)`` risks underflow in plain (non-log) Sinkhorn
_MAX_EXPONENT = 300.0


def import_pot() -> Any:
    """The ``ot`` module (POT), with an install hint when POT is missing."""
    try:
        import ot
        import ot.da
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the optimal-transport methods need POT: pip install 'transferkit[ot]' "
                          "(or pip install pot)") from exc
    return ot


def barycentric_map(G: np.ndarray, Xs: np.ndarray, Xt: np.ndarray) -> np.ndarray:
    """``xs_i -> sum_j G_ij xt_j / sum_j G_ij``; rows that receive no mass keep their features."""
    mass = G.sum(axis=1)
    out = Xs.copy()
    ok = mass > 0
    out[ok] = (G[ok] / mass[ok, None]) @ Xt
    return out


class _OTMapping(DAClassifier):
    """Common part: the cost matrix, a POT coupling, the barycentric map, ``estimator``."""

    def _coupling(self, ot: Any, a: np.ndarray, b: np.ndarray, M: np.ndarray, ys: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check_params(self) -> None:
        if self.metric not in _METRICS:
            raise ConfigError(f"metric={self.metric!r} is not supported; choose one of {', '.join(map(repr, _METRICS))}")
        if self.norm not in _NORMS:
            raise ConfigError(f"norm={self.norm!r} is not supported; choose one of {', '.join(map(repr, _NORMS))}")
        for name in ("reg_e", "reg_cl", "tol"):
            v = getattr(self, name, 1.0)
            if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, bool) or not np.isfinite(v) or v <= 0:
                raise ConfigError(f"{name}={v!r} must be a positive number")
        for name in ("max_iter", "max_inner_iter"):
            v = getattr(self, name, 1)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name}={v!r} must be a positive integer")

    def _adapt(self, Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._check_params()
        ot = import_pot()
        M = ot.utils.cost_normalization(ot.dist(Xs, Xt, metric=self.metric), self.norm)
        a = np.full(len(Xs), 1.0 / len(Xs))
        b = np.full(len(Xt), 1.0 / len(Xt))
        G = np.asarray(self._coupling(ot, a, b, np.ascontiguousarray(M, dtype=np.float64), ys), dtype=np.float64)
        if not np.isfinite(G).all() or G.sum() <= 0:
            raise ConfigError(f"{type(self).__name__}: the transport plan is not finite (numerical underflow); "
                              "use norm='median' or a larger reg_e")
        self.coupling_ = G
        return barycentric_map(G, Xs, Xt), Xt

    def _transform_target(self, X: np.ndarray) -> np.ndarray:
        return X

    def _check_exponent(self, M: np.ndarray, reg: float) -> None:
        ratio = float(M.max()) / reg
        if ratio > _MAX_EXPONENT:
            raise ConfigError(
                f"{type(self).__name__}: max(cost) / reg_e = {ratio:.3g} makes exp(-cost / reg_e) underflow in "
                f"POT's class-regularised Sinkhorn; use norm='median' (or 'max') or a larger reg_e")


@SHALLOW.register("ot_emd", description="Exact optimal transport + barycentric mapping of the source (Courty et al. 2017)")
class OTEMD(_OTMapping):
    """Exact OT (earth mover's distance, POT ``ot.emd``), barycentric mapping of the source,
    then ``estimator`` (paper: 1-NN) on the mapped source (Courty et al., TPAMI 2017).

    Parameters: ``metric`` of the ground cost (``"sqeuclidean"``), ``norm`` of the cost matrix
    (``None``, ``"median"``, ``"max"``, ``"log"``, ``"loglog"``), ``max_iter`` of the network
    simplex, ``estimator`` (classifier name or estimator).
    """

    def __init__(self, *, metric: str = "sqeuclidean", norm: str | None = None, max_iter: int = 100000,
                 estimator: Any = "1nn") -> None:
        self.metric = metric
        self.norm = norm
        self.max_iter = max_iter
        self.estimator = estimator

    def _coupling(self, ot: Any, a: np.ndarray, b: np.ndarray, M: np.ndarray, ys: np.ndarray) -> np.ndarray:
        return ot.emd(a, b, M, numItermax=int(self.max_iter))


@SHALLOW.register("ot_sinkhorn", description="Entropic optimal transport (Sinkhorn) + barycentric mapping (Courty et al. 2017)")
class OTSinkhorn(_OTMapping):
    """Entropic OT (POT ``ot.sinkhorn``), barycentric mapping of the source, then ``estimator``
    (Courty et al., TPAMI 2017).

    Parameters: ``reg_e`` entropic regularisation (in the units of the normalised cost), ``metric``,
    ``norm``, ``method`` (``"auto"``: plain Sinkhorn unless ``exp(-M / reg_e)`` could underflow, then
    log-domain; or a POT method name), ``max_iter`` and ``tol`` of Sinkhorn, ``estimator``.
    """

    def __init__(self, *, reg_e: float = 0.1, metric: str = "sqeuclidean", norm: str | None = "median",
                 method: str = "auto", max_iter: int = 1000, tol: float = 1e-8, estimator: Any = "1nn") -> None:
        self.reg_e = reg_e
        self.metric = metric
        self.norm = norm
        self.method = method
        self.max_iter = max_iter
        self.tol = tol
        self.estimator = estimator

    def _check_params(self) -> None:
        if self.method not in ("auto", "sinkhorn", "sinkhorn_log", "sinkhorn_stabilized"):
            raise ConfigError(f"method={self.method!r} is not supported; choose 'auto', 'sinkhorn', "
                              "'sinkhorn_log' or 'sinkhorn_stabilized'")
        super()._check_params()

    def _coupling(self, ot: Any, a: np.ndarray, b: np.ndarray, M: np.ndarray, ys: np.ndarray) -> np.ndarray:
        method = self.method
        if method == "auto":
            method = "sinkhorn" if float(M.max()) / float(self.reg_e) <= _MAX_EXPONENT else "sinkhorn_log"
        self.method_ = method
        return ot.sinkhorn(a, b, M, float(self.reg_e), method=method, numItermax=int(self.max_iter),
                           stopThr=float(self.tol))


@SHALLOW.register("ot_class_reg", description="Class-regularised entropic OT (group lasso) + barycentric mapping (Courty et al. 2017)")
class OTClassReg(_OTMapping):
    """Entropic OT with a class regulariser on the source labels (Courty et al., TPAMI 2017):
    ``penalty="l1l2"`` group lasso (POT ``ot.da.sinkhorn_l1l2_gl``, generalised conditional gradient)
    or ``"lpl1"`` (``ot.da.sinkhorn_lpl1_mm``, majoration-minimisation); barycentric mapping of the
    source, then ``estimator``.

    Parameters: ``reg_e`` entropic and ``reg_cl`` class regularisation, ``penalty``, ``metric``,
    ``norm``, ``max_iter`` outer and ``max_inner_iter`` Sinkhorn iterations, ``tol``, ``estimator``.
    """

    def __init__(self, *, reg_e: float = 0.1, reg_cl: float = 0.1, penalty: str = "l1l2",
                 metric: str = "sqeuclidean", norm: str | None = "median", max_iter: int = 10,
                 max_inner_iter: int = 200, tol: float = 1e-8, estimator: Any = "1nn") -> None:
        self.reg_e = reg_e
        self.reg_cl = reg_cl
        self.penalty = penalty
        self.metric = metric
        self.norm = norm
        self.max_iter = max_iter
        self.max_inner_iter = max_inner_iter
        self.tol = tol
        self.estimator = estimator

    def _check_params(self) -> None:
        if self.penalty not in ("l1l2", "lpl1"):
            raise ConfigError(f"penalty={self.penalty!r} is not supported; choose 'l1l2' (group lasso) or 'lpl1'")
        super()._check_params()

    def _coupling(self, ot: Any, a: np.ndarray, b: np.ndarray, M: np.ndarray, ys: np.ndarray) -> np.ndarray:
        self._check_exponent(M, float(self.reg_e))
        solver = ot.da.sinkhorn_l1l2_gl if self.penalty == "l1l2" else ot.da.sinkhorn_lpl1_mm
        return solver(a, ys, b, M, float(self.reg_e), eta=float(self.reg_cl), numItermax=int(self.max_iter),
                      numInnerItermax=int(self.max_inner_iter), stopInnerThr=float(self.tol))
