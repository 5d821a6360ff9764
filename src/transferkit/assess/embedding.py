"""Two-dimensional maps of source and target features, for the plots of the reports.

:func:`embed_2d` pools (a random subsample of) the source and target features and maps them to
2-D with t-SNE (van der Maaten & Hinton, JMLR 2008; ``sklearn.manifold.TSNE``) when the pooled
sample is small, or PCA otherwise. Points are coloured by domain in the reports: two separate
clouds mean the representation still tells the domains apart; mixed clouds mean it aligned them
(not that the classes are right).

Returns plain lists (JSON-friendly, rounded), so a report can be re-rendered without recomputing.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from transferkit.core.errors import ConfigError, DataError

#: pooled samples up to which ``method="auto"`` uses t-SNE (PCA above)
TSNE_MAX_SAMPLES = 2000
#: points kept per map (half per domain, at most) by default
MAX_POINTS = 1000
#: dimensions the features are reduced to by PCA before t-SNE
_PRE_TSNE_DIMS = 50

EMBEDDINGS = ("auto", "pca", "tsne", "off")


def resolve_method(method: str, n_total: int, tsne_max_samples: int = TSNE_MAX_SAMPLES) -> str:
    """``"pca"`` or ``"tsne"`` for a requested ``method`` (``auto``: t-SNE when the pooled sample
    has at most ``tsne_max_samples`` rows, else PCA)."""
    if method not in EMBEDDINGS or method == "off":
        raise ConfigError(f"embedding method must be one of auto, pca, tsne; got {method!r}")
    if method == "auto":
        return "tsne" if 10 <= n_total <= tsne_max_samples else "pca"
    return method


def _flat(a: Any, what: str) -> np.ndarray:
    x = np.asarray(a, dtype=np.float64)
    if x.ndim < 2 or len(x) == 0:
        raise DataError(f"embed_2d: the {what} features must be a non-empty (n, d) array, got shape "
                        f"{x.shape}")
    x = x.reshape(len(x), -1)
    if not np.isfinite(x).all():
        raise DataError(f"embed_2d: the {what} features contain NaN or infinite values")
    return x


def embed_2d(source: Any, target: Any, *, method: Literal["auto", "pca", "tsne"] = "auto",
             max_points: int = MAX_POINTS, seed: int = 0,
             tsne_max_samples: int = TSNE_MAX_SAMPLES) -> dict[str, Any]:
    """2-D coordinates of source ``(m, d)`` and target ``(k, d)`` features, fitted on both.

    At most ``max_points // 2`` rows per domain are kept (random, ``seed``). ``method="auto"``:
    t-SNE when ``m + k <= tsne_max_samples`` (before subsampling), else PCA. t-SNE runs on the
    first 50 principal components (perplexity ``min(30, (n - 1) / 3)``, PCA initialisation).
    Returns ``{"method", "source": [[x, y], ...], "target": [...], "n_source", "n_target",
    "n_source_shown", "n_target_shown"}`` (plus ``"explained_variance"`` for PCA).
    """
    if method not in ("auto", "pca", "tsne"):
        raise ConfigError(f"embed_2d: method must be 'auto', 'pca' or 'tsne', got {method!r}")
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 4:
        raise ConfigError(f"embed_2d: max_points must be an integer >= 4, got {max_points!r}")
    xs, xt = _flat(source, "source"), _flat(target, "target")
    if xs.shape[1] != xt.shape[1]:
        raise DataError(f"embed_2d: source features have {xs.shape[1]} columns, target features "
                        f"{xt.shape[1]}; map both domains with the same representation")
    gen = np.random.default_rng(seed)
    half = max_points // 2
    i_s = np.sort(gen.choice(len(xs), size=min(half, len(xs)), replace=False))
    i_t = np.sort(gen.choice(len(xt), size=min(half, len(xt)), replace=False))
    Z = np.vstack([xs[i_s], xt[i_t]])
    n = len(Z)
    use = resolve_method(method, len(xs) + len(xt), tsne_max_samples)
    if use == "tsne" and n < 10:
        use = "pca"
    out: dict[str, Any] = {"n_source": len(xs), "n_target": len(xt),
                           "n_source_shown": len(i_s), "n_target_shown": len(i_t)}
    Zc = Z - Z.mean(axis=0)
    if use == "pca":
        Y, ratio = _pca(Zc, 2)
        out["explained_variance"] = [round(float(r), 4) for r in ratio]
    else:
        from sklearn.manifold import TSNE

        P, _ = _pca(Zc, min(_PRE_TSNE_DIMS, Zc.shape[1]))
        perplexity = float(min(30.0, (n - 1) / 3.0))
        Y = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, max_iter=500,
                 learning_rate="auto").fit_transform(P)
    out["method"] = use
    Y = np.asarray(Y, dtype=np.float64)
    if Y.shape[1] < 2:  # one feature: a flat second axis
        Y = np.hstack([Y, np.zeros((len(Y), 2 - Y.shape[1]))])
    out["source"] = np.round(Y[: len(i_s)], 4).tolist()
    out["target"] = np.round(Y[len(i_s):], 4).tolist()
    return out


def _pca(Zc: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores on the ``k`` leading principal components of centred ``Zc`` and their variance
    ratios (SVD; deterministic signs: the largest loading of each component is positive)."""
    U, s, Vt = np.linalg.svd(Zc, full_matrices=False)
    k = min(k, len(s))
    signs = np.sign(Vt[np.arange(k), np.argmax(np.abs(Vt[:k]), axis=1)])
    signs[signs == 0] = 1.0
    scores = U[:, :k] * s[:k] * signs
    total = float(np.sum(s**2))
    ratio = (s[:k] ** 2 / total) if total > 0 else np.zeros(k)
    return scores, ratio
