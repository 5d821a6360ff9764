"""Zero-shot classification from class embeddings.

* :class:`DescriptionClassifier` — texts against class descriptions in words embedded by a
  sentence encoder (MiniLM): zero-shot sentiment or topic (:mod:`.descriptions`).
* :class:`ESZSL` — attribute / semantic-embedding zero-shot learning on any features
  (Romera-Paredes & Torr, ICML 2015), with :func:`select_eszsl_params` choosing its two
  regularisers on seen classes only (:mod:`.eszsl`).
* Seen, unseen and generalised (harmonic-mean) accuracy (:mod:`.metrics`).

Importing this package loads neither torch nor transformers; encoders are built on first use.
"""

from transferkit.zeroshot.descriptions import (
           DescriptionClassifier,
           class_descriptions,
           confident_per_class,
           cosine_scores,
           embed_descriptions,
)
from transferkit.zeroshot.eszsl import (
           ESZSL,
           ESZSLSelection,
           eszsl_weights,
           select_eszsl_params,
)
from transferkit.zeroshot.metrics import (
           generalized_zsl_accuracy,
           harmonic_mean,
           per_class_accuracy,
)

__all__ = ["ESZSL", "DescriptionClassifier", "ESZSLSelection", "class_descriptions", "confident_per_class",
           "cosine_scores",
           "embed_descriptions", "eszsl_weights", "generalized_zsl_accuracy", "harmonic_mean", "per_class_accuracy",
           "select_eszsl_params"]
