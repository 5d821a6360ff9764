"""Every registered deep method passes the contract (a new method is tested by registering it)."""

import pytest

from transferkit.core.registries import METHODS
from transferkit.testing import check_method


@pytest.mark.parametrize("name", METHODS.names())
def test_method_contract(name):
    check_method(name)
