"""Decide without target labels: the collapse guard, validator agreement, and :func:`select`.

Unsupervised validators can prefer collapsed models: on SKADA-Bench's USPS->MNIST digits, SND and
prediction entropy picked models at about 10 % accuracy on a 10-class task (a model that predicts
one class is maximally confident and maximally "dense"). :func:`check_collapse` rejects such
candidates from their target predictions alone; :func:`select` picks the best surviving candidate
by a validator and falls back to a safe candidate (source-only) when every candidate is rejected or
the validators disagree. Target labels are never read: an ``oracle`` entry in a candidate is left
untouched.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from transferkit.core.errors import ConfigError, DataError
from transferkit.selection.validators import (
    ARRAY_ARGS,
    check_probs,
    entropy_rows,
    is_pool_validator,
    pool_reference,
    resolve_validator,
    score_candidate,
    validator_inputs,
)

#: default guard bounds (see :func:`check_collapse` for the rationale)
MIN_CLASSES_FRACTION = 0.5
MAX_TV = 0.5
MIN_SHARE_FRACTION = 0.2

#: the candidate keys :func:`select` reads; anything else (``oracle``, metadata) is never touched
CANDIDATE_KEYS = ("name", "scores", "guard", *ARRAY_ARGS)


@dataclass
class GuardResult:
    """Outcome of :func:`check_collapse`: ``ok`` (accepted), ``reasons`` (one sentence per failed
    check, empty when ok) and ``stats`` (the numbers the checks used)."""

    ok: bool
    reasons: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.ok

    def summary(self) -> str:
        """The failed checks in a few words, e.g. ``"4.5 effective classes (5.0 required)"``."""
        st = self.stats
        parts = []
        if st.get("effective_classes", math.inf) < st.get("required_effective_classes", 0):
            parts.append(f"{st['effective_classes']:.1f} effective classes "
                         f"({st['required_effective_classes']:.1f} required)")
        if st.get("covered_classes", math.inf) < st.get("required_covered_classes", 0):
            parts.append(f"{st['covered_classes']} classes covered "
                         f"({st['required_covered_classes']} required)")
        if st.get("tv") is not None and st.get("max_tv") is not None and st["tv"] > st["max_tv"]:
            parts.append(f"total variation {st['tv']:.2f} from the expected proportions "
                         f"(max {st['max_tv']:g})")
        return "; ".join(parts) if parts else ("accepted" if self.ok else "; ".join(self.reasons))


def _proportions(expected: Any, K: int) -> np.ndarray:
    q = np.asarray(expected, dtype=np.float64)
    if q.shape != (K,) or not np.isfinite(q).all() or (q < 0).any() or q.sum() <= 0:
        raise DataError(f"check_collapse: expected_proportions must be {K} finite non-negative "
                        f"numbers (one per class) with a positive sum, got shape {q.shape}")
    return q / q.sum()


def check_collapse(target_probs: Any, *, expected_proportions: Any = None,
                   min_classes_fraction: float = MIN_CLASSES_FRACTION, max_tv: float | None = MAX_TV,
                   min_share_fraction: float = MIN_SHARE_FRACTION) -> GuardResult:
    """Reject a candidate whose target predictions collapse onto few classes.

    ``target_probs`` ``(n_t, K)``: class probabilities on the target. The predicted class
    proportions are ``pi_k = mean_i 1[argmax p_i = k]``; the expected proportions ``q`` are
    ``expected_proportions`` (e.g. the source label prior, or a label-shift estimate such as
    :func:`transferkit.assess.bbse` from a trusted source-only model; zeros for classes absent
    from the target) or uniform when not given. Three checks, each adding a reason when it fails:

    1. **effective number of predicted classes** ``exp(H(pi))`` must be at least
       ``min_classes_fraction * exp(H(q))`` (``exp(H(q)) = K`` for uniform ``q``);
    2. **covered classes**: the number of classes receiving at least ``min_share_fraction * q_k``
       of the predictions (``1/(5K)`` by default for uniform ``q``) must be at least
       ``ceil(min_classes_fraction * K_q)`` and at least 2 (``K_q``: classes with ``q_k > 0``);
    3. only with ``expected_proportions``: the total variation ``TV(pi, q) = 1/2 sum_k |pi_k - q_k|``
       must be at most ``max_tv`` (``None`` disables it).

    Defaults and why: ``min_classes_fraction = 0.5``, ``max_tv = 0.5``, ``min_share_fraction =
    0.2``. A 10-class model predicting 90 % of the target into 3 classes has ``exp(H(pi)) = 4.5 <
    5`` and 3 covered classes (< 5), ``TV = 0.6`` from a uniform prior: rejected on every count;
    one predicting a single class (the SKADA-Bench collapse, ~10 % accuracy) has 1 effective
    class. A healthy imbalanced model whose proportions follow a Dirichlet(5) draw over 10 classes
    has ``exp(H(pi))`` >= 7.1 and >= 8 covered classes in 20,000 simulated draws, and
    ``TV`` <= 0.35 from the uniform source prior: accepted. For TV, note that
    ``TV(pi, q) <= P(prediction != label)`` when ``q`` is the true target label distribution,
    so ``TV > 0.5`` means the model misclassifies more than half of the target if ``q`` is right;
    the margin above the 0.35 seen for healthy Dirichlet(5) label shift absorbs an imperfect ``q``.
    Binary tasks: check 2 asks both classes to get a fifth of their expected share; pass
    ``expected_proportions`` for strongly imbalanced targets.
    """
    p = check_probs(target_probs, "target_probs", "check_collapse", min_rows=1)
    n, K = p.shape
    pi = np.bincount(p.argmax(axis=1), minlength=K) / n
    res = check_proportions(pi, n_samples=n, expected_proportions=expected_proportions,
                            min_classes_fraction=min_classes_fraction, max_tv=max_tv,
                            min_share_fraction=min_share_fraction)
    res.stats["mean_probs"] = p.mean(axis=0).tolist()
    res.stats["mean_confidence"] = float(p.max(axis=1).mean())
    return res


def check_proportions(predicted_proportions: Any, *, n_samples: int | None = None,
                      expected_proportions: Any = None,
                      min_classes_fraction: float = MIN_CLASSES_FRACTION,
                      max_tv: float | None = MAX_TV,
                      min_share_fraction: float = MIN_SHARE_FRACTION) -> GuardResult:
    """The checks of :func:`check_collapse` from the predicted class proportions alone
    (``pi_k`` = share of target samples predicted as class ``k``, ``(K,)``), e.g. proportions
    stored with a finished run. Same rules, bounds and messages."""
    if not 0 <= min_classes_fraction <= 1:
        raise ConfigError(f"check_collapse: min_classes_fraction must be in [0, 1], "
                          f"got {min_classes_fraction!r}")
    if max_tv is not None and not 0 <= max_tv <= 1:
        raise ConfigError(f"check_collapse: max_tv must be in [0, 1] or None, got {max_tv!r}")
    if not 0 <= min_share_fraction <= 1:
        raise ConfigError(f"check_collapse: min_share_fraction must be in [0, 1], "
                          f"got {min_share_fraction!r}")
    pi = np.asarray(predicted_proportions, dtype=np.float64)
    if pi.ndim != 1 or pi.size < 1 or not np.isfinite(pi).all() or (pi < 0).any() or pi.sum() <= 0:
        raise DataError(f"check_collapse: predicted proportions must be K >= 1 finite non-negative "
                        f"numbers with a positive sum, got {pi!r}")
    pi = pi / pi.sum()
    K = len(pi)
    n = n_samples
    given = expected_proportions is not None
    q = _proportions(expected_proportions, K) if given else np.full(K, 1.0 / K)
    support = q > 0
    k_q = int(support.sum())

    effective = float(np.exp(entropy_rows(pi)))
    expected_effective = float(np.exp(entropy_rows(q)))
    need_effective = min_classes_fraction * expected_effective
    covered = int(np.sum(support & (pi >= min_share_fraction * q - 1e-12)))
    need_covered = max(min(2, k_q), math.ceil(min_classes_fraction * k_q - 1e-9))
    tv = float(0.5 * np.abs(pi - q).sum()) if given else None

    reasons = []
    if effective < need_effective:
        reasons.append(f"its target predictions concentrate on {effective:.1f} effective classes "
                       f"(exp of the entropy of the predicted class proportions), fewer than the "
                       f"{need_effective:.1f} required ({min_classes_fraction:g} x "
                       f"{expected_effective:.1f} expected)")
    if covered < need_covered:
        top = np.argsort(-pi)[:3]
        share = ", ".join(f"class {k}: {pi[k]:.0%}" for k in top if pi[k] > 0)
        reasons.append(f"only {covered} of {k_q} classes receive at least {min_share_fraction:g} of "
                       f"their expected share of target predictions ({need_covered} required; "
                       f"most predicted: {share})")
    if given and max_tv is not None and tv is not None and tv > max_tv:
        reasons.append(f"its predicted class proportions are {tv:.2f} away (total variation) from "
                       f"the expected ones, more than max_tv = {max_tv:g}")
    stats = {
        "n_samples": n, "n_classes": K,
        "predicted_proportions": pi.tolist(),
        "expected_proportions": q.tolist() if given else None,
        "effective_classes": effective, "required_effective_classes": need_effective,
        "covered_classes": covered, "required_covered_classes": need_covered,
        "tv": tv, "max_tv": max_tv,
    }
    return GuardResult(ok=not reasons, reasons=reasons, stats=stats)


# -- agreement -------------------------------------------------------------------------------------


def _kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b ``(C - D) / sqrt((n0 - n_a)(n0 - n_b))`` over all candidate pairs
    (``n0`` pairs, ``n_a``/``n_b`` tied in ``a``/``b``); 0.0 when either ranking is constant."""
    i, j = np.triu_indices(len(a), k=1)
    sa, sb = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    n0 = len(i)
    denom = np.sqrt(float(n0 - np.sum(sa == 0)) * float(n0 - np.sum(sb == 0)))
    return 0.0 if denom == 0 else float(np.sum(sa * sb) / denom)


