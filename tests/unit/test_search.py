"""Validator-driven hyper-parameter search (transferkit.selection.search) with Optuna."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from transferkit.core.errors import ConfigError

optuna = pytest.importorskip("optuna")

from optuna.trial import FixedTrial, TrialState  # noqa: E402

from transferkit.selection import search, suggest_params, trials_table  # noqa: E402

SPACE = {"trade_off": {"low": 0.01, "high": 10, "log": True}, "estimator": ["1nn", "svm"],
         "dim": {"low": 2, "high": 8, "step": 2}, "reg": {"choices": [0.1, 1.0]}, "kernel": "linear"}


def test_suggest_params_maps_the_spec_to_distributions():
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    params = suggest_params(trial, SPACE)
    assert set(params) == set(SPACE) and params["kernel"] == "linear"
    d = trial.distributions
    assert isinstance(d["trade_off"], optuna.distributions.FloatDistribution) and d["trade_off"].log
    assert (d["trade_off"].low, d["trade_off"].high) == (0.01, 10.0)
    assert isinstance(d["dim"], optuna.distributions.IntDistribution) and d["dim"].step == 2
    assert d["estimator"].choices == ("1nn", "svm") and d["reg"].choices == (0.1, 1.0)
    assert "kernel" not in d  # fixed, not searched
    fixed = FixedTrial({"trade_off": 0.5, "estimator": "svm", "dim": 4, "reg": 1.0})
    assert suggest_params(fixed, SPACE) == {"trade_off": 0.5, "estimator": "svm", "dim": 4,
                                            "reg": 1.0, "kernel": "linear"}
    assert isinstance(suggest_params(FixedTrial({"x": 2.0}), {"x": {"low": 1, "high": 3,
                                                                    "type": "float"}})["x"], float)


@pytest.mark.parametrize("spec, match", [
    ({"low": 1, "high": 0}, "must not exceed"),
    ({"low": 0, "high": 1, "log": True}, "low > 0"),
    ({"low": 0, "hi": 1}, "takes low, high"),
    ({"low": 0, "high": 1, "type": "double"}, "type must be"),
    ([], "at least one choice"),
    ({"choices": [[1, 2]]}, "choices must be"),
    (object(), "unsupported spec"),
])
def test_suggest_params_rejects_bad_specs(spec, match):
    with pytest.raises(ConfigError, match=match) as exc:
        suggest_params(FixedTrial({}), {"x": spec})
    assert "space.x" in str(exc.value)


def _objective(trial):
    x = suggest_params(trial, {"x": {"low": -1.0, "high": 1.0}})["x"]
    return -(x - 0.3) ** 2


def test_search_runs_the_budget_in_memory_and_with_threads(tmp_path):
    study = search(_objective, n_trials=6, storage="memory", seed=0, sampler="random")
    assert len(study.trials) == 6 and study.best_value <= 0
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert [r["number"] for r in trials_table(study)] == list(range(6))
    study = search(_objective, n_trials=10, storage="memory", n_jobs=2, sampler="random", seed=1)
    assert sorted(t.number for t in study.trials) == list(range(10))


def test_search_prunes_and_resumes_on_sqlite(tmp_path):
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(4):
            trial.report(x * (step + 1), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return x * 4

    study = search(objective, n_trials=7, out=tmp_path, study_name="s", sampler="random",
                   pruner="median", seed=0)
    assert (tmp_path / "study.db").is_file()
    states = [t.state for t in study.trials]
    assert len(states) == 7 and set(states) <= {TrialState.COMPLETE, TrialState.PRUNED}
    # joining the same study with a larger budget runs only the difference
    study = search(objective, n_trials=9, out=tmp_path, study_name="s", sampler="random", seed=1)
    assert sorted(t.number for t in study.trials) == list(range(9))
    assert "s" in optuna.get_all_study_names(f"sqlite:///{tmp_path / 'study.db'}")
    assert all("lock" not in n for n in optuna.get_all_study_names(f"sqlite:///{tmp_path / 'study.db'}"))


def test_search_failures_and_bad_arguments():
    calls = []

    def flaky(trial):
        calls.append(trial.number)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return 1.0

    # a caught failure does not use up the budget
    study = search(flaky, n_trials=3, storage="memory", catch=(RuntimeError,))
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 3 and states.count(TrialState.FAIL) == 1
    calls.clear()
    with pytest.raises(RuntimeError):
        search(flaky, n_trials=3, storage="memory")
    with pytest.raises(ConfigError, match="n_trials"):
        search(_objective, n_trials=0, storage="memory")
    with pytest.raises(ConfigError, match="unknown sampler"):
        search(_objective, n_trials=1, storage="memory", sampler="tpee")
    with pytest.raises(ConfigError, match="unknown pruner"):
        search(_objective, n_trials=1, storage="memory", pruner="medain")


WORKER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from transferkit.selection import search
    from transferkit.selection.search import make_storage

    out, me = Path(sys.argv[1]), sys.argv[2]
    storage = f"sqlite:///{out / 'study.db'}"
    make_storage(storage)  # tables exist before the start signal
    (out / f"ready-{me}").touch()
    while not (out / "go").exists():
        time.sleep(0.01)

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("worker", me)
        time.sleep(0.02)
        return x

    search(objective, n_trials=20, storage=storage, study_name="shared", sampler="random",
           seed=int(me))
    print("done", me)
""")


def test_two_worker_processes_share_one_budget(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"),
                                                       os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path), str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in (1, 2)]
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready-{i}").exists() for i in (1, 2)):
            assert time.monotonic() < deadline, "workers did not start"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.05)
        (tmp_path / "go").touch()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="shared", storage=f"sqlite:///{tmp_path / 'study.db'}")
    trials = study.get_trials(deepcopy=False)
    numbers = sorted(t.number for t in trials)
    assert numbers == list(range(20))  # none lost, none duplicated, no extra
    assert all(t.state == TrialState.COMPLETE for t in trials)
    workers = {t.user_attrs["worker"] for t in trials}
    assert workers == {"1", "2"}  # both processes ran trials


def test_budget_lock_is_exclusive_and_breaks_a_dead_holders_lock():
    from transferkit.selection.search import _BudgetLock

    storage = optuna.storages.InMemoryStorage()
    dead = _BudgetLock(storage, "s", stale_after=0.3)
    dead.__enter__()  # a worker that dies while holding the lock
    t = time.monotonic()
    alive = _BudgetLock(storage, "s", stale_after=0.3)
    with alive:
        assert time.monotonic() - t >= 0.3
        holder = alive._holder()
        dead.__exit__(None, None, None)  # the late exit must not release someone else's lock
        assert alive._holder() == holder
    assert alive._holder() is None
