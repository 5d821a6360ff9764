import numpy as np
import pytest

from transferkit import DataError, DomainDataset, make_task


def _arrays(n=20, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, 2, n)


def test_from_arrays_views_and_numpy():
    xs, ys = _arrays()
    xt, yt = _arrays(seed=1)
    ds = DomainDataset.from_arrays(xs, ys, xt, yt, source_name="A", target_name="B")
    assert len(ds) == 40 and ds.num_classes == 2 and ds.sample_shape == (4,)
    assert (ds.source().sample_domain >= 0).all() and (ds.target().sample_domain < 0).all()
    X, y, sd = ds.to_numpy()
    assert X.shape == (40, 4) and (y[sd < 0] == -1).all() and (y[sd >= 0] == ys).all()
    t = ds.to_torch()
    assert t["x"].dtype.is_floating_point and t["y"].shape == (40,)


def test_task_masks_target_labels():
    xs, ys = _arrays()
    xt, yt = _arrays(seed=1)
    task = make_task(xs, ys, xt, xt, yt, name="t")
    assert (task.train.target().y == -1).all()
    assert (task.y_test == yt).all()


def test_width_mismatch():
    xs, ys = _arrays(d=4)
    xt, _ = _arrays(d=5)
    with pytest.raises(DataError, match=r"source samples have shape \(4,\) but target samples have \(5,\)"):
        DomainDataset.from_arrays(xs, ys, xt)


def test_nan_features():
    xs, ys = _arrays()
    xt, _ = _arrays(seed=1)
    xt[3, 1] = np.nan
    with pytest.raises(DataError, match=r"NaN or infinite.*rows: \[23\]"):
        DomainDataset.from_arrays(xs, ys, xt)


def test_empty_target_domain_is_allowed_empty_source_is_not():
    xs, ys = _arrays()
    ds = DomainDataset.from_arrays(xs, ys, np.zeros((0, xs.shape[1])))  # plain fine-tuning: source alone
    assert ds.is_source.all() and len(ds.target().x) == 0
    with pytest.raises(DataError, match="source domain has no samples"):
        DomainDataset.from_arrays(np.zeros((0, xs.shape[1])), np.zeros(0, int), xs)


def test_labels_outside_declared_classes():
    xs, ys = _arrays()
    xt, _ = _arrays(seed=1)
    ys[0] = 7
    with pytest.raises(DataError, match=r"labels \[7\] are outside the declared classes 0..2"):
        DomainDataset.from_arrays(xs, ys, xt, classes=["a", "b", "c"])
    with pytest.raises(DataError, match="test labels"):
        make_task(xs, np.zeros(20, int) + (np.arange(20) % 2), xt, xt, np.full(20, 5), name="t",
                  classes=["a", "b"])
