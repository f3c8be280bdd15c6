"""``python -m bench speed``: how fast the harness trains and infers, against plain Keras.

For each model and batch size, in this one process:

- ``build_s``: seconds to build and compile the model;
- ``first_step_s``: seconds of the first training call (tracing, graph optimisation, the
  step itself; for the MLP and the CNN the harness runs several steps per call, see
  ``train.steps_per_execution``, and they are all in it), the cost every run pays once;
- ``train_img_per_s``: steady-state training images per second, warm-up excluded: the
  median of at least ``WINDOWS`` timed windows that together last at least ``seconds``;
- ``infer_img_per_s``: the same for evaluating the test set (``model.evaluate``: the
  harness's test pipeline, batches of max(batch size, 256); the baseline's batch size);
- ``flops_per_image``: forward FLOPs per image (``models.flops``);
- ``gflops``: achieved training GFLOP/s, counting a training image as 3x its forward FLOPs
  (forward, gradient of the inputs, gradient of the weights);
- ``pct_peak``: ``gflops`` as a percentage of a float32 matmul peak measured in this process.

Two modes. ``harness`` times what ``bench.train`` does in a run: its tf.data pipeline
(``train.make_inputs``) and its model (``train.build_model``, with the speed-ups). With
``--baseline``, ``baseline`` times the plain-Keras way in the same process: the stock model,
``model.fit`` / ``model.evaluate`` on float32 NumPy arrays, default settings. Their windows
alternate (harness, baseline, harness, ...), so a change in the machine's load hits both;
the progress lines also give process CPU milliseconds per trained image, which a busy
machine disturbs less than images per second.

The data are synthetic images of the requested shape (generating them takes no download);
the optimizer is the profiles' default (SGD, learning rate 1e-3, momentum 0.9), with no
augmentation, so both modes do the same arithmetic.
"""
from __future__ import annotations

import gc
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from tabulate import tabulate

import models
from bench import config, data, train
from bench.store import RunSpec

COLUMNS = ("model", "batch_size", "threads", "mode", "train_img_per_s", "infer_img_per_s", "flops_per_image",
           "gflops", "pct_peak", "build_s", "first_step_s")
WINDOWS = 3  # timed windows per measurement; the median is reported
TRAIN_IMAGES = 4096  # synthetic training images (the baseline holds them as float32: 150 MB at 56x56x3)
TEST_IMAGES = 1024
WARMUP_SECONDS = 1.0  # steady steps run and discarded after the first step (at most seconds / 4)
TRAINING_FLOPS_PER_FORWARD = 3  # forward + input gradient + weight gradient
MATMUL_SIZE = 2048


# ---------------------------------------------------------------- setup


def configure_threads(threads: int | None) -> int:
    """Set TensorFlow's intra-op threads (inter-op: at most 2, as the runner does); return those in force.

    Must run before TensorFlow executes its first op. None leaves TensorFlow's setting
    (TF_NUM_INTRAOP_THREADS, else every core).

    Raises:
        ValueError: TensorFlow already runs with another thread count in this process.
    """
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be >= 1. Received: threads={threads}")
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        except RuntimeError:
            raise ValueError("TensorFlow already started in this process with other thread counts; "
                             f"run `python -m bench speed` in a fresh process. Received: threads={threads}") from None
    in_force = tf.config.threading.get_intra_op_parallelism_threads()
    return in_force or int(os.environ.get("TF_NUM_INTRAOP_THREADS", "0")) or os.cpu_count() or 1


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
        profile="speed", model=model, model_options={}, dataset="synthetic",
        preprocess=dict(config.DEFAULTS["data"]), repeat=0, seed=seed, epochs=1, batch_size=batch_size,
        optimizer=dict(config.DEFAULTS["optimizer"]), augment=dict(config.DEFAULTS["augment"]), threads=threads,
    )


