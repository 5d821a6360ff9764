"""Transferability scores: how well will a pretrained encoder (or source model) do on a labelled
target task, estimated without fine-tuning. Higher = more transferable for every score.

Feature scores take encoder features ``X`` ``(n, d)`` of the target samples and their labels
``(n,)``: :func:`logme`, :func:`hscore`, :func:`hscore_shrinkage`, :func:`gbc`, :func:`transrate`,
:func:`parc`, :func:`nleep`, :func:`sfda`. Probability scores take the source model's class probabilities ``(n, C_s)`` on the
target samples (source label space) and the target labels: :func:`leep`, :func:`nce`. Each is registered in
:data:`~transferkit.assess._registry.SCORES` with tag ``kind`` = ``"features"`` or ``"probs"``.
:func:`rank_encoders` scores several encoders at once.

Scores have no absolute scale; compare them across encoders on the *same* target data.
Labels may be any integers >= 0 or strings; ``-1`` (unknown) is refused.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from transferkit.assess._registry import SCORES
from transferkit.assess.shift import check_finite_matrix
from transferkit.core.errors import ConfigError, DataError


# ----------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------
def _encode_labels(labels: Any, n: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, codes)`` with ``codes`` in ``0..C-1``; refuses -1, NaN, length mismatch."""
    if labels is None:
        raise DataError(f"{name}: labels are missing (got None)")
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (n,):
        raise DataError(f"{name}: X has {n} rows but labels have shape {y.shape}; give one label "
                        "per sample")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise DataError(f"{name}: labels contain NaN or infinite values")
        if not np.all(y == np.round(y)):
            raise DataError(f"{name}: labels must be integer class ids (or strings), got fractional "
                            "values")
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iubOUS":
        raise DataError(f"{name}: labels must be integer class ids or strings, got dtype {y.dtype}")
    if y.dtype.kind in "iu" and (y < 0).any():
        raise DataError(f"{name}: {int((y < 0).sum())} labels are negative (-1 marks unknown labels); "
                        "transferability scores need labelled samples: drop those rows")
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"{name}: the labels hold a single class ({classes[0]!r}); at least two "
                        "classes are needed")
    return classes, codes.reshape(-1)


