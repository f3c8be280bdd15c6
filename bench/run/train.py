"""One training run, in this process: data, model, fit with timing, evaluation, a RunRecord.

The recipe, in the order it runs:
  1. seed Python, NumPy and TensorFlow from the spec (initialisation, data order, augmentation);
  2. a tf.data input: cache the uint8 images, shuffle with the seed, batch, augment and scale
     whole batches at once, prefetch;
  3. build the model (logits), then, if ``spec.speedups``, hand it to the speed-ups
     (``bench.speedups``) to compile, else compile it as plain Keras (sparse cross-entropy,
     the spec's optimizer either way; ``build_model``);
  4. fit for the spec's epochs, evaluating after each epoch on the whole test set (or on a
     subset of it, ``eval_per_class``: stratified or the first images, ``monitor_indices``),
     checkpointing after each epoch and resuming from one (``bench.run.checkpoint``); a
     callback times training and evaluation
     apart and stops a run whose loss is not finite; another prints an event line as each
     epoch begins and ends (``bench.records.runfiles``); with the speed-ups, another turns grappler
     off for training steps; TensorBoard's, when asked for;
  5. the record: final-epoch test accuracy on the whole test set (never the best epoch),
     epoch 1 (tracing) timed apart, ``sec_per_epoch`` = median of the other epochs; status
     ``diverged`` when ``divergence`` finds the losses say so; and where the run's time went
     (``bench.records.phases``: data, build, epochs, evaluations).
"""
from __future__ import annotations

import dataclasses
import math
import shutil
import statistics
import time
import traceback
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import models
from bench import environment
from bench.data import datasets, preprocessing
from bench.files import now_iso
from bench.records import runfiles
from bench.records.phases import Stopwatch
from bench.records.store import RunRecord
from bench.run.checkpoint import Progress, RunCheckpoint
from bench.spec import Augment, Optimizer, RunSpec
from bench.speedups.fused import stock_batch_norm
from bench.speedups.training import TrainingGraphSettings, compile_with_speedups

SHUFFLE_BUFFER = 60_000  # whole training sets of the datasets here: a full shuffle
# The input pipelines run without tf.data's autotuning, which slowed evaluations and runs
# sharing a machine (docs/speed.md, "Where a campaign's time goes"): augmentation one batch at
# a time, PREFETCH batches ahead.
PREFETCH = 2  # batches made ready while the model computes
UNTUNED = tf.data.Options()
UNTUNED.autotune.enabled = False
# A run diverged, though its losses stayed finite, when its training loss ended more than
# GROWTH times its first epoch's (and above a uniform guess's log(classes): a tiny loss may
# wobble). A run that merely ends at chance is ok: it learned nothing
# (``bench.records.store.learned_nothing``), a finding Table 4 counts with a mark.
GROWTH = 10.0


# ---------------------------------------------------------------- input pipeline


def _uniform(shape, seed, low, high):
    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high)


def augment_batch(images, seed, augment: Augment, full_scale: float):
    """Random flip, brightness, contrast, hue and saturation on a float batch.

    Each value is drawn per image, or once for the whole batch with ``draws = "batch"`` (the
    report's code mapped tf.image's ops over batches, which draw one value per call); the
    flip is always per image. Brightness is a fraction of ``full_scale`` or, with
    ``brightness_unit = "pixel"``, in pixel values (the report's ``random_brightness(img, 0.2)``
    on 0-255 pixels: at most 0.2 grey levels). ``clip`` keeps pixels in [0, full_scale]
    after brightness and contrast (the report's code did not). Hue and saturation apply to
    RGB only.

    Args:
        images: float32 (B, H, W, C) in [0, full_scale].
        seed: int64 pair for the stateless random ops; a new one per batch.
        augment: the spec's augmentation settings.
        full_scale: 1.0 for scaled pixels, 255.0 for raw ones.
    """
    seeds = tf.random.experimental.stateless_split(seed, num=5)
    per_image = (tf.shape(images)[0], 1, 1, 1)
    drawn = per_image if augment.draws == "image" else (1, 1, 1, 1)
    if augment.flip:
        flip = _uniform(per_image, seeds[0], 0.0, 1.0) < 0.5
        images = tf.where(flip, tf.reverse(images, axis=[2]), images)
    if augment.brightness:
        delta = augment.brightness * (full_scale if augment.brightness_unit == "full_scale" else 1.0)
        images = images + _uniform(drawn, seeds[1], -delta, delta)
    if augment.contrast:
        factor = _uniform(drawn, seeds[2], *augment.contrast)
        mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
        images = (images - mean) * factor + mean
    if augment.clip:
        images = tf.clip_by_value(images, 0.0, full_scale)
    if images.shape[-1] == 3 and (augment.hue or augment.saturation):
        colour = _colour_per_image if augment.draws == "image" else _colour_per_batch
        images = colour(images, seeds[3:], augment, full_scale)
    return images


