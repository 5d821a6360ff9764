"""Zero-shot classification from class descriptions in words.

Each class is described by one or more sentences (``"This review is positive."``), embedded by a
sentence encoder (all-MiniLM-L6-v2 by default); a text is assigned the class whose description
embedding has the highest cosine similarity with the text's embedding:

    c(x) = argmax_k  cos(f(x), e_k),    e_k = normalise( mean_j normalise(f(d_kj)) )

where ``d_k1, d_k2, ...`` are the descriptions of class ``k``. Several descriptions per class are
averaged after normalisation, as in the prompt ensembling of CLIP (Radford et al., "Learning
Transferable Visual Models From Natural Language Supervision", ICML 2021, Sec. 3.1.4), where
averaging the embeddings of 80 templates improved ImageNet zero-shot accuracy.

``center=True`` subtracts from every text embedding the mean embedding of *unlabelled* texts given
to :meth:`DescriptionClassifier.fit` (for example the target domain's texts) before the
cosine: a direction shared by all texts that would otherwise favour one class is removed. It uses
no labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from transferkit.core.errors import ConfigError, DataError

__all__ = ["DescriptionClassifier", "class_descriptions", "cosine_scores", "embed_descriptions"]


def _normalize_rows(a: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise DataError("an embedding is the zero vector; its cosine similarity is undefined")
    return a / norms


def class_descriptions(classes: Sequence[Any], template: str | Sequence[str] = "{}") -> dict[Any, list[str]]:
    """Descriptions of ``classes`` from one template or several (``"This review is {}."``): the
    class name (``str(c)``) replaces ``{}``."""
    templates = [template] if isinstance(template, str) else list(template)
    if not templates or not all(isinstance(t, str) and "{}" in t for t in templates):
        raise ConfigError(f"got {template!r}; expected a template holding '{{}}' (e.g. 'This review is {{}}.') "
                          "or a list of such templates", "template")
    if len(classes) == 0:
        raise ConfigError("no classes given", "classes")
    return {c: [t.format(c) for t in templates] for c in classes}


def _check_descriptions(descriptions: Mapping[Any, str | Sequence[str]]) -> dict[Any, list[str]]:
    if not isinstance(descriptions, Mapping) or len(descriptions) < 2:
        raise ConfigError(f"expected a mapping from each class (at least 2) to its description(s), got "
                          f"{descriptions!r}", "descriptions")
    out: dict[Any, list[str]] = {}
    for c, d in descriptions.items():
        texts = [d] if isinstance(d, str) else list(d)
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ConfigError(f"class {c!r}: expected a non-empty description or list of descriptions, got {d!r}",
                              "descriptions")
        out[c] = texts
    return out


def _encode(encoder: Any, texts: list[str], batch_size: int) -> np.ndarray:
    emb = np.asarray(encoder.encode(texts, batch_size=batch_size), dtype=np.float64)
    if emb.ndim != 2 or len(emb) != len(texts):
        raise DataError(f"the encoder returned embeddings of shape {emb.shape} for {len(texts)} texts")
    return emb


def embed_descriptions(encoder: Any, descriptions: Mapping[Any, str | Sequence[str]], *,
                       batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, embeddings)``: the class keys in the mapping's order and one unit-norm
    embedding ``(K, d)`` per class, the normalised mean of its normalised description embeddings.
    ``encoder``: anything with ``encode(list_of_texts, batch_size=...) -> (n, d)`` (an
    :class:`~transferkit.models.encoders.Encoder`)."""
    desc = _check_descriptions(descriptions)
    flat = [t for texts in desc.values() for t in texts]
    emb = _normalize_rows(_encode(encoder, flat, batch_size))
    out, start = [], 0
    for texts in desc.values():
        out.append(emb[start:start + len(texts)].mean(axis=0))
        start += len(texts)
    return np.asarray(list(desc)), _normalize_rows(np.stack(out))


def cosine_scores(embeddings: Any, class_embeddings: Any) -> np.ndarray:
    """Cosine similarities ``(n, K)`` between text embeddings ``(n, d)`` and class embeddings
    ``(K, d)``."""
    x = np.asarray(embeddings, dtype=np.float64)
    c = np.asarray(class_embeddings, dtype=np.float64)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
        raise DataError(f"embeddings {x.shape} and class embeddings {c.shape} must be 2-D with the same width")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(c))):
        raise DataError("embeddings contain NaN or infinite values")
    return _normalize_rows(x) @ _normalize_rows(c).T


