"""Data: the DomainDataset, readers, built-in offline sets and named benchmarks."""

from transferkit.data.dataset import SOURCE, TARGET, DomainDataset, Task, make_task

__all__ = ["SOURCE", "TARGET", "DomainDataset", "Task", "make_task"]
