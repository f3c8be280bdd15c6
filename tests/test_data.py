"""Datasets: real sources, their checks and identity, the IDX reader, preprocessing, the cache,
the embedded sample."""
import errno
import os
import re
import socket
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from bench import cli
from bench.data import cache, datasets, kinds, preprocessing
from bench.data.arrays import check_arrays, content_hash, read_idx, write_idx
from bench.lifetime import process_token
from bench.spec import Preprocess

REAL_SHAPES = {  # name: (train images, test images, image shape, classes, train per class, test per class)
    "mnist": (60000, 10000, (28, 28, 1), 10, None, None),
    "fashion_mnist": (60000, 10000, (28, 28, 1), 10, 6000, 1000),
    "cifar10": (50000, 10000, (32, 32, 3), 10, 5000, 1000),
    "cifar100": (50000, 10000, (32, 32, 3), 100, 500, 100),
}


pytestmark = pytest.mark.usefixtures("private_cache")


def small_mnist(**changes) -> dict[str, np.ndarray]:
    """Twenty training and ten test images of MNIST's shape, two and one per class."""
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), "y_train": np.arange(20) % 10,
              "x_test": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), "y_test": np.arange(10)}
    return {**arrays, **changes}


def write_npz(folder: Path, name: str = "mnist", **changes) -> Path:
    path = folder / f"{name}.npz"
    np.savez(path, **small_mnist(**changes))
    return path


def real_file(name: str) -> Path:
    folder = os.environ.get(kinds.DATA_DIR_ENV)
    path = Path(folder) / f"{name}.npz" if folder else None
    if path is None or not path.exists():
        pytest.skip(f"{name}.npz not in ${kinds.DATA_DIR_ENV} ({folder or 'unset'}): the real-data test needs it")
    return path


# ---------------------------------------------------------------- real datasets


@pytest.mark.parametrize("name", sorted(REAL_SHAPES))
def test_real_dataset_loads_with_its_shapes_dtypes_and_class_counts(name):
    real_file(name)
    n_train, n_test, shape, classes, train_per_class, test_per_class = REAL_SHAPES[name]
    ds = datasets.load(name, Preprocess())
    assert ds.x_train.shape == (n_train, *shape) and ds.x_test.shape == (n_test, *shape)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.y_train.shape == (n_train,) and ds.num_classes == classes
    assert ds.source.startswith("$BENCH_DATA_DIR")
    train_counts, test_counts = np.bincount(ds.y_train), np.bincount(ds.y_test)
    assert len(train_counts) == classes
    if train_per_class:
        assert set(train_counts) == {train_per_class} and set(test_counts) == {test_per_class}


def test_fashion_mnist_at_56x56x3_is_the_repeated_bilinear_resize():
    real_file("fashion_mnist")
    ds = datasets.load("fashion_mnist", Preprocess(size=56, channels=3, train_per_class=5))
    assert ds.x_train.shape == (50, 56, 56, 3) and ds.x_test.shape == (10000, 56, 56, 3)
    assert np.array_equal(ds.x_train[..., 0], ds.x_train[..., 2])
    assert np.bincount(ds.y_train).tolist() == [5] * 10


def test_missing_dataset_is_one_clear_error_naming_every_place_tried(tmp_path, monkeypatch):
    monkeypatch.setenv(kinds.DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(kinds, "_from_keras", lambda name: (_ for _ in ()).throw(OSError("no route to host")))
    with pytest.raises(kinds.DataUnavailable) as error:
        datasets.load("cifar100", Preprocess())
    message = str(error.value)
    assert "'cifar100'" in message and str(tmp_path / "cifar100.npz") in message
    assert "keras.datasets.cifar100.load_data(): OSError: no route to host" in message
    assert "BENCH_DATA_DIR" in message and "\n" not in message


def test_debian_idx_files_are_a_fashion_mnist_source(tmp_path, monkeypatch):
    monkeypatch.delenv(kinds.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(kinds, "DEBIAN_FASHION_DIR", tmp_path)
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (20, 28, 28)), "y_train": np.arange(20) % 10,
              "x_test": rng.integers(0, 256, (10, 28, 28)), "y_test": np.arange(10)}
    for key, filename in kinds.DEBIAN_FASHION_FILES.items():
        write_idx(tmp_path / filename, arrays[key])
    with pytest.warns(UserWarning, match="is not the canonical fashion_mnist"):
        ds = datasets.load("fashion_mnist", Preprocess())
    assert ds.source == f"Debian IDX: {tmp_path}"
    assert np.array_equal(ds.x_train[..., 0], arrays["x_train"]) and np.array_equal(ds.y_test, arrays["y_test"])


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trips(tmp_path, suffix):
    images = np.random.default_rng(1).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    write_idx(tmp_path / f"images{suffix}", images)
    write_idx(tmp_path / f"labels{suffix}", labels)
    assert np.array_equal(read_idx(tmp_path / f"images{suffix}"), images)
    assert np.array_equal(read_idx(tmp_path / f"labels{suffix}"), labels)


