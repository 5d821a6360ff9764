"""The classifier shape every deep method and the loop rely on.

A :class:`Classifier` is a ``backbone`` (samples -> features of width ``num_features``) followed
by a linear ``head``; ``forward(x)`` returns ``(logits, features)``.
"""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    """``backbone`` then an optional bottleneck then a linear ``head``.

    Shapes: x (B, *input_shape) -> logits (B, num_classes), features (B, num_features).
    """

    def __init__(self, backbone: nn.Module, backbone_features: int, num_classes: int,
                 bottleneck: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        if bottleneck > 0:
            self.bottleneck: nn.Module = nn.Sequential(
                nn.Linear(backbone_features, bottleneck), nn.BatchNorm1d(bottleneck), nn.ReLU())
            self.num_features = bottleneck
        else:
            self.bottleneck = nn.Identity()
            self.num_features = backbone_features
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(self.num_features, num_classes)
        self.num_classes = num_classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(self.backbone(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.head(self.dropout(f)), f

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named groups the loop may give their own learning rate: backbone and the rest."""
        return {
            "backbone": list(self.backbone.parameters()),
            "head": list(self.bottleneck.parameters()) + list(self.head.parameters()),
        }
