"""Readers on tiny files written to tmp_path: .mat v5 and v7.3, svmlight, npz, csv, IDX, and
load_domain_dataset with its label mapping."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from transferkit import DataError
from transferkit.data.readers import (
    load_domain_dataset,
    read_csv,
    read_idx,
    read_mat,
    read_npz,
    read_svmlight,
    remap_labels,
)


# -- .mat ---------------------------------------------------------------------------------------
def test_read_mat_v5(tmp_path):
    import scipy.io

    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    scipy.io.savemat(tmp_path / "a.mat", {"X": x, "labels": np.array([[1], [2], [3]])})
    out = read_mat(tmp_path / "a.mat")
    assert set(out) == {"X", "labels"}
    np.testing.assert_array_equal(out["X"], x)
    assert read_mat(tmp_path / "a.mat", keys="X")["X"].shape == (3, 4)


def _write_v73(path, variables):
    """A MATLAB v7.3 file as MATLAB writes it: a 512-byte user block with the text header, and
    each array stored column-major (h5py sees it transposed)."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        for name, (value, mclass) in variables.items():
            ds = f.create_dataset(name, data=np.asarray(value).T)
            ds.attrs["MATLAB_class"] = np.bytes_(mclass)
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: test, HDF5 schema 1.00 .".ljust(116, b" "))


def test_read_mat_v73_returns_matlab_orientation(tmp_path):
    x = np.arange(10, dtype=np.float64).reshape(2, 5)  # MATLAB sees 2 x 5
    word = np.array([[ord(c) for c in "hi"]], dtype=np.uint16)
    _write_v73(tmp_path / "b.mat", {"X": (x, "double"), "Y": (np.array([[1.0, 2.0]]), "double"),
                                    "name": (word, "char"), "flag": (np.array([[1, 0]], np.uint8), "logical")})
    out = read_mat(tmp_path / "b.mat")
    np.testing.assert_array_equal(out["X"], x)
    assert out["Y"].shape == (1, 2)
    assert out["name"].tolist() == ["hi"]
    assert out["flag"].dtype == bool and out["flag"].tolist() == [[True, False]]


def test_read_mat_missing_variable_lists_existing(tmp_path):
    import scipy.io

    scipy.io.savemat(tmp_path / "a.mat", {"fts": np.ones((2, 2)), "labels": np.ones((2, 1))})
    with pytest.raises(DataError, match=r"a\.mat: no variable 'Xs'; the file holds: 'fts', 'labels'"):
        read_mat(tmp_path / "a.mat", ["Xs"])
    _write_v73(tmp_path / "b.mat", {"Xs": (np.ones((2, 2)), "double")})
    with pytest.raises(DataError, match=r"b\.mat: no variable 'Ys'; the file holds: 'Xs'"):
        read_mat(tmp_path / "b.mat", ["Ys"])


def test_read_mat_missing_and_damaged(tmp_path):
    with pytest.raises(DataError, match=r"nope\.mat: MATLAB file not found"):
        read_mat(tmp_path / "nope.mat")
    (tmp_path / "bad.mat").write_bytes(b"this is not a mat file at all" * 10)
    with pytest.raises(DataError, match=r"bad\.mat: cannot read as a MATLAB file"):
        read_mat(tmp_path / "bad.mat")


# -- svmlight -----------------------------------------------------------------------------------
def test_read_svmlight_single_and_shared_width(tmp_path):
    (tmp_path / "a.svmlight").write_text("1 0:1 3:2\n-1 1:5\n")
    (tmp_path / "b.svmlight").write_text("-1 0:1 6:1\n")
    X, y = read_svmlight(tmp_path / "a.svmlight", n_features=10)
    assert X.shape == (2, 10) and X.dtype == np.float32 and X[0, 3] == 2 and y.tolist() == [1, -1]
    (Xa, _), (Xb, yb) = read_svmlight([tmp_path / "a.svmlight", tmp_path / "b.svmlight"])
    assert Xa.shape[1] == Xb.shape[1] == 7 and yb.tolist() == [-1]


def test_read_svmlight_errors(tmp_path):
    (tmp_path / "a.svmlight").write_text("1 0:1 30:2\n")
    with pytest.raises(DataError, match=r"a\.svmlight: cannot read as svmlight.*n_features=5"):
        read_svmlight(tmp_path / "a.svmlight", n_features=5)
    (tmp_path / "bad.svmlight").write_text("1 zero:one\n")
    with pytest.raises(DataError, match=r"bad\.svmlight: cannot read as svmlight"):
        read_svmlight(tmp_path / "bad.svmlight")
    with pytest.raises(DataError, match="svmlight file not found"):
        read_svmlight(tmp_path / "none.svmlight")


