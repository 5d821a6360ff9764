"""Registries: register objects by name, list them with a description and defaults, create them
from parameters.

Registries are filled lazily: each knows the module whose import registers its entries and imports
it on first use, so ``import transferkit`` does no work.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from transferkit.core.errors import ConfigError, UnknownNameError
from transferkit.core.params import bind_params, describe_params

T = TypeVar("T")
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


def suggest(name: str, choices: list[str], n: int = 3) -> str:
    """A hint naming the closest of ``choices`` to ``name`` (empty when none is close)."""
    close = difflib.get_close_matches(name.lower(), choices, n=n, cutoff=0.5)
    if not close:
        close = [c for c in choices if name.lower() in c or c in name.lower()][:n]
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object: its name, the object, a one-line description and extra tags."""

    name: str
    obj: T
    description: str
    tags: dict[str, Any] = field(default_factory=dict)

    def defaults(self) -> dict[str, Any]:
        """Constructor (or function) parameters and their defaults."""
        return {k: p.default for k, p in describe_params(self.obj).items()}


class Registry(Generic[T]):
    """Named objects of one kind (``"method"``, ``"model"``, ...).

    ``populate`` lists the modules whose import registers the entries; they are imported on first
    use, never at ``import transferkit``.
    """

    def __init__(self, kind: str, populate: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._populate = populate
        self._loaded = not populate
        self._entries: dict[str, Entry[T]] = {}

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._populate:
                importlib.import_module(module)

    def register(self, name: str, *, description: str | None = None, **tags: Any) -> Callable[[T], T]:
        """Decorator registering a class or function under ``name`` (lower case, digits, ``_``)."""
        if not name or set(name) - _NAME_CHARS:
            raise ValueError(f"{self.kind} name {name!r} must be lower case letters, digits or '_'")

        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name].obj is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            doc = description or (inspect.getdoc(obj) or "").strip().split("\n")[0]
            if not doc:
                raise ValueError(f"{self.kind} {name!r} needs a description or a docstring")
            self._entries[name] = Entry(name, obj, doc, dict(tags))
            return obj

        return decorator

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(sorted(self._entries))

    def names(self) -> list[str]:
        return list(self)

    def entries(self) -> list[Entry[T]]:
        self._load()
        return [self._entries[n] for n in sorted(self._entries)]

    def entry(self, name: str, path: str | None = None) -> Entry[T]:
        self._load()
        if not isinstance(name, str) or name not in self._entries:
            choices = sorted(self._entries)
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{suggest(str(name), choices)} "
                f"Known {self.kind}s: {', '.join(choices)}.",
                path,
            )
        return self._entries[name]

    def get(self, name: str, path: str | None = None) -> T:
        return self.entry(name, path).obj

    def create(self, name: str, params: dict[str, Any] | None = None, *, path: str | None = None,
               **extra: Any) -> Any:
        """Build ``name`` with ``params`` bound and checked against its signature.

        ``extra`` are arguments supplied by the caller (not the user), e.g. input shapes.
        """
        obj = self.get(name, path)
        bound = bind_params(obj, params or {}, path=f"{path}.params" if path else name)
        try:
            return obj(**extra, **bound)  # type: ignore[operator]
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"cannot create {self.kind} {name!r}: {exc}", path) from exc