def _colour_per_image(images, seeds, augment: Augment, full_scale: float):
    """Hue and saturation drawn per image, through HSV in [0, 1]."""
    batch = tf.shape(images)[0]
    hue, saturation, value = tf.unstack(tf.image.rgb_to_hsv(images / full_scale), axis=-1)
    if augment.hue:
        hue = tf.math.floormod(hue + _uniform((batch, 1, 1), seeds[0], -augment.hue, augment.hue), 1.0)
    if augment.saturation:
        saturation = tf.clip_by_value(saturation * _uniform((batch, 1, 1), seeds[1], *augment.saturation), 0.0, 1.0)
    return tf.image.hsv_to_rgb(tf.stack([hue, saturation, value], axis=-1)) * full_scale


def _colour_per_batch(images, seeds, augment: Augment, full_scale: float):
    """Hue and saturation with one value for the batch: tf.image's own kernels, on any pixel scale."""
    if augment.hue:
        images = tf.image.adjust_hue(images, _uniform((), seeds[0], -augment.hue, augment.hue))
    if augment.saturation:
        images = tf.image.adjust_saturation(images, _uniform((), seeds[1], *augment.saturation))
    return images


def monitor_indices(y_test: np.ndarray, spec: RunSpec) -> np.ndarray:
    """The test images of the per-epoch curves when ``spec.eval_per_class`` is set: a stratified
    subset seeded by ``subset_seed`` (``eval_subset = "stratified"``), or the first eval_per_class
    x classes images in the file's order (``"first"``: the notebook's ``test_images[:1000]``)."""
    if spec.eval_subset == "first":
        return np.arange(spec.eval_per_class * len(np.unique(y_test)))
    return preprocessing.stratified_indices(y_test, spec.eval_per_class, spec.preprocess.subset_seed,
                                            "eval_per_class", "the test set")


def make_inputs(dataset: datasets.Dataset, spec: RunSpec):
    """The tf.data pipelines of a run: training, per-epoch evaluation, and the whole test set.

    Per-epoch evaluation uses the whole test set too, unless ``spec.eval_per_class`` asks
    for a subset (``monitor_indices``).
    """
    full_scale = 1.0 if spec.preprocess.scale_pixels else 255.0

    def to_float(images):
        return tf.cast(images, tf.float32) / (255.0 / full_scale)

    def train_map(batch_seed, images_labels):
        images, labels = images_labels
        images = to_float(images)
        if spec.augment.active:
            images = augment_batch(images, batch_seed, spec.augment, full_scale)
        return images, labels

    train = (
        tf.data.Dataset.from_tensor_slices((np.asarray(dataset.x_train), np.asarray(dataset.y_train)))
        .cache()
        .shuffle(min(len(dataset.y_train), SHUFFLE_BUFFER), seed=spec.seed, reshuffle_each_iteration=True)
        .batch(spec.batch_size)
    )
    batch_seeds = tf.data.Dataset.random(seed=spec.seed, rerandomize_each_iteration=True).batch(2)
    train = tf.data.Dataset.zip(batch_seeds, train).map(train_map)

    def evaluation(images, labels):
        return (
            tf.data.Dataset.from_tensor_slices((np.asarray(images), np.asarray(labels)))
            .batch(max(spec.batch_size, 256))
            .map(lambda x, y: (to_float(x), y))
            .cache()
            .prefetch(PREFETCH)
            .with_options(UNTUNED)
        )

    test = evaluation(dataset.x_test, dataset.y_test)
    monitor = test
    if spec.eval_per_class is not None:
        keep = monitor_indices(dataset.y_test, spec)
        monitor = evaluation(dataset.x_test[keep], dataset.y_test[keep])
    return train.prefetch(PREFETCH).with_options(UNTUNED), monitor, test


