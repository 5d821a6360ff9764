"""A disk cache of frozen-encoder features: computed once per (data, encoder, preprocessing), then
read back by every later run.

Key = SHA-256 of a canonical JSON holding

* the content hash of the raw data (texts: their UTF-8 bytes with lengths; arrays: dtype, shape
  and bytes),
* the encoder's identity: name, constructor parameters, SHA-256 of its current weights (and of
  its tokenizer files),
* the preprocessing settings (``max_length``, ``image_size``, normalisation, ...),
* the cache format version.

Change any of them and the key changes. Entries are single ``.npz`` files (``features`` and a
JSON ``meta`` string; no pickles) under ``<root>/<encoder>/<key>.npz``, written to a temporary
file in the same folder and renamed into place, so a killed run never leaves a torn entry; an
unreadable entry is recomputed. The root is ``cache_dir``, else ``$TRANSFERKIT_CACHE``, else
``~/.cache/transferkit/features``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from transferkit.core.errors import DataError

ENV_VAR = "TRANSFERKIT_CACHE"
#: every call of :meth:`FeatureCache.features` logs one INFO record here; its ``cache`` attribute
#: holds the hit flag and the timings (benchmarks collect them with a handler)
logger = logging.getLogger("transferkit.cache")
FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """``$TRANSFERKIT_CACHE`` when set, else ``~/.cache/transferkit/features``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "transferkit" / "features"


