"""Published accuracies for the benchmark files, from ``<data_dir>/reference_results.csv``.

The table has the columns ``benchmark, task, method, accuracy, source, verified``; ``verified``
says how far each figure was checked (e.g. "reproduced exactly from these files", "collected",
"secondary copy of the table"). Benchmarks and reports print our figure beside the published one.
"""

from __future__ import annotations

import csv
import threading
from pathlib import Path

from transferkit.core.errors import DataError

REFERENCE_FILE = "reference_results.csv"
_REQUIRED = ("benchmark", "task", "method", "accuracy")

_lock = threading.Lock()
#: parsed tables per absolute file path -> (mtime_ns, {(benchmark, task, method): (acc, text)})
_cache: dict[Path, tuple[int, dict[tuple[str, str, str], tuple[float, str]]]] = {}


def normalize_method(name: str) -> str:
    """Method names compare case-insensitively with ``_`` equal to ``-`` (``source_only`` ==
    ``Source-Only``, ``1nn`` == ``1NN``)."""
    return name.strip().lower().replace("_", "-")


def normalize_task(name: str) -> str:
    """Task names compare case-insensitively with ``->`` equal to ``-`` (``C->A`` == ``c-a``)."""
    t = name.strip().lower().replace("→", "-").replace("->", "-").replace(" ", "")
    return t


def _key(benchmark: str, task: str, method: str) -> tuple[str, str, str]:
    return benchmark.strip().lower(), normalize_task(task), normalize_method(method)


def read_reference(path: Path) -> dict[tuple[str, str, str], tuple[float, str]]:
    """The table as ``{(benchmark, task, method) normalised: (accuracy, "source (verified)")}``
    (cached per process; re-read when the file changes)."""
    path = path.resolve()
    mtime = path.stat().st_mtime_ns
    with _lock:
        hit = _cache.get(path)
        if hit and hit[0] == mtime:
            return hit[1]
    table: dict[tuple[str, str, str], tuple[float, str]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected a header "
                            "'benchmark,task,method,accuracy,source,verified'")
        for lineno, row in enumerate(reader, 2):
            try:
                acc = float(row["accuracy"])
            except (TypeError, ValueError):
                raise DataError(f"{path}:{lineno}: accuracy {row['accuracy']!r} is not a number") from None
            source = (row.get("source") or "").strip()
            verified = (row.get("verified") or "").strip()
            text = f"{source} ({verified})" if verified else source
            table[_key(row["benchmark"], row["task"], row["method"])] = (acc, text)
    with _lock:
        _cache[path] = (mtime, table)
    return table


def published(benchmark: str, task: str, method: str,
              data_dir: str | Path | None = None) -> tuple[float, str] | None:
    """The published accuracy (percent) of ``method`` on ``task`` of ``benchmark`` and its source
    text with the ``verified`` note, or None when the table, the data folder or the row is missing.

    Method names match case-insensitively with ``_`` == ``-`` (``1nn`` ~ ``1NN``, ``dann`` ~
    ``DANN``); task names with ``->`` == ``-`` (``C->A`` ~ ``C-A``).
    """
    from transferkit.data.paths import find_data_dir

    root = find_data_dir(data_dir)
    if root is None or not (root / REFERENCE_FILE).is_file():
        return None
    return read_reference(root / REFERENCE_FILE).get(_key(benchmark, task, method))


def clear_cache() -> None:
    """Forget parsed tables (tests)."""
    with _lock:
        _cache.clear()
