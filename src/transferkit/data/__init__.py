"""Data: the DomainDataset, readers, built-in offline sets and named benchmarks."""

from transferkit.data.dataset import SOURCE, TARGET, DomainDataset, Task, make_task

__all__ = ["SOURCE", "TARGET", "DomainDataset", "Task", "make_task"]

# registration of the named data sets (cheap: no file is read and no heavy module imported here)
from transferkit.data import benchmarks, builtin  # noqa: E402,F401
from transferkit.data.benchmarks import Benchmark, TaskCollection  # noqa: E402
from transferkit.data.readers import (  # noqa: E402
    load_domain_dataset,
    read_csv,
    read_idx,
    read_mat,
    read_npz,
    read_svmlight,
)
from transferkit.data.reference import published  # noqa: E402

__all__ += ["Benchmark", "TaskCollection", "load_domain_dataset", "published", "read_csv", "read_idx",
            "read_mat", "read_npz", "read_svmlight"]
from transferkit.data import digits_images  # noqa: E402,F401
