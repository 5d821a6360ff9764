"""Readers for the file formats of domain-adaptation data; each returns numpy arrays.

* :func:`read_mat` — MATLAB ``.mat`` v4/v5/v7 (``scipy.io.loadmat``) and v7.3 (HDF5, ``h5py``),
  returned in MATLAB's orientation.
* :func:`read_svmlight` — svmlight / libsvm text (``sklearn.datasets.load_svmlight_files``).
* :func:`read_npz` — numpy ``.npz`` archives (no pickles).
* :func:`read_csv` — delimited text with a label column (stdlib ``csv``; ``.gz`` allowed).
* :func:`read_idx` — the IDX format of the MNIST distribution (``.gz`` allowed).
* :func:`load_domain_dataset` — a :class:`~transferkit.data.dataset.Task` from a source file and
  a target file of any of these formats, with labels mapped to ``0..K-1``.

Every problem raises :class:`~transferkit.core.errors.DataError` naming the file and what is wrong.
Heavy modules (scipy, h5py, scikit-learn) are imported inside the functions that need them.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Sequence, overload

import numpy as np

from transferkit.core.errors import ConfigError, DataError

if TYPE_CHECKING:
    from transferkit.data.dataset import Task

PathLike = str | os.PathLike[str]

#: variable names tried, in order, for the samples and the labels of .mat / .npz files
X_KEYS = ("x", "X", "fts", "features", "feas", "data", "Xs")
Y_KEYS = ("y", "Y", "labels", "label", "target", "targets", "gnd", "Ys")


# -- helpers ------------------------------------------------------------------------------------
def _existing_file(path: PathLike, what: str = "file") -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: {what} not found; check the path (relative paths are taken from the "
                        f"current directory {Path.cwd()})")
    if not p.is_file():
        raise DataError(f"{p}: is not a file")
    return p


def _open_maybe_gz(path: Path) -> IO[bytes]:
    """Open ``path`` for binary reading, decompressing when it starts with the gzip magic."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _missing_key(path: Path, key: str, available: Sequence[str], what: str = "variable") -> DataError:
    have = ", ".join(repr(k) for k in available) or "none"
    return DataError(f"{path}: no {what} {key!r}; the file holds: {have}")


# -- MATLAB -------------------------------------------------------------------------------------
def _mat_is_hdf5(path: Path) -> bool:
    """MATLAB v7.3 files are HDF5 with a 512-byte user block; the text header says 7.3."""
    with open(path, "rb") as fh:
        head = fh.read(520)
    if head.startswith(b"\x89HDF\r\n\x1a\n") or head[512:520] == b"\x89HDF\r\n\x1a\n":
        return True
    return b"MATLAB 7.3" in head[:128]


def read_mat(path: PathLike, keys: Sequence[str] | str | None = None) -> dict[str, np.ndarray]:
    """Variables of a MATLAB ``.mat`` file as numpy arrays, in MATLAB's orientation.

    v4-v7 files are read with ``scipy.io.loadmat``; v7.3 files (HDF5) with ``h5py``. HDF5 stores
    MATLAB's column-major arrays so that h5py sees them transposed; they are transposed back here,
    so a variable that MATLAB shows as ``256 x 2000`` is returned with shape ``(256, 2000)``
    whichever version wrote it. Sparse matrices are returned dense, char arrays as ``str`` arrays,
    logicals as ``bool``, cell arrays as object arrays.

    ``keys``: the variables to return (all of them when None). A missing variable raises
    :class:`DataError` listing the variables the file holds.
    """
    p = _existing_file(path, "MATLAB file")
    wanted = [keys] if isinstance(keys, str) else (list(keys) if keys is not None else None)
    if _mat_is_hdf5(p):
        return _read_mat_h5(p, wanted)
    import scipy.io

    try:
        raw = scipy.io.loadmat(str(p))
    except NotImplementedError:  # v7.3 without the usual header: let h5py try
        return _read_mat_h5(p, wanted)
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError on damaged files
        raise DataError(f"{p}: cannot read as a MATLAB file ({type(exc).__name__}: {exc}); "
                        "is it a .mat file and complete?") from exc
    names = [k for k in raw if not k.startswith("__")]
    out: dict[str, np.ndarray] = {}
    for k in wanted if wanted is not None else names:
        if k not in raw or k.startswith("__"):
            raise _missing_key(p, k, names)
        v = raw[k]
        if hasattr(v, "toarray"):  # scipy.sparse
            v = v.toarray()
        out[k] = np.asarray(v)
    return out


