"""Datasets: real sources, the IDX reader, preprocessing, the cache, the embedded sample."""
import os
import re
from pathlib import Path

import numpy as np
import pytest

from bench import data
from bench.spec import Preprocess

REAL_SHAPES = {  # name: (train images, test images, image shape, classes, train per class, test per class)
    "mnist": (60000, 10000, (28, 28, 1), 10, None, None),
    "fashion_mnist": (60000, 10000, (28, 28, 1), 10, 6000, 1000),
    "cifar10": (50000, 10000, (32, 32, 3), 10, 5000, 1000),
    "cifar100": (50000, 10000, (32, 32, 3), 100, 500, 100),
}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "cache"))


def real_file(name: str) -> Path:
    folder = os.environ.get(data.DATA_DIR_ENV)
    path = Path(folder) / f"{name}.npz" if folder else None
    if path is None or not path.exists():
        pytest.skip(f"{name}.npz not in ${data.DATA_DIR_ENV} ({folder or 'unset'}): the real-data test needs it")
    return path


# ---------------------------------------------------------------- real datasets


@pytest.mark.parametrize("name", sorted(REAL_SHAPES))
def test_real_dataset_loads_with_its_shapes_dtypes_and_class_counts(name):
    real_file(name)
    n_train, n_test, shape, classes, train_per_class, test_per_class = REAL_SHAPES[name]
    ds = data.load(name, Preprocess())
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
    ds = data.load("fashion_mnist", Preprocess(size=56, channels=3, train_per_class=5))
    assert ds.x_train.shape == (50, 56, 56, 3) and ds.x_test.shape == (10000, 56, 56, 3)
    assert np.array_equal(ds.x_train[..., 0], ds.x_train[..., 2])
    assert np.bincount(ds.y_train).tolist() == [5] * 10


def test_missing_dataset_is_one_clear_error_naming_every_place_tried(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(data, "_from_keras", lambda name: (_ for _ in ()).throw(OSError("no route to host")))
    with pytest.raises(data.DataUnavailable) as error:
        data.load("cifar100", Preprocess())
    message = str(error.value)
    assert "'cifar100'" in message and str(tmp_path / "cifar100.npz") in message
    assert "keras.datasets.cifar100.load_data(): OSError: no route to host" in message
    assert "BENCH_DATA_DIR" in message and "\n" not in message


def test_debian_idx_files_are_a_fashion_mnist_source(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path)
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (20, 28, 28)), "y_train": np.arange(20) % 10,
              "x_test": rng.integers(0, 256, (10, 28, 28)), "y_test": np.arange(10)}
    for key, filename in data.DEBIAN_FASHION_FILES.items():
        data.write_idx(tmp_path / filename, arrays[key])
    ds = data.load("fashion_mnist", Preprocess())
    assert ds.source == f"Debian IDX: {tmp_path}"
    assert np.array_equal(ds.x_train[..., 0], arrays["x_train"]) and np.array_equal(ds.y_test, arrays["y_test"])


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trips(tmp_path, suffix):
    images = np.random.default_rng(1).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    data.write_idx(tmp_path / f"images{suffix}", images)
    data.write_idx(tmp_path / f"labels{suffix}", labels)
    assert np.array_equal(data.read_idx(tmp_path / f"images{suffix}"), images)
    assert np.array_equal(data.read_idx(tmp_path / f"labels{suffix}"), labels)


def test_idx_reader_refuses_a_file_that_is_not_idx(tmp_path):
    (tmp_path / "junk").write_bytes(b"\x89PNG....")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        data.read_idx(tmp_path / "junk")


def test_idx_reader_refuses_a_truncated_file(tmp_path):
    data.write_idx(tmp_path / "images", np.zeros((4, 2, 2), np.uint8))
    (tmp_path / "images").write_bytes((tmp_path / "images").read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"header says \(4, 2, 2\)"):
        data.read_idx(tmp_path / "images")


# ---------------------------------------------------------------- preprocessing and cache


def test_second_load_is_served_from_the_cache_memory_mapped():
    preprocess = Preprocess(size=32, channels=3, train_per_class=20)
    first, second = data.load(data.SAMPLE, preprocess), data.load(data.SAMPLE, preprocess)
    assert not first.from_cache and second.from_cache
    assert isinstance(second.x_train, np.memmap)
    assert np.array_equal(first.x_train, second.x_train) and np.array_equal(first.y_test, second.y_test)


def test_cache_key_covers_what_changes_the_bytes_and_nothing_else():
    key = data.cache_key("mnist", Preprocess(size=56), "real:mnist")
    assert data.cache_key("mnist", Preprocess(size=56, scale_pixels=False), "real:mnist") == key
    assert data.cache_key("mnist", Preprocess(size=56, num_classes=3, native_size=8), "real:mnist") == key
    for changed in (dict(size=32), dict(channels=3), dict(train_per_class=5), dict(subset_seed=1)):
        assert data.cache_key("mnist", Preprocess(**{"size": 56, **changed}), "real:mnist") != key


