"""Hyper-parameter search driven by a label-free validator, with Optuna (the ``search`` extra).

:func:`search` runs an Optuna study whose objective returns a validator score (higher = better);
the objective may report intermediate scores (``trial.report(score, step)``) and stop early when
``trial.should_prune()`` (median rule, successive halving or Hyperband). Several processes or
machines share one study through its storage (an SQLite file by default, or any RDB URL), and the
total trial budget holds across all of them: workers each asked for ``n_trials`` together finish
exactly ``n_trials`` trials. :func:`suggest_params` turns a small search-space dict into
suggestions.

Optuna is imported inside the functions, never at import.
"""

from __future__ import annotations

import logging
import math
import random
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from transferkit.core.errors import ConfigError

_log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "random", "qmc")
PRUNERS = ("median", "successive_halving", "hyperband", "none")
#: suffix of the auxiliary study that serialises trial creation across workers
LOCK_SUFFIX = "::transferkit-budget-lock"


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError("hyper-parameter search needs Optuna: pip install 'transferkit[search]'") \
            from exc
    return optuna


def make_sampler(sampler: Any = "tpe", seed: int | None = None) -> Any:
    """An Optuna sampler from a name (``tpe``, ``random``, ``qmc``) or a sampler object."""
    optuna = _optuna()
    if not isinstance(sampler, str):
        return sampler
    name = sampler.lower()
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed)
    from transferkit.core.registry import suggest

    raise ConfigError(f"unknown sampler {sampler!r}.{suggest(sampler, list(SAMPLERS))} Known: "
                      f"{', '.join(SAMPLERS)}, or pass an optuna sampler.")


def make_pruner(pruner: Any = "median") -> Any:
    """An Optuna pruner from a name (``median``, ``successive_halving``, ``hyperband``, ``none``),
    None (no pruning) or a pruner object."""
    optuna = _optuna()
    if pruner is None:
        return optuna.pruners.NopPruner()
    if not isinstance(pruner, str):
        return pruner
    name = pruner.lower()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if name in ("successive_halving", "sha", "asha"):
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    from transferkit.core.registry import suggest

    raise ConfigError(f"unknown pruner {pruner!r}.{suggest(pruner, list(PRUNERS))} Known: "
                      f"{', '.join(PRUNERS)}, or pass an optuna pruner.")


def make_storage(storage: Any = None, *, out: str | Path = ".") -> Any:
    """The Optuna storage: None -> ``sqlite:///<out>/study.db`` (``out`` is created);
    ``"memory"`` -> in-memory (one process only); an SQLite or other RDB URL; or a storage object.

    SQLite files are put in write-ahead-log mode with ``synchronous=NORMAL`` (readers do not block
    the writer, commits do not wait for the disk; safe on a local disk, which SQLite needs anyway)
    and connections wait up to 60 s for a lock, so several local workers can share the file. To
    share a study between machines use a server database (``postgresql://...``, ``mysql://...``).
    """
    optuna = _optuna()
    if storage is None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{(folder / 'study.db').resolve()}"
    if not isinstance(storage, str):
        return storage
    if storage == "memory":
        return optuna.storages.InMemoryStorage()
    kwargs: dict[str, Any] = {}
    sqlite = storage.startswith("sqlite")
    if sqlite:
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
        _sqlite_wal(storage)
    for attempt in range(5):  # several workers creating the tables at once may collide
        try:
            rdb = optuna.storages.RDBStorage(storage, **kwargs)
            break
        except Exception:  # noqa: BLE001 - retried, then re-raised
            if attempt == 4:
                raise
            time.sleep(0.2 + random.random())
    if sqlite:
        from sqlalchemy import event

        @event.listens_for(rdb.engine, "connect")
        def _pragmas(dbapi_connection: Any, record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        rdb.engine.dispose()  # later connections get the pragma
    return rdb


def _sqlite_wal(url: str) -> None:
    """Switch the SQLite file of ``url`` to write-ahead logging (persistent; best effort)."""
    import sqlite3

    from sqlalchemy.engine import make_url

    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        con = sqlite3.connect(path, timeout=60)
        try:
            con.execute("PRAGMA journal_mode=WAL")
        finally:
            con.close()
    except sqlite3.Error as exc:  # another process holds it: the default journal still works
        _log.debug("could not switch %s to WAL mode: %s", path, exc)


class _HideLockLogs(logging.Filter):
    """Drops Optuna's "A new study created ..." lines about the budget lock study."""

    def filter(self, record: logging.LogRecord) -> bool:
        return LOCK_SUFFIX not in record.getMessage()


def _hide_lock_logs() -> None:
    for name in ("optuna.storages._rdb.storage", "optuna.storages._in_memory",
                 "optuna.storages.journal._storage"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _HideLockLogs) for f in logger.filters):
            logger.addFilter(_HideLockLogs())


