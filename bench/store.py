"""Run specs and run records: their schema, atomic writes, and loading into pandas.

Records are the source of truth: one JSON file per run in ``<results>/runs/<run_id>.json``,
written to a temporary file and renamed, so a reader never sees half a record. Tables and
figures are derived only from them.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bench import __version__

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "diverged", "timeout")
# Execution settings change how fast a run goes, not what it computes: they are recorded
# but left out of its identity, so a resumed run may use other threads or a longer timeout.
# (The speed-ups, bench.speedups, change float32 rounding, not the arithmetic; `--no-speedups`
# checks that.)
EXECUTION_FIELDS = ("threads", "timeout_s", "speedups")
# What differs between the repeats of one configuration.
REPEAT_FIELDS = ("repeat", "seed")


@dataclass(frozen=True)
class RunSpec:
    """Everything that decides one training run; every hyper-parameter is explicit.

    Attributes:
        profile: name of the profile the run was planned from.
        model: registered model name; ``model_options`` its builder options.
        dataset: dataset name; ``preprocess`` the rest of its ``DatasetRequest`` (size,
            channels, scale_pixels, train_per_class, subset_seed, ...).
        repeat: index of this repeat (0-based); ``seed`` fixes initialisation, data order
            and augmentation.
        epochs, batch_size: training length and batch size (images).
        optimizer: name, learning_rate, momentum, schedule ("constant" | "cosine"), weight_decay.
        augment: flip (bool), brightness (max delta, fraction of 1), contrast ([lo, hi] factor),
            hue (max delta), saturation ([lo, hi] factor); hue and saturation apply to RGB only.
        eval_per_class: the per-epoch evaluation (``history`` val_*) uses a stratified test
            subset of this many images per class; None uses the whole test set. The final
            ``test_accuracy`` is always on the whole test set.
        threads: TensorFlow intra-op threads of the worker (inter-op is 1 or 2, see worker).
        timeout_s: seconds after which the worker is killed and the run recorded as timeout.
        speedups: the harness's speed-ups (``bench.speedups``: oneDNN's kernels asked for,
            and the model's); False trains stock Keras with TensorFlow's default settings, to
            check that the speed-ups change no result.
    """

    profile: str
    model: str
    model_options: dict
    dataset: str
    preprocess: dict
    repeat: int
    seed: int
    epochs: int
    batch_size: int
    optimizer: dict
    augment: dict
    eval_per_class: int | None = None
    threads: int = 1
    timeout_s: float = 3600.0
    speedups: bool = True
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, mapping: dict) -> "RunSpec":
        return cls(**mapping)

    @property
    def run_id(self) -> str:
        """Hash of the canonical spec (execution settings left out) and the project version."""
        return _digest(self.to_dict(), drop=EXECUTION_FIELDS, extra={"version": __version__})

    @property
    def config_key(self) -> str:
        """Identity of the configuration: the spec but for seed, repeat and execution settings.

        Runs with equal ``config_key`` are repeats of one experiment and may be averaged.
        """
        return _digest(self.to_dict(), drop=EXECUTION_FIELDS + REPEAT_FIELDS)


def _digest(mapping: dict, drop: tuple[str, ...], extra: dict | None = None) -> str:
    kept = {k: v for k, v in mapping.items() if k not in drop} | (extra or {})
    canonical = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunRecord:
    """The outcome of one run. A failure is a record too, with ``error`` saying why.

    Measured fields are None when the run did not get that far.

    Attributes:
        status: "ok" | "failed" | "diverged" (a NaN or infinite loss) | "timeout".
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
        environment: versions, CPU, GPU, threads per job, jobs at once, host, git commit,
            the machine's 1-minute load average at the run's start and end
            (load_at_start, load_at_end).
        started_at, finished_at: ISO 8601 UTC.
    """

    run_id: str
    spec: dict
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
    environment: dict = field(default_factory=dict)
    started_at: str | None = None
    finished_at: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, mapping: dict) -> "RunRecord":
        """Rebuild a record from JSON; raises ValueError naming what is wrong."""
        if not isinstance(mapping, dict):
            raise ValueError("not a JSON object")
        version = mapping.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {version!r} is not {SCHEMA_VERSION}")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {"run_id", "spec", "status"} - mapping.keys()
        if missing:
            raise ValueError(f"missing keys {sorted(missing)}")
        if mapping["status"] not in STATUSES:
            raise ValueError(f"status {mapping['status']!r} is not one of {STATUSES}")
        if not isinstance(mapping["spec"], dict):
            raise ValueError(f"spec is a {type(mapping['spec']).__name__}, not an object")
        try:
            RunSpec.from_dict(mapping["spec"])
        except TypeError as error:
            raise ValueError(f"spec does not match RunSpec: {error}") from None
        _check_types(mapping)
        return cls(**{k: v for k, v in mapping.items() if k in names})


_NUMBER_FIELDS = ("test_accuracy", "test_loss", "first_epoch_seconds", "sec_per_epoch", "images_per_second",
                  "build_seconds", "params_total", "params_trainable", "flops_per_image")


def _check_types(mapping: dict) -> None:
    """Refuse a record whose fields would break the tables built from it."""
    for key in _NUMBER_FIELDS:
        value = mapping.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{key} is {value!r}, not a number or null")
    if not isinstance(mapping.get("environment", {}), dict):
        raise ValueError("environment is not an object")
    history = mapping.get("history", [])
    if not (isinstance(history, list) and all(isinstance(epoch, dict) for epoch in history)):
        raise ValueError("history is not a list of objects")


# ---------------------------------------------------------------- files


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def runs_dir(results: str | Path) -> Path:
    return Path(results) / "runs"


def log_path(results: str | Path, run_id: str) -> Path:
    return Path(results) / "logs" / f"{run_id}.log"


def write_log(results: str | Path, run_id: str, text: str) -> Path:
    """A worker's output beside the records, in ``<results>/logs/<run_id>.log``, atomically."""
    path = log_path(results, run_id)
    _write_atomic(path, lambda f: f.write(text))
    return path


