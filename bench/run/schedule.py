"""How long a run should take, and the order the runner starts runs in: longest expected first.

Started longest first, the runs end together: the last ones to start are the shortest, so at
the end no job waits long for another (the longest-processing-time rule). ``bench run`` and
``bench plan`` both take the order of ``runner.pending_specs``, which is ``longest_first`` on
the records of the results folder.

A run's expected seconds:

- from the ok records that time the same work (``timing_key``): ``Timing.run_seconds``,
  overhead + epochs x seconds per epoch, the estimate ``bench plan`` prints;
- otherwise from its model's records on any work (the same model, options and input shape,
  ``model_key``; any dataset, protocol or batch size): ``ImageSeconds.run_seconds``, their median
  overhead without evaluations + epochs x (training images x seconds per training image +
  evaluated images x seconds per evaluated image) + the final evaluation apart, if any;
- otherwise from its work: the records' median overhead per run (0 without one) + forward
  FLOPs per image x training images (``datasets.train_size``, none preprocessed) x epochs x
  seconds per FLOP. The FLOPs are counted on the model built in
  this process (``forward_flops``: no training, no data); the price is one TensorFlow import
  into the runner and one build per model configuration without records, against runs that
  each build the model again and train it. The seconds per FLOP are the median of the ok
  records' training seconds per forward FLOP per image (1 / (flops_per_image x
  images_per_second)), so that both kinds of estimate are on one scale: of the records of the
  same model, on other work, when there are some (a FLOP costs a dense layer a fraction of
  what it costs a depthwise convolution), else of every record; with no such record,
  NOMINAL_SECONDS_PER_FLOP, and then every run is estimated from its FLOPs alike (there is no
  record to time one by).

Runs expected to take as long keep the order they were given: the profile's, repeats outermost.
"""
from __future__ import annotations

import functools
import heapq
import json
import statistics
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from bench import environment
from bench.data import datasets
from bench.records.store import RunRecord
from bench.spec import RunSpec

NOMINAL_SECONDS_PER_FLOP = 1e-9  # 1 GFLOP/s of forward work while training: a CPU thread's order of magnitude


# ---------------------------------------------------------------- timings from records


def timing_key(spec: RunSpec) -> str:
    """What a run's seconds per epoch depend on, as text: the model and its options, the dataset,
    its preprocessing (input shape, training-set size), the batch size and the augmentation.
    Not the epochs, seeds, optimizer or profile name: a record of another profile times the
    same work."""
    fields = {name: spec.to_dict()[name] for name in ("model", "model_options", "dataset", "preprocess",
                                                       "batch_size", "augment")}
    return json.dumps(fields, sort_keys=True)


def overhead_seconds(record: RunRecord) -> float | None:
    """The run's wall time - epochs x sec_per_epoch; None without a wall time or sec_per_epoch, or
    for a resumed run (more than one segment: its phases time the last one).

    The wall time is the runner's ``phases.total`` (the worker's start to its end), or, in a
    record written before phases were timed, finished_at - started_at (``train.run`` alone,
    in whole seconds).
    """
    if record.sec_per_epoch is None or len(record.segments or ()) > 1:
        return None
    if record.phases and record.phases.total is not None:
        wall = record.phases.total
    elif record.started_at and record.finished_at:
        wall = (datetime.fromisoformat(record.finished_at) - datetime.fromisoformat(record.started_at)).total_seconds()
    else:
        return None
    return wall - record.spec.epochs * record.sec_per_epoch


def timed_here(records: list[RunRecord], threads: int, jobs: int) -> list[RunRecord]:
    """The records that time runs of `threads` threads, `jobs` at once, on this machine: for each
    work (``timing_key``) its records timed here (``machine``) when it has any, else all of them,
    so that an estimate mixes machines only for work this one has not timed."""
    here = environment.machine({**environment.cpu_info(), "threads_per_job": threads, "jobs_at_once": jobs})
    keyed = [(record, timing_key(record.spec), environment.machine(record.environment) == here) for record in records]
    timed = {key for _, key, is_here in keyed if is_here}
    return [record for record, key, is_here in keyed if is_here or key not in timed]


@dataclass(frozen=True)
class Timing:
    """The measured cost of runs of one ``timing_key``.

    Attributes:
        sec_per_epoch: median training seconds per epoch of the ok records (s).
        overhead_s: median overhead per run (s, at least 0: older records' times are whole
            seconds); None when no record has a wall time.
        machines: ``machine`` of each record used.
        final_s: median seconds after the last epoch (the final evaluation, writing the record
            and exiting) of the records that timed their phases; None without any.
    """

    sec_per_epoch: float
    overhead_s: float | None
    machines: tuple[str, ...]
    final_s: float | None = None

    def run_seconds(self, epochs: int) -> float:
        return (self.overhead_s or 0.0) + epochs * self.sec_per_epoch


