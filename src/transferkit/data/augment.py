"""Batched data augmentation with plain torch ops (no torchvision), reproducible by generator.

Images are ``(B, C, H, W)`` (or ``(B, H, W)`` grey) tensors with values in [0, 1]; feature
vectors are ``(B, D)``. Every function takes an explicit ``torch.Generator`` (or an int seed, or
``None`` to draw a seed from torch's global generator), so the same generator state gives the same
output, and applies an independently drawn transformation to every sample of the batch.

- **weak** (FixMatch's weak view, Sohn et al. NeurIPS 2020): random translation by up to
  ``max_shift`` (12.5%) of the size, by padding (reflect or zero) and cropping; horizontal flip
  only if ``flip=True`` (off by default: flipping changes the meaning of digits and text).
- **strong** (RandAugment-like, Cubuk et al. 2020, with FixMatch's random magnitudes): the weak
  shift, then ``n_ops`` distinct operations per image out of :data:`OPS` (rotate, shear, translate,
  brightness, contrast, colour, sharpness, solarize, posterize, equalize, autocontrast, Gaussian
  noise, identity), each at a strength drawn uniformly in ``[0, magnitude]`` (``magnitude`` is a
  fraction of every op's largest setting), then Cutout. The weak shift and the geometric ops are
  composed into one bilinear warp per image (an affine sampling grid + ``F.grid_sample``;
  uncovered pixels take ``fill``); each colour op runs once on the images that drew it, in a fixed
  order (a deviation from RandAugment's random order that keeps the pass vectorised).
- **features**: Gaussian noise scaled by each feature's batch standard deviation (``sigma``), and
  feature masking (each entry replaced by its feature's batch mean with probability ``p``).

:func:`augment` dispatches on ``x.dim()``: 4 images, 3 grey images, 2 feature vectors.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from transferkit.core.errors import ConfigError

#: the strong-augmentation pool (``identity`` keeps an image untouched for that slot)
OPS = ("identity", "rotate", "shear_x", "shear_y", "translate_x", "translate_y", "brightness",
       "contrast", "color", "sharpness", "solarize", "posterize", "equalize", "autocontrast", "noise")
_OP = {name: i for i, name in enumerate(OPS)}
#: largest settings (magnitude 1): degrees, shear factor, fraction of size, blend factor, noise std
MAX_ROTATE, MAX_SHEAR, MAX_TRANSLATE, MAX_BLEND, MAX_NOISE = 30.0, 0.3, 0.3, 0.9, 0.1


def make_generator(seed: torch.Generator | int | None = None, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device``: ``seed`` itself if it is one, seeded by ``seed`` if an int, or
    seeded by a draw from torch's global generator if ``None`` (so ``torch.manual_seed`` fixes it)."""
    if isinstance(seed, torch.Generator):
        return seed
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    return torch.Generator(device=device).manual_seed(int(seed))