class _BudgetLock:
    """A mutex shared by every worker of a study, held in the storage itself.

    It is an auxiliary study named ``<study_name>::transferkit-budget-lock``, which exists while
    the lock is held: creating a study is atomic (names are unique in every Optuna storage), so
    one worker at a time gets it, on one machine or many. The holder tags it with a random token.
    The lock is held only to count trials and create the next one (milliseconds); a lock seen
    with the same token for ``stale_after`` seconds (its worker was killed inside that window) is
    broken.
    """

    def __init__(self, storage: Any, study_name: str, *, stale_after: float = 120.0,
                 poll: float = 0.02) -> None:
        self.storage = storage
        self.name = study_name + LOCK_SUFFIX
        self.stale_after = stale_after
        self.poll = poll
        self._held: tuple[int, str] | None = None
        _hide_lock_logs()

    def _holder(self) -> tuple[int, str | None] | None:
        """``(study id, token)`` of the current lock, None when free."""
        try:
            sid = self.storage.get_study_id_from_name(self.name)
            return sid, self.storage.get_study_user_attrs(sid).get("token")
        except KeyError:
            return None

    def __enter__(self) -> "_BudgetLock":
        import uuid

        optuna = _optuna()
        from optuna.study import StudyDirection

        seen: tuple[tuple[int, str | None], float] | None = None
        while True:
            try:
                sid = self.storage.create_new_study([StudyDirection.MINIMIZE], self.name)
            except (optuna.exceptions.DuplicatedStudyError,
                    optuna.exceptions.StorageInternalError):  # held, or a busy database
                pass
            else:
                token = uuid.uuid4().hex
                self.storage.set_study_user_attr(sid, "token", token)
                self._held = (sid, token)
                return self
            holder = self._holder()
            if holder is None:
                continue  # released meanwhile
            now = time.monotonic()
            if seen is None or seen[0] != holder:
                seen = (holder, now)
            elif now - seen[1] > self.stale_after:
                _log.warning("breaking a search budget lock held for over %.0f s", self.stale_after)
                self._delete(holder[0])
                seen = None
                continue
            time.sleep(self.poll * (1.0 + random.random()))

    def _delete(self, study_id: int) -> None:
        try:
            self.storage.delete_study(study_id)
        except KeyError:
            pass

    def __exit__(self, *exc: Any) -> None:
        held, self._held = self._held, None
        if held is not None and self._holder() == held:  # still ours (not broken as stale)
            self._delete(held[0])


def _counted_states() -> tuple[Any, ...]:
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def _run_trial(study: Any, trial: Any, objective: Callable[[Any], float],
               catch: tuple[type[BaseException], ...]) -> None:
    optuna = _optuna()
    from optuna.trial import TrialState

    try:
        value = objective(trial)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
    except catch as exc:  # the trial fails, the search goes on
        _log.warning("trial %d failed: %r", trial.number, exc)
        study.tell(trial, state=TrialState.FAIL)
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        raise
    else:
        study.tell(trial, value)  # a NaN or None value marks the trial failed, with a warning


