"""Contract checks for registered methods and synthetic test data (used by the test suite; usable by
plug-in authors). ``shifted_blobs`` is numpy-only; ``check_method`` loads torch on first use."""

from __future__ import annotations

from typing import Any

from transferkit.testing.data import shifted_blobs

__all__ = ["check_method", "shifted_blobs"]


def __getattr__(name: str) -> Any:
    if name == "check_method":
        from transferkit.testing.contract import check_method

        return check_method
    raise AttributeError(name)