def _u(shape: tuple[int, ...], g: torch.Generator, x: torch.Tensor) -> torch.Tensor:
    return torch.rand(shape, generator=g, device=x.device)


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``a + factor * (b - a)`` (PIL ImageEnhance: factor 1 gives ``b``, 0 gives ``a``)."""
    return a + factor * (b - a)


# -- images ---------------------------------------------------------------------------------------
def translate_crop(x: torch.Tensor, generator: torch.Generator, *, max_shift: float = 0.125,
                   pad_mode: Literal["reflect", "zeros"] = "reflect") -> torch.Tensor:
    """Shift every image of ``x`` (B, C, H, W) by a random whole number of pixels in
    ``[-p, p]`` (``p = round(max_shift * size)``) per axis: pad by ``p`` then crop back."""
    b, c, h, w = x.shape
    ph, pw = round(max_shift * h), round(max_shift * w)
    if ph == 0 and pw == 0:
        return x.clone()
    if pad_mode == "reflect" and (ph >= h or pw >= w):
        pad_mode = "zeros"
    padded = F.pad(x, (pw, pw, ph, ph), mode="reflect" if pad_mode == "reflect" else "constant")
    hp, wp = h + 2 * ph, w + 2 * pw
    dy = torch.randint(0, 2 * ph + 1, (b, 1, 1), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * pw + 1, (b, 1, 1), generator=generator, device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    idx = ((dy + rows) * wp + dx + cols).view(b, 1, h * w).expand(b, c, h * w)
    return padded.reshape(b, c, hp * wp).gather(2, idx).view(b, c, h, w)


def _flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.where(_u((x.shape[0], 1, 1, 1), generator, x) < 0.5, x.flip(-1), x)


def weak_image(x: torch.Tensor, generator: torch.Generator, *, max_shift: float = 0.125,
               pad_mode: Literal["reflect", "zeros"] = "reflect", flip: bool = False) -> torch.Tensor:
    """Weak view: a horizontal flip with probability 0.5 when ``flip`` is on, then a random
    translation (pad and crop). Shapes and dtype are kept."""
    if flip:
        x = _flip(x, generator)
    return translate_crop(x, generator, max_shift=max_shift, pad_mode=pad_mode)


def _warp(x: torch.Tensor, sel: torch.Tensor, mag: torch.Tensor, sign: torch.Tensor, shift: torch.Tensor,
          fill: float) -> torch.Tensor:
    """One bilinear warp per image composing rotate, shear x/y and translate x/y (inverse map,
    built in pixel space so non-square images are not distorted) plus the weak ``shift`` (B, 2)
    in pixels. Pixels mapped from outside the image take ``fill``."""
    b, _, h, w = x.shape
    s = mag * sign
    ang = torch.deg2rad(s[:, _OP["rotate"]] * MAX_ROTATE)
    cos, sin = torch.cos(ang), torch.sin(ang)
    shx, shy = s[:, _OP["shear_x"]] * MAX_SHEAR, s[:, _OP["shear_y"]] * MAX_SHEAR
    # A = R @ [[1, shx], [0, 1]] @ [[1, 0], [shy, 1]] in pixels, rescaled to normalised coordinates
    theta = torch.stack([
        torch.stack([cos * (1 + shx * shy) - sin * shy, (cos * shx - sin) * h / w,
                     2 * MAX_TRANSLATE * s[:, _OP["translate_x"]] + 2 * shift[:, 0] / w], 1),
        torch.stack([(sin * (1 + shx * shy) + cos * shy) * w / h, sin * shx + cos,
                     2 * MAX_TRANSLATE * s[:, _OP["translate_y"]] + 2 * shift[:, 1] / h], 1),
    ], 1).to(x.dtype)  # (B, 2, 3)
    ys = ((torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) * (2 / h) - 1).view(1, h, 1)
    xs = ((torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) * (2 / w) - 1).view(1, 1, w)
    grid = torch.empty(b, h, w, 2, device=x.device, dtype=x.dtype)
    for i in range(2):  # explicit broadcasting: much faster than a batched matmul with inner size 3
        t = theta[:, i].view(b, 3, 1, 1)
        grid[..., i] = t[:, 0] * xs + (t[:, 1] * ys + t[:, 2])
    if fill == 0:
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill


def _grey(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        wts = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * wts).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


def _equalize(x: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation per image and channel on 256 levels."""
    b, c, h, w = x.shape
    q = (x * 255).round().clamp(0, 255).long().reshape(b * c, h * w)
    hist = torch.zeros(b * c, 256, device=x.device, dtype=x.dtype).scatter_add_(1, q, torch.ones_like(q, dtype=x.dtype))
    cdf = hist.cumsum(1)
    cmin = torch.where(hist > 0, cdf, torch.full_like(cdf, float("inf"))).amin(1, keepdim=True)
    denom = h * w - cmin
    ident = torch.arange(256, device=x.device, dtype=x.dtype) / 255
    lut = torch.where(denom > 0, (cdf - cmin).clamp_min(0) / denom.clamp_min(1), ident)
    return lut.gather(1, q).view(b, c, h, w)


def _sharpen(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    # PIL's SMOOTH kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 as a 3x3 box sum plus 4 x centre
    box = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1) * 9
    return _blend((box + 4 * x) / 13, x, f)


