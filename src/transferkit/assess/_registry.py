"""The registries of :mod:`transferkit.assess`, filled on first use by importing the package.

- :data:`SHIFT_TESTS`: two-sample tests ``f(source, target, *, n_permutations, seed, ...) ->
  ShiftTestResult`` (tag ``complexity``: ``"quadratic"``, ``"linear"`` or ``"classifier"``).
- :data:`SCORES`: transferability scores ``f(X, labels, ...) -> float``, higher = more
  transferable; tag ``kind`` is ``"features"`` (``X`` = encoder features ``(n, d)``) or
  ``"probs"`` (``X`` = source-model class probabilities ``(n, C_s)``).
- :data:`DISTANCES`: discrepancies between two samples ``f(source, target, ...) -> float``
  (0 = same distribution; larger = more shift).

This module imports nothing heavy, so importing it (or ``transferkit``) does no work.
"""

from __future__ import annotations

from typing import Any

from transferkit.core.registry import Registry

#: two-sample shift tests returning a :class:`~transferkit.assess.shift.ShiftTestResult`
SHIFT_TESTS: Registry[Any] = Registry("shift test", populate=("transferkit.assess",))
#: transferability scores (higher = more transferable), tag ``kind`` = "features" or "probs"
SCORES: Registry[Any] = Registry("transferability score", populate=("transferkit.assess",))
#: distances between the source and target samples (0 = no shift)
DISTANCES: Registry[Any] = Registry("shift distance", populate=("transferkit.assess",))
