"""A dataset's four arrays: checked as a dataset of a given shape and classes, hashed by content,
read from and written to IDX files (as MNIST ships).

``check_arrays`` takes what a source returned to uint8 images (N, H, W, C) and int64 labels (N,)
of the shape and classes expected (``bench.data.kinds``: a real dataset's, or a file's own), or
says in one line what is wrong; ``content_hash`` of the checked arrays is a dataset's identity,
so the same images hash alike from an .npz, IDX files or Keras.
"""
from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

from bench.data import preprocessing
from bench.data.registry import RealDataset
from bench.spec import MAX_CLASSES, MIN_IMAGE_SIZE

ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")
ACCEPTED_FILE = "uint8 x_train, y_train, x_test, y_test as keras.datasets returns them"


class BadData(ValueError):
    """A source's arrays are not a dataset of its name, or not the ones planned; the message names the file."""


def check_arrays(arrays: dict[str, np.ndarray], real: RealDataset, label: str) -> dict[str, np.ndarray]:
    """``arrays`` as a dataset like ``real``: images uint8 (N, H, W, C) of its shape, labels int64 (N,).

    Nothing is converted but the layout: a single-channel set may come as (N, H, W), labels as
    (N, 1), of any integer type. Float images (say in [0, 1]) are refused, not guessed at.

    Raises:
        BadData: ``label``, and the first thing wrong: an image type, shape or count, an image
            smaller than MIN_IMAGE_SIZE or of other than 1 or 3 channels, one value in every
            pixel (a constant set), a label type or shape, a length that differs between images
            and labels, a label outside [0, classes) (the first one's index named), one class.
            (A NaN cannot be there: images are uint8, labels integers.)
    """
    checked = {}
    for part in ("train", "test"):
        images, labels = np.asarray(arrays[f"x_{part}"]), np.asarray(arrays[f"y_{part}"])
        problem = _images_problem(images, f"x_{part}", real)
        problem = problem or _labels_problem(labels, f"y_{part}", len(images), real)
        if problem:
            raise BadData(f"{label}: {problem}")
        checked[f"x_{part}"], checked[f"y_{part}"] = preprocessing.as_nhwc(images), labels.reshape(-1).astype(np.int64)
    return checked


def _images_problem(images: np.ndarray, key: str, real: RealDataset) -> str | None:
    height, width, channels = real.shape
    shapes = f"(N, {height}, {width}, {channels})" + (f" or (N, {height}, {width})" if channels == 1 else "")
    if images.dtype != np.uint8:
        return (f"{key} holds {images.dtype} pixels; accepted: uint8, 0 to 255, as keras.datasets returns them "
                "(convert images in [0, 1] with np.round(x * 255).astype(np.uint8))")
    if images.ndim not in (3, 4) or preprocessing.as_nhwc(images).shape[1:] != real.shape:
        return f"{key} has shape {images.shape}; accepted: {shapes}"
    if not len(images):
        return f"{key} holds no images; accepted: at least one"
    if min(height, width) < MIN_IMAGE_SIZE or channels not in (1, 3):
        return (f"{key} holds {height}x{width} images of {channels} channels; accepted: at least "
                f"{MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} pixels, 1 (grey) or 3 (RGB) channels")
    if images.min() == images.max():
        return f"{key} holds one value, {images.flat[0]}, in every pixel of every image; accepted: images that differ"
    return None


def _labels_problem(labels: np.ndarray, key: str, images: int, real: RealDataset) -> str | None:
    classes = real.num_classes
    if not np.issubdtype(labels.dtype, np.integer):
        return f"{key} holds {labels.dtype} labels; accepted: integers in [0, {classes})"
    if labels.ndim not in (1, 2) or labels.shape[1:] not in ((), (1,)):
        return f"{key} has shape {labels.shape}; accepted: (N,) or (N, 1)"
    if len(labels) != images:
        return f"{key} holds {len(labels)} labels for {images} images; accepted: one label per image"
    outside = np.flatnonzero((labels < 0) | (labels >= classes))
    if outside.size:
        first = int(outside[0])
        return (f"{key}[{first}] is {labels.reshape(-1)[first]}, outside [0, {classes}) ({outside.size} such labels); "
                f"accepted: integers in [0, {classes}), {real.keras_name} having {classes} classes"
                + (f" (at most {MAX_CLASSES})" if classes == MAX_CLASSES else ""))
    if classes < 2:
        return f"{key} holds one class; accepted: labels of at least two classes"
    return None


def content_hash(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 (hex) of checked arrays (``check_arrays``): each one's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for key in ARRAY_KEYS:
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()




def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (as MNIST ships), gzipped or not, into a uint8 array.

    Raises:
        ValueError: the file is not unsigned-byte IDX or its size disagrees with its header.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {data.size} bytes")
    return data.reshape(dims)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
