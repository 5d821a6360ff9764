"""Batched augmentations: shapes, ranges, determinism, weak vs strong, flips, speed."""

import time

import pytest
import torch

from transferkit.core.errors import ConfigError
from transferkit.data.augment import (
    augment,
    cutout,
    feature_mask,
    feature_noise,
    make_generator,
    rotate90,
    strong_image,
    translate_crop,
    weak_image,
)


def _blobs(b=64, c=1, h=28, w=28, seed=0):
    """Smooth images in [0, 1]: one Gaussian spot per image."""
    g = torch.Generator().manual_seed(seed)
    cy, cx = torch.rand(b, 1, 1, generator=g) * h, torch.rand(b, 1, 1, generator=g) * w
    yy, xx = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    img = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
    return img[:, None].expand(b, c, h, w).contiguous()


@pytest.mark.parametrize("shape", [(8, 1, 28, 28), (8, 3, 32, 32), (8, 1, 16, 20), (8, 28, 28), (8, 6), (1, 1, 12, 12)])
@pytest.mark.parametrize("kind", ["weak", "strong"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_and_range_are_kept(shape, kind, dtype):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    y = augment(x, kind, 0)
    assert y.shape == x.shape and y.dtype == dtype
    assert torch.isfinite(y).all()
    if x.dim() >= 3:
        assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("kind", ["weak", "strong"])
@pytest.mark.parametrize("shape", [(16, 1, 28, 28), (16, 6)])
def test_same_generator_same_result_other_seed_differs(kind, shape):
    x = torch.rand(shape)
    a, b = augment(x, kind, 5), augment(x, kind, 5)
    assert torch.equal(a, b)
    assert torch.equal(augment(x, kind, torch.Generator().manual_seed(5)), a)
    assert not torch.equal(augment(x, kind, 6), a)


def test_none_draws_the_seed_from_the_global_generator():
    x = torch.rand(16, 1, 28, 28)
    torch.manual_seed(3)
    a = augment(x, "strong")
    torch.manual_seed(3)
    assert torch.equal(a, augment(x, "strong"))


def test_strong_changes_images_more_than_weak():
    x = _blobs(256)
    weak, strong = augment(x, "weak", 0), augment(x, "strong", 0)
    assert not torch.allclose(weak, strong)
    assert (strong - x).abs().mean() > 1.3 * (weak - x).abs().mean()
    # every image is changed by the strong view (the shift alone can be zero)
    assert ((strong - x).abs().flatten(1).amax(1) > 0).float().mean() > 0.95


def test_no_flip_by_default_and_flip_when_asked():
    x = torch.rand(64, 1, 10, 10)
    g = make_generator(0)
    assert torch.equal(weak_image(x, g, max_shift=0.0), x)
    y = weak_image(x, make_generator(0), max_shift=0.0, flip=True)
    flipped = (y == x.flip(-1)).flatten(1).all(1)
    same = (y == x).flatten(1).all(1)
    assert (flipped | same).all() and 10 < int(flipped.sum()) < 54


def test_translation_moves_content_by_at_most_the_shift():
    x = torch.zeros(32, 1, 28, 28)
    x[:, :, 14, 14] = 1.0
    y = translate_crop(x, make_generator(1), max_shift=0.125, pad_mode="zeros")
    pos = y.flatten(1).argmax(1)
    dy, dx = pos // 28 - 14, pos % 28 - 14
    assert (y.flatten(1).amax(1) == 1).all()
    assert dy.abs().max() <= 4 and dx.abs().max() <= 4 and (dy != 0).any() and (dx != 0).any()


def test_strong_without_ops_or_cutout_is_a_pure_shift():
    x = _blobs(8)
    y = strong_image(x, make_generator(0), n_ops=0, cutout_size=0.0, max_shift=0.0)
    assert torch.allclose(y, x, atol=1e-5)
    with pytest.raises(ConfigError, match="n_ops"):
        strong_image(x, make_generator(0), n_ops=99)


def test_cutout_fills_a_square():
    x = torch.zeros(64, 1, 20, 20)
    y = cutout(x, make_generator(0), max_size=0.5, fill=0.5)
    area = (y == 0.5).flatten(1).sum(1)
    assert area.max() <= 10 * 10 + 21 and (area > 0).any()


def test_normalised_images_keep_their_range():
    x = (torch.rand(16, 1, 28, 28) - 0.5) * 4  # values in [-2, 2]
    y = augment(x, "strong", 0)
    assert y.min() >= x.min() - 1e-5 and y.max() <= x.max() + 1e-5


def test_feature_noise_scales_with_the_feature_spread():
    x = torch.randn(4096, 3) * torch.tensor([1.0, 10.0, 0.0])
    noise = feature_noise(x, make_generator(0), sigma=0.1) - x
    std = noise.std(0)
    assert abs(std[0] - 0.1) < 0.01 and abs(std[1] - 1.0) < 0.1 and std[2] == 0


def test_feature_mask_replaces_entries_by_the_batch_mean():
    x = torch.randn(512, 8)
    y = feature_mask(x, make_generator(0), p=0.25)
    changed = y != x
    assert abs(changed.float().mean() - 0.25) < 0.03
    assert torch.allclose(y[changed], x.mean(0).expand_as(x)[changed])


def test_features_weak_is_milder_than_strong():
    x = torch.randn(256, 6) * 3
    assert (augment(x, "strong", 0) - x).abs().mean() > 2 * (augment(x, "weak", 0) - x).abs().mean()


def test_bad_input_is_named():
    with pytest.raises(ConfigError, match="kind"):
        augment(torch.rand(2, 3), "medium", 0)
    with pytest.raises(ConfigError, match="shape"):
        augment(torch.rand(2, 1, 1, 4, 4), "weak", 0)


def test_rotate90_matches_rot90():
    x = torch.rand(4, 2, 5, 5)
    k = torch.tensor([0, 1, 2, 3])
    y = rotate90(x, k)
    for i in range(4):
        assert torch.equal(y[i], torch.rot90(x[i], int(k[i]), dims=(-2, -1)))


def test_strong_augmentation_of_256_digits_is_fast():
    """256 images of 28x28 strong-augmented in under 50 ms on one CPU thread (best of 7, so a busy
    machine does not fail it; with two intra-op threads on an oversubscribed machine torch's
    parallel regions wait for descheduled threads and timings become meaningless)."""
    x = _blobs(256)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        augment(x, "strong", 0)
        times = []
        for i in range(7):
            t = time.perf_counter()
            augment(x, "strong", i)
            times.append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(threads)
    assert min(times) < 0.05, f"strong augmentation took {min(times) * 1000:.1f} ms"
