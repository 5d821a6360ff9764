"""Every shipped example config validates."""

from pathlib import Path

import pytest

from transferkit.experiment.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_config_validates(path):
    cfg = load_config(path)
    assert cfg.methods


def test_default_matches_shipped_digits():
    from transferkit.experiment.config import DEFAULT_CONFIG, validate_config

    assert validate_config(DEFAULT_CONFIG).raw == load_config(CONFIGS[[p.name for p in CONFIGS].index("digits.yaml")]).raw