def _read_mat_h5(path: Path, wanted: list[str] | None) -> dict[str, np.ndarray]:
    import h5py

    try:
        fh = h5py.File(path, "r")
    except Exception as exc:
        raise DataError(f"{path}: cannot open as a MATLAB v7.3 (HDF5) file ({exc}); is it complete?") from exc
    with fh:
        names = [k for k in fh.keys() if not k.startswith("#")]
        out: dict[str, np.ndarray] = {}
        for k in wanted if wanted is not None else names:
            if k not in names:
                raise _missing_key(path, k, names)
            try:
                out[k] = _h5_matlab_value(fh, fh[k], f"{path}:{k}")
            except DataError:
                raise
            except Exception as exc:
                raise DataError(f"{path}: cannot read variable {k!r} ({type(exc).__name__}: {exc})") from exc
    return out


def _h5_matlab_value(fh: Any, obj: Any, where: str) -> np.ndarray:
    """One MATLAB v7.3 variable (dataset or sparse group) in MATLAB's orientation."""
    import h5py

    attrs = obj.attrs
    mclass = attrs.get("MATLAB_class", b"")
    mclass = mclass.decode() if isinstance(mclass, bytes) else str(mclass)
    if isinstance(obj, h5py.Group):
        if "MATLAB_sparse" in attrs:
            n_rows = int(attrs["MATLAB_sparse"])
            jc = np.asarray(obj["jc"][()]).astype(np.int64).ravel()
            n_cols = len(jc) - 1
            dense = np.zeros((n_rows, n_cols), dtype=bool if mclass == "logical" else np.float64)
            if "data" in obj:
                data = np.asarray(obj["data"][()]).ravel()
                ir = np.asarray(obj["ir"][()]).astype(np.int64).ravel()
                cols = np.repeat(np.arange(n_cols), np.diff(jc))
                dense[ir, cols] = data
            return dense
        raise DataError(f"{where}: a MATLAB {mclass or 'struct'} is not supported; save plain "
                        "numeric arrays (e.g. save(..., 'X', 'y', '-v7.3'))")
    data = obj[()]
    if attrs.get("MATLAB_empty", 0):  # empty arrays store their dims as data
        return np.zeros(tuple(int(d) for d in np.asarray(data).ravel()[::-1]) or (0,))
    arr = np.asarray(data)
    if arr.dtype == object or h5py.check_dtype(ref=arr.dtype) is not None:  # cell array
        flat = [_h5_matlab_value(fh, fh[r], where) for r in arr.ravel()]
        cells = np.empty(len(flat), dtype=object)
        cells[:] = flat
        return cells.reshape(arr.shape).T
    if arr.dtype.names and {"real", "imag"} <= set(arr.dtype.names):
        arr = arr["real"] + 1j * arr["imag"]
    arr = arr.T  # HDF5 holds MATLAB's column-major data: transpose back to MATLAB's shape
    if mclass == "char":
        if arr.ndim == 2:
            return np.array(["".join(map(chr, row)) for row in arr.astype(np.uint32)])
        return np.array("".join(map(chr, arr.astype(np.uint32).ravel())))
    if mclass == "logical":
        return arr.astype(bool)
    return arr


# -- svmlight -----------------------------------------------------------------------------------
@overload
def read_svmlight(paths: PathLike, n_features: int | None = None, *, dense: bool = True,
                  dtype: Any = np.float32, zero_based: bool | str = "auto") -> tuple[Any, np.ndarray]: ...
@overload
def read_svmlight(paths: Sequence[PathLike], n_features: int | None = None, *, dense: bool = True,
                  dtype: Any = np.float32, zero_based: bool | str = "auto") -> list[tuple[Any, np.ndarray]]: ...
