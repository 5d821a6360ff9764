"""The registries of transferkit, each filled on first use by importing its package."""

from __future__ import annotations

from typing import Any

from transferkit.core.registry import Registry

#: deep adaptation methods (``transferkit.methods``), trained by the one loop
METHODS: Registry[Any] = Registry("method", populate=("transferkit.methods",))
#: feature-level methods, scikit-learn estimators (``transferkit.shallow``)
SHALLOW: Registry[Any] = Registry("shallow method", populate=("transferkit.shallow",))
#: backbones and classifiers (``transferkit.models``)
MODELS: Registry[Any] = Registry("model", populate=("transferkit.models",))
#: pretrained encoders with their preprocessing (``transferkit.models.encoders``): frozen feature
#: extractors for data sets (``encoder: minilm``) and backbones of the models of the same name
ENCODERS: Registry[Any] = Registry("encoder", populate=("transferkit.models.encoders",))
#: built-in data sets and named benchmarks (``transferkit.data``)
DATASETS: Registry[Any] = Registry("dataset", populate=("transferkit.data",))
#: fine-tuning strategies (``transferkit.finetune``): what is frozen, lr per group, regularisers
FINETUNE: Registry[Any] = Registry("fine-tuning strategy", populate=("transferkit.finetune",))


def method_kind(name: str) -> str:
    """``"deep"`` or ``"shallow"`` for a registered method name (raises with suggestions)."""
    if name in METHODS:
        return "deep"
    if name in SHALLOW:
        return "shallow"
    from transferkit.core.errors import UnknownNameError
    from transferkit.core.registry import suggest

    choices = METHODS.names() + SHALLOW.names()
    raise UnknownNameError(
        f"unknown method {name!r}.{suggest(name, choices)} Known methods: {', '.join(sorted(choices))}."
    )
