"""Datasets by name, as a run uses them: their sizes without loading them, their data hash, and
their images preprocessed.

What a name names, where its images come from and what they must be are its kind's
(``bench.data.kinds``: a real dataset, the embedded sample, the synthetic generator, an .npz
file, a registered dataset); its arrays are checked and hashed by ``bench.data.arrays``. The
plan writes a dataset's hash into every RunSpec (``plan_hash``, which also checks that the
subsets asked for fit the classes).

``load`` preprocesses a dataset once per setting (``bench.data.preprocessing``: stratified
training subset, channels, size) and keeps the uint8 result in the dataset cache
(``bench.data.cache``), keyed by the data hash and every parameter that changes the bytes
(``cache_key``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import psutil

from bench.data import cache, kinds, preprocessing
from bench.data.arrays import ARRAY_KEYS, BadData
from bench.data.kinds import SourceInfo
from bench.spec import Preprocess

CACHE_FORMAT = 2  # bump when the preprocessing code changes the bytes it writes (2: keyed by the data hash)
FLOAT_BYTES = 8  # a pixel as float64, the largest form a dataset's images take here (check_fits)
SAMPLE_PER_CLASS = (600, 100)  # (train, test) images per class in the embedded sample


@dataclass
class Dataset:
    """uint8 images (N, H, W, C) and int64 labels (N,), possibly memory-mapped."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    source: str
    from_cache: bool = False

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])


# ---------------------------------------------------------------- sizes, without loading


def shape_of(name: str, preprocess: Preprocess) -> tuple[tuple[int, int, int], int]:
    """(input shape, class count) of ``name`` as ``preprocess`` makes it, without loading it.

    Raises:
        ValueError: an unknown name; and, for a dataset known only by its arrays, as ``inspect``.
    """
    native = kinds.checked(name).native(preprocess)
    size = preprocess.size or native.shape[0]
    return (size, size, preprocess.channels or native.shape[2]), native.num_classes


def train_size(name: str, preprocess: Preprocess) -> int:
    """Training images of ``name`` as ``preprocess`` makes it, without preprocessing them: the
    stratified subset's size, else the canonical count of a real dataset, else what ``inspect``
    counted (remembered for a source with files)."""
    if preprocess.train_per_class is not None:
        return preprocess.train_per_class * shape_of(name, preprocess)[1]
    return _images(name, preprocess)[0]


def test_size(name: str, preprocess: Preprocess) -> int:
    """Test images of ``name`` as ``preprocess`` makes it (never a subset), counted as ``train_size``'s."""
    return _images(name, preprocess)[1]


def _images(name: str, preprocess: Preprocess) -> tuple[int, int]:
    """``name``'s (training, test) images: a real dataset's canonical counts, else ``inspect``'s."""
    known = kinds.checked(name).images()
    if known is not None:
        return known
    info = inspect(name, preprocess)
    return sum(info.train_counts), sum(info.test_counts)


def check_batch(name: str, preprocess: Preprocess, batch_size: int) -> None:
    """Raise ValueError (one line) when a batch is larger than ``name``'s training set."""
    images = train_size(name, preprocess)
    if batch_size > images:
        raise ValueError(f"run.batch_size must be at most the {images} training images of {name}. "
                         f"Received: batch_size={batch_size}")


def check_fits(name: str, preprocess: Preprocess) -> None:
    """Raise ValueError (one line) when ``name``'s images, as ``preprocess`` makes them, would
    not fit in half this machine's memory as float64 (synthetic's generator draws them so;
    training holds them as float32 beside the uint8 copy)."""
    (height, width, channels), _ = shape_of(name, preprocess)
    needed = (train_size(name, preprocess) + test_size(name, preprocess)) * height * width * channels * FLOAT_BYTES
    memory = psutil.virtual_memory().total
    if needed > memory / 2:
        raise ValueError(f"{name} at {height}x{width}x{channels} would take {needed / 2**30:.1f} GiB as floats, more "
                         f"than half this machine's {memory / 2**30:.1f} GiB; accepted: a smaller preprocess.size "
                         f"(or native_size) or preprocess.train_per_class. Received: size={preprocess.size}, "
                         f"native_size={preprocess.native_size}, train_per_class={preprocess.train_per_class}")


