"""Every schema upgrade, of a spec and of a record, in one place (asv's habit).

A record or spec written by an older fishbench is read as the current schema: each step
writes down what the older version left implicit, and the run id is recomputed from the
upgraded spec, so a plan finds the older run again. A newer version is refused.
"""
from __future__ import annotations

from bench.data import datasets, kinds
from bench.spec import RECIPES, SPEC_SCHEMA_VERSION, RunSpec

SCHEMA_VERSION = 4  # of a record; its spec has its own (bench.spec.SPEC_SCHEMA_VERSION)


def spec(mapping: dict) -> dict:
    """A spec of an older schema version as the current one.

    Version 1 -> 2: the recipe and its augmentation parts became settings. Every version-1
    run trained what is now the corrected recipe (per-image draws, brightness as a fraction
    of full scale, clipping), so that is what the upgrade writes down.

    Version 2 -> 3: the spec names the content of its data (``data_hash``). Runs recorded
    before it ran on the canonical files, checked by checksum against the datasets' published
    ones, so the upgrade writes its dataset's canonical hash (``bench.data.kinds.CANONICAL_HASHES``):
    a plan on those files computes it again and finds the run. ``synthetic`` and the embedded
    sample have their own deterministic identity (the generator's version, the shipped file's
    hash); a dataset with no canonical hash (cifar100) gets ``bench.data.kinds.UNKNOWN_HASH``,
    which no plan computes, so such a run is never taken for one on checked bytes.

    Version 3 -> 4: the CNN gained the options ``activation`` and ``pool``. Every CNN run
    before them had ReLU and max pooling, which the upgrade writes into its options.
    """
    if mapping.get("schema_version") == 1:
        corrected = {key: value for (section, key), value in RECIPES["corrected"].items() if section == "augment"}
        mapping = {**mapping, "schema_version": 2, "recipe": "corrected",
                   "augment": {**corrected, **mapping.get("augment", {})}}
    if mapping.get("schema_version") == 2:
        mapping = {**mapping, "schema_version": 3, "data_hash": kinds.kind_of(mapping.get("dataset")).recorded_hash()}
    if mapping.get("schema_version") == 3:
        added = {"activation": "relu", "pool": "max"} if mapping.get("model") == "cnn" else {}
        mapping = {**mapping, "schema_version": SPEC_SCHEMA_VERSION,
                   "model_options": {**added, **mapping.get("model_options", {})}}
    return mapping


def record(mapping: dict) -> dict:
    """A record of an older schema as the current one; a newer one is refused.

    Version 1 -> 2: the record gains the input shape, class count and model family it was
    built with, which version 1 left to be rebuilt from the dataset and model registries.
    Versions 2 -> 3 and 3 -> 4: its spec is upgraded (``spec``).
    Either way the run id becomes the hash of the upgraded spec.

    At any version, a record that says ``diverged`` because the run learned nothing is read as
    what fishbench now records for it (``learned_nothing``).
    """
    version = mapping.get("schema_version")
    if type(version) is not int or not 1 <= version <= SCHEMA_VERSION:
        raise ValueError(f"schema_version {version!r} is not one this code reads (1 to {SCHEMA_VERSION})")
    mapping = learned_nothing_as_ok(mapping)
    if version == SCHEMA_VERSION:
        return mapping
    if not isinstance(mapping.get("spec"), dict):
        raise ValueError(f"spec is a {type(mapping.get('spec')).__name__}, not an object")
    upgraded = RunSpec.from_dict(spec(mapping["spec"]))
    mapping = {**mapping, "schema_version": SCHEMA_VERSION, "run_id": upgraded.run_id, "spec": upgraded.to_dict()}
    if version == 1:
        import models  # deferred for start-up time: imports Keras, and only version-1 records need it

        shape, classes = datasets.shape_of(upgraded.dataset, upgraded.preprocess)
        mapping = {**mapping, "input_shape": list(shape), "num_classes": classes,
                   "model_family": models.family(upgraded.model)}
    return mapping


LEARNED_NOTHING = "learned nothing: "  # how an older record's error began when the run ended at chance


def learned_nothing_as_ok(mapping: dict) -> dict:
    """A record written while a run that ended at chance with a uniform guess's loss was recorded
    ``diverged`` ("learned nothing: ..." its error), as the ok record fishbench now writes (whose
    ``RunRecord.learned_nothing`` says so): its test accuracy is a finding Table 4 shows. No version step: it
    is told by its content, which no record written since holds."""
    error = mapping.get("error")
    if (mapping.get("status") != "diverged" or not isinstance(error, str) or not error.startswith(LEARNED_NOTHING)
            or mapping.get("test_accuracy") is None):
        return mapping
    return {**mapping, "status": "ok", "error": None}