def record_path(results: str | Path, run_id: str) -> Path:
    return runs_dir(results) / f"{run_id}.json"


def _write_atomic(path: Path, write) -> None:
    """Call ``write(file)`` on a temp file in the same folder, fsync it, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON so that a reader sees the whole file or none of it (temp file, fsync, rename)."""
    _write_atomic(path, lambda f: json.dump(payload, f, indent=1, sort_keys=True, allow_nan=True))


def write_record(results: str | Path, record: RunRecord) -> Path:
    path = record_path(results, record.run_id)
    write_json_atomic(path, record.to_dict())
    return path


def read_record(path: Path) -> RunRecord:
    """Read one record; raises ValueError naming the file and what is wrong with it."""
    try:
        return RunRecord.from_dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None


def load_records(results: str | Path) -> list[RunRecord]:
    """All valid records in a results folder; each unreadable file is named in a warning."""
    records = []
    for path in sorted(runs_dir(results).glob("*.json")):
        try:
            records.append(read_record(path))
        except ValueError as error:
            warnings.warn(f"skipping unreadable record {error}", stacklevel=2)
    return records


def finished_ids(results: str | Path, include_failed: bool = True) -> set[str]:
    """run_ids that need no rerun: ok and diverged always, failed and timeout unless retried."""
    settled = {"ok", "diverged"} | ({"failed", "timeout"} if include_failed else set())
    return {r.run_id for r in load_records(results) if r.status in settled}


# ---------------------------------------------------------------- pandas

RUN_COLUMNS = (
    "run_id", "config_key", "profile", "model", "model_options", "dataset", "preprocess",
    "repeat", "seed", "epochs", "batch_size", "optimizer", "augment", "threads", "status",
    "error", "test_accuracy", "test_loss", "first_epoch_seconds", "sec_per_epoch",
    "images_per_second", "build_seconds", "params_total", "params_trainable",
    "flops_per_image", "jobs_at_once", "load_at_end", "host", "cpu", "started_at", "finished_at",
)


def _run_row(record: RunRecord) -> dict:
    spec = RunSpec.from_dict(record.spec)
    as_text = lambda value: json.dumps(value, sort_keys=True)  # noqa: E731 - dict columns as text
    return {
        **{k: getattr(record, k) for k in RUN_COLUMNS if hasattr(record, k) and k != "spec"},
        **{k: getattr(spec, k) for k in ("profile", "model", "dataset", "repeat", "seed", "epochs", "batch_size", "threads")},
        **{k: as_text(getattr(spec, k)) for k in ("model_options", "preprocess", "optimizer", "augment")},
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
        spec = RunSpec.from_dict(record.spec)
        ids = {"run_id": record.run_id, "config_key": spec.config_key, "model": spec.model,
               "dataset": spec.dataset, "repeat": spec.repeat}
        rows.extend({**ids, **epoch} for epoch in record.history)
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
