"""Parameters from signatures: describe them, bind user values to them with type checks."""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from transferkit.core.errors import ConfigError

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    annotation: Any

    @property
    def required(self) -> bool:
        return self.default is _EMPTY


def _signature_target(obj: Any) -> Any:
    return obj.__init__ if inspect.isclass(obj) else obj


def describe_params(obj: Any, *, skip: tuple[str, ...] = ("self",)) -> dict[str, Param]:
    """User-settable parameters of a class constructor or a function (keyword parameters;
    positional-only and ``*args``/``**kwargs`` are not user parameters)."""
    target = _signature_target(obj)
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolved forward references: fall back to raw annotations
        hints = {}
    sig = inspect.signature(target)
    out: dict[str, Param] = {}
    for p in sig.parameters.values():
        if p.name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            continue
        if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is _EMPTY:
            continue  # supplied by the caller (shapes, data), not by the user
        ann = hints.get(p.name, p.annotation)
        out[p.name] = Param(p.name, p.default, ann)
    return out


def _type_name(ann: Any) -> str:
    if ann is _EMPTY or ann is Any:
        return "any value"
    origin = get_origin(ann)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(ann))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(ann))
    if origin in (list, tuple, typing.Sequence):
        return "a list"
    if origin is dict:
        return "a mapping"
    return getattr(ann, "__name__", str(ann))


def coerce(value: Any, ann: Any, path: str) -> Any:
    """Check ``value`` against annotation ``ann`` and return it (ints become floats where a float
    is expected, lists become tuples where a tuple is expected). Raises ConfigError."""
    if ann is _EMPTY or ann is Any:
        return value
    origin = get_origin(ann)
    args = get_args(ann)
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"got {value!r}; expected {_type_name(ann)}", path)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, path)
            except ConfigError:
                continue
        raise ConfigError(f"got {value!r}; expected {_type_name(ann)}", path)
    if origin in (list, tuple, typing.Sequence) or ann in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"got {value!r}; expected a list", path)
        inner = args[0] if args and (origin is not tuple or len(args) == 2 and args[1] is Ellipsis) else None
        items = [coerce(v, inner, f"{path}[{i}]") if inner is not None else v for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or ann is tuple) else list(items)
    if origin is dict or ann is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"got {value!r}; expected a mapping", path)
        return dict(value)
    if ann is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"got {value!r}; expected true or false", path)
    if ann is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"got {value!r} ({type(value).__name__}); expected a number", path)
    if ann is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"got {value!r} ({type(value).__name__}); expected an integer", path)
    if ann is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"got {value!r} ({type(value).__name__}); expected a string", path)
    if isinstance(ann, type) and not isinstance(value, ann):
        raise ConfigError(f"got {value!r}; expected {_type_name(ann)}", path)
    return value


def bind_params(obj: Any, params: dict[str, Any], *, path: str = "params") -> dict[str, Any]:
    """Validate ``params`` against the signature of ``obj``: unknown keys (with the closest
    known key suggested), wrong types and missing required values raise :class:`ConfigError`."""
    from transferkit.core.registry import suggest

    if not isinstance(params, dict):
        raise ConfigError(f"expected a mapping of parameters, got {params!r}", path)
    known = describe_params(obj)
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key not in known:
            allowed = ", ".join(sorted(known)) or "none"
            raise ConfigError(
                f"unknown parameter {key!r}.{suggest(str(key), list(known))} Allowed: {allowed}.",
                f"{path}.{key}",
            )
        out[key] = coerce(value, known[key].annotation, f"{path}.{key}")
    for name, p in known.items():
        if p.required and name not in out:
            raise ConfigError(f"missing required parameter {name!r}", path)
    return out


def get_params(obj: Any) -> dict[str, Any]:
    """Current parameter values of an instance, read from attributes named as its parameters."""
    return {k: getattr(obj, k) for k in describe_params(type(obj)) if hasattr(obj, k)}
