"""Fine-tuning strategies, configured by name in ``train.finetune`` and applied by the one loop.

``train: {finetune: {name: gradual_unfreeze, params: {every: 200}}}`` (or just
``finetune: linear_probe``). Each strategy acts on the model (backbone, new layers) and combines
with any adaptation method; see :mod:`transferkit.finetune.base` for the contract.
"""

from transferkit.finetune import layers, lora, regularizers  # noqa: F401  (registration)
from transferkit.finetune.base import (
    GroupPlan,
    LayerView,
    Strategy,
    create_strategy,
    finetune_spec,
    layer_view,
)

__all__ = ["GroupPlan", "LayerView", "Strategy", "create_strategy", "finetune_spec", "layer_view"]
