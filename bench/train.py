"""One training run, in this process: data, model, fit with timing, evaluation, a RunRecord.

The recipe, in the order it runs:
  1. seed Python, NumPy and TensorFlow from the spec (initialisation, data order, augmentation);
  2. a tf.data input: cache the uint8 images, shuffle with the seed, batch, augment and scale
     whole batches at once, prefetch;
  3. build and compile the model (logits, sparse cross-entropy, the spec's optimizer) with
     the harness's speed-ups (``build_model``: fused batch norm, one-op SGD, one trace);
  4. fit for the spec's epochs, evaluating after each epoch on the whole test set (or on a
     stratified subset of it, ``eval_per_class``); a callback times training and evaluation
     apart and stops a run whose loss is not finite;
  5. the record: final-epoch test accuracy on the whole test set (never the best epoch),
     epoch 1 (tracing) timed apart, ``sec_per_epoch`` = median of the other epochs.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
import traceback

import keras
import numpy as np
import tensorflow as tf

import models
from bench import data, environment
from bench.store import RunRecord, RunSpec, now_iso

SHUFFLE_BUFFER = 60_000  # whole training sets of the datasets here: a full shuffle
# Training FLOPs per Keras call: a small model runs several steps per call (steps_per_execution)
# so that Keras's per-step Python work (about 3 ms) stays small next to the step itself.
FLOPS_PER_EXECUTION = 8e9  # ~0.1 s on a 2-core CPU; at batch 32: MLP 16 steps, CNN 7, the others 1
MAX_STEPS_PER_EXECUTION = 16


# ---------------------------------------------------------------- input pipeline


def _uniform(shape, seed, low, high):
    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high)


def augment_batch(images, seed, augment: dict, full_scale: float):
    """Per-image random flip, brightness, contrast, hue and saturation on a float batch.

    Args:
        images: float32 (B, H, W, C) in [0, full_scale].
        seed: int64 pair for the stateless random ops; a new one per batch.
        augment: the spec's augmentation settings (see RunSpec).
        full_scale: 1.0 for scaled pixels, 255.0 for raw ones.
    """
    seeds = tf.random.experimental.stateless_split(seed, num=5)
    batch = tf.shape(images)[0]
    per_image = (batch, 1, 1, 1)
    if augment["flip"]:
        flip = _uniform(per_image, seeds[0], 0.0, 1.0) < 0.5
        images = tf.where(flip, tf.reverse(images, axis=[2]), images)
    if augment["brightness"]:
        delta = augment["brightness"] * full_scale
        images = images + _uniform(per_image, seeds[1], -delta, delta)
    if augment["contrast"]:
        factor = _uniform(per_image, seeds[2], *augment["contrast"])
        mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
        images = (images - mean) * factor + mean
    images = tf.clip_by_value(images, 0.0, full_scale)
    if images.shape[-1] == 3 and (augment["hue"] or augment["saturation"]):
        hsv = tf.image.rgb_to_hsv(images / full_scale)
        hue, saturation, value = tf.unstack(hsv, axis=-1)
        if augment["hue"]:
            hue = tf.math.floormod(hue + _uniform((batch, 1, 1), seeds[3], -augment["hue"], augment["hue"]), 1.0)
        if augment["saturation"]:
            saturation = tf.clip_by_value(saturation * _uniform((batch, 1, 1), seeds[4], *augment["saturation"]), 0.0, 1.0)
        images = tf.image.hsv_to_rgb(tf.stack([hue, saturation, value], axis=-1)) * full_scale
    return images


def make_inputs(dataset: data.Dataset, spec: RunSpec):
    """The tf.data pipelines of a run: training, per-epoch evaluation, and the whole test set.

    Per-epoch evaluation uses the whole test set too, unless ``spec.eval_per_class`` asks
    for a stratified subset (seeded by ``subset_seed``) to keep the curves cheap.
    """
    full_scale = 1.0 if spec.preprocess["scale_pixels"] else 255.0
    augmenting = any(spec.augment.values())

    def to_float(images):
        return tf.cast(images, tf.float32) / (255.0 / full_scale)

    def train_map(batch_seed, images_labels):
        images, labels = images_labels
        images = to_float(images)
        if augmenting:
            images = augment_batch(images, batch_seed, spec.augment, full_scale)
        return images, labels

    train = (
        tf.data.Dataset.from_tensor_slices((np.asarray(dataset.x_train), np.asarray(dataset.y_train)))
        .cache()
        .shuffle(min(len(dataset.y_train), SHUFFLE_BUFFER), seed=spec.seed, reshuffle_each_iteration=True)
        .batch(spec.batch_size)
    )
    batch_seeds = tf.data.Dataset.random(seed=spec.seed, rerandomize_each_iteration=True).batch(2)
    train = tf.data.Dataset.zip(batch_seeds, train).map(train_map, num_parallel_calls=tf.data.AUTOTUNE)
    def evaluation(images, labels):
        return (
            tf.data.Dataset.from_tensor_slices((np.asarray(images), np.asarray(labels)))
            .batch(max(spec.batch_size, 256))
            .map(lambda x, y: (to_float(x), y))
            .cache()
            .prefetch(tf.data.AUTOTUNE)
        )

    test = evaluation(dataset.x_test, dataset.y_test)
    monitor = test
    if spec.eval_per_class is not None:
        keep = data.stratified_indices(dataset.y_test, spec.eval_per_class, spec.preprocess["subset_seed"])
        monitor = evaluation(dataset.x_test[keep], dataset.y_test[keep])
    return train.prefetch(tf.data.AUTOTUNE), monitor, test


# ---------------------------------------------------------------- model


class MomentumSGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD` whose momentum update is one TensorFlow op per variable.

    Keras computes ``m = momentum * m - lr * g; w += m`` with five ops per variable;
    ``ResourceApplyKerasMomentum`` is that same update in one kernel, which halves the
    memory passes of the large Dense layers and the Python work of tracing. Weight decay,
    clipping and the learning-rate schedule stay Keras's. Nesterov, sparse gradients and
    distribution strategies fall back to Keras's own update.
    """

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if (self.momentum == 0 or self.nesterov or tf.distribute.has_strategy()
                or any(isinstance(g, tf.IndexedSlices) for g in grads)):
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        for grad, variable in zip(grads, trainable_variables):
            accumulator = self.momentums[self._get_variable_index(variable)]
            tf.raw_ops.ResourceApplyKerasMomentum(
                var=variable.handle,
                accum=accumulator.handle,
                lr=tf.cast(learning_rate, variable.dtype),
                grad=tf.cast(grad, variable.dtype),
                momentum=tf.cast(self.momentum, variable.dtype),
                use_locking=False,
                use_nesterov=False,
            )


