"""The advisor: should this source be transferred to this target, and how? Decided before any long
training, from measured quantities only -- never from target labels.

:func:`advise` measures

1. **shift tests** with p-values: kernel MMD (Gretton et al. 2012), energy distance (Szekely & Rizzo
   2004) and a classifier two-sample test (Lopez-Paz & Oquab 2017), see :mod:`.shift`;
2. **distances**: proxy A-distance (Ben-David et al. 2007) and CORAL distance (Sun & Saenko 2016);
3. **transferability** of the features on the *source* labels: LogME (You et al., ICML 2021) on
   the features z-scored per column, as :func:`~transferkit.assess.rank_encoders` scores them by
   default; with several candidate encoders or feature sets the one with the highest LogME is used;
4. **label shift**: black-box shift estimation (Lipton et al., ICML 2018) of the target class
   proportions from the source-only pilot model;
5. **a pilot**: a source-only classifier against a few cheap adaptations (CORAL and subspace
   alignment with the same classifier; a small DANN when ``deep=True``), all fitted on the same
   80 % of the source plus the unlabelled target, scored on the held-out 20 % and the target by the
   label-free validators of :mod:`transferkit.selection`, with the collapse guard;

and applies the rules below (:data:`RULES`, thresholds fixed in advance) in this order:

=============================  ===========================================================================
recommendation                 when
=============================  ===========================================================================
``no_adaptation``              no shift test rejects at family-wise level ``alpha = 0.05`` (Bonferroni:
                               smallest p-value > 0.05 / 3). Pipeline: the source-only classifier.
``negative_transfer_likely``   a shift is detected, the source-only model's target predictions pass
                               the collapse guard and the target class proportions estimated from them
                               (BBSE) are more than ``0.3`` (total variation) from the source's:
                               aligning marginals under such label shift misaligns the classes (Zhao
                               et al., ICML 2019). Pipeline: source-only.
``adapt``                      a shift is detected and the best adaptation that passes the guard is
                               estimated ``>= 1`` point better than source-only by the validator
                               (validator score difference ``>= 0.01``). Pipeline: that adaptation.
``negative_transfer_likely``   otherwise, when (a) the source-only model's target predictions collapse
                               (the guard rejects them: the source decision rules do not carry over)
                               or (b) every pilot adaptation is rejected by the guard or estimated
                               ``>= 2`` points *worse* than source-only. Pipeline: source-only (do not
                               adapt; labelled target data are the safe way forward).
``fine_tune``                  only when the features come from encoders that can be trained
                               (``finetunable=True``): no adaptation gains ``>= 1`` point and the frozen
                               features reach less than ``85 %`` held-out source accuracy -- the
                               representation, not the shift, limits transfer. Pipeline: fine-tune the
                               encoder ranked first by LogME on the source labels.
``no_adaptation``              otherwise (a shift exists but no cheap adaptation is estimated to gain
                               ``>= 1`` point). Pipeline: source-only.
=============================  ===========================================================================

Each reason in the result names the measured figure it rests on. The validator (``iwcv`` by
default: importance-weighted held-out source accuracy, an estimate of target accuracy) is read in
points of accuracy, so the 1- and 2-point margins are on the scale of the benchmark criterion
"adaptation gains < 1 pt".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from transferkit.core.errors import ConfigError, DataError

RECOMMENDATIONS = ("no_adaptation", "fine_tune", "adapt", "negative_transfer_likely")

#: thresholds of the rules, fixed in advance (see the module docstring)
RULES: dict[str, float] = {
    "alpha": 0.05,               # family-wise level of the three shift tests (Bonferroni)
    "min_gain": 0.01,            # validator gain (accuracy fraction) for "adapt"
    "harm_margin": 0.02,         # validator loss of every adaptation for "negative transfer"
    "max_label_shift_tv": 0.3,   # TV(estimated target proportions, source proportions)
    "fine_tune_source_acc": 0.85,  # frozen-feature held-out source accuracy below which to fine-tune
}

#: the validator that estimates each pilot pipeline's target accuracy: importance-weighted held-out
#: source accuracy (Sugiyama et al., JMLR 2007), an estimate of target accuracy under covariate shift
ADVISOR_VALIDATOR = "iwcv"

#: the cheap adaptations of the pilot: (label, shallow method, parameters); ``{clf}`` = classifier
DEFAULT_PILOT: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("coral", "coral", {"estimator": "{clf}"}),
    ("sa", "sa", {"estimator": "{clf}"}),
)
#: the source-only pipeline's method for each classifier name
_SOURCE_ONLY = {"logreg": "logreg", "svm": "svm", "1nn": "1nn"}


@dataclass
class Advice:
    """What :func:`advise` found.

    ``recommendation``: one of :data:`RECOMMENDATIONS`; ``pipeline``: what to run (``method``, its
    ``params``, ``features``: ``"input"`` or the chosen candidate; for ``fine_tune`` the encoder);
    ``reasons``: plain sentences, each citing the figure it rests on; ``figures``: every measured
    number by name; ``tests``: the shift tests (statistic, p-value, ...); ``distances``;
    ``transferability``: LogME (and linear-probe source accuracy) per feature set; ``label_shift``:
    the BBSE estimate; ``pilot``: one row per pilot pipeline (validator scores, guard verdict,
    estimated gain over source-only); ``selection``: the validator's pick among the pilot
    (:class:`transferkit.selection.Selection` as a dict); ``rules``: the thresholds used;
    ``data``: sizes; ``timings`` (seconds); ``embedding``: 2-D map of the features (optional).
    """

    recommendation: str
    pipeline: dict[str, Any]
    reasons: list[str]
    figures: dict[str, Any]
    tests: list[dict[str, Any]] = field(default_factory=list)
    distances: dict[str, float] = field(default_factory=dict)
    transferability: dict[str, dict[str, float]] = field(default_factory=dict)
    label_shift: dict[str, Any] = field(default_factory=dict)
    pilot: list[dict[str, Any]] = field(default_factory=list)
    selection: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, float] = field(default_factory=dict)
    validator: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    embedding: dict[str, Any] | None = None

    @property
    def summary(self) -> str:
        """One line: the recommendation and the pipeline."""
        what = {"no_adaptation": "no adaptation needed", "fine_tune": "fine-tune the encoder",
                "adapt": "adapt", "negative_transfer_likely": "negative transfer likely"}
        p = self.pipeline
        on = f" on {p['features']} features" if p.get("features") not in (None, "input") else ""
        head = what.get(self.recommendation, self.recommendation)
        if self.recommendation == "fine_tune":
            return f"{head}: fine-tune {p.get('features')} on the source labels"
        if self.recommendation == "adapt":
            return f"{head}: use {p.get('label') or p.get('method')}{on}"
        return f"{head}: keep the source-only model ({p.get('method')}{on})"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["summary"] = self.summary
        return d

    def to_text(self) -> str:
        """The tests with p-values, the distances and scores, the pilot and the advice, as text."""
        lines = []
        dat = self.data
        lines.append(f"source: {dat.get('n_source')} samples, target: {dat.get('n_target')} samples, "
                     f"{dat.get('n_features')} features, {dat.get('n_classes')} classes"
                     + (f" (features: {dat['features']})" if dat.get("features") not in (None, "input") else ""))
        lines += ["", "Shift tests (H0: source and target come from one distribution)"]
        rows = [["test", "statistic", "p-value", "permutations"]]
        for t in self.tests:
            rows.append([t["method"], f"{t['statistic']:.4g}", _fmt_p(t["p_value"]),
                         str(t["n_permutations"]) if t["n_permutations"] else "exact"])
        lines += _table(rows)
        lines += ["", "Distances and scores"]
        rows = [["measure", "value", "meaning"]]
        for k, v in self.distances.items():
            rows.append([k, f"{v:.4g}", _MEANING.get(k, "")])
        for enc, sc in self.transferability.items():
            for k, v in sc.items():
                rows.append([f"{k} ({enc})", f"{v:.4g}", _MEANING.get(k, "")])
        if self.label_shift:
            rows.append(["label shift TV", f"{self.label_shift.get('tv', float('nan')):.3f}",
                         "estimated target class proportions vs source (BBSE)"])
        lines += _table(rows)
        if self.pilot:
            lines += ["", f"Pilot (label-free validators on held-out source + unlabelled target; "
                          f"{self.validator} decides)"]
            vs = [self.validator] + [v for v in self.pilot[0]["scores"] if v != self.validator]
            rows = [["pipeline", *vs, "gain", "guard"]]
            for r in self.pilot:
                g = r.get("gain")
                rows.append([r["name"], *(_fmt_s(r["scores"].get(v)) for v in vs),
                             "-" if g is None else f"{100 * g:+.1f} pt",
                             "ok" if r["guard_ok"] else "collapsed"])
            lines += _table(rows)
        lines += ["", f"Advice: {self.recommendation.upper()} -- {self.summary}"]
        lines += [f"  - {r}" for r in self.reasons]
        return "\n".join(lines)


_MEANING = {
    "proxy_a": "0 = indistinguishable domains, 2 = separable",
    "coral": "distance between feature covariances (0 = equal)",
    "logme": "evidence of a linear model on source labels (higher = more transferable)",
    "source_probe_accuracy": "held-out source accuracy of the frozen features",
}


def _fmt_p(p: float) -> str:
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"


def _fmt_s(x: Any) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.4g}"


def _table(rows: list[list[str]]) -> list[str]:
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows]


# -- inputs ----------------------------------------------------------------------------------------


def _flat(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim < 2 or len(a) == 0:
        raise DataError(f"advise: the {what} samples must be a non-empty array (n, features...), got "
                        f"shape {a.shape}")
    if a.dtype.kind not in "fiub":
        raise DataError(f"advise: the {what} samples must be numeric, got dtype {a.dtype}")
    a = a.reshape(len(a), -1).astype(np.float64)
    if not np.isfinite(a).all():
        raise DataError(f"advise: the {what} samples contain NaN or infinite values; impute or drop them")
    return a


def _is_numeric(x: Any) -> bool:
    return np.asarray(x[:1] if isinstance(x, (list, tuple)) else x).dtype.kind in "fiub"


def _unpack(source: Any, target: Any, source_labels: Any, *, encoded: bool = False
            ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None, Any]:
    """``(xs, ys, xt, raw)`` from arrays, a DomainDataset or a Task; ``raw`` keeps the unflattened
    inputs (for encoders). ``encoded``: candidate encoders will turn the raw inputs into features,
    so they may be texts or other non-numeric samples (then ``xs`` and ``xt`` are None)."""
    from transferkit.data.dataset import DomainDataset, Task

    if isinstance(source, Task):
        source = source.train
    if isinstance(source, DomainDataset):
        if target is not None:
            raise ConfigError("advise: give either a DomainDataset (source and target together) or "
                              "source and target arrays, not both")
        src = source.is_source
        raw = (source.x[src], source.x[~src])
        ys = source.y[src]
    else:
        if target is None or source_labels is None:
            raise ConfigError("advise: give source, source_labels and target arrays (or a "
                              "DomainDataset / Task)")
        raw = (source, target)
        ys = source_labels
    ys = np.asarray(ys)
    numeric = _is_numeric(raw[0]) and _is_numeric(raw[1])
    if numeric:
        raw = (np.asarray(raw[0]), np.asarray(raw[1]))
    if encoded and not numeric:         # e.g. lists of texts, for text encoders
        xs_f = xt_f = None
        if len(raw[0]) == 0 or len(raw[1]) == 0:
            raise DataError(f"advise: the source ({len(raw[0])}) and target ({len(raw[1])}) samples must "
                            "both be non-empty")
    else:
        xs_f, xt_f = _flat(raw[0], "source"), _flat(raw[1], "target")
        if xs_f.shape[1] != xt_f.shape[1]:
            raise DataError(f"advise: source samples have {xs_f.shape[1]} features but target samples have "
                            f"{xt_f.shape[1]}; both domains must share one feature space")
    if ys.shape != (len(raw[0]),):
        raise DataError(f"advise: {len(raw[0])} source samples but source labels of shape {ys.shape}")
    if (ys < 0).any() if ys.dtype.kind in "iu" else False:
        raise DataError("advise: every source sample needs a label (found -1)")
    classes, yi = np.unique(ys, return_inverse=True)
    if len(classes) < 2:
        raise DataError("advise: the source labels hold a single class; at least two are needed")
    return xs_f, yi.astype(np.int64), xt_f, raw


def _subsample(n: int, k: int | None, gen: np.random.Generator) -> np.ndarray:
    return np.arange(n) if k is None or n <= k else np.sort(gen.choice(n, size=k, replace=False))


def _numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # torch tensors, without importing torch
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _features(candidates: Mapping[str, Any], raw: tuple[Any, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each candidate's (source, target) features: a callable applied to the raw inputs, or a
    precomputed ``(source_features, target_features)`` pair."""
    out = {}
    for name, enc in candidates.items():
        if callable(enc):
            fs, ft = enc(raw[0]), enc(raw[1])
        elif isinstance(enc, (tuple, list)) and len(enc) == 2:
            fs, ft = enc
        else:
            raise ConfigError(f"advise: candidate {name!r} must be a callable (inputs -> features) or "
                              "a pair (source_features, target_features)")
        fs, ft = _flat(_numpy(fs), f"{name} source"), _flat(_numpy(ft), f"{name} target")
        if fs.shape[1] != ft.shape[1]:
            raise DataError(f"advise: candidate {name!r} gives {fs.shape[1]} source and {ft.shape[1]} "
                            "target features; they must match")
        out[name] = (fs, ft)
    return out