class DescriptionClassifier(ClassifierMixin, BaseEstimator):
    """Zero-shot text classifier from class descriptions (module docstring).

    Either ``descriptions`` (``{class: "sentence" or [sentences]}``) or ``classes`` with a
    ``template`` (one string or a list, ``"{}"`` replaced by the class name). ``encoder``: a
    registered encoder name (built with ``encoder_params``) or an encoder object with
    ``encode(texts, batch_size=...)``. ``center``: subtract the mean embedding of the unlabelled
    texts given to :meth:`fit`. Fitted: ``classes_``, ``class_embeddings_`` ``(K, d)``,
    ``text_mean_`` (``center=True``), ``encoder_``.

    ``fit`` needs no labels: ``DescriptionClassifier(descriptions=...).fit()`` embeds the
    descriptions; ``fit(unlabelled_texts)`` also stores their mean embedding for ``center``.
    ``predict(texts)`` embeds texts; ``predict_embeddings(E)`` takes precomputed embeddings of
    the same encoder (e.g. from the feature cache).
    """

    def __init__(self, descriptions: Mapping[Any, str | Sequence[str]] | None = None, *,
                 classes: Sequence[Any] | None = None, template: str | Sequence[str] = "{}",
                 encoder: Any = "minilm", encoder_params: dict[str, Any] | None = None, center: bool = False,
                 batch_size: int = 64) -> None:
        self.descriptions = descriptions
        self.classes = classes
        self.template = template
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.center = center
        self.batch_size = batch_size

    def _descriptions(self) -> dict[Any, list[str]]:
        if (self.descriptions is None) == (self.classes is None):
            raise ConfigError("give either descriptions ({class: description(s)}) or classes with a template",
                              "descriptions")
        if self.descriptions is not None:
            return _check_descriptions(self.descriptions)
        return class_descriptions(list(self.classes), self.template)  # type: ignore[arg-type]

    def _build_encoder(self) -> Any:
        if isinstance(self.encoder, str):
            from transferkit.models.encoders import create_encoder

            return create_encoder(self.encoder, self.encoder_params)
        if not callable(getattr(self.encoder, "encode", None)):
            raise ConfigError(f"expected an encoder name or an object with encode(texts), got "
                              f"{type(self.encoder).__name__}", "encoder")
        return self.encoder

    def fit(self, X: Any = None, y: Any = None, *, embeddings: Any = None) -> DescriptionClassifier:
        """Embed the class descriptions. ``X``: unlabelled texts (or ``embeddings`` of them) whose
        mean embedding ``center=True`` subtracts; ``y`` is ignored (zero-shot: no labels)."""
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"got {self.batch_size!r}; expected a positive integer", "batch_size")
        desc = self._descriptions()
        self.encoder_ = self._build_encoder()
        self.classes_, self.class_embeddings_ = embed_descriptions(self.encoder_, desc, batch_size=self.batch_size)
        self.descriptions_ = desc
        if self.center:
            if X is None and embeddings is None:
                raise ConfigError("center=True subtracts the mean embedding of unlabelled texts: pass them to "
                                  "fit(texts) or fit(embeddings=...)", "center")
            e = self._embed(X) if embeddings is None else self._check_embeddings(embeddings)
            self.text_mean_ = e.mean(axis=0)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "class_embeddings_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this DescriptionClassifier is not fitted yet; call fit() first")

    def _embed(self, X: Any) -> np.ndarray:
        if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
            raise DataError(f"X: expected a list of texts, got {type(X).__name__}")
        if len(X) == 0:
            raise DataError("X: no texts")
        return _encode(self.encoder_, list(X), self.batch_size)

    def _check_embeddings(self, E: Any) -> np.ndarray:
        e = np.asarray(E, dtype=np.float64)
        if e.ndim != 2 or e.shape[0] == 0:
            raise DataError(f"embeddings: expected a non-empty 2-D array (n, d), got shape {e.shape}")
        if hasattr(self, "class_embeddings_") and e.shape[1] != self.class_embeddings_.shape[1]:
            raise DataError(f"embeddings have {e.shape[1]} columns, the class embeddings "
                            f"{self.class_embeddings_.shape[1]}; embed texts with the same encoder")
        return e

    def decision_function_embeddings(self, E: Any) -> np.ndarray:
        """Cosine scores ``(n, K)`` of precomputed text embeddings (columns in ``classes_`` order)."""
        self._check_fitted()
        e = self._check_embeddings(E)
        if self.center:
            e = e - self.text_mean_
        return cosine_scores(e, self.class_embeddings_)

    def predict_embeddings(self, E: Any) -> np.ndarray:
        """Predicted classes of precomputed text embeddings."""
        self._check_fitted()
        return self.classes_[np.argmax(self.decision_function_embeddings(E), axis=1)]

    def decision_function(self, X: Sequence[str]) -> np.ndarray:
        """Cosine scores ``(n, K)`` of texts ``X``."""
        self._check_fitted()
        return self.decision_function_embeddings(self._embed(X))

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """Predicted classes of texts ``X``."""
        self._check_fitted()
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]
