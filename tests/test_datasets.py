"""A dataset of one's own: a function in a file of the user's, registered with
``@register_dataset``, imported with ``--import``, taken wherever a dataset's name is, checked
like an .npz file's arrays, and imported again by every worker that trains on it."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import config, imports, inventory
from bench.data import datasets, kinds, registry
from bench.data.arrays import check_arrays, content_hash
from bench.records.results import Results
from bench.spec import Preprocess, RunSpec

TINY_DIGITS = '''"""tinydigits: three classes of 8x8 grey images."""
import numpy as np

from bench.data import register_dataset


@register_dataset
def tinydigits():
    """Ten training and four test images per class, each class a brightness level."""
    rng = np.random.default_rng(0)
    y_train, y_test = np.repeat(np.arange(3), 10), np.repeat(np.arange(3), 4)

    def images(labels):
        return np.clip(labels[:, None, None, None] * 80 + rng.integers(0, 40, (len(labels), 8, 8, 1)), 0, 255)

    return {"x_train": images(y_train).astype(np.uint8), "y_train": y_train,
            "x_test": images(y_test).astype(np.uint8), "y_test": y_test}
'''
PATIENCE = 600  # seconds; the machine is shared


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture
def empty_registry(monkeypatch):
    """An empty dataset registry, and no tinydigits module, for each test."""
    monkeypatch.setattr(registry, "_REGISTRY", {})
    yield
    sys.modules.pop("tinydigits", None)


@pytest.fixture
def tiny(tmp_path, monkeypatch, empty_registry) -> Path:
    """tinydigits.py in the current folder, imported as ``--import tinydigits.py`` does."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tinydigits.py"
    path.write_text(TINY_DIGITS)
    imports.import_all(("tinydigits.py",))
    return path


def register(name: str, **changes):
    """Register a dataset of 3 classes of 8x8 images, with ``changes`` to its arrays."""
    def arrays():
        labels = {"y_train": np.arange(12) % 3, "y_test": np.arange(6) % 3}
        images = {f"x{key[1:]}": np.full((len(y), 8, 8), 7, np.uint8) + y[:, None, None].astype(np.uint8)
                  for key, y in labels.items()}  # one grey level per class
        return {**images, **labels, **changes}

    return registry.register_dataset(arrays, name=name)


# ---------------------------------------------------------------- by name, like a file


def test_a_registered_dataset_is_accepted_by_name_and_loads_like_an_npz_file(tiny):
    assert kinds.names() == (*kinds.NAMES, "tinydigits") and "tinydigits" not in kinds.NAMES
    kinds.checked("tinydigits")
    assert datasets.shape_of("tinydigits", Preprocess()) == ((8, 8, 1), 3)
    assert datasets.shape_of("tinydigits", Preprocess(size=16, channels=3)) == ((16, 16, 3), 3)
    assert datasets.train_size("tinydigits", Preprocess()) == 30
    assert datasets.train_size("tinydigits", Preprocess(train_per_class=4)) == 12
    label = "registered: tinydigits (tinydigits.tinydigits)"
    assert kinds.kind_of("tinydigits").where() == label and "tinydigits" in inventory.datasets_table()
    dataset = datasets.load("tinydigits", Preprocess(train_per_class=4))
    assert (dataset.input_shape, dataset.num_classes, dataset.source, dataset.from_cache) == ((8, 8, 1), 3, label, False)
    assert dataset.x_train.dtype == np.uint8 and np.bincount(dataset.y_train).tolist() == [4, 4, 4]
    again = datasets.load("tinydigits", Preprocess(train_per_class=4))
    assert again.from_cache and np.array_equal(again.x_train, dataset.x_train)


def test_its_data_hash_is_the_content_hash_of_its_arrays(tiny):
    found = registry.function("tinydigits")()
    checked = check_arrays(found, kinds.kind_of("tinydigits").expected(found), "here")
    assert datasets.plan_hash("tinydigits", Preprocess()) == content_hash(checked)


def test_an_unknown_dataset_is_refused_naming_the_registered_ones_too(tiny):
    with pytest.raises(ValueError, match=re.escape("accepted: mnist, fashion_mnist, cifar10, cifar100, synthetic, "
                                                   "fashion_mnist_sample, tinydigits, or the path of an .npz")):
        kinds.checked("svhn")


# ---------------------------------------------------------------- refused


