"""A newcomer's path (issue 15): run from any folder, add a model or a dataset in one file of
one's own, read every profile key in docs/profiles.md.

The end-to-end tests drive the installed ``fishbench`` script (and ``python -m bench``) in a
temporary folder that holds its own ``models`` and ``bench`` packages, which must never be
imported. A run costs a few seconds, most of them TensorFlow starting in the worker.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import models
from bench import __version__, config, imports
from bench.data import cache, datasets
from bench.records.results import Results
from bench.spec import Preprocess, RunSpec
from models import registry

ROOT = Path(__file__).resolve().parent.parent
FISHBENCH = Path(sys.executable).with_name("fishbench")  # the installed entry point, beside this Python
HOSTILE = 'raise SystemExit("the current folder\'s own {} package was imported")\n'
MYNET = '''"""mynet: a model of my own."""
import keras

from models import register_model


@register_model
def mynet(input_shape, num_classes, *, width=8):
    """One convolution, global average pooling, logits."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(width, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="logits")(x), name="mynet")
'''
PATIENCE = 600  # seconds; the machine is shared


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A user's folder with packages named like fishbench's, and mynet.py; a private dataset cache."""
    for package in ("models", "bench"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(HOSTILE.format(package))
    (tmp_path / "mynet.py").write_text(MYNET)
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout, wherever the installed script points
    return tmp_path


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=PATIENCE)


# ---------------------------------------------------------------- from any folder


@pytest.mark.slow
@pytest.mark.skipif(not FISHBENCH.exists(), reason=f"no installed fishbench script beside {sys.executable}")
def test_fishbench_trains_a_model_of_ones_own_file_from_a_folder_with_its_own_models_and_bench(folder):
    # mynet learns in 4 steps at 0.01 (at the smoke profile's 0.001 a seed ends at chance: learned nothing)
    command = [str(FISHBENCH), "run", "--import", "mynet.py", "--profile", "smoke", "--models", "mynet",
               "--repeats", "2", "--epochs", "1", "--set", "learning_rate=0.01"]
    done = run(command, folder)
    assert done.returncode == 0, done.stdout + done.stderr
    records = Results(folder / "results" / "smoke").records()[0]
    assert sorted((r.spec.model, r.status) for r in records) == [("mynet", "ok")] * 2
    mine = next(r for r in records if r.spec.model == "mynet")
    mynet = (folder / "mynet.py").resolve()
    assert mine.spec.model_code == {"module": "mynet", "file": str(mynet), "sha256": imports.sha256(mynet)}
    assert mine.model_family == "mynet"
    report = run([str(FISHBENCH), "report"], folder)
    assert report.returncode == 0 and re.search(r"^mynet\s", report.stdout, re.M), report.stdout + report.stderr
    again = run(command, folder)  # the user's runs resume like any other
    assert "2 already recorded, 0 to run" in again.stdout, again.stdout + again.stderr


BROKEN = '''from models import register_model


@register_model
def broken(input_shape, num_classes, *, width=8):
    """A model whose build raises."""
    raise RuntimeError("this model does not build")
