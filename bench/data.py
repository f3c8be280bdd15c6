"""Datasets by name: where the real images come from, and how they are preprocessed.

Real datasets (mnist, fashion_mnist, cifar10, cifar100) are looked for, in order, in
``$BENCH_DATA_DIR/<name>.npz``, in Debian's ``dataset-fashion-mnist`` IDX files (Fashion-MNIST
only), then through ``keras.datasets.<name>.load_data()`` (which downloads or reads
``~/.keras/datasets``). ``synthetic`` is generated, ``fashion_mnist_sample`` ships inside the
package. Any other dataset is named by the path of an ``.npz`` file holding uint8 images
``x_train``, ``x_test`` and integer labels ``y_train``, ``y_test`` (classes: the largest label + 1).

Preprocessing (resize, channels, stratified training subset) is applied once and cached on
disk as uint8 ``.npy`` files keyed by every parameter that changes the bytes; later loads
memory-map the cache. Pixel scaling is not applied here: the arrays stay uint8 and the
training input pipeline scales them when ``scale_pixels`` is set, so the cache serves both.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import struct
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bench.spec import Preprocess

DATA_DIR_ENV = "BENCH_DATA_DIR"
CACHE_DIR_ENV = "BENCH_CACHE_DIR"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
ASSETS = Path(__file__).parent / "assets"
SAMPLE_FILE = ASSETS / "fashion_mnist_sample.npz"
CACHE_FORMAT = 1  # bump when the preprocessing code changes the bytes it writes


@dataclass(frozen=True)
class RealDataset:
    """A dataset with a real source: its Keras loader name, native shape and class count."""

    keras_name: str
    shape: tuple[int, int, int]
    num_classes: int


REAL_DATASETS = {
    "mnist": RealDataset("mnist", (28, 28, 1), 10),
    "fashion_mnist": RealDataset("fashion_mnist", (28, 28, 1), 10),
    "cifar10": RealDataset("cifar10", (32, 32, 3), 10),
    "cifar100": RealDataset("cifar100", (32, 32, 3), 100),
}
SYNTHETIC = "synthetic"
SAMPLE = "fashion_mnist_sample"
SAMPLE_PER_CLASS = (600, 100)  # (train, test) images per class in the embedded sample
NAMES = (*REAL_DATASETS, SYNTHETIC, SAMPLE)


class DataUnavailable(RuntimeError):
    """No source could supply a dataset; the message lists each place tried and why."""


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


def canonical(name: str) -> str:
    """How a run's spec names a dataset: a name of NAMES as it is, a file by its absolute path."""
    return str(Path(name).resolve()) if is_file(name) else name


def check_name(name: str) -> None:
    """Raise ValueError unless ``name`` is a dataset of NAMES or an existing .npz file, before any data is read."""
    if not (Path(name).is_file() if is_file(name) else name in NAMES):
        raise ValueError(f"Unknown dataset; accepted: {', '.join(NAMES)}, or the path of an .npz file with uint8 "
                         f"images x_train, x_test and integer labels y_train, y_test. Received: dataset={name!r}")


def shape_of(name: str, preprocess: Preprocess) -> tuple[tuple[int, int, int], int]:
    """(input shape, class count) of ``name`` as ``preprocess`` makes it, without loading it."""
    check_name(name)
    if name == SYNTHETIC:
        native, classes = (preprocess.native_size, 1), preprocess.num_classes
    else:
        real = REAL_DATASETS["fashion_mnist" if name == SAMPLE else name]
        native, classes = (real.shape[0], real.shape[2]), real.num_classes
    size = preprocess.size or native[0]
    return (size, size, preprocess.channels or native[1]), classes


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
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(npz.files)
        if missing:
            raise ValueError(f"{path} lacks arrays {sorted(missing)}")
        return {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}


def _from_file(name: str) -> dict[str, np.ndarray]:
    """A dataset named by its .npz path: the four arrays, checked as ``load`` needs them."""
    arrays = _from_npz(Path(name))

    def fits(key: str) -> bool:
        array = arrays[key]
        if key.startswith("x"):
            return array.dtype == np.uint8 and array.ndim in (3, 4)
        return np.issubdtype(array.dtype, np.integer)

    wrong = [f"{key} is {arrays[key].dtype} {arrays[key].shape}" for key in arrays if not fits(key)]
    if wrong:
        raise ValueError(f"{name}: {'; '.join(wrong)}; accepted: uint8 images (N, H, W) or (N, H, W, C) "
                         f"and integer labels")
    return arrays


def _from_debian_idx(directory: Path) -> dict[str, np.ndarray]:
    return {key: read_idx(directory / filename) for key, filename in DEBIAN_FASHION_FILES.items()}


def _from_keras(keras_name: str) -> dict[str, np.ndarray]:
    import keras  # late: importing TensorFlow costs seconds, and most loads never get here

    (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, keras_name).load_data()
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