def test_idx_reader_refuses_a_file_that_is_not_idx(tmp_path):
    (tmp_path / "junk").write_bytes(b"\x89PNG....")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        read_idx(tmp_path / "junk")


def test_idx_reader_refuses_a_truncated_file(tmp_path):
    write_idx(tmp_path / "images", np.zeros((4, 2, 2), np.uint8))
    (tmp_path / "images").write_bytes((tmp_path / "images").read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"header says \(4, 2, 2\)"):
        read_idx(tmp_path / "images")


# ---------------------------------------------------------------- preprocessing and cache


def test_second_load_is_served_from_the_cache_memory_mapped():
    preprocess = Preprocess(size=32, channels=3, train_per_class=20)
    first, second = datasets.load(kinds.SAMPLE, preprocess), datasets.load(kinds.SAMPLE, preprocess)
    assert not first.from_cache and second.from_cache
    assert isinstance(second.x_train, np.memmap)
    assert np.array_equal(first.x_train, second.x_train) and np.array_equal(first.y_test, second.y_test)


def test_cache_key_covers_what_changes_the_bytes_and_nothing_else():
    canonical = kinds.CANONICAL_HASHES["mnist"]
    key = datasets.cache_key("mnist", Preprocess(size=56), canonical)
    assert datasets.cache_key("mnist", Preprocess(size=56, scale_pixels=False), canonical) == key
    assert datasets.cache_key("mnist", Preprocess(size=56, num_classes=3, native_size=8), canonical) == key
    for changed in (dict(size=32), dict(channels=3), dict(train_per_class=5), dict(subset_seed=1)):
        assert datasets.cache_key("mnist", Preprocess(**{"size": 56, **changed}), canonical) != key
    assert datasets.cache_key("mnist", Preprocess(size=56), "0" * 64) != key  # other source bytes


def test_preprocessing_resizes_repeats_channels_and_keeps_uint8():
    ds = datasets.load("synthetic", Preprocess(size=16, channels=3, native_size=8, train_per_class=4))
    assert ds.x_train.shape == (40, 16, 16, 3) and ds.x_train.dtype == np.uint8
    assert ds.input_shape == (16, 16, 3)


def test_rgb_to_one_channel_is_luminance():
    rgb = np.array([[[[255, 0, 0], [0, 255, 0], [0, 0, 255]]]], np.uint8)
    assert preprocessing.convert_channels(rgb, 1)[..., 0].tolist() == [[[76, 150, 29]]]


def test_stratified_subset_takes_equal_counts_reproducibly():
    labels = np.repeat(np.arange(4), [10, 12, 9, 30])
    first = preprocessing.stratified_indices(labels, 9, seed=3)
    assert np.bincount(labels[first]).tolist() == [9, 9, 9, 9]
    assert np.array_equal(first, preprocessing.stratified_indices(labels, 9, seed=3))
    assert not np.array_equal(first, preprocessing.stratified_indices(labels, 9, seed=4))


def test_subset_larger_than_a_class_names_the_value_and_the_limit():
    with pytest.raises(ValueError, match=r"accepted: 1\.\.600\. Received: train_per_class=601"):
        datasets.load(kinds.SAMPLE, Preprocess(train_per_class=601))


# ---------------------------------------------------------------- synthetic and the sample


