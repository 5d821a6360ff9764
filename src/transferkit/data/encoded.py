"""Raw data (texts, images) -> what a task holds, through a registered encoder.

``representation="features"``: the frozen encoder's pooled features, read from or written to the
feature cache (:mod:`transferkit.models.cache`), so any shallow method runs on them.
``representation="inputs"``: the encoder's own preprocessed inputs (token ids for ``minilm``,
normalised images for ``efficientnet_lite0``), for fine-tuning the encoder with the training loop
(model of the same name).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from transferkit.core.errors import ConfigError

Representation = Literal["features", "inputs"]


class EncodedInputs:
    """One encoder, built on first use and reused for every domain of a data set.

    ``encoder``/``encoder_params``: a name of :data:`~transferkit.core.registries.ENCODERS` and
    its parameters. ``cache_dir``/``use_cache``: where frozen features are kept (None: the
    default folder, see :func:`transferkit.models.cache.default_cache_dir`). ``batch_size`` and
    ``progress``: extraction settings (they do not change the features). :attr:`log` records, per
    encoded part, whether the cache was hit and the timings.
    """

    def __init__(self, encoder: str, encoder_params: dict[str, Any] | None = None, *,
                 representation: Representation = "features", cache_dir: str | None = None,
                 use_cache: bool = True, batch_size: int = 64, progress: bool = True) -> None:
        from transferkit.core.params import bind_params
        from transferkit.core.registries import ENCODERS

        entry = ENCODERS.entry(encoder, "encoder")
        self.params = bind_params(entry.obj, dict(encoder_params or {}), path="encoder_params")
        if representation not in ("features", "inputs"):
            raise ConfigError(f"got {representation!r}; expected 'features' (frozen encoder features) or "
                              "'inputs' (the encoder's preprocessed inputs, for fine-tuning)", "representation")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"got {batch_size!r}; expected a positive integer", "batch_size")
        self.name = encoder
        self.representation = representation
        self.cache_dir, self.use_cache = cache_dir, use_cache
        self.batch_size, self.progress = batch_size, progress
        self._encoder: Any = None
        self._identity: dict[str, Any] | None = None
        self.log: dict[str, dict[str, Any]] = {}

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from transferkit.models.encoders import create_encoder

            self._encoder = create_encoder(self.name, self.params, path="encoder")
            self._encoder.eval()
        return self._encoder

    def describe(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items()))
        what = "frozen features" if self.representation == "features" else "preprocessed inputs"
        return f"{self.name}({params}) {what}"

    def _inputs(self, raw: Any, label: str) -> np.ndarray:
        """The preprocessed inputs of every sample, in chunks, refusing to build more than
        :attr:`MAX_INPUT_BYTES` (e.g. 60,000 images resized to 224x224 would take 36 GB)."""
        from transferkit.models.encoders.base import take

        n = len(raw)
        step = max(1, self.batch_size * 16)
        first = self.encoder.preprocess(take(raw, np.arange(min(step, n))))
        total = first.nbytes / max(len(first), 1) * n
        if total > self.MAX_INPUT_BYTES:
            raise ConfigError(
                f"{label}: the {self.name} inputs of {n} samples would take {total / 2**30:.1f} GiB "
                f"({first.shape[1:]} {first.dtype} each); use representation: features (frozen features, "
                "cached) or smaller inputs (e.g. encoder_params: {image_size: 64})", "representation")
        if n <= step:
            return first
        out = np.empty((n, *first.shape[1:]), dtype=first.dtype)
        out[:len(first)] = first
        for start in range(len(first), n, step):
            idx = np.arange(start, min(start + step, n))
            out[idx] = self.encoder.preprocess(take(raw, idx))
        return out

    #: the most memory the "inputs" representation may take for one part of a data set
    MAX_INPUT_BYTES = 4 * 2**30

    def __call__(self, raw: Any, *, label: str) -> np.ndarray:
        """Features ``(n, d)`` or inputs ``(n, ...)`` of ``raw``; ``label`` names the part in :attr:`log`."""
        import time

        if self.representation == "inputs":
            t0 = time.perf_counter()
            x = self._inputs(raw, label)
            self.log[label] = {"representation": "inputs", "seconds": time.perf_counter() - t0,
                               "shape": list(x.shape)}
            return x
        from transferkit.models.cache import FeatureCache

        if self._identity is None:
            self._identity = self.encoder.identity()
        got = FeatureCache(self.cache_dir, enabled=self.use_cache).features(
            self.encoder, raw, batch_size=self.batch_size, progress=self.progress,
            desc=f"{self.name} {label}", identity=self._identity)
        self.log[label] = {"representation": "features", "hit": got.hit, "extract_seconds": got.extract_seconds,
                           "load_seconds": got.load_seconds, "key_seconds": got.key_seconds,
                           "speedup": got.speedup, "key": got.key, "shape": list(got.features.shape),
                           "summary": got.describe()}
        return got.features