def agreement(rankings: Mapping[str, Sequence[float]]) -> float:
    """Mean pairwise Kendall tau-b between validators' scores over the same candidates.

    ``rankings``: validator name -> one score per candidate (same candidate order for every
    validator). 1 = all validators order the candidates identically, -1 = reversed, about 0 =
    unrelated. A validator whose scores are all equal contributes tau = 0 to its pairs. Fewer than
    two validators or two candidates: 1.0 (nothing to disagree about). Non-finite scores raise.
    """
    names = list(rankings)
    cols = [np.asarray(rankings[k], dtype=np.float64) for k in names]
    lengths = {len(c) for c in cols}
    if len(lengths) > 1:
        raise DataError(f"agreement: every validator needs one score per candidate; got lengths "
                        f"{dict(zip(names, (len(c) for c in cols)))}")
    for name, c in zip(names, cols):
        if c.ndim != 1 or not np.isfinite(c).all():
            raise DataError(f"agreement: the scores of {name!r} must be finite numbers")
    if len(cols) < 2 or (lengths and lengths.pop() < 2):
        return 1.0
    taus = [_kendall_tau(cols[i], cols[j]) for i in range(len(cols)) for j in range(i + 1, len(cols))]
    return float(np.mean(taus))


# -- selection -------------------------------------------------------------------------------------


