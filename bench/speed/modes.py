"""Timing one model's training and inference in this process: what ``bench speed`` runs in each mode.

Two modes, each timed in a process of its own (``bench.speed.measure`` starts them), since some of
the speed-ups are process settings (oneDNN, see ``bench.speedups.process``):

- ``harness`` times what ``bench.run.train`` does in a run: its tf.data pipeline
  (``train.make_inputs``) and its model with the speed-ups (``train.build_model``);
- ``baseline`` times the plain-Keras way: ``train.build_model`` without the speed-ups (the
  spec's optimizer settings all the same), ``model.fit`` / ``model.evaluate`` on float32
  NumPy arrays, TensorFlow's default settings.

The data are synthetic images of the requested shape (generating them takes no download);
the optimizer is the profiles' default (SGD, learning rate 1e-3, momentum 0.9), with no
augmentation, so both modes do the same arithmetic.

``bench.speed.measure`` calls this module's functions in a mode's process, in this order: ``start``
(the mode and its data), ``check``, ``process_facts``; then per model ``prepare`` (build it and
warm it up), ``train_window``, ``evaluate``, ``infer_window``, ``cpu_ms_per_image`` and
``op_profile``. What they keep between calls is the process's one ``_mode`` (a ``ModeState``:
the mode, its data and threads, the model prepared last).
"""
from __future__ import annotations

import collections
import dataclasses
import gc
import math
import os
import re
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import models
from bench import environment
from bench.data import datasets, kinds
from bench.run import train
from bench.spec import Augment, Optimizer, Preprocess, RunSpec
from bench.speedups.training import TrainingGraphSettings

TRAIN_IMAGES = 4096  # synthetic training images (the baseline holds them as float32: 150 MB at 56x56x3)
TEST_IMAGES = 1024
MATMUL_SIZE = 2048


# ---------------------------------------------------------------- setup


def threads_in_force() -> int:
    """TensorFlow's intra-op threads in this process (TF_NUM_INTRAOP_THREADS, else every core)."""
    return (tf.config.threading.get_intra_op_parallelism_threads()
            or int(os.environ.get("TF_NUM_INTRAOP_THREADS", "0")) or os.cpu_count() or 1)


def matmul_peak_gflops(size: int = MATMUL_SIZE, repeats: int = 7) -> float:
    """GFLOP/s of a float32 (size x size) @ (size x size) matmul here: the best of `repeats`."""
    a = tf.random.stateless_uniform((size, size), seed=(1, 2))
    b = tf.random.stateless_uniform((size, size), seed=(3, 4))
    matmul = tf.function(tf.matmul)
    matmul(a, b).numpy()  # warm-up: kernel selection, allocation
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def speed_spec(model: str, batch_size: int, threads: int, seed: int = 0):
    """The RunSpec the harness is timed with: profile defaults, synthetic data, no augmentation."""
    return RunSpec(
        profile="speed", model=model, model_options={}, dataset="synthetic", data_hash=kinds.SYNTHETIC_IDENTITY,
        preprocess=Preprocess(), repeat=0,
        seed=seed, epochs=1, batch_size=batch_size, optimizer=Optimizer(), augment=Augment(), threads=threads,
    )


def synthetic_dataset(input_shape: tuple[int, int, int], num_classes: int = 10,
                      train_images: int = TRAIN_IMAGES, test_images: int = TEST_IMAGES):
    """Learnable uint8 images of `input_shape` (bench.data.datasets's generator), built in memory."""
    height, width, channels = input_shape
    if height != width:
        raise ValueError(f"speed takes square inputs (HxHxC). Received: input={height}x{width}x{channels}")
    per_class = max(1, math.ceil(train_images / num_classes))
    preprocess = Preprocess(native_size=height, channels=channels, num_classes=num_classes,
                            train_per_class=per_class)
    arrays = kinds.synthetic_arrays(preprocess)
    test_reps = math.ceil(test_images / len(arrays["y_test"]))
    x_test, y_test = (_tile(arrays[key], test_reps)[:test_images] for key in ("x_test", "y_test"))
    return datasets.Dataset(
        x_train=arrays["x_train"][:train_images], y_train=arrays["y_train"][:train_images], x_test=x_test,
        y_test=y_test, num_classes=num_classes, source="synthetic (in memory)",
    )


def _tile(array, reps):
    return np.concatenate([array] * reps) if reps > 1 else array


# ---------------------------------------------------------------- one model, two ways