def data_sha256(data: Any) -> str:
    """Content hash of raw data: a list of texts, or a numeric array (dtype, shape and bytes)."""
    h = hashlib.sha256()
    if isinstance(data, np.ndarray):
        a = np.ascontiguousarray(data)
        if a.dtype == object:
            raise DataError("cannot hash an object array; give texts as a list of str or a numeric array")
        h.update(f"array|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.reshape(-1).view(np.uint8) if a.size else b"")
        return h.hexdigest()
    if isinstance(data, (list, tuple)):
        h.update(f"texts|{len(data)}|".encode())
        for i, t in enumerate(data):
            if not isinstance(t, str):
                raise DataError(f"cannot hash item {i} ({type(t).__name__}); expected texts (str) or a numeric array")
            b = t.encode("utf-8", "surrogatepass")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
        return h.hexdigest()
    raise DataError(f"cannot hash data of type {type(data).__name__}; expected a list of texts or a numpy array")


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


@dataclass
class CachedFeatures:
    """Features of one call of :meth:`FeatureCache.features` and how they were obtained.

    ``hit``: read from the cache. ``extract_seconds``: the time the extraction took (on a hit, the
    time recorded when the entry was made). ``load_seconds``: time to read the entry (hits only).
    ``key_seconds``: time to hash the data and identify the encoder. ``speedup`` = extraction
    time / load time (hits only).
    """

    features: np.ndarray
    hit: bool
    key: str
    path: Path | None
    extract_seconds: float
    load_seconds: float | None = None
    key_seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        if not self.hit or not self.load_seconds:
            return None
        return self.extract_seconds / self.load_seconds

    def describe(self) -> str:
        """One line for reports: hit or miss with the timings and their ratio."""
        n, d = self.features.shape
        if self.hit:
            ratio = f", {self.speedup:.0f}x faster" if self.speedup else ""
            return (f"cache hit: {n}x{d} features loaded in {self.load_seconds:.2f} s (extraction took "
                    f"{self.extract_seconds:.1f} s when the entry was made{ratio})")
        return f"extracted {n}x{d} features in {self.extract_seconds:.1f} s (cached for later runs)"


class FeatureCache:
    """Features of frozen encoders on disk (see the module docstring).

    ``root``: the cache folder (None: :func:`default_cache_dir`). ``enabled=False`` always
    extracts and never writes (same return type, ``hit=False``).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *, enabled: bool = True) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.enabled = enabled

    # -- keys -----------------------------------------------------------------------------------
    def key(self, encoder: Any, data: Any, *, identity: dict[str, Any] | None = None,
            **settings: Any) -> tuple[str, dict[str, Any]]:
        """The cache key of ``encoder`` on ``data`` with preprocessing ``settings``, and the
        description it hashes. ``identity``: a precomputed ``encoder.identity()``."""
        desc = {
            "format": FORMAT_VERSION,
            "data_sha256": data_sha256(data),
            "n": len(data),
            "encoder": identity if identity is not None else encoder.identity(),
            "preprocess": encoder.preprocess_settings(**settings),
        }
        return hashlib.sha256(_canonical(desc).encode()).hexdigest(), desc

    def path(self, encoder_name: str, key: str) -> Path:
        return self.root / encoder_name / f"{key}.npz"

    # -- storage --------------------------------------------------------------------------------
    def load(self, path: Path, key: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        """An entry's features and metadata, or None when absent or unreadable (warned)."""
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                feats = np.asarray(z["features"])
                meta = json.loads(str(z["meta"]))
        except Exception as exc:  # noqa: BLE001  (torn by a crash, disk errors, a foreign file)
            warnings.warn(f"feature cache entry {path} is unreadable ({type(exc).__name__}: {exc}); recomputing",
                          RuntimeWarning, stacklevel=3)
            return None
        if meta.get("key") != key or feats.ndim != 2 or feats.shape[0] != meta.get("n"):
            warnings.warn(f"feature cache entry {path} does not match its key; recomputing",
                          RuntimeWarning, stacklevel=3)
            return None
        return feats, meta

    def save(self, path: Path, features: np.ndarray, meta: dict[str, Any]) -> Path:
        """Write an entry atomically: temporary file in the same folder, fsync, rename."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:16]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, features=features, meta=np.array(_canonical(meta)))
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; entries are plain data
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return path

    # -- main entry -----------------------------------------------------------------------------
    def features(self, encoder: Any, data: Any, *, batch_size: int = 64, progress: bool = True,
                 desc: str | None = None, identity: dict[str, Any] | None = None,
                 **settings: Any) -> CachedFeatures:
        """Features ``(n, encoder.num_features)`` float32 of ``encoder`` (frozen, eval mode, no
        gradients) on raw ``data`` (texts or images), from the cache when an entry exists, else
        extracted in batches of ``batch_size`` (progress bar) and stored. ``settings`` go to
        ``encoder.preprocess`` and into the key."""
        t0 = time.perf_counter()
        key, description = self.key(encoder, data, identity=identity, **settings)
        t_key = time.perf_counter() - t0
        path = self.path(encoder.name, key)
        if self.enabled:
            t1 = time.perf_counter()
            got = self.load(path, key)
            if got is not None:
                feats, meta = got
                return self._logged(CachedFeatures(
                    feats, True, key, path, float(meta.get("extract_seconds", float("nan"))),
                    load_seconds=time.perf_counter() - t1, key_seconds=t_key, meta=meta), desc)
        t2 = time.perf_counter()
        feats = encoder.encode(data, batch_size=batch_size, progress=progress, desc=desc, **settings)
        t_extract = time.perf_counter() - t2
        meta = {**description, "key": key, "extract_seconds": t_extract, "shape": list(feats.shape),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "batch_size": batch_size}
        if self.enabled:
            self.save(path, feats, meta)
        return self._logged(CachedFeatures(feats, False, key, path if self.enabled else None, t_extract,
                                           key_seconds=t_key, meta=meta), desc)

    @staticmethod
    def _logged(res: CachedFeatures, desc: str | None) -> CachedFeatures:
        info = {"what": desc, "hit": res.hit, "extract_seconds": res.extract_seconds,
                "load_seconds": res.load_seconds, "key_seconds": res.key_seconds, "speedup": res.speedup,
                "shape": list(res.features.shape), "key": res.key}
        logger.info("%s: %s", desc or "features", res.describe(), extra={"cache": info})
        return res

    def entries(self) -> list[Path]:
        """Every entry file under the root."""
        return sorted(self.root.glob("*/*.npz")) if self.root.is_dir() else []

    def clear(self) -> int:
        """Delete every entry (and stray temporary files); return how many entries were removed."""
        n = 0
        for p in self.entries():
            p.unlink(missing_ok=True)
            n += 1
        if self.root.is_dir():
            for p in self.root.glob("*/.*.tmp"):
                p.unlink(missing_ok=True)
        return n


def cached_features(encoder: Any, data: Any, *, cache_dir: str | os.PathLike[str] | None = None,
                    use_cache: bool = True, **kwargs: Any) -> CachedFeatures:
    """Shorthand for ``FeatureCache(cache_dir, enabled=use_cache).features(encoder, data, ...)``."""
    return FeatureCache(cache_dir, enabled=use_cache).features(encoder, data, **kwargs)