# ---------------------------------------------------------------- identity


def inspect(name: str, preprocess: Preprocess) -> SourceInfo:
    """The identity and class counts of ``name``'s source (``kinds.Kind.inspect``).

    Raises:
        ValueError: an unknown name. BadData, kinds.DataUnavailable: as ``kinds.Stored.read``.
        cache.CacheUnusable, cache.CacheFull: what was read cannot be remembered.
    """
    return kinds.checked(name).inspect(preprocess)


def plan_hash(name: str, preprocess: Preprocess, eval_per_class: int | None = None) -> str:
    """The data hash a plan writes into the specs of ``name``, once its source is checked and
    the stratified subsets asked for (``train_per_class``, ``eval_per_class``) fit its classes.

    Raises:
        ValueError: a subset larger than the smallest class; and as ``inspect``.
    """
    info = inspect(name, preprocess)
    if preprocess.train_per_class is not None:
        preprocessing.check_per_class("train_per_class", preprocess.train_per_class, info.train_counts, f"{name}'s training set")
    if eval_per_class is not None:
        preprocessing.check_per_class("eval_per_class", eval_per_class, info.test_counts, f"{name}'s test set")
    return info.data_hash


def make_sample(arrays: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """The embedded sample: a seeded stratified subset of ``SAMPLE_PER_CLASS`` images."""
    train_idx = preprocessing.stratified_indices(arrays["y_train"], SAMPLE_PER_CLASS[0], seed)
    test_idx = preprocessing.stratified_indices(arrays["y_test"], SAMPLE_PER_CLASS[1], seed)
    return {
        "x_train": arrays["x_train"][train_idx],
        "y_train": arrays["y_train"][train_idx],
        "x_test": arrays["x_test"][test_idx],
        "y_test": arrays["y_test"][test_idx],
    }


# ---------------------------------------------------------------- loading


def cache_key(name: str, preprocess: Preprocess, data_hash: str) -> str:
    """Hash of the source's content and every parameter that changes the cached bytes (``Kind.cache_fields``)."""
    fields = {"name": name, **kinds.kind_of(name).cache_fields(preprocess)}
    text = json.dumps({"format": CACHE_FORMAT, "data_hash": data_hash, **fields}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load(name: str, preprocess: Preprocess, data_hash: str | None = None) -> Dataset:
    """Load dataset ``name``, preprocessed as asked, from the cache when it holds a sound copy.

    Args:
        data_hash: the content the run was planned on (``RunSpec.data_hash``); None: whatever
            the source holds now.

    Raises:
        ValueError: an unknown name, or a subset larger than a class holds.
        BadData: the source is not a dataset of ``name``, or no longer holds ``data_hash``.
        kinds.DataUnavailable: no source could supply a real dataset (the message says what was tried).
        cache.CacheUnusable, cache.CacheFull: the cache cannot be written.
    """
    kind = kinds.checked(name)
    data_hash = data_hash or kind.inspect(preprocess).data_hash
    path = cache.cache_dir() / f"{Path(name).stem}-{cache_key(name, preprocess, data_hash)}"
    classes = shape_of(name, preprocess)[1]
    cache.remove_stale(path.parent)
    cached = cache.read_entry(path, ARRAY_KEYS)
    if cached is not None:
        meta, arrays = cached
        return Dataset(**arrays, num_classes=classes, source=meta["source"], from_cache=True)
    raw, source = kind.arrays(preprocess)
    found = kind.data_hash(raw)
    if found != data_hash:
        raise BadData(f"{source} changed since the run was planned: its arrays hash to {found}, the run's spec "
                      f"says {data_hash}; plan the runs again")
    arrays = preprocessing.apply(raw, preprocess, subset=kind.subset)
    request = {"name": name, **asdict(preprocess)}
    cache.write_entry(path, arrays, {"source": source, "data_hash": data_hash, "request": request})
    return Dataset(**arrays, num_classes=classes, source=source)