# -- npz ----------------------------------------------------------------------------------------
def test_read_npz(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.ones((3, 2)), y=np.arange(3))
    out = read_npz(tmp_path / "a.npz")
    assert out["x"].shape == (3, 2) and out["y"].tolist() == [0, 1, 2]
    np.savez(tmp_path / "p.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match=r"p\.npz: holds pickled objects"):
        read_npz(tmp_path / "p.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"bad\.npz: not a numpy \.npz archive"):
        read_npz(tmp_path / "bad.npz")


# -- csv ----------------------------------------------------------------------------------------
def test_read_csv_header_named_label_and_text_labels(tmp_path):
    (tmp_path / "a.csv").write_text("f1,f2,label\n1,2,cat\n3,4,dog\n5,6,cat\n")
    X, y = read_csv(tmp_path / "a.csv", label_column="label")
    assert X.shape == (3, 2) and X.dtype == np.float32 and y.tolist() == ["cat", "dog", "cat"]


def test_read_csv_numeric_no_header_gz_and_tab(tmp_path):
    with gzip.open(tmp_path / "a.csv.gz", "wt") as fh:
        fh.write("0,1.5,2\n1,0.5,7\n")
    X, y = read_csv(tmp_path / "a.csv.gz", label_column=0)
    assert X.tolist() == [[1.5, 2.0], [0.5, 7.0]] and y.dtype == np.int64 and y.tolist() == [0, 1]
    (tmp_path / "b.tsv").write_text("1\t2\t3\n4\t5\t6\n")
    X, y = read_csv(tmp_path / "b.tsv")
    assert X.shape == (2, 2) and y.tolist() == [3, 6]
    X, y = read_csv(tmp_path / "b.tsv", label_column=None)
    assert X.shape == (2, 3) and y is None


def test_read_csv_errors(tmp_path):
    (tmp_path / "a.csv").write_text("f1,f2,label\n1,x,0\n")
    with pytest.raises(DataError, match=r"a\.csv: line 2, column 'f2': 'x' is not a number"):
        read_csv(tmp_path / "a.csv", label_column="label")
    with pytest.raises(DataError, match=r"no label column 'y'; the file holds: 'f1', 'f2', 'label'"):
        read_csv(tmp_path / "a.csv", label_column="y")
    (tmp_path / "r.csv").write_text("1,2,3\n4,5\n")
    with pytest.raises(DataError, match=r"r\.csv: line 2 has 2 columns but the first line has 3"):
        read_csv(tmp_path / "r.csv")
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        read_csv(tmp_path / "e.csv")


# -- IDX ----------------------------------------------------------------------------------------
def _idx_bytes(arr: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def test_read_idx_plain_and_gz(tmp_path):
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "imgs-idx3-ubyte").write_bytes(_idx_bytes(imgs))
    with gzip.open(tmp_path / "labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(_idx_bytes(np.array([7, 3], dtype=np.uint8)))
    np.testing.assert_array_equal(read_idx(tmp_path / "imgs-idx3-ubyte"), imgs)
    assert read_idx(tmp_path / "labels-idx1-ubyte.gz").tolist() == [7, 3]
    # big-endian int32 payload comes back in native order
    ints = np.array([1, 70000], dtype=">i4")
    (tmp_path / "i").write_bytes(struct.pack(">BBBB", 0, 0, 0x0C, 1) + struct.pack(">I", 2) + ints.tobytes())
    assert read_idx(tmp_path / "i").tolist() == [1, 70000]


def test_read_idx_errors(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    imgs = np.zeros((2, 3, 4), dtype=np.uint8)
    (tmp_path / "short").write_bytes(_idx_bytes(imgs)[:-5])
    with pytest.raises(DataError, match=r"short: IDX header says shape \(2, 3, 4\).*truncated"):
        read_idx(tmp_path / "short")


# -- files -> Task ------------------------------------------------------------------------------
def test_load_domain_dataset_npz_maps_labels_and_masks_target(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", x=rng.normal(size=(6, 3)), y=np.array([10, 20, 30, 10, 20, 30]))
    np.savez(tmp_path / "t.npz", x=rng.normal(size=(4, 3)), y=np.array([30, 10, 10, 20]))
    task = load_domain_dataset(source=tmp_path / "s.npz", target=tmp_path / "t.npz")
    assert task.train.classes == ["10", "20", "30"] and task.num_classes == 3
    assert task.train.source().y.tolist() == [0, 1, 2, 0, 1, 2]
    assert (task.train.target().y == -1).all()
    assert task.y_test.tolist() == [2, 0, 0, 1]  # transductive: the labelled target itself


def test_load_domain_dataset_without_target(tmp_path):
    """No adaptation data: the source alone, accuracy on target_test; labels mapped over both."""
    from transferkit import ConfigError

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", x=rng.normal(size=(6, 3)), y=np.array([10, 20, 30, 10, 20, 30]))
    np.savez(tmp_path / "tt.npz", x=rng.normal(size=(4, 3)), y=np.array([30, 10, 10, 20]))
    task = load_domain_dataset(source=tmp_path / "s.npz", target_test=tmp_path / "tt.npz")
    assert task.train.is_source.all() and len(task.train) == 6 and task.name == "s->tt"
    assert task.x_test.shape == (4, 3) and task.y_test.tolist() == [2, 0, 0, 1]
    with pytest.raises(ConfigError, match="give target"):
        load_domain_dataset(source=tmp_path / "s.npz")


def test_load_domain_dataset_unseen_target_class(tmp_path):
    (tmp_path / "s.csv").write_text("1,2,a\n3,4,b\n")
    (tmp_path / "t.csv").write_text("1,2,a\n3,4,c\n")
    with pytest.raises(DataError, match=r"t\.csv: labels \['c'\] do not occur in the source"):
        load_domain_dataset(source=tmp_path / "s.csv", target=tmp_path / "t.csv")


def test_load_domain_dataset_svmlight_and_mat(tmp_path):
    import scipy.io

    (tmp_path / "s.svm").write_text("1 0:1\n-1 1:1\n")
    (tmp_path / "t.svm").write_text("1 4:1\n")
    (tmp_path / "tt.svm").write_text("-1 2:1\n1 0:3\n")
    task = load_domain_dataset(source=tmp_path / "s.svm", target=tmp_path / "t.svm",
                               target_test=tmp_path / "tt.svm")
    assert task.train.sample_shape == (5,) and task.x_test.shape == (2, 5)
    assert task.train.classes == ["-1", "1"] and task.y_test.tolist() == [0, 1]
    # MATLAB features x samples layout is turned into samples x features
    scipy.io.savemat(tmp_path / "s.mat", {"fts": np.ones((4, 3)), "labels": np.array([[1, 2, 1]])})
    scipy.io.savemat(tmp_path / "t.mat", {"fts": np.zeros((4, 2))})
    task = load_domain_dataset(source=tmp_path / "s.mat", target=tmp_path / "t.mat")
    assert task.train.sample_shape == (4,) and len(task.train) == 5 and not task.has_test


def test_load_domain_dataset_errors(tmp_path):
    np.savez(tmp_path / "s.npz", feats=np.ones((2, 2)))
    np.savez(tmp_path / "t.npz", x=np.ones((2, 2)), feats=np.ones((2, 2)))
    with pytest.raises(DataError, match=r"s\.npz: cannot tell which variable holds the samples.*'feats'"):
        load_domain_dataset(source=tmp_path / "s.npz", target=tmp_path / "t.npz")
    with pytest.raises(DataError, match=r"s\.npz: the source file has no labels"):
        load_domain_dataset(source=tmp_path / "s.npz", target=tmp_path / "t.npz", x_key="feats")
    with pytest.raises(DataError, match=r"missing\.npz: file not found"):
        load_domain_dataset(source=tmp_path / "missing.npz", target=tmp_path / "t.npz")
    (tmp_path / "s.parquet").write_text("")
    with pytest.raises(DataError, match=r"s\.parquet: unknown file type"):
        load_domain_dataset(source=tmp_path / "s.parquet", target=tmp_path / "t.npz")


def test_remap_labels_float_and_mixed():
    (ys, yt), classes = remap_labels(np.array([-1.0, 1.0, 1.0]), np.array([1, -1]))
    assert classes == ["-1", "1"] and ys.tolist() == [0, 1, 1] and yt.tolist() == [1, 0]
