"""Named benchmarks read from the benchmark data folder, checked against ``SHA256SUMS``.

Every data set registered in :data:`transferkit.core.registries.DATASETS` offers the same three
calls: ``task_names()`` (the selected tasks, canonical names), ``load_task(name)`` (one
:class:`~transferkit.data.dataset.Task`) and ``tasks()`` (an iterator loading one task at a time).
Task names are those of ``reference_results.csv`` (``"C-A"``, ``"MNIST-USPS"``, ``"B-D"``);
``"C->A"``, lower case and full domain names (``"caltech->amazon"``) are accepted too.

Benchmarks (see ``shared/data/README.md`` for the files and their origin):

* ``office_caltech10_surf`` — Office-Caltech10, 800-d SURF bag of words (Gong et al., CVPR 2012),
  12 tasks, transductive protocol, JDA preprocessing (Long et al., ICCV 2013).
* ``mnist_usps_jda`` — MNIST (2,000) and USPS (1,800) 16x16 as released with JDA, 2 tasks.
* ``amazon_reviews_5000d`` — Amazon reviews, 5,000-d counts (Blitzer et al. 2007), the protocol
  of Ganin et al. (JMLR 2016): 12 tasks, evaluation on the target's test file.
* ``files`` — a user's own source/target files (``.npz``, ``.csv``, ``.svmlight``, ``.mat``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Iterator, Literal

import numpy as np

from transferkit.core.errors import ConfigError, DataError, UnknownNameError
from transferkit.core.registries import DATASETS
from transferkit.data.dataset import Task, make_task

_SPLIT = re.compile(r"\s*(?:->|→|=>|>|\s-\s|-|\s+to\s+|_to_)\s*", re.IGNORECASE)


class TaskCollection:
    """Base of the registered data sets: named adaptation tasks, loaded one at a time.

    Subclasses set :attr:`name`, :attr:`TASKS` (canonical names, in the published order),
    :attr:`DOMAIN_ALIASES` (lower-case alias -> canonical domain), :attr:`SEP` and implement
    :meth:`_load`.
    """

    name: ClassVar[str] = ""
    TASKS: ClassVar[tuple[str, ...]] = ()
    DOMAIN_ALIASES: ClassVar[dict[str, str]] = {}
    SEP: ClassVar[str] = "-"

    def __init__(self, *, tasks: str | list[str] = "all") -> None:
        self.tasks_param = tasks
        self._selected = self.select_tasks(tasks)

    # -- names ---------------------------------------------------------------------------------
    @classmethod
    def all_task_names(cls) -> list[str]:
        """Every task of the data set, canonical names in the published order."""
        return list(cls.TASKS)

    @classmethod
    def canonical_task(cls, name: str) -> str:
        """The canonical name of a task given as ``"C-A"``, ``"C->A"``, ``"c-a"`` or with full
        domain names. Unknown names raise :class:`UnknownNameError` with the closest ones."""
        if not isinstance(name, str):
            raise ConfigError(f"task names are strings, got {name!r}", "tasks")
        if name in cls.TASKS:
            return name
        parts = [p for p in _SPLIT.split(name.strip()) if p]
        if len(parts) == 2:
            doms = [cls.DOMAIN_ALIASES.get(p.lower(), p) for p in parts]
            lowered = {t.lower(): t for t in cls.TASKS}
            hit = lowered.get(cls.SEP.join(doms).lower())
            if hit:
                return hit
        from transferkit.core.registry import suggest

        lowered_choices = [t.lower() for t in cls.TASKS]
        hint = suggest(name.replace("->", cls.SEP).replace(">", ""), lowered_choices)
        for t in cls.TASKS:  # show the suggestions in their canonical spelling
            hint = hint.replace(repr(t.lower()), repr(t))
        raise UnknownNameError(
            f"unknown task {name!r} of {cls.name!r}.{hint} Known tasks: {', '.join(cls.TASKS)} "
            "(or 'all').", "tasks")

    @classmethod
    def select_tasks(cls, tasks: str | list[str] | tuple[str, ...]) -> list[str]:
        """Canonical names for ``"all"``, one name, a comma-separated string or a list."""
        if isinstance(tasks, str):
            items = [t.strip() for t in tasks.split(",")] if "," in tasks else [tasks.strip()]
        elif isinstance(tasks, (list, tuple)):
            items = list(tasks)
        else:
            raise ConfigError(f"got {tasks!r}; expected 'all', a task name or a list of task names", "tasks")
        if not items or items == [""]:
            raise ConfigError(f"no task selected; use 'all' or some of: {', '.join(cls.TASKS)}", "tasks")
        out: list[str] = []
        for t in items:
            names = cls.all_task_names() if isinstance(t, str) and t.lower() == "all" else [cls.canonical_task(t)]
            out += [n for n in names if n not in out]
        return out

    # -- loading -------------------------------------------------------------------------------
    def task_names(self) -> list[str]:
        """The selected tasks (canonical names)."""
        return list(self._selected)

    def load_task(self, name: str) -> Task:
        """One task by name (any task of the data set, selected or not)."""
        return self._load(self.canonical_task(name))

    def tasks(self) -> Iterator[Task]:
        """The selected tasks, each loaded when the iteration reaches it."""
        for name in self._selected:
            yield self._load(name)

    def _load(self, name: str) -> Task:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tasks={self.tasks_param!r})"


class Benchmark(TaskCollection):
    """A published benchmark whose files live in ``<data_dir>/<SUBDIR>/``.

    The data folder is found by :func:`transferkit.data.paths.resolve_data_dir` when first
    needed (not at construction); each file is checked against ``SHA256SUMS`` the first time
    this process reads it (``verify_checksums=False`` skips the check).
    """

    SUBDIR: ClassVar[str] = ""

    def __init__(self, *, tasks: str | list[str] = "all", data_dir: str | None = None,
                 verify_checksums: bool = True) -> None:
        super().__init__(tasks=tasks)
        self.data_dir = data_dir
        self.verify_checksums = verify_checksums
        self._root: Path | None = None

    @property
    def root(self) -> Path:
        """The resolved benchmark data folder (the one holding ``SHA256SUMS``)."""
        if self._root is None:
            from transferkit.data.paths import resolve_data_dir

            self._root = resolve_data_dir(self.data_dir)
        return self._root

    def file(self, filename: str) -> Path:
        """``<root>/<SUBDIR>/<filename>``, checked to exist and to match ``SHA256SUMS``."""
        from transferkit.data.paths import verified_path

        return verified_path(self.root, f"{self.SUBDIR}/{filename}", verify=self.verify_checksums)


def _samples_first(x: np.ndarray, n: int, where: str) -> np.ndarray:
    """``x`` as (n, features): transposed when MATLAB stored it as features x samples."""
    if x.ndim != 2:
        raise DataError(f"{where}: expected a 2-D matrix, got shape {x.shape}")
    if x.shape[0] == n:
        return x
    if x.shape[1] == n:
        return x.T
    raise DataError(f"{where}: matrix of shape {x.shape} does not match the {n} labels")


def _labels_1_to_k(y: np.ndarray, k: int, where: str) -> np.ndarray:
    """MATLAB labels ``1..k`` as ``0..k-1`` (checked)."""
    y = np.asarray(y).ravel()
    if not np.all(y == np.round(y)) or y.min() < 1 or y.max() > k:
        raise DataError(f"{where}: expected labels 1..{k}, found values in [{y.min()}, {y.max()}]")
    return y.astype(np.int64) - 1


# == Office-Caltech10 SURF ======================================================================
def jda_surf_preprocess(x: np.ndarray) -> np.ndarray:
    """The JDA/TCA preprocessing of SURF histograms, applied to ONE domain (n, d): divide each
    row by its sum, then z-score each feature over the domain's samples (``ddof=0``, as
    ``scipy.stats.zscore``). Zero-sum rows stay zero; zero-variance features become 0."""
    x = np.asarray(x, dtype=np.float64)
    s = x.sum(axis=1, keepdims=True)
    x = x / np.where(s == 0, 1.0, s)
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    z = (x - mu) / np.where(sd > 0, sd, 1.0)
    z[:, sd == 0] = 0.0
    return z


@DATASETS.register(
    "office_caltech10_surf",
    description="Office-Caltech10 SURF (800-d, 10 classes), domains C/A/W/D, 12 transductive tasks",
)
class OfficeCaltech10SURF(Benchmark):
    """Office-Caltech10 with 800-d SURF bag-of-words features (Gong et al., CVPR 2012).

    Domains: C = Caltech10 (1123 samples), A = amazon (958), W = webcam (295), D = dslr (157);
    10 classes (labels 1..10 in the files, 0..9 here). 12 tasks, all ordered pairs, in the order
    of the published tables. Transductive protocol (JDA, TCA papers): all target samples are the
    unlabelled adaptation data, and accuracy is measured on the same samples with their labels.

    ``preprocess="jda"`` (Long et al., ICCV 2013): each row divided by its sum, then each feature
    z-scored within its domain; ``"none"``: raw counts. With ``"jda"``, 1-NN on the source alone
    gives the published 1NN row exactly (mean 31.4).
    """

    name = "office_caltech10_surf"
    SUBDIR = "office_caltech10_surf"
    TASKS = ("C-A", "C-W", "C-D", "A-C", "A-W", "A-D", "W-C", "W-A", "W-D", "D-C", "D-A", "D-W")
    FILES: ClassVar[dict[str, str]] = {
        "C": "Caltech10_SURF_L10.mat", "A": "amazon_SURF_L10.mat",
        "W": "webcam_SURF_L10.mat", "D": "dslr_SURF_L10.mat",
    }
    DOMAIN_NAMES: ClassVar[dict[str, str]] = {"C": "caltech10", "A": "amazon", "W": "webcam", "D": "dslr"}
    DOMAIN_ALIASES = {
        "c": "C", "caltech": "C", "caltech10": "C", "caltech256": "C",
        "a": "A", "amazon": "A", "w": "W", "webcam": "W", "d": "D", "dslr": "D",
    }

    def __init__(self, *, tasks: str | list[str] = "all", data_dir: str | None = None,
                 preprocess: Literal["jda", "none"] = "jda", verify_checksums: bool = True) -> None:
        super().__init__(tasks=tasks, data_dir=data_dir, verify_checksums=verify_checksums)
        if preprocess not in ("jda", "none"):
            raise ConfigError(f"got {preprocess!r}; expected 'jda' or 'none'", "preprocess")
        self.preprocess = preprocess
        self._domains: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def domain(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Features (n, 800) float32 after preprocessing and labels (n,) in 0..9 of domain
        ``key`` (``"C"``, ``"A"``, ``"W"``, ``"D"``); cached per instance."""
        if key not in self._domains:
            from transferkit.data.readers import read_mat

            path = self.file(self.FILES[key])
            m = read_mat(path, ["fts", "labels"])
            y = _labels_1_to_k(m["labels"], 10, f"{path}:labels")
            x = _samples_first(np.asarray(m["fts"]), len(y), f"{path}:fts")
            x = jda_surf_preprocess(x) if self.preprocess == "jda" else x.astype(np.float64)
            self._domains[key] = (x.astype(np.float32), y)
        return self._domains[key]

    def _load(self, name: str) -> Task:
        s, t = name.split("-")
        xs, ys = self.domain(s)
        xt, yt = self.domain(t)
        notes = ("Office-Caltech10 SURF: transductive protocol (all target samples are the unlabelled "
                 "adaptation data and the evaluation set); "
                 + ("rows divided by their sum, features z-scored per domain (JDA)." if self.preprocess == "jda"
                    else "raw SURF counts."))
        return make_task(xs, ys, xt, xt, yt, name=name, source_name=self.DOMAIN_NAMES[s],
                         target_name=self.DOMAIN_NAMES[t], classes=[str(i) for i in range(10)],
                         benchmark=self.name, notes=notes)


