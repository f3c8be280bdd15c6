"""One training run: the per-epoch evaluation subset, the final whole-test-set accuracy, divergence."""
import dataclasses
import json
import math

import numpy as np
import pytest
import tensorflow as tf

import models
from bench import config
from bench.data import datasets
from bench.records import store
from bench.records.phases import Phases
from bench.run import train
from bench.spec import Augment, RunSpec

pytestmark = pytest.mark.usefixtures("private_cache")


def small_spec(**changes) -> RunSpec:
    """A run of the smoke profile (its MLP unless changed) on 8x8 synthetic images: 20 training
    and 10 test images per class."""
    spec = config.load_profile("smoke", overrides={"run.models": ["mlp"], "run.repeats": 1}).specs()[0]
    preprocess = dataclasses.replace(spec.preprocess, native_size=8, channels=1, train_per_class=20)
    return dataclasses.replace(spec, preprocess=preprocess, **changes)


def labels_of(pipeline) -> np.ndarray:
    return np.concatenate([labels.numpy() for _, labels in pipeline])


def test_per_epoch_evaluation_uses_a_stratified_subset_and_the_test_set_stays_whole():
    spec = small_spec(eval_per_class=3)
    dataset = datasets.load(spec.dataset, spec.preprocess)
    _, monitor, test = train.make_inputs(dataset, spec)
    assert np.bincount(labels_of(monitor)).tolist() == [3] * 10
    assert np.array_equal(labels_of(test), dataset.y_test)


def test_without_a_subset_the_per_epoch_evaluation_is_the_test_set():
    spec = small_spec()
    _, monitor, test = train.make_inputs(datasets.load(spec.dataset, spec.preprocess), spec)
    assert monitor is test


def test_every_input_pipeline_runs_without_tf_data_autotuning_and_gives_the_same_batches_twice():
    spec = small_spec(eval_per_class=3)
    pipelines = train.make_inputs(datasets.load(spec.dataset, spec.preprocess), spec)
    assert [pipeline.options().autotune.enabled for pipeline in pipelines] == [False] * 3
    again = train.make_inputs(datasets.load(spec.dataset, spec.preprocess), spec)[0]
    assert all(np.array_equal(a[0].numpy(), b[0].numpy()) for a, b in zip(pipelines[0], again))


@pytest.mark.slow
def test_the_final_accuracy_is_measured_on_the_whole_test_set(monkeypatch):
    evaluated = []
    original = train.keras.Model.evaluate

    def spy(model, x=None, **kwargs):
        evaluated.append(len(labels_of(x)))
        return original(model, x, **kwargs)

    monkeypatch.setattr(train.keras.Model, "evaluate", spy)
    record = train.run(small_spec(eval_per_class=2))
    assert record.status == "ok", record.error
    assert evaluated == [20] * record.spec.epochs + [100]  # each epoch on 2 per class, then all
    assert round(record.test_accuracy * 100, 6) == int(round(record.test_accuracy * 100, 6))


@pytest.mark.slow
def test_a_record_says_how_busy_the_machine_was_at_its_start_and_end(monkeypatch):
    loads = iter([3.5, 4.25])
    monkeypatch.setattr(train.environment, "load_average", lambda: next(loads))
    record = train.run(small_spec())
    assert (record.environment["load_at_start"], record.environment["load_at_end"]) == (3.5, 4.25)


# ---------------------------------------------------------------- the two recipes' augmentation

REPORT = Augment(brightness=0.2, contrast=(0.5, 1.5), draws="batch", brightness_unit="pixel", clip=False)
CORRECTED = Augment(brightness=0.2, contrast=(0.5, 1.5))
SEED = tf.constant([7, 11], tf.int64)


def grey_batch(levels, size=4) -> tf.Tensor:
    """A batch of flat 3-channel images, one grey level each."""
    return tf.constant(np.broadcast_to(np.asarray(levels, "float32")[:, None, None, None], (len(levels), size, size, 3)))


def brightness_deltas(augment: Augment, full_scale: float) -> np.ndarray:
    """The brightness delta each image got: flat images keep their mean under contrast."""
    images = grey_batch(np.linspace(0.3, 0.7, 8) * full_scale)
    out = train.augment_batch(images, SEED, dataclasses.replace(augment, contrast=None), full_scale)
    return (out - images).numpy()[:, 0, 0, 0]


def contrast_factors(augment: Augment, full_scale: float) -> np.ndarray:
    """The contrast factor each image got: (out - mean) / (in - mean) of a two-level image."""
    half = np.zeros((8, 4, 4, 3), "float32")
    half[:, :, :2] = 0.4 * full_scale
    half[:, :, 2:] = 0.6 * full_scale
    images = tf.constant(half)
    out = train.augment_batch(images, SEED, dataclasses.replace(augment, brightness=0.0), full_scale).numpy()
    return (out[:, 0, 0, 0] - 0.5 * full_scale) / (-0.1 * full_scale)


