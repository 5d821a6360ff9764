"""The feature cache: computed once, read back identical; the key follows data, encoder and
preprocessing; writes are atomic."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from transferkit.models.cache import FeatureCache, data_sha256, default_cache_dir
from transferkit.models.encoders.base import Encoder


class TinyImageEncoder(Encoder):
    """Flattened images times a fixed random matrix; ``scale`` is a preprocessing setting."""

    name = "tiny_test"

    def __init__(self, *, width: int = 3, seed: int = 0, scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.proj = nn.Linear(16, width)
        self.num_features = width
        self.scale = scale
        self.calls = 0
        self._params = {"width": width, "seed": seed, "scale": scale}

    def preprocess(self, data: Any, *, scale: float | None = None) -> np.ndarray:
        s = self.preprocess_settings(scale=scale)["scale"]
        return np.asarray(data, dtype=np.float32).reshape(len(data), -1) * s

    def preprocess_settings(self, *, scale: float | None = None) -> dict[str, Any]:
        return {"scale": self.scale if scale is None else scale}

    def layer_groups(self) -> list[nn.Module]:
        return [self.proj]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.proj(x)


@pytest.fixture
def images():
    return np.random.default_rng(0).random((10, 4, 4)).astype(np.float32)


def test_second_call_is_a_hit_with_identical_features(tmp_path, images):
    enc = TinyImageEncoder()
    cache = FeatureCache(tmp_path)
    first = cache.features(enc, images, batch_size=3, progress=False)
    calls = enc.calls
    assert not first.hit and first.features.shape == (10, 3) and calls == 4
    assert first.path is not None and first.path.is_file() and first.extract_seconds > 0
    second = FeatureCache(tmp_path).features(TinyImageEncoder(), images, batch_size=5, progress=False)
    assert second.hit and second.key == first.key
    np.testing.assert_array_equal(second.features, first.features)
    assert second.load_seconds is not None and second.load_seconds > 0
    assert second.extract_seconds == pytest.approx(first.extract_seconds)
    assert second.speedup == pytest.approx(first.extract_seconds / second.load_seconds)
    assert "cache hit" in second.describe() and "extracted" in first.describe()
    # the features are those of a plain forward pass
    with torch.no_grad():
        ref = enc.proj(torch.as_tensor(images.reshape(10, -1))).numpy()
    np.testing.assert_allclose(first.features, ref, rtol=1e-6, atol=1e-6)


def test_key_changes_with_data_encoder_and_preprocessing(tmp_path, images):
    cache = FeatureCache(tmp_path)
    base, _ = cache.key(TinyImageEncoder(), images)
    other = images.copy()
    other[3, 1, 1] += 1e-3
    assert cache.key(TinyImageEncoder(), other)[0] != base                     # data
    assert cache.key(TinyImageEncoder(), images[:9])[0] != base                # data (fewer rows)
    assert cache.key(TinyImageEncoder(seed=1), images)[0] != base              # weights
    assert cache.key(TinyImageEncoder(width=4), images)[0] != base             # encoder params
    assert cache.key(TinyImageEncoder(scale=2.0), images)[0] != base           # preprocessing default
    assert cache.key(TinyImageEncoder(), images, scale=0.5)[0] != base         # preprocessing setting
    enc = TinyImageEncoder()
    with torch.no_grad():
        enc.proj.bias[0] += 1.0                                                 # fine-tuned weights
    assert cache.key(enc, images)[0] != base
    assert cache.key(TinyImageEncoder(), images.copy())[0] == base             # same content
    # and a changed setting really gives other features, stored under another entry
    a = cache.features(TinyImageEncoder(), images, progress=False)
    b = cache.features(TinyImageEncoder(), images, progress=False, scale=0.5)
    assert not b.hit and b.path != a.path and not np.allclose(a.features, b.features)


def test_texts_hash_by_content():
    assert data_sha256(["ab", "c"]) == data_sha256(["ab", "c"])
    assert data_sha256(["ab", "c"]) != data_sha256(["a", "bc"])  # lengths are part of the hash
    assert data_sha256(["ab", "c"]) != data_sha256(["ab", "c", ""])


def test_killed_write_leaves_no_entry(tmp_path, images, monkeypatch):
    enc = TinyImageEncoder()
    cache = FeatureCache(tmp_path)

    def crash(fh, **arrays):
        fh.write(b"PK\x03\x04partial")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.features(enc, images, progress=False)
    assert cache.entries() == []
    assert list(tmp_path.rglob("*.tmp")) == []
    monkeypatch.undo()
    assert not cache.features(enc, images, progress=False).hit


def test_damaged_entry_is_recomputed(tmp_path, images):
    enc = TinyImageEncoder()
    cache = FeatureCache(tmp_path)
    first = cache.features(enc, images, progress=False)
    first.path.write_bytes(first.path.read_bytes()[:40])
    with pytest.warns(RuntimeWarning, match="unreadable"):
        again = cache.features(enc, images, progress=False)
    assert not again.hit
    np.testing.assert_array_equal(again.features, first.features)
    assert cache.features(enc, images, progress=False).hit


def test_disabled_cache_never_writes(tmp_path, images):
    res = FeatureCache(tmp_path, enabled=False).features(TinyImageEncoder(), images, progress=False)
    assert not res.hit and res.path is None and not any(tmp_path.iterdir())


def test_default_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TRANSFERKIT_CACHE")
    assert default_cache_dir().parts[-3:] == (".cache", "transferkit", "features")


def test_encode_restores_training_mode(images):
    enc = TinyImageEncoder()
    enc.train()
    enc.encode(images, batch_size=4)
    assert enc.training