# == MNIST <-> USPS (JDA subsets) ===============================================================
@DATASETS.register(
    "mnist_usps_jda",
    description="MNIST (2000) <-> USPS (1800), 16x16 grey as released with JDA; 2 transductive tasks",
)
class MnistUspsJDA(Benchmark):
    """MNIST (2,000 samples) and USPS (1,800) as 256-d vectors of 16x16 grey images, the subsets
    released with JDA (Long et al., ICCV 2013). Tasks ``MNIST-USPS`` (``MNIST_vs_USPS.mat``) and
    ``USPS-MNIST`` (``USPS_vs_MNIST.mat``); labels 1..10 (= digit + 1) become 0..9.
    Transductive protocol: all target samples are adapted on and evaluated.

    ``preprocess="jda"``: each sample scaled to unit L2 norm (1-NN then gives the JDA paper's NN
    column, 65.94 and 44.70); ``"none"``: pixel values in [0, 1].
    """

    name = "mnist_usps_jda"
    SUBDIR = "mnist_usps_jda"
    TASKS = ("MNIST-USPS", "USPS-MNIST")
    FILES: ClassVar[dict[str, str]] = {"MNIST-USPS": "MNIST_vs_USPS.mat", "USPS-MNIST": "USPS_vs_MNIST.mat"}
    DOMAIN_ALIASES = {"mnist": "MNIST", "m": "MNIST", "usps": "USPS", "u": "USPS"}

    def __init__(self, *, tasks: str | list[str] = "all", data_dir: str | None = None,
                 preprocess: Literal["jda", "none"] = "jda", verify_checksums: bool = True) -> None:
        super().__init__(tasks=tasks, data_dir=data_dir, verify_checksums=verify_checksums)
        if preprocess not in ("jda", "none"):
            raise ConfigError(f"got {preprocess!r}; expected 'jda' or 'none'", "preprocess")
        self.preprocess = preprocess

    def _load(self, name: str) -> Task:
        from transferkit.data.readers import read_mat

        path = self.file(self.FILES[name])
        m = read_mat(path, ["Xs", "Ys", "Xt", "Yt"])
        ys = _labels_1_to_k(m["Ys"], 10, f"{path}:Ys")
        yt = _labels_1_to_k(m["Yt"], 10, f"{path}:Yt")
        xs = _samples_first(np.asarray(m["Xs"], dtype=np.float64), len(ys), f"{path}:Xs")
        xt = _samples_first(np.asarray(m["Xt"], dtype=np.float64), len(yt), f"{path}:Xt")
        if xs.shape[1] != 256 or xt.shape[1] != 256:
            raise DataError(f"{path}: expected 256 features (16x16 images), got Xs {xs.shape}, Xt {xt.shape}")
        if self.preprocess == "jda":
            xs, xt = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for x in (xs, xt))
        s, t = name.split("-")
        notes = ("MNIST/USPS (JDA subsets, 16x16 flattened to 256): transductive protocol (all target "
                 "samples adapted on and evaluated); "
                 + ("each sample scaled to unit L2 norm." if self.preprocess == "jda" else "pixels in [0, 1]."))
        xs32, xt32 = xs.astype(np.float32), xt.astype(np.float32)
        return make_task(xs32, ys, xt32, xt32, yt, name=name, source_name=s.lower(), target_name=t.lower(),
                         classes=[str(i) for i in range(10)], benchmark=self.name, notes=notes)