def test_the_report_recipe_draws_one_brightness_delta_and_contrast_factor_per_batch():
    deltas, factors = brightness_deltas(REPORT, 255.0), contrast_factors(REPORT, 255.0)
    assert np.allclose(deltas, deltas[0], atol=1e-4) and deltas[0] != 0
    assert np.allclose(factors, factors[0], atol=1e-5) and 0.5 <= factors[0] <= 1.5


def test_the_corrected_recipe_draws_them_per_image():
    deltas, factors = brightness_deltas(CORRECTED, 1.0), contrast_factors(CORRECTED, 1.0)
    assert len(set(np.round(deltas, 6))) == len(deltas) and np.all(np.abs(deltas) <= 0.2)
    assert len(set(np.round(factors, 6))) == len(factors) and np.all((0.5 <= factors) & (factors <= 1.5))


def test_the_report_brightness_is_at_most_0_2_grey_levels_on_raw_pixels():
    for seed in range(20):
        images = grey_batch([100.0, 200.0])
        out = train.augment_batch(images, tf.constant([seed, 1], tf.int64), dataclasses.replace(REPORT, contrast=None), 255.0)
        assert np.all(np.abs((out - images).numpy()) <= 0.2 + 1e-4)


def test_the_report_recipe_clips_nothing_and_the_corrected_one_keeps_pixels_in_range():
    images = tf.constant(np.tile([0.0, 255.0], 8 * 4 * 2 * 3).reshape(8, 4, 4, 3).astype("float32"))
    strong = dict(brightness=0.0, contrast=(1.5, 1.5))
    report = train.augment_batch(images, SEED, dataclasses.replace(REPORT, **strong), 255.0).numpy()
    corrected = train.augment_batch(images, SEED, dataclasses.replace(CORRECTED, **strong), 255.0).numpy()
    assert report.min() < 0 and report.max() > 255  # (x - 127.5) * 1.5 + 127.5
    assert corrected.min() == 0 and corrected.max() == 255


def test_hue_and_saturation_per_batch_are_tf_images_own_ops_with_one_value():
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (4, 6, 6, 3)).astype("float32"))
    colour = Augment(hue=0.2, saturation=(0.5, 5.0), draws="batch", clip=False)
    out = train.augment_batch(images, SEED, colour, 255.0).numpy()
    seeds = tf.random.experimental.stateless_split(SEED, num=5)
    hue = tf.random.stateless_uniform((), seed=seeds[3], minval=-0.2, maxval=0.2)
    saturation = tf.random.stateless_uniform((), seed=seeds[4], minval=0.5, maxval=5.0)
    expected = tf.image.adjust_saturation(tf.image.adjust_hue(images, hue), saturation).numpy()
    assert np.allclose(out, expected, atol=1e-3)


@pytest.mark.parametrize("head, from_logits", [("dense", True), ("conv", True), ("report_conv", False),
                                                ("report_conv_softmax", False)])
def test_the_loss_takes_the_output_as_the_model_says(head, from_logits):
    options = {**models.options("fishnet55"), "head": head}
    spec = dataclasses.replace(small_spec(), model="fishnet55", model_options=options)
    model = train.build_model(spec, (8, 8, 1), 10, steps_per_epoch=4)
    assert model.loss.from_logits is from_logits


# ---------------------------------------------------------------- divergence


def epochs(*losses) -> list[dict]:
    return [{"epoch": e, "loss": loss} for e, loss in enumerate(losses, 1)]


@pytest.mark.parametrize("history, test_loss, test_accuracy, reason", [
    (epochs(2.3, 1.2, 0.6), 0.7, 0.8, None),  # learning
    (epochs(2.3, 2.3, 2.3), 2.25, 0.1, None),  # at chance, but a loss better than a uniform guess's: learning
    (epochs(2.3, 2.3, 2.3), 2.2, 0.3, None),  # learning, slowly
    (epochs(0.001, 0.02, 0.03), 0.05, 0.99, None),  # a tiny loss wobbling, below log(10)
    (epochs(2.3, math.nan), math.nan, 0.1, "loss became nan in epoch 2"),
    (epochs(2.3, 1.0), math.inf, 0.1, "test loss became inf after epoch 2"),
    (epochs(2.3, 40.0, 24.0), 30.0, 0.3, "training loss grew from 2.3 in epoch 1 to 24 in epoch 3, past 10 times the "
                                         "first and log(10) = 2.3"),
    (epochs(1.1e6, 2.0e6, 1.4e6), 1.5e6, 0.1, None),  # learned nothing (a finding, not a divergence)
    (epochs(2.3, 2.3, 2.3), 2.3026, 0.1, None),  # learned nothing: the uniform guess itself
])
def test_divergence_is_read_from_the_losses(history, test_loss, test_accuracy, reason):
    assert train.divergence(history, test_loss, num_classes=10) == reason


@pytest.mark.parametrize("test_loss, test_accuracy, nothing", [
    (2.3026, 0.1, True),  # the uniform guess itself
    (1.5e6, 0.1, True),  # thrown off by its steps, at chance
    (2.3026, 0.15, True),  # at most 1.5 x chance
    (2.25, 0.1, False),  # at chance, but a loss better than a uniform guess's: learning
    (2.3026, 0.2, False),  # past chance
])
def test_a_run_learned_nothing_when_it_ends_at_chance_with_a_uniform_guess_loss(test_loss, test_accuracy, nothing):
    assert store.learned_nothing(test_loss, test_accuracy, num_classes=10) is nothing