'''


@pytest.mark.slow
def test_a_model_that_fails_to_build_fails_its_runs_only_and_fishbench_exits_1_saying_why(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    (tmp_path / "broken.py").write_text(BROKEN)
    done = run([sys.executable, "-m", "bench", "run", "--import", "broken.py", "--profile", "smoke", "--models",
                "broken,mlp", "--repeats", "1", "--epochs", "1", "--set", "native_size=8"], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "warning: model 'broken' fails to build at input (8, 8, 3) with 10 classes (RuntimeError: this model " \
           "does not build); its runs will be recorded failed, the others run" in done.stderr
    assert "    failed: RuntimeError: this model does not build" in done.stdout.splitlines()
    records = Results(tmp_path / "results" / "smoke").records()[0]
    assert sorted((r.spec.model, r.status) for r in records) == [("broken", "failed"), ("mlp", "ok")]


@pytest.mark.slow
def test_python_m_bench_outside_the_checkout_ignores_the_folders_own_models(folder):
    (folder / "bench" / "__init__.py").unlink()  # a folder's own bench is what `python -m bench` runs there
    (folder / "bench").rmdir()
    done = run([sys.executable, "-m", "bench", "plan", "--import", "mynet.py", "--profile", "smoke",
                "--models", "mynet", "--repeats", "1"], folder)
    assert done.returncode == 0 and "mynet" in done.stdout, done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.skipif(not FISHBENCH.exists(), reason=f"no installed fishbench script beside {sys.executable}")
def test_list_shows_ones_own_model_beside_the_registered_ones_with_nothing_on_stderr(folder):
    done = run([str(FISHBENCH), "list", "--import", "mynet.py"], folder)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert re.search(r"^mynet\s+width=8\s", done.stdout, re.M) and re.search(r"^fishnet55\s", done.stdout, re.M)


@pytest.mark.skipif(not FISHBENCH.exists(), reason=f"no installed fishbench script beside {sys.executable}")
def test_version_and_usage_name_the_program_as_it_was_started(folder):
    assert run([str(FISHBENCH), "--version"], folder).stdout == f"fishbench {__version__}\n"
    assert run([sys.executable, "-m", "bench", "--version"], ROOT).stdout == f"python -m bench {__version__}\n"
    assert run([str(FISHBENCH), "run", "--repeats", "many"], folder).stderr.startswith("usage: fishbench run")


def test_a_worker_runs_this_installation_with_nothing_prepended():
    env = imports.child_env({"PYTHONPATH": "/elsewhere"})
    assert env["PYTHONPATH"] == f"{ROOT}{os.pathsep}/elsewhere"


# ---------------------------------------------------------------- a model of one's own


@pytest.fixture
def own_model(tmp_path, monkeypatch):
    """mynet.py loaded into this process, and gone again afterwards (registry and module)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    path = tmp_path / "mynet.py"
    path.write_text(MYNET)
    yield path
    sys.modules.pop("mynet", None)


def test_an_imported_file_registers_its_model_once_and_runs_of_it_carry_the_file_and_its_hash(own_model, monkeypatch):
    monkeypatch.chdir(own_model.parent)
    imports.import_all(("mynet.py",))
    imports.import_all(("mynet.py",))  # again: nothing happens
    assert "mynet" in models.names() and models.module("mynet") == "mynet"
    code = imports.model_code("mynet")
    assert code == {"module": "mynet", "file": str(own_model.resolve()), "sha256": imports.sha256(own_model)}
    assert imports.model_code("mlp") == {}
    profile = config.load_profile("smoke", {"run.models": ["mynet"], "run.imports": ["mynet.py"]})
    spec = profile.specs()[0]
    assert spec.model_code == code and RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    edited = RunSpec.from_dict({**spec.to_dict(), "model_code": {**code, "sha256": "0" * 64}})
    assert edited.run_id != spec.run_id and edited.config_key != spec.config_key  # another file, another model
    assert "model_code" not in config.load_profile("smoke").specs()[0].to_dict()  # shipped models: as before


def test_a_worker_refuses_a_model_file_that_changed_since_the_plan(own_model):
    code = {"module": "mynet", "file": str(own_model), "sha256": imports.sha256(own_model)}
    own_model.write_text(MYNET + "\n# edited\n")
    with pytest.raises(ValueError, match="is gone or changed since the run was planned"):
        imports.load_code(code)
    imports.load_code({**code, "sha256": imports.sha256(own_model)})
    assert "mynet" in models.names()


@pytest.mark.parametrize("item, contents, message", [
    ("absent.py", None, "cannot import 'absent.py': FileNotFoundError: no file "),
    ("broken.py", "def (:\n", "cannot import 'broken.py': SyntaxError: invalid syntax"),
    ("json.py", "", "cannot import 'json.py': ImportError: a module named 'json' is already imported"),
    ("no_such_module_here", None, "cannot import 'no_such_module_here': ModuleNotFoundError"),
    ("raises.py", "raise RuntimeError('no GPU here')\n", "cannot import 'raises.py': RuntimeError: no GPU here"),
    ("quits.py", "import sys\nsys.exit(0)\n", "cannot import 'quits.py': it called sys.exit(0) while being imported"),
    ("fails.py", "import sys\nsys.exit(3)\n", "cannot import 'fails.py': it called sys.exit(3) while being imported"),
    ("says.py", "raise SystemExit('bye')\n", "cannot import 'says.py': it called sys.exit('bye') while being imported"),
    ("dies.py", "import os\nos._exit(3)\n", "cannot import 'dies.py': it called os._exit(3) while being imported"),
])
def test_an_import_that_fails_is_refused_in_one_line(tmp_path, monkeypatch, item, contents, message):
    monkeypatch.chdir(tmp_path)
    if contents is not None:
        (tmp_path / item).write_text(contents)
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        imports.import_all((item,))
    assert "\n" not in str(error.value) and str(error.value).endswith(f"Received: import={item!r}")


@pytest.mark.slow
@pytest.mark.parametrize("contents, said", [("import sys\nsys.exit(0)\n", "sys.exit(0)"),
                                             ("import os\nos._exit(3)\n", "os._exit(3)")])
def test_an_import_that_exits_stops_fishbench_in_one_line_with_status_2(tmp_path, monkeypatch, contents, said):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    (tmp_path / "exits.py").write_text(contents)
    done = run([sys.executable, "-m", "bench", "plan", "--import", "exits.py", "--profile", "smoke"], tmp_path)
    assert (done.returncode, done.stdout) == (2, ""), done.stdout + done.stderr
    assert done.stderr.startswith(f"error: cannot import 'exits.py': it called {said} while being imported")
    assert len(done.stderr.splitlines()) == 1, done.stderr


# ---------------------------------------------------------------- a dataset of one's own


def write_npz(path: Path, image_dtype=np.uint8) -> Path:
    rng = np.random.default_rng(0)
    labels = {"y_train": np.repeat(np.arange(3), 4), "y_test": np.arange(3)}
    images = {f"x{key[1:]}": rng.integers(0, 256, (len(y), 6, 6)).astype(image_dtype) for key, y in labels.items()}
    np.savez(path, **images, **labels)
    return path


def test_a_dataset_named_by_its_npz_path_loads_and_the_spec_names_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    write_npz(tmp_path / "my.npz")
    dataset = datasets.load("my.npz", Preprocess(channels=3))
    assert (dataset.input_shape, dataset.num_classes, dataset.source) == ((6, 6, 3), 3, "file: my.npz")
    assert datasets.load("my.npz", Preprocess(channels=3)).from_cache
    write_npz(tmp_path / "my.npz", image_dtype=np.int64)  # other bytes: not the cached arrays
    with pytest.raises(ValueError, match=r"my\.npz: x_train holds int64 pixels; accepted: uint8"):
        datasets.load("my.npz", Preprocess(channels=3))
    write_npz(tmp_path / "my.npz")
    profile = config.load_profile("smoke", {"run.datasets": ["./my.npz"], "run.models": ["mlp"]},
                                  settings=["train_per_class=4", "batch_size=4"])  # my.npz: 4 training images per class
    assert {spec.dataset for spec in profile.specs()} == {str((tmp_path / "my.npz").resolve())}
    with pytest.raises(ValueError, match=r"or the path of an \.npz file .* Received: dataset='nothing\.npz'"):
        config.load_profile("smoke", {"run.datasets": ["nothing.npz"]})


# ---------------------------------------------------------------- the profile keys page


def test_the_profile_keys_page_lists_every_key_as_the_schema_says():
    page = (ROOT / "docs" / "profiles.md").read_text()
    table = page.split("<!-- profile keys:")[1].split("-->", 1)[1].split("<!-- end of the profile keys -->")[0]
    assert table.strip() == config.settings_table()