@dataclass(frozen=True)
class Source:
    """One place a dataset may come from: a label, the file that marks it, and its reader."""

    label: str
    marker: Path | None  # None: no local file decides (the Keras loader)
    read: Callable[[], dict[str, np.ndarray]]


def sources(name: str) -> list[Source]:
    """The places a real dataset is looked for, in order."""
    found = []
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        npz = Path(data_dir) / f"{name}.npz"
        found.append(Source(f"${DATA_DIR_ENV}: {npz}", npz, lambda: _from_npz(npz)))
    if name == "fashion_mnist":
        idx = DEBIAN_FASHION_DIR / DEBIAN_FASHION_FILES["x_train"]
        found.append(Source(f"Debian IDX: {DEBIAN_FASHION_DIR}", idx, lambda: _from_debian_idx(DEBIAN_FASHION_DIR)))
    keras_name = REAL_DATASETS[name].keras_name
    found.append(Source(f"keras.datasets.{keras_name}.load_data()", None, lambda: _from_keras(keras_name)))
    return found


def where(name: str) -> str:
    """Where ``name`` would load from now, without downloading: for ``bench list``."""
    if name == SYNTHETIC:
        return "generated (any shape and class count)"
    if name == SAMPLE:
        return f"embedded: {SAMPLE_FILE.name}" if SAMPLE_FILE.exists() else f"missing: {SAMPLE_FILE}"
    reasons = []
    for source in sources(name):
        if source.marker is None:
            cached = Path("~/.keras/datasets").expanduser()
            return f"{source.label} (downloads unless cached in {cached}){_tried(reasons)}"
        if source.marker.exists():
            return source.label
        reasons.append(f"{source.marker} absent")
    raise AssertionError("the Keras source is always last")


def _tried(reasons: list[str]) -> str:
    return f"; not found: {', '.join(reasons)}" if reasons else ""


