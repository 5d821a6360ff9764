"""Registries, parameter binding, errors and seeding shared by every part of transferkit."""

from transferkit.core.errors import (
    ConfigError,
    DataError,
    TrainingDivergedError,
    TransferkitError,
    UnknownNameError,
)
from transferkit.core.params import bind_params, describe_params, get_params
from transferkit.core.registry import Entry, Registry
from transferkit.core.seed import derive_seed, rng, seed_everything

__all__ = [
    "ConfigError", "DataError", "Entry", "Registry", "TrainingDivergedError", "TransferkitError",
    "UnknownNameError", "bind_params", "derive_seed", "describe_params", "get_params", "rng",
    "seed_everything",
]
