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

``self_train_rounds > 0`` adds self-training on unlabelled texts, as in Gera et al., "Zero-Shot
Text Classification with Self-Training" (EMNLP 2022): the texts given to :meth:`fit` are scored
(first by the cosine above), the most confident ``self_train_fraction`` of them per class (ranked
by the margin between the best and the second-best class score, among the texts whose best class it
is; the same count per class) become pseudo-labelled examples, and a logistic-regression head on
the normalised embeddings is trained on them; the head then re-scores the texts for the next round.
Predictions come from the last head. Still no labels: the only supervision is the descriptions.
Gera et al. fine-tune an entailment model on the pseudo-labels; here the encoder stays frozen and
only the linear head learns, so embeddings can come from the feature cache.

``segment="sentence"`` embeds a text as the normalised mean of its sentences' unit embeddings
(:mod:`transferkit.models.sentences`) instead of in one pass: the cosine with a class is then,
up to a positive factor, the mean of its sentences' cosines. Precomputed embeddings
(:meth:`DescriptionClassifier.predict_embeddings`) are taken as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from transferkit.core.errors import ConfigError, DataError

__all__ = ["DescriptionClassifier", "class_descriptions", "confident_per_class", "cosine_scores", "embed_descriptions"]


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


def confident_per_class(scores: np.ndarray, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, labels)``: for each class, the at most ``per_class`` rows whose best-scoring class
    it is, with the largest margin between their best and second-best score (``scores`` ``(n, K)``,
    K >= 2). A class that is the best of fewer rows keeps all of them."""
    s = np.asarray(scores, dtype=np.float64)
    best = np.argmax(s, axis=1)
    top2 = np.sort(s, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    rows, labels = [], []
    for c in range(s.shape[1]):
        cand = np.flatnonzero(best == c)
        pick = cand[np.argsort(-margin[cand], kind="stable")[:per_class]]
        rows.append(pick)
        labels.append(np.full(len(pick), c))
    return np.concatenate(rows), np.concatenate(labels)


class DescriptionClassifier(ClassifierMixin, BaseEstimator):
    """Zero-shot text classifier from class descriptions (module docstring).

    Either ``descriptions`` (``{class: "sentence" or [sentences]}``) or ``classes`` with a
    ``template`` (one string or a list, ``"{}"`` replaced by the class name). ``encoder``: a
    registered encoder name (built with ``encoder_params``) or an encoder object with
    ``encode(texts, batch_size=...)``. ``center``: subtract the mean embedding of the unlabelled
    texts given to :meth:`fit`. ``self_train_rounds``/``self_train_fraction``/``self_train_C``:
    self-training of a linear head on pseudo-labelled unlabelled texts (module docstring; 0 rounds:
    off). ``segment``: ``"text"`` embeds each text in one pass, ``"sentence"`` as the mean of its
    sentences (module docstring). Fitted: ``classes_``, ``class_embeddings_`` ``(K, d)``, ``text_mean_`` (``center=True``),
    ``head_`` (self-training), ``pseudo_counts_`` (pseudo-labels per class and round), ``encoder_``.

    ``fit`` needs no labels: ``DescriptionClassifier(descriptions=...).fit()`` embeds the
    descriptions; ``fit(unlabelled_texts)`` also stores their mean embedding for ``center``.
    ``predict(texts)`` embeds texts; ``predict_embeddings(E)`` takes precomputed embeddings of
    the same encoder (e.g. from the feature cache).
    """

    def __init__(self, descriptions: Mapping[Any, str | Sequence[str]] | None = None, *,
                 classes: Sequence[Any] | None = None, template: str | Sequence[str] = "{}",
                 encoder: Any = "minilm", encoder_params: dict[str, Any] | None = None, center: bool = False,
                 self_train_rounds: int = 0, self_train_fraction: float = 0.2, self_train_C: float = 1.0,
                 segment: str = "text", batch_size: int = 64) -> None:
        self.descriptions = descriptions
        self.classes = classes
        self.template = template
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.center = center
        self.self_train_rounds = self_train_rounds
        self.self_train_fraction = self_train_fraction
        self.self_train_C = self_train_C
        self.segment = segment
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
        rounds, frac = self.self_train_rounds, self.self_train_fraction
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
            raise ConfigError(f"got {rounds!r}; expected an integer >= 0 (0: no self-training)", "self_train_rounds")
        if not isinstance(frac, (int, float)) or not 0 < frac <= 1:
            raise ConfigError(f"got {frac!r}; expected a fraction in (0, 1]", "self_train_fraction")
        # imported here, not at module level: importing transferkit.models loads torch
        from transferkit.models.sentences import check_segment

        check_segment(self.segment)
        desc = self._descriptions()
        self.encoder_ = self._build_encoder()
        self.classes_, self.class_embeddings_ = embed_descriptions(self.encoder_, desc, batch_size=self.batch_size)
        self.descriptions_ = desc
        self.__dict__.pop("head_", None)
        if self.center or rounds:
            if X is None and embeddings is None:
                need = "center=True subtracts the mean embedding of" if self.center else "self-training learns from"
                raise ConfigError(f"{need} unlabelled texts: pass them to fit(texts) or fit(embeddings=...)",
                                  "center" if self.center else "self_train_rounds")
            e = self._embed(X) if embeddings is None else self._check_embeddings(embeddings)
            if self.center:
                self.text_mean_ = e.mean(axis=0)
            if rounds:
                self._self_train(e)
        return self

    def _features(self, e: np.ndarray) -> np.ndarray:
        """What the cosine and the self-trained head see: centred (``center=True``), unit-norm."""
        return _normalize_rows(e - self.text_mean_ if self.center else e)

    def _self_train(self, e: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        z = self._features(e)
        scores = z @ self.class_embeddings_.T
        k_classes = len(self.classes_)
        per_class = max(1, round(self.self_train_fraction * len(z) / k_classes))
        self.pseudo_counts_: list[dict[Any, int]] = []
        for _ in range(self.self_train_rounds):
            idx, lab = confident_per_class(scores, per_class)
            self.pseudo_counts_.append({self.classes_[c]: int(np.sum(lab == c)) for c in range(k_classes)})
            if len(np.unique(lab)) < 2:
                raise DataError(f"self-training: the unlabelled texts are all scored as one class "
                                f"({self.classes_[lab[0]]!r}), so no head can be trained; check the "
                                "descriptions, or use center=True or fewer rounds")
            self.head_ = LogisticRegression(C=self.self_train_C, max_iter=1000).fit(z[idx], lab)
            scores = self._head_scores(z)

    def _head_scores(self, z: np.ndarray) -> np.ndarray:
        """The self-trained head's probabilities ``(n, K)`` in ``classes_`` order (a class the head
        never saw scores 0)."""
        scores = np.zeros((len(z), len(self.classes_)))
        scores[:, self.head_.classes_] = self.head_.predict_proba(z)
        return scores

    def _check_fitted(self) -> None:
        if not hasattr(self, "class_embeddings_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this DescriptionClassifier is not fitted yet; call fit() first")

    def _embed(self, X: Any) -> np.ndarray:
        if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
            raise DataError(f"X: expected a list of texts, got {type(X).__name__}")
        if len(X) == 0:
            raise DataError("X: no texts")
        if self.segment == "sentence":
            from transferkit.models.sentences import sentence_mean_embeddings

            return sentence_mean_embeddings(self.encoder_, list(X), batch_size=self.batch_size).embeddings
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
        """Scores ``(n, K)`` of precomputed text embeddings (columns in ``classes_`` order): cosines,
        or the self-trained head's probabilities."""
        self._check_fitted()
        e = self._check_embeddings(E)
        if hasattr(self, "head_"):
            return self._head_scores(self._features(e))
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
