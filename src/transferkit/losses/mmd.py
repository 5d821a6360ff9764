"""Kernel two-sample discrepancies: multi-kernel MMD (DAN) and joint MMD (JAN).

A layer's kernel is a sum of Gaussians ``k(a, b) = sum_u exp(-|a-b|^2 / (2 s_u^2))``. With
``sigma=None`` the bandwidths adapt to the batch: ``s_u^2 = m_u * mean_{i,j} |z_i - z_j|^2`` over
source and target together (detached), for multipliers ``m_u`` (``2^-3 .. 2^1`` as TLlib's DAN);
with a fixed ``sigma`` the kernel is the single Gaussian of that width. JMMD multiplies the
kernels of several layers (Long et al., ICML 2017, eq. 10).

Estimators of ``MMD^2 = E k(s,s') + E k(t,t') - 2 E k(s,t)``:

* ``linear=False``: the unbiased quadratic-time U-statistic (diagonals left out of the
  within-domain means); any batch sizes ``ns, nt >= 2``.
* ``linear=True``: the linear-time estimate of Gretton et al. (2012) used by DAN (ICML 2015,
  eq. 5), over ``n = min(ns, nt)`` cyclic quadruples ``(s_i, s_i+1, t_i, t_i+1)``:
  ``mean_i k(s_i,s_i+1) + k(t_i,t_i+1) - k(s_i,t_i+1) - k(s_i+1,t_i)``; O(n d) time and memory.

Shapes: each layer's ``zs`` (ns, d) and ``zt`` (nt, d) (trailing dims are flattened); returns a scalar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

DEFAULT_MULTS: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class GaussianKernels:
    """A sum of Gaussian kernels: bandwidths ``mults`` x the mean squared distance, or one fixed
    ``sigma`` (then ``mults`` is ignored)."""

    mults: tuple[float, ...] = DEFAULT_MULTS
    sigma: float | None = None

    def widths(self, z: torch.Tensor) -> torch.Tensor:
        """``2 s_u^2`` for each kernel, shape (m,), from the pooled samples ``z`` (N, d)."""
        if self.sigma is not None:
            return z.new_tensor([2.0 * self.sigma ** 2])
        zd = z.detach()
        # mean over all N^2 pairs of |z_i - z_j|^2 = 2 (mean |z|^2 - |mean z|^2), without the matrix
        mean_d2 = 2.0 * (zd.pow(2).sum(1).mean() - zd.mean(0).pow(2).sum())
        mean_d2 = mean_d2.clamp_min(torch.finfo(z.dtype).tiny)
        return 2.0 * mean_d2 * z.new_tensor(self.mults)

    def __call__(self, d2: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        """Kernel values from squared distances ``d2`` (any shape)."""
        return torch.exp(-d2.unsqueeze(-1) / widths).sum(-1)


def sq_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances (n, m), clamped at 0 (no sqrt: finite gradients)."""
    d2 = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2.0 * a @ b.T
    return d2.clamp_min(0.0)


def _flat(z: torch.Tensor) -> torch.Tensor:
    return z.reshape(z.shape[0], -1)


def joint_mmd(zs: Sequence[torch.Tensor], zt: Sequence[torch.Tensor],
              kernels: Sequence[GaussianKernels] | None = None, linear: bool = False) -> torch.Tensor:
    """MMD^2 under the product over layers of each layer's kernel (JMMD; one layer = MK-MMD)."""
    if len(zs) != len(zt) or not zs:
        raise ValueError("joint_mmd needs the same non-zero number of source and target layers")
    kernels = list(kernels) if kernels is not None else [GaussianKernels()] * len(zs)
    if len(kernels) != len(zs):
        raise ValueError(f"got {len(kernels)} kernels for {len(zs)} layers")
    ns, nt = zs[0].shape[0], zt[0].shape[0]
    if linear:
        n = min(ns, nt)
        prod = None
        for s_all, t_all, kern in zip(zs, zt, kernels):
            s_all, t_all = _flat(s_all), _flat(t_all)
            s, t = s_all[:n], t_all[:n]
            s2, t2 = s.roll(-1, 0), t.roll(-1, 0)
            d2 = torch.stack([(s - s2).pow(2).sum(1), (t - t2).pow(2).sum(1),
                              (s - t2).pow(2).sum(1), (s2 - t).pow(2).sum(1)])  # (4, n)
            k = kern(d2, kern.widths(torch.cat([s_all, t_all])))
            prod = k if prod is None else prod * k
        assert prod is not None
        return (prod[0] + prod[1] - prod[2] - prod[3]).mean()
    prod = None
    for s, t, kern in zip(zs, zt, kernels):
        z = torch.cat([_flat(s), _flat(t)])
        k = kern(sq_distances(z, z), kern.widths(z))
        prod = k if prod is None else prod * k
    assert prod is not None
    kss, ktt, kst = prod[:ns, :ns], prod[ns:, ns:], prod[:ns, ns:]
    within_s = (kss.sum() - kss.diagonal().sum()) / max(ns * (ns - 1), 1)
    within_t = (ktt.sum() - ktt.diagonal().sum()) / max(nt * (nt - 1), 1)
    return within_s + within_t - 2.0 * kst.mean()


def mk_mmd(zs: torch.Tensor, zt: torch.Tensor, mults: Sequence[float] = DEFAULT_MULTS,
           linear: bool = False) -> torch.Tensor:
    """Multi-kernel MMD^2 between source (ns, d) and target (nt, d) samples (DAN, Long et al.
    ICML 2015), equal kernel weights, bandwidths ``mults`` x the batch's mean squared distance."""
    return joint_mmd([zs], [zt], [GaussianKernels(tuple(mults))], linear)
