"""The shape every pretrained encoder shares.

An :class:`Encoder` is a backbone (``nn.Module`` with ``num_features``) that also knows how to
turn raw data into its input (:meth:`Encoder.preprocess`), how it splits into layer groups from
input to output (:meth:`Encoder.layer_groups`, for freezing, gradual unfreezing and layer-wise
learning rates) and what identifies it (:meth:`Encoder.identity`, for the feature cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn


def take(data: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of an array, or items ``idx`` of a list/sequence (texts)."""
    if isinstance(data, np.ndarray):
        return data[idx]
    return [data[int(i)] for i in idx]


class Encoder(nn.Module):
    """Base class of the pretrained encoders (``minilm``, ``efficientnet_lite0``).

    ``forward(x)`` maps a batch of *preprocessed* inputs to features ``(B, num_features)``.
    Subclasses set :attr:`name`, :attr:`num_features`, store their constructor parameters in
    ``self._params`` and implement :meth:`preprocess`, :meth:`preprocess_settings` and
    :meth:`layer_groups`.
    """

    name: ClassVar[str] = ""
    num_features: int = 0

    def __init__(self) -> None:
        super().__init__()
        self._params: dict[str, Any] = {}

    # -- interface --------------------------------------------------------------------------------
    def preprocess(self, data: Any, **settings: Any) -> np.ndarray:  # pragma: no cover - abstract
        """Raw data (texts, images) -> the array ``forward`` takes (one row per sample)."""
        raise NotImplementedError

    def preprocess_settings(self, **overrides: Any) -> dict[str, Any]:  # pragma: no cover - abstract
        """The settings :meth:`preprocess` uses with ``overrides`` applied (all of them, explicit:
        they are part of the feature-cache key)."""
        raise NotImplementedError

    def layer_groups(self) -> list[nn.Module]:  # pragma: no cover - abstract
        """The encoder's parameters in groups ordered from input to output (every parameter is in
        exactly one group)."""
        raise NotImplementedError

    def sort_order(self, data: Any) -> np.ndarray | None:
        """An order of the samples that puts similar-cost ones together (e.g. texts by length);
        None keeps the given order. Only speeds up :meth:`encode`; results do not depend on it."""
        return None

    def identity_extra(self) -> dict[str, Any]:
        """Anything besides parameters and weights that changes the features (tokenizer files)."""
        return {}

    # -- shared ---------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """The constructor parameters (JSON-compatible values)."""
        return dict(self._params)

    def identity(self) -> dict[str, Any]:
        """Name, parameters and a SHA-256 of the current weights: equal for encoders that compute
        the same function (fine-tuned weights give a new identity)."""
        from transferkit.models.encoders.weights import state_dict_sha256

        return {"encoder": self.name, "params": self.params(), "weights_sha256": state_dict_sha256(self),
                **self.identity_extra()}

    @torch.no_grad()
    def encode(self, data: Any, *, batch_size: int = 64, progress: bool = False, desc: str | None = None,
               **settings: Any) -> np.ndarray:
        """Features ``(n, num_features)`` float32 of raw ``data``: preprocessed batch by batch,
        in eval mode, under ``torch.no_grad`` (the module's train/eval mode is restored)."""
        from tqdm.auto import tqdm

        n = len(data)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        order = self.sort_order(data)
        idx = np.arange(n) if order is None else np.asarray(order)
        out = np.empty((n, self.num_features), dtype=np.float32)
        was_training = self.training
        self.eval()
        try:
            starts = range(0, n, batch_size)
            for start in tqdm(starts, desc=desc or f"{self.name} features", disable=not progress,
                              unit="batch", dynamic_ncols=True, leave=False):
                b = idx[start:start + batch_size]
                x = torch.as_tensor(self.preprocess(take(data, b), **settings))
                out[b] = self(x).float().cpu().numpy()
        finally:
            self.train(was_training)
        return out


def check_batch_rows(data: Any, what: str) -> Sequence[Any]:
    """``data`` as a sequence with a length (lists, tuples, arrays); a clear error otherwise."""
    if isinstance(data, (str, bytes)) or not hasattr(data, "__len__"):
        raise TypeError(f"{what}: expected a list of samples, got {type(data).__name__}")
    return data


def require(module: str, extra: str, what: str) -> Any:
    """Import an optional module, or raise :class:`ConfigError` naming the extra to install."""
    import importlib

    from transferkit.core.errors import ConfigError

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"{what} needs the optional package {module.split('.')[0]!r}: "
                          f"pip install 'transferkit[{extra}]'") from exc