def _load_real(name: str) -> tuple[dict[str, np.ndarray], str]:
    failures = []
    for source in sources(name):
        if source.marker is not None and not source.marker.exists():
            failures.append(f"{source.label}: file not found")
            continue
        try:
            return source.read(), source.label
        except Exception as error:  # noqa: BLE001 - every failure is reported, none is fatal alone
            failures.append(f"{source.label}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
    tried = "; ".join(failures)
    raise DataUnavailable(
        f"dataset {name!r} could not be loaded. Tried: {tried}. "
        f"Supply it offline as {name}.npz (uint8 x_train, y_train, x_test, y_test as Keras returns them) "
        f"in a folder named by ${DATA_DIR_ENV}, or run once with internet access so Keras caches it."
    )


# ---------------------------------------------------------------- generated and embedded sets


def synthetic_arrays(preprocess: Preprocess) -> dict[str, np.ndarray]:
    """Deterministic, learnable images: each class is a fixed random pattern plus pixel noise.

    The test set has a fifth as many images per class as the training set (at least 10).
    """
    rng = np.random.default_rng(preprocess.subset_seed)
    size, channels = preprocess.native_size, preprocess.channels or 1
    prototypes = rng.uniform(40, 215, size=(preprocess.num_classes, size, size, channels))
    train_per_class = preprocess.train_per_class or 100

    def draw(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.repeat(np.arange(preprocess.num_classes), per_class)
        noise = rng.normal(0, 40, size=(labels.size, size, size, channels))
        images = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)
        order = rng.permutation(labels.size)
        return images[order], labels[order]

    x_train, y_train = draw(train_per_class)
    x_test, y_test = draw(max(10, train_per_class // 5))
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def make_sample(arrays: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """The embedded sample: a seeded stratified subset of ``SAMPLE_PER_CLASS`` images."""
    train_idx = stratified_indices(arrays["y_train"], SAMPLE_PER_CLASS[0], seed)
    test_idx = stratified_indices(arrays["y_test"], SAMPLE_PER_CLASS[1], seed)
    return {
        "x_train": arrays["x_train"][train_idx],
        "y_train": arrays["y_train"][train_idx],
        "x_test": arrays["x_test"][test_idx],
        "y_test": arrays["y_test"][test_idx],
    }


# ---------------------------------------------------------------- preprocessing


def stratified_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of ``per_class`` examples of every class, drawn without replacement.

    Raises:
        ValueError: some class holds fewer than ``per_class`` examples.
    """
    labels = np.asarray(labels).ravel()
    classes, counts = np.unique(labels, return_counts=True)
    if per_class > counts.min():
        raise ValueError(
            f"train_per_class is larger than the smallest class ({int(counts.min())} images); "
            f"accepted: 1..{int(counts.min())}. Received: train_per_class={per_class}"
        )
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in classes]
    return np.sort(np.concatenate(picks))


def _as_nhwc(images: np.ndarray) -> np.ndarray:
    return images[..., None] if images.ndim == 3 else images


def convert_channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    """Repeat grayscale to RGB (as the report did) or take RGB luminance (ITU-R 601)."""
    have = images.shape[-1]
    if channels is None or channels == have:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    luminance = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.round(luminance), 0, 255).astype(np.uint8)[..., None]


def resize(images: np.ndarray, size: int | None, chunk: int = 5000) -> np.ndarray:
    """Bilinear resize to size x size (TensorFlow's, as the report's code), rounded to uint8."""
    if size is None or images.shape[1:3] == (size, size):
        return images
    import tensorflow as tf  # late: only resizing needs it

    out = np.empty((len(images), size, size, images.shape[-1]), np.uint8)
    for start in range(0, len(images), chunk):
        batch = tf.image.resize(images[start : start + chunk], (size, size), method="bilinear")
        out[start : start + chunk] = np.clip(np.round(batch.numpy()), 0, 255).astype(np.uint8)
    return out


def apply_preprocess(arrays: dict[str, np.ndarray], name: str, preprocess: Preprocess) -> dict[str, np.ndarray]:
    """Subset, convert channels and resize; labels become flat int64."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    y_train = arrays["y_train"].ravel().astype(np.int64)
    x_train = arrays["x_train"]
    if preprocess.train_per_class is not None and name != SYNTHETIC:
        keep = stratified_indices(y_train, preprocess.train_per_class, preprocess.subset_seed)
        x_train, y_train = x_train[keep], y_train[keep]
    out = {"y_train": y_train, "y_test": arrays["y_test"].ravel().astype(np.int64)}
    for key, images in (("x_train", x_train), ("x_test", arrays["x_test"])):
        out[key] = resize(convert_channels(_as_nhwc(images), preprocess.channels), preprocess.size)
    return out


# ---------------------------------------------------------------- cache


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or Path("~/.cache/fishbench").expanduser())


def cache_key(name: str, preprocess: Preprocess, source: str) -> str:
    """Hash of every parameter that changes the cached bytes (scale_pixels does not)."""
    fields = {"name": name, **asdict(preprocess)}
    fields.pop("scale_pixels")
    if name != SYNTHETIC:
        fields.pop("num_classes")
        fields.pop("native_size")
    text = json.dumps({"format": CACHE_FORMAT, "source": source, **fields}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _source_identity(name: str) -> str:
    """What the cached bytes derive from: the generator, the sample, or the real dataset."""
    if name == SYNTHETIC:
        return "generated"
    if name == SAMPLE:
        return f"sample:{SAMPLE_FILE.stat().st_size}"
    if is_file(name):
        with open(name, "rb") as f:
            return f"file:{hashlib.file_digest(f, 'sha256').hexdigest()}"
    return f"real:{name}"


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    if not (path / "meta.json").exists():
        return None
    keys = ("x_train", "y_train", "x_test", "y_test")
    return {k: np.load(path / f"{k}.npy", mmap_mode="r") for k in keys}


def _write_cache(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write every array, then meta.json, into a temp folder renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=path.name + ".", dir=path.parent))
    for key, array in arrays.items():
        np.save(tmp / f"{key}.npy", array)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    try:
        tmp.rename(path)
    except OSError:  # another process finished the same entry first
        shutil.rmtree(tmp, ignore_errors=True)


def _raw_arrays(name: str, preprocess: Preprocess) -> tuple[dict[str, np.ndarray], str]:
    if name == SYNTHETIC:
        return synthetic_arrays(preprocess), "generated"
    if name == SAMPLE:
        return _from_npz(SAMPLE_FILE), f"embedded: {SAMPLE_FILE.name}"
    if is_file(name):
        return _from_file(name), f"file: {name}"
    return _load_real(name)


def load(name: str, preprocess: Preprocess) -> Dataset:
    """Load dataset ``name``, preprocessed as asked, from the cache when it holds it.

    Raises:
        DataUnavailable: no source could supply a real dataset (the message says what was tried).
        ValueError: an unknown name, or a subset larger than a class holds.
    """
    check_name(name)
    path = cache_dir() / f"{Path(name).stem}-{cache_key(name, preprocess, _source_identity(name))}"
    cached = _read_cache(path)
    if cached is not None:
        source = json.loads((path / "meta.json").read_text())["source"]
        return Dataset(**cached, num_classes=_classes(name, preprocess, cached), source=source, from_cache=True)
    raw, source = _raw_arrays(name, preprocess)
    arrays = apply_preprocess(raw, name, preprocess)
    _write_cache(path, arrays, {"source": source, "request": {"name": name, **asdict(preprocess)}})
    return Dataset(**arrays, num_classes=_classes(name, preprocess, arrays), source=source)


def _classes(name: str, preprocess: Preprocess, arrays: dict[str, np.ndarray]) -> int:
    if is_file(name):
        return int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    return shape_of(name, preprocess)[1]
