"""Checkpoints written atomically (temp file + rename), so a kill never leaves a torn file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from transferkit.core.errors import DataError


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors and plain data only)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torn or foreign file
        raise DataError(f"cannot read checkpoint {path} ({exc}); delete it to start this run afresh") from exc