@dataclass
class Selection:
    """Outcome of :func:`select`.

    ``picked``: the chosen candidate's name (None only when nothing can be picked);
    ``reason``: one plain-words sentence; ``table``: one row per candidate (name, validator
    scores, guard verdict and reasons, rank); ``agreement``: mean pairwise Kendall tau between the
    ensemble's validators over the accepted candidates (None when not computed);
    ``fell_back``: True when ``picked`` is the fallback rather than the validator's choice.
    """

    picked: str | None
    reason: str
    table: list[dict[str, Any]] = field(default_factory=list)
    validator: str = ""
    agreement: float | None = None
    fell_back: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read(candidate: Mapping[str, Any], key: str) -> Any:
    """The one way :func:`select` reads a candidate: whitelisted keys only (never ``oracle``)."""
    if key not in CANDIDATE_KEYS:
        raise KeyError(key)
    return candidate.get(key) if key in candidate else None


def _candidate_score(c: Mapping[str, Any], name: str, vname: str, vfunc: Callable[..., float],
                     params: Mapping[str, Any] | None) -> float:
    scores = _read(c, "scores")
    if isinstance(scores, Mapping) and vname in scores:
        return float(scores[vname])
    arrays = {k: _read(c, k) for k in ARRAY_ARGS}
    try:
        return score_candidate(vfunc, **arrays, params=params)
    except ConfigError as exc:
        raise ConfigError(f"select: candidate {name!r}: {exc} (or give it "
                          f"scores={{{vname!r}: value}})") from exc


