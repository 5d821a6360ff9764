"""Deep adaptation methods, one file each; importing this package registers them all.

Adding a method: one file in this folder and its name in the import below; the contract suite
(``tests/methods/test_contract.py``) then tests it.
"""

from transferkit.methods import (  # noqa: F401  (registration)
    adabn,
    afn,
    bsp,
    cdan,
    compose,
    dan,
    dann,
    deep_coral,
    fixmatch,
    jan,
    mcc,
    mcd,
    mdd,
    rotation,
    self_training,
    shot,
    source_only,
)
from transferkit.methods.base import Batch, Method, Optim, Step, discriminator

__all__ = ["Batch", "Method", "Optim", "Step", "discriminator"]