def _autocontrast(x: torch.Tensor) -> torch.Tensor:
    lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
    return torch.where(hi > lo, (x - lo) / (hi - lo).clamp_min(1e-8), x)


#: colour ops on a subset of images: (images, strength m in [0, 1], sign +-1, generator) -> images
_COLOUR = {
    "brightness": lambda x, m, s, g: x * (1 + MAX_BLEND * m * s),
    "contrast": lambda x, m, s, g: _blend(_grey(x).mean((1, 2, 3), keepdim=True), x, 1 + MAX_BLEND * m * s),
    "color": lambda x, m, s, g: _blend(_grey(x), x, 1 + MAX_BLEND * m * s),
    "sharpness": lambda x, m, s, g: _sharpen(x, 1 + MAX_BLEND * m * s),
    "solarize": lambda x, m, s, g: torch.where(x >= 1 - m, 1 - x, x),
    "posterize": lambda x, m, s, g: torch.floor(x * 255 / 2 ** torch.round(4 * m)) * 2 ** torch.round(4 * m) / 255,
    "equalize": lambda x, m, s, g: _equalize(x),
    "autocontrast": lambda x, m, s, g: _autocontrast(x),
    "noise": lambda x, m, s, g: x + MAX_NOISE * m * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype),
}


def cutout(x: torch.Tensor, generator: torch.Generator, *, max_size: float = 0.5, fill: float = 0.5) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): a square of side ``U(0, max_size) * min(H, W)`` at a random
    centre (possibly overlapping the border) per image, set to ``fill``."""
    b, _, h, w = x.shape
    side = _u((b, 1, 1), generator, x) * max_size * min(h, w)
    cy, cx = _u((b, 1, 1), generator, x) * h, _u((b, 1, 1), generator, x) * w
    rows = ((torch.arange(h, device=x.device).view(1, h, 1) + 0.5 - cy).abs() < side / 2)
    cols = ((torch.arange(w, device=x.device).view(1, 1, w) + 0.5 - cx).abs() < side / 2)
    return x.masked_fill((rows & cols)[:, None], fill)


def strong_image(x: torch.Tensor, generator: torch.Generator, *, n_ops: int = 2, magnitude: float = 1.0,
                 random_magnitude: bool = True, cutout_size: float = 0.5, max_shift: float = 0.125,
                 flip: bool = False, fill: float = 0.0) -> torch.Tensor:
    """Strong view: optional flip, one warp composing the weak shift with the geometric ops
    chosen, the colour ops chosen (``n_ops`` distinct ops of :data:`OPS` per image, strengths
    ``U(0, magnitude)`` if ``random_magnitude`` else ``magnitude``), then Cutout of up to
    ``cutout_size`` of the side. ``fill`` is the value of pixels a warp uncovers (so the weak
    shift here pads with ``fill``, not by reflection). Values stay in [0, 1]."""
    if not 0 <= n_ops <= len(OPS):
        raise ConfigError(f"n_ops must be in 0..{len(OPS)}; got {n_ops}")
    b, _, h, w = x.shape
    if flip:
        x = _flip(x, generator)
    k = len(OPS)
    sel = torch.zeros(b, k, dtype=torch.bool, device=x.device)
    sel.scatter_(1, _u((b, k), generator, x).argsort(1)[:, :n_ops], True)
    mag = _u((b, k), generator, x) * magnitude if random_magnitude else torch.full((b, k), magnitude, device=x.device)
    mag = mag * sel
    sign = torch.where(_u((b, k), generator, x) < 0.5, -1.0, 1.0)
    limit = torch.tensor([round(max_shift * w), round(max_shift * h)], device=x.device)
    shift = torch.floor(_u((b, 2), generator, x) * (2 * limit + 1)) - limit
    out = _warp(x, sel, mag, sign, shift, fill)
    for name, op in _COLOUR.items():
        j = _OP[name]
        idx = sel[:, j].nonzero().flatten()
        if idx.numel():
            m = mag[idx, j].view(-1, 1, 1, 1).to(x.dtype)
            s = sign[idx, j].view(-1, 1, 1, 1).to(x.dtype)
            out[idx] = op(out[idx], m, s, generator).clamp(0, 1)
    if cutout_size > 0:
        out = cutout(out, generator, max_size=cutout_size)
    return out


# -- feature vectors ------------------------------------------------------------------------------
def _feature_std(x: torch.Tensor) -> torch.Tensor:
    if x.shape[0] > 1:
        return x.detach().std(0, unbiased=False, keepdim=True)
    return x.detach().abs().mean().expand(1, x.shape[1])


def feature_noise(x: torch.Tensor, generator: torch.Generator, *, sigma: float = 0.1) -> torch.Tensor:
    """``x + sigma * std_j * N(0, 1)`` with ``std_j`` the batch standard deviation of feature j
    (scale-free; a batch of one uses the mean absolute value)."""
    return x + sigma * _feature_std(x) * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def feature_mask(x: torch.Tensor, generator: torch.Generator, *, p: float = 0.2) -> torch.Tensor:
    """Feature masking: each entry replaced by its feature's batch mean with probability ``p``."""
    drop = _u(tuple(x.shape), generator, x) < p
    return torch.where(drop, x.detach().mean(0, keepdim=True).expand_as(x), x)