# ---------------------------------------------------------------- model


def make_optimizer(settings: Optimizer, total_steps: int):
    learning_rate = settings.learning_rate
    if settings.schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(total_steps, 1))
    weight_decay = settings.weight_decay or None
    if settings.name == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=weight_decay)
    return keras.optimizers.SGD(learning_rate, momentum=settings.momentum, weight_decay=weight_decay)


def build_model(spec: RunSpec, input_shape, num_classes: int, steps_per_epoch: int) -> keras.Model:
    """The model of a run: built, and compiled with the speed-ups unless ``spec.speedups`` is False.

    ``bench.speed.measure`` times exactly this, both ways. The speed-ups are ``bench.speedups``'s:
    here ``compile_with_speedups`` (fused batch norm, one-op SGD, several steps per Keras
    call, one trace); the process they run in was started with their TensorFlow settings
    (``bench.speedups.process``), and ``fit`` gets ``TrainingGraphSettings``.

    Args:
        spec: the run; its model, model options and optimizer settings are used, and
            ``speedups``: False gives the stock Keras model and optimizer, traced Keras's
            way, for checking that the speed-ups change no result.
        input_shape, num_classes: of the data.
        steps_per_epoch: for a learning-rate schedule over the whole run.
    """
    model = models.build(spec.model, input_shape, num_classes, **spec.model_options)
    compile_args = {
        "optimizer": make_optimizer(spec.optimizer, steps_per_epoch * spec.epochs),
        "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=models.from_logits(model)),
        "metrics": ["accuracy"],
    }
    if spec.speedups:
        compile_with_speedups(model, spec.batch_size, **compile_args)
    else:
        model.compile(**compile_args)
    return model


# ---------------------------------------------------------------- timing


class EpochTimer(keras.callbacks.Callback):
    """Keras callback: per epoch, training seconds apart from evaluation seconds.

    Keras calls on_epoch_begin, the training steps, on_test_begin, the evaluation, then
    on_epoch_end; the two intervals are exactly the two costs, read on ``clock`` (seconds;
    tests pass a fake one). A loss that is not finite stops training and marks the run diverged.
    """

    def __init__(self, clock=time.perf_counter):
        super().__init__()
        self._clock = clock
        self.epochs: list[dict] = []
        self.diverged = False
        self._epoch_start = self._eval_start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._clock()

    def on_test_begin(self, logs=None):
        self._eval_start = self._clock()

    def on_epoch_end(self, epoch, logs=None):
        end = self._clock()
        logs = logs or {}
        self.epochs.append({
            "epoch": epoch + 1,
            "loss": float(logs.get("loss", math.nan)),
            "accuracy": float(logs.get("accuracy", math.nan)),
            "val_loss": float(logs.get("val_loss", math.nan)),
            "val_accuracy": float(logs.get("val_accuracy", math.nan)),
            "train_seconds": self._eval_start - self._epoch_start,
            "eval_seconds": end - self._eval_start,
        })
        if not math.isfinite(self.epochs[-1]["loss"]):
            self.diverged = True
            self.model.stop_training = True