@pytest.mark.slow
def test_a_run_at_a_huge_learning_rate_is_recorded_diverged_with_the_reason():
    spec = small_spec(optimizer=dataclasses.replace(small_spec().optimizer, learning_rate=1e6))
    record = train.run(spec)
    assert record.status == "diverged" or record.learned_nothing, (record.status, record.test_loss, record.history)
    assert record.learned_nothing or record.error.startswith(("loss became", "test loss became", "training loss grew"))
    assert json.loads(json.dumps(record.to_dict(), allow_nan=False))["status"] == record.status  # strict JSON


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "cnn"])
@pytest.mark.parametrize("learning_rate", [1.0, 10.0])
def test_a_run_that_ends_at_chance_with_a_uniform_guess_loss_is_ok_and_flagged_learned_nothing(model, learning_rate):
    spec = small_spec(model=model, model_options=models.options(model))
    spec = dataclasses.replace(spec, optimizer=dataclasses.replace(spec.optimizer, learning_rate=learning_rate))
    record = train.run(spec)
    assert record.test_accuracy <= 0.15, record.history  # these settings do end at chance
    assert (record.status, record.error, record.learned_nothing) == ("ok", None, True), (record.test_loss, record.history)


# ---------------------------------------------------------------- where the run's time goes


class FakeClock:
    """A seconds clock that moves only when a test advances it."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def advancing(clock: FakeClock, seconds: float, function):
    """``function`` that takes ``seconds`` on the fake clock."""
    def slow(*args, **kwargs):
        clock.advance(seconds)
        return function(*args, **kwargs)
    return slow


@pytest.fixture
def fake_times(monkeypatch):
    """A fake clock on which loading the data takes 2 s, the pipelines 0.5 s, building 3 s, an
    evaluation outside fit 4 s, training epoch 1 takes 5 s and the others 1 s, each evaluation
    in fit 0.25 s."""
    clock, fitting = FakeClock(), []
    fit, evaluate = train.keras.Model.fit, train.keras.Model.evaluate

    def fit_flagged(model, *args, **kwargs):
        fitting.append(True)  # fit evaluates each epoch through Model.evaluate
        try:
            return fit(model, *args, **kwargs)
        finally:
            fitting.pop()

    def evaluate_apart(model, *args, **kwargs):
        clock.advance(0.0 if fitting else 4.0)
        return evaluate(model, *args, **kwargs)

    monkeypatch.setattr(train.datasets, "load", advancing(clock, 2.0, train.datasets.load))
    monkeypatch.setattr(train, "make_inputs", advancing(clock, 0.5, train.make_inputs))
    monkeypatch.setattr(train, "build_model", advancing(clock, 3.0, train.build_model))
    monkeypatch.setattr(train.keras.Model, "fit", fit_flagged)
    monkeypatch.setattr(train.keras.Model, "evaluate", evaluate_apart)

    class SlowEpochs(train.EpochTimer):
        def on_test_begin(self, logs=None):
            clock.advance(5.0 if not self.epochs else 1.0)
            super().on_test_begin(logs)

        def on_epoch_end(self, epoch, logs=None):
            clock.advance(0.25)
            super().on_epoch_end(epoch, logs)

    monkeypatch.setattr(train, "EpochTimer", SlowEpochs)
    return clock


@pytest.mark.slow
def test_a_record_says_where_the_runs_time_went_on_the_clock_it_is_given(fake_times):
    spec = small_spec(eval_per_class=2, epochs=3)
    datasets.load(spec.dataset, spec.preprocess)  # cached: the run's data comes from the cache
    record = train.run(spec, startup_s=1.5, clock=fake_times)
    assert record.status == "ok", record.error
    assert record.phases == Phases(startup=1.5, data=2.5, data_cached=True, build=3.0, first_epoch=5.0,
                                   steady_training=2.0, epoch_eval=0.75, final_eval=4.0, run=17.25)
    assert record.build_seconds == 3.0 and record.first_epoch_seconds == 5.0 and record.sec_per_epoch == 1.0


@pytest.mark.slow
def test_without_a_subset_there_is_no_final_evaluation_apart(fake_times):
    record = train.run(small_spec(epochs=1), clock=fake_times)
    assert record.status == "ok", record.error
    assert record.phases == Phases(data=2.5, data_cached=False, build=3.0, first_epoch=5.0, steady_training=0.0,
                                   epoch_eval=0.25, run=10.75)


@pytest.mark.slow
def test_a_failed_run_keeps_the_phases_it_got_through(fake_times, monkeypatch):
    def broken(*args, **kwargs):
        fake_times.advance(3.0)
        raise RuntimeError("no model today")

    monkeypatch.setattr(train, "build_model", broken)
    record = train.run(small_spec(), startup_s=1.0, clock=fake_times)
    assert record.status == "failed" and "no model today" in record.error
    assert record.phases == Phases(startup=1.0, data=2.5, data_cached=False, build=3.0, run=5.5)