def test_a_name_is_registered_once_and_never_over_a_built_in_one(tiny):
    with pytest.raises(ValueError, match=re.escape("A dataset named 'tinydigits' is already registered or built in")):
        register("tinydigits")
    with pytest.raises(ValueError, match=re.escape("A dataset named 'mnist' is already registered or built in")):
        register("mnist")
    for name in ("my.npz", "a/b", "", "3rd"):
        with pytest.raises(ValueError, match=re.escape(f"Received: name={name!r}")):
            register(name)
    assert registry.registered_names() == ["tinydigits"]


@pytest.mark.parametrize("changes, message", [
    (dict(x_train=np.full((12, 8, 8), 0.5, np.float32)), "x_train holds float32 pixels; accepted: uint8"),
    (dict(y_test=np.array([0, 1, 2, 0, -1, 2])), "y_test[4] is -1, outside [0, 3) (1 such labels); accepted: integers in [0, 3)"),
    (dict(y_train=np.arange(12) % 3 * 0.5), "y_train holds float64 labels; accepted: integers"),
    (dict(x_test=np.zeros((6, 9, 9), np.uint8)), "x_test has shape (6, 9, 9); accepted: (N, 8, 8, 1) or (N, 8, 8)"),
])
def test_bad_arrays_are_refused_in_one_line_naming_the_dataset(empty_registry, changes, message):
    register("bad", **changes)
    for call in (lambda: datasets.plan_hash("bad", Preprocess()), lambda: datasets.load("bad", Preprocess())):
        with pytest.raises(datasets.BadData, match=re.escape(f"registered: bad (test_datasets.register.<locals>.arrays): "
                                                         f"{message}")) as error:
            call()
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("returned, message", [
    ([1, 2], "unreadable (TypeError: returned a list; accepted: a dict of x_train, y_train, x_test, y_test)"),
    ({"x_train": 0}, "unreadable (ValueError: lacks arrays ['x_test', 'y_test', 'y_train'])"),
])
def test_a_function_that_returns_no_dataset_is_refused_in_one_line(empty_registry, returned, message):
    registry.register_dataset(lambda: returned, name="odd")
    with pytest.raises(datasets.BadData, match=re.escape(message)):
        datasets.shape_of("odd", Preprocess())


# ---------------------------------------------------------------- in the plan, and in a worker


def test_its_runs_carry_the_file_that_registers_it_outside_their_identity(tiny):
    profile = config.load_profile("smoke", {"run.models": ["mlp"], "run.datasets": ["tinydigits"],
                                            "run.imports": ["tinydigits.py"]},
                                  settings=["train_per_class=4", "batch_size=4"])
    spec = profile.specs()[0]
    code = {"module": "tinydigits", "file": str(tiny.resolve()), "sha256": imports.sha256(tiny)}
    assert (spec.dataset, spec.dataset_code, spec.model_code) == ("tinydigits", code, {})
    assert spec.data_hash == datasets.plan_hash("tinydigits", Preprocess())
    assert RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    moved = RunSpec.from_dict({**spec.to_dict(), "dataset_code": {**code, "sha256": "0" * 64}})
    assert (moved.run_id, moved.config_key) == (spec.run_id, spec.config_key)  # the data hash is its identity
    assert "dataset_code" not in config.load_profile("smoke").specs()[0].to_dict()  # other datasets: as before
    assert imports.dataset_code("mnist") == {}


@pytest.mark.slow
def test_bench_run_imports_the_file_in_the_worker_that_trains_on_its_dataset(tmp_path):
    (tmp_path / "tinydigits.py").write_text(TINY_DIGITS)
    (tmp_path / "tiny.toml").write_text('[run]\nrepeats = 1\nepochs = 3\nbatch_size = 8\ntimeout_s = 300\n'
                                        '[optimizer]\nlearning_rate = 0.05\n')  # it learns, not ends at chance (learned_nothing)
    command = [sys.executable, "-m", "bench", "run", "--import", "tinydigits.py", "--datasets", "tinydigits",
               "--models", "mlp", "--profile", "tiny.toml", "--results", "results", "--jobs", "1"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=PATIENCE)
    assert done.returncode == 0, done.stdout + done.stderr
    (record,) = Results(tmp_path / "results").records()[0]
    assert (record.spec.dataset, record.status, record.num_classes) == ("tinydigits", "ok", 3), record.error
    assert record.spec.dataset_code["file"] == str((tmp_path / "tinydigits.py").resolve())