def read_svmlight(paths: PathLike | Sequence[PathLike], n_features: int | None = None, *,
                  dense: bool = True, dtype: Any = np.float32,
                  zero_based: bool | str = "auto") -> tuple[Any, np.ndarray] | list[tuple[Any, np.ndarray]]:
    """Samples and labels of svmlight / libsvm files (``label idx:value ...`` per line).

    One path gives ``(X, y)``; a list gives one ``(X, y)`` per file, all with the same width (the
    largest index over the files, or ``n_features``). ``X`` is dense ``(n, n_features)`` of
    ``dtype`` (a ``scipy.sparse`` CSR matrix with ``dense=False``); ``y`` holds the labels as
    written (floats, e.g. ``-1.0``/``1.0``). ``zero_based``: whether indices start at 0
    (``"auto"``: decided from the files).
    """
    single = isinstance(paths, (str, os.PathLike))
    plist = [paths] if single else list(paths)  # type: ignore[list-item]
    if not plist:
        raise DataError("read_svmlight: give at least one file")
    files = [_existing_file(p, "svmlight file") for p in plist]
    from sklearn.datasets import load_svmlight_files

    try:
        loaded = load_svmlight_files([str(f) for f in files], n_features=n_features, dtype=dtype,
                                     zero_based=zero_based)
    except ValueError as exc:
        msg = str(exc)
        hint = (f"; n_features={n_features} is smaller than the largest feature index in the files"
                if n_features is not None and "n_features" in msg else "")
        raise DataError(f"{', '.join(map(str, files))}: cannot read as svmlight ({msg}){hint}") from exc
    except Exception as exc:
        raise DataError(f"{', '.join(map(str, files))}: cannot read as svmlight "
                        f"({type(exc).__name__}: {exc})") from exc
    out = []
    for i in range(len(files)):
        X, y = loaded[2 * i], np.asarray(loaded[2 * i + 1])
        out.append((X.toarray() if dense else X, y))
    return out[0] if single else out


# -- npz ----------------------------------------------------------------------------------------
def read_npz(path: PathLike) -> dict[str, np.ndarray]:
    """All arrays of a numpy ``.npz`` archive (pickled objects are refused)."""
    p = _existing_file(path, "npz file")
    with open(p, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            raise DataError(f"{p}: not a numpy .npz archive (a .npz is a zip file written by "
                            "numpy.savez); damaged or another format?")
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}
    except ValueError as exc:
        raise DataError(f"{p}: holds pickled objects or is damaged ({exc}); save plain numeric "
                        "arrays with numpy.savez") from exc
    except Exception as exc:
        raise DataError(f"{p}: cannot read as a numpy .npz archive ({type(exc).__name__}: {exc})") from exc


# -- csv ----------------------------------------------------------------------------------------
def _parse_labels(values: list[str]) -> np.ndarray:
    """Labels as integers when they all are, else floats, else strings."""
    try:
        f = np.array(values, dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=str)
    if np.all(np.isfinite(f)) and np.all(f == np.round(f)):
        return f.astype(np.int64)
    return f


def _all_numeric(lines: list[str], delimiter: str, width: int) -> np.ndarray | None:
    """All cells as int64 or float64 (n, width) when every cell is a plain number, else None."""
    if any('"' in ln for ln in lines[:50]) or not lines:
        return None
    delim = None if delimiter == " " else delimiter
    for dt in (np.int64, np.float64):  # integers parse about five times faster
        try:
            arr = np.loadtxt(lines, delimiter=delim, dtype=dt, ndmin=2, comments=None)
        except (ValueError, OverflowError):
            continue
        return arr if arr.shape == (len(lines), width) else None
    return None