# -- the pilot --------------------------------------------------------------------------------------


def _pilot_specs(pilot: Sequence[Any], classifier: str) -> list[tuple[str, str, dict[str, Any]]]:
    specs = [("source_only", _SOURCE_ONLY[classifier], {})]
    for item in pilot:
        if isinstance(item, str):
            label, name, params = item, item, {"estimator": "{clf}"}
        elif isinstance(item, (tuple, list)) and len(item) == 3:
            label, name, params = item
        else:
            raise ConfigError(f"advise: a pilot entry must be a shallow method name or (label, name, "
                              f"params), got {item!r}")
        params = {k: (classifier if v == "{clf}" else v) for k, v in dict(params).items()}
        specs.append((str(label), str(name), params))
    labels = [s[0] for s in specs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"advise: pilot labels must be unique, got {labels}")
    return specs


def _deep_candidates(xs: np.ndarray, ys: np.ndarray, xt: np.ndarray, split: tuple[np.ndarray, np.ndarray],
                     n_classes: int, steps: int, seed: int) -> list[dict[str, Any]]:
    """A small MLP trained by the loop on the source alone and with DANN (Ganin et al. 2016)."""
    import torch

    from transferkit.core.registries import METHODS
    from transferkit.data.dataset import DomainDataset
    from transferkit.models import create_model
    from transferkit.train.config import TrainConfig
    from transferkit.train.loop import fit

    tr, va = split
    ds = DomainDataset.from_arrays(xs[tr].astype(np.float32), ys[tr], xt.astype(np.float32),
                                   classes=[str(i) for i in range(n_classes)], name="pilot")
    cfg = TrainConfig(steps=steps, batch_size=64, lr=0.01, progress=False, checkpoint_every=0,
                      val_fraction=0.0, log_every=max(steps, 1))
    out = []
    for label, name, params in (("deep_source_only", "source_only", {}),
                                ("dann", "dann", {"trade_off": 1.0})):
        torch.manual_seed(seed)
        model = create_model("mlp", (xs.shape[1],), n_classes, {"hidden": [256]})
        method = METHODS.create(name, params)
        method.setup(model.num_features, n_classes)
        t0 = time.perf_counter()
        fit(model, method, ds, cfg, seed=seed, desc=f"pilot {label}")
        model.eval()
        with torch.no_grad():
            ls, fs = model(torch.as_tensor(xs[va], dtype=torch.float32))
            lt, ft = model(torch.as_tensor(xt, dtype=torch.float32))
        out.append({"name": label, "source_probs": torch.softmax(ls, 1).double().numpy(),
                    "source_labels": ys[va], "target_probs": torch.softmax(lt, 1).double().numpy(),
                    "source_features": fs.double().numpy(), "target_features": ft.double().numpy(),
                    "fit_seconds": time.perf_counter() - t0, "method": name, "params": params,
                    "kind": "deep"})
    return out