def _check_matrix(X: Any, name: str, what: str = "X") -> np.ndarray:
    if X is None:
        raise DataError(f"{name}: {what} is missing (got None)")
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise DataError(f"{name}: {what} must be 2-D (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise DataError(f"{name}: {what} is empty (0 samples)")
    if arr.shape[1] == 0:
        raise DataError(f"{name}: {what} has no columns (shape {arr.shape})")
    return check_finite_matrix(arr, f"{name} ({what})")


def check_features_labels(X: Any, labels: Any, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(features float64 (n, d), label codes (n,) in 0..C-1, classes (C,))``; raises DataError."""
    F = _check_matrix(X, name, "features")
    classes, codes = _encode_labels(labels, len(F), name)
    return F, codes, classes


def check_probabilities(P: Any, labels: Any, name: str, atol: float = 1e-3
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(probabilities (n, C_s), label codes, classes)``; rows must be non-negative and sum to 1."""
    P = _check_matrix(P, name, "source_probs")
    if (P < 0).any() or not np.allclose(P.sum(axis=1), 1.0, atol=atol):
        s = P.sum(axis=1)
        raise DataError(f"{name}: rows of source_probs must be probabilities (non-negative, summing "
                        f"to 1); row sums are in [{s.min():.4g}, {s.max():.4g}] and the minimum entry "
                        f"is {P.min():.4g}. Apply a softmax to logits first")
    classes, codes = _encode_labels(labels, len(P), name)
    return P, codes, classes


def _one_hot(codes: np.ndarray, C: int) -> np.ndarray:
    return np.eye(C)[codes]


# ----------------------------------------------------------------------------------------------
# LogME
# ----------------------------------------------------------------------------------------------
#: relative residual ||y - U U'y||^2 / ||y||^2 below which the features fit every one-hot label
#: column exactly (with rank < n, LogME's evidence then has no finite maximum)
INTERPOLATION_RTOL = 1e-9


class LogMEDegenerateWarning(UserWarning):
    """The features fit the labels exactly with rank below n (typically ``n < D`` with repeated
    samples): LogME's evidence has no finite maximum and its value is not meaningful."""


def _logme_fixed_point(s2: np.ndarray, z: np.ndarray, yy: np.ndarray, n: int, D: int,
                       max_iter: int, tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Evidence maximisation for every column of ``z`` at once.

    ``s2`` ``(r,)``: non-zero eigenvalues of ``F'F``; ``z`` ``(r, C)``: ``U' y`` for the left
    singular vectors ``U``; ``yy`` ``(C,)``: ``||y||^2``. Returns ``(evidence / n, alpha, beta,
    iterations)`` with arrays of shape ``(C,)``.
    """
    res0 = np.maximum(yy - np.sum(z * z, axis=0), 0.0)      # ||y - U U' y||^2
    z2 = z * z
    s2c = s2[:, None]
    tiny, huge = 1e-300, 1e300

    def moments(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, ...]:
        # In terms of t = alpha / beta, so that neither a vanishing noise (beta -> inf: features
        # that can interpolate the labels, n <= D) nor a vanishing prior overflows.
        t = alpha / beta
        shrink = s2c / (t + s2c)                              # beta s^2 / (alpha + beta s^2)
        log_denom = np.log(beta) + np.log(t + s2c)            # log eigenvalues of A
        gamma = np.sum(shrink, axis=0)
        mm = np.sum(shrink * z2 / (t + s2c), axis=0)          # m'm
        res = res0 + np.sum((1.0 - shrink) ** 2 * z2, axis=0)  # ||F m - y||^2
        return log_denom, gamma, mm, res

    C = z.shape[1]
    alpha, beta = np.ones(C), np.ones(C)
    it = 0
    for it in range(1, max_iter + 1):
        _, gamma, mm, res = moments(alpha, beta)
        new_alpha = np.clip(gamma / np.maximum(mm, tiny), 1e-300, huge)
        new_beta = np.clip((n - gamma) / np.maximum(res, tiny), 1e-300, huge)
        t_old, t_new = alpha / beta, new_alpha / new_beta
        alpha, beta = new_alpha, new_beta
        if np.all(np.abs(t_new - t_old) <= tol * np.abs(t_old)):
            break
    log_denom, gamma, mm, res = moments(alpha, beta)
    r = len(s2)
    logdet_A = np.sum(log_denom, axis=0) + (D - r) * np.log(alpha)
    evidence = (n / 2 * np.log(beta) + D / 2 * np.log(alpha) - n / 2 * math.log(2 * math.pi)
                - beta / 2 * res - alpha / 2 * mm - logdet_A / 2)
    return evidence / n, alpha, beta, it


def _spectrum(F: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-zero eigenvalues ``s^2`` of ``F'F`` and ``U'Y`` for the matching left singular vectors
    ``U`` of ``F``, from the eigendecomposition of the smaller Gram matrix (``F'F`` when
    ``n > D``, else ``FF'``) as in the LogME paper; eigenvalues below ``max * max(n, D) * eps``
    count as zero."""
    n, D = F.shape
    if n > D:
        w, V = np.linalg.eigh(F.T @ F)
    else:
        w, U = np.linalg.eigh(F @ F.T)
    keep = w > (w.max() * max(n, D) * np.finfo(float).eps if w.size and w.max() > 0 else np.inf)
    w = w[keep]
    if n > D:
        Z = (V[:, keep].T @ (F.T @ Y)) / np.sqrt(w)[:, None]      # U = F V / s
    else:
        Z = U[:, keep].T @ Y
    return w, Z


def logme_details(features: Any, labels: Any, *, max_iter: int = 100, tol: float = 1e-6
                  ) -> dict[str, Any]:
    """LogME per class: ``{"score", "evidence" (C,), "alpha" (C,), "beta" (C,), "classes",
    "n_iter"}``. See :func:`logme`."""
    F, codes, classes = check_features_labels(features, labels, "logme")
    n, D = F.shape
    Y = _one_hot(codes, len(classes))
    s2, Z = _spectrum(F, Y)
    yy = np.sum(Y * Y, axis=0)
    ev, alpha, beta, it = _logme_fixed_point(s2, Z, yy, n, D, max_iter, tol)
    # Labels fitted exactly by features of rank r < n: as the noise variance 1/beta -> 0 the
    # evidence gains (n - r)/2 log beta with no residual to pay, so it has no finite maximum.
    unbounded = len(s2) < n and bool(np.all(yy - np.sum(Z * Z, axis=0) <= INTERPOLATION_RTOL * yy))
    if unbounded:
        warnings.warn(
            f"logme: the {D}-d features (rank {len(s2)}) fit the labels of the {n} samples exactly, so "
            "the evidence has no finite maximum and the score reflects where the fixed point stopped, "
            "not transferability. Score more samples than feature dimensions, or reduce the features "
            "first (for example PCA to fewer components than samples)",
            LogMEDegenerateWarning, stacklevel=3)
    return {"score": float(np.mean(ev)), "evidence": ev, "alpha": alpha, "beta": beta,
            "classes": classes, "n_iter": it, "unbounded": unbounded}


@SCORES.register("logme", description="LogME: log maximum evidence of a Bayesian linear model on "
                                      "the features (You et al. 2021)", kind="features")
def logme(features: Any, labels: Any, *, max_iter: int = 100, tol: float = 1e-6) -> float:
    """LogME (You, Liu, Wang & Long, "LogME: Practical Assessment of Pre-trained Models for
    Transfer Learning", ICML 2021).

    For each class ``c`` the one-hot target ``y = 1[label = c]`` ``(n,)`` is modelled as
    ``y = F w + noise`` with prior ``w ~ N(0, alpha^-1 I_D)`` and noise ``N(0, beta^-1)``; the log
    evidence is ``log p(y | F, alpha, beta) = n/2 log beta + D/2 log alpha - n/2 log 2pi
    - beta/2 ||F m - y||^2 - alpha/2 m'm - 1/2 log|A|`` with ``A = alpha I + beta F'F``,
    ``m = beta A^-1 F' y``. It is maximised over ``(alpha, beta)`` by the paper's fixed point
    ``gamma = sum_i beta s_i^2 / (alpha + beta s_i^2)``, ``alpha = gamma / m'm``,
    ``beta = (n - gamma) / ||F m - y||^2`` computed in the singular basis of ``F`` (one
    eigendecomposition of the smaller Gram matrix, ``O(n D min(n, D) + min(n, D)^3)``, then
    ``O(min(n, D))`` per class and iteration), until ``alpha / beta`` changes by less than ``tol``
    (relative). Returns the mean over classes of the maximum evidence divided by ``n``.
    ``features`` ``(n, D)``, ``labels`` ``(n,)``.
    """
    return logme_details(features, labels, max_iter=max_iter, tol=tol)["score"]


# ----------------------------------------------------------------------------------------------
# LEEP and NCE (source-model probabilities)
# ----------------------------------------------------------------------------------------------
@SCORES.register("leep", description="LEEP: log expected empirical prediction of the source model "
                                     "(Nguyen et al. 2020)", kind="probs")
def leep(source_probs: Any, labels: Any) -> float:
    """LEEP (Nguyen, Hassner, Seeger & Archambeau, "LEEP: A New Measure to Evaluate
    Transferability of Learned Representations", ICML 2020).

    ``theta`` ``(n, Z)``: the source model's probabilities over its ``Z`` source classes on the
    ``n`` target samples; ``labels`` ``(n,)``: target labels. Empirical joint
    ``P(y, z) = 1/n sum_{i: y_i = y} theta_iz``, ``P(z) = sum_y P(y, z)``,
    ``P(y | z) = P(y, z) / P(z)``; ``LEEP = 1/n sum_i log(sum_z P(y_i | z) theta_iz)`` (<= 0).
    """
    P, codes, classes = check_probabilities(source_probs, labels, "leep")
    n = len(P)
    joint = _one_hot(codes, len(classes)).T @ P / n          # (C, Z)
    pz = joint.sum(axis=0)
    cond = np.divide(joint, pz, out=np.zeros_like(joint), where=pz > 0)
    eep = np.einsum("iz,iz->i", P, cond[codes])
    return float(np.mean(np.log(np.maximum(eep, 1e-300))))


@SCORES.register("nce", description="NCE: negative conditional entropy of target labels given the "
                                    "source model's hard labels (Tran et al. 2019)", kind="probs")
def nce(source_probs: Any, labels: Any) -> float:
    """Negative conditional entropy (Tran, Nguyen & Hassner, "Transferability and Hardness of
    Supervised Classification Tasks", ICCV 2019).

    ``z_i``: the source model's hard label of target sample ``i`` (argmax of ``source_probs``
    ``(n, Z)``, or hard labels ``(n,)`` given directly); ``y_i``: target label. With the empirical
    joint ``P(y, z) = #{i: y_i = y, z_i = z} / n``: ``NCE = -H(Y | Z) = sum_{y,z} P(y, z)
    log(P(y, z) / P(z))`` (<= 0; 0 when ``z`` determines ``y``), in nats.
    """
    arr = np.asarray(source_probs) if source_probs is not None else None
    if arr is not None and arr.ndim == 1:
        if arr.size == 0:
            raise DataError("nce: source labels are empty (0 samples)")
        zc_classes, zc = _hard_source_labels(arr)
        _, codes = _encode_labels(labels, len(arr), "nce")
        Zn = len(zc_classes)
    else:
        P, codes, _ = check_probabilities(source_probs, labels, "nce")
        zc = np.argmax(P, axis=1)
        Zn = P.shape[1]
    n = len(codes)
    C = int(codes.max()) + 1
    joint = np.zeros((C, Zn))
    np.add.at(joint, (codes, zc), 1.0)
    joint /= n
    pz = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    ratio = np.divide(joint, pz, out=np.ones_like(joint), where=nz)
    return float(np.sum(joint[nz] * np.log(ratio[nz])))


def _hard_source_labels(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if arr.dtype.kind == "f" and (not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr))):
        raise DataError("nce: 1-D source_probs are read as hard source labels and must be "
                            "integers; pass probabilities as (n, n_source_classes)")
    classes, codes = np.unique(arr, return_inverse=True)
    return classes, codes.reshape(-1)


# ----------------------------------------------------------------------------------------------
# H-score, GBC, TransRate (features)
# ----------------------------------------------------------------------------------------------
@SCORES.register("hscore", description="H-score: tr(cov(f)^-1 cov(E[f|y])), class separation of "
                                        "the features (Bao et al. 2019)", kind="features")
def hscore(features: Any, labels: Any, *, rcond: float = 1e-15) -> float:
    """H-score (Bao, Li, Huang, Zheng, Wornell & Zheng, "An Information-Theoretic Approach to
    Transferability in Task Transfer Learning", ICIP 2019).

    ``H(f) = tr(cov(f)^-1 cov(E[f | y]))`` with ``cov(f)`` the ``(d, d)`` feature covariance and
    ``E[f | y]`` each sample's class-mean feature vector (so ``cov(E[f|y])`` is the between-class
    covariance). Both covariances use ``n - 1``; the inverse is the pseudo-inverse with relative
    cut-off ``rcond`` (singular covariance when ``d >= n``). ``features`` ``(n, d)``,
    ``labels`` ``(n,)``. Cost ``O(n d^2 + d^3)``.
    """
    F, codes, classes = check_features_labels(features, labels, "hscore")
    if len(F) < 2:
        raise DataError("hscore: needs at least 2 samples")
    d = F.shape[1]
    C = len(classes)
    Y = _one_hot(codes, C)
    means = (Y.T @ F) / Y.sum(axis=0)[:, None]
    G = means[codes]
    cov_f = np.cov(F, rowvar=False).reshape(d, d)
    cov_g = np.cov(G, rowvar=False).reshape(d, d)
    return float(np.trace(np.linalg.pinv(cov_f, rcond=rcond, hermitian=True) @ cov_g))


def _principal_axes(F: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Fc, w, V)``: centred ``F`` and the eigenpairs of its :func:`_small_gram`, largest first
    (``w`` clipped at 0): with ``n >= d`` ``V`` holds the principal axes, else the left singular
    vectors (``Fc V_axes = V sqrt(w)``)."""
    Fc = F - F.mean(axis=0)
    w, V = np.linalg.eigh(_small_gram(Fc))
    return Fc, np.maximum(w[::-1], 0.0), V[:, ::-1]


def _project(Fc: np.ndarray, w: np.ndarray, V: np.ndarray, k: int) -> np.ndarray:
    """``Fc``'s scores on its top ``k`` principal axes, from :func:`_principal_axes`."""
    return Fc @ V[:, :k] if Fc.shape[0] >= Fc.shape[1] else V[:, :k] * np.sqrt(w[:k])


def _pca(F: np.ndarray, n_components: int | None) -> np.ndarray:
    """Centred ``F`` projected on its top ``n_components`` principal axes (all when None or
    larger), via the eigendecomposition of the smaller Gram matrix."""
    if n_components is None or n_components >= min(F.shape):
        return F - F.mean(axis=0)
    return _project(*_principal_axes(F), n_components)


@SCORES.register("gbc", description="GBC: minus the summed Bhattacharyya coefficients between "
                                     "per-class Gaussians (Pandy et al. 2022)", kind="features")
def gbc(features: Any, labels: Any, *, n_components: int | None = 64, min_variance: float = 1e-4
        ) -> float:
    """Gaussian Bhattacharyya Coefficient (Pandy, Agostinelli, Uijlings, Ferrari & Mensink,
    "Transferability Estimation using Bhattacharyya Class Separability", CVPR 2022).

    Features are reduced by PCA to ``n_components`` dimensions (default 64 as in the paper;
    ``None`` keeps all). Each class ``c`` is a Gaussian with mean ``mu_c`` and diagonal variance
    ``s_c`` (per-dimension, ``1/n_c`` normalisation, floored at ``min_variance``). With
    ``s = (s_i + s_j) / 2`` the Bhattacharyya distance is ``D_B = 1/8 sum (mu_i - mu_j)^2 / s
    + 1/2 sum log(s / sqrt(s_i s_j))`` and ``BC = exp(-D_B)``;
    ``GBC = - sum_i sum_{j != i} BC(c_i, c_j)`` (each unordered pair counted twice, as in the
    paper), in ``[-C(C-1), 0]``; higher = better separated classes. ``features`` ``(n, d)``.
    """
    if n_components is not None and (isinstance(n_components, bool) or
                                     not isinstance(n_components, (int, np.integer)) or n_components < 1):
        raise ConfigError(f"gbc: n_components must be a positive integer or None, got {n_components!r}")
    F, codes, classes = check_features_labels(features, labels, "gbc")
    Z = _pca(F, n_components)
    C = len(classes)
    Y = _one_hot(codes, C)
    counts = Y.sum(axis=0)[:, None]
    mu = (Y.T @ Z) / counts
    var = np.maximum((Y.T @ (Z - mu[codes]) ** 2) / counts, min_variance)
    s = (var[:, None, :] + var[None, :, :]) / 2
    db = (np.sum((mu[:, None, :] - mu[None, :, :]) ** 2 / s, axis=2) / 8
          + 0.5 * np.sum(np.log(s) - 0.5 * (np.log(var)[:, None, :] + np.log(var)[None, :, :]), axis=2))
    bc = np.exp(-db)
    np.fill_diagonal(bc, 0.0)
    return float(-bc.sum())


def coding_rate(Z: np.ndarray, eps: float) -> float:
    """``R(Z, eps) = 1/2 logdet(I_d + Z'Z / (n eps))`` for ``Z`` ``(n, d)`` (computed on the
    smaller of the ``d x d`` and ``n x n`` Gram matrices, which have the same determinant)."""
    n, d = Z.shape
    G = Z.T @ Z if d <= n else Z @ Z.T
    G = G / (n * eps)
    G[np.diag_indices_from(G)] += 1.0
    _, logdet = np.linalg.slogdet(G)
    return 0.5 * float(logdet)


@SCORES.register("transrate", description="TransRate: coding rate of the features minus their "
                                          "class-conditional coding rate (Huang et al. 2022)",
                 kind="features")
def transrate(features: Any, labels: Any, *, eps: float = 1e-4,
              class_weighting: str = "frequency") -> float:
    """TransRate (Huang, Huang, Rong, Yang & Wei, "Frustratingly Easy Transferability
    Estimation", ICML 2022): an estimate of the mutual information ``h(Z) - h(Z | Y)`` through
    coding rates (Ma, Derksen, Hong & Wright, TPAMI 2007).

    ``Z`` = centred features ``(n, d)``; ``R(Z, eps) = 1/2 logdet(I_d + Z'Z / (n eps))`` (``eps``
    absorbs the ``d / epsilon^2`` constant, as in the authors' released code, default ``1e-4``);
    ``R(Z, eps | Y) = sum_c w_c R(Z_c, eps)`` over the rows ``Z_c`` of class ``c`` with
    ``w_c = n_c / n`` (``class_weighting="frequency"``, the conditional rate) or ``1 / C``
    (``"uniform"``, the released code); ``TransRate = R(Z, eps) - R(Z, eps | Y)``. Scale
    dependent: compare encoders under the same preprocessing. Cost ``O(n d min(n, d))``.
    """
    if not isinstance(eps, (int, float)) or not eps > 0:
        raise ConfigError(f"transrate: eps must be a positive number, got {eps!r}")
    if class_weighting not in ("frequency", "uniform"):
        raise ConfigError(f"transrate: class_weighting={class_weighting!r}; choose 'frequency' or "
                          "'uniform'")
    F, codes, classes = check_features_labels(features, labels, "transrate")
    Z = F - F.mean(axis=0)
    n = len(Z)
    total = coding_rate(Z, eps)
    cond = 0.0
    for c in range(len(classes)):
        Zc = Z[codes == c]
        w = len(Zc) / n if class_weighting == "frequency" else 1.0 / len(classes)
        cond += w * coding_rate(Zc, eps)
    return float(total - cond)


# ----------------------------------------------------------------------------------------------
# shrinkage H-score, PARC
# ----------------------------------------------------------------------------------------------
def ledoit_wolf_shrinkage(X: np.ndarray) -> tuple[float, float]:
    """``(alpha, mu)`` of the Ledoit-Wolf covariance ``(1 - alpha) S + alpha mu I`` of the rows of
    ``X`` ``(n, d)`` (centred here; ``S = Xc'Xc / n``, ``mu = tr(S) / d``), Ledoit & Wolf, "A
    well-conditioned estimator for large-dimensional covariance matrices", JMVA 2004: with the
    normalised Frobenius norm ``|A|^2 = tr(AA') / d``, ``delta^2 = |S - mu I|^2``,
    ``beta^2 = min(delta^2, sum_k |x_k x_k' - S|^2 / n^2)`` and ``alpha = beta^2 / delta^2``
    (0 when ``S = mu I``). Cost ``O(n d min(n, d))``: the squared norms come from the smaller of
    ``Xc'Xc`` and ``Xc Xc'``."""
    Xc = np.asarray(X, dtype=np.float64)
    Xc = Xc - Xc.mean(axis=0)
    return _ledoit_wolf(Xc, _small_gram(Xc))


def _small_gram(Xc: np.ndarray) -> np.ndarray:
    """The smaller of ``Xc'Xc`` and ``Xc Xc'``: the same non-zero spectrum and Frobenius norm."""
    return Xc.T @ Xc if Xc.shape[1] <= Xc.shape[0] else Xc @ Xc.T


def _ledoit_wolf(Xc: np.ndarray, gram: np.ndarray) -> tuple[float, float]:
    """:func:`ledoit_wolf_shrinkage` of centred ``Xc`` given its :func:`_small_gram`."""
    n, d = Xc.shape
    s_sq = float(np.sum(gram * gram)) / n**2            # |S|_F^2 (unnormalised)
    mu = float(np.trace(gram)) / (n * d)
    row_sq = np.einsum("ij,ij->i", Xc, Xc)              # |x_k|^2
    delta = (s_sq - d * mu * mu) / d                    # |S - mu I|^2 = |S|^2 - 2 mu tr(S) + d mu^2, normalised
    beta = (float(np.sum(row_sq**2)) - n * s_sq) / (n**2 * d)
    if delta <= 0.0:
        return 0.0, mu
    return float(min(max(beta, 0.0), delta) / delta), mu


@SCORES.register("hscore_shrinkage", description="shrinkage H-score: H-score with the Ledoit-Wolf "
                                                  "feature covariance (Ibrahim et al. 2022)",
                 kind="features")
def hscore_shrinkage(features: Any, labels: Any) -> float:
    """Shrinkage-based H-score ``H_alpha`` (Ibrahim, Ponomareva & Mazumder, "Newer is not always
    better: Rethinking transferability metrics, their peculiarities, stability and performance",
    ECML-PKDD 2022): ``tr(cov_alpha(f)^-1 (1 - alpha) cov(E[f | y]))`` with the Ledoit-Wolf
    estimate ``cov_alpha(f) = (1 - alpha) S + alpha mu I`` (:func:`ledoit_wolf_shrinkage`) in place
    of the sample covariance, which :func:`hscore` inverts and which is ill-conditioned when ``d``
    is not small against ``n``. Both covariances use ``n``. Computed in the eigenbasis of the
    centred features' smaller Gram matrix (the class means lie in their row span), so ``d > n``
    costs ``O(n d min(n, d) + min(n, d)^3)``, not ``O(d^3)``.
    """
    F, codes, classes = check_features_labels(features, labels, "hscore_shrinkage")
    n = len(F)
    if n < 2:
        raise DataError("hscore_shrinkage: needs at least 2 samples")
    X = F - F.mean(axis=0)
    gram = _small_gram(X)
    alpha, mu = _ledoit_wolf(X, gram)
    if mu <= 0.0:
        raise DataError("hscore_shrinkage: every feature is constant; the score is undefined")
    Y = _one_hot(codes, len(classes))
    P = Y / Y.sum(axis=0)                               # class averaging: G = (P' X)[codes]
    w, E = np.linalg.eigh(gram)                         # X = U diag(sqrt(w)) V': E is V (d <= n) or U
    if X.shape[1] <= n:
        proj = (P.T @ X @ E)[codes]                     # G V
    else:
        proj = (P.T @ E)[codes] * np.sqrt(np.maximum(w, 0.0))   # G V = P'X X'U / sqrt(w) = P'U sqrt(w)
    lam = (1.0 - alpha) * np.maximum(w, 0.0) / n + alpha * mu   # eigenvalues of cov_alpha on that span
    between = np.sum(proj**2, axis=0) / n               # diagonal of V' cov(E[f|y]) V
    keep = lam > lam.max() * 1e-12                      # alpha = 0 with a null direction: G has none
    return float((1.0 - alpha) * np.sum(between[keep] / lam[keep]))


def _row_correlation_distances(Z: np.ndarray) -> np.ndarray:
    """``1 - corr(z_i, z_j)`` over the rows of ``Z``, as a condensed vector (``i < j``); a constant
    row has correlation 0 with every other row."""
    Zc = Z - Z.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(Zc, axis=1)
    Zn = np.divide(Zc, norm[:, None], out=np.zeros_like(Zc), where=norm[:, None] > 0)
    iu = np.triu_indices(len(Z), 1)
    return 1.0 - (Zn @ Zn.T)[iu]


@SCORES.register("parc", description="PARC: Spearman correlation of the pairwise sample "
                                      "dissimilarities of features and labels (Bolya et al. 2021)",
                 kind="features")
def parc(features: Any, labels: Any, *, n_components: int | None = 32, max_samples: int | None = 5000,
         seed: int = 0) -> float:
    """PARC (Bolya, Mittapalli & Hoffman, "Scalable Diverse Model Selection for Accessible Transfer
    Learning", NeurIPS 2021): 100 x the Spearman correlation between the representation
    dissimilarity matrices of the features and of the one-hot labels, over the pairs ``i < j``;
    dissimilarity = 1 - Pearson correlation of two samples' vectors.

    As in the authors' code, the features are projected on their top ``n_components`` principal
    axes (32; None keeps the features as they are), then z-scored per column. A sample's
    correlation depends on the sign of each axis, which PCA leaves open: each axis is oriented so
    that its largest-magnitude score is positive (scikit-learn's convention). The matrices have
    ``n^2`` entries: above ``max_samples`` samples a random subset of that size (``seed``) is
    scored (None: all).
    """
    F, codes, classes = check_features_labels(features, labels, "parc")
    if n_components is not None and (isinstance(n_components, bool) or not isinstance(n_components, int)
                                     or n_components < 1):
        raise ConfigError(f"parc: n_components must be a positive integer or None, got {n_components!r}")
    if max_samples is not None and (isinstance(max_samples, bool) or not isinstance(max_samples, int)
                                    or max_samples < 3):
        raise ConfigError(f"parc: max_samples must be an integer >= 3 or None, got {max_samples!r}")
    if len(F) < 3:
        raise DataError("parc: needs at least 3 samples")
    if max_samples is not None and len(F) > max_samples:
        idx = np.sort(np.random.default_rng(seed).choice(len(F), size=max_samples, replace=False))
        F, codes = F[idx], codes[idx]
    Z = _pca(F, n_components)
    if n_components is not None and n_components < min(F.shape):   # projected: orient the axes
        Z = Z * np.where(Z[np.argmax(np.abs(Z), axis=0), np.arange(Z.shape[1])] < 0, -1.0, 1.0)
    d_feat = _row_correlation_distances(standardize_columns(Z))
    d_lab = _row_correlation_distances(_one_hot(codes, len(classes)))
    from scipy.stats import spearmanr

    rho = float(spearmanr(d_feat, d_lab).statistic)
    return 0.0 if math.isnan(rho) else 100.0 * rho      # NaN: one side constant (e.g. a single class)


def _pca_variance(F: np.ndarray, fraction: float) -> np.ndarray:
    """Centred ``F`` projected on its fewest top principal axes whose variances sum to at least
    ``fraction`` of the total (``fraction`` = 1 keeps every axis with non-zero variance)."""
    Fc, w, V = _principal_axes(F)
    if w[0] <= 0.0:
        raise DataError("every feature is constant; there is no principal axis to keep")
    share = np.cumsum(w) / w.sum()
    k = min(int(np.searchsorted(share, fraction * (1 - 1e-12))) + 1, int(np.sum(w > w[0] * 1e-12)))
    return _project(Fc, w, V, k)


@SCORES.register("nleep", description="NLEEP: LEEP with a Gaussian mixture's posteriors on the PCA "
                                       "features in place of a source model's (Li et al. 2021)",
                 kind="features")
def nleep(features: Any, labels: Any, *, variance: float = 0.8, components_per_class: int = 5,
          covariance_type: str = "full", max_iter: int = 100, seed: int = 0) -> float:
    """NLEEP (Li, Jia, Wang, Ke, Lin & Gong, "Ranking Neural Checkpoints", CVPR 2021): LEEP
    (:func:`leep`) with the "source label" of a sample replaced by its posterior over the
    components of a Gaussian mixture fitted to the features, so that it needs features only.

    As in the paper: the features are projected on their fewest principal axes that keep
    ``variance`` (80 %) of the total variance; a mixture of ``components_per_class`` (5) x C
    Gaussians with ``covariance_type`` covariances ("full", as scikit-learn's default) is fitted by
    EM (``max_iter``, k-means initialisation with ``seed``); then ``LEEP(posteriors, labels)`` (<= 0;
    0 when the components determine the labels). With fewer samples than components, the count
    drops to the number of samples. Cost: one EM iteration is ``O(n K k^2)`` for ``k`` kept axes
    and ``K`` components.
    """
    F, codes, classes = check_features_labels(features, labels, "nleep")
    if isinstance(variance, bool) or not isinstance(variance, (int, float)) or not 0 < variance <= 1:
        raise ConfigError(f"nleep: variance must be a fraction in (0, 1], got {variance!r}")
    if isinstance(components_per_class, bool) or not isinstance(components_per_class, int) or components_per_class < 1:
        raise ConfigError(f"nleep: components_per_class must be a positive integer, got {components_per_class!r}")
    if covariance_type not in ("full", "tied", "diag", "spherical"):
        raise ConfigError(f"nleep: covariance_type must be 'full', 'tied', 'diag' or 'spherical', "
                          f"got {covariance_type!r}")
    if len(F) < 2:
        raise DataError("nleep: needs at least 2 samples")
    try:
        Z = _pca_variance(F, float(variance))
    except DataError as exc:
        raise DataError(f"nleep: {exc}") from exc
    from sklearn.mixture import GaussianMixture

    k = min(components_per_class * len(classes), len(Z))
    gmm = GaussianMixture(n_components=k, covariance_type=covariance_type, max_iter=max_iter, random_state=seed)
    try:
        gmm.fit(Z)
    except ValueError as exc:   # a component collapsed on too few distinct points
        raise DataError(f"nleep: the Gaussian mixture could not be fitted ({exc}); use "
                        "covariance_type='diag' or fewer components_per_class") from exc
    return leep(gmm.predict_proba(Z), codes)


def _within_scatter(F: np.ndarray, codes: np.ndarray, C: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class counts ``(C,)``, class means ``(C, d)`` and the within-class scatter ``(d, d)``,
    ``sum_c (n_c / n) cov_c = R'R / n`` with ``R`` the rows minus their class means."""
    counts = np.bincount(codes, minlength=C).astype(np.float64)
    means = np.zeros((C, F.shape[1]))
    np.add.at(means, codes, F)
    means /= counts[:, None]
    R = F - means[codes]
    return counts, means, (R.T @ R) / len(F)


def _shrunk_lda_posteriors(F: np.ndarray, codes: np.ndarray, C: int, shrinkage: float,
                           scatter: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Class posteriors of linear discriminant analysis with the within-class scatter shrunk
    towards its mean eigenvalue, ``(1 - shrinkage) S_w + shrinkage tr(S_w)/d I`` (class priors =
    frequencies), and the class means ``(C, d)``. ``scatter``: :func:`_within_scatter` of ``F``
    when already computed."""
    d = F.shape[1]
    counts, means, Sw = _within_scatter(F, codes, C) if scatter is None else scatter
    S = (1.0 - shrinkage) * Sw
    S.flat[:: d + 1] += shrinkage * float(np.trace(Sw)) / d
    try:
        coef = np.linalg.solve(S, means.T).T             # (C, d): S^-1 mu_c
    except np.linalg.LinAlgError as exc:
        raise DataError("the within-class scatter is singular; remove constant or duplicated "
                        "feature columns, or pass a larger shrinkage") from exc
    logits = F @ coef.T - 0.5 * np.einsum("cd,cd->c", means, coef) + np.log(counts / len(F))
    logits -= logits.max(axis=1, keepdims=True)
    P = np.exp(logits)
    return P / P.sum(axis=1, keepdims=True), means


@SCORES.register("sfda", description="SFDA: self-challenging Fisher discriminant analysis, the mean "
                                     "posterior of the true class after mixing hard samples towards "
                                     "the other classes (Shao et al. 2022)", kind="features")
def sfda(features: Any, labels: Any, *, a: float = 5.0, shrinkage: float | None = None) -> float:
    """SFDA (Shao, Zhao, Ge, Wang, Luo & Gong, "Not All Models Are Equal: Predicting Model
    Transferability in a Self-challenging Fisher Space", ECCV 2022). A transferability score, not
    source-free domain adaptation.

    1. *Regularised Fisher space.* The within-class scatter ``S_w`` (class covariances weighted by
       class frequency) is shrunk, ``(1 - lam) S_w + lam tr(S_w)/d I`` with
       ``lam = max(exp(-a sigma_max(S_w)), 1e-10)`` (``a`` = 5 as in the authors' code;
       ``sigma_max`` the largest eigenvalue, computed exactly here where the authors' code runs
       three power iterations; ``shrinkage`` fixes ``lam``). Projecting on every Fisher direction
       and classifying by Bayes' rule, as the authors' code does, is linear discriminant analysis
       with that scatter: posteriors ``p(c | x)``.
    2. *Self-challenge (ConfMix).* Each sample ``x`` of class ``y`` is moved towards the mean
       ``m_y`` of the other classes' means, ``x <- q x + (1 - q) m_y``, where ``q`` is its
       softened true-class posterior, ``softmax_c(p(c | x))_y``: the less certain the first
       classifier is, the harder the sample becomes.
    3. The same discriminant analysis (same ``lam``) on the mixed features; the score is the mean
       posterior of the true class (in ``(0, 1]``; the authors leave out the logarithm).

    Cost: ``O(n d^2 + d^3)`` (the ``d x d`` scatter), twice. Needs at least two classes.
    """
    F, codes, classes = check_features_labels(features, labels, "sfda")
    C = len(classes)                                   # >= 2 (checked above)
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) or a < 0:
        raise ConfigError(f"sfda: a must be a finite number >= 0, got {a!r}")
    if shrinkage is not None and (isinstance(shrinkage, bool) or not isinstance(shrinkage, (int, float))
                                  or not 0.0 <= shrinkage <= 1.0):
        raise ConfigError(f"sfda: shrinkage must be None or a number in [0, 1], got {shrinkage!r}")
    n = len(F)
    scatter = _within_scatter(F, codes, C)
    if shrinkage is None:
        from scipy.linalg import eigvalsh

        d = F.shape[1]
        sigma_max = float(eigvalsh(scatter[2], subset_by_index=[d - 1, d - 1])[0])
        lam = max(math.exp(-float(a) * sigma_max), 1e-10)
    else:
        lam = float(shrinkage)
    try:
        P, means = _shrunk_lda_posteriors(F, codes, C, lam, scatter)
        Q = np.exp(P)
        q = (Q / Q.sum(axis=1, keepdims=True))[np.arange(n), codes][:, None]
        others = (means.sum(axis=0)[None, :] - means) / (C - 1)    # (C, d): mean of the other classes' means
        P2, _ = _shrunk_lda_posteriors(q * F + (1.0 - q) * others[codes], codes, C, lam)
    except DataError as exc:
        raise DataError(f"sfda: {exc}") from exc
    return float(np.mean(P2[np.arange(n), codes]))


# ----------------------------------------------------------------------------------------------
# ranking encoders
# ----------------------------------------------------------------------------------------------
def _to_numpy(out: Any) -> np.ndarray:
    if hasattr(out, "detach") and hasattr(out, "cpu"):  # torch tensors, without importing torch
        out = out.detach().cpu().numpy()
    return np.asarray(out)


def standardize_columns(features: Any) -> np.ndarray:
    """Z-score every column of ``features`` ``(n, d)`` over its rows (float64); a constant column
    becomes 0. What a linear probe fitted after ``StandardScaler`` sees.

    A column counts as constant when its standard deviation is within rounding error of its
    largest magnitude (at most ``n * eps * max|column|``): a constant computed in floating point
    (e.g. 0.1 + 0.2 on some rows, 0.3 on others) must not be blown up into a +-1 feature of pure
    rounding noise."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise DataError(f"features must be 2-d (n, d); got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise DataError("features contain NaN or infinite values; clean or impute them before scoring")
    sd = f.std(axis=0)
    scale = np.abs(f).max(axis=0, initial=0.0)
    informative = sd > len(f) * np.finfo(np.float64).eps * scale
    return np.divide(f - f.mean(axis=0), sd, out=np.zeros_like(f), where=informative)


def rank_encoders(encoders: Mapping[str, Callable[[np.ndarray], Any] | Any], x: Any = None,
                  y: Any = None, score: str | Sequence[str] = "logme", *, standardize: bool = True,
                  **score_kwargs: Any) -> list[tuple[str, Any]]:
    """Rank candidate encoders by transferability, best first.

    ``encoders`` maps a name to either a callable ``x -> features (n, d)`` (called once per
    encoder; torch tensors are accepted) or to precomputed features (then ``x`` may be None).
    ``y`` ``(n,)`` are the target labels. For ``kind="probs"`` scores (LEEP, NCE) the encoder
    outputs must be source-class probabilities. With one ``score`` name the result is
    ``[(name, value), ...]``; with several, ``[(name, {score: value}), ...]`` ordered by the first
    score. ``score_kwargs`` go to every score. Ties keep the input order.

    ``standardize`` (default True): score ``kind="features"`` scores on the features z-scored per
    column (:func:`standardize_columns`), the form a linear probe fitted after ``StandardScaler``
    sees; LogME's isotropic prior and the score's scale then no longer depend on each encoder's
    units. ``False`` scores the outputs as they are. Probability scores always see the outputs as
    they are. The default was chosen by a rule fixed in advance on five encoder-ranking tasks not
    used before (``benchmarks/results/rank_encoders_heldout.md``: LogME's mean Kendall tau against
    target linear-probe accuracy 0.867 standardised, 0.733 as they are).
    """
    if not isinstance(encoders, Mapping) or not encoders:
        raise ConfigError("rank_encoders: encoders must be a non-empty mapping name -> callable or "
                          "feature array")
    if y is None:
        raise DataError("rank_encoders: target labels y are needed to score encoders")
    single = isinstance(score, str)
    names = [score] if single else list(score)
    if not names:
        raise ConfigError("rank_encoders: give at least one score name")
    fns = {s: SCORES.get(s, "score") for s in names}   # unknown names fail before any extraction
    kinds = {s: SCORES.entry(s).tags.get("kind") for s in names}
    rows: list[tuple[str, dict[str, float]]] = []
    for enc_name, enc in encoders.items():
        if callable(enc):
            if x is None:
                raise DataError(f"rank_encoders: encoder {enc_name!r} is a callable but x is None; "
                                "pass the target inputs x")
            feats = _to_numpy(enc(x))
        else:
            feats = _to_numpy(enc)
        try:
            scaled = standardize_columns(feats) if standardize and "features" in kinds.values() else feats
            vals = {s: float(fns[s](scaled if kinds[s] == "features" else feats, y, **score_kwargs))
                    for s in names}
        except DataError as exc:
            raise DataError(f"rank_encoders: encoder {enc_name!r}: {exc}") from exc
        rows.append((enc_name, vals))
    first = names[0]
    def key(i: int) -> tuple[bool, float, int]:
        v = rows[i][1][first]
        return (math.isnan(v), -v if not math.isnan(v) else 0.0, i)   # NaN scores last

    order = sorted(range(len(rows)), key=key)
    if single:
        return [(rows[i][0], rows[i][1][first]) for i in order]
    return [rows[i] for i in order]