# == Amazon reviews, 5000-d =====================================================================
@DATASETS.register(
    "amazon_reviews_5000d",
    description="Amazon reviews (books/dvd/electronics/kitchen), 5000-d counts, binary sentiment; 12 tasks",
)
class AmazonReviews5000d(Benchmark):
    """Amazon product reviews of Blitzer et al. (ACL 2007) as 5,000-d unigram/bigram counts, the
    files and protocol of Ganin et al. (JMLR 2016, Sec. 5.1.2): labelled source =
    ``<source>_train`` (2,000), unlabelled target = ``<target>_train`` (2,000), accuracy on
    ``<target>_test`` (3,586 to 5,945). Domains B = books, D = dvd, E = electronics,
    K = kitchen; 12 tasks. Labels -1/+1 become 0 (negative) / 1 (positive).

    ``preprocess``: ``"none"`` (raw counts, the paper's input), ``"binary"`` (word present) or
    ``"tfidf"`` (idf from the source and target training files, no labels; rows L2-normalised)
    or ``"msda"`` (the raw counts and ``msda_layers`` mSDA layers, with feature-drop probability
    ``msda_noise``, fitted on the source and target training files without labels, concatenated:
    the representation of the paper's mSDA columns, :mod:`transferkit.shallow.msda`).
    Features are dense float32 (n, 5000), or (n, 5000 (msda_layers + 1)) with mSDA.
    """

    name = "amazon_reviews_5000d"
    SUBDIR = "amazon_reviews_5000d"
    N_FEATURES = 5000
    DOMAINS: ClassVar[dict[str, str]] = {"B": "books", "D": "dvd", "E": "electronics", "K": "kitchen"}
    TASKS = tuple(f"{s}-{t}" for s in "BDEK" for t in "BDEK" if s != t)
    DOMAIN_ALIASES = {"b": "B", "books": "B", "book": "B", "d": "D", "dvd": "D", "e": "E",
                      "electronics": "E", "k": "K", "kitchen": "K"}

    def __init__(self, *, tasks: str | list[str] = "all", data_dir: str | None = None,
                 preprocess: Literal["none", "binary", "tfidf", "msda"] = "none",
                 msda_noise: float = 0.5, msda_layers: int = 5,
                 verify_checksums: bool = True) -> None:
        super().__init__(tasks=tasks, data_dir=data_dir, verify_checksums=verify_checksums)
        if preprocess not in ("none", "binary", "tfidf", "msda"):
            raise ConfigError(f"got {preprocess!r}; expected 'none', 'binary', 'tfidf' or 'msda'", "preprocess")
        if preprocess == "msda":
            from transferkit.shallow.msda import check_params

            check_params(msda_noise, msda_layers, 0.0)
        self.preprocess = preprocess
        self.msda_noise = msda_noise
        self.msda_layers = msda_layers
        self._files: dict[str, tuple[Any, np.ndarray]] = {}

    def split(self, domain: str, part: Literal["train", "test"]) -> tuple[Any, np.ndarray]:
        """Sparse counts (n, 5000) and labels (n,) in {0, 1} of ``<domain>_<part>.svmlight``
        (cached per instance, sparse: dense copies are made per task)."""
        fname = f"{self.DOMAINS[domain]}_{part}.svmlight"
        if fname not in self._files:
            from transferkit.data.readers import read_svmlight

            path = self.file(fname)
            X, y = read_svmlight(path, self.N_FEATURES, dense=False, zero_based=True)
            bad = ~np.isin(y, (-1, 1))
            if bad.any():
                raise DataError(f"{path}: expected labels -1/+1, found {np.unique(y[bad])[:5].tolist()}")
            self._files[fname] = (X, (y > 0).astype(np.int64))
        return self._files[fname]

    def _transform(self, mats: list[Any], fit_on: list[Any]) -> list[np.ndarray]:
        """Dense features of ``mats``; what the preprocessing learns comes from ``fit_on``, the
        unlabelled training rows, which are the first entries of ``mats``."""
        if self.preprocess == "none":
            return [m.toarray().astype(np.float32) for m in mats]
        if self.preprocess == "binary":
            return [(m.toarray() > 0).astype(np.float32) for m in mats]
        if self.preprocess == "msda":  # denoisers fitted on the unlabelled training rows
            from transferkit.shallow.msda import msda_fit_transform, msda_transform

            # the fitted rows' representation comes out of the fit; ``fit_on`` leads ``mats``
            ws, z = msda_fit_transform(np.vstack([m.toarray() for m in fit_on]), noise=self.msda_noise,
                                       layers=self.msda_layers)
            fitted = np.split(z, np.cumsum([m.shape[0] for m in fit_on])[:-1])
            return fitted + [msda_transform(m.toarray(), ws) for m in mats[len(fit_on):]]
        # tf-idf with smoothed idf (log((1 + n) / (1 + df)) + 1), fitted on unlabelled training rows
        n = sum(m.shape[0] for m in fit_on)
        df = sum(np.asarray((m > 0).sum(axis=0)).ravel() for m in fit_on)
        idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        out = []
        for m in mats:
            d = m.toarray().astype(np.float64) * idf
            d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
            out.append(d.astype(np.float32))
        return out

    def _features_note(self) -> str:
        if self.preprocess == "msda":
            return (f"mSDA (Chen et al. 2012; {self.msda_layers} layers, noise {self.msda_noise}, fitted on the "
                    f"unlabelled source and target training rows) stacked on the raw counts, "
                    f"{self.N_FEATURES * (self.msda_layers + 1)}-d")
        return "raw counts" if self.preprocess == "none" else self.preprocess

    def _load(self, name: str) -> Task:
        s, t = name.split("-")
        xs, ys = self.split(s, "train")
        xt, _ = self.split(t, "train")  # target labels never used
        xtest, ytest = self.split(t, "test")
        xs_d, xt_d, xtest_d = self._transform([xs, xt, xtest], fit_on=[xs, xt])
        notes = ("Amazon reviews 5000-d (Ganin et al. 2016 protocol): labelled source <src>_train, "
                 "unlabelled target <tgt>_train, accuracy on <tgt>_test; "
                 f"features: {self._features_note()}.")
        return make_task(xs_d, ys, xt_d, xtest_d, ytest, name=name, source_name=self.DOMAINS[s],
                         target_name=self.DOMAINS[t], classes=["negative", "positive"],
                         benchmark=self.name, notes=notes,
                         # the published table is for the raw counts: other features have no figure there
                         reference=None if self.preprocess == "none" else f"{self.name}[{self.preprocess}]")