# -- the advisor -------------------------------------------------------------------------------------


def advise(source: Any, target: Any = None, *, source_labels: Any = None,
           candidates: Mapping[str, Callable[[Any], Any] | tuple[Any, Any]] | None = None,
           finetunable: bool | Collection[str] = False, classifier: str = "logreg",
           pilot: Sequence[Any] = DEFAULT_PILOT, validator: str | None = None,
           deep: bool = False, deep_steps: int = 300, n_permutations: int = 200,
           max_test_samples: int = 2000, max_pilot_source: int | None = 3000,
           val_fraction: float = 0.2, embedding: str | None = None, seed: int = 0,
           rules: Mapping[str, float] | None = None) -> Advice:
    """Assess a source -> target transfer and recommend what to do (rules in the module docstring).

    ``source``: labelled source samples ``(n_s, ...)`` with ``source_labels`` ``(n_s,)`` and
    ``target`` ``(n_t, ...)`` unlabelled samples; or a :class:`~transferkit.data.DomainDataset` /
    :class:`~transferkit.data.Task` holding both (target labels, if any, are never read).
    ``candidates``: optional encoders or feature sets, name -> callable (raw inputs -> features) or
    ``(source_features, target_features)``; the one with the highest LogME on the source labels is
    assessed (with candidates the samples may be raw texts: lists of strings for a text encoder)
    (``finetunable``: True when every candidate is an encoder that can be trained, or the
    names of those that can; the ``fine_tune`` advice needs the chosen one to be trainable).
    ``classifier``: ``logreg`` (default), ``svm`` or ``1nn``, used by every pilot pipeline.
    ``pilot``: the cheap adaptations (shallow method names, or ``(label, name, params)``);
    ``deep=True`` adds a small MLP trained on the source alone and with DANN (``deep_steps``).
    ``validator``: the label-free validator that estimates each pipeline's target accuracy
    (default :data:`ADVISOR_VALIDATOR`, in accuracy units: the rules' margins are points). The tests use at most
    ``max_test_samples`` pooled samples and ``n_permutations``; the pilot at most
    ``max_pilot_source`` source samples. ``embedding``: ``"pca"``/``"tsne"``/``"auto"`` adds a 2-D
    map of the features. ``rules`` overrides thresholds of :data:`RULES` (keys must exist).
    """
    from transferkit.assess.distances import bbse, coral_distance, proxy_a_distance
    from transferkit.assess.shift import classifier_test, energy_test, mmd_test
    from transferkit.assess.transferability import logme, standardize_columns
    from transferkit.core.registries import SHALLOW
    from transferkit.selection._registry import VALIDATORS
    from transferkit.selection.candidates import (
        fit_shallow_candidate,
        score_all,
        stratified_holdout,
    )
    from transferkit.selection.guard import check_collapse, select
    from transferkit.selection.validators import is_pool_validator

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    th = dict(RULES)
    for k, v in dict(rules or {}).items():
        if k not in th:
            raise ConfigError(f"advise: unknown rule {k!r}; known: {', '.join(th)}")
        th[k] = float(v)
    if classifier not in _SOURCE_ONLY:
        raise ConfigError(f"advise: classifier must be one of {', '.join(_SOURCE_ONLY)}, got {classifier!r}")
    min_perm = math.ceil(3 / th["alpha"]) - 1
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int) or n_permutations < min_perm:
        raise ConfigError(f"advise: n_permutations must be an integer >= {min_perm}, got {n_permutations!r}: "
                          f"a permutation p-value is at least 1 / (n_permutations + 1) and must be able "
                          f"to reach the per-test level {th['alpha']:g} / 3")
    vname = validator or ADVISOR_VALIDATOR
    if "+" in vname:
        raise ConfigError(f"advise: the validator must be one registered validator on the accuracy "
                          f"scale (the rules compare it in points), got {vname!r}")
    VALIDATORS.get(vname, "validator")
    specs = _pilot_specs(pilot, classifier)
    for _, name, _p in specs:
        SHALLOW.entry(name, "pilot")
    trainable = _trainable(finetunable, list(candidates) if candidates else ["input"])

    xs_in, ys, xt_in, raw = _unpack(source, target, source_labels, encoded=bool(candidates))
    K = int(ys.max()) + 1
    gen = np.random.default_rng(seed)

    # -- features: the input, or the candidate with the highest LogME on the source labels
    transfer: dict[str, dict[str, float]] = {}
    feats = {"input": (xs_in, xt_in)} if not candidates else _features(candidates, raw)
    t0 = time.perf_counter()
    sub = _subsample(len(ys), max_pilot_source, gen)
    for name, (fs, _ft) in feats.items():  # on z-scored columns, as rank_encoders ranks encoders
        transfer[name] = {"logme": float(logme(standardize_columns(fs[sub]), ys[sub]))}
    chosen = max(transfer, key=lambda n: (transfer[n]["logme"], -list(transfer).index(n)))
    xs, xt = feats[chosen]
    timings["transferability"] = time.perf_counter() - t0

    # -- shift tests and distances (pooled subsample of at most max_test_samples)
    t0 = time.perf_counter()
    nt = min(len(xt), max(max_test_samples - len(xs), max_test_samples // 2))
    ns = min(len(xs), max_test_samples - nt)
    i_s, i_t = _subsample(len(xs), ns, gen), _subsample(len(xt), nt, gen)
    zs, zt = xs[i_s], xt[i_t]
    # standardise with pooled statistics (per-domain scaling would remove the shift)
    mu, sd = np.vstack([zs, zt]).mean(0), np.vstack([zs, zt]).std(0)
    sd[sd == 0] = 1.0
    zs, zt = (zs - mu) / sd, (zt - mu) / sd
    tseed = int(gen.integers(2**31 - 1))
    tests = [mmd_test(zs, zt, n_permutations=n_permutations, seed=tseed),
             energy_test(zs, zt, n_permutations=n_permutations, seed=tseed),
             classifier_test(zs, zt, seed=tseed)]
    timings["tests"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    distances = {"proxy_a": float(proxy_a_distance(zs, zt, seed=tseed)),
                 "coral": float(coral_distance(zs, zt))}
    timings["distances"] = time.perf_counter() - t0
    p_min = min(t.p_value for t in tests)
    level = th["alpha"] / len(tests)
    shift = p_min <= level

    # -- pilot: source-only vs cheap adaptations, one shared held-out split
    t0 = time.perf_counter()
    xs_p, ys_p = xs[sub], ys[sub]
    split = stratified_holdout(ys_p, val_fraction, int(gen.integers(2**31 - 1)))
    cands: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for label, name, params in specs:
        try:
            if "n_components" in SHALLOW.entry(name).defaults() and "n_components" not in params:
                d_default = SHALLOW.entry(name).defaults()["n_components"]
                if isinstance(d_default, int) and d_default > xs_p.shape[1]:
                    params = {**params, "n_components": int(xs_p.shape[1])}
            est = SHALLOW.create(name, params, path=f"pilot.{label}")
            if "random_state" in est.get_params():
                est.set_params(random_state=seed)
            c = fit_shallow_candidate(est, label, xs_p, ys_p, xt, split=split, n_classes=K)
            c.update(method=name, params=params, kind="shallow")
            cands.append(c)
        except (ConfigError, DataError, ValueError, np.linalg.LinAlgError) as exc:
            if label == "source_only":
                raise
            failed[label] = str(exc)
    if deep:
        cands += _deep_candidates(xs_p, ys_p, xt, split, K, deep_steps, seed)
    vparams = {v: None for v in VALIDATORS.names() if not is_pool_validator(v)}
    prior = np.bincount(ys_p[split[0]], minlength=K).astype(float)
    rows = []
    for c in cands:
        sc = score_all(c, vparams)
        g = check_collapse(c["target_probs"], expected_proportions=prior)
        c["scores"], c["guard"] = sc, g
        rows.append({"name": c["name"], "method": c["method"], "params": c["params"],
                     "kind": c["kind"], "scores": {k: _clean(v) for k, v in sc.items()},
                     "guard_ok": g.ok, "guard_reasons": list(g.reasons),
                     "effective_classes": g.stats["effective_classes"], "tv": g.stats["tv"],
                     "source_val_accuracy": float(np.mean(c["source_probs"].argmax(1) == c["source_labels"])),
                     "fit_seconds": c.get("fit_seconds")})
    base = next(c for c in cands if c["name"] == "source_only")
    base_score = base["scores"][vname]
    for r, c in zip(rows, cands):
        s = c["scores"][vname]
        r["gain"] = None if not (np.isfinite(s) and np.isfinite(base_score)) or c is base \
            else float(s - base_score)
    sel = select([{k: c[k] for k in ("name", "scores", "guard")} for c in cands], vname,
                 guard=True, fallback="source_only", min_agreement=-2.0)
    timings["pilot"] = time.perf_counter() - t0

    # -- label shift from the source-only pilot model (BBSE)
    label_shift: dict[str, Any] = {}
    try:
        est = bbse(base["source_probs"], base["source_labels"], base["target_probs"])
        q = np.zeros(K)
        q[est.classes] = est.target_proportions
        p_src = np.bincount(ys_p[split[0]], minlength=K) / len(split[0])
        label_shift = {"target_proportions": q.round(4).tolist(), "source_proportions": p_src.round(4).tolist(),
                       "tv": float(0.5 * np.abs(q - p_src).sum()),
                       "condition_number": float(est.condition_number), "clipped": est.clipped}
    except DataError as exc:
        label_shift = {"error": str(exc)}

    # -- figures
    src_acc = float(np.mean(base["source_probs"].argmax(1) == base["source_labels"]))
    transfer[chosen]["source_probe_accuracy"] = src_acc
    adapt_rows = [r for r in rows if r["name"] != "source_only"]
    ok_adapt = [r for r in adapt_rows if r["guard_ok"] and r["gain"] is not None]
    best = max(ok_adapt, key=lambda r: r["gain"]) if ok_adapt else None
    figures: dict[str, Any] = {
        "min_p_value": p_min, "test_level": level, "shift_detected": bool(shift),
        **{f"p_{t.method}": t.p_value for t in tests}, **distances,
        f"logme_{chosen}": transfer[chosen]["logme"], "source_val_accuracy": src_acc,
        f"{vname}_source_only": _clean(base_score),
        "source_only_guard_ok": bool(base["guard"].ok),
        "source_only_effective_classes": float(base["guard"].stats["effective_classes"]),
        "best_adaptation": best["name"] if best else None,
        "best_gain": best["gain"] if best else None,
        "label_shift_tv": label_shift.get("tv"),
    }

    # -- rules (module docstring), in order
    so_pipe = {"method": base["method"], "params": {}, "features": chosen, "label": "source_only"}
    rec, pick, reasons = decide(
        tests=[(t.method, t.p_value) for t in tests], proxy_a=distances["proxy_a"],
        source_only_guard=(bool(base["guard"].ok), list(base["guard"].reasons)),
        label_shift_tv=label_shift.get("tv"), pilot=rows, validator=vname,
        source_accuracy=src_acc, finetunable=trainable(chosen), features=chosen, rules=th)
    if rec == "adapt":
        r = next(r for r in rows if r["name"] == pick)
        pipe = {"method": r["method"], "params": r["params"], "features": chosen, "label": r["name"]}
    elif rec == "fine_tune":
        pipe = {"method": "fine_tune", "params": {}, "features": chosen, "label": "fine_tune"}
    else:
        pipe = so_pipe
    if len(transfer) > 1:
        ranked = sorted(transfer, key=lambda n: -transfer[n]["logme"])
        reasons.append(f"Features: {chosen} has the highest LogME on the source labels ("
                       + ", ".join(f"{n} {transfer[n]['logme']:.3f}" for n in ranked) + ").")
    if failed:
        reasons.append("Pilot pipelines that could not run: "
                       + "; ".join(f"{k}: {v}" for k, v in failed.items()) + ".")

    emb = None
    if embedding:
        from transferkit.assess.embedding import embed_2d

        emb = embed_2d(xs, xt, method=embedding, seed=seed)
    timings["total"] = time.perf_counter() - t_start
    return Advice(
        recommendation=rec, pipeline=pipe, reasons=reasons, figures=figures,
        tests=[t.to_dict() for t in tests], distances=distances, transferability=transfer,
        label_shift=label_shift, pilot=rows, selection=sel.to_dict(), rules=th, validator=vname,
        data={"n_source": len(xs), "n_target": len(xt), "n_features": int(xs.shape[1]),
              "n_classes": K, "features": chosen, "n_pilot_source": len(sub),
              "n_test_source": len(i_s), "n_test_target": len(i_t)},
        timings=timings, embedding=emb)


def _trainable(finetunable: bool | Collection[str], names: Sequence[str]) -> Callable[[str], bool]:
    """``advise``'s ``finetunable`` checked against the candidate ``names``: whether a candidate's
    encoder can be trained."""
    if isinstance(finetunable, bool):
        return lambda name: finetunable
    if isinstance(finetunable, str) or not isinstance(finetunable, Collection):
        raise ConfigError(f"advise: finetunable must be True/False or a list of candidate names, "
                          f"got {finetunable!r}")
    unknown = [n for n in finetunable if n not in names]
    if unknown:
        raise ConfigError(f"advise: finetunable names {unknown} are not candidates; candidates: "
                          f"{', '.join(names)}")
    allowed = set(finetunable)
    return lambda name: name in allowed


def decide(*, tests: Sequence[tuple[str, float]], proxy_a: float,
           source_only_guard: tuple[bool, list[str]], label_shift_tv: float | None,
           pilot: Sequence[Mapping[str, Any]], validator: str, source_accuracy: float,
           finetunable: bool = False, features: str = "input",
           rules: Mapping[str, float] | None = None) -> tuple[str, str | None, list[str]]:
    """The advisor's rules (module docstring) on measured figures only.

    ``tests``: (name, p-value) of the shift tests; ``source_only_guard``: (accepted, reasons) of the
    collapse guard on the source-only model's target predictions; ``pilot``: rows with ``name``
    (``"source_only"`` for the baseline), ``guard_ok``, ``gain`` (validator score minus the
    source-only one, None when unknown) and ``scores``. Returns ``(recommendation, pipeline name
    or None, reasons)``; the pipeline is the pilot row to run for ``adapt`` and ``"source_only"``
    for ``no_adaptation`` / ``negative_transfer_likely``.
    """
    th = dict(RULES)
    th.update(dict(rules or {}))
    reasons: list[str] = []
    p_min = min(p for _, p in tests)
    level = th["alpha"] / len(tests)
    test_txt = ", ".join(f"{m} p = {_fmt_p(p)}" for m, p in tests)
    base = next((r for r in pilot if r["name"] == "source_only"), None)
    base_score = None if base is None else (base.get("scores") or {}).get(validator)
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}"
    if p_min > level:
        reasons.append(f"No shift test rejects at the family-wise level {th['alpha']:g} ({test_txt}; "
                       f"each needs p <= {level:.4f}), so the source model can be used as is.")
        reasons.append(f"The domains are hard to tell apart: proxy A-distance {proxy_a:.2f} "
                       "(0 = indistinguishable, 2 = separable).")
        return "no_adaptation", "source_only", reasons
    reasons.append(f"The target is shifted: {test_txt} (level {level:.4f}); proxy A-distance "
                   f"{proxy_a:.2f} (0 = same, 2 = separable).")
    adapt_rows = [r for r in pilot if r["name"] != "source_only"]
    ok_adapt = [r for r in adapt_rows if r["guard_ok"] and r.get("gain") is not None]
    best = max(ok_adapt, key=lambda r: r["gain"]) if ok_adapt else None
    harm_all = bool(adapt_rows) and all(
        (not r["guard_ok"]) or (r.get("gain") is not None and r["gain"] <= -th["harm_margin"])
        for r in adapt_rows)
    if source_only_guard[0] and label_shift_tv is not None and label_shift_tv > th["max_label_shift_tv"]:
        reasons.append(f"The estimated target class proportions differ from the source's by "
                       f"{label_shift_tv:.2f} (total variation, BBSE from the source-only model; more "
                       f"than {th['max_label_shift_tv']:g}): aligning feature distributions under such "
                       "label shift misaligns classes. Caveat: BBSE assumes that only the class "
                       "proportions change; if the class-conditional inputs changed too (the shift "
                       "tests cannot tell which), the estimate can be far off, more so when the "
                       "source-only model is weak on the target.")
        return "negative_transfer_likely", "source_only", reasons
    if best is not None and best["gain"] >= th["min_gain"]:
        reasons.append(f"{best['name']} is estimated {100 * best['gain']:+.1f} points better than "
                       f"source-only by {validator} ({pct(best['scores'].get(validator))} vs "
                       f"{pct(base_score)}; at least {100 * th['min_gain']:.0f} needed) and passes "
                       "the collapse guard.")
        if not source_only_guard[0]:
            reasons.append("The source-only model's target predictions collapse ("
                           + "; ".join(source_only_guard[1]) + "); the adaptation does not.")
        return "adapt", best["name"], reasons
    if not source_only_guard[0]:
        reasons.append("The source-only model's target predictions collapse: "
                       + "; ".join(source_only_guard[1]) + ". The source decision rules do not "
                       "carry over and no pilot adaptation is estimated to fix it "
                       f"(best: {_gain_txt(best)}).")
        return "negative_transfer_likely", "source_only", reasons
    if harm_all:
        parts = [f"{r['name']}: " + ("collapsed" if not r["guard_ok"] else
                                     f"{100 * r['gain']:+.1f} pt") for r in adapt_rows]
        reasons.append(f"Every pilot adaptation is rejected by the collapse guard or estimated at "
                       f"least {100 * th['harm_margin']:.0f} points worse than source-only by "
                       f"{validator} ({', '.join(parts)}).")
        return "negative_transfer_likely", "source_only", reasons
    if finetunable and source_accuracy < th["fine_tune_source_acc"]:
        reasons.append(f"No pilot adaptation is estimated to gain {100 * th['min_gain']:.0f} point "
                       f"or more (best: {_gain_txt(best)}), and the frozen {features} features reach "
                       f"only {pct(source_accuracy)} % held-out source accuracy (below "
                       f"{pct(th['fine_tune_source_acc'])} %): train the encoder on the source labels.")
        return "fine_tune", None, reasons
    reasons.append(f"No pilot adaptation is estimated to gain {100 * th['min_gain']:.0f} point or "
                   f"more over source-only by {validator} (best: {_gain_txt(best)}), so adaptation "
                   "is not worth it here.")
    return "no_adaptation", "source_only", reasons


def _gain_txt(best: dict[str, Any] | None) -> str:
    return "none passed the guard" if best is None else f"{best['name']} {100 * best['gain']:+.1f} pt"


def _clean(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
