"""Explicit randomness. Objects take a seed or a generator; only the runner seeds globally."""

from __future__ import annotations

import random

import numpy as np


def rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy generator from a seed (or the generator itself)."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch global generators (used by the runner at the top of a run)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def derive_seed(seed: int, *keys: object) -> int:
    """A stable child seed from ``seed`` and ``keys`` (e.g. the task and method names)."""
    import hashlib

    h = hashlib.sha256(repr((seed, *keys)).encode()).digest()
    return int.from_bytes(h[:4], "little")
