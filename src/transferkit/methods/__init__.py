"""Deep adaptation methods, one file each; importing this package registers them all."""

from transferkit.methods import dann, source_only  # noqa: F401  (registration)
from transferkit.methods.base import Batch, Method, Optim, Step, discriminator

__all__ = ["Batch", "Method", "Optim", "Step", "discriminator"]
