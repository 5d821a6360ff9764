"""Small backbones: ``tiny_mlp`` (tests), ``mlp`` (feature vectors), ``lenet`` (small images)."""

from __future__ import annotations

import math

from torch import nn

from transferkit.core.errors import ConfigError
from transferkit.core.registries import MODELS
from transferkit.models.base import Classifier


def _flat(input_shape: tuple[int, ...]) -> int:
    return int(math.prod(input_shape))


@MODELS.register("tiny_mlp", description="One hidden layer of 16 units (for tests)")
def tiny_mlp(input_shape: tuple[int, ...], num_classes: int, *, hidden: int = 16) -> Classifier:
    """Flatten, Linear(d, hidden), ReLU; linear head. For tests and toy data."""
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(_flat(input_shape), hidden), nn.ReLU())
    return Classifier(backbone, hidden, num_classes)


@MODELS.register("mlp", description="Multi-layer perceptron for feature vectors")
def mlp(input_shape: tuple[int, ...], num_classes: int, *, hidden: tuple[int, ...] = (256,),
        dropout: float = 0.0, activation: str = "relu", bottleneck: int = 0) -> Classifier:
    """Flatten, then ``Linear -> activation (-> dropout)`` per entry of ``hidden``; linear head.
    ``hidden=(50,)`` with ``activation="sigmoid"`` is the DANN paper's Amazon network."""
    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
    if activation not in acts:
        raise ConfigError(f"unknown activation {activation!r}; choose from {', '.join(acts)}")
    if not hidden:
        raise ConfigError("mlp needs at least one hidden layer (use hidden: [256])")
    layers: list[nn.Module] = [nn.Flatten()]
    width = _flat(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, h), acts[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    return Classifier(nn.Sequential(*layers), width, num_classes, bottleneck=bottleneck)


@MODELS.register("lenet", description="LeNet-style CNN for small grey images (16x16 to 32x32)")
def lenet(input_shape: tuple[int, ...], num_classes: int, *, width: int = 1,
          features: int = 500, dropout: float = 0.5, bottleneck: int = 0) -> Classifier:
    """Two conv(5x5)+maxpool blocks (20 and 50 channels x ``width``), then Linear(-> ``features``),
    ReLU, dropout — the LeNet used in the digits experiments of DANN/CDAN/TLlib.
    Input (B, C, H, W) with H, W >= 12.

    The convolution weights are stored channels-last (NHWC), so the convolutions and max-pooling
    run in that layout whatever the input's: on CPU, a forward and backward pass of this network
    is about 1.5x faster than in NCHW (where max-pooling the first convolution's output and that
    convolution's weight gradient are slow kernels). The function is the same (only the order of
    floating-point sums inside a convolution may differ); parameter names and shapes, and hence
    checkpoints, are unchanged."""
    if len(input_shape) != 3:
        raise ConfigError(f"lenet needs image samples (channels, height, width); got shape {input_shape}. "
                          "Use 'mlp' for feature vectors.")
    c, h, w = input_shape
    if min(h, w) < 12:
        raise ConfigError(f"lenet needs images of at least 12x12 pixels; got {h}x{w}")
    c1, c2 = 20 * width, 50 * width
    conv = nn.Sequential(
        nn.Conv2d(c, c1, 5, padding=2 if min(h, w) < 20 else 0), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(c1, c2, 5), nn.Dropout2d(0.1 if dropout > 0 else 0.0), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(),
    )
    import torch

    conv = conv.to(memory_format=torch.channels_last)
    with torch.no_grad():
        n = conv(torch.zeros(1, c, h, w)).shape[1]
    backbone = nn.Sequential(conv, nn.Linear(n, features), nn.ReLU(), nn.Dropout(dropout))
    return Classifier(backbone, features, num_classes, bottleneck=bottleneck)