def make_optimizer(settings: dict, total_steps: int, *, fast: bool = True):
    learning_rate = settings["learning_rate"]
    if settings["schedule"] == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(total_steps, 1))
    weight_decay = settings["weight_decay"] or None
    if settings["name"] == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=weight_decay)
    sgd = MomentumSGD if fast else keras.optimizers.SGD
    return sgd(learning_rate, momentum=settings["momentum"], weight_decay=weight_decay)


def build_model(spec: RunSpec, input_shape, num_classes: int, steps_per_epoch: int) -> keras.Model:
    """The harness's model for a run: built, compiled and ready to trace once.

    ``bench.speed`` times exactly this, so every speed-up of the harness lives here, but
    for one process setting: the runner starts each worker with oneDNN's kernels asked for
    (``environment.tensorflow_env``), as ``bench speed`` starts its harness process.
    Here:

    - batch normalization as one fused op (``models.fuse_batch_norm``; same weights);
    - the SGD momentum update as one op per variable (``MomentumSGD``);
    - several steps per Keras call for small models (``steps_per_execution``);
    - the model's, the optimizer's and the metrics' variables created before the first
      ``fit``, so Keras traces its train step once instead of twice (a ``tf.function``
      that creates variables on its first call is traced again without them);
    - and, passed to ``fit`` as a callback, ``TrainingGraphSettings`` (no grappler for
      training steps).

    Args:
        spec: the run; its model, model options and optimizer settings are used, and
            ``speedups``: False gives the stock Keras model and optimizer, traced Keras's
            way, for checking that the speed-ups change no result.
        input_shape, num_classes: of the data.
        steps_per_epoch: for a learning-rate schedule over the whole run.
    """
    fast = spec.speedups
    model = models.build(spec.model, input_shape, num_classes, **spec.model_options)
    if fast:
        models.fuse_batch_norm(model)
    model.compile(
        optimizer=make_optimizer(spec.optimizer, steps_per_epoch * spec.epochs, fast=fast),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution(models.flops(model), spec.batch_size) if fast else 1,
    )
    if fast:
        create_variables(model)
    return model


