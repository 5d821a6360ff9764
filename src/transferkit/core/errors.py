"""Error types. Every error a user can cause is a :class:`TransferkitError` whose message names
what is wrong (file, field, key or value) and how to fix it; the CLI prints it without a traceback."""

from __future__ import annotations


class TransferkitError(Exception):
    """Base class of every error caused by input (configs, data, names, parameters)."""


class ConfigError(TransferkitError, ValueError):
    """A config key, value or parameter is invalid. ``path`` is the dotted key path."""

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class UnknownNameError(ConfigError, KeyError):
    """A registry name does not exist; the message lists the closest names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0] if self.args else ""


class DataError(TransferkitError, ValueError):
    """Data are missing, damaged or inconsistent (shapes, NaN, labels, empty domains)."""


class TrainingDivergedError(TransferkitError, FloatingPointError):
    """A loss term became NaN or infinite; the message names method, term and step."""
