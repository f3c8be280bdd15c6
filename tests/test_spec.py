"""Run specs and their settings: identity, JSON round trips, every value checked when made."""
import functools
import json
import re

import pytest

from bench import config
from bench.spec import Augment, Optimizer, Preprocess, RunSettings, RunSpec


@functools.cache
def smoke_spec() -> RunSpec:
    return config.load_profile("smoke").specs()[0]


def tiny_spec(**changes) -> RunSpec:
    return RunSpec.from_dict({**smoke_spec().to_dict(), **changes})


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
    (Preprocess, dict(subset_seed="abc"), "preprocess.subset_seed must be an integer. Received: subset_seed='abc'"),
    (RunSettings, dict(timeout_s=True), "run.timeout_s must be a number > 0. Received: timeout_s=True"),
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
