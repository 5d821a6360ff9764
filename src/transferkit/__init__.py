"""transferkit: transfer learning and domain adaptation.

Assess the shift, transfer (fine-tune, adapt on features or on the backbone), and decide without
target labels. Importing the package does no work: registries fill on first use.
"""

from transferkit.core.errors import ConfigError, DataError, TrainingDivergedError, TransferkitError
from transferkit.data.dataset import DomainDataset, Task, make_task

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "DomainDataset", "Task", "TrainingDivergedError",
           "TransferkitError", "__version__", "make_task"]
