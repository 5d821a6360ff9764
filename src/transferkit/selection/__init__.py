"""Decide without target labels: label-free validators, a collapse guard, domain-aware splitters
and validator-driven hyper-parameter search.

- :mod:`~transferkit.selection.validators` (registry :data:`VALIDATORS`, higher = better):
  ``source_accuracy``, ``iwcv``, ``dev``, ``snd``, ``entropy``, ``im``, ``reverse``, ``mixval``
  (predictions on mixed target samples, :func:`mixup_probe`), and the pool validator ``ensv``
  (agreement with the ensemble of all candidates);
  :func:`score_candidate` calls any of them with the arrays it needs; ``"a+b"`` in :func:`select`
  combines several by their mean rank (:func:`borda`).
- :mod:`~transferkit.selection.candidates`: the arrays of a fitted model (held-out source and
  target probabilities, features) as a candidate (:func:`fit_shallow_candidate`,
  :func:`predict_candidate`), :func:`score_all`, and :data:`DEFAULT_VALIDATOR`.
- :mod:`~transferkit.selection.guard`: :func:`check_collapse` rejects candidates whose target
  predictions collapse onto few classes (:func:`check_proportions`: the same checks from stored
  class proportions); :func:`agreement` (mean pairwise Kendall tau between
  validators); :func:`select` picks a candidate and falls back to source-only when every
  candidate is rejected or the validators disagree.
- :mod:`~transferkit.selection.splitters`: :class:`SourceTargetShuffleSplit`,
  :class:`LeaveOneDomainOut` (scikit-learn splitter API, ``groups=sample_domain``).
- :mod:`~transferkit.selection.search`: :func:`search` (Optuna, the ``search`` extra; budget
  shared across workers) and :func:`suggest_params`.

Importing this package registers the validators; it loads numpy only (scipy, scikit-learn and
Optuna are imported inside the functions that need them).
"""

from transferkit.selection import validators  # noqa: F401  (registration)
from transferkit.selection._registry import VALIDATORS
from transferkit.selection.candidates import (
    DEFAULT_VALIDATOR,
    fit_shallow_candidate,
    mixup_arrays,
    predict_candidate,
    score_all,
    stratified_holdout,
)
from transferkit.selection.guard import (
    GuardResult,
    Selection,
    agreement,
    borda,
    check_collapse,
    check_proportions,
    select,
)
from transferkit.selection.search import search, suggest_params, trials_table
from transferkit.selection.splitters import LeaveOneDomainOut, SourceTargetShuffleSplit
from transferkit.selection.validators import (
    dev,
    ensemble_agreement,
    importance_weights,
    information_maximization,
    iwcv,
    mixup_probe,
    mixval,
    prediction_entropy,
    reverse_validation,
    score_candidate,
    snd,
    softmax,
    source_accuracy,
    validator_inputs,
)

__all__ = [
    "DEFAULT_VALIDATOR", "VALIDATORS", "GuardResult", "LeaveOneDomainOut", "Selection",
    "SourceTargetShuffleSplit", "agreement", "borda", "check_collapse", "check_proportions", "dev",
    "ensemble_agreement",
    "fit_shallow_candidate", "importance_weights", "information_maximization", "iwcv", "mixup_arrays",
    "mixup_probe", "mixval",
    "predict_candidate", "prediction_entropy", "reverse_validation", "score_all", "score_candidate",
    "search", "select", "snd", "softmax", "source_accuracy", "stratified_holdout", "suggest_params",
    "trials_table", "validator_inputs",
]
