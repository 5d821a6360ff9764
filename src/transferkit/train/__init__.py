"""The one generic training loop."""

from transferkit.train.config import TrainConfig
from transferkit.train.loop import FitResult, classification_summary, evaluate, fit, predict_logits

__all__ = ["FitResult", "TrainConfig", "classification_summary", "evaluate", "fit", "predict_logits"]
