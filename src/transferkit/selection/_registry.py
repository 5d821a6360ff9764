"""The registry of label-free validators, filled on first use by importing
:mod:`transferkit.selection.validators`.

:data:`VALIDATORS`: functions ``f(*, source_probs=..., source_labels=..., target_probs=...,
source_features=..., target_features=..., **params) -> float`` (each takes the subset it needs),
higher = better. Call them through :func:`transferkit.selection.score_candidate` to pass only the
arrays a validator takes. Tag ``needs``: the arrays it requires.

This module imports nothing heavy, so importing it does no work.
"""

from __future__ import annotations

from typing import Any

from transferkit.core.registry import Registry

#: label-free model-selection criteria (higher = better); never use target labels
VALIDATORS: Registry[Any] = Registry("validator", populate=("transferkit.selection.validators",))