def timings(records: list[RunRecord]) -> dict[str, Timing]:
    """timing_key -> Timing over the ok records with a sec_per_epoch."""
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        if record.status == "ok" and record.sec_per_epoch is not None:
            groups.setdefault(timing_key(record.spec), []).append(record)
    result = {}
    for key, group in groups.items():
        overheads = [s for s in map(overhead_seconds, group) if s is not None]
        finals = [r.phases.final_eval + (r.phases.write_exit or 0.0) for r in group
                  if r.phases and r.phases.final_eval is not None]
        result[key] = Timing(sec_per_epoch=statistics.median(r.sec_per_epoch for r in group),
                             overhead_s=max(0.0, statistics.median(overheads)) if overheads else None,
                             machines=tuple(environment.machine(r.environment) for r in group),
                             final_s=statistics.median(finals) if finals else None)
    return result


# ---------------------------------------------------------------- from FLOPs


def forward_flops(spec: RunSpec) -> int:
    """Forward FLOPs per image of the spec's model at its data's input (``models.flops``), on the
    model built here, once per model, options and input; 0, with a warning, for a model that
    fails to build: its runs are its failures, recorded as they fail, not the other models'."""
    shape, classes = datasets.shape_of(spec.dataset, spec.preprocess)
    return _flops(spec.model, json.dumps(spec.model_options, sort_keys=True), shape, classes)


@functools.cache
def _flops(model: str, options: str, input_shape: tuple[int, int, int], num_classes: int) -> int:
    environment.import_tensorflow_quietly()
    import keras

    import models  # deferred for start-up time: Keras, needed only for runs without records

    try:
        with warnings.catch_warnings():  # built only to count: its warnings are the worker's to give
            warnings.simplefilter("ignore")
            count = models.flops(models.build(model, input_shape, num_classes, **json.loads(options)))
    except Exception as error:  # noqa: BLE001 - a user's model may raise anything; its runs record it
        first = (str(error).strip().splitlines() or [""])[0]
        warnings.warn(f"model {model!r} fails to build at input {input_shape} with {num_classes} classes "
                      f"({type(error).__name__}: {first}); its runs will be recorded failed, the others run",
                      stacklevel=2)
        count = 0
    keras.backend.clear_session()
    return count


def measured_seconds_per_flop(records: list[RunRecord]) -> float | None:
    """Median training seconds per forward FLOP per image of the ok records,
    1 / (flops_per_image x images_per_second); None without one."""
    rates = [1 / (r.flops_per_image * r.images_per_second) for r in records
             if r.status == "ok" and r.flops_per_image and r.images_per_second]
    return statistics.median(rates) if rates else None


def seconds_per_flop(records: list[RunRecord]) -> float:
    """``measured_seconds_per_flop``, or NOMINAL_SECONDS_PER_FLOP without a record to measure it."""
    measured = measured_seconds_per_flop(records)
    return NOMINAL_SECONDS_PER_FLOP if measured is None else measured


# ---------------------------------------------------------------- from the same model's images


@dataclass(frozen=True)
class Sizes:
    """What a run's images come to: training images, test images, classes, and the input shape."""

    train: int
    test: int
    classes: int
    input_shape: tuple[int, ...]

    def evaluated(self, eval_per_class: int | None) -> int:
        """Images of each epoch's evaluation: the stratified subset's, else the whole test set's."""
        return self.test if eval_per_class is None else eval_per_class * self.classes


def model_key(model: str, options: dict, input_shape) -> str:
    """The same model, as text: its name, options and input shape; any dataset, protocol or batch size."""
    return json.dumps({"model": model, "model_options": options, "input_shape": list(input_shape)}, sort_keys=True)


@dataclass(frozen=True)
class ImageSeconds:
    """The measured cost of one model (``model_key``) per image, over its ok records of any protocol.

    Attributes:
        train_s: median training seconds per training image (1 / images_per_second).
        eval_s: median evaluation seconds per evaluated image: of each record, its median
            epoch's evaluation seconds / the images each epoch evaluates.
        overhead_s: median of the rest of a run (at least 0): its wall time - its epochs' training
            and evaluations (start-up, data, build, the first epoch's tracing); 0 without a wall time.
        machines: ``machine`` of each record used.
    """

    train_s: float
    eval_s: float
    overhead_s: float
    machines: tuple[str, ...]

    def run_seconds(self, spec: RunSpec, sizes: Sizes) -> float:
        """overhead + epochs x (training images x train_s + evaluated images x eval_s) + the final
        evaluation apart of the whole test set (with ``eval_per_class``) x eval_s."""
        per_epoch = sizes.train * self.train_s + sizes.evaluated(spec.eval_per_class) * self.eval_s
        final = sizes.test * self.eval_s if spec.eval_per_class is not None else 0.0
        return self.overhead_s + spec.epochs * per_epoch + final