def split_validator(validator: Any) -> list[str] | None:
    """The registered validators of a combined name ``"a+b"`` (None for a single validator or a
    callable). Unknown names raise with suggestions."""
    from transferkit.selection._registry import VALIDATORS

    if not isinstance(validator, str) or "+" not in validator:
        return None
    parts = [p.strip() for p in validator.split("+")]
    if len(parts) < 2 or any(not p for p in parts) or len(set(parts)) != len(parts):
        raise ConfigError(f"a combined validator is 'a+b' with distinct registered names, got "
                          f"{validator!r}")
    for p in parts:
        VALIDATORS.get(p)
    return parts


def borda(columns: Sequence[Sequence[float]], among: Sequence[int]) -> list[float]:
    """Mean normalised rank (Borda count) of candidates over several validators' scores.

    ``columns``: one list of scores per validator (one score per candidate, higher = better);
    ``among``: the candidates ranked (e.g. those the guard accepted; the others get NaN). Within
    each validator the ``n`` ranked candidates get ranks ``1..n`` (ties share their mean rank; a
    non-finite score ranks last, 0); the result is the mean over validators of ``rank / n``, in
    ``(0, 1]``, higher = better. Scales of the validators do not matter, only their orders.
    """
    from scipy.stats import rankdata

    out = [math.nan] * (len(columns[0]) if columns else 0)
    idx = list(among)
    if not idx:
        return out
    total = np.zeros(len(idx))
    for col in columns:
        vals = np.array([col[i] for i in idx], dtype=np.float64)
        finite = np.isfinite(vals)
        r = np.zeros(len(idx))
        if finite.any():
            r[finite] = rankdata(vals[finite]) + (~finite).sum()
        total += r / len(idx)
    for j, i in enumerate(idx):
        out[i] = float(total[j] / len(columns))
    return out


def _as_guard_result(pre: Any, name: str) -> GuardResult:
    """A precomputed verdict: a :class:`GuardResult` or its dict (``ok``, ``reasons``, ``stats``)."""
    if isinstance(pre, GuardResult):
        return pre
    if isinstance(pre, Mapping) and isinstance(pre.get("ok"), bool):
        return GuardResult(ok=pre["ok"], reasons=list(pre.get("reasons") or []),
                           stats=dict(pre.get("stats") or {}))
    raise ConfigError(f"select: candidate {name!r}: 'guard' must be a GuardResult or a dict with "
                      f"a boolean 'ok' (a verdict of check_collapse), got {pre!r}")


def _computable(c: Mapping[str, Any], vname: str) -> bool:
    scores = _read(c, "scores")
    if isinstance(scores, Mapping) and vname in scores:
        return True
    return all(_read(c, k) is not None for k in validator_inputs(vname))


def _fmt(x: float) -> str:
    return f"{x:.4g}" if np.isfinite(x) else str(x)


def _pool_references(candidates: Sequence[Mapping[str, Any]], names: list[str], used: Sequence[str],
                     accepted: list[int], vparams: dict[str, Any]) -> None:
    """For each pool validator in ``used`` (e.g. ``ensv``) that some candidate has no precomputed
    score for, put the pool's reference (the mean target probabilities of the accepted candidates,
    or of all when none is accepted) into ``vparams``."""
    for v in dict.fromkeys(used):
        if not is_pool_validator(v):
            continue
        if all(isinstance(_read(c, "scores"), Mapping) and v in _read(c, "scores") for c in candidates):
            continue
        missing = [n for n, c in zip(names, candidates) if _read(c, "target_probs") is None]
        if missing:
            raise ConfigError(f"select: validator {v!r} compares every candidate with the ensemble of "
                              f"the pool, so every candidate needs target_probs; missing for "
                              f"{', '.join(map(repr, missing))}")
        pool = accepted or list(range(len(candidates)))
        ref = pool_reference([_read(candidates[i], "target_probs") for i in pool])
        vparams[v] = {**dict(vparams.get(v) or {}), "reference_probs": ref}