def test_preprocessing_resizes_repeats_channels_and_keeps_uint8():
    ds = data.load("synthetic", Preprocess(size=16, channels=3, native_size=8, train_per_class=4))
    assert ds.x_train.shape == (40, 16, 16, 3) and ds.x_train.dtype == np.uint8
    assert ds.input_shape == (16, 16, 3)


def test_rgb_to_one_channel_is_luminance():
    rgb = np.array([[[[255, 0, 0], [0, 255, 0], [0, 0, 255]]]], np.uint8)
    assert data.convert_channels(rgb, 1)[..., 0].tolist() == [[[76, 150, 29]]]


def test_stratified_subset_takes_equal_counts_reproducibly():
    labels = np.repeat(np.arange(4), [10, 12, 9, 30])
    first = data.stratified_indices(labels, 9, seed=3)
    assert np.bincount(labels[first]).tolist() == [9, 9, 9, 9]
    assert np.array_equal(first, data.stratified_indices(labels, 9, seed=3))
    assert not np.array_equal(first, data.stratified_indices(labels, 9, seed=4))


def test_subset_larger_than_a_class_names_the_value_and_the_limit():
    with pytest.raises(ValueError, match=r"accepted: 1\.\.600\. Received: train_per_class=601"):
        data.load(data.SAMPLE, Preprocess(train_per_class=601))


# ---------------------------------------------------------------- synthetic and the sample


def test_synthetic_is_deterministic_in_any_shape_and_class_count():
    preprocess = Preprocess(num_classes=3, native_size=12, channels=1, train_per_class=50)
    first, second = data.synthetic_arrays(preprocess), data.synthetic_arrays(preprocess)
    assert first["x_train"].shape == (150, 12, 12, 1) and first["x_test"].shape == (30, 12, 12, 1)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert np.bincount(first["y_train"]).tolist() == [50, 50, 50]


def test_synthetic_is_learnable_by_nearest_class_mean():
    arrays = data.synthetic_arrays(Preprocess(num_classes=5, native_size=8, train_per_class=40))
    x_train = arrays["x_train"].reshape(200, -1).astype(float)
    means = np.stack([x_train[arrays["y_train"] == c].mean(0) for c in range(5)])
    x_test = arrays["x_test"].reshape(len(arrays["y_test"]), -1).astype(float)
    predicted = np.argmin(((x_test[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert (predicted == arrays["y_test"]).mean() > 0.9


def test_embedded_sample_is_stratified_600_and_100_per_class():
    ds = data.load(data.SAMPLE, Preprocess())
    assert ds.x_train.shape == (6000, 28, 28, 1) and ds.x_test.shape == (1000, 28, 28, 1)
    assert np.bincount(ds.y_train).tolist() == [600] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10


def test_embedded_sample_is_what_the_script_builds_from_the_real_set():
    source = real_file("fashion_mnist")
    with np.load(source) as npz:
        rebuilt = data.make_sample({k: npz[k] for k in npz.files}, seed=0)
    with np.load(data.SAMPLE_FILE) as shipped:
        assert all(np.array_equal(shipped[k], rebuilt[k]) for k in rebuilt)


# ---------------------------------------------------------------- bad requests


def test_an_unknown_dataset_is_refused_naming_the_accepted_ones():
    with pytest.raises(ValueError, match=re.escape("Unknown dataset; accepted: mnist, fashion_mnist, cifar10, "
                                                   "cifar100, synthetic, fashion_mnist_sample, or the path of an .npz")):
        data.load("svhn", Preprocess())


@pytest.mark.parametrize("fields, message", [
    (dict(size=0), "preprocess.size must be an integer >= 1, or absent. Received: size=0"),
    (dict(size=5.5), "preprocess.size must be an integer >= 1, or absent. Received: size=5.5"),
    (dict(channels=2), "preprocess.channels must be one of 1, 3, or absent. Received: channels=2"),
    (dict(train_per_class=-1), "Received: train_per_class=-1"),
    (dict(num_classes=1), "preprocess.num_classes must be an integer >= 2. Received: num_classes=1"),
    (dict(scale_pixels="maybe"), "preprocess.scale_pixels must be true or false. Received: scale_pixels='maybe'"),
])
def test_bad_preprocessing_settings_raise_naming_the_value_and_what_is_accepted(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Preprocess(**fields)


def test_where_says_where_each_dataset_would_load_from(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    (tmp_path / "mnist.npz").write_bytes(b"")
    assert data.where("mnist") == f"$BENCH_DATA_DIR: {tmp_path / 'mnist.npz'}"
    assert data.where("cifar100").startswith("keras.datasets.cifar100.load_data()")
    assert "absent" in data.where("cifar100")
    assert data.where(data.SAMPLE) == "embedded: fashion_mnist_sample.npz"
