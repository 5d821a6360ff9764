"""Pure loss functions shared by deep methods."""

from transferkit.losses.core import (
    GradientReverse,
    binary_domain_loss,
    entropy,
    grad_reverse,
    grl_schedule,
)

__all__ = ["GradientReverse", "binary_domain_loss", "entropy", "grad_reverse", "grl_schedule"]
