"""A text's embedding as the mean of its sentences' embeddings.

A sentence encoder such as all-MiniLM-L6-v2 was trained on sentence pairs (sequences of at most
128 tokens); a review of several hundred word pieces is outside that range, and mean pooling over
all its tokens mixes the verdict with the description of the product. Here each text is split into
sentences, every sentence is embedded on its own (in one batched pass over all sentences, through
the feature cache), and the text's embedding is the normalised mean of its sentences' unit
embeddings:

    f(x) = normalise( mean_s normalise(g(s)) ),   s = the sentences of x

so each sentence weighs the same whatever its length. Cosine similarity with a class embedding
``e`` is then, up to the positive factor ``1 / |mean_s ...|``, the mean over sentences of
``cos(g(s), e)``: the same class wins as when sentence scores are averaged.

:func:`split_sentences` cuts after ``.``, ``!`` or ``?`` (runs of them, with one closing quote or
bracket) followed by white space, and at line breaks; pieces without a letter or digit (``"..."``)
are dropped. A text with no such piece keeps itself as its one sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transferkit.core.errors import ConfigError, DataError

__all__ = ["SEGMENTS", "SentenceEmbeddings", "check_segment", "flatten_sentences", "pool_sentences",
           "sentence_mean_embeddings", "split_sentences"]

#: how a text is embedded: in one pass (``"text"``) or as the mean of its sentences (``"sentence"``)
SEGMENTS = ("text", "sentence")

_BOUNDARY = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+|\s*\n\s*")
_WORD = re.compile(r"\w")


def check_segment(segment: Any) -> str:
    """``segment`` if it is one of :data:`SEGMENTS`, else a :class:`ConfigError` naming them."""
    if segment not in SEGMENTS:
        raise ConfigError(f"got {segment!r}; expected one of {', '.join(map(repr, SEGMENTS))}", "segment")
    return str(segment)


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (see the module docstring); never empty."""
    if not isinstance(text, str):
        raise DataError(f"split_sentences: expected a text (str), got {type(text).__name__}")
    pieces = [p.strip() for p in _BOUNDARY.split(text)]
    kept = [p for p in pieces if _WORD.search(p)]
    return kept or [text]


def flatten_sentences(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """``(sentences, counts)``: the sentences of every text in order, and how many each text has
    (what :func:`pool_sentences` takes back)."""
    split = [split_sentences(t) for t in texts]
    counts = np.fromiter((len(s) for s in split), dtype=np.int64, count=len(split))
    return [s for sentences in split for s in sentences], counts


@dataclass
class SentenceEmbeddings:
    """Per-text embeddings ``(n, d)`` (unit norm), the number of sentences of each text, and how
    the sentence embeddings were obtained (the feature cache's line, or ``"computed"``)."""

    embeddings: np.ndarray
    counts: np.ndarray
    summary: str


def sentence_mean_embeddings(encoder: Any, texts: Sequence[str], *, batch_size: int = 64,
                             cache_dir: Any = None, use_cache: bool = False,
                             progress: bool = False) -> SentenceEmbeddings:
    """Each text's normalised mean of its sentences' unit embeddings (module docstring).

    ``encoder``: a registered :class:`~transferkit.models.encoders.Encoder` (then the sentence
    embeddings go through the feature cache when ``use_cache``; ``cache_dir`` as in
    :func:`~transferkit.models.cache.cached_features`) or any object with
    ``encode(texts, batch_size=...) -> (n, d)``."""
    if isinstance(texts, (str, bytes)) or not hasattr(texts, "__len__"):
        raise DataError(f"expected a list of texts, got {type(texts).__name__}")
    if len(texts) == 0:
        raise DataError("no texts to embed")
    flat, counts = flatten_sentences(texts)
    if use_cache:
        from transferkit.models.cache import cached_features

        got = cached_features(encoder, flat, cache_dir=cache_dir, batch_size=batch_size, progress=progress,
                              desc=f"{len(flat)} sentences of {len(texts)} texts")
        emb, summary = np.asarray(got.features, dtype=np.float64), got.describe()
    else:
        emb, summary = np.asarray(encoder.encode(flat, batch_size=batch_size), dtype=np.float64), "computed"
    if emb.ndim != 2 or len(emb) != len(flat):
        raise DataError(f"the encoder returned embeddings of shape {emb.shape} for {len(flat)} sentences")
    return SentenceEmbeddings(pool_sentences(emb, counts), counts, summary)


def pool_sentences(emb: np.ndarray, counts: np.ndarray, *, normalize: bool = True) -> np.ndarray:
    """Per-text embeddings ``(len(counts), d)`` from sentence embeddings ``emb`` stacked text by
    text (``counts[i]`` rows for text ``i``): the normalised mean of the unit sentence embeddings
    (``normalize=False``: the plain mean of the sentence embeddings)."""
    emb = np.asarray(emb, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.int64)
    if emb.ndim != 2 or len(emb) != int(counts.sum()) or np.any(counts < 1):
        raise DataError(f"{len(emb)} sentence embeddings do not match the sentence counts (sum {int(counts.sum())}, "
                        "at least 1 per text)")
    if not np.all(np.isfinite(emb)):
        raise DataError("a sentence embedding is not finite")
    if normalize:
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise DataError("a sentence embedding is zero or not finite; its direction is undefined")
        emb = emb / norms
    sums = np.zeros((len(counts), emb.shape[1]))
    np.add.at(sums, np.repeat(np.arange(len(counts)), counts), emb)
    means = sums / counts[:, None]
    if not normalize:
        return means
    lengths = np.linalg.norm(means, axis=1, keepdims=True)
    if np.any(lengths == 0):
        raise DataError("a text's sentence embeddings cancel out (their mean is zero); its direction is undefined")
    return means / lengths