def weak_features(x: torch.Tensor, generator: torch.Generator, *, sigma: float = 0.1) -> torch.Tensor:
    return feature_noise(x, generator, sigma=sigma)


def strong_features(x: torch.Tensor, generator: torch.Generator, *, sigma: float = 0.3, p: float = 0.2) -> torch.Tensor:
    return feature_mask(feature_noise(x, generator, sigma=sigma), generator, p=p)


# -- dispatch -------------------------------------------------------------------------------------
def augment(x: torch.Tensor, kind: Literal["weak", "strong"], generator: torch.Generator | int | None = None,
            **options: object) -> torch.Tensor:
    """Weak or strong view of a batch, chosen by ``x.dim()``: 4 = (B, C, H, W) images, 3 = (B, H, W)
    grey images, 2 = (B, D) feature vectors. ``options`` go to the matching function
    (:func:`weak_image`, :func:`strong_image`, :func:`weak_features`, :func:`strong_features`).

    Images outside [0, 1] (e.g. already normalised) are mapped to [0, 1] by the batch's minimum and
    maximum for the strong ops and mapped back. The result has the shape and dtype of ``x``."""
    if kind not in ("weak", "strong"):
        raise ConfigError(f"augmentation kind must be 'weak' or 'strong'; got {kind!r}")
    g = make_generator(generator, x.device)
    if x.dim() == 2:
        fn = weak_features if kind == "weak" else strong_features
        return fn(x, g, **options).to(x.dtype)  # type: ignore[arg-type]
    if x.dim() not in (3, 4):
        raise ConfigError(f"augment expects (B, D) features or (B, [C,] H, W) images; got shape {tuple(x.shape)}")
    img = x.unsqueeze(1) if x.dim() == 3 else x
    dtype, img = img.dtype, img.float()
    lo, hi = 0.0, 1.0
    if kind == "strong" and img.numel() and (img.min() < 0 or img.max() > 1):
        lo, hi = float(img.min()), float(img.max())
        img = (img - lo) / max(hi - lo, 1e-12)
    out = (weak_image if kind == "weak" else strong_image)(img, g, **options)  # type: ignore[arg-type]
    out = out * (hi - lo) + lo if (lo, hi) != (0.0, 1.0) else out
    out = out.to(dtype)
    return out.squeeze(1) if x.dim() == 3 else out


def rotate90(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Rotate image ``i`` of ``x`` (B, C, H, W) or (B, H, W) by ``k[i] * 90`` degrees (square images;
    for non-square images only k in {0, 2} keeps the shape)."""
    out = x.clone()
    for r in range(1, 4):
        idx = (k == r).nonzero().flatten()
        if idx.numel():
            out[idx] = torch.rot90(x[idx], r, dims=(-2, -1))
    return out


__all__ = ["OPS", "augment", "cutout", "feature_mask", "feature_noise", "make_generator", "rotate90",
           "strong_features", "strong_image", "translate_crop", "weak_features", "weak_image"]
