"""Small numpy-only linear-algebra helpers shared by ``assess`` and ``shallow`` (no scipy or
scikit-learn import, so the assessment functions stay light)."""

from __future__ import annotations

import numpy as np


def sq_dists(X: np.ndarray, Y: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances ``(n_x, n_y)``, clipped at 0 (``||x||^2 + ||y||^2 - 2 x'y``);
    with ``Y=None`` the pairwise distances of ``X`` with an exact zero diagonal."""
    xx = np.einsum("ij,ij->i", X, X)
    if Y is None:
        Y, yy = X, xx
    else:
        yy = np.einsum("ij,ij->i", Y, Y)
    D = X @ Y.T
    D *= -2.0
    D += xx[:, None]
    D += yy[None, :]
    np.maximum(D, 0.0, out=D)
    if Y is X:
        np.fill_diagonal(D, 0.0)
    return D
