"""Shared fixtures: tiny synthetic shifted data, the benchmark data folder when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TRANSFERKIT_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def blobs_task():
    """A 3-class, 6-d shifted-blobs Task with a labelled target test split."""
    from transferkit.data import make_task
    from transferkit.testing import shifted_blobs

    xs, ys, xt, yt = shifted_blobs(n=200, shift=1.0, seed=0)
    return make_task(xs, ys, xt, xt, yt, name="blobs")


@pytest.fixture(scope="module")
def network_blocked():
    """Hub access off and every socket connection refused, for the whole module: any attempt to
    reach the network fails loudly."""
    import socket

    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise OSError(f"network access is blocked in this test: {args!r}")

    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket.socket, "connect_ex", refuse)
    mp.setattr(socket, "create_connection", refuse)
    yield
    mp.undo()


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "SHA256SUMS").is_file():
        pytest.skip(f"benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


def pytest_configure(config):
    os.environ.setdefault("TRANSFERKIT_DATA", str(SHARED_DATA))
    np.seterr(all="ignore")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models gain nothing from several threads, and lose much on a busy machine."""
    import torch

    torch.set_num_threads(1)
    yield