def steps_per_execution(flops_per_image: int, batch_size: int) -> int:
    """Training steps per Keras call: enough for FLOPS_PER_EXECUTION, 1 to MAX_STEPS_PER_EXECUTION.

    Several steps per call run as one traced loop; the batches, their order and the updates
    are the same as one step per call.
    """
    step_flops = 3 * flops_per_image * batch_size  # forward, input gradient, weight gradient
    return max(1, min(MAX_STEPS_PER_EXECUTION, int(FLOPS_PER_EXECUTION // max(step_flops, 1))))


def create_variables(model: keras.Model) -> None:
    """Create the loss, metric and optimizer variables of a compiled model, outside any trace.

    Keras creates them inside the first traced train step, which makes ``tf.function``
    trace the step a second time. Here they are made eagerly: the loss and the metrics of
    one dummy prediction (then reset) and the optimizer's slots. No forward pass is run.
    """
    labels = np.zeros((1,), "int64")
    logits = np.zeros((1, model.outputs[0].shape[-1]), "float32")
    model.compute_loss(y=labels, y_pred=logits)
    model.compute_metrics(None, labels, logits)
    model.reset_metrics()
    model.optimizer.build(model.trainable_variables)


class TrainingGraphSettings(keras.callbacks.Callback):
    """Grappler off while ``fit`` runs training steps, TensorFlow's default while it evaluates.

    Grappler, TensorFlow's graph optimizer, costs 1-1.5 s of a FishNet's first training step
    (a train step of 4,000-9,000 nodes) and buys nothing after it: on a CPU, oneDNN's
    kernels come from another pass (the MKL layout pass, which stays on), and grappler's one
    rewrite that matters, batch norm fused with the ReLU after it, sends oneDNN's training
    kernels to a slow generic path for the 2-12 channel layers of FishNet55. Evaluation is
    the other way round (the fused inference kernel is the fast one), so grappler is back on
    for it. The setting is process-wide and read by each call of a traced function, so the
    callback flips it around the two phases; as a context manager around ``fit`` it also
    restores it when ``fit`` raises.
    """

    def __init__(self):
        super().__init__()
        self._before = None

    def _set(self, disabled: bool) -> None:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": disabled})

    def on_train_begin(self, logs=None):
        self._before = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
        self._set(True)

    def on_test_begin(self, logs=None):
        if self._before is not None:
            self._set(self._before)

    def on_test_end(self, logs=None):
        if self._before is not None:
            self._set(True)

    def on_train_end(self, logs=None):
        self.restore()

    def restore(self) -> None:
        if self._before is not None:
            self._set(self._before)
            self._before = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.restore()


# ---------------------------------------------------------------- timing


class EpochTimer(keras.callbacks.Callback):
    """Keras callback: per epoch, training seconds apart from evaluation seconds.

    Keras calls on_epoch_begin, the training steps, on_test_begin, the evaluation, then
    on_epoch_end; the two intervals are exactly the two costs. A loss that is not finite
    stops training and marks the run diverged.
    """

    def __init__(self):
        super().__init__()
        self.epochs: list[dict] = []
        self.diverged = False
        self._epoch_start = self._eval_start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._eval_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        end = time.perf_counter()
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


def steady_seconds(epochs: list[dict]) -> float:
    """Median training seconds of epochs 2.. (epoch 1 includes tracing), or epoch 1's alone."""
    seconds = [e["train_seconds"] for e in epochs]
    return statistics.median(seconds[1:] or seconds)


# ---------------------------------------------------------------- the run


def _dataset_for(spec: RunSpec) -> data.Dataset:
    return data.load(data.DatasetRequest(spec.dataset, **spec.preprocess))


def run(spec: RunSpec) -> RunRecord:
    """Train and evaluate one run; any failure becomes a record with its error text.

    ``spec.speedups`` False trains the stock Keras model and optimizer (see ``build_model``).
    """
    started = now_iso()
    base = {"run_id": spec.run_id, "spec": spec.to_dict(), "started_at": started,
            "environment": environment.describe(spec.threads)}
    try:
        record = _train(spec, base)
    except Exception as error:  # noqa: BLE001 - a failed run is data, not a crash
        detail = traceback.format_exc(limit=-3)
        record = RunRecord(**base, status="failed", error=f"{type(error).__name__}: {error}\n{detail}",
                           finished_at=now_iso())
    return dataclasses.replace(record, environment={**record.environment, "load_at_end": environment.load_average()})


def _train(spec: RunSpec, base: dict) -> RunRecord:
    keras.utils.set_random_seed(spec.seed)
    dataset = _dataset_for(spec)
    train, monitor, test = make_inputs(dataset, spec)
    steps_per_epoch = math.ceil(len(dataset.y_train) / spec.batch_size)
    build_start = time.perf_counter()
    model = build_model(spec, dataset.input_shape, dataset.num_classes, steps_per_epoch)
    build_seconds = time.perf_counter() - build_start
    timer = EpochTimer()
    with TrainingGraphSettings() as graph_settings:
        callbacks = [timer, graph_settings] if spec.speedups else [timer]
        model.fit(train, epochs=spec.epochs, validation_data=monitor, callbacks=callbacks, verbose=2,
                  shuffle=False)  # the pipeline shuffles; Keras's flag would only warn
        history = timer.epochs
        last = history[-1]
        test_loss, test_accuracy = last["val_loss"], last["val_accuracy"]
        if monitor is not test and not timer.diverged:
            test_loss, test_accuracy = model.evaluate(test, verbose=0)
    sec_per_epoch = steady_seconds(history)
    return RunRecord(
        **base,
        status="diverged" if timer.diverged else "ok",
        error=f"loss became {last['loss']} in epoch {last['epoch']}" if timer.diverged else None,
        test_accuracy=float(test_accuracy),
        test_loss=float(test_loss),
        history=history,
        first_epoch_seconds=history[0]["train_seconds"],
        sec_per_epoch=sec_per_epoch,
        images_per_second=len(dataset.y_train) / sec_per_epoch,
        build_seconds=build_seconds,
        params_total=int(model.count_params()),
        params_trainable=models.count_trainable(model),
        flops_per_image=int(models.flops(model)),
        finished_at=now_iso(),
    )
