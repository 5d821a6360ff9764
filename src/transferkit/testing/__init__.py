"""Contract checks for registered methods and synthetic test data (used by the test suite; usable by
plug-in authors). ``shifted_blobs`` is numpy-only; ``check_method`` loads torch on first use."""

from __future__ import annotations

from typing import Any

from transferkit.testing.data import shifted_blobs

__all__ = ["Crash", "check_method", "crash_at", "shifted_blobs"]


class Crash(Exception):
    """Raised by :func:`crash_at`: a run killed in the middle, for resume tests."""


def crash_at(step: int):
    """A training-loop callback ``(step, terms)`` that raises :class:`Crash` ("killed") at ``step``."""
    def callback(s: int, terms: Any) -> None:
        if s == step:
            raise Crash("killed")
    return callback


def __getattr__(name: str) -> Any:
    if name == "check_method":
        from transferkit.testing.contract import check_method

        return check_method
    raise AttributeError(name)