def divergence(history: list[dict], test_loss: float, num_classes: int) -> str | None:
    """Why a run counts as diverged, or None: a loss that is not finite, or a training loss that
    grew past GROWTH times its first epoch's (see GROWTH)."""
    first, last = history[0], history[-1]
    uniform = math.log(num_classes)
    if not math.isfinite(last["loss"]):
        return f"loss became {last['loss']} in epoch {last['epoch']}"
    if not math.isfinite(test_loss):
        return f"test loss became {test_loss} after epoch {last['epoch']}"
    if last["loss"] > max(GROWTH * first["loss"], uniform):
        return (f"training loss grew from {first['loss']:.4g} in epoch 1 to {last['loss']:.4g} in epoch "
                f"{last['epoch']}, past {GROWTH:g} times the first and log({num_classes}) = {uniform:.3g}")
    return None


class EpochEvents(keras.callbacks.Callback):
    """Keras callback: an event line on stdout as each epoch begins and ends (``bench.records.runfiles``),
    which the runner reads from the run's log while it trains. The end's carries the epoch's
    history entry, so it must come after ``timer`` in the callbacks."""

    def __init__(self, timer: EpochTimer, epochs: int):
        super().__init__()
        self.timer, self.total = timer, epochs

    def on_epoch_begin(self, epoch, logs=None):
        print(runfiles.event_line("epoch_begin", epoch=epoch + 1, epochs=self.total), end="", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        print(runfiles.event_line("epoch", epochs=self.total, **self.timer.epochs[-1]), end="", flush=True)


def steady_seconds(epochs: list[dict], segments: list[dict] | None = None) -> float:
    """Median training seconds of the epochs timed on the last segment's machine but the first
    of each segment (it traces), or of those first ones alone; without segments, of epochs 2..
    (epoch 1 includes tracing), or epoch 1's alone."""
    segments = segments or [{"machine": None, "epochs": [1, len(epochs)]}]
    here = {number for segment in segments if segment["machine"] == segments[-1]["machine"]
            for number in range(segment["epochs"][0], segment["epochs"][1] + 1)}
    firsts = {segment["epochs"][0] for segment in segments}
    timed = [e for e in epochs if e["epoch"] in here]
    return statistics.median([e["train_seconds"] for e in timed if e["epoch"] not in firsts]
                             or [e["train_seconds"] for e in timed])


# ---------------------------------------------------------------- the run


def run(spec: RunSpec, startup_s: float | None = None, clock=time.perf_counter, tensorboard: Path | None = None,
        weights: Path | None = None, checkpoint: Path | None = None) -> RunRecord:
    """Train and evaluate one run; any failure becomes a record with its error text.

    ``spec.speedups`` False trains the stock Keras model and optimizer (see ``build_model``).

    Args:
        spec: the run.
        startup_s: the worker's start-up before this call (``bench.records.phases.startup_seconds``),
            for the record's phases; None when not known.
        clock: the seconds clock every phase and epoch is timed on; tests pass a fake one.
        tensorboard: a folder for TensorBoard logs (per epoch, no graph), emptied first; None: none.
        weights: a ``.weights.h5`` file for the final weights, written after the final
            evaluation, from Keras's own layers (``stock_batch_norm``), so that they load into
            the model ``models.build`` gives (``bench.records.trained.load_model``); None: not kept.
        checkpoint: the run's checkpoint folder (``bench.run.checkpoint``): resumed from when it
            holds one, written after every epoch but the last; None: no checkpoint, no segments.
    """
    watch, timer = Stopwatch(clock), EpochTimer(clock)
    started = now_iso()
    base = {"run_id": spec.run_id, "spec": spec, "started_at": started,
            "environment": environment.worker_environment(spec.threads)}
    try:
        record = _train(spec, base, watch, timer, Outputs(tensorboard, weights, checkpoint))
    except Exception as error:  # noqa: BLE001 - a failed run is data, not a crash
        detail = traceback.format_exc(limit=-3)
        record = RunRecord(**base, status="failed", error=f"{type(error).__name__}: {error}\n{detail}",
                           finished_at=now_iso())
    return dataclasses.replace(record, environment={**record.environment, "load_at_end": environment.load_average()},
                               phases=watch.phases(timer.epochs, startup_s))


@dataclasses.dataclass(frozen=True)
class Outputs:
    """Where a run writes besides its record (see ``run``); None: nowhere."""

    tensorboard: Path | None = None
    weights: Path | None = None
    checkpoint: Path | None = None


def segment(environment_: dict, started: str, first_epoch: int) -> dict:
    """A run's stretch in one process: its machine (``environment.machine``), host, start, end and
    epochs [first, last]; the end and last epoch are filled in as its epochs end."""
    return {"machine": environment.machine(environment_), "host": environment_.get("host"), "started_at": started,
            "finished_at": None, "epochs": [first_epoch, first_epoch - 1]}


def _train(spec: RunSpec, base: dict, watch: Stopwatch, timer: EpochTimer, outputs: Outputs) -> RunRecord:
    keras.utils.set_random_seed(spec.seed)
    with watch.phase("data"):
        dataset = datasets.load(spec.dataset, spec.preprocess, spec.data_hash)
        train, monitor, test = make_inputs(dataset, spec)
    watch.data_cached = dataset.from_cache
    steps_per_epoch = math.ceil(len(dataset.y_train) / spec.batch_size)
    with watch.phase("build"):
        model = build_model(spec, dataset.input_shape, dataset.num_classes, steps_per_epoch)
    progress = Progress(history=timer.epochs)
    saving = outputs.checkpoint and RunCheckpoint(outputs.checkpoint, spec, progress, watch.seconds)
    done = saving.restore(model, train) if saving else 0
    progress.segments.append(segment(base["environment"], base["started_at"], done + 1))
    tensorboard, weights = outputs.tensorboard, outputs.weights
    with TrainingGraphSettings() as graph_settings:
        callbacks = [timer, EpochEvents(timer, spec.epochs), *([graph_settings] if spec.speedups else []),
                     *([saving] if saving else [])]
        if tensorboard:
            if not done:
                shutil.rmtree(tensorboard, ignore_errors=True)  # a rerun's logs only
            callbacks.append(keras.callbacks.TensorBoard(str(tensorboard), write_graph=False))
        # steps_per_epoch: Keras then makes one iterator of ``train`` per epoch (without it, a second
        # one at each epoch's end, never used), so that epoch n draws the n-th iterator's seeds, as a
        # resumed run replays them (``RunCheckpoint.restore``). shuffle: the pipeline shuffles.
        model.fit(train, epochs=spec.epochs, steps_per_epoch=steps_per_epoch, validation_data=monitor,
                  callbacks=callbacks, verbose=2, shuffle=False)
        history = timer.epochs
        watch.seconds.update(progress.seconds(watch.seconds))
        last = history[-1]
        test_loss, test_accuracy = last["val_loss"], last["val_accuracy"]
        if monitor is not test and not timer.diverged:
            with watch.phase("final_eval"):
                test_loss, test_accuracy = model.evaluate(test, verbose=0)
    if weights:
        weights.parent.mkdir(parents=True, exist_ok=True)
        with stock_batch_norm(model):  # saved as Keras's own layers: they load into any models.build
            model.save_weights(str(weights))
    segments = progress.segments if saving else None
    sec_per_epoch = steady_seconds(history, segments)
    reason = divergence(history, float(test_loss), dataset.num_classes)
    return RunRecord(
        **{**base, "started_at": progress.segments[0]["started_at"]},
        status="ok" if reason is None else "diverged",
        error=reason,
        test_accuracy=float(test_accuracy),
        test_loss=float(test_loss),
        history=history,
        first_epoch_seconds=history[0]["train_seconds"],
        sec_per_epoch=sec_per_epoch,
        images_per_second=len(dataset.y_train) / sec_per_epoch,
        build_seconds=watch.seconds["build"],
        params_total=int(model.count_params()),
        params_trainable=models.count_trainable(model),
        flops_per_image=int(models.flops(model)),
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        model_family=models.family(spec.model),
        segments=segments,
        finished_at=now_iso(),
    )