# == a user's own files =========================================================================
@DATASETS.register(
    "files",
    description="Your own data: a labelled source file and a target file (.npz/.csv/.svmlight/.mat)",
)
class FilesDataset:
    """One task from a user's files (see :func:`transferkit.data.readers.load_domain_dataset`).

    ``source`` (labelled) and ``target`` (adaptation data; its labels, if any, are never shown
    to methods) are ``.npz`` (arrays ``x``, ``y``), ``.csv``/``.tsv`` (``label_column``),
    ``.svmlight`` or ``.mat`` files. Accuracy is measured on ``target_test`` when given, else on
    the labelled target itself (transductive), else not at all. Labels are mapped to ``0..K-1``.
    Without ``target``: plain fine-tuning on the source, measured on ``target_test``.
    """

    name = "files"

    def __init__(self, *, source: str, target: str | None = None, target_test: str | None = None,
                 label_column: int | str | None = -1, x_key: str | None = None,
                 y_key: str | None = None, n_features: int | None = None,
                 task_name: str | None = None) -> None:
        self.source, self.target, self.target_test = source, target, target_test
        self.label_column, self.x_key, self.y_key = label_column, x_key, y_key
        self.n_features = n_features
        from transferkit.data.readers import target_side

        self.task_name = task_name or f"{Path(source).stem}->{target_side(target, target_test).stem}"

    def task_names(self) -> list[str]:
        return [self.task_name]

    def load_task(self, name: str | None = None) -> Task:
        if name is not None and name != self.task_name:
            raise UnknownNameError(f"unknown task {name!r}; the files data set has one task, "
                                   f"{self.task_name!r}", "tasks")
        from transferkit.data.readers import load_domain_dataset

        return load_domain_dataset(source=self.source, target=self.target, target_test=self.target_test,
                                   x_key=self.x_key, y_key=self.y_key, label_column=self.label_column,
                                   n_features=self.n_features, name=self.task_name)

    def tasks(self) -> Iterator[Task]:
        yield self.load_task()

    def __repr__(self) -> str:
        return f"FilesDataset(source={self.source!r}, target={self.target!r})"


# == text and image data sets (registered by importing their modules) ===========================
from transferkit.data import fashion_mnist, images, text  # noqa: F401  (registration)