def _worker(study: Any, objective: Callable[[Any], float], n_trials: int, lock: _BudgetLock,
            deadline: float | None, catch: tuple[type[BaseException], ...]) -> None:
    states = _counted_states()
    while deadline is None or time.monotonic() < deadline:
        with lock:
            if len(study.get_trials(deepcopy=False, states=states)) >= n_trials:
                return
            trial = study.ask()
        _run_trial(study, trial, objective, catch)


def search(objective: Callable[[Any], float], *, n_trials: int, storage: Any = None,
           study_name: str = "transferkit", sampler: Any = "tpe", pruner: Any = "median",
           seed: int | None = None, direction: str = "maximize", n_jobs: int = 1,
           out: str | Path = ".", timeout: float | None = None,
           catch: tuple[type[BaseException], ...] = ()) -> Any:
    """Run (or join) an Optuna study until it holds ``n_trials`` finished trials; return the study.

    ``objective(trial) -> float``: builds a candidate from ``trial`` suggestions (see
    :func:`suggest_params`), trains it and returns its label-free validator score (e.g.
    :func:`~transferkit.selection.score_candidate`); it may call ``trial.report(score, step)``
    and ``raise optuna.TrialPruned()`` when ``trial.should_prune()``. Never return a target-label
    metric: that is model selection on the test set.

    ``storage``: None -> ``sqlite:///<out>/study.db``; an RDB URL (``sqlite:///...``,
    ``postgresql://...``) to share the study between processes or machines; ``"memory"``; or an
    Optuna storage. The study ``study_name`` is created or joined (``load_if_exists``).
    ``sampler``: ``tpe`` | ``random`` | ``qmc`` | an Optuna sampler, seeded with ``seed`` (workers
    sharing a study should use different seeds, e.g. ``seed + worker_index``, or they propose the
    same first points). ``pruner``: ``median`` | ``successive_halving`` | ``hyperband`` | ``none``
    | an Optuna pruner. ``n_jobs``: threads in this process. ``timeout``: seconds after which no
    new trial starts. ``catch``: exception types that fail a trial without stopping the search
    (others fail the trial and propagate).

    Budget: trials COMPLETE, PRUNED or RUNNING count towards ``n_trials`` across every worker;
    FAILed trials do not (they are retried). Counting and creating a trial happen under a lock held
    in the storage, so two workers each asked for 20 trials end with exactly 20 finished trials
    (Optuna's ``MaxTrialsCallback`` checks only after a trial ends, so concurrent workers can
    overshoot by up to one trial each). A RUNNING trial left by a killed worker keeps its slot:
    mark it failed with ``study.tell(number, state=TrialState.FAIL)`` to free it.
    """
    optuna = _optuna()
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(f"search: n_trials must be an integer >= 1, got {n_trials!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ConfigError(f"search: n_jobs must be an integer >= 1, got {n_jobs!r}")
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"search: direction must be 'maximize' or 'minimize', got {direction!r}")
    if not study_name or LOCK_SUFFIX in study_name:
        raise ConfigError(f"search: invalid study_name {study_name!r}")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"search: timeout must be > 0 seconds or None, got {timeout!r}")
    store = make_storage(storage, out=out)
    study = optuna.create_study(storage=store, study_name=study_name,
                                sampler=make_sampler(sampler, seed), pruner=make_pruner(pruner),
                                direction=direction, load_if_exists=True)
    lock = _BudgetLock(store, study_name)
    deadline = None if timeout is None else time.monotonic() + timeout
    if n_jobs == 1:
        _worker(study, objective, n_trials, lock, deadline, tuple(catch))
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            futures = [pool.submit(_worker, study, objective, n_trials, lock, deadline, tuple(catch))
                       for _ in range(n_jobs)]
            for f in futures:
                f.result()
    return study


