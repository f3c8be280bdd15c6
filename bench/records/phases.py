"""Where a run's wall time goes: its phases, timed in the worker and the runner, and how busy
each invocation of the runner kept its jobs.

A run's phases, in the order they happen, in seconds (``Phases``):

  startup          the worker process's start to the beginning of ``train.run``: Python,
                   TensorFlow and the harness importing. Timed by the worker against the Unix
                   time the runner puts in its environment (SPAWNED_ENV) just before starting it;
  data             loading the dataset (from the cache, or from its source and preprocessed) and
                   making the tf.data pipelines; ``data_cached`` says whether the cache held it;
  build            building and compiling the model;
  first_epoch      training of epoch 1, which includes tracing and filling tf.data's cache;
  steady_training  training of the other epochs, summed;
  epoch_eval       the evaluations after each epoch, summed;
  final_eval       the whole-test-set evaluation after the last epoch when it runs apart (the
                   per-epoch one on a subset, ``eval_per_class``); None otherwise;
  write_exit       the worker writing its record and exiting (interpreter and TensorFlow shutting
                   down), timed by the runner: total - startup - run;
  total            timed by the runner: from just before it starts the worker to the worker's end.

``run`` is ``train.run`` from its beginning to its record, timed in the worker: the phases from
data to final_eval plus the rest of it (seeding, describing the environment, Keras setting up
fit, counting FLOPs). So total = startup + run + write_exit. A run the runner records itself (a
worker that died or timed out) has only ``total`` and ``spawned_at``.

An *invocation* is one call of ``runner.run_benchmark``: the runs of one ``bench run``, or of one
round of ``bench run --until-ci``. The runner writes its id into the environment of every record
it writes (INVOCATION_KEY); its efficiency is the runs' total seconds / (jobs x the wall time from
its first run's start to its last run's end).
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

SPAWNED_ENV = "BENCH_SPAWNED_AT"  # Unix time the runner started the worker, set for every worker
INVOCATION_KEY = "invocation"  # of a record's environment: the runner's invocation that wrote it
JOBS_KEY = "invocation_jobs"  # the runs its runner ran at once (jobs_at_once counts the whole machine's)


@dataclass(frozen=True)
class Phases:
    """Seconds of each phase of one run (see the module docstring); None for a phase the run did
    not reach, or that its record's writer could not time.

    Attributes:
        data_cached: whether the dataset came from the on-disk cache.
        spawned_at: Unix time (s, the runner's clock) the runner started the worker; with
            ``total`` it places the run in its invocation's wall time.
    """

    startup: float | None = None
    data: float | None = None
    data_cached: bool | None = None
    build: float | None = None
    first_epoch: float | None = None
    steady_training: float | None = None
    epoch_eval: float | None = None
    final_eval: float | None = None
    run: float | None = None
    write_exit: float | None = None
    total: float | None = None
    spawned_at: float | None = None

    @classmethod
    def from_dict(cls, mapping) -> "Phases":
        """From a record's JSON; unknown keys are ignored, as a record's are.

        Raises:
            ValueError: not an object, or a value of the wrong type (naming the key).
        """
        if not isinstance(mapping, dict):
            raise ValueError(f"phases is {mapping!r}, not an object or null")
        values = {f.name: mapping.get(f.name) for f in dataclasses.fields(cls)}
        for key, value in values.items():
            flag = key == "data_cached"
            if value is not None and (isinstance(value, bool) != flag or not isinstance(value, (int, float))):
                raise ValueError(f"phases.{key} is {value!r}, not {'true, false' if flag else 'a number'} or null")
        return cls(**values)


# ---------------------------------------------------------------- in the worker


def startup_seconds(environ=os.environ, now=time.time) -> float | None:
    """Seconds since the runner started this process (SPAWNED_ENV), None when it did not say."""
    spawned = environ.get(SPAWNED_ENV)
    return now() - float(spawned) if spawned else None


class Stopwatch:
    """The phases of ``train.run`` as they are timed, on an injected clock (``time.perf_counter``
    in a run, a fake one in tests); what was timed survives a failure of the run."""

    def __init__(self, clock=time.perf_counter):
        self.clock = clock
        self.began = clock()
        self.seconds: dict[str, float] = {}
        self.data_cached: bool | None = None

    @contextmanager
    def phase(self, name: str):
        """Time the block as phase ``name`` (data, build or final_eval), also when it raises."""
        start = self.clock()
        try:
            yield
        finally:
            self.seconds[name] = self.clock() - start

    def phases(self, epochs: list[dict], startup: float | None) -> Phases:
        """The worker's phases, ``run`` ending now.

        Args:
            epochs: ``train.EpochTimer.epochs``, timed on the same clock.
            startup: ``startup_seconds()`` of the worker, None when not known.
        """
        training = [epoch["train_seconds"] for epoch in epochs]
        return Phases(startup=startup, data=self.seconds.get("data"), data_cached=self.data_cached,
                      build=self.seconds.get("build"), first_epoch=training[0] if epochs else None,
                      steady_training=sum(training[1:]) if epochs else None,
                      epoch_eval=sum(epoch["eval_seconds"] for epoch in epochs) if epochs else None,
                      final_eval=self.seconds.get("final_eval"), run=self.clock() - self.began)


# ---------------------------------------------------------------- in the runner


def timed_by_runner(record, spawned_at: float, total: float):
    """The record with what only the runner sees added to its phases: ``spawned_at``, ``total``
    and, when the worker timed its part, ``write_exit``.

    Args:
        record: a ``RunRecord``, the worker's or one the runner made for a dead worker.
        spawned_at: Unix time just before the runner started the worker.
        total: seconds from then to the worker's end.
    """
    phases = record.phases or Phases()
    worker = None if phases.startup is None or phases.run is None else phases.startup + phases.run
    return dataclasses.replace(record, phases=dataclasses.replace(
        phases, spawned_at=spawned_at, total=total, write_exit=None if worker is None else total - worker))


@dataclass(frozen=True)
class Efficiency:
    """How busy one invocation kept its jobs.

    Attributes:
        invocation: its id (INVOCATION_KEY).
        jobs: runs its runner ran at once (``JOBS_KEY``; ``jobs_at_once`` counts the machine's).
        runs: its records with the runner's times.
        run_seconds: their total seconds, summed.
        wall_seconds: its first run's start to its last run's end.
    """

    invocation: str
    jobs: int
    runs: int
    run_seconds: float
    wall_seconds: float

    @property
    def share(self) -> float:
        """run_seconds / (jobs x wall_seconds): 1 when every job ran a run all the time; NaN for no wall time."""
        return self.run_seconds / (self.jobs * self.wall_seconds) if self.wall_seconds > 0 else math.nan


def efficiencies(records: list) -> list[Efficiency]:
    """The efficiency of each invocation, in the order they started, from its records that carry
    the invocation id and the runner's times (older records have neither and are left out)."""
    groups: dict[str, list] = {}
    for record in records:
        phases = record.phases
        if phases and phases.total is not None and phases.spawned_at is not None and INVOCATION_KEY in record.environment:
            groups.setdefault(record.environment[INVOCATION_KEY], []).append(record)
    found = []
    for invocation, group in groups.items():
        phases = [record.phases for record in group]
        start = min(p.spawned_at for p in phases)
        wall = max(p.spawned_at + p.total for p in phases) - start
        jobs = max(record.environment.get(JOBS_KEY, 1) for record in group)
        found.append((start, Efficiency(invocation, jobs, len(group), sum(p.total for p in phases), wall)))
    return [efficiency for _, efficiency in sorted(found, key=lambda pair: pair[0])]
