from typing import Literal

import pytest

from transferkit.core.errors import ConfigError, UnknownNameError
from transferkit.core.params import bind_params
from transferkit.core.registries import METHODS, MODELS, SHALLOW, method_kind
from transferkit.core.registry import Registry


def test_register_list_create_with_defaults():
    reg: Registry = Registry("widget")

    @reg.register("box", description="A box")
    class Box:
        def __init__(self, *, size: int = 3, color: Literal["red", "blue"] = "red", scale: float = 1.0):
            self.size, self.color, self.scale = size, color, scale

    assert reg.names() == ["box"]
    assert reg.entry("box").defaults() == {"size": 3, "color": "red", "scale": 1.0}
    b = reg.create("box", {"size": 5, "scale": 2})
    assert (b.size, b.color, b.scale) == (5, "red", 2.0) and isinstance(b.scale, float)
    with pytest.raises(ValueError):
        reg.register("Bad Name")


def test_unknown_name_suggests_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'dann'"):
        METHODS.get("dan_n")
    with pytest.raises(UnknownNameError, match="coral"):
        method_kind("corall")
    with pytest.raises(UnknownNameError, match="lenet"):
        MODELS.get("lenett")


def test_param_errors_name_key_and_fix():
    dann = METHODS.get("dann")
    with pytest.raises(ConfigError, match=r"methods\[0\]\.params\.trade_of.*Did you mean 'trade_off'"):
        bind_params(dann, {"trade_of": 1.0}, path="methods[0].params")
    with pytest.raises(ConfigError, match=r"trade_off: got 'high'.*expected a number"):
        bind_params(dann, {"trade_off": "high"})
    with pytest.raises(ConfigError, match="expected an integer"):
        bind_params(dann, {"disc_layers": 1.5})
    with pytest.raises(ConfigError, match="true or false"):
        bind_params(SHALLOW.get("coral"), {"align_mean": "yes"})


def test_every_registered_entry_has_description_and_defaults():
    for reg in (METHODS, SHALLOW, MODELS):
        for e in reg.entries():
            assert e.description and isinstance(e.defaults(), dict)
