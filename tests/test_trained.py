"""A trained model back from its record (issue 31): the weights a run saves load into the model
anyone builds with public Keras, and score what the record says."""
import keras
import pytest

import models
from bench import cli
from bench.data import cache
from bench.records import trained
from bench.records.results import Results


@pytest.fixture(scope="module")
def fishnet_run(tmp_path_factory):
    """One epoch of FishNet55 (batch norm, fused by the speed-ups) on small synthetic images, weights kept."""
    results = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(cache.CACHE_DIR_ENV, str(results.parent / "cache"))
        cli.main(["run", "--profile", "smoke", "--models", "fishnet55", "--repeats", "1", "--epochs", "1",
                  "--save-weights", "--set", "native_size=16", "--results", str(results)])
        (record,), _ = Results(results).records()
        yield results, record


@pytest.mark.slow
def test_saved_weights_of_a_model_with_batch_norm_load_with_public_keras_and_score_the_record(fishnet_run):
    results, record = fishnet_run
    assert record.spec.speedups and "weights" in record.files, record
    model = models.build("fishnet55", tuple(record.input_shape), record.num_classes, **record.spec.model_options)
    assert not any("Fused" in type(layer).__name__ for layer in model.layers)  # the stock Keras model
    model.load_weights(results / record.files["weights"])  # strict: every weight must match by name
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    images, labels = trained.test_set(results, record.run_id)
    loss, accuracy = model.evaluate(images, labels, verbose=0)
    assert accuracy == pytest.approx(record.test_accuracy, abs=1.5 / len(labels))  # float32 sums in another order
    assert loss == pytest.approx(record.test_loss, rel=1e-3)


@pytest.mark.slow
def test_load_model_gives_the_trained_model_of_a_record(fishnet_run):
    results, record = fishnet_run
    model = trained.load_model(results, record.run_id)
    loss, accuracy = model.evaluate(*trained.test_set(results, record.run_id), verbose=0)
    assert (loss, accuracy) == pytest.approx((record.test_loss, record.test_accuracy), rel=1e-3, abs=0.015)


def test_load_model_refuses_a_run_without_weights_or_record_in_one_line(tmp_path):
    with pytest.raises(ValueError, match="no record of run 0123 in "):
        trained.load_model(tmp_path, "0123")
