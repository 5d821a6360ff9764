"""Data: the DomainDataset, readers, built-in offline sets and named benchmarks.

Importing this package registers the named data sets (cheap: no file is read and no heavy module
is imported here).
"""

from transferkit.data import benchmarks, builtin, digits_images  # noqa: F401  (registration)
from transferkit.data.benchmarks import Benchmark, TaskCollection
from transferkit.data.dataset import SOURCE, TARGET, DomainDataset, Task, make_task
from transferkit.data.readers import (
    load_domain_dataset,
    read_csv,
    read_idx,
    read_mat,
    read_npz,
    read_svmlight,
)
from transferkit.data.reference import published

__all__ = ["SOURCE", "TARGET", "Benchmark", "DomainDataset", "Task", "TaskCollection", "load_domain_dataset",
           "make_task", "published", "read_csv", "read_idx", "read_mat", "read_npz", "read_svmlight"]
