"""Assess before training: is there a shift, how large is it, and which encoder transfers best.

Pure functions on arrays (no training loop, no torch):

- shift tests (:mod:`~transferkit.assess.shift`, registry :data:`SHIFT_TESTS`): ``mmd``,
  ``mmd_linear``, ``energy``, ``classifier`` -> :class:`ShiftTestResult` with a p-value;
- distances (:mod:`~transferkit.assess.distances`, registry :data:`DISTANCES`): proxy A-distance,
  CORAL distance, sliced Wasserstein, MMD^2, energy distance; :func:`bbse` estimates target class
  proportions under label shift;
- transferability scores (:mod:`~transferkit.assess.transferability`, registry :data:`SCORES`):
  ``logme``, ``leep``, ``nce``, ``hscore``, ``gbc``, ``transrate`` (higher = more transferable),
  and :func:`rank_encoders`.

Importing this package registers the entries (the registries import it on first use); it loads
numpy only -- scipy and scikit-learn are imported inside the functions that need them.
"""

from transferkit.assess import distances, shift, transferability  # noqa: F401  (registration)
from transferkit.assess._registry import DISTANCES, SCORES, SHIFT_TESTS
from transferkit.assess.distances import (
    LabelShiftEstimate,
    bbse,
    coral_distance,
    proxy_a_distance,
    sliced_wasserstein,
)
from transferkit.assess.shift import (
    ShiftTestResult,
    classifier_test,
    energy_distance,
    energy_test,
    mmd2_unbiased,
    mmd_linear,
    mmd_test,
    permutation_test,
    shift_test,
)
from transferkit.assess.transferability import (
    gbc,
    hscore,
    leep,
    logme,
    nce,
    rank_encoders,
    transrate,
)

__all__ = [
    "DISTANCES", "SCORES", "SHIFT_TESTS", "LabelShiftEstimate", "ShiftTestResult", "bbse",
    "classifier_test", "coral_distance", "energy_distance", "energy_test", "gbc", "hscore", "leep",
    "logme", "mmd2_unbiased", "mmd_linear", "mmd_test", "nce", "permutation_test", "proxy_a_distance",
    "rank_encoders",
    "shift_test", "sliced_wasserstein", "transrate",
]
