"""Image folders (one sub-folder per class, read with Pillow) and the ``image_folders`` data set.

Layout (as torchvision's ``ImageFolder``, Office-31, Office-Home)::

    root/<class name>/<image>.{png,jpg,jpeg,bmp,gif,tif,tiff,webp}

Classes are the sorted sub-folder names; images are decoded to RGB (or grey with ``mode="L"``)
uint8 arrays. Pillow is imported only here (``pip install 'transferkit[vision]'``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from transferkit.core.errors import ConfigError, DataError, UnknownNameError
from transferkit.core.registries import DATASETS
from transferkit.data.dataset import Task, make_task
from transferkit.data.readers import target_side

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        raise ConfigError("reading image folders needs Pillow: pip install 'transferkit[vision]' "
                          "(or pip install pillow)") from exc
    return Image


def list_image_folder(root: str | os.PathLike[str], *, classes: Sequence[str] | None = None,
                      extensions: Sequence[str] = IMAGE_EXTENSIONS) -> tuple[list[Path], np.ndarray, list[str]]:
    """Image files, their class indices and the class names of ``root/<class>/<image>``.

    ``classes``: the class names in label order (default: the sorted sub-folders); a listed class
    without a folder is an error, folders not listed are ignored. Files are sorted per class."""
    r = Path(root).expanduser()
    if not r.is_dir():
        raise DataError(f"{r}: image folder not found (expected root/<class>/<image files>)")
    found = sorted(p.name for p in r.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = list(classes) if classes is not None else found
    if not names:
        raise DataError(f"{r}: no class sub-folders; expected root/<class name>/<image files>")
    missing = [c for c in names if not (r / c).is_dir()]
    if missing:
        raise DataError(f"{r}: no folder for class(es) {missing}; the folder has {found}")
    ext = tuple(e.lower() for e in extensions)
    files: list[Path] = []
    labels: list[int] = []
    for i, c in enumerate(names):
        imgs = sorted(p for p in (r / c).iterdir() if p.is_file() and p.suffix.lower() in ext)
        if not imgs:
            raise DataError(f"{r / c}: no image files ({', '.join(ext)})")
        files += imgs
        labels += [i] * len(imgs)
    return files, np.asarray(labels, dtype=np.int64), names


def read_image(path: str | os.PathLike[str], *, mode: Literal["RGB", "L"] = "RGB",
               size: int | tuple[int, int] | None = None) -> np.ndarray:
    """One image as uint8 ``(H, W, 3)`` (``mode="RGB"``) or ``(H, W)`` (``"L"``), resized to
    ``size`` (int: square; (height, width)) with Pillow's bicubic filter when given."""
    Image = _pil()
    p = Path(path)
    try:
        with Image.open(p) as im:
            im = im.convert(mode)
            if size is not None:
                h, w = (size, size) if isinstance(size, int) else size
                im = im.resize((w, h), Image.BICUBIC)
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{p}: image file not found") from None
    except Exception as exc:  # UnidentifiedImageError, OSError (truncated)
        raise DataError(f"{p}: cannot read as an image ({type(exc).__name__}: {exc})") from exc


