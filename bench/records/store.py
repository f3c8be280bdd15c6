"""Run records: their schema and its upgrades, reading one record file, and loading into pandas.

Records are the source of truth: one JSON file per run in a results folder
(``bench.records.results.Results`` names, writes and lists them), written to a temporary file
and renamed, so a reader never sees half a record. Tables and figures are derived only from them. The files are strict JSON: a measure that is NaN or
infinite (a diverged run's loss) is written as null, and the record's status and error say
why; files written before that, with a bare NaN, still read.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.files import NotARegularFile, read_regular
from bench.records import upgrades
from bench.records.phases import Phases
from bench.records.upgrades import SCHEMA_VERSION
from bench.spec import RunSpec

STATUSES = ("ok", "failed", "diverged", "timeout")
# A run learned nothing when it ended at chance (a test accuracy at most CHANCE / classes) with a
# test loss no better than a uniform guess's (above log(classes) - NO_BETTER nats): at
# learning_rate=1e6 a test loss of 1.5e6 at 10 %; at 1 or 10, an MLP or a CNN stuck at 10 % with
# a loss of log(10) = 2.303, the uniform guess itself. That is a finding, not a failure (the
# report's MLP on raw CIFAR-10 pixels does it). A learning run does neither: its loss falls
# from about log(classes).
CHANCE, NO_BETTER = 1.5, 0.01


@dataclass(frozen=True)
class RunRecord:
    """The outcome of one run. A failure is a record too, with ``error`` saying why.

    Measured fields are None when the run did not get that far, or when the value was NaN or
    infinite (in the JSON form; ``error`` says why).

    Attributes:
        status: "ok" | "failed" | "diverged" (a loss that became NaN or infinite, or grew far
            past its start; see ``bench.run.train.divergence``) | "timeout". An ok record has a
            test accuracy.
        test_accuracy: fraction in [0, 1] on the whole test set after the final epoch.
        test_loss: cross-entropy (nats) on the test set after the final epoch.
        history: a mapping per epoch: epoch (1-based), loss, accuracy, val_loss,
            val_accuracy (val = the test set), train_seconds, eval_seconds.
        first_epoch_seconds: training seconds of epoch 1, which includes tracing.
        sec_per_epoch: median training seconds of epochs 2.. (of epoch 1 if there is only one).
        images_per_second: training images / sec_per_epoch.
        build_seconds: seconds to build and compile the model.
        params_total: Keras count_params() (includes batch-norm moving statistics).
        params_trainable: trainable parameters only.
        flops_per_image: forward FLOPs per image (2 per multiply-add).
        input_shape: (height, width, channels) the model was built for; num_classes its outputs.
        model_family: the registry's family of the model ("fishnet", "baseline", ...).
        phases: where the run's wall time went (``bench.records.phases.Phases``, seconds); None in
            records written before phases were timed.
        files: the run's files beside its record, kind ("log", "history", "tensorboard",
            "weights") -> path relative to the results folder (``bench.records.runfiles``); empty in
            records written before runs had them.
        segments: a run's stretches in one process each, oldest first (``bench.run.train.segment``):
            machine, host, started_at, finished_at, epochs [first, last]; one for a run that never
            stopped; None in records written without a checkpoint (before runs had them).
        environment: versions, CPU, GPU, threads per job, jobs at once, host, git commit,
            the machine's 1-minute load average at the run's start and end
            (load_at_start, load_at_end), the runner's invocation that wrote the record
            (``bench.records.phases.INVOCATION_KEY``).
        started_at, finished_at: ISO 8601 UTC.
    """

    run_id: str
    spec: RunSpec
    status: str
    error: str | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    history: list = field(default_factory=list)
    first_epoch_seconds: float | None = None
    sec_per_epoch: float | None = None
    images_per_second: float | None = None
    build_seconds: float | None = None
    params_total: int | None = None
    params_trainable: int | None = None
    flops_per_image: int | None = None
    input_shape: tuple[int, int, int] | None = None
    num_classes: int | None = None
    model_family: str | None = None
    phases: Phases | None = None
    files: dict = field(default_factory=dict)
    segments: list | None = None
    environment: dict = field(default_factory=dict)
    started_at: str | None = None
    finished_at: str | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def learned_nothing(self) -> bool:
        """An ok run that ended at chance (``learned_nothing``): a finding Table 4 counts, with a
        mark; told from the record's outcome, so a record of any version says it."""
        return (self.status == "ok" and None not in (self.test_loss, self.test_accuracy, self.num_classes)
                and learned_nothing(self.test_loss, self.test_accuracy, self.num_classes))

    def to_dict(self) -> dict:
        """The JSON form, with the spec's (``RunSpec.to_dict``): strict JSON, NaN and infinities as null."""
        return finite({**dataclasses.asdict(self), "spec": self.spec.to_dict()})

    @classmethod
    def from_dict(cls, mapping: dict) -> "RunRecord":
        """Rebuild a record from JSON, older schema versions upgraded; raises ValueError naming what is wrong."""
        if not isinstance(mapping, dict):
            raise ValueError("not a JSON object")
        mapping = upgrades.record(mapping)
        missing = {"run_id", "spec", "status"} - mapping.keys()
        if missing:
            raise ValueError(f"missing keys {sorted(missing)}")
        if mapping["status"] not in STATUSES:
            raise ValueError(f"status {mapping['status']!r} is not one of {STATUSES}")
        if mapping["status"] == "ok" and mapping.get("test_accuracy") is None:
            raise ValueError("status is ok but test_accuracy is missing")
        _check_types(mapping)
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in mapping.items() if k in names}
        shape, phases = fields.get("input_shape"), fields.get("phases")
        return cls(**{**fields, "spec": _spec(mapping["spec"]), "input_shape": tuple(shape) if shape else None,
                      "phases": None if phases is None else Phases.from_dict(phases)})


