"""Where the benchmark data live, and checking their files against ``SHA256SUMS``.

The benchmark folder (``office_caltech10_surf/``, ``mnist_usps_jda/``, ``amazon_reviews_5000d/``,
..., ``SHA256SUMS``, ``reference_results.csv``) is found, in this order, from

1. an explicit ``data_dir`` argument,
2. the environment variable ``TRANSFERKIT_DATA``,
3. ``../shared/data`` relative to the current working directory,
4. ``<repo root>/../shared/data`` for a repository root (a folder with ``pyproject.toml``) at or
   above the current working directory,
5. the same relative to the installed package's location (last resort, editable installs).

Files are read in place, never copied. Each file a benchmark reads is checked once per process
against the ``SHA256SUMS`` list of the folder (lines ``<sha256>  ./<sub>/<file>``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from transferkit.core.errors import DataError

ENV_VAR = "TRANSFERKIT_DATA"
SUMS_FILE = "SHA256SUMS"

_lock = threading.Lock()
#: absolute paths verified in this process -> (size, mtime_ns) when they were hashed
_verified: dict[Path, tuple[int, int]] = {}
#: parsed SHA256SUMS per absolute file path -> (mtime_ns, {relative path: hash})
_sums_cache: dict[Path, tuple[int, dict[str, str]]] = {}


def _repo_roots(start: Path) -> list[Path]:
    """Folders at or above ``start`` that hold a ``pyproject.toml``."""
    return [p for p in (start, *start.parents) if (p / "pyproject.toml").is_file()]


def candidate_data_dirs() -> list[Path]:
    """The default places searched for the benchmark folder (steps 3-5 above), in order."""
    cwd = Path.cwd()
    out = [cwd.parent / "shared" / "data"]
    out += [root.parent / "shared" / "data" for root in _repo_roots(cwd)]
    out += [root.parent / "shared" / "data" for root in _repo_roots(Path(__file__).resolve().parent)]
    seen: set[Path] = set()
    unique = []
    for p in out:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The benchmark data folder (see the module docstring for the search order).

    An explicit ``data_dir`` or ``TRANSFERKIT_DATA`` that does not exist is an error (no silent
    fall-back to another folder). Raises :class:`DataError` telling how to set the folder when
    none is found.
    """
    if data_dir is not None and str(data_dir) != "":
        p = Path(data_dir).expanduser()
        if not p.is_dir():
            raise DataError(f"data_dir {str(p)!r} is not a folder; give the folder that holds the "
                            f"benchmark data (with {SUMS_FILE}), or leave data_dir unset to use "
                            f"${ENV_VAR}")
        return p.resolve()
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise DataError(f"${ENV_VAR}={env!r} is not a folder; point it at the benchmark data "
                            f"folder (the one holding {SUMS_FILE}) or unset it")
        return p.resolve()
    tried = candidate_data_dirs()
    for p in tried:
        if p.is_dir():
            return p.resolve()
    raise DataError(
        "benchmark data folder not found (looked in: " + ", ".join(str(p) for p in tried) + "). "
        f"Set the environment variable {ENV_VAR} to the folder holding {SUMS_FILE} and the "
        f"benchmark sub-folders (e.g. export {ENV_VAR}=/path/to/shared/data), or pass data_dir=..."
    )


def find_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Like :func:`resolve_data_dir` but ``None`` instead of an error when there is no folder."""
    try:
        return resolve_data_dir(data_dir)
    except DataError:
        return None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _norm_rel(rel: str) -> str:
    rel = rel.strip().replace("\\", "/")
    while rel.startswith("./"):
        rel = rel[2:]
    return rel.lstrip("*")  # "hash *file" (binary mode marker of sha256sum)


def read_sums(data_dir: Path) -> dict[str, str]:
    """``{relative path: sha256}`` from ``<data_dir>/SHA256SUMS`` (cached per process)."""
    sums_path = (data_dir / SUMS_FILE).resolve()
    try:
        mtime = sums_path.stat().st_mtime_ns
    except FileNotFoundError:
        raise DataError(
            f"{sums_path}: checksum list missing. The benchmark folder must hold {SUMS_FILE} "
            f"(lines '<sha256>  ./<folder>/<file>'); check that {ENV_VAR} / data_dir points at the "
            "benchmark data folder, or pass verify_checksums=False to skip the check"
        ) from None
    with _lock:
        hit = _sums_cache.get(sums_path)
        if hit and hit[0] == mtime:
            return hit[1]
    out: dict[str, str] = {}
    with open(sums_path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            if len(parts) != 2 or len(parts[0]) != 64:
                raise DataError(f"{sums_path}:{lineno}: expected '<sha256>  ./<path>', got {line[:80]!r}")
            out[_norm_rel(parts[1])] = parts[0].lower()
    with _lock:
        _sums_cache[sums_path] = (mtime, out)
    return out


def verified_path(data_dir: Path, rel: str, *, verify: bool = True) -> Path:
    """``data_dir / rel`` after checking that it exists and (once per process, unless the file
    changed) that its SHA-256 equals the one listed in ``SHA256SUMS``.

    Raises :class:`DataError` naming the file, the expected and the actual hash and what to do.
    """
    rel = _norm_rel(rel)
    path = data_dir / rel
    if not path.is_file():
        raise DataError(f"{path}: benchmark file missing. Restore it in the data folder "
                        f"{data_dir} (or point {ENV_VAR} / data_dir at a complete copy)")
    if not verify:
        return path
    st = path.stat()
    key = path.resolve()
    stamp = (st.st_size, st.st_mtime_ns)
    with _lock:
        if _verified.get(key) == stamp:
            return path
    sums = read_sums(data_dir)
    expected = sums.get(rel)
    if expected is None:
        raise DataError(f"{path}: not listed in {data_dir / SUMS_FILE}; add its line "
                        f"('<sha256>  ./{rel}') or pass verify_checksums=False")
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            f"{path}: checksum mismatch (expected sha256 {expected}, got {actual}); the file is "
            "damaged or a different version. Restore the original file, or pass "
            "verify_checksums=False if you changed it on purpose"
        )
    with _lock:
        _verified[key] = stamp
    return path


def clear_caches() -> None:
    """Forget verified files and parsed checksum lists (tests)."""
    with _lock:
        _verified.clear()
        _sums_cache.clear()
