"""Few-shot text classification by contrastive fine-tuning of a sentence encoder, then a head:
SetFit (Tunstall, Reimers, Jo, Bates, Korat, Wasserblat & Pereg, "Efficient Few-Shot Learning
Without Prompts", arXiv:2209.11055, 2022).

From ``k`` labelled texts per class:

1. **Pairs.** For each of ``num_iterations`` rounds and each labelled text ``i``, one positive
   pair ``(i, j)`` with ``j`` drawn uniformly among the *other* texts of ``i``'s class (target
   1) and one negative pair ``(i, j')`` with ``j'`` drawn uniformly among the texts of the other
   classes (target 0): ``2 * num_iterations * n`` pairs for ``n`` texts, half positive
   (:func:`contrastive_pairs`; SetFit's original pair generation, except that a text is never
   paired with itself: such a pair has cosine 1 and gives no gradient).
2. **Contrastive fine-tuning** of the whole encoder on the pairs with the cosine-similarity loss of
   sentence-transformers (``CosineSimilarityLoss``), the mean over a batch of pairs of

       (cos(f(a), f(b)) - t)^2,       t in {0, 1}

   (:func:`cosine_similarity_loss`), for ``num_epochs`` passes over the shuffled pairs in batches
   of ``batch_size`` pairs, AdamW (``learning_rate`` 2e-5, weight decay 0.01 except biases and
   normalisation weights), linear warm-up over the first 10% of the steps then linear decay to 0,
   gradients clipped at norm 1 — the defaults of SetFit (``num_iterations=20``, ``num_epochs=1``,
   ``body_learning_rate=2e-5``, ``batch_size=16``, ``warmup_proportion=0.1``) and of
   sentence-transformers' ``fit`` (weight decay, clipping, ``WarmupLinear``). The encoder trains
   in train mode (dropout on), as there. Each distinct text of a batch is encoded once and its
   embedding shared by the pairs that use it (the same gradient as encoding it once per pair,
   up to dropout masks; half the encoder passes when batches reuse the few labelled texts).
3. **Head**: logistic regression (scikit-learn, ``C = head_C``) on the fine-tuned embeddings of the
   labelled texts (:class:`SetFitClassifier`).

Texts are truncated to ``max_length`` = 128 tokens while fine-tuning (the sequence length
all-MiniLM-L6-v2 was trained with; SetFit uses the model's own limit, 256 for this model), and
embedded with the encoder's own ``max_length`` for the head and for prediction.

Everything is deterministic given ``seed``: pair sampling and shuffling use a numpy generator
seeded by it, dropout a torch generator forked from the global one and seeded by it (the global
torch random state is left as it was).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from transferkit.core.errors import ConfigError, DataError, TrainingDivergedError

__all__ = ["ContrastiveHistory", "PairSet", "SetFitClassifier", "contrastive_finetune", "contrastive_pairs",
           "cosine_similarity_loss"]


# == pairs ======================================================================================
class PairSet(NamedTuple):
    """Pairs of sample indices and their targets: ``first[p]``, ``second[p]`` index the labelled
    texts, ``target[p]`` is 1.0 for a same-class (positive) pair and 0.0 for a negative pair."""

    first: np.ndarray
    second: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:  # type: ignore[override]
        return len(self.target)


def _check_positive_int(value: Any, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"got {value!r}; expected a positive integer", name)
    return int(value)


def check_fewshot_labels(labels: Any, *, what: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    """Labels as ``(classes, indices)`` (``np.unique`` order), or a :class:`DataError` when there
    is a single class or a class with fewer than 2 examples (no positive pair can be built)."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise DataError(f"{what}: expected a 1-D array of class labels, got shape {y.shape}")
    if y.size == 0:
        raise DataError(f"{what}: no labelled examples; give at least 2 examples of each of at least 2 classes")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise DataError(f"{what}: labels contain NaN or infinite values")
    classes, idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"{what}: all {y.size} examples have the same class {classes[0]!r}; contrastive few-shot "
                        "training needs examples of at least 2 classes (negative pairs)")
    small = [(c, int(k)) for c, k in zip(classes.tolist(), counts) if k < 2]
    if small:
        desc = ", ".join(f"{c!r}: {k}" for c, k in small)
        raise DataError(f"{what}: every class needs at least 2 labelled examples to form a positive pair; "
                        f"too few for {desc}. Label more examples of these classes or drop them")
    return classes, idx.astype(np.int64)


