"""One training run: the per-epoch evaluation subset and the final whole-test-set accuracy."""
import numpy as np
import pytest

from bench import config, data, train
from bench.store import RunSpec


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_DIR_ENV, str(tmp_path / "cache"))


def tiny_spec(**changes) -> RunSpec:
    """An MLP on 8x8 synthetic images: 20 training and 10 test images per class."""
    spec = config.load_profile("smoke", overrides={"run.models": ["mlp"], "run.repeats": 1}).specs()[0]
    preprocess = {**spec.preprocess, "native_size": 8, "channels": 1, "train_per_class": 20}
    return RunSpec.from_dict({**spec.to_dict(), "preprocess": preprocess, **changes})


def labels_of(pipeline) -> np.ndarray:
    return np.concatenate([labels.numpy() for _, labels in pipeline])


def test_per_epoch_evaluation_uses_a_stratified_subset_and_the_test_set_stays_whole():
    spec = tiny_spec(eval_per_class=3)
    dataset = train._dataset_for(spec)
    _, monitor, test = train.make_inputs(dataset, spec)
    assert np.bincount(labels_of(monitor)).tolist() == [3] * 10
    assert np.array_equal(labels_of(test), dataset.y_test)


def test_without_a_subset_the_per_epoch_evaluation_is_the_test_set():
    spec = tiny_spec()
    _, monitor, test = train.make_inputs(train._dataset_for(spec), spec)
    assert monitor is test


def test_the_final_accuracy_is_measured_on_the_whole_test_set(monkeypatch):
    evaluated = []
    original = train.keras.Model.evaluate

    def spy(model, x=None, **kwargs):
        evaluated.append(len(labels_of(x)))
        return original(model, x, **kwargs)

    monkeypatch.setattr(train.keras.Model, "evaluate", spy)
    record = train.run(tiny_spec(eval_per_class=2))
    assert record.status == "ok", record.error
    assert evaluated == [20] * record.spec["epochs"] + [100]  # each epoch on 2 per class, then all
    assert round(record.test_accuracy * 100, 6) == int(round(record.test_accuracy * 100, 6))


def test_a_record_says_how_busy_the_machine_was_at_its_start_and_end(monkeypatch):
    loads = iter([3.5, 4.25])
    monkeypatch.setattr(train.environment, "load_average", lambda: next(loads))
    record = train.run(tiny_spec())
    assert (record.environment["load_at_start"], record.environment["load_at_end"]) == (3.5, 4.25)
