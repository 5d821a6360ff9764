"""Feature-level adaptation as scikit-learn estimators, one file per method.

Importing this package registers every shallow method in ``transferkit.core.registries.SHALLOW``.
"""

from transferkit.shallow import baselines, coral  # noqa: F401  (registration)
from transferkit.shallow.base import DAClassifier, check_domain_arrays, make_classifier, split_domains
from transferkit.shallow.coral import CORAL

__all__ = ["CORAL", "DAClassifier", "check_domain_arrays", "make_classifier", "split_domains"]
from transferkit.shallow import sa  # noqa: F401
from transferkit.shallow import tca  # noqa: F401
from transferkit.shallow import jda  # noqa: F401
from transferkit.shallow import gfk  # noqa: F401
from transferkit.shallow import meda  # noqa: F401
from transferkit.shallow import easytl  # noqa: F401
from transferkit.shallow import kmm  # noqa: F401
from transferkit.shallow import kliep  # noqa: F401
from transferkit.shallow import ot  # noqa: F401
from transferkit.shallow import msda  # noqa: F401