def image_seconds(records: list[RunRecord]) -> dict[str, ImageSeconds]:
    """model_key -> ImageSeconds over the ok records with images per second, an input shape and epochs."""
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        if record.status == "ok" and record.images_per_second and record.input_shape and record.history:
            groups.setdefault(model_key(record.spec.model, record.spec.model_options, record.input_shape),
                              []).append(record)
    test = functools.cache(datasets.test_size)  # once per dataset
    result = {}
    for key, group in groups.items():
        rests = [s for s in (_rest_seconds(r) for r in group) if s is not None]
        result[key] = ImageSeconds(
            train_s=statistics.median(1 / r.images_per_second for r in group),
            eval_s=statistics.median(statistics.median(e["eval_seconds"] for e in r.history)
                                     / _record_sizes(r, test).evaluated(r.spec.eval_per_class) for r in group),
            overhead_s=max(0.0, statistics.median(rests)) if rests else 0.0,
            machines=tuple(environment.machine(r.environment) for r in group))
    return result


def _record_sizes(record: RunRecord, test: Callable) -> Sizes:
    spec = record.spec
    return Sizes(train=round(record.images_per_second * record.sec_per_epoch),
                 test=test(spec.dataset, spec.preprocess) if spec.eval_per_class is None else 0,
                 classes=record.num_classes or 0, input_shape=tuple(record.input_shape))


def _rest_seconds(record: RunRecord) -> float | None:
    """``overhead_seconds`` less the run's evaluations, per epoch and final."""
    overhead = overhead_seconds(record)
    if overhead is None:
        return None
    final = record.phases.final_eval if record.phases and record.phases.final_eval else 0.0
    return overhead - sum(epoch["eval_seconds"] for epoch in record.history) - final


# ---------------------------------------------------------------- the order


SAME_WORK, PER_IMAGE, FROM_FLOPS = "records", "per image", "from FLOPs"  # where an estimate comes from


@dataclass(frozen=True)
class Estimate:
    """A run's expected seconds, and where they come from: SAME_WORK, PER_IMAGE or FROM_FLOPS."""

    seconds: float
    source: str


def estimates(specs: list[RunSpec], records: list[RunRecord],
              flops: Callable[[RunSpec], int] = forward_flops) -> dict[str, Estimate]:
    """run_id -> the Estimate of each spec (see the module docstring).

    Args:
        specs: the runs.
        records: the records that time them.
        flops: forward FLOPs per image of a spec's model, called only for specs its model's
            records do not time; tests pass a fake one.
    """
    known, per_image, rate = timings(records), image_seconds(records), seconds_per_flop(records)
    rate_of = {model: measured_seconds_per_flop([r for r in records if r.spec.model == model])
               for model in {spec.model for spec in specs}}
    overheads = [s for s in map(overhead_seconds, (r for r in records if r.status == "ok")) if s is not None]
    overhead = max(0.0, statistics.median(overheads)) if overheads else 0.0
    sizes = functools.cache(_spec_sizes)  # once per dataset: without a subset, its source is inspected
    found = {}
    for spec in specs:
        timing = known.get(timing_key(spec))
        if timing:
            found[spec.run_id] = Estimate(timing.run_seconds(spec.epochs), SAME_WORK)
            continue
        size = sizes(spec.dataset, spec.preprocess)
        model = per_image.get(model_key(spec.model, spec.model_options, size.input_shape))
        found[spec.run_id] = (Estimate(model.run_seconds(spec, size), PER_IMAGE) if model else Estimate(
            overhead + flops(spec) * size.train * spec.epochs * (rate_of[spec.model] or rate), FROM_FLOPS))
    return found


def _spec_sizes(dataset: str, preprocess) -> Sizes:
    shape, classes = datasets.shape_of(dataset, preprocess)
    return Sizes(datasets.train_size(dataset, preprocess), datasets.test_size(dataset, preprocess), classes, shape)


def expected_seconds(specs: list[RunSpec], records: list[RunRecord],
                     flops: Callable[[RunSpec], int] = forward_flops) -> dict[str, float]:
    """run_id -> the seconds each spec is expected to take (``estimates``)."""
    return {run_id: estimate.seconds for run_id, estimate in estimates(specs, records, flops).items()}


def untimed_estimates(specs: list[RunSpec], records: list[RunRecord],
                      flops: Callable[[RunSpec], int] = forward_flops) -> dict[str, Estimate]:
    """run_id -> Estimate of the specs no record of their work times: from their model's
    seconds per image, else from their FLOPs when some record measured a seconds per FLOP (a
    nominal rate is no estimate)."""
    known = timings(records)
    found = estimates([spec for spec in specs if timing_key(spec) not in known], records, flops)
    measured = measured_seconds_per_flop(records) is not None
    return {run_id: e for run_id, e in found.items() if e.source == PER_IMAGE or measured}


def longest_first(specs: list[RunSpec], records: list[RunRecord],
                  flops: Callable[[RunSpec], int] = forward_flops) -> list[RunSpec]:
    """The specs, longest expected first (``expected_seconds``); equal ones in the given order."""
    expected = expected_seconds(specs, records, flops)
    return sorted(specs, key=lambda spec: -expected[spec.run_id])


def makespan(seconds: list[float], jobs: int) -> float:
    """Wall time of runs started in this order, each on the first free job."""
    free = [0.0] * min(jobs, len(seconds))
    for duration in seconds:
        heapq.heappush(free, heapq.heappop(free) + duration)
    return max(free, default=0.0)