def synthetic_dataset(input_shape: tuple[int, int, int], num_classes: int = 10,
                      train_images: int = TRAIN_IMAGES, test_images: int = TEST_IMAGES):
    """Learnable uint8 images of `input_shape` (bench.data's generator), built in memory."""
    height, width, channels = input_shape
    if height != width:
        raise ValueError(f"speed takes square inputs (HxHxC). Received: input={height}x{width}x{channels}")
    per_class = max(1, math.ceil(train_images / num_classes))
    request = data.DatasetRequest("synthetic", native_size=height, channels=channels, num_classes=num_classes,
                                  train_per_class=per_class)
    arrays = data.synthetic_arrays(request)
    test_reps = math.ceil(test_images / len(arrays["y_test"]))
    x_test, y_test = (_tile(arrays[key], test_reps)[:test_images] for key in ("x_test", "y_test"))
    return data.Dataset(
        x_train=arrays["x_train"][:train_images], y_train=arrays["y_train"][:train_images], x_test=x_test,
        y_test=y_test, num_classes=num_classes, source="synthetic (in memory)", request=request,
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


def harness_trainee(spec, dataset) -> Trainee:
    """The harness: ``train.make_inputs`` and ``train.build_model``, as ``train.run`` uses them."""
    keras.utils.set_random_seed(spec.seed)
    pipeline, _, test = train.make_inputs(dataset, spec)
    steps_per_epoch = math.ceil(len(dataset.y_train) / spec.batch_size)
    start = time.perf_counter()
    model = train.build_model(spec, dataset.input_shape, dataset.num_classes, steps_per_epoch)
    build_s = time.perf_counter() - start
    endless = pipeline.repeat()

    def fit_steps(epochs, steps, callbacks=()):
        with train.TrainingGraphSettings() as graph_settings:
            model.fit(endless, epochs=epochs, steps_per_epoch=steps, callbacks=[*callbacks, graph_settings],
                      shuffle=False, verbose=0)  # shuffle=False: the pipeline shuffles; the flag would only warn

    def evaluate():
        model.evaluate(test, verbose=0)
        return len(dataset.y_test)

    return Trainee("harness", model, build_s, fit_steps, evaluate, spec.batch_size,
                   steps_per_call=model.steps_per_execution)


def baseline_trainee(spec, dataset) -> Trainee:
    """Plain Keras: the stock model, ``fit`` and ``evaluate`` on float32 NumPy arrays, defaults."""
    keras.utils.set_random_seed(spec.seed)
    x_train = (dataset.x_train / np.float32(255)).astype("float32")
    x_test = (dataset.x_test / np.float32(255)).astype("float32")
    settings = spec.optimizer
    start = time.perf_counter()
    model = models.build(spec.model, dataset.input_shape, dataset.num_classes, **spec.model_options)
    model.compile(optimizer=keras.optimizers.SGD(settings["learning_rate"], momentum=settings["momentum"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    build_s = time.perf_counter() - start

    def fit_steps(epochs, steps, callbacks=()):
        images = steps * spec.batch_size
        model.fit(x_train[:images], dataset.y_train[:images], batch_size=spec.batch_size, epochs=epochs,
                  callbacks=list(callbacks), verbose=0)

    def evaluate():
        model.evaluate(x_test, dataset.y_test, batch_size=spec.batch_size, verbose=0)
        return len(dataset.y_test)

    return Trainee("baseline", model, build_s, fit_steps, evaluate, spec.batch_size,
                   max_steps=len(dataset.y_train) // spec.batch_size)


def warm_up(trainee: Trainee, warmup_seconds: float = WARMUP_SECONDS) -> None:
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


def train_window(trainee: Trainee, window_s: float) -> tuple[float, float]:
    """One timed window of steady training; returns (images, seconds).

    An epoch is as many steps as fit in the window (as the data allow: the baseline's
    arrays hold TRAIN_IMAGES images), and the window as many epochs as make it last
    ``window_s``: epochs begin and end inside it, as they do in a run.
    """
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


def infer_window(trainee: Trainee, window_s: float) -> tuple[float, float]:
    """One timed window of test-set evaluations (whole passes); returns (images, seconds)."""
    images, seconds = 0, 0.0
    while seconds < window_s:
        begin = time.perf_counter()
        images += trainee.evaluate()
        seconds += time.perf_counter() - begin
    return images, seconds


def timed_rates(trainees: list[Trainee], window, seconds: float, windows: int = WINDOWS) -> list[float]:
    """Median images/s per trainee over alternating windows: at least `windows`, at least `seconds` each."""
    rates = [[] for _ in trainees]
    spent = [0.0 for _ in trainees]
    window_s = seconds / windows
    while min(len(r) for r in rates) < windows or min(spent) < seconds:
        for i, trainee in enumerate(trainees):
            images, taken = window(trainee, window_s)
            rates[i].append(images / taken)
            spent[i] += taken
    return [statistics.median(r) for r in rates]


# ---------------------------------------------------------------- the table


def measure(model_names: list[str], input_shape=(56, 56, 3), batch_sizes=(32,), threads: int | None = None,
            baseline: bool = False, seconds: float = 20.0, num_classes: int = 10, log=print) -> tuple[list[dict], dict]:
    """Time every model and batch size; returns (rows with COLUMNS, context).

    Args:
        model_names: registered model names.
        input_shape: (height, width, channels), height == width.
        batch_sizes: images per training step.
        threads: TensorFlow intra-op threads; None keeps TensorFlow's setting.
        baseline: also time the plain-Keras way.
        seconds: timed seconds per measurement (training, then inference), per mode.
        log: where progress lines go.

    Returns:
        The rows (one per model, batch size and mode) and a context dict: matmul peak
        GFLOP/s, threads, load averages before and after.

    Raises:
        ValueError: an unknown model, a bad shape or thread count (before any timing).
    """
    if seconds <= 0:
        raise ValueError(f"--seconds must be > 0. Received: seconds={seconds}")
    for name in model_names:
        models.options(name)  # raises for an unknown name, listing the known ones
    load_before = os.getloadavg()
    in_force = configure_threads(threads)
    dataset = synthetic_dataset(tuple(input_shape), num_classes)
    for name in model_names:  # an input a model cannot take fails here, before any timing
        models.build(name, dataset.input_shape, num_classes)
        keras.backend.clear_session()
    peak = matmul_peak_gflops()
    log(f"float32 matmul peak ({MATMUL_SIZE}x{MATMUL_SIZE}, {in_force} threads): {peak:.1f} GFLOP/s; "
        f"load average {load_before[0]:.2f}")
    rows = []
    for batch_size in batch_sizes:
        for name in model_names:
            spec = speed_spec(name, batch_size, in_force)
            keras.backend.clear_session()
            gc.collect()
            makers = [harness_trainee] + ([baseline_trainee] if baseline else [])
            trainees = []
            for make in makers:
                trainee = make(spec, dataset)
                warm_up(trainee, min(WARMUP_SECONDS, seconds / 4))
                trainees.append(trainee)
                log(f"{name} bs={batch_size} {trainee.mode}: build {trainee.build_s:.2f} s, "
                    f"first call {trainee.first_step_s:.2f} s ({trainee.steps_per_call} step(s))")
            train_rates = timed_rates(trainees, train_window, seconds)
            for trainee in trainees:  # the first evaluation traces: not timed
                trainee.evaluate()
            infer_rates = timed_rates(trainees, infer_window, seconds)
            flops = int(models.flops(trainees[0].model))
            for trainee, train_rate, infer_rate in zip(trainees, train_rates, infer_rates):
                gflops = TRAINING_FLOPS_PER_FORWARD * flops * train_rate / 1e9
                rows.append({
                    "model": name, "batch_size": batch_size, "threads": in_force, "mode": trainee.mode,
                    "train_img_per_s": train_rate, "infer_img_per_s": infer_rate, "flops_per_image": flops,
                    "gflops": gflops, "pct_peak": 100 * gflops / peak, "build_s": trainee.build_s,
                    "first_step_s": trainee.first_step_s,
                })
            log(f"{name} bs={batch_size}: " + ", ".join(
                f"{t.mode} {r['train_img_per_s']:.1f} img/s training "
                f"({1000 * statistics.median(t.cpu_s_per_image):.2f} CPU ms per image)"
                for t, r in zip(trainees, rows[-len(trainees):])))
            del trainees
    context = {"peak_gflops": peak, "threads": in_force, "load_before": load_before, "load_after": os.getloadavg()}
    return rows, context


def ratios(rows: list[dict]) -> list[dict]:
    """Harness over baseline, per model, batch size and threads, for rows that have both modes."""
    by_key = {(r["model"], r["batch_size"], r["threads"], r["mode"]): r for r in rows}
    out = []
    for (name, batch, threads, mode), harness in by_key.items():
        base = by_key.get((name, batch, threads, "baseline"))
        if mode == "harness" and base is not None:
            out.append({
                "model": name, "batch_size": batch, "threads": threads,
                "train_x": harness["train_img_per_s"] / base["train_img_per_s"],
                "infer_x": harness["infer_img_per_s"] / base["infer_img_per_s"],
                "build+first_s": harness["build_s"] + harness["first_step_s"],
                "baseline build+first_s": base["build_s"] + base["first_step_s"],
            })
    return out


def write_csv(rows: list[dict], out_dir: Path) -> Path:
    """``speed.csv`` in `out_dir` (created), one row per model, batch size, threads and mode."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "speed.csv"
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(path, index=False, float_format="%.6g")
    return path


def main(args) -> None:
    """The ``speed`` subcommand: measure, print the table and the ratios, write speed.csv."""
    rows, context = measure(args.models, args.input, args.batch_sizes, args.threads, args.baseline, args.seconds)
    print()
    print(tabulate(rows, headers="keys", tablefmt="github",
                   floatfmt=("", "", "", "", ".1f", ".1f", "", ".1f", ".1f", ".2f", ".2f")))
    if args.baseline:
        print()
        print(tabulate(ratios(rows), headers="keys", floatfmt=".2f", tablefmt="github"))
    load = context["load_after"]
    print(f"\nmatmul peak {context['peak_gflops']:.1f} GFLOP/s, {context['threads']} threads; load average "
          f"{context['load_before'][0]:.2f} before, {load[0]:.2f} after (1 min)")
    print(f"wrote {write_csv(rows, args.out)}")
