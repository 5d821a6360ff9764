"""JDA and BDA: TCA with class-conditional MMD terms refined by iterative pseudo-labels.

- JDA, Joint Distribution Adaptation (Long, Wang, Ding, Sun & Yu, ICCV 2013):

      min_A  tr(A' K (sum_{c=0..C} M_c) K A) + lambda ||A||_F^2   s.t.  A' K H K A = I,

  ``M_0 = e_0 e_0'`` the marginal MMD matrix (``e_0 = [1/n_s; -1/n_t]``, multiplied by ``C`` as in
  the reference code) and ``M_c = e_c e_c'`` the conditional one of class ``c`` (``1/n_s^c`` on
  source rows of class ``c``, ``-1/n_t^c`` on target rows pseudo-labelled ``c``). Iteration 1 has
  no pseudo-labels (it is TCA); each iteration labels the target with a classifier trained on the
  source embedding (1-NN in the paper) and rebuilds the ``M_c``; ``T = 10`` iterations.
- BDA, Balanced Distribution Adaptation (Wang, Chen, Hao, Feng & Shen, ICDM 2017): ``M = (1 - mu)
  M_0 + mu sum_c M_c`` with a balance factor ``mu`` in ``[0, 1]`` (JDA is ``mu = 0.5`` up to the
  Frobenius normalisation of ``M``), fixed or estimated at each iteration from proxy
  A-distances (``mu="auto"``, Sec. III-C of the paper); ``weighted=True`` is W-BDA, which weighs
  the target part of ``M_c`` by ``P_t(c) / P_s(c)`` for imbalanced classes (and uses ``mu = 1`` as
  the reference code does).

Both solve the same ``r x r`` generalised eigen-problems as :mod:`transferkit.shallow.tca` (thin
SVD of the feature map; ``M`` kept in its low-rank form ``E diag(w) E'`` with ``C + 1`` columns, so
no ``n x n`` matrix exists on the linear/primal/Nystroem paths). Defaults follow the JDA paper:
``n_components = 100``, ``lam = 1`` (Office-Caltech; the paper uses ``0.1`` with
``kernel="primal"`` on digits), ``n_iter = 10``. The loop stops early when the pseudo-labels stop
changing (the remaining iterations would repeat the same solution exactly).

Shapes: ``X (n_samples, n_features)``; embedding ``(n_samples, n_components)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferkit.core.errors import ConfigError
from transferkit.core.registries import SHALLOW
from transferkit.shallow import _kernels as kern
from transferkit.shallow.tca import (
    _SubspaceEmbedding,
    build_basis,
    check_n_components,
    mmd_design,
    solve_embedding,
)


class _IterativeMMD(_SubspaceEmbedding):
    """The JDA/BDA loop; subclasses define ``_balance(...) -> (mu, weighted)``."""

    _name = "JDA"

    def _balance(self, t: int, Zs: np.ndarray | None, ys: np.ndarray, Zt: np.ndarray | None,
                 yt: np.ndarray | None, n_classes: int) -> tuple[float, bool]:
        raise NotImplementedError

    def _adapt(self, Xs: np.ndarray, ys: np.ndarray, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        name = self._name
        n_iter = self.n_iter
        if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
            raise ConfigError(f"{name}: n_iter={n_iter!r} must be a positive integer")
        self._balance(0, None, ys, None, None, 0)  # parameter checks before any work
        ns, nt = len(Xs), len(Xt)
        X = self._prep(np.vstack([Xs, Xt]))
        basis = build_basis(X, kernel=self.kernel, gamma=self.gamma, solver=self.solver,
                            n_landmarks=self.n_landmarks, max_memory_gb=self.max_memory_gb,
                            random_state=self.random_state, owner=name)
        k = check_n_components(self.n_components, len(basis.s), name)
        classes = np.unique(ys)
        ys_idx = np.searchsorted(classes, ys)
        C = len(classes)
        yt_idx: np.ndarray | None = None
        Zs = Zt = None
        self.balance_history_: list[float] = []
        self.n_iter_ = 0
        for t in range(int(n_iter)):
            mu, weighted = self._balance(t, Zs, ys_idx, Zt, yt_idx, C)
            self.balance_history_.append(float(mu))
            E, w = mmd_design(ns, nt, ys_idx, yt_idx, C, mu=mu, weighted=weighted, marginal_scale=C)
            B, phi = solve_embedding(basis, E, w, float(self.lam), k)
            Z = self._embed(basis, B)
            Zs, Zt = Z[:ns], Z[ns:]
            clf = self._classifier(ns, nt).fit(Zs, ys_idx)
            new = np.asarray(clf.predict(Zt))
            self.n_iter_ = t + 1
            done = yt_idx is not None and np.array_equal(new, yt_idx) and self._stationary()
            yt_idx = new
            if done:
                break
        self._store(basis, B)
        self.n_components_ = k
        self.eigenvalues_ = phi
        assert Zs is not None and Zt is not None
        return Zs, Zt

    def _stationary(self) -> bool:
        """Whether unchanged pseudo-labels imply an unchanged next iteration."""
        return True


@SHALLOW.register("jda", description="JDA: marginal + class-conditional MMD with pseudo-labels (Long et al. 2013)")
class JDA(_IterativeMMD):
    """Joint Distribution Adaptation (Long et al., ICCV 2013) + a classifier on the embedding.

    Objective: ``min tr(A'K(sum_c M_c)KA) + lam ||A||^2  s.t.  A'KHKA = I`` (module docstring),
    ``n_iter`` rounds of target pseudo-labelling with ``estimator`` (default 1-NN, the paper's).

    Parameters (keyword-only): ``n_components`` k (100, the paper's); ``lam`` regulariser (1, the
    paper's value on Office-Caltech); ``kernel`` ``"linear"`` | ``"rbf"`` | ``"primal"``;
    ``gamma`` rbf bandwidth (``None``: median heuristic); ``n_iter`` T (10); ``solver``
    ``"auto"`` | ``"exact"`` | ``"nystroem"`` | ``"rff"``; ``n_landmarks``; ``max_memory_gb``
    (exact path limit); ``normalize`` unit-L2 rows before and after the embedding (reference
    code); ``estimator``; ``random_state``.

    Fitted: ``projection_``, ``feature_map_``, ``solver_``, ``n_iter_`` (iterations run),
    ``n_components_``, ``eigenvalues_``, ``estimator_``, ``classes_``.
    """

    _name = "JDA"

    def __init__(self, *, n_components: int = 100, lam: float = 1.0, kernel: str = "linear",
                 gamma: float | None = None, n_iter: int = 10, solver: str = "auto",
                 n_landmarks: int = 1000, max_memory_gb: float = 4.0, normalize: bool = True,
                 estimator: Any = "1nn", random_state: int | None = 0) -> None:
        self.n_components = n_components
        self.lam = lam
        self.kernel = kernel
        self.gamma = gamma
        self.n_iter = n_iter
        self.solver = solver
        self.n_landmarks = n_landmarks
        self.max_memory_gb = max_memory_gb
        self.normalize = normalize
        self.estimator = estimator
        self.random_state = random_state

    def _balance(self, t, Zs, ys, Zt, yt, n_classes):  # type: ignore[no-untyped-def]
        return 0.5, False


@SHALLOW.register("bda", description="BDA: balanced marginal/conditional MMD, optional W-BDA (Wang et al. 2017)")
class BDA(_IterativeMMD):
    """Balanced Distribution Adaptation (Wang et al., ICDM 2017) + a classifier on the embedding.

    ``M = (1 - mu) C M_0 + mu sum_c M_c``; ``mu`` a float in ``[0, 1]`` or ``"auto"`` (estimated
    from proxy A-distances on the previous iteration's embedding, 0 in the first iteration, as in
    the reference code); ``weighted=True`` is W-BDA (class-prior weights ``P_t(c)/P_s(c)`` on the
    target part of each ``M_c``; ``mu`` is then 1). Other parameters and defaults as :class:`JDA`
    (the JDA paper's protocol: 100 components, ``lam=1``, 10 iterations, 1-NN).

    Fitted as :class:`JDA`, plus ``balance_history_`` (``mu`` per iteration).
    """

    _name = "BDA"

    def __init__(self, *, n_components: int = 100, lam: float = 1.0, mu: float | str = 0.5,
                 weighted: bool = False, kernel: str = "linear", gamma: float | None = None,
                 n_iter: int = 10, solver: str = "auto", n_landmarks: int = 1000,
                 max_memory_gb: float = 4.0, normalize: bool = True, estimator: Any = "1nn",
                 random_state: int | None = 0) -> None:
        self.n_components = n_components
        self.lam = lam
        self.mu = mu
        self.weighted = weighted
        self.kernel = kernel
        self.gamma = gamma
        self.n_iter = n_iter
        self.solver = solver
        self.n_landmarks = n_landmarks
        self.max_memory_gb = max_memory_gb
        self.normalize = normalize
        self.estimator = estimator
        self.random_state = random_state

    def _stationary(self) -> bool:
        return self.mu != "auto" or bool(self.weighted)

    def _balance(self, t, Zs, ys, Zt, yt, n_classes):  # type: ignore[no-untyped-def]
        if self.weighted:
            return 1.0, True
        mu = self.mu
        if isinstance(mu, str):
            if mu != "auto":
                raise ConfigError(f"BDA: mu={mu!r} must be a number in [0, 1] or 'auto'")
            if yt is None:
                return 0.0, False
            return kern.estimate_balance_factor(Zs, ys, Zt, yt, n_classes,
                                                random_state=self.random_state), False
        mu = float(mu)
        if not 0.0 <= mu <= 1.0:
            raise ConfigError(f"BDA: mu={mu!r} must be in [0, 1] (or 'auto')")
        return mu, False