def learned_nothing(test_loss: float, test_accuracy: float, num_classes: int) -> bool:
    """Whether a run ended at chance accuracy with a test loss no better than a uniform guess's (see CHANCE)."""
    return test_accuracy <= CHANCE / num_classes and test_loss > math.log(num_classes) - NO_BETTER


def finite(value):
    """``value`` (JSON-like) with every NaN or infinite float replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def _spec(mapping) -> RunSpec:
    if not isinstance(mapping, dict):
        raise ValueError(f"spec is a {type(mapping).__name__}, not an object")
    try:
        return RunSpec.from_dict(upgrades.spec(mapping))
    except (TypeError, KeyError, ValueError) as error:
        raise ValueError(f"spec does not match RunSpec: {error}") from None


_NUMBER_FIELDS = ("test_accuracy", "test_loss", "first_epoch_seconds", "sec_per_epoch", "images_per_second",
                  "build_seconds", "params_total", "params_trainable", "flops_per_image")


# The environment's keys the tables and the schedule read (bench.environment.worker_environment writes them).
_ENVIRONMENT_TYPES = {"cpu_model": str, "host": str, "cpu_count": int, "threads_per_job": int, "jobs_at_once": int,
                      "load_at_end": (int, float), "cpu_flags": list}
_ENVIRONMENT_WORDS = {str: "text", int: "an integer", (int, float): "a number", list: "a list of names"}


def _check_types(mapping: dict) -> None:
    """Refuse a record whose fields would break the tables built from it."""
    for key in _NUMBER_FIELDS:
        value = mapping.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{key} is {value!r}, not a number or null")
    for key in ("environment", "files"):
        if not isinstance(mapping.get(key, {}), dict):
            raise ValueError(f"{key} is not an object")
    for key in ("started_at", "finished_at"):
        if not isinstance(mapping.get(key) or "", str):
            raise ValueError(f"{key} is {mapping[key]!r}, not an ISO 8601 time or null")
    environment = mapping.get("environment", {})
    for key, kinds in _ENVIRONMENT_TYPES.items():
        value = environment.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
            raise ValueError(f"environment.{key} is {value!r}, not {_ENVIRONMENT_WORDS[kinds]} or null")
    if not all(isinstance(flag, str) for flag in environment.get("cpu_flags") or ()):
        raise ValueError(f"environment.cpu_flags is {environment['cpu_flags']!r}, not a list of names")
    if not isinstance(mapping["run_id"], str) or not isinstance(mapping.get("error") or "", str):
        raise ValueError(f"run_id {mapping['run_id']!r} or error {mapping.get('error')!r} is not text")
    history = mapping.get("history", [])
    if not (isinstance(history, list) and all(isinstance(epoch, dict) for epoch in history)):
        raise ValueError("history is not a list of objects")


# ---------------------------------------------------------------- a record file


def read_record(path: Path) -> RunRecord:
    """Read one record; raises ValueError naming the file and what is wrong with it.

    Only a regular file is read: a FIFO or a device named ``*.json`` is refused, never waited on.
    """
    try:
        return RunRecord.from_dict(json.loads(read_regular(path)))
    except NotARegularFile as error:
        raise ValueError(f"{path}: {error.kind}, not a record file; skipped") from None
    except RecursionError:
        raise ValueError(f"{path}: nested deeper than Python's JSON reader goes; not a record, skipped") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None


# ---------------------------------------------------------------- pandas

RUN_COLUMNS = (
    "run_id", "config_key", "profile", "model", "model_options", "dataset", "data_hash", "preprocess",
    "repeat", "seed", "epochs", "batch_size", "optimizer", "augment", "threads", "status",
    "error", "test_accuracy", "test_loss", "first_epoch_seconds", "sec_per_epoch",
    "images_per_second", "build_seconds", "params_total", "params_trainable",
    "flops_per_image", "jobs_at_once", "load_at_end", "host", "cpu", "started_at", "finished_at",
)


def _run_row(record: RunRecord) -> dict:
    spec = record.spec
    as_text = lambda value: json.dumps(value, sort_keys=True)  # noqa: E731 - dict columns as text
    return {
        **{k: getattr(record, k) for k in RUN_COLUMNS if hasattr(record, k) and k != "spec"},
        **{k: getattr(spec, k) for k in ("profile", "model", "dataset", "data_hash", "repeat", "seed", "epochs",
                                         "batch_size", "threads")},
        **{k: as_text(spec.to_dict()[k]) for k in ("model_options", "preprocess", "optimizer", "augment")},
        "config_key": spec.config_key,
        "jobs_at_once": record.environment.get("jobs_at_once"),
        "load_at_end": record.environment.get("load_at_end"),
        "host": record.environment.get("host"),
        "cpu": record.environment.get("cpu_model"),
    }


def runs_frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per run, spec fields flattened (dict-valued fields as sorted JSON text)."""
    return pd.DataFrame([_run_row(r) for r in records], columns=list(RUN_COLUMNS))


HISTORY_COLUMNS = ("run_id", "config_key", "model", "dataset", "repeat", "epoch", "loss",
                   "accuracy", "val_loss", "val_accuracy", "train_seconds", "eval_seconds")


def history_frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per epoch of every run."""
    rows = []
    for record in records:
        spec = record.spec
        ids = {"run_id": record.run_id, "config_key": spec.config_key, "model": spec.model,
               "dataset": spec.dataset, "repeat": spec.repeat}
        rows.extend({**ids, **epoch} for epoch in record.history)
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
