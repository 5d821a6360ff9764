"""Sentence splitting and sentence-mean text embeddings (with and without the feature cache), and
the zero-shot classifier's ``segment="sentence"``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from transferkit.core.errors import ConfigError, DataError
from transferkit.models.encoders.base import Encoder
from transferkit.models.sentences import sentence_mean_embeddings, split_sentences
from transferkit.zeroshot import DescriptionClassifier

pytestmark = pytest.mark.usefixtures("network_blocked")


@pytest.mark.parametrize(("text", "expected"), [
    ("Great product. Broke after a week!  Would I buy again? No",
     ["Great product.", "Broke after a week!", "Would I buy again?", "No"]),
    ('He said "it works." Then it stopped.', ['He said "it works."', "Then it stopped."]),
    ("cons\ntips over easily\n\npros\n..........\nholds a lot....", ["cons", "tips over easily", "pros", "holds a lot...."]),
    ("Version 2.0 is out (finally!) and e.g.this stays one", ["Version 2.0 is out (finally!)", "and e.g.this stays one"]),
    ("Wow!!! Really?!", ["Wow!!!", "Really?!"]),
    ("...", ["..."]),
    ("", [""]),
])
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_split_sentences_refuses_non_text():
    with pytest.raises(DataError, match="expected a text"):
        split_sentences(3)


class WordEncoder:
    """A stand-in encoder: each sentence's embedding is the sum of fixed vectors of its words
    (unknown words add nothing); counts its calls."""

    def __init__(self) -> None:
        e = np.eye(5)
        self.vectors = {"good": e[0], "bad": e[1], "book": e[2], "plot": e[3], "long": e[4], "x": e[2] + e[4]}
        self.calls: list[list[str]] = []

    def encode(self, texts, batch_size=64):
        self.calls.append(list(texts))
        out = []
        for t in texts:
            words = [w.strip(".!?").lower() for w in t.split()]
            out.append(sum((self.vectors[w] for w in words if w in self.vectors), np.full(5, 1e-3)))
        return np.stack(out).astype(np.float32)


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_sentence_mean_is_the_normalised_mean_of_unit_sentence_embeddings():
    enc = WordEncoder()
    texts = ["Good book. Long plot!", "bad", "Good good good good good good. Bad."]
    got = sentence_mean_embeddings(enc, texts)
    assert len(enc.calls) == 1 and len(enc.calls[0]) == 5  # all sentences in one batched call
    np.testing.assert_array_equal(got.counts, [2, 1, 2])
    g = {s: _unit(enc.encode([s])[0]) for s in ("Good book.", "Long plot!", "bad", "Good good good good good good.",
                                                 "Bad.")}
    expected = [_unit(g["Good book."] + g["Long plot!"]), g["bad"], _unit(g["Good good good good good good."] + g["Bad."])]
    np.testing.assert_allclose(got.embeddings, expected, rtol=1e-6)
    # each sentence weighs the same however long it is: a one-pass embedding of the third text
    # leans to its six "good"s, the sentence mean does not
    one_pass = _unit(enc.encode([texts[2]])[0])
    assert one_pass @ _unit(enc.vectors["good"]) > got.embeddings[2] @ _unit(enc.vectors["good"])
    assert got.summary == "computed"


def test_cosine_of_the_sentence_mean_ranks_classes_as_the_mean_sentence_cosine():
    enc = WordEncoder()
    rng = np.random.default_rng(1)
    classes = _unit(rng.normal(size=(3, 5)))
    texts = ["good book. bad plot. long", "x. bad! good", "plot? long long. x. good bad"]
    emb = sentence_mean_embeddings(enc, texts).embeddings
    for text, e in zip(texts, emb):
        sent = _unit(enc.encode(split_sentences(text)))
        assert np.argmax(e @ classes.T) == np.argmax((sent @ classes.T).mean(axis=0))


def test_sentence_mean_bad_input():
    enc = WordEncoder()
    with pytest.raises(DataError, match="list of texts"):
        sentence_mean_embeddings(enc, "one text")
    with pytest.raises(DataError, match="no texts"):
        sentence_mean_embeddings(enc, [])

    class Zero(WordEncoder):
        def encode(self, texts, batch_size=64):
            return np.zeros((len(texts), 5))

    with pytest.raises(DataError, match="zero or not finite"):
        sentence_mean_embeddings(Zero(), ["a. b"])

    class Short(WordEncoder):
        def encode(self, texts, batch_size=64):
            return np.ones((1, 5))

    with pytest.raises(DataError, match="shape"):
        sentence_mean_embeddings(Short(), ["a. b"])


class LetterEncoder(Encoder):
    """A registered-style text encoder: counts of a, b, c, d plus one (no weights to train)."""

    name = "letters_test"

    def __init__(self) -> None:
        super().__init__()
        self.num_features = 5
        self.batches = 0
        self.proj = nn.Identity()
        self._params = {}

    def preprocess(self, data: Any) -> np.ndarray:
        return np.array([[t.count(ch) for ch in "abcd"] + [1] for t in data], dtype=np.float32)

    def preprocess_settings(self) -> dict[str, Any]:
        return {"letters": "abcd"}

    def layer_groups(self) -> list[nn.Module]:
        return [self.proj]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches += 1
        return self.proj(x)


def test_sentence_embeddings_through_the_feature_cache(tmp_path):
    texts = ["aab. cd!", "dd", "abc\nbcd. a"]
    first_enc = LetterEncoder()
    first = sentence_mean_embeddings(first_enc, texts, use_cache=True, cache_dir=tmp_path, batch_size=2)
    assert first_enc.batches == 3 and "extracted" in first.summary  # 6 sentences in batches of 2
    again_enc = LetterEncoder()
    again = sentence_mean_embeddings(again_enc, texts, use_cache=True, cache_dir=tmp_path)
    assert again_enc.batches == 0 and "cache hit" in again.summary
    np.testing.assert_array_equal(again.embeddings, first.embeddings)
    plain = sentence_mean_embeddings(LetterEncoder(), texts)
    np.testing.assert_allclose(plain.embeddings, first.embeddings, rtol=1e-6)


def test_description_classifier_segment_sentence():
    enc = WordEncoder()
    desc = {"negative": "bad", "positive": "good"}
    # one long positive sentence outweighs a short negative verdict in one pass, not by sentences
    text = "good good good good book plot. bad. bad."
    whole = DescriptionClassifier(desc, encoder=enc).fit()
    by_sentence = DescriptionClassifier(desc, encoder=enc, segment="sentence").fit()
    assert list(whole.predict([text])) == ["positive"]
    assert list(by_sentence.predict([text])) == ["negative"]
    expected = sentence_mean_embeddings(enc, [text]).embeddings @ by_sentence.class_embeddings_.T
    np.testing.assert_allclose(by_sentence.decision_function([text]), expected, rtol=1e-6)
    # centring and self-training read the sentence means of the unlabelled texts
    centred = DescriptionClassifier(desc, encoder=enc, segment="sentence", center=True).fit(["good. book", "bad plot"])
    np.testing.assert_allclose(centred.text_mean_,
                               sentence_mean_embeddings(enc, ["good. book", "bad plot"]).embeddings.mean(axis=0))
    with pytest.raises(ConfigError, match="segment"):
        DescriptionClassifier(desc, encoder=enc, segment="word").fit()