def contrastive_pairs(labels: Any, *, num_iterations: int = 20,
                      seed: int | np.random.Generator | None = 0) -> PairSet:
    """SetFit's pairs for the labelled examples ``labels`` (see the module docstring): for each of
    ``num_iterations`` rounds and each example ``i`` in order, ``(i, positive partner, 1.0)`` then
    ``(i, negative partner, 0.0)``; ``2 * num_iterations * len(labels)`` pairs. Partners are
    uniform among the other examples of the same class / the examples of the other classes."""
    from transferkit.core.seed import rng as make_rng

    _, y = check_fewshot_labels(labels)
    r = _check_positive_int(num_iterations, "num_iterations")
    gen = make_rng(seed)
    n = len(y)
    partners = [np.flatnonzero((y == y[i]) & (np.arange(n) != i)) for i in range(n)]  # same class, not i
    other = [np.flatnonzero(y != c) for c in range(int(y.max()) + 1)]
    first = np.repeat(np.tile(np.arange(n), r), 2)
    second = np.empty(2 * r * n, dtype=np.int64)
    target = np.tile(np.array([1.0, 0.0]), r * n)
    p = 0
    for _ in range(r):
        for i in range(n):
            pos = partners[i]
            second[p] = pos[gen.integers(len(pos))]
            neg = other[y[i]]
            second[p + 1] = neg[gen.integers(len(neg))]
            p += 2
    return PairSet(first.astype(np.int64), second, target)


# == loss =======================================================================================
def cosine_similarity_loss(u: Any, v: Any, target: Any) -> Any:
    """Cosine-similarity loss of sentence-transformers (``CosineSimilarityLoss``): the mean over
    pairs of ``(cos(u_p, v_p) - target_p)^2``. ``u``, ``v``: embeddings ``(P, d)`` (tensors);
    ``target``: ``(P,)`` in [0, 1] (1 = same class)."""
    import torch

    cos = torch.nn.functional.cosine_similarity(u, v, dim=1)
    return torch.mean((cos - target.to(cos.dtype)) ** 2)


# == fine-tuning =================================================================================
@dataclass
class ContrastiveHistory:
    """What :func:`contrastive_finetune` did: the loss of every step, the number of pairs and
    steps, the learning rates per step and the wall time."""

    losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    num_pairs: int = 0
    num_steps: int = 0
    seconds: float = 0.0


def _preprocess_settings(encoder: Any, max_length: int | None) -> dict[str, Any]:
    if max_length is None:
        return {}
    settings = encoder.preprocess_settings() if callable(getattr(encoder, "preprocess_settings", None)) else {}
    if "max_length" not in settings:
        raise ConfigError(f"max_length={max_length!r} is for text encoders, but "
                          f"{type(encoder).__name__}.preprocess takes no max_length; set max_length=None",
                          "max_length")
    return {"max_length": _check_positive_int(max_length, "max_length")}


