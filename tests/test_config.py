"""Profiles: loading, refusing bad keys and values, overrides, the plan of RunSpecs.

Everything here runs in-process and trains nothing; tests/test_runner.py drives the command.
"""
import re

import pytest

from bench import config
from bench.spec import Optimizer

pytestmark = pytest.mark.usefixtures("canonical_data")  # the shipped profiles plan real datasets

USER_PROFILE = """\
# a user's profile: only what differs from the defaults
[run]
models = ["mlp", "cnn"]
datasets = ["synthetic"]
repeats = 2
epochs = 3
seed = 10

[preprocess]
native_size = 8
channels = 1
train_per_class = 10

[optimizer]
name = "adam"
learning_rate = 0.01

[model_options.cnn]
"""


def write(path, text):
    path.write_text(text)
    return path


# ---------------------------------------------------------------- profiles


@pytest.mark.parametrize("name", config.profile_names())
def test_every_shipped_profile_loads_and_plans_runs(name, canonical_data):
    profile = config.load_profile(name)
    specs = profile.specs()
    run = profile.run
    assert profile.name == name
    variant_runs = sum(len(v.datasets or run.datasets) for v in profile.variants)
    assert len(specs) == run.repeats * (len(run.datasets) * len(run.models) + variant_runs)
    assert len({spec.run_id for spec in specs}) == len(specs)


def test_the_shipped_profiles_include_the_documented_ones():
    assert {"smoke", "quick", "table4-cpu", "paper"} <= set(config.profile_names())


def test_a_spec_names_every_model_option_defaults_included(canonical_data):
    import models

    for spec in config.load_profile("table4-cpu").specs():
        assert set(spec.model_options) == set(models.options(spec.model))
    mobilenet = next(s for s in config.load_profile("paper").specs() if s.model == "mobilenet")
    assert mobilenet.model_options == {"head_classes": 1000, "bn_momentum": 0.99}


VARIANT_PROFILE = USER_PROFILE + """
[[variants]]
model = "cnn"
options = { pool = "average" }
datasets = ["synthetic"]

[[variants]]
model = "mlp"
datasets = ["mnist"]
"""


def test_a_variant_adds_runs_of_a_model_with_other_options_on_its_datasets(tmp_path, canonical_data):
    profile = config.load_profile("table4-cpu", overrides={"run.repeats": 1})
    runs = [(s.model, s.dataset, s.model_options.get("head")) for s in profile.specs()]
    for head in ("dense", "conv", "report_conv", "report_conv_softmax"):
        assert runs.count(("fishnet55", "cifar10", head)) == 1
    assert runs.count(("fishnet55", "fashion_mnist", "dense")) == 1 and len(runs) == 13  # 10 cells + 3 heads
    only_cnn = config.load_profile(str(write(tmp_path / "v.toml", VARIANT_PROFILE)), overrides={"run.models": ["cnn"]})
    assert [s.model for s in only_cnn.specs()] == ["cnn", "cnn"] * 2  # the mlp variant's model is not chosen


