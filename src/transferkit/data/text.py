"""Text data: review XML (Blitzer et al.'s Amazon files), JSONL and CSV readers, and the named
benchmark ``amazon_reviews_text`` plus ``text_files`` for a user's own files.

A :class:`~transferkit.data.dataset.Task` holds numbers, so text data sets turn texts into frozen
encoder features (``encoder: minilm``, through the feature cache) or into the encoder's token ids
(``representation: inputs``, for fine-tuning); :meth:`AmazonReviewsText.load_texts` gives the
raw texts of a task with the same split.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from transferkit.core.errors import ConfigError, DataError, UnknownNameError
from transferkit.core.registries import DATASETS
from transferkit.data.benchmarks import Benchmark
from transferkit.data.dataset import Task, make_task
from transferkit.data.readers import (
    PathLike,
    _existing_file,
    _open_maybe_gz,
    remap_labels,
    target_side,
)

_REVIEW = re.compile(r"<review>(.*?)</review>", re.DOTALL)
_FIELD = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>(.*?)</\1>", re.DOTALL)


# == readers ====================================================================================
def _decode(raw: bytes, encoding: str | None, path: Path) -> str:
    """UTF-8 (the files' declared encoding), else latin-1 when ``encoding`` is None."""
    if encoding is not None:
        try:
            return raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise DataError(f"{path}: cannot decode as {encoding} ({exc}); try encoding='latin-1'") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_reviews(path: PathLike, *, encoding: str | None = None) -> list[dict[str, str]]:
    """Reviews of a pseudo-XML review file (Blitzer et al.'s ``*.review``): one dict per
    ``<review>`` block mapping each tag (``review_text``, ``title``, ``rating``, ``asin``, ...) to
    its text, stripped and with XML entities decoded (``&amp;`` -> ``&``).

    The files are not well-formed XML (bare ``&``, ``<`` in texts), so blocks are matched by tag.
    ``encoding``: None tries UTF-8, then latin-1. ``.gz`` files are read too."""
    p = _existing_file(path, "review file")
    try:
        with _open_maybe_gz(p) as fh:
            text = _decode(fh.read(), encoding, p)
    except (OSError, EOFError) as exc:
        raise DataError(f"{p}: cannot read ({type(exc).__name__}: {exc})") from exc
    blocks = _REVIEW.findall(text)
    if not blocks:
        raise DataError(f"{p}: no <review>...</review> blocks found; is it a review XML file "
                        "(as Blitzer et al.'s sorted_data/*.review)?")
    return [{tag: html.unescape(value.strip()) for tag, value in _FIELD.findall(b)} for b in blocks]


def review_texts(reviews: Sequence[dict[str, str]], fields: Sequence[str] = ("review_text",),
                 *, where: str = "reviews") -> list[str]:
    """One text per review: the named ``fields`` joined by a blank line (missing fields are
    skipped; a review with none of them raises :class:`DataError`)."""
    if isinstance(fields, str) or not fields:
        raise ConfigError(f"got {fields!r}; expected a list of review fields, e.g. ['review_text'] or "
                          "['title', 'review_text']", "fields")
    out = []
    for i, r in enumerate(reviews):
        parts = [r[f] for f in fields if r.get(f)]
        if not parts:
            raise DataError(f"{where}: review {i} has none of the fields {list(fields)} (it has {sorted(r)})")
        out.append("\n\n".join(parts))
    return out


def read_review_folder(folder: PathLike, *, fields: Sequence[str] = ("review_text",),
                       encoding: str | None = None) -> tuple[list[str], np.ndarray]:
    """Texts and labels of one domain stored as ``negative.review`` (label 0) and
    ``positive.review`` (label 1), negatives first (Blitzer et al.'s balanced layout)."""
    root = Path(folder).expanduser()
    texts: list[str] = []
    labels: list[int] = []
    for label, name in ((0, "negative.review"), (1, "positive.review")):
        p = root / name
        if not p.is_file():
            raise DataError(f"{p}: missing; a review domain folder holds negative.review and positive.review")
        t = review_texts(read_reviews(p, encoding=encoding), fields, where=str(p))
        texts += t
        labels += [label] * len(t)
    return texts, np.asarray(labels, dtype=np.int64)


def _column(names: list[str], col: int | str, path: Path, what: str) -> int:
    if isinstance(col, str):
        if col not in names:
            raise DataError(f"{path}: no {what} column {col!r}; the columns are {names}")
        return names.index(col)
    if not -len(names) <= col < len(names):
        raise DataError(f"{path}: {what}_column={col} is outside the {len(names)} columns")
    return col % len(names)


def read_text_table(path: PathLike, *, text_column: int | str = "text", label_column: int | str | None = "label",
                    delimiter: str | None = None) -> tuple[list[str], np.ndarray | None]:
    """Texts and labels of a JSONL file (``.jsonl``/``.ndjson``: one object per line) or a CSV/TSV
    file with a header (``.csv``/``.tsv``/``.txt``; quoted fields may span lines). ``.gz`` allowed.

    ``text_column``/``label_column``: key or header name (CSV also: column index); ``label_column``
    None reads texts only. Labels come back as integers when they all are, else as strings
    (map them with :func:`~transferkit.data.readers.remap_labels`)."""
    from transferkit.data.readers import _parse_labels

    p = _existing_file(path, "text file")
    name = p.name.lower().removesuffix(".gz")
    try:
        with _open_maybe_gz(p) as fb:
            content = io.TextIOWrapper(fb, encoding="utf-8-sig", newline="").read()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: cannot read as UTF-8 text ({type(exc).__name__}: {exc})") from exc
    texts: list[str] = []
    labels: list[Any] = []
    if name.endswith((".jsonl", ".ndjson", ".json")):
        for lineno, line in enumerate(content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{p}:{lineno}: not a JSON object ({exc.msg}); JSONL files hold one object "
                                "per line") from None
            if not isinstance(obj, dict):
                raise DataError(f"{p}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            for col in (text_column, label_column):
                if col is not None and col not in obj:
                    raise DataError(f"{p}:{lineno}: no key {col!r}; the object has {sorted(obj)}")
            if not isinstance(obj[text_column], str):
                raise DataError(f"{p}:{lineno}: {text_column!r} is not a string")
            texts.append(obj[text_column])
            if label_column is not None:
                labels.append(obj[label_column])
    elif name.endswith((".csv", ".tsv", ".txt")):
        if delimiter is None:
            first = content.split("\n", 1)[0]
            delimiter = "\t" if "\t" in first or name.endswith(".tsv") else ","
        rows = [r for r in csv.reader(io.StringIO(content), delimiter=delimiter) if r]
        if len(rows) < 2:
            raise DataError(f"{p}: expected a header line and at least one row")
        header = [c.strip() for c in rows[0]]
        ti = _column(header, text_column, p, "text")
        li = None if label_column is None else _column(header, label_column, p, "label")
        for lineno, r in enumerate(rows[1:], 2):
            if len(r) != len(header):
                raise DataError(f"{p}: row {lineno} has {len(r)} fields but the header has {len(header)}; "
                                "quote texts that contain the delimiter")
            texts.append(r[ti])
            if li is not None:
                labels.append(r[li].strip())
    else:
        raise DataError(f"{p}: unknown text file type; use .jsonl, .csv or .tsv")
    if not texts:
        raise DataError(f"{p}: no rows")
    if label_column is None:
        return texts, None
    return texts, _parse_labels([str(v) for v in labels])


# == raw-text view of a task ====================================================================
@dataclass
class TextTask:
    """The texts of one adaptation task, split as the data set's :class:`Task` is.

    ``source_texts``/``source_labels``: labelled source. ``target_texts``: the target's
    adaptation part (unlabelled for adaptation methods). ``target_labels``: their labels, only for
    protocols that label a few target samples on purpose (few-shot); never give them to an
    unsupervised method. ``test_texts``/``test_labels``: the held-out target part, used only to
    measure accuracy.
    """

    name: str
    source_texts: list[str]
    source_labels: np.ndarray
    target_texts: list[str]
    target_labels: np.ndarray | None
    test_texts: list[str]
    test_labels: np.ndarray
    classes: list[str] = field(default_factory=list)
    source_name: str = "source"
    target_name: str = "target"
    notes: str = ""


class _EncoderParams:
    """Shared handling of ``encoder``/``representation``/cache parameters of text and image sets."""

    encoder: str | None
    encoded: Any

    def _init_encoder(self, encoder: str | None, encoder_params: dict[str, Any] | None,
                      representation: str, cache_dir: str | None, use_cache: bool, batch_size: int,
                      progress: bool) -> None:
        from transferkit.data.encoded import EncodedInputs

        self.encoder = encoder
        self.encoder_params = dict(encoder_params or {})
        self.representation = representation
        self.cache_dir, self.use_cache, self.batch_size, self.progress = cache_dir, use_cache, batch_size, progress
        if encoder is None:
            if self.encoder_params:
                raise ConfigError("encoder_params given without an encoder; set encoder (e.g. 'minilm')",
                                  "encoder_params")
            self.encoded = None
        else:
            self.encoded = EncodedInputs(encoder, self.encoder_params, representation=representation,  # type: ignore[arg-type]
                                         cache_dir=cache_dir, use_cache=use_cache, batch_size=batch_size,
                                         progress=progress)

    def _need_encoder(self, what: str) -> Any:
        if self.encoded is None:
            raise ConfigError(
                f"{what} holds raw data, and a task needs numbers: set encoder (e.g. encoder: minilm for "
                "frozen sentence features, with representation: inputs for token ids to fine-tune on); "
                "load_texts(task) gives the raw texts", "encoder")
        return self.encoded


# == amazon_reviews_text ========================================================================
#: bench preset: frozen all-MiniLM-L6-v2 features (through the feature cache) + shallow methods
PRESET: dict[str, Any] = {
    "methods": ["logreg"],
    "data_params": {"encoder": "minilm"},
}


@DATASETS.register(
    "amazon_reviews_text",
    description="Amazon reviews as raw text (books/dvd/electronics/kitchen, 2000 each), binary sentiment; 12 tasks",
)
class AmazonReviewsText(_EncoderParams, Benchmark):
    """Amazon product reviews of Blitzer et al. (ACL 2007) as raw text: 4 domains (B = books,
    D = dvd, E = electronics, K = kitchen), 1,000 positive + 1,000 negative reviews each
    (``<domain>/{positive,negative}.review``), binary sentiment (0 = negative, 1 = positive).

    Protocol, per task ``S-T``: all 2,000 source reviews labelled; the target's 2,000 split once per
    domain (stratified, ``seed``; the same split for every task with that target) into a held-out
    half used only to measure accuracy (``x_test``/``y_test``) and the other half, unlabelled, for
    adaptation. ``test_fraction`` sets the held-out share.

    Texts are the ``fields`` of each review (default the review body, ``review_text``). A task
    needs an ``encoder`` (e.g. ``minilm``): ``representation="features"`` gives the frozen
    encoder's features through the feature cache (computed once per domain and encoder, reused by
    every later run; ``cache_dir``, ``use_cache``), ``"inputs"`` the encoder's token ids for
    fine-tuning (model ``minilm``). :meth:`load_texts` returns the raw texts of a task.
    """

    name = "amazon_reviews_text"
    SUBDIR = "amazon_reviews_text"
    DOMAINS: ClassVar[dict[str, str]] = {"B": "books", "D": "dvd", "E": "electronics", "K": "kitchen"}
    TASKS = tuple(f"{s}-{t}" for s in "BDEK" for t in "BDEK" if s != t)
    DOMAIN_ALIASES = {"b": "B", "books": "B", "book": "B", "d": "D", "dvd": "D", "e": "E",
                      "electronics": "E", "k": "K", "kitchen": "K"}
    CLASSES: ClassVar[tuple[str, ...]] = ("negative", "positive")

    def __init__(self, *, tasks: str | list[str] = "all", data_dir: str | None = None,
                 encoder: str | None = None, encoder_params: dict[str, Any] | None = None,
                 representation: Literal["features", "inputs"] = "features",
                 fields: list[str] | None = None, test_fraction: float = 0.5, seed: int = 0,
                 cache_dir: str | None = None, use_cache: bool = True, batch_size: int = 64,
                 progress: bool = True, verify_checksums: bool = True) -> None:
        super().__init__(tasks=tasks, data_dir=data_dir, verify_checksums=verify_checksums)
        if not isinstance(test_fraction, (int, float)) or not 0.0 < float(test_fraction) < 1.0:
            raise ConfigError(f"got {test_fraction!r}; expected a fraction strictly between 0 and 1", "test_fraction")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ConfigError(f"got {seed!r}; expected a non-negative integer", "seed")
        self.fields = list(fields) if fields is not None else ["review_text"]
        if not self.fields or not all(isinstance(f, str) and f for f in self.fields):
            raise ConfigError(f"got {fields!r}; expected a list of review fields, e.g. ['review_text']", "fields")
        self.test_fraction, self.seed = float(test_fraction), seed
        self._init_encoder(encoder, encoder_params, representation, cache_dir, use_cache, batch_size, progress)
        self._texts: dict[str, tuple[list[str], np.ndarray]] = {}
        self._x: dict[str, np.ndarray] = {}

    def domain_texts(self, key: str) -> tuple[list[str], np.ndarray]:
        """Texts and labels (0 negative, 1 positive; negatives first) of domain ``"B"``, ``"D"``,
        ``"E"`` or ``"K"`` (files checked against SHA256SUMS; cached per instance)."""
        if key not in self._texts:
            d = self.DOMAINS[key]
            for f in ("negative.review", "positive.review"):
                self.file(f"{d}/{f}")
            texts, y = read_review_folder(self.root / self.SUBDIR / d, fields=self.fields)
            if len(texts) != 2000 or int(y.sum()) != 1000:
                raise DataError(f"{self.root / self.SUBDIR / d}: expected 1000 + 1000 reviews, got "
                                f"{len(texts) - int(y.sum())} negative and {int(y.sum())} positive")
            self._texts[key] = (texts, y)
        return self._texts[key]

    def target_split(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Indices (adaptation, held-out test) of domain ``key`` as a target: stratified, fixed by
        ``seed`` and the domain (not by the source)."""
        from transferkit.core.seed import derive_seed
        from transferkit.data.builtin import stratified_split

        _, y = self.domain_texts(key)
        return stratified_split(y, self.test_fraction, derive_seed(self.seed, self.name, self.DOMAINS[key]))

    def domain_x(self, key: str) -> np.ndarray:
        """The encoded domain (features or inputs, see the class docstring), cached per instance."""
        enc = self._need_encoder(self.name)
        if key not in self._x:
            texts, _ = self.domain_texts(key)
            self._x[key] = enc(texts, label=self.DOMAINS[key])
        return self._x[key]

    def load_texts(self, name: str) -> TextTask:
        """The raw texts of task ``name``, split as :meth:`load_task` splits them."""
        s, t = self.canonical_task(name).split("-")
        xs, ys = self.domain_texts(s)
        xt, yt = self.domain_texts(t)
        tr, te = self.target_split(t)
        return TextTask(name=f"{s}-{t}", source_texts=list(xs), source_labels=ys.copy(),
                        target_texts=[xt[i] for i in tr], target_labels=yt[tr], test_texts=[xt[i] for i in te],
                        test_labels=yt[te], classes=list(self.CLASSES), source_name=self.DOMAINS[s],
                        target_name=self.DOMAINS[t], notes=self._notes(tr, te))

    def _notes(self, tr: np.ndarray, te: np.ndarray) -> str:
        enc = "" if self.encoded is None else f" Inputs: {self.encoded.describe()}."
        return (f"Amazon reviews text ({'+'.join(self.fields)}): 2,000 labelled source reviews; target split "
                f"(stratified, seed {self.seed}) into {len(tr)} unlabelled adaptation reviews and {len(te)} "
                f"held-out reviews used only for accuracy.{enc}")

    def _load(self, name: str) -> Task:
        self._need_encoder(self.name)
        s, t = name.split("-")
        _, ys = self.domain_texts(s)
        _, yt = self.domain_texts(t)
        tr, te = self.target_split(t)
        xs, xt = self.domain_x(s), self.domain_x(t)
        task = make_task(xs, ys, xt[tr], xt[te], yt[te], name=name, source_name=self.DOMAINS[s],
                         target_name=self.DOMAINS[t], classes=list(self.CLASSES), benchmark=self.name,
                         notes=self._notes(tr, te))
        task.feature_cache = {self.DOMAINS[k]: self.encoded.log.get(self.DOMAINS[k], {}) for k in (s, t)}  # type: ignore[attr-defined]
        return task

    def __repr__(self) -> str:
        return (f"AmazonReviewsText(tasks={self.tasks_param!r}, encoder={self.encoder!r}, "
                f"representation={self.representation!r})")


# == a user's text files ========================================================================
@DATASETS.register(
    "text_files",
    description="Your own texts: labelled source and target files (.jsonl/.csv/.tsv) through an encoder",
)
class TextFiles(_EncoderParams):
    """One task from a user's text files (JSONL or CSV/TSV with a header, see
    :func:`read_text_table`): ``source`` (labelled), ``target`` (adaptation data; its labels, if
    any, are never shown to methods) and optionally ``target_test`` (labelled, for accuracy).
    Without ``target_test`` accuracy is measured on the labelled target itself (transductive),
    else not at all. Without ``target`` the task has no adaptation data: plain fine-tuning on the
    source (``source_only`` with any fine-tuning strategy), measured on ``target_test``; methods
    that adapt report that they need target data. Labels are mapped to ``0..K-1`` from the sorted
    source classes.
    ``encoder`` etc. as for ``amazon_reviews_text``.
    """

    name = "text_files"

    def __init__(self, *, source: str, target: str | None = None, target_test: str | None = None,
                 text_column: int | str = "text", label_column: int | str = "label",
                 encoder: str | None = None, encoder_params: dict[str, Any] | None = None,
                 representation: Literal["features", "inputs"] = "features", cache_dir: str | None = None,
                 use_cache: bool = True, batch_size: int = 64, progress: bool = True,
                 task_name: str | None = None) -> None:
        self.source, self.target, self.target_test = source, target, target_test
        self.text_column, self.label_column = text_column, label_column
        self.task_name = task_name or f"{Path(source).stem}->{target_side(target, target_test).stem}"
        self._init_encoder(encoder, encoder_params, representation, cache_dir, use_cache, batch_size, progress)

    def task_names(self) -> list[str]:
        return [self.task_name]

    def load_texts(self, name: str | None = None) -> TextTask:
        """The texts of the task, labels mapped to ``0..K-1``."""
        if name is not None and name != self.task_name:
            raise UnknownNameError(f"unknown task {name!r}; the text_files data set has one task, "
                                   f"{self.task_name!r}", "tasks")
        xs, ys = read_text_table(self.source, text_column=self.text_column, label_column=self.label_column)
        if ys is None:
            raise DataError(f"{self.source}: the source file has no labels")
        xt, yt = [], None
        if self.target is not None:
            try:
                xt, yt = read_text_table(self.target, text_column=self.text_column, label_column=self.label_column)
            except DataError as exc:
                if "no key" not in str(exc) and "no label column" not in str(exc):
                    raise
                xt, yt = read_text_table(self.target, text_column=self.text_column, label_column=None)
        xtt, ytt = (read_text_table(self.target_test, text_column=self.text_column,
                                    label_column=self.label_column) if self.target_test else ([], None))
        (ys_m, yt_m, ytt_m), classes = remap_labels(ys, yt, ytt, names=[self.source, self.target,
                                                                         str(self.target_test)])
        assert ys_m is not None
        if self.target_test:
            test_x, test_y = xtt, ytt_m
        elif yt_m is not None:
            test_x, test_y = xt, yt_m
        else:
            test_x, test_y = [], None
        return TextTask(name=self.task_name, source_texts=xs, source_labels=ys_m, target_texts=xt,
                        target_labels=yt_m, test_texts=test_x,
                        test_labels=test_y if test_y is not None else np.zeros(0, np.int64), classes=classes,
                        source_name=Path(self.source).stem,
                        target_name=target_side(self.target, self.target_test).stem)

    def load_task(self, name: str | None = None) -> Task:
        enc = self._need_encoder("text_files")
        tt = self.load_texts(name)
        xs = enc(tt.source_texts, label="source")
        xt = enc(tt.target_texts, label="target")
        if self.target_test:
            x_test, y_test = enc(tt.test_texts, label="target_test"), tt.test_labels
            notes = ("Text files: labelled source, no adaptation data; accuracy on the target_test file."
                     if self.target is None else
                     "Text files: labelled source, unlabelled target; accuracy on the separate target_test file.")
        elif tt.target_labels is not None:
            x_test, y_test = xt, tt.test_labels
            notes = "Text files: labelled source, unlabelled target; accuracy on the target itself (transductive)."
        else:
            x_test = y_test = None
            notes = "Text files: labelled source, unlabelled target; no target labels, so no accuracy."
        task = make_task(xs, tt.source_labels, xt, x_test, y_test, name=self.task_name,
                         source_name=tt.source_name, target_name=tt.target_name, classes=tt.classes,
                         notes=notes + f" Inputs: {enc.describe()}.")
        task.feature_cache = dict(enc.log)  # type: ignore[attr-defined]
        return task

    def tasks(self) -> Iterator[Task]:
        yield self.load_task()

    def __repr__(self) -> str:
        return f"TextFiles(source={self.source!r}, target={self.target!r}, encoder={self.encoder!r})"
