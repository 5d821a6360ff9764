"""mSDA: marginalized stacked denoising autoencoders (Chen, Xu, Weinberger & Sha, "Marginalized
Denoising Autoencoders for Domain Adaptation", ICML 2012).

An unsupervised representation learned in closed form on the unlabelled rows of both domains.
Each layer is a linear denoiser ``W`` (``d x (d+1)``, the last column a bias) that reconstructs
every input from a copy whose features were dropped (set to 0) with probability ``noise``, in
expectation over infinitely many such corruptions. With ``X`` the rows (n, d) plus a constant
column, ``S = X'X`` and the survival vector ``q = (1 - noise, ..., 1 - noise, 1)``:

    E[x~ x~'] = Q,  Q_ij = S_ij q_i q_j (i != j),  Q_ii = S_ii q_i
    E[x x~']  = P,  P_ij = S_ij q_j                 (the d data rows of S)
    W = P (Q + reg I)^-1                             (reg: a small ridge, not on the bias)

and the layer's output is ``h = tanh(W [x; 1])``. Layers are stacked (each one's input is the
previous output) and the representation is the concatenation of the input and every layer's
output, ``(n, d (layers + 1))``: 30,000-d for 5,000-d reviews and 5 layers, as in the DANN
paper's mSDA experiments (Ganin et al., JMLR 2016, Sec. 5.1.3).

Cost per layer: ``S`` in ``O(n d^2)`` and one ``(d+1) x (d+1)`` symmetric solve in ``O(d^3)``.
No label is used; fit on the source and target rows together.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import linalg

from transferkit.core.errors import ConfigError, DataError
from transferkit.core.registries import SHALLOW
from transferkit.shallow.base import DAClassifier

__all__ = ["MSDA", "msda_fit", "msda_fit_transform", "msda_transform"]


def check_params(noise: float, layers: int, reg: float) -> None:
    """A clear error for a corruption probability outside [0, 1), a non-positive layer count or a
    negative ridge."""
    if not isinstance(noise, (int, float)) or not 0 <= noise < 1:
        raise ConfigError(f"got {noise!r}; expected a corruption probability in [0, 1)", "noise")
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
        raise ConfigError(f"got {layers!r}; expected a positive number of layers", "layers")
    if not isinstance(reg, (int, float)) or reg < 0:
        raise ConfigError(f"got {reg!r}; expected a ridge >= 0", "reg")


def _layer(h: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``tanh(W [h; 1])`` row by row, without building the bias-extended copy of ``h``."""
    return np.tanh(h @ w[:, :-1].T + w[:, -1])


def _denoiser(h: np.ndarray, noise: float, reg: float) -> np.ndarray:
    """One marginalized denoising layer's ``W`` ``(d, d+1)`` for rows ``h`` ``(n, d)``."""
    n, d = h.shape
    s = np.empty((d + 1, d + 1))  # [h, 1]' [h, 1], by blocks
    s[:d, :d] = h.T @ h
    s[:d, d] = s[d, :d] = h.sum(axis=0)
    s[d, d] = n
    q = np.full(d + 1, 1.0 - noise)
    q[-1] = 1.0
    diag = np.diag(s) * q
    Q = s * np.outer(q, q)
    Q[np.diag_indices_from(Q)] = diag
    Q[np.arange(d), np.arange(d)] += reg
    P = s[:d] * q  # (d, d+1)
    try:  # Q is symmetric positive (semi-)definite: Cholesky first
        wt = linalg.solve(Q, P.T, assume_a="pos", check_finite=False)
    except linalg.LinAlgError:
        wt = linalg.lstsq(Q, P.T, check_finite=False)[0]
    return wt.T


def msda_fit(X: Any, *, noise: float = 0.5, layers: int = 5, reg: float = 1e-5) -> list[np.ndarray]:
    """The ``layers`` denoisers ``W`` (each ``(d, d+1)``) of mSDA on unlabelled rows ``X`` (n, d)
    (module docstring). Computed in float64."""
    return msda_fit_transform(X, noise=noise, layers=layers, reg=reg)[0]


def msda_fit_transform(X: Any, *, noise: float = 0.5, layers: int = 5, reg: float = 1e-5,
                       dtype: Any = np.float32) -> tuple[list[np.ndarray], np.ndarray]:
    """``(weights, Z)``: :func:`msda_fit` on rows ``X`` and their representation
    ``Z = msda_transform(X, weights)``, from the same pass (each layer's output is computed once)."""
    check_params(noise, layers, reg)
    h = np.asarray(X, dtype=np.float64)
    if h.ndim != 2 or h.shape[0] == 0 or h.shape[1] == 0:
        raise DataError(f"mSDA: expected a non-empty 2-D array of rows (n, d), got shape {h.shape}")
    if not np.all(np.isfinite(h)):
        raise DataError("mSDA: the rows contain NaN or infinite values")
    d = h.shape[1]
    weights: list[np.ndarray] = []
    out = np.empty((h.shape[0], d * (layers + 1)), dtype=dtype)
    out[:, :d] = h
    for i in range(1, layers + 1):
        w = _denoiser(h, float(noise), float(reg))
        weights.append(w)
        h = _layer(h, w)
        out[:, i * d:(i + 1) * d] = h
    return weights, out


def msda_transform(X: Any, weights: list[np.ndarray], dtype: Any = np.float32) -> np.ndarray:
    """The mSDA representation of rows ``X`` (n, d): ``[X, h_1, ..., h_L]`` (n, d (L + 1))."""
    h = np.asarray(X, dtype=np.float64)
    if h.ndim != 2 or (weights and h.shape[1] != weights[0].shape[0]):
        raise DataError(f"mSDA: rows of shape {h.shape} do not match denoisers of "
                        f"{weights[0].shape[0] if weights else '?'} features; transform rows with the "
                        "features mSDA was fitted on")
    d = h.shape[1]
    out = np.empty((h.shape[0], d * (len(weights) + 1)), dtype=dtype)
    out[:, :d] = h
    for i, w in enumerate(weights, start=1):
        h = _layer(h, w)
        out[:, i * d:(i + 1) * d] = h
    return out


@SHALLOW.register("msda", description="mSDA: marginalized stacked denoising autoencoder features (Chen et al. 2012)")
class MSDA(DAClassifier):
    """mSDA (Chen et al., ICML 2012): denoisers learned in closed form on source + target rows
    (no labels), then ``estimator`` (paper: linear SVM) on the source's stacked representation,
    applied to the target's. ``noise``: feature-dropping probability; ``layers``: stacked layers;
    ``reg``: ridge of each layer's solve. Fitted: ``weights_`` (the layers' ``W``)."""

    def __init__(self, *, noise: float = 0.5, layers: int = 5, reg: float = 1e-5, estimator: Any = "svm") -> None:
        self.noise = noise
        self.layers = layers
        self.reg = reg
        self.estimator = estimator

    def _adapt(self, Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.weights_, z = msda_fit_transform(np.vstack([Xs, Xt]), noise=self.noise, layers=self.layers,
                                              reg=self.reg, dtype=np.float64)
        return z[:len(Xs)], z[len(Xs):]

    def _transform_target(self, X: np.ndarray) -> np.ndarray:
        return msda_transform(X, self.weights_)