def test_synthetic_is_deterministic_in_any_shape_and_class_count():
    preprocess = Preprocess(num_classes=3, native_size=12, channels=1, train_per_class=50)
    first, second = kinds.synthetic_arrays(preprocess), kinds.synthetic_arrays(preprocess)
    assert first["x_train"].shape == (150, 12, 12, 1) and first["x_test"].shape == (30, 12, 12, 1)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert np.bincount(first["y_train"]).tolist() == [50, 50, 50]


def test_synthetic_is_learnable_by_nearest_class_mean():
    arrays = kinds.synthetic_arrays(Preprocess(num_classes=5, native_size=8, train_per_class=40))
    x_train = arrays["x_train"].reshape(200, -1).astype(float)
    means = np.stack([x_train[arrays["y_train"] == c].mean(0) for c in range(5)])
    x_test = arrays["x_test"].reshape(len(arrays["y_test"]), -1).astype(float)
    predicted = np.argmin(((x_test[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (predicted == arrays["y_test"]).mean() > 0.9


def test_embedded_sample_is_stratified_600_and_100_per_class():
    ds = datasets.load(kinds.SAMPLE, Preprocess())
    assert ds.x_train.shape == (6000, 28, 28, 1) and ds.x_test.shape == (1000, 28, 28, 1)
    assert np.bincount(ds.y_train).tolist() == [600] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10


def test_embedded_sample_is_what_the_script_builds_from_the_real_set():
    source = real_file("fashion_mnist")
    with np.load(source) as npz:
        rebuilt = datasets.make_sample({k: npz[k] for k in npz.files}, seed=0)
    with np.load(kinds.SAMPLE_FILE) as shipped:
        assert all(np.array_equal(shipped[k], rebuilt[k]) for k in rebuilt)


# ---------------------------------------------------------------- bad requests


def test_an_unknown_dataset_is_refused_naming_the_accepted_ones():
    with pytest.raises(ValueError, match=re.escape("Unknown dataset 'svhn'; accepted: mnist, fashion_mnist, cifar10, "
                                                   "cifar100, synthetic, fashion_mnist_sample, or the path of an .npz")):
        datasets.load("svhn", Preprocess())


@pytest.mark.parametrize("fields, message", [
    (dict(size=0), "preprocess.size must be an integer in [4, 1024], or absent. Received: size=0"),
    (dict(size=5.5), "preprocess.size must be an integer in [4, 1024], or absent. Received: size=5.5"),
    (dict(channels=2), "preprocess.channels must be one of 1, 3, or absent. Received: channels=2"),
    (dict(train_per_class=-1), "Received: train_per_class=-1"),
    (dict(num_classes=1), "preprocess.num_classes must be an integer in [2, 1000]. Received: num_classes=1"),
    (dict(scale_pixels="maybe"), "preprocess.scale_pixels must be true or false. Received: scale_pixels='maybe'"),
])
def test_bad_preprocessing_settings_raise_naming_the_value_and_what_is_accepted(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Preprocess(**fields)


def test_where_says_where_each_dataset_would_load_from(tmp_path, monkeypatch):
    monkeypatch.setenv(kinds.DATA_DIR_ENV, str(tmp_path))
    (tmp_path / "mnist.npz").write_bytes(b"")
    assert kinds.kind_of("mnist").where() == f"$BENCH_DATA_DIR: {tmp_path / 'mnist.npz'}"
    assert kinds.kind_of("cifar100").where().startswith("keras.datasets.cifar100.load_data()")
    assert "absent" in kinds.kind_of("cifar100").where()
    assert kinds.kind_of(kinds.SAMPLE).where() == "embedded: fashion_mnist_sample.npz"


# ---------------------------------------------------------------- identity


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_the_canonical_files_have_the_canonical_hashes_and_no_warning(name):
    real_file(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert datasets.plan_hash(name, Preprocess()) == kinds.CANONICAL_HASHES[name]


def test_the_embedded_sample_has_its_canonical_hash():
    assert datasets.plan_hash(kinds.SAMPLE, Preprocess()) == kinds.CANONICAL_HASHES[kinds.SAMPLE]


@pytest.mark.filterwarnings("ignore:.*is not the canonical")
def test_the_same_arrays_hash_alike_from_an_npz_idx_files_and_keras(tmp_path, monkeypatch):
    arrays = small_mnist()
    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "fashion_mnist.npz", **arrays)
    monkeypatch.setenv(kinds.DATA_DIR_ENV, str(tmp_path / "npz"))
    from_npz = datasets.plan_hash("fashion_mnist", Preprocess())
    (tmp_path / "idx").mkdir()
    for key, filename in kinds.DEBIAN_FASHION_FILES.items():
        write_idx(tmp_path / "idx" / filename, arrays[key])
    monkeypatch.setenv(kinds.DATA_DIR_ENV, str(tmp_path / "none"))
    monkeypatch.setattr(kinds, "DEBIAN_FASHION_DIR", tmp_path / "idx")
    from_idx = datasets.plan_hash("fashion_mnist", Preprocess())
    as_keras = {**arrays, "y_train": arrays["y_train"].astype(np.uint8)[:, None], "y_test": arrays["y_test"][:, None]}
    monkeypatch.setattr(kinds, "DEBIAN_FASHION_DIR", tmp_path / "none")
    monkeypatch.setattr(kinds, "_from_keras", lambda name: as_keras)
    assert from_npz == from_idx == datasets.plan_hash("fashion_mnist", Preprocess()) == content_hash(
        check_arrays(arrays, kinds.REAL_DATASETS["fashion_mnist"], "here"))


def bump_mtime(path: Path) -> None:
    """As a later write would: the plan remembers a source by path, size and mtime."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_a_replaced_source_gets_a_new_hash_and_cache_entry_with_a_warning_naming_file_and_hashes(tmp_path, monkeypatch):
    monkeypatch.setenv(kinds.DATA_DIR_ENV, str(tmp_path))
    path = write_npz(tmp_path)
    with pytest.warns(UserWarning) as caught:
        first = datasets.plan_hash("mnist", Preprocess())
    assert [str(w.message) for w in caught] == [
        f"$BENCH_DATA_DIR: {path} is not the canonical mnist: its arrays hash to {first}, the canonical ones to "
        f"{kinds.CANONICAL_HASHES['mnist']}; its runs are told apart by that hash"]
    assert datasets.load("mnist", Preprocess(), first).x_train.any()
    write_npz(tmp_path, x_train=np.repeat(np.eye(28, dtype=np.uint8)[None], 20, axis=0))  # a diagonal, the same size
    bump_mtime(path)
    with pytest.warns(UserWarning, match="is not the canonical mnist"):
        second = datasets.plan_hash("mnist", Preprocess())
    diagonal = datasets.load("mnist", Preprocess(), second)
    assert second != first and not diagonal.from_cache and set(np.unique(diagonal.x_train)) == {0, 1}
    entries = sorted(cache.cache_dir().glob("mnist-*"))
    assert len(entries) == 2
    for entry in entries:
        (entry / "meta.json").unlink()
    with pytest.warns(UserWarning, match="damaged"), pytest.raises(datasets.BadData, match=re.escape(
            f"$BENCH_DATA_DIR: {path} changed since the run was planned: its arrays hash to {second}, the run's spec "
            f"says {first}; plan the runs again")):
        datasets.load("mnist", Preprocess(), first)


@pytest.mark.filterwarnings("ignore:.*is not the canonical")
def test_a_plan_reads_a_source_once_per_version_of_its_file(tmp_path, monkeypatch):
    monkeypatch.setenv(kinds.DATA_DIR_ENV, str(tmp_path))
    path = write_npz(tmp_path)
    reads, read = [], kinds._from_npz
    monkeypatch.setattr(kinds, "_from_npz", lambda p: reads.append(p) or read(p))
    hashes = [datasets.plan_hash("mnist", Preprocess()) for _ in range(3)]
    bump_mtime(path)
    hashes.append(datasets.plan_hash("mnist", Preprocess()))
    assert reads == [path, path] and len(set(hashes)) == 1


BAD_SOURCES = {  # what a tester put in mnist.npz: the arrays changed, and the error's text
    "lengths differ": (dict(y_train=np.arange(19) % 10),
                       "y_train holds 19 labels for 20 images; accepted: one label per image"),
    "float images in [0, 1]": (dict(x_train=np.full((20, 28, 28), 0.5)),
                               "x_train holds float64 pixels; accepted: uint8, 0 to 255, as keras.datasets returns "
                               "them (convert images in [0, 1] with np.round(x * 255).astype(np.uint8))"),
    "label past the classes": (dict(y_test=np.arange(10) + 1),
                               "y_test[9] is 10, outside [0, 10) (1 such labels); accepted: integers in [0, 10), mnist "
                               "having 10 classes"),
    "negative label": (dict(y_train=np.arange(20) % 10 - 1), "y_train[0] is -1, outside [0, 10) (2 such labels)"),
    "float labels": (dict(y_train=np.arange(20.0) % 10), "y_train holds float64 labels; accepted: integers in [0, 10)"),
    "image shape": (dict(x_test=np.zeros((10, 32, 32, 3), np.uint8)),
                    "x_test has shape (10, 32, 32, 3); accepted: (N, 28, 28, 1) or (N, 28, 28)"),
    "label shape": (dict(y_test=np.zeros((10, 2), np.uint8)), "y_test has shape (10, 2); accepted: (N,) or (N, 1)"),
    "no images": (dict(x_train=np.zeros((0, 28, 28), np.uint8), y_train=np.zeros(0, np.uint8)),
                  "x_train holds no images; accepted: at least one"),
}


@pytest.mark.parametrize("changes, message", BAD_SOURCES.values(), ids=BAD_SOURCES)
def test_a_bad_source_is_refused_naming_the_file_and_the_fault(tmp_path, monkeypatch, changes, message):
    monkeypatch.setenv(kinds.DATA_DIR_ENV, str(tmp_path))
    path = write_npz(tmp_path, **changes)
    with pytest.raises(datasets.BadData) as error:
        datasets.plan_hash("mnist", Preprocess())
    assert str(error.value).startswith(f"$BENCH_DATA_DIR: {path}: {message}")


@pytest.mark.parametrize("content, message", [
    (b"garbage", "unreadable (ValueError: "),
    (None, "unreadable (ValueError: lacks arrays ['y_test']); accepted: uint8 x_train, y_train, x_test, y_test"),
])
def test_an_unreadable_source_is_refused_not_replaced_by_a_download(tmp_path, monkeypatch, content, message):
    monkeypatch.setenv(kinds.DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(kinds, "_from_keras", lambda name: pytest.fail("downloaded instead"))
    path = tmp_path / "mnist.npz"
    if content is None:
        np.savez(path, **{k: v for k, v in small_mnist().items() if k != "y_test"})
    else:
        path.write_bytes(content)
    with pytest.raises(datasets.BadData, match=re.escape(f"$BENCH_DATA_DIR: {path}: {message}")):
        datasets.plan_hash("mnist", Preprocess())


def test_bench_run_on_a_bad_source_exits_2_in_one_line_before_any_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(kinds.DATA_DIR_ENV, str(tmp_path))
    write_npz(tmp_path, y_train=np.arange(19) % 10)
    (tmp_path / "mine.toml").write_text('[run]\nmodels = ["mlp"]\ndatasets = ["mnist"]\n')
    status = cli.main(["run", "--profile", str(tmp_path / "mine.toml"), "--results", str(tmp_path / "results")])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err == (f"error: $BENCH_DATA_DIR: {tmp_path / 'mnist.npz'}: y_train holds 19 labels for 20 images; "
                   "accepted: one label per image\n")
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("name, preprocess, eval_per_class, message", [
    (kinds.SAMPLE, Preprocess(train_per_class=601), None, "train_per_class is larger than the smallest class of "
     "fashion_mnist_sample's training set (600 images); accepted: 1..600. Received: train_per_class=601"),
    (kinds.SAMPLE, Preprocess(), 101, "eval_per_class is larger than the smallest class of fashion_mnist_sample's "
     "test set (100 images); accepted: 1..100. Received: eval_per_class=101"),
    ("synthetic", Preprocess(train_per_class=50), 11, "eval_per_class is larger than the smallest class of "
     "synthetic's test set (10 images); accepted: 1..10. Received: eval_per_class=11"),
])
def test_a_plan_checks_the_subsets_against_the_classes(name, preprocess, eval_per_class, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        datasets.plan_hash(name, preprocess, eval_per_class)


# ---------------------------------------------------------------- a sound cache


@pytest.mark.parametrize("damage", ["zeroed", "truncated", "deleted", "meta.json deleted"])
def test_a_damaged_cache_entry_is_rebuilt_with_a_warning(damage):
    preprocess = Preprocess(train_per_class=20)
    first = datasets.load(kinds.SAMPLE, preprocess)
    (entry,) = cache.cache_dir().glob(f"{kinds.SAMPLE}-*")
    target = entry / "x_train.npy"
    if damage == "zeroed":
        target.write_bytes(bytes(target.stat().st_size))
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:-100])
    else:
        (target if damage == "deleted" else entry / "meta.json").unlink()
    with pytest.warns(UserWarning, match=re.escape(f"dataset cache entry {entry} is damaged (")):
        again = datasets.load(kinds.SAMPLE, preprocess)
    assert not again.from_cache and np.array_equal(again.x_train, first.x_train)
    assert datasets.load(kinds.SAMPLE, preprocess).from_cache


def failing_save(error):
    """np.save that writes part of a file, then fails as a full disk or a refused write does."""
    def save(file, array):
        Path(file).write_bytes(bytes(1000))
        if error is KeyboardInterrupt:
            raise KeyboardInterrupt
        raise OSError(error, os.strerror(error), str(file))
    return save


def leftovers() -> list[str]:
    """What the cache folder holds but the remembered sources: an entry, or a temporary folder."""
    return [path.name for path in cache.cache_dir().iterdir() if path.name != "sources"]


@pytest.mark.parametrize("error, raised, message", [
    (errno.ENOSPC, cache.CacheFull, "cannot be written (No space left on device); nothing half-written is left"),
    (errno.EACCES, cache.CacheUnusable, "cannot be written (Permission denied); accepted: a writable folder"),
    (KeyboardInterrupt, KeyboardInterrupt, None),
])
def test_a_failed_or_interrupted_cache_write_leaves_nothing_half_written(monkeypatch, error, raised, message):
    monkeypatch.setattr(np, "save", failing_save(error))
    with pytest.raises(raised, match=message and re.escape(message)) as caught:
        datasets.load(kinds.SAMPLE, Preprocess(train_per_class=5))
    assert "\n" not in str(caught.value) and leftovers() == []


def test_a_cache_folder_that_is_a_file_is_a_one_line_error(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "file"))
    for name in (kinds.SAMPLE, kinds.SYNTHETIC):  # writing what a plan read, and writing an entry
        with pytest.raises(cache.CacheUnusable, match=re.escape(
                f"cannot be written (Not a directory); accepted: a writable folder, created if missing. "
                f"Received: BENCH_CACHE_DIR={tmp_path / 'file'}")):
            datasets.load(name, Preprocess(train_per_class=5))


@pytest.mark.slow
@pytest.mark.parametrize("error, status", [(errno.ENOSPC, 1), (errno.EROFS, 2)])
def test_bench_run_with_a_cache_that_cannot_be_written_exits_in_one_line(tmp_path, monkeypatch, capsys, error, status):
    monkeypatch.setattr(np, "save", failing_save(error))
    assert cli.main(["run", "--profile", "smoke", "--results", str(tmp_path / "results")]) == status
    err = capsys.readouterr().err
    assert err.startswith("error: the dataset cache") and err.count("\n") == 1, err
    assert leftovers() == [] and not (tmp_path / "results").exists()


def test_the_next_load_removes_the_temporary_folders_of_dead_writers_only():
    folder = cache.cache_dir()
    folder.mkdir(parents=True)
    child = subprocess.Popen(["sleep", "60"])
    dead = process_token(child.pid)
    child.kill()
    child.wait()
    host = socket.gethostname()
    writers = {"dead": f"{host}~{dead}~0000", "alive": f"{host}~{process_token(os.getpid())}~0000",
               "elsewhere": f"another-host~{dead}~0000"}
    for name, writer in writers.items():
        (folder / f"synthetic-{name}{cache.TEMP_MARK}{writer}").mkdir()
    datasets.load(kinds.SYNTHETIC, Preprocess(native_size=8, train_per_class=2))
    assert sorted(name.split(cache.TEMP_MARK)[0] for name in leftovers() if cache.TEMP_MARK in name) == [
        "synthetic-alive", "synthetic-elsewhere"]
