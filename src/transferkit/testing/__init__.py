"""Contract checks for registered methods (used by the test suite; usable by plug-in authors)."""

from transferkit.testing.contract import check_method, shifted_blobs

__all__ = ["check_method", "shifted_blobs"]