def read_image_folder(root: str | os.PathLike[str], *, size: int | tuple[int, int] | None = None,
                      mode: Literal["RGB", "L"] = "RGB", classes: Sequence[str] | None = None,
                      extensions: Sequence[str] = IMAGE_EXTENSIONS) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images uint8 ``(n, H, W, 3)`` (or ``(n, H, W)`` with ``mode="L"``), labels ``(n,)`` and class
    names of an image folder (see :func:`list_image_folder`). Images of different sizes need
    ``size`` (each is resized to it)."""
    files, labels, names = list_image_folder(root, classes=classes, extensions=extensions)
    imgs = [read_image(f, mode=mode, size=size) for f in files]
    shapes = {im.shape for im in imgs}
    if len(shapes) > 1:
        eg = sorted(shapes)[:3]
        raise DataError(f"{root}: images have different sizes ({', '.join(map(str, eg))}, ...); pass size=... "
                        "to resize them all")
    return np.stack(imgs), labels, names


@DATASETS.register(
    "image_folders",
    description="Your own images: source and target folders (one sub-folder per class) through an encoder",
)
class ImageFolders:
    """One task from image folders (``root/<class>/<image>``): ``source`` (labelled), ``target``
    (adaptation data; its labels are never shown to methods) and optionally ``target_test``
    (labelled, for accuracy; else accuracy on the target itself, transductive). The source's
    classes define the labels; target folders must use the same names. Without ``target`` the task
    has no adaptation data: plain fine-tuning on the source (``source_only`` with any fine-tuning
    strategy), measured on ``target_test``; methods that adapt report that they need target data.

    ``size``: side every image is resized to when read (None: keep; all must then agree).
    Without an ``encoder`` the task holds the images as float32 ``(n, C, H, W)`` in [0, 1]
    (``mode``: ``"RGB"`` or ``"L"``); with one (e.g. ``efficientnet_lite0``) it holds the frozen
    features (``representation="features"``, through the feature cache) or the encoder's
    normalised inputs (``"inputs"``, to fine-tune the model of the same name).
    """

    name = "image_folders"

    def __init__(self, *, source: str, target: str | None = None, target_test: str | None = None,
                 size: int | None = None,
                 mode: Literal["RGB", "L"] = "RGB", encoder: str | None = None,
                 encoder_params: dict[str, Any] | None = None,
                 representation: Literal["features", "inputs"] = "features", cache_dir: str | None = None,
                 use_cache: bool = True, batch_size: int = 64, progress: bool = True,
                 task_name: str | None = None) -> None:
        from transferkit.data.text import _EncoderParams

        if mode not in ("RGB", "L"):
            raise ConfigError(f"got {mode!r}; expected 'RGB' or 'L'", "mode")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
            raise ConfigError(f"got {size!r}; expected None or a positive integer", "size")
        self.source, self.target, self.target_test = source, target, target_test
        self.size, self.mode = size, mode
        self.task_name = task_name or f"{Path(source).name}->{target_side(target, target_test).name}"
        helper = _EncoderParams()
        helper._init_encoder(encoder, encoder_params, representation, cache_dir, use_cache, batch_size, progress)
        self.encoder, self.encoded = encoder, helper.encoded

    def task_names(self) -> list[str]:
        return [self.task_name]

    def _x(self, images: np.ndarray, label: str) -> np.ndarray:
        if self.encoded is not None:
            return self.encoded(images, label=label)
        x = images.astype(np.float32) / 255.0
        return x[:, None] if x.ndim == 3 else np.moveaxis(x, -1, 1)

    def load_task(self, name: str | None = None) -> Task:
        if name is not None and name != self.task_name:
            raise UnknownNameError(f"unknown task {name!r}; the image_folders data set has one task, "
                                   f"{self.task_name!r}", "tasks")
        xs, ys, classes = read_image_folder(self.source, size=self.size, mode=self.mode)
        if self.target is not None:
            xt, yt, _ = read_image_folder(self.target, size=self.size, mode=self.mode, classes=classes)
        else:
            xt, yt = xs[:0], ys[:0]
        if self.target_test:
            xtt, ytt, _ = read_image_folder(self.target_test, size=self.size, mode=self.mode, classes=classes)
            x_test, y_test = self._x(xtt, "target_test"), ytt
            what = "no adaptation data" if self.target is None else "unlabelled target"
            notes = f"Image folders: labelled source, {what}; accuracy on target_test."
        else:
            x_test, y_test = None, yt
            notes = "Image folders: labelled source, unlabelled target; accuracy on the target itself (transductive)."
        fs = self._x(xs, "source")
        ft = self._x(xt, "target") if len(xt) else fs[:0]
        if x_test is None:
            x_test = ft
        if self.encoded is not None:
            notes += f" Inputs: {self.encoded.describe()}."
        task = make_task(fs, ys, ft, x_test, y_test, name=self.task_name, source_name=Path(self.source).name,
                         target_name=target_side(self.target, self.target_test).name, classes=classes,
                         notes=notes)
        if self.encoded is not None:
            task.feature_cache = dict(self.encoded.log)  # type: ignore[attr-defined]
        return task

    def tasks(self) -> Iterator[Task]:
        yield self.load_task()

    def __repr__(self) -> str:
        return f"ImageFolders(source={self.source!r}, target={self.target!r}, encoder={self.encoder!r})"
