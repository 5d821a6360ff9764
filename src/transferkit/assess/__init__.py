"""Assess before training: is there a shift, how large is it, and which encoder transfers best.

Pure functions on arrays (no training loop, no torch):

- shift tests (:mod:`~transferkit.assess.shift`, registry :data:`SHIFT_TESTS`): ``mmd``,
  ``mmd_linear``, ``energy``, ``classifier`` -> :class:`ShiftTestResult` with a p-value;
- distances (:mod:`~transferkit.assess.distances`, registry :data:`DISTANCES`): proxy A-distance,
  CORAL distance, sliced Wasserstein, MMD^2, energy distance; :func:`bbse` estimates target class
  proportions under label shift;
- transferability scores (:mod:`~transferkit.assess.transferability`, registry :data:`SCORES`):
  ``logme``, ``leep``, ``nce``, ``hscore``, ``hscore_shrinkage``, ``gbc``, ``transrate``, ``parc``
  (higher = more transferable),
  and :func:`rank_encoders`;
- the advisor (:mod:`~transferkit.assess.advisor`): :func:`advise` runs the tests, distances,
  LogME, a label-shift estimate and a quick pilot (source-only vs cheap adaptations judged by the
  label-free validators and the collapse guard) and returns an :class:`Advice` -- one of
  :data:`RECOMMENDATIONS` with its reasons, each tied to a measured figure (rules in
  :func:`decide`);
- :func:`embed_2d`: 2-D maps (PCA / t-SNE) of source and target features for reports.

Importing this package registers the entries (the registries import it on first use); it loads
numpy only -- scipy and scikit-learn are imported inside the functions that need them.
"""

from transferkit.assess import distances, shift, transferability  # noqa: F401  (registration)
from transferkit.assess._registry import DISTANCES, SCORES, SHIFT_TESTS
from transferkit.assess.advisor import RECOMMENDATIONS, RULES, Advice, advise, decide
from transferkit.assess.distances import (
    LabelShiftEstimate,
    bbse,
    coral_distance,
    proxy_a_distance,
    sliced_wasserstein,
)
from transferkit.assess.embedding import embed_2d
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
    hscore_shrinkage,
    leep,
    logme,
    nce,
    nleep,
    parc,
    rank_encoders,
    sfda,
    transrate,
)

__all__ = [
    "DISTANCES", "RECOMMENDATIONS", "RULES", "SCORES", "SHIFT_TESTS", "Advice", "LabelShiftEstimate",
    "ShiftTestResult", "advise", "bbse", "decide", "embed_2d",
    "classifier_test", "coral_distance", "energy_distance", "energy_test", "gbc", "hscore",
    "hscore_shrinkage", "leep", "logme", "mmd2_unbiased", "mmd_linear", "mmd_test", "nce", "nleep", "parc",
    "permutation_test", "proxy_a_distance", "rank_encoders", "sfda",
    "shift_test", "sliced_wasserstein", "transrate",
]
