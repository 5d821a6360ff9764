"""Loading local state dicts safely, and fingerprints of weights.

:func:`load_weights` reads ``.safetensors`` files with ``safetensors`` and ``.pt``/``.pth``/``.bin``
files with ``torch.load(weights_only=True)``, which refuses any pickled Python object other than
tensors and plain containers: no code from an untrusted file is ever executed. Keys and shapes are
checked against the model before anything is copied, and every problem names the file and the keys.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferkit.core.errors import DataError

#: file suffixes read by :func:`read_state_dict`
SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
#: top-level keys under which checkpoints commonly keep the model's state dict
NESTED_KEYS = ("state_dict", "model_state_dict", "model", "bundle")


@dataclass
class LoadReport:
    """What :func:`load_weights` did: the keys copied, and (with ``strict=False``) the model keys
    left as they were and the file keys not used."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _names(keys: Sequence[str], n: int = 8) -> str:
    shown = ", ".join(repr(k) for k in list(keys)[:n])
    return shown + (f" and {len(keys) - n} more" if len(keys) > n else "")


def _is_tensor_map(obj: Any) -> bool:
    import torch

    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def read_state_dict(path: str | os.PathLike[str], *, key: str | None = None) -> dict[str, Any]:
    """``{name: tensor}`` from a ``.safetensors`` or a torch (``.pt``/``.pth``/``.bin``/``.ckpt``)
    file, on the CPU, without executing pickled code.

    A torch file may hold the state dict itself or a checkpoint mapping that holds it under
    ``key`` (tried when None: ``state_dict``, ``model_state_dict``, ``model``, ``bundle``).
    Raises :class:`DataError` naming the file for a missing file, an unknown suffix, a file that
    holds Python objects other than tensors, or one that holds no state dict.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: weights file not found; check the path (relative paths start from "
                        f"{Path.cwd()})")
    if not p.is_file():
        raise DataError(f"{p}: is not a file (expected a .safetensors, .pt, .pth or .bin file)")
    suffix = p.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise DataError(f"{p}: reading .safetensors files needs the package safetensors: "
                            "pip install 'transferkit[text]' (or pip install safetensors)") from exc
        try:
            return dict(load_file(str(p), device="cpu"))
        except Exception as exc:  # SafetensorError, OSError: damaged or foreign file
            raise DataError(f"{p}: cannot read as a safetensors file ({type(exc).__name__}: {exc}); "
                            "is it complete?") from exc
    if suffix not in TORCH_SUFFIXES:
        raise DataError(f"{p}: unknown weights format {suffix or '(no suffix)'!r}; use .safetensors, or "
                        f"a torch state dict saved as {', '.join(TORCH_SUFFIXES)}")
    import pickle

    import torch

    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise DataError(
            f"{p}: refused to load: the file holds Python objects other than tensors and plain "
            "containers, and unpickling them could run arbitrary code. Save only the weights "
            "(torch.save(model.state_dict(), path)) or convert the file to .safetensors. "
            f"(torch: {str(exc).splitlines()[0]})") from None
    except Exception as exc:  # RuntimeError (not a zip/pickle), EOFError (truncated) ...
        raise DataError(f"{p}: cannot read as a torch weights file ({type(exc).__name__}: {exc}); "
                        "is it complete?") from exc
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            have = _names([str(k) for k in obj]) if isinstance(obj, Mapping) else type(obj).__name__
            raise DataError(f"{p}: no entry {key!r} in the file (it holds: {have})")
        obj = obj[key]
        if not _is_tensor_map(obj):
            raise DataError(f"{p}: entry {key!r} is not a mapping of names to tensors")
        return dict(obj)
    if _is_tensor_map(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for k in NESTED_KEYS:
            if k in obj and _is_tensor_map(obj[k]):
                return dict(obj[k])
        raise DataError(f"{p}: the file holds a mapping with keys {_names([str(k) for k in obj])} but no "
                        "state dict (names -> tensors); name the entry that holds it with key=...")
    raise DataError(f"{p}: the file holds a {type(obj).__name__}, not a state dict (names -> tensors)")


def load_weights(model: Any, path: str | os.PathLike[str], *, strict: bool = True, key: str | None = None,
                 strip_prefix: str = "", ignore: Sequence[str] = ()) -> LoadReport:
    """Copy the tensors of a local weights file into ``model`` (an ``nn.Module``), safely.

    ``.safetensors`` via safetensors; ``.pt``/``.pth``/``.bin``/``.ckpt`` via
    ``torch.load(weights_only=True)`` (see :func:`read_state_dict`, which also explains ``key``).
    ``strip_prefix`` is removed from the file's keys that start with it (``"module."`` of
    data-parallel checkpoints, ``"model."`` of transferkit's training bundle); file keys starting
    with any prefix in ``ignore`` are skipped (e.g. ``"_fc."``, a classifier head that is not
    part of the model).

    Every shape must match. With ``strict=True`` (default) the file must provide every key of the
    model's state dict and nothing else. Raises :class:`DataError` naming the missing,
    unexpected or mismatched keys; returns a :class:`LoadReport`.
    """
    state = read_state_dict(path, key=key)
    p = str(Path(path).expanduser())
    if strip_prefix:
        state = {(k.removeprefix(strip_prefix)): v for k, v in state.items()}
    ignored = sorted(k for k in state if any(k.startswith(i) for i in ignore))
    state = {k: v for k, v in state.items() if k not in set(ignored)}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [f"{k} (file {tuple(state[k].shape)}, model {tuple(own[k].shape)})"
                  for k in sorted(set(own) & set(state)) if tuple(state[k].shape) != tuple(own[k].shape)]
    if mismatched:
        raise DataError(f"{p}: {len(mismatched)} tensor(s) have a shape that does not match the model: "
                        f"{_names(mismatched, 6)}. The file was saved from a different architecture or "
                        "configuration (number of classes, width, bottleneck)")
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"{len(missing)} model key(s) missing from the file: {_names(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} file key(s) unknown to the model: {_names(unexpected)}")
        hint = ""
        if unexpected and missing:
            hint = (" If the names differ only by a prefix, pass strip_prefix= (e.g. 'module.' or "
                    "'model.'); skip extra entries with ignore=[...]")
        elif unexpected:
            hint = " Skip extra entries with ignore=[...] or pass strict=False"
        else:
            hint = " Pass strict=False to keep those model tensors as they are"
        raise DataError(f"{p}: " + "; ".join(parts) + "." + hint)
    common = {k: v for k, v in state.items() if k in own}
    model.load_state_dict(common, strict=False)
    return LoadReport(path=p, loaded=sorted(common), missing=missing, unexpected=unexpected, ignored=ignored)


def state_dict_sha256(module: Any) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes and raw bytes, in name order):
    equal for equal weights, different as soon as one value differs."""
    import torch

    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()
