"""Backbones and classifiers; ``create_model(name, input_shape, num_classes, **params)``.

Pretrained encoders (``minilm``, ``efficientnet_lite0``) live in :mod:`transferkit.models.encoders`,
the feature cache in :mod:`transferkit.models.cache`.
"""

from __future__ import annotations

from typing import Any

from transferkit.models import encoders, zoo  # noqa: F401  (registration)
from transferkit.models.base import Classifier
from transferkit.models.encoders import create_encoder, load_weights


def create_model(name: str, input_shape: tuple[int, ...], num_classes: int,
                 params: dict[str, Any] | None = None, *, path: str = "model") -> Classifier:
    """Build a registered model for samples of ``input_shape`` and ``num_classes`` classes."""
    from transferkit.core.registries import MODELS

    return MODELS.create(name, params, path=path, input_shape=tuple(input_shape), num_classes=num_classes)


__all__ = ["Classifier", "create_encoder", "create_model", "load_weights"]