def trials_table(study: Any) -> list[dict[str, Any]]:
    """One row per trial (number, state, value, params, duration in seconds), for reports."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        dur = t.duration.total_seconds() if t.duration is not None else None
        rows.append({"number": t.number, "state": t.state.name, "value": t.value,
                     "params": dict(t.params), "seconds": dur})
    return rows


_RANGE_KEYS = {"low", "high", "log", "step", "type"}


def suggest_params(trial: Any, space: Mapping[str, Any]) -> dict[str, Any]:
    """Suggestions from ``trial`` for a simple search-space spec; returns ``{name: value}``.

    Each entry of ``space`` is one of:

    - a list or tuple of choices -> ``trial.suggest_categorical`` (e.g. ``["1nn", "svm"]``);
    - ``{"choices": [...]}`` -> the same;
    - ``{"low": a, "high": b}`` with optional ``log`` (bool), ``step`` and ``type`` (``"int"`` or
      ``"float"``) -> ``suggest_int`` when ``type`` is ``"int"`` or ``a``, ``b`` (and ``step``)
      are all integers and ``type`` is not ``"float"``, else ``suggest_float``;
    - a plain value (number, string, bool, None) -> fixed, returned as is (not a suggestion).

    Example: ``{"trade_off": {"low": 0.01, "high": 10, "log": True}, "estimator": ["1nn", "svm"]}``.
    Invalid entries raise :class:`ConfigError` naming the key.
    """
    if not isinstance(space, Mapping):
        raise ConfigError(f"search space must be a dict of name -> spec, got {type(space).__name__}")
    out: dict[str, Any] = {}
    for name, spec in space.items():
        key = f"space.{name}"
        if isinstance(spec, (list, tuple)):
            out[name] = _categorical(trial, name, list(spec), key)
        elif isinstance(spec, Mapping):
            if "choices" in spec:
                extra = set(spec) - {"choices"}
                if extra:
                    raise ConfigError(f"a categorical spec takes only 'choices', got "
                                      f"{', '.join(sorted(extra))}", key)
                out[name] = _categorical(trial, name, list(spec["choices"]), key)
            else:
                out[name] = _numeric(trial, name, spec, key)
        elif spec is None or isinstance(spec, (bool, int, float, str)):
            out[name] = spec
        else:
            raise ConfigError(f"unsupported spec {spec!r}: use a list of choices, {{'low', 'high'}} "
                              "or a fixed value", key)
    return out


def _categorical(trial: Any, name: str, choices: list[Any], key: str) -> Any:
    if not choices:
        raise ConfigError("needs at least one choice", key)
    bad = [c for c in choices if not (c is None or isinstance(c, (bool, int, float, str)))]
    if bad:
        raise ConfigError(f"choices must be numbers, strings, bools or None, got {bad[0]!r}", key)
    return trial.suggest_categorical(name, choices)


def _numeric(trial: Any, name: str, spec: Mapping[str, Any], key: str) -> Any:
    extra = set(spec) - _RANGE_KEYS
    if extra or "low" not in spec or "high" not in spec:
        raise ConfigError(f"a range spec takes low, high and optionally log, step, type; got "
                          f"{', '.join(sorted(map(str, spec)))}", key)
    low, high = spec["low"], spec["high"]
    log = spec.get("log", False)
    step = spec.get("step")
    kind = spec.get("type")
    for what, v in (("low", low), ("high", high)) + ((("step", step),) if step is not None else ()):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{what} must be a finite number, got {v!r}", key)
    if not isinstance(log, bool):
        raise ConfigError(f"log must be true or false, got {log!r}", key)
    if kind not in (None, "int", "float"):
        raise ConfigError(f"type must be 'int' or 'float', got {kind!r}", key)
    if low > high:
        raise ConfigError(f"low ({low}) must not exceed high ({high})", key)
    if log and low <= 0:
        raise ConfigError(f"a log-scaled range needs low > 0, got {low}", key)
    if log and step is not None:
        raise ConfigError("log and step cannot be combined", key)
    if step is not None and step <= 0:
        raise ConfigError(f"step must be > 0, got {step}", key)
    ints = all(isinstance(v, int) for v in (low, high) + ((step,) if step is not None else ()))
    if kind == "int" or (kind is None and ints):
        if not all(float(v).is_integer() for v in (low, high)):
            raise ConfigError("an integer range needs integer low and high", key)
        return trial.suggest_int(name, int(low), int(high), step=int(step or 1), log=log)
    return trial.suggest_float(name, float(low), float(high), step=step, log=log)
