"""How long a run should take, and the order the runner starts runs in: longest expected first.

Started longest first, the runs end together: the last ones to start are the shortest, so at
the end no job waits long for another (the longest-processing-time rule). ``bench run`` and
``bench plan`` both take the order of ``runner.pending_specs``, which is ``longest_first`` on
the records of the results folder.

A run's expected seconds:

- from the ok records that time the same work (``timing_key``): ``Timing.run_seconds``,
  overhead + epochs x seconds per epoch, the estimate ``bench plan`` prints;
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
    """The run's wall time - epochs x sec_per_epoch; None without a wall time or sec_per_epoch.

    The wall time is the runner's ``phases.total`` (the worker's start to its end), or, in a
    record written before phases were timed, finished_at - started_at (``train.run`` alone,
    in whole seconds).
    """
    if record.sec_per_epoch is None:
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
    """

    sec_per_epoch: float
    overhead_s: float | None
    machines: tuple[str, ...]

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
        result[key] = Timing(sec_per_epoch=statistics.median(r.sec_per_epoch for r in group),
                             overhead_s=max(0.0, statistics.median(overheads)) if overheads else None,
                             machines=tuple(environment.machine(r.environment) for r in group))
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


# ---------------------------------------------------------------- the order


def expected_seconds(specs: list[RunSpec], records: list[RunRecord],
                     flops: Callable[[RunSpec], int] = forward_flops) -> dict[str, float]:
    """run_id -> the seconds each spec is expected to take (see the module docstring).

    Args:
        specs: the runs.
        records: the records that time them.
        flops: forward FLOPs per image of a spec's model, called only for specs without a
            timing; tests pass a fake one.
    """
    known, rate = timings(records), seconds_per_flop(records)
    rate_of = {model: measured_seconds_per_flop([r for r in records if r.spec.model == model])
               for model in {spec.model for spec in specs}}
    overheads = [s for s in map(overhead_seconds, (r for r in records if r.status == "ok")) if s is not None]
    overhead = max(0.0, statistics.median(overheads)) if overheads else 0.0
    images = functools.cache(datasets.train_size)  # once per dataset: without a subset, its source is inspected
    expected = {}
    for spec in specs:
        timing = known.get(timing_key(spec))
        expected[spec.run_id] = (timing.run_seconds(spec.epochs) if timing else
                                 overhead + flops(spec) * images(spec.dataset, spec.preprocess) * spec.epochs
                                 * (rate_of[spec.model] or rate))
    return expected


def from_flops(specs: list[RunSpec], records: list[RunRecord],
               flops: Callable[[RunSpec], int] = forward_flops) -> dict[str, float]:
    """run_id -> expected seconds (``expected_seconds``) of the specs no record times, estimated
    from their FLOPs; {} when no record measured a seconds per FLOP (a nominal rate is no estimate)."""
    known = timings(records)
    untimed = [spec for spec in specs if timing_key(spec) not in known]
    if not untimed or measured_seconds_per_flop(records) is None:
        return {}
    return expected_seconds(untimed, records, flops)


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