def read_csv(
    path: PathLike,
    *,
    label_column: int | str | None = -1,
    delimiter: str | None = None,
    header: bool | None = None,
    dtype: Any = np.float32,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Samples and labels of a delimited text file (``.csv``, ``.tsv``, ``.txt``; ``.gz`` allowed).

    ``label_column``: index (negative counts from the end) or header name of the label column;
    None when the file has no labels. ``delimiter``: detected from the first line when None
    (``,`` ``;`` tab, else whitespace). ``header``: whether the first line holds column names;
    detected when None (a first line that is not all numbers). Returns ``X`` (n, d) of ``dtype``
    and ``y`` (n,) as integers, floats or strings (None without a label column).
    Non-numeric features raise :class:`DataError` naming the line and column.
    """
    p = _existing_file(path, "CSV file")
    try:
        with _open_maybe_gz(p) as fb:
            text = io.TextIOWrapper(fb, encoding="utf-8-sig", newline="")
            lines = [ln for ln in text.read().splitlines() if ln.strip()]
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: cannot read as UTF-8 text ({type(exc).__name__}: {exc})") from exc
    if not lines:
        raise DataError(f"{p}: the file is empty")
    if delimiter is None:
        delimiter = next((d for d in (",", "\t", ";") if d in lines[0]), " ")

    def split(rows: list[str]) -> list[list[str]]:
        if delimiter == " ":
            return [ln.split() for ln in rows]
        return [[c.strip() for c in r] for r in csv.reader(rows, delimiter=delimiter)]

    first = split(lines[:1])[0]
    if header is None:
        try:
            [float(c) for c in first if c != ""]
            header = False
        except ValueError:
            header = True
    width = len(first)
    names = first if header else [str(i) for i in range(width)]
    body_lines = lines[1:] if header else lines
    if not body_lines:
        raise DataError(f"{p}: no data rows after the header")
    col: int | None = None
    if label_column is not None:
        if isinstance(label_column, str):
            if not header or label_column not in names:
                raise _missing_key(p, label_column, names if header else [], "label column")
            col = names.index(label_column)
        else:
            if not -width <= label_column < width:
                raise DataError(f"{p}: label_column={label_column} is outside the {width} columns")
            col = label_column % width
    feat_cols = [j for j in range(width) if j != col]
    if not feat_cols:
        raise DataError(f"{p}: no feature columns besides the label column")
    numeric = _all_numeric(body_lines, delimiter, width)
    if numeric is not None:  # fast path: numpy's C parser
        y_num = numeric[:, col] if col is not None else None
        if y_num is not None and y_num.dtype.kind == "f" and np.all(y_num == np.round(y_num)):
            y_num = y_num.astype(np.int64)
        return numeric[:, feat_cols].astype(dtype), y_num
    body = split(body_lines)
    for i, r in enumerate(body):
        if len(r) != width:
            line = i + (2 if header else 1)
            raise DataError(f"{p}: line {line} has {len(r)} columns but the first line has {width}; "
                            f"check the delimiter (using {delimiter!r})")
    table = np.array(body, dtype=object)
    try:
        X = table[:, feat_cols].astype(np.float64).astype(dtype)
    except ValueError:
        for i, r in enumerate(body):
            for j in feat_cols:
                try:
                    float(r[j])
                except ValueError:
                    line = i + (2 if header else 1)
                    raise DataError(f"{p}: line {line}, column {names[j]!r}: {r[j]!r} is not a "
                                    "number; features must be numeric (is label_column right?)") from None
        raise
    y = _parse_labels(table[:, col].tolist()) if col is not None else None
    return X, y


# -- IDX (MNIST) --------------------------------------------------------------------------------
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: PathLike) -> np.ndarray:
    """An array in the IDX format of the MNIST files (``.gz`` allowed): ``(n,)`` for labels,
    ``(n, rows, cols)`` for images, in the file's element type (native byte order)."""
    p = _existing_file(path, "IDX file")
    try:
        with _open_maybe_gz(p) as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{p}: cannot read ({type(exc).__name__}: {exc}); damaged download?") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{p}: not an IDX file (bad magic number {raw[:4].hex()}); expected "
                        "00 00 <type> <ndim> as in the MNIST files")
    ndim = raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise DataError(f"{p}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dt = np.dtype(_IDX_TYPES[raw[2]])
    need = int(np.prod(dims, dtype=np.int64)) * dt.itemsize
    if len(raw) - head != need:
        raise DataError(f"{p}: IDX header says shape {dims} ({need} bytes of data) but the file "
                        f"holds {len(raw) - head}; the file is truncated or damaged")
    arr = np.frombuffer(raw, dtype=dt, offset=head).reshape(dims)
    return arr.astype(dt.newbyteorder("="))


# -- files -> Task ------------------------------------------------------------------------------
_SVM_EXT = (".svmlight", ".svm", ".libsvm", ".light")
_CSV_EXT = (".csv", ".tsv", ".txt")


def file_format(path: PathLike) -> str:
    """``"npz"``, ``"csv"``, ``"svmlight"``, ``"mat"`` or ``"idx"`` from the file name."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".mat"):
        return "mat"
    if name.endswith(_SVM_EXT):
        return "svmlight"
    if name.endswith(_CSV_EXT):
        return "csv"
    if "idx" in name and "ubyte" in name:
        return "idx"
    raise DataError(f"{path}: unknown file type; use .npz, .csv/.tsv/.txt, .svmlight/.svm/.libsvm "
                    "or .mat")


def _pick(path: Path, arrays: dict[str, np.ndarray], key: str | None, defaults: Sequence[str],
          what: str, required: bool) -> np.ndarray | None:
    if key is not None:
        if key not in arrays:
            raise _missing_key(path, key, list(arrays), what)
        return arrays[key]
    for k in defaults:
        if k in arrays:
            return arrays[k]
    if required:
        raise DataError(f"{path}: cannot tell which variable holds the {what}s (tried "
                        f"{', '.join(defaults)}); the file holds: {', '.join(map(repr, arrays))}. "
                        f"Name it with x_key=/y_key=")
    return None


def read_xy(
    path: PathLike, *, x_key: str | None = None, y_key: str | None = None,
    label_column: int | str | None = -1, n_features: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Samples ``X`` (n, ...) and labels ``y`` (n,) or None from one file of any supported type.

    ``.npz`` / ``.mat``: ``x_key``/``y_key`` name the variables (else common names: ``x``, ``X``,
    ``fts``, ... and ``y``, ``labels``, ...); a .mat matrix whose columns, not rows, match the
    number of labels is transposed (MATLAB code often stores features x samples).
    ``.csv``: ``label_column``. ``.svmlight``: ``n_features``.
    """
    p = _existing_file(path)
    fmt = file_format(p)
    if fmt == "svmlight":
        X, y = read_svmlight(p, n_features)
        return X, y
    if fmt == "csv":
        return read_csv(p, label_column=label_column)
    if fmt == "idx":
        raise DataError(f"{p}: an IDX file holds either images or labels; read it with read_idx and "
                        "build the task with make_task")
    arrays = read_npz(p) if fmt == "npz" else read_mat(p)
    X = _pick(p, arrays, x_key, X_KEYS, "sample", True)
    y = _pick(p, arrays, y_key, Y_KEYS, "label", False)
    assert X is not None
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 2 and 1 in y.shape:
            y = y.ravel()
        if y.ndim != 1:
            raise DataError(f"{p}: labels must be a vector, got shape {y.shape}")
        if fmt == "mat" and X.ndim == 2 and X.shape[0] != len(y) and X.shape[1] == len(y):
            X = X.T
        if len(X) != len(y):
            raise DataError(f"{p}: {len(X)} samples (shape {X.shape}) but {len(y)} labels")
    return np.asarray(X), y


def remap_labels(y_source: np.ndarray, *others: np.ndarray | None,
                 names: Sequence[str] = ()) -> tuple[list[np.ndarray | None], list[str]]:
    """Map labels to ``0..K-1`` with one mapping shared by every array, built from the source
    classes (sorted). Returns the mapped arrays (source first) and the class names.

    Labels in ``others`` (target, test) absent from the source raise :class:`DataError`: a
    classifier trained on the source cannot predict them. ``names`` label the arrays in errors.
    """
    ys = np.asarray(y_source)
    if ys.ndim != 1 or ys.size == 0:
        raise DataError(f"{names[0] if names else 'source'}: needs a non-empty label vector, "
                        f"got shape {ys.shape}")
    arrays = [ys, *[None if o is None else np.asarray(o) for o in others]]
    kinds = {a.dtype.kind for a in arrays if a is not None}
    if len(kinds & {"U", "S", "O"}) and len(kinds) > 1:  # mixed text and numbers: compare as text
        arrays = [None if a is None else np.array([str(v) for v in a.tolist()]) for a in arrays]
        kinds = {"U"}
    elif kinds <= {"i", "u", "f", "b"}:
        arrays = [None if a is None else (a.astype(np.int64) if a.dtype.kind == "f" and np.all(a == np.round(a))
                                          else a) for a in arrays]
    classes = np.unique(arrays[0])
    out: list[np.ndarray | None] = [np.searchsorted(classes, arrays[0]).astype(np.int64)]
    for i, a in enumerate(arrays[1:], 1):
        if a is None:
            out.append(None)
            continue
        unseen = np.setdiff1d(np.unique(a), classes)
        if unseen.size:
            label = names[i] if i < len(names) else f"array {i}"
            raise DataError(
                f"{label}: labels {unseen[:10].tolist()} do not occur in the source (source classes: "
                f"{classes[:20].tolist()}); drop those samples or add labelled source samples of them"
            )
        out.append(np.searchsorted(classes, a).astype(np.int64))
    cls_names = [str(int(c)) if isinstance(c, (np.integer, int)) else str(c) for c in classes.tolist()]
    return out, cls_names


def target_side(target: PathLike | None, target_test: PathLike | None) -> Path:
    """The path that names a task's target side: ``target`` (data to adapt to), else ``target_test``
    (labelled data alone: fine-tuning on the source). :class:`ConfigError` when neither is given."""
    if target is None and target_test is None:
        raise ConfigError("give target (data to adapt to) or target_test (labelled data to measure accuracy "
                          "on), or both; with neither there is nothing to transfer to", "target")
    return Path(target if target is not None else target_test)  # type: ignore[arg-type]


def load_domain_dataset(
    *,
    source: PathLike,
    target: PathLike | None = None,
    target_test: PathLike | None = None,
    x_key: str | None = None,
    y_key: str | None = None,
    label_column: int | str | None = -1,
    n_features: int | None = None,
    name: str | None = None,
    benchmark: str | None = None,
) -> "Task":
    """A :class:`~transferkit.data.dataset.Task` from files (``.npz``, ``.csv``, ``.svmlight``,
    ``.mat``; see :func:`read_xy` for the keys).

    ``source`` must be labelled. ``target`` is the unlabelled adaptation data: its labels, if
    any, are never given to methods. Evaluation (``x_test``/``y_test``) uses ``target_test`` when
    given, else the labelled ``target`` itself (the transductive protocol of shallow DA papers),
    else there is none. Without ``target`` (plain fine-tuning on the source, measured on
    ``target_test``, which is then required) the task has no target samples. Labels are mapped to
    ``0..K-1`` by one mapping over all files, from the sorted source classes; target classes absent
    from the source raise :class:`DataError`.
    svmlight files are read together so they share one width.
    """
    from transferkit.data.dataset import make_task

    target_name = target_side(target, target_test).stem
    paths = {"source": Path(source)}
    if target is not None:
        paths["target"] = Path(target)
    if target_test is not None:
        paths["target_test"] = Path(target_test)
    for p in paths.values():
        _existing_file(p)
    loaded: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    svm = [k for k, p in paths.items() if file_format(p) == "svmlight"]
    if len(svm) > 1:
        for k, xy in zip(svm, read_svmlight([paths[k] for k in svm], n_features)):
            loaded[k] = xy
    for k, p in paths.items():
        if k not in loaded:
            loaded[k] = read_xy(p, x_key=x_key, y_key=y_key, label_column=label_column, n_features=n_features)
    xs, ys = loaded["source"]
    if ys is None:
        raise DataError(f"{paths['source']}: the source file has no labels; source samples must be "
                        "labelled (set label_column / y_key)")
    xt, yt = loaded.get("target", (xs[:0], None))
    if target is not None and not len(xt):
        raise DataError(f"{paths['target']}: the target file has no samples; give target data, or leave "
                        "target out (with a labelled target_test) to fine-tune on the source alone")
    xtt, ytt = loaded.get("target_test", (None, None))
    width = xs.shape[1] if xs.ndim == 2 else None
    # an unlabelled MATLAB matrix stored features x samples: orient it by the source width
    if yt is None and width is not None and xt.ndim == 2 and xt.shape[1] != width and xt.shape[0] == width:
        xt = xt.T
    if target_test is not None and ytt is None:
        raise DataError(f"{paths['target_test']}: target_test has no labels; it is used to measure "
                        "accuracy (set label_column / y_key)")
    mapped, classes = remap_labels(ys, yt, ytt, names=[str(paths["source"]), str(paths.get("target")),
                                                       str(paths.get("target_test"))])
    ys_m, yt_m, ytt_m = mapped
    if target is None:
        x_test, y_test = xtt, ytt_m
        notes = "Files: labelled source, no adaptation data; accuracy on the target_test file."
    elif target_test is not None:
        x_test, y_test = xtt, ytt_m
        notes = "Files: labelled source, unlabelled target; accuracy on the separate target_test file."
    elif yt_m is not None:
        x_test, y_test = xt, yt_m
        notes = ("Files: labelled source, unlabelled target; accuracy on the target samples themselves "
                 "(transductive protocol).")
    else:
        x_test = y_test = None
        notes = "Files: labelled source, unlabelled target; no target labels, so no accuracy."
    task_name = name or f"{paths['source'].stem}->{target_name}"
    return make_task(xs, ys_m, xt, x_test, y_test, name=task_name, source_name=paths["source"].stem,
                     target_name=target_name, classes=classes, benchmark=benchmark, notes=notes)