@dataclass
class Trainee:
    """A built model with the calls that train and evaluate it, in one mode."""

    mode: str
    model: object
    build_s: float
    fit_steps: object  # (epochs, steps per epoch, callbacks) -> None
    evaluate: object  # () -> images evaluated
    images_per_step: int
    steps_per_call: int = 1  # the model's steps_per_execution: epochs are whole calls
    max_steps: int | None = None  # steps per epoch the data allow; None: endless
    first_step_s: float = math.nan  # the first call: tracing and steps_per_call steps
    step_s: float = math.nan  # seconds per training step, last estimate
    cpu_s_per_image: list = field(default_factory=list)  # process CPU s per trained image, per window

    def steps(self, wanted: float) -> int:
        """`wanted` steps as a whole number of calls the data allow, at least one call."""
        calls = max(1, int(wanted // self.steps_per_call))
        if self.max_steps is not None:
            calls = max(1, min(calls, self.max_steps // self.steps_per_call))
        return calls * self.steps_per_call


def timed_build(spec, dataset) -> tuple[keras.Model, float]:
    """``train.build_model`` for `spec` on `dataset`, as ``train.run`` calls it, and its seconds."""
    steps_per_epoch = math.ceil(len(dataset.y_train) / spec.batch_size)
    start = time.perf_counter()
    model = train.build_model(spec, dataset.input_shape, dataset.num_classes, steps_per_epoch)
    return model, time.perf_counter() - start


def harness_trainee(spec, dataset) -> Trainee:
    """The harness: ``train.make_inputs`` and ``train.build_model``, as ``train.run`` uses them."""
    keras.utils.set_random_seed(spec.seed)
    pipeline, _, test = train.make_inputs(dataset, spec)
    model, build_s = timed_build(spec, dataset)
    endless = pipeline.repeat()

    def fit_steps(epochs, steps, callbacks=()):
        with TrainingGraphSettings() as graph_settings:
            model.fit(endless, epochs=epochs, steps_per_epoch=steps, callbacks=[*callbacks, graph_settings],
                      shuffle=False, verbose=0)  # shuffle=False: the pipeline shuffles; the flag would only warn

    def evaluate():
        model.evaluate(test, verbose=0)
        return len(dataset.y_test)

    return Trainee("harness", model, build_s, fit_steps, evaluate, spec.batch_size,
                   steps_per_call=model.steps_per_execution)


def baseline_trainee(spec, dataset) -> Trainee:
    """Plain Keras: ``train.build_model`` without the speed-ups, ``fit`` and ``evaluate`` on float32 NumPy arrays."""
    spec = dataclasses.replace(spec, speedups=False)
    keras.utils.set_random_seed(spec.seed)
    x_train = (dataset.x_train / np.float32(255)).astype("float32")
    x_test = (dataset.x_test / np.float32(255)).astype("float32")
    model, build_s = timed_build(spec, dataset)

    def fit_steps(epochs, steps, callbacks=()):
        images = steps * spec.batch_size
        model.fit(x_train[:images], dataset.y_train[:images], batch_size=spec.batch_size, epochs=epochs,
                  callbacks=list(callbacks), verbose=0)

    def evaluate():
        model.evaluate(x_test, dataset.y_test, batch_size=spec.batch_size, verbose=0)
        return len(dataset.y_test)

    return Trainee("baseline", model, build_s, fit_steps, evaluate, spec.batch_size,
                   max_steps=len(dataset.y_train) // spec.batch_size)


MAKERS = {"harness": harness_trainee, "baseline": baseline_trainee}


def warm_up(trainee: Trainee, warmup_seconds: float) -> None:
    """Time the first call, then run and discard steady calls until warm; estimate a step's time."""
    begin = time.perf_counter()
    trainee.fit_steps(1, trainee.steps(1))
    trainee.first_step_s = time.perf_counter() - begin
    wanted, spent = 2, 0.0
    while spent < warmup_seconds:
        steps = trainee.steps(wanted)
        begin = time.perf_counter()
        trainee.fit_steps(1, steps)
        taken = time.perf_counter() - begin
        spent += taken
        trainee.step_s = taken / steps
        wanted = 2 * steps


class EpochClock(keras.callbacks.Callback):
    """The seconds of each epoch, from its begin to its end."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._begin = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._begin = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._begin)


def train_window(window_s: float) -> tuple[float, float]:
    """One timed window of steady training of the prepared model; returns (images, seconds).

    An epoch is as many steps as fit in the window (as the data allow: the baseline's
    arrays hold TRAIN_IMAGES images), and the window as many epochs as make it last
    ``window_s``: epochs begin and end inside it, as they do in a run.
    """
    trainee = _mode.trainee
    steps = trainee.steps(window_s / trainee.step_s)
    epochs = max(1, math.ceil(window_s / (steps * trainee.step_s)))
    clock = EpochClock()
    cpu = time.process_time()
    trainee.fit_steps(epochs, steps, [clock])
    images = epochs * steps * trainee.images_per_step
    trainee.cpu_s_per_image.append((time.process_time() - cpu) / images)
    seconds = sum(clock.seconds)
    trainee.step_s = seconds / (epochs * steps)
    return images, seconds


def infer_window(window_s: float) -> tuple[float, float]:
    """One timed window of test-set evaluations (whole passes) of the prepared model; returns (images, seconds)."""
    trainee = _mode.trainee
    images, seconds = 0, 0.0
    while seconds < window_s:
        begin = time.perf_counter()
        images += trainee.evaluate()
        seconds += time.perf_counter() - begin
    return images, seconds


# ---------------------------------------------------------------- op profile


OP_EVENT = re.compile(r"^[^:]+:(?P<op_type>[A-Za-z_][A-Za-z0-9_]*)$")  # "scope/name:OpType"
EXECUTOR_THREADS = "tf_Compute"  # the threads that run a traced step's ops


def op_profile(steps: int) -> tuple[list[dict], float]:
    """TensorFlow profiler trace of `steps` training steps of the prepared model, summed per op type.

    Returns rows (op_type, ms_per_step, pct, calls_per_step), the most time first, and the
    wall seconds per step while tracing. An op's time is its kernel's wall time on the
    executor thread that ran it: with two threads, ops overlap and their sum may exceed
    the step's wall time; the threads an op splits its work over are not added again.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    trainee = _mode.trainee
    steps = trainee.steps(steps)
    options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=2, python_tracer_level=0,
                                                       device_tracer_level=0)
    with tempfile.TemporaryDirectory(prefix="fishbench-ops-") as logdir:
        tf.profiler.experimental.start(logdir, options=options)
        begin = time.perf_counter()
        trainee.fit_steps(1, steps)
        wall_s = time.perf_counter() - begin
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    picoseconds, calls = collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith(EXECUTOR_THREADS):
                continue
            for event in line.events:
                match = OP_EVENT.match(plane.event_metadata[event.metadata_id].name)
                if match:
                    picoseconds[match["op_type"]] += event.duration_ps
                    calls[match["op_type"]] += 1
    total = sum(picoseconds.values()) or 1
    rows = [{"op_type": op, "ms_per_step": ps / 1e9 / steps, "pct": 100 * ps / total,
             "calls_per_step": calls[op] / steps} for op, ps in picoseconds.most_common()]
    return rows, wall_s / steps


# ---------------------------------------------------------------- this process's mode


@dataclass
class ModeState:
    """One mode's state in its process, between the calls of ``bench.speed.measure``."""

    mode: str  # a key of MAKERS
    dataset: datasets.Dataset
    threads: int
    trainee: Trainee | None = None  # the model `prepare` built last


# This process's mode: set by `start`, its trainee by `prepare`; a mode's process runs one mode.
_mode: ModeState | None = None


def start(mode: str, input_shape: tuple[int, int, int], num_classes: int) -> None:
    """Make this process `mode`'s: its synthetic data built, its threads read."""
    global _mode
    _mode = ModeState(mode, synthetic_dataset(tuple(input_shape), num_classes), threads_in_force())


def build_each(model_names: list[str]) -> None:
    """Build every model once: an unknown name or an input a model cannot take fails here."""
    for name in model_names:
        models.build(name, _mode.dataset.input_shape, _mode.dataset.num_classes)
        keras.backend.clear_session()


def process_facts() -> dict:
    """This process's threads, whether oneDNN is on, and its float32 matmul peak."""
    return {"threads": _mode.threads, "onednn": environment.onednn_enabled(), "peak_gflops": matmul_peak_gflops()}


def prepare(name: str, batch_size: int, warmup_seconds: float) -> dict:
    """Build `name` (the previous model released), time its first call, warm it up."""
    _mode.trainee = None
    keras.backend.clear_session()
    gc.collect()
    spec = speed_spec(name, batch_size, _mode.threads)
    _mode.trainee = MAKERS[_mode.mode](spec, _mode.dataset)
    warm_up(_mode.trainee, warmup_seconds)
    return {"build_s": _mode.trainee.build_s, "first_step_s": _mode.trainee.first_step_s,
            "steps_per_call": _mode.trainee.steps_per_call, "flops_per_image": int(models.flops(_mode.trainee.model))}


def evaluate_untimed() -> None:
    """One untimed evaluation of the prepared model: the first one traces."""
    _mode.trainee.evaluate()


def cpu_ms_per_image() -> float:
    """Median process CPU milliseconds per trained image over the prepared model's windows."""
    return 1000 * statistics.median(_mode.trainee.cpu_s_per_image)