def _param_groups(encoder: Any, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on matrices, none on biases and normalisation weights (1-D)."""
    decay, no_decay = [], []
    for p in encoder.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    if not decay and not no_decay:
        raise ConfigError("the encoder has no trainable parameters (all have requires_grad=False); unfreeze "
                          "it before contrastive fine-tuning", "encoder")
    return [g for g in ({"params": decay, "weight_decay": weight_decay},
                        {"params": no_decay, "weight_decay": 0.0}) if g["params"]]


def contrastive_finetune(encoder: Any, texts: Sequence[Any], labels: Any, *, num_iterations: int = 20,
                         num_epochs: int = 1, learning_rate: float = 2e-5, batch_size: int = 16,
                         warmup_proportion: float = 0.1, weight_decay: float = 0.01, max_grad_norm: float | None = 1.0,
                         max_length: int | None = 128, seed: int = 0, progress: bool = False) -> ContrastiveHistory:
    """Fine-tune ``encoder`` **in place** on SetFit pairs of the labelled ``texts`` (see the module
    docstring); it is left in eval mode. ``encoder``: a :class:`~transferkit.models.encoders.Encoder`
    (``preprocess`` + ``forward`` to embeddings), e.g. ``create_encoder("minilm")``.
    ``max_length``: tokens per text while fine-tuning (None: the encoder's own setting).
    Returns the :class:`ContrastiveHistory`; raises :class:`TrainingDivergedError` if a loss is
    not finite."""
    import torch

    n = len(texts) if hasattr(texts, "__len__") and not isinstance(texts, (str, bytes)) else -1
    if n < 0:
        raise DataError(f"texts: expected a list of samples, got {type(texts).__name__}")
    _, y = check_fewshot_labels(labels)
    if len(y) != n:
        raise DataError(f"texts and labels differ in length: {n} texts, {len(y)} labels")
    epochs = _check_positive_int(num_epochs, "num_epochs")
    bs = _check_positive_int(batch_size, "batch_size")
    for name, value, positive in (("learning_rate", learning_rate, True), ("weight_decay", weight_decay, False)):
        if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
                or value < 0 or (positive and value == 0)):
            raise ConfigError(f"got {value!r}; expected a {'positive' if positive else 'non-negative'} number", name)
    if not isinstance(warmup_proportion, (int, float)) or not 0.0 <= float(warmup_proportion) < 1.0:
        raise ConfigError(f"got {warmup_proportion!r}; expected a fraction in [0, 1)", "warmup_proportion")
    if max_grad_norm is not None and (not isinstance(max_grad_norm, (int, float)) or max_grad_norm <= 0):
        raise ConfigError(f"got {max_grad_norm!r}; expected a positive number or None", "max_grad_norm")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ConfigError(f"got {seed!r}; expected an integer", "seed")
    if not isinstance(encoder, torch.nn.Module) or not callable(getattr(encoder, "preprocess", None)):
        raise ConfigError(f"expected an Encoder (an nn.Module with preprocess(), e.g. create_encoder('minilm')), "
                          f"got {type(encoder).__name__}", "encoder")

    settings = _preprocess_settings(encoder, max_length)
    ids = torch.as_tensor(encoder.preprocess(list(texts) if not isinstance(texts, np.ndarray) else texts, **settings))
    gen = np.random.default_rng(int(seed))
    pairs = contrastive_pairs(y, num_iterations=num_iterations, seed=gen)
    steps_per_epoch = math.ceil(len(pairs) / bs)
    total = steps_per_epoch * epochs
    warmup = math.ceil(total * float(warmup_proportion))

    def lr_factor(step: int) -> float:  # sentence-transformers' WarmupLinear
        if step < warmup:
            return float(step) / float(max(1, warmup))
        return max(0.0, float(total - step) / float(max(1, total - warmup)))

    history = ContrastiveHistory(num_pairs=len(pairs) * epochs, num_steps=total)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        optimizer = torch.optim.AdamW(_param_groups(encoder, float(weight_decay)), lr=float(learning_rate))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        encoder.train()
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="contrastive fine-tuning", disable=not progress, leave=False, unit="step")
        try:
            step = 0
            for _ in range(epochs):
                order = gen.permutation(len(pairs))
                for start in range(0, len(order), bs):
                    sel = order[start:start + bs]
                    a, b = pairs.first[sel], pairs.second[sel]
                    uniq, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
                    emb = encoder(ids[torch.as_tensor(uniq)])
                    inv_t = torch.as_tensor(inv)
                    loss = cosine_similarity_loss(emb[inv_t[:len(sel)]], emb[inv_t[len(sel):]],
                                                  torch.as_tensor(pairs.target[sel]))
                    if not torch.isfinite(loss):
                        raise TrainingDivergedError(f"contrastive fine-tuning: the cosine-similarity loss is "
                                                    f"{float(loss.detach())} at step {step}; lower learning_rate")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if max_grad_norm is not None:
                        torch.nn.utils.clip_grad_norm_(params, float(max_grad_norm))
                    history.lrs.append(float(optimizer.param_groups[0]["lr"]))
                    optimizer.step()
                    scheduler.step()
                    history.losses.append(float(loss.detach()))
                    step += 1
                    bar.update(1)
        finally:
            bar.close()
            encoder.eval()
    history.seconds = time.perf_counter() - t0
    return history


# == classifier =================================================================================
class SetFitClassifier(ClassifierMixin, BaseEstimator):
    """SetFit few-shot classifier: contrastive fine-tuning of a sentence encoder on pairs of the
    labelled texts, then logistic regression on the fine-tuned embeddings (module docstring).

    ``encoder``: a registered encoder name (``"minilm"``, built with ``encoder_params``) or an
    :class:`~transferkit.models.encoders.Encoder` instance, which is copied (the given one is
    never changed). Training parameters as :func:`contrastive_finetune`; ``head_C``: inverse
    regularisation of the logistic-regression head; ``encode_batch_size``: batch size when
    embedding texts. Fitted: ``encoder_`` (the fine-tuned copy), ``head_``, ``classes_``,
    ``history_`` (:class:`ContrastiveHistory`).

    >>> clf = SetFitClassifier(seed=0).fit(texts, labels)     # doctest: +SKIP
    >>> clf.predict(["Great value, works perfectly."])        # doctest: +SKIP
    """

    def __init__(self, encoder: Any = "minilm", *, encoder_params: dict[str, Any] | None = None,
                 num_iterations: int = 20, num_epochs: int = 1, learning_rate: float = 2e-5, batch_size: int = 16,
                 warmup_proportion: float = 0.1, weight_decay: float = 0.01, max_grad_norm: float | None = 1.0,
                 max_length: int | None = 128, head_C: float = 1.0, encode_batch_size: int = 64, seed: int = 0,
                 progress: bool = False) -> None:
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.num_iterations = num_iterations
        self.num_epochs = num_epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.warmup_proportion = warmup_proportion
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm
        self.max_length = max_length
        self.head_C = head_C
        self.encode_batch_size = encode_batch_size
        self.seed = seed
        self.progress = progress

    def _build_encoder(self) -> Any:
        if isinstance(self.encoder, str):
            from transferkit.models.encoders import create_encoder

            return create_encoder(self.encoder, self.encoder_params)
        if self.encoder_params:
            raise ConfigError("encoder_params are for an encoder given by name; this encoder is already built",
                              "encoder_params")
        return copy.deepcopy(self.encoder)

    def fit(self, X: Sequence[Any], y: Any) -> SetFitClassifier:
        """Fine-tune a copy of the encoder on pairs of the texts ``X`` with labels ``y``, then fit
        the head on their embeddings."""
        from sklearn.linear_model import LogisticRegression

        classes, yi = check_fewshot_labels(y, what="y")
        if not isinstance(self.head_C, (int, float)) or isinstance(self.head_C, bool) or not self.head_C > 0:
            raise ConfigError(f"got {self.head_C!r}; expected a positive number", "head_C")
        enc = self._build_encoder()
        self.history_ = contrastive_finetune(
            enc, X, yi, num_iterations=self.num_iterations, num_epochs=self.num_epochs,
            learning_rate=self.learning_rate, batch_size=self.batch_size, warmup_proportion=self.warmup_proportion,
            weight_decay=self.weight_decay, max_grad_norm=self.max_grad_norm, max_length=self.max_length,
            seed=self.seed, progress=self.progress)
        self.encoder_ = enc
        self.classes_ = classes
        emb = self.transform(X)
        self.head_ = LogisticRegression(C=float(self.head_C), max_iter=5000, random_state=int(self.seed)).fit(emb, yi)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "head_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this SetFitClassifier is not fitted yet; call fit(texts, labels) first")

    def transform(self, X: Sequence[Any]) -> np.ndarray:
        """Embeddings ``(n, d)`` of texts ``X`` by the fine-tuned encoder."""
        if not hasattr(self, "encoder_"):
            self._check_fitted()
        if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
            raise DataError(f"X: expected a list of texts, got {type(X).__name__}")
        return self.encoder_.encode(list(X) if not isinstance(X, np.ndarray) else X,
                                    batch_size=int(self.encode_batch_size), progress=self.progress)

    def predict_proba(self, X: Sequence[Any]) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` from the head (columns in ``classes_`` order)."""
        self._check_fitted()
        return self.head_.predict_proba(self.transform(X))

    def predict(self, X: Sequence[Any]) -> np.ndarray:
        """Predicted labels (values of ``classes_``)."""
        self._check_fitted()
        return self.classes_[self.head_.predict(self.transform(X))]
