"""Run specs and their settings: identity, JSON round trips, every value checked when made."""
import json
import re
from pathlib import Path

import pytest
from helpers import tiny_spec

import models
from bench import cli
from bench.data import kinds
from bench.records import upgrades
from bench.spec import Augment, Optimizer, Preprocess, RunSettings, RunSpec


def test_the_run_id_follows_what_is_computed_not_how_fast():
    spec = tiny_spec()
    assert tiny_spec(threads=4, timeout_s=5.0, speedups=False, tensorboard=True, save_weights=True).run_id == spec.run_id
    assert tiny_spec(seed=spec.seed + 1).run_id != spec.run_id
    assert tiny_spec(epochs=spec.epochs + 1).run_id != spec.run_id
    assert tiny_spec(repeat=1, seed=1).config_key == tiny_spec(repeat=0, seed=0).config_key


def test_a_spec_survives_a_json_round_trip():
    spec = tiny_spec()
    assert RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize("part, fields, message", [
    (Optimizer, dict(momentum="abc"), "optimizer.momentum must be a number in [0, 1]. Received: momentum='abc'"),
    (Optimizer, dict(weight_decay="abc"), "optimizer.weight_decay must be a number >= 0. Received: weight_decay='abc'"),
    (Augment, dict(flip="maybe"), "augment.flip must be true or false. Received: flip='maybe'"),
    (Augment, dict(brightness="abc"), "augment.brightness must be a number >= 0. Received: brightness='abc'"),
    (Augment, dict(contrast=0.5), "augment.contrast must be [lo, hi], two numbers with lo <= hi, each >= 0, or absent"),
    (Preprocess, dict(scale_pixels="maybe"), "preprocess.scale_pixels must be true or false"),
    (Preprocess, dict(subset_seed="abc"), "preprocess.subset_seed must be an integer in [0, 4294967295]. Received: subset_seed='abc'"),
    (RunSettings, dict(timeout_s=True), "run.timeout_s must be a number > 0 and <= 2592000. Received: timeout_s=True"),
    (RunSettings, dict(models=[]), "run.models must be a list of names"),
])
def test_every_setting_is_checked_with_its_type_and_range_when_made(part, fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        part(**fields)


def test_settings_are_widened_to_their_types():
    assert Optimizer(learning_rate=1, weight_decay=0).learning_rate == 1.0
    assert Augment(contrast=[1, 2]).contrast == (1.0, 2.0)
    assert RunSettings(models="mlp, cnn").models == ("mlp", "cnn")  # --set models=mlp,cnn
    assert RunSettings(models="mlp").models == ("mlp",)  # one name, not its letters


def test_the_data_hash_is_part_of_the_run_id():
    spec = tiny_spec()
    assert spec.data_hash == kinds.SYNTHETIC_IDENTITY
    assert tiny_spec(data_hash="0" * 64).run_id != spec.run_id
    assert tiny_spec(data_hash="0" * 64).config_key != spec.config_key  # other bytes, another configuration


@pytest.mark.parametrize("dataset, data_hash", [
    ("synthetic", kinds.SYNTHETIC_BEFORE_HASHES),  # the generator of its day
    ("fashion_mnist", kinds.CANONICAL_HASHES["fashion_mnist"]),
    ("cifar10", kinds.CANONICAL_HASHES["cifar10"]),
    ("fashion_mnist_sample", kinds.CANONICAL_HASHES["fashion_mnist_sample"]),
    ("cifar100", kinds.UNKNOWN_HASH),
])
def test_a_version_2_spec_gets_its_datasets_recorded_hash(dataset, data_hash):
    old = {k: v for k, v in tiny_spec(dataset=dataset).to_dict().items() if k != "data_hash"}
    upgraded = RunSpec.from_dict(upgrades.spec({**old, "schema_version": 2}))
    assert upgraded.schema_version == 4 and upgraded.data_hash == data_hash
    assert upgraded == tiny_spec(dataset=dataset, data_hash=data_hash)


@pytest.mark.parametrize("model", ["cnn", "mlp", "mobilenet"])
def test_a_version_3_spec_is_the_run_its_model_with_todays_default_options_plans(model):
    """The CNN gained activation and pool in version 4; every CNN run before had ReLU and max pooling."""
    planned = tiny_spec(model=model, model_options=models.options(model))
    before = {**planned.to_dict(), "schema_version": 3,
              "model_options": {k: v for k, v in planned.model_options.items() if k not in ("activation", "pool")}}
    upgraded = RunSpec.from_dict(upgrades.spec(before))
    assert upgraded.model_options == planned.model_options and upgraded.run_id == planned.run_id


def test_a_version_3_cnn_spec_keeps_the_options_it_names():
    before = {**tiny_spec(model="cnn").to_dict(), "schema_version": 3, "model_options": {"pool": "average"}}
    assert RunSpec.from_dict(upgrades.spec(before)).model_options == {"activation": "relu", "pool": "average"}


@pytest.mark.parametrize("changes, message", [
    (dict(model=5), "spec.model must be a string. Received: model=5"),
    (dict(seed="1"), "spec.seed must be an integer. Received: seed='1'"),
    (dict(epochs=2.5), "spec.epochs must be an integer. Received: epochs=2.5"),
    (dict(model_options=[]), "spec.model_options must be a table. Received: model_options=[]"),
    (dict(preprocess="size=8"), "spec.preprocess must be a table. Received: preprocess='size=8'"),
    (dict(speedups="yes"), "spec.speedups must be true or false. Received: speedups='yes'"),
    (dict(data_hash=None), "spec.data_hash must be a string. Received: data_hash=None"),
])
def test_a_spec_edited_by_hand_is_refused_naming_the_field(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        tiny_spec(**changes)


# ---------------------------------------------------------------- through the command line

BAD_SETTINGS = {  # --set KEY=VALUE on the smoke profile (synthetic, 10 test images per class)
    "momentum=abc": "optimizer.momentum must be a number in [0, 1]. Received: momentum='abc'",
    "weight_decay=abc": "optimizer.weight_decay must be a number >= 0. Received: weight_decay='abc'",
    "flip=maybe": "augment.flip must be true or false. Received: flip='maybe'",
    "brightness=abc": "augment.brightness must be a number >= 0. Received: brightness='abc'",
    "contrast=0.5": "augment.contrast must be [lo, hi], two numbers with lo <= hi, each >= 0, or absent. "
                    "Received: contrast=0.5",
    "scale_pixels=maybe": "preprocess.scale_pixels must be true or false. Received: scale_pixels='maybe'",
    "timeout_s=true": "run.timeout_s must be a number > 0 and <= 2592000. Received: timeout_s=True",
    "eval_per_class=1000": "eval_per_class is larger than the smallest class of synthetic's test set (10 images); "
                           "accepted: 1..10. Received: eval_per_class=1000",
    "models=[]": "run.models must be a list of names (or one comma-separated string). Received: models=[]",
    "subset_seed=abc": "preprocess.subset_seed must be an integer in [0, 4294967295]. Received: subset_seed='abc'",
}
BAD_SECTIONS = {  # a profile file
    "run = 3\n": "[run] must be a table of key = value lines",
    "[[variants]]\nmodel = 'cnn'\noptions = 3\n": "a [[variants]] row's options is a table",
    "optimizer = 'adam'\n": "[optimizer] must be a table of key = value lines",
}


@pytest.mark.parametrize("setting, message", BAD_SETTINGS.items(), ids=BAD_SETTINGS)
def test_a_bad_set_exits_2_with_one_line_naming_key_value_and_what_is_accepted(tmp_path, capsys, setting, message):
    status = cli.main(["run", "--profile", "smoke", "--results", str(tmp_path / "results"), "--set", setting])
    out, err = capsys.readouterr()
    assert status == cli.EXIT_BAD_INPUT == 2
    assert err == f"error: {message}\n" and out == ""
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("text, message", BAD_SECTIONS.items(), ids=BAD_SECTIONS)
def test_a_profile_section_of_the_wrong_type_exits_2_with_one_line(tmp_path, capsys, text, message):
    (tmp_path / "bad.toml").write_text(text)
    status = cli.main(["run", "--profile", str(tmp_path / "bad.toml"), "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_eval_subset_at_its_default_leaves_the_run_ids_of_shipped_records_unchanged():
    spec = tiny_spec(eval_per_class=2)
    assert "eval_subset" not in spec.to_dict() and spec.eval_subset == "stratified"
    assert tiny_spec(eval_per_class=2, eval_subset="first").run_id != spec.run_id
    assert tiny_spec(eval_per_class=2, eval_subset="first").to_dict()["eval_subset"] == "first"
    shipped = sorted((Path(__file__).parent.parent / "results" / "paper" / "runs").glob("*.json"))[:5]
    for path in shipped:  # the JSON form, of which the run id is the hash, is the record's own
        recorded = upgrades.spec(json.loads(path.read_text())["spec"])
        assert RunSpec.from_dict(recorded).to_dict() == recorded