@pytest.mark.parametrize("text, message", [
    ("[[variants]]\noptions = {}\n", "a [[variants]] row takes model (required)"),
    ("[[variants]]\nmodel = 'cnn'\nseed = 3\n", "accepted: model, options, datasets. Received: ['model', 'seed']"),
    ("[[variants]]\nmodel = 'cnn'\noptions = {head = 'conv'}\n", "[[variants]] cnn: unknown option 'head'"),
    ("[[variants]]\nmodel = 'mlp'\ndatasets = ['svhn']\n", "unknown dataset 'svhn'; accepted: mnist,"),
    ("[run]\neval_per_class = 0\n", "eval_per_class must be an integer >= 1"),
])
def test_bad_variants_and_eval_subsets_are_refused(tmp_path, text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        config.load_profile(str(write(tmp_path / "bad.toml", text)))


def test_a_users_toml_profile_works_and_keeps_defaults_for_what_it_leaves_out(tmp_path):
    profile = config.load_profile(str(write(tmp_path / "mine.toml", USER_PROFILE)))
    assert profile.name == "mine"
    assert profile.run.models == ("mlp", "cnn") and profile.run.batch_size == 32  # the default
    assert profile.optimizer == Optimizer(name="adam", learning_rate=0.01)
    specs = profile.specs(threads=2)
    # repeats outermost, then datasets, then models; repeat r is seeded seed + r
    assert [(s.repeat, s.model, s.seed) for s in specs] == [(0, "mlp", 10), (0, "cnn", 10), (1, "mlp", 11), (1, "cnn", 11)]
    assert all(s.threads == 2 and s.epochs == 3 and s.preprocess.native_size == 8 for s in specs)


@pytest.mark.parametrize("text, named", [
    ("[run]\nspeed = 3\n", ["run.speed", "models", "repeats", "timeout_s"]),
    ("[preprocess]\nsize = 8\nwidth = 8\n", ["preprocess.width", "native_size", "train_per_class"]),
    ("[data]\nsize = 8\n", ["[data]", "preprocess", "augment"]),
    ("[training]\nepochs = 3\n", ["[training]", "run", "optimizer", "model_options"]),
])
def test_an_unknown_profile_key_is_refused_naming_file_key_and_accepted_keys(tmp_path, text, named):
    path = write(tmp_path / "typo.toml", text)
    with pytest.raises(ValueError) as error:
        config.load_profile(str(path))
    assert str(path) in str(error.value)
    for word in named:
        assert word in str(error.value)


def test_an_unknown_model_option_is_refused_with_the_accepted_ones(tmp_path):
    path = write(tmp_path / "opt.toml", USER_PROFILE + "depth = 3\n")
    with pytest.raises(ValueError, match=r"\[model_options.cnn\]: unknown option 'depth'; accepted: "):
        config.load_profile(str(path))


@pytest.mark.parametrize("text", ["[run\nmodels = [", "[run]\nepochs = 3\nepochs = 4\n"])
def test_an_unreadable_profile_is_one_clear_error(tmp_path, text):
    path = write(tmp_path / "broken.toml", text)
    with pytest.raises(ValueError, match=f"unreadable profile {path}"):
        config.load_profile(str(path))


def test_a_profile_that_is_not_utf8_is_unreadable_not_a_crash(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# caf\xe9\n[run]\n")
    with pytest.raises(ValueError, match="unreadable profile"):
        config.load_profile(str(path))


@pytest.mark.parametrize("name, message", [
    ("nope", "Unknown profile 'nope'; accepted: "),
    ("missing.toml", "profile file not found"),
])
def test_an_unknown_profile_is_refused(name, message):
    with pytest.raises(ValueError, match=message):
        config.load_profile(name)


@pytest.mark.parametrize("name", ["...toml", ".toml", ".hidden.toml", "two words.toml"])
def test_a_profile_file_whose_name_is_no_results_folder_is_refused(tmp_path, name):
    path = write(tmp_path / name, "[run]\nepochs = 1\n")
    with pytest.raises(ValueError, match=re.escape(f"names its results folder; accepted: letters, digits, '.', '_', "
                                                   f"'-', starting with a letter or digit. Received: profile='{path}'")):
        config.load_profile(str(path))


def test_set_and_flags_override_the_profile_and_unset_flags_do_not(tmp_path):
    path = str(write(tmp_path / "mine.toml", USER_PROFILE))
    profile = config.load_profile(
        path,
        overrides={"run.epochs": 5, "run.repeats": None, "run.models": None},
        settings=["optimizer.learning_rate=1e30", "scale_pixels=false", "contrast=[0.5, 1.5]", "name=sgd"],
    )
    assert profile.run.epochs == 5 and profile.run.repeats == 2 and profile.run.models == ("mlp", "cnn")
    assert profile.optimizer.learning_rate == 1e30 and profile.optimizer.name == "sgd"
    assert profile.preprocess.scale_pixels is False and profile.augment.contrast == (0.5, 1.5)


@pytest.mark.parametrize("setting, message", [
    ("nope=1", "unknown setting 'nope'; accepted: run.recipe, run.models, "),
    ("run.nope=1", "Received: --set run.nope"),
    ("epochs", "--set takes key=value"),
    ("epochs=0", "epochs must be an integer in [1, 100000]"),
    ("repeats=two", "repeats must be an integer in [1, 1000]"),
    ("optimizer.name=rmsprop", "optimizer.name must be one of sgd, adam"),
])
def test_a_bad_set_is_refused_naming_what_is_accepted(tmp_path, setting, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("[", r"\[")):
        config.load_profile(str(write(tmp_path / "mine.toml", USER_PROFILE)), settings=[setting])


@pytest.mark.parametrize("key, value, message", [
    ("run.repeats", 0, "repeats must be an integer in [1, 1000]. Received: repeats=0"),
    ("run.models", ["mlp", "resnet"], "Unknown model 'resnet'; accepted: cnn, "),
    ("run.datasets", ["imagenet"], "Unknown dataset 'imagenet'; accepted: mnist, "),
    ("run.datasets", [], "run.datasets must be a list of names (or one comma-separated string). Received: datasets=[]"),
])
def test_bad_values_are_refused_before_anything_runs(tmp_path, key, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        config.load_profile(str(write(tmp_path / "mine.toml", USER_PROFILE)), overrides={key: value})