def select(candidates: Sequence[Mapping[str, Any]], validator: str | Callable[..., float] = "dev",
           guard: bool = True, fallback: str | None = "source_only", min_agreement: float = 0.0, *,
           ensemble: Sequence[str] | None = None, expected_proportions: Any = None,
           guard_params: Mapping[str, Any] | None = None,
           validator_params: Mapping[str, Mapping[str, Any]] | None = None) -> Selection:
    """Pick one candidate without target labels.

    ``candidates``: dicts with ``name`` and the arrays of
    :func:`~transferkit.selection.score_candidate` (``source_probs``, ``source_labels``,
    ``target_probs``, ``source_features``, ``target_features``; see
    :mod:`transferkit.selection.validators` for shapes) and/or ``scores`` (validator name ->
    precomputed score). Only these keys are read: an ``oracle`` entry (target accuracy, for the
    report) is never looked at.

    Steps: (1) with ``guard``, :func:`check_collapse` on each candidate's ``target_probs`` (or the
    candidate's precomputed verdict under ``guard``: a :class:`GuardResult` or its dict)
    (``expected_proportions``: None, an array ``(K,)``, or ``"source_prior"`` = the class
    frequencies of the candidate's ``source_labels``; ``guard_params`` are passed on); (2) score
    every candidate with ``validator`` and with each validator of ``ensemble`` (default: every
    registered validator the candidates have inputs for); (3) ``agreement`` of ``validator`` and the
    ensemble over the accepted candidates; (4) pick the accepted candidate with the highest ``validator`` score (ties:
    the first); but fall back to the candidate named ``fallback`` when every candidate is rejected
    or the agreement is below ``min_agreement``. ``fallback=None`` disables the fallback (then
    ``picked`` is None when everything is rejected). ``validator_params``: validator name -> params.
    ``validator="a+b"`` combines registered validators by their mean rank among the accepted
    candidates (:func:`borda`); each one's scores are shown in the table. A pool validator
    (``ensv``) is given the mean ``target_probs`` of the accepted candidates as its reference.
    """
    from transferkit.selection._registry import VALIDATORS

    if not candidates:
        raise ConfigError("select: no candidates given")
    names: list[str] = []
    for i, c in enumerate(candidates):
        if not isinstance(c, Mapping) or not isinstance(_read(c, "name"), str):
            raise ConfigError(f"select: candidate {i} must be a dict with a 'name' string")
        names.append(_read(c, "name"))
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"select: candidate names must be unique; repeated: {', '.join(dup)}")
    if fallback is not None and fallback not in names:
        raise ConfigError(f"select: fallback {fallback!r} is not among the candidates "
                          f"({', '.join(names)}); add it (e.g. a source-only model) or pass "
                          "fallback=None")
    parts = split_validator(validator)
    if parts is None:
        vname, vfunc = resolve_validator(validator)
    else:
        vname, vfunc = "+".join(parts), None
    vparams = dict(validator_params or {})
    if ensemble is None:
        ens = [v for v in VALIDATORS.names() if all(_computable(c, v) for c in candidates)]
    else:
        ens = [v for v in ensemble]
        for v in ens:
            VALIDATORS.get(v)
    ens = list(parts or ()) + [v for v in ens if v not in (parts or ())]
    ens_names = [v for v in ens if v != vname]

    # (1) guard
    verdicts: list[GuardResult | None] = []
    for name, c in zip(names, candidates):
        if not guard:
            verdicts.append(None)
            continue
        pre = _read(c, "guard")
        if pre is not None:
            verdicts.append(_as_guard_result(pre, name))
            continue
        tp = _read(c, "target_probs")
        if tp is None:
            raise ConfigError(f"select: candidate {name!r} has no target_probs for the collapse guard; "
                              "add them or pass guard=False")
        exp = expected_proportions
        if isinstance(exp, str):
            if exp != "source_prior":
                raise ConfigError(f"select: expected_proportions must be None, an array or "
                                  f"'source_prior', got {exp!r}")
            ys = _read(c, "source_labels")
            if ys is None:
                raise ConfigError(f"select: expected_proportions='source_prior' needs "
                                  f"source_labels in candidate {name!r}")
            exp = np.bincount(np.asarray(ys, dtype=np.int64), minlength=np.shape(tp)[1])
        verdicts.append(check_collapse(tp, expected_proportions=exp, **dict(guard_params or {})))

    # (2) scores
    accepted = [i for i, g in enumerate(verdicts) if g is None or g.ok]
    rejected = [i for i in range(len(names)) if i not in accepted]
    _pool_references(candidates, names, [*(parts or [vname]), *ens_names], accepted, vparams)
    others = {v: [_candidate_score(c, n, v, VALIDATORS.get(v), vparams.get(v))
                  for n, c in zip(names, candidates)] for v in ens_names}
    if parts is None:
        main = [_candidate_score(c, n, vname, vfunc, vparams.get(vname)) for n, c in zip(names, candidates)]
    else:
        main = borda([others[v] for v in parts], accepted)

    # (3) agreement over accepted candidates
    pool = others if parts is not None else {vname: main, **others}  # a mean rank is not a vote
    ens_scores = {v: s for v, s in pool.items() if all(np.isfinite(s[i]) for i in accepted)}
    agree: float | None = None
    if len(ens_scores) >= 2 and len(accepted) >= 2:
        agree = agreement({v: [s[i] for i in accepted] for v, s in ens_scores.items()})

    # table
    order = sorted(accepted, key=lambda i: (-main[i] if np.isfinite(main[i]) else math.inf, i))
    rank = {i: r + 1 for r, i in enumerate(order)}
    table = []
    for i, name in enumerate(names):
        row: dict[str, Any] = {"name": name, vname: main[i]}
        row.update({v: others[v][i] for v in others})
        g = verdicts[i]
        row["guard_ok"] = None if g is None else g.ok
        row["guard_reasons"] = [] if g is None else list(g.reasons)
        if g is not None:
            row["effective_classes"] = g.stats.get("effective_classes")
            row["tv"] = g.stats.get("tv")
        row["rank"] = rank.get(i)
        table.append(row)

    vlabel = vname.upper() if vname in ("dev", "iwcv", "snd", "im") else vname
    if parts is not None:
        vlabel = f"mean rank of {' and '.join(p.upper() if p in ('dev', 'iwcv', 'snd', 'im') else p for p in parts)}"
    n_rej = len(rejected)
    rej_note = ""
    if n_rej:
        first = rejected[0]
        g0 = verdicts[first]
        why = g0.summary() if g0 is not None else "rejected"
        rej_note = (f"; {n_rej} candidate{'s were' if n_rej > 1 else ' was'} rejected as collapsed "
                    f"(e.g. {names[first]!r}: {why})")
    best = next((i for i in order if np.isfinite(main[i])), None)

    def fall(why: str) -> Selection:
        if fallback is None:
            return Selection(None, f"Nothing was picked because {why} and no fallback was given.",
                             table, vname, agree, False)
        fb = names.index(fallback)
        flagged = ""
        g = verdicts[fb]
        if g is not None and not g.ok:
            flagged = f" (the fallback itself was flagged: {g.summary()})"
        return Selection(fallback, f"Fell back to {fallback!r} because {why}{flagged}.", table,
                         vname, agree, True)

    if not accepted:
        g0 = verdicts[0]
        return fall(f"all {len(names)} candidates were rejected by the collapse guard "
                    f"(e.g. {names[0]!r}: {g0.summary() if g0 is not None else 'rejected'})")
    if best is None:
        return fall(f"no accepted candidate has a finite {vlabel} score")
    if agree is not None and agree < min_agreement:
        return fall(f"the validators disagree (mean pairwise Kendall tau {agree:.2f} over "
                    f"{', '.join(ens_scores)} is below min_agreement = {min_agreement:g})")
    agree_note = f"; validators agree with mean Kendall tau {agree:.2f}" if agree is not None else ""
    return Selection(
        names[best],
        f"Picked {names[best]!r} because it has the highest {vlabel} score ({_fmt(main[best])}) of "
        f"the {len(accepted)} candidate{'s' if len(accepted) != 1 else ''} that passed the collapse "
        f"guard{rej_note}{agree_note}." if guard else
        f"Picked {names[best]!r} because it has the highest {vlabel} score ({_fmt(main[best])}) of "
        f"the {len(names)} candidates (collapse guard off){agree_note}.",
        table, vname, agree, False)
