"""A run's files beside its record, named after the run, and the events its log carries.

In a results folder (``bench.records.results.Results`` owns the folders' names), beside
``runs/<run_id>.json`` (``bench.records.store``):

    logs/<name>.log               the worker's output, written as it trains (``tail -f`` works)
    history/<name>.csv            the epochs of the record's history, one line each
    tensorboard/<name>/           TensorBoard logs, with ``tensorboard = true`` (``--tensorboard``)
    weights/<name>.weights.h5     the final weights, with ``save_weights = true`` (``--save-weights``)
    checkpoints/<run_id>/         the run's state after its latest epoch while it has no record
                                  (``bench.run.checkpoint``), named by run id so that any invocation
                                  finds it; removed once its record is written, kept with --save-weights;
                                  an empty ``checkpoints/`` goes when the runner ends

``<name>`` is ``<model>[-<option>=<value>...]-<dataset>-seed<k>``, the options being those in
which the model's runs differ, among the runs to run and those recorded in the folder
(``fishnet55-head=conv-cifar10-seed0``); a dataset given by the path of an .npz file is named
by the file's stem (``/home/me/data/my.npz``: ``my``). A name whose log belongs to another run
(the same seed run again with other settings, or after a version bump) gets that run's id
appended. Every name is one safe file name (``bench.files.safe_name``): whatever a model, an
option or a dataset is called, its files stay in their folder. Before any run, ``plan``
refuses in one line a folder of these that is not a folder, and a link, FIFO or folder where
a run's file goes. The record names its files, relative to the results folder (``RunRecord.files``).

The log is written where the run runs, straight into the results folder when that folder is
there (the runner's machine, or a filesystem every machine shares); a Dask worker elsewhere
writes it into its temporary folder, and it reaches the results folder with the record. The
worker writes TensorBoard logs and weights at the results folder's path on its own machine.

Events: a log line that starts with EVENT_PREFIX is one JSON object. The runner writes
``start`` (run_id) before the worker starts; the worker's training writes ``epoch_begin``
(epoch, epochs) and ``epoch`` (epochs and the epoch's history entry) as they happen
(``bench.run.train.EpochEvents``). Every event has its ``time`` (seconds since the epoch, the
writer's clock). ``bench.run.progress`` reads them to show the runs in flight.
"""
from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.data import kinds
from bench.files import check_folder, check_regular, read_regular, safe_name, write_text_atomic
from bench.records import store
from bench.records.results import Results
from bench.spec import RunSpec

EVENT_PREFIX = "fishbench-event "
# The worker's environment: where TensorBoard logs and the weights go (unset: not wanted).
TENSORBOARD_ENV, WEIGHTS_ENV = "BENCH_TENSORBOARD_DIR", "BENCH_WEIGHTS_FILE"
FIRST_LINE_BYTES = 4096  # a start event's line is shorter


CHECKPOINT_ENV = "BENCH_CHECKPOINT_DIR"  # the run's checkpoint folder; always set by the runner
CHECKPOINT_STATE = "state.json"  # a checkpoint's commit point, written last (bench.run.checkpoint)


# ---------------------------------------------------------------- events


def event_line(event: str, **fields) -> str:
    """One event as a log line, newline included."""
    return EVENT_PREFIX + json.dumps({"event": event, "time": time.time(), **fields}, sort_keys=True) + "\n"


def read_events(text: str) -> list[dict]:
    """The events of a log's text, in order; a line still being written is left for later."""
    events = []
    for line in text.splitlines(keepends=True):
        if line.startswith(EVENT_PREFIX) and line.endswith("\n"):
            try:
                events.append(json.loads(line[len(EVENT_PREFIX):]))
            except json.JSONDecodeError:
                pass
    return events


def run_id_of(log: Path) -> str | None:
    """The run id of a log's start event (its first line), None if it has none."""
    try:
        first = read_events(read_regular(log, FIRST_LINE_BYTES).decode(errors="replace").partition("\n")[0] + "\n")
    except (OSError, ValueError):  # absent, unreadable, or not a regular file
        return None
    return first[0].get("run_id") if first and first[0].get("event") == "start" else None


# ---------------------------------------------------------------- names


@dataclass(frozen=True)
class RunFiles:
    """Where one run's files go in a results folder.

    Attributes:
        results: the results folder, its path absolute.
        name: the files' name (see the module docstring).
        label: the model and its distinguishing options as the progress shows them
            ('fishnet55 head=conv').
        dataset: the dataset as the progress shows it (an .npz file by its stem).
    """

    results: Results
    name: str
    label: str
    dataset: str

    def path(self, kind: str) -> Path:
        return self.results.file(kind, self.name)

    def relative(self, kinds) -> dict[str, str]:
        """kind -> path relative to the results folder, as a record names its files."""
        return {kind: self.path(kind).relative_to(self.results.folder).as_posix() for kind in kinds}

    def log_or(self, elsewhere: Path) -> Path:
        """The log's path in the results folder when that folder is here, else ``elsewhere``."""
        log = self.path("log")
        return log if log.parent.is_dir() else elsewhere

    def checkpoint(self, run_id: str) -> Path:
        """The run's checkpoint folder (``Results.checkpoint``)."""
        return self.results.checkpoint(run_id)

    def worker_env(self, spec: RunSpec) -> dict[str, str]:
        """The worker's CHECKPOINT_ENV, and TENSORBOARD_ENV and WEIGHTS_ENV for what the spec asks."""
        wanted = {TENSORBOARD_ENV: spec.tensorboard and "tensorboard", WEIGHTS_ENV: spec.save_weights and "weights"}
        return {CHECKPOINT_ENV: str(self.checkpoint(spec.run_id)),
                **{variable: str(self.path(kind)) for variable, kind in wanted.items() if kind}}


def _text(value) -> str:
    """An option's value in a file name: strings bare, the rest as JSON; no path separators or spaces."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return re.sub(r"[\s/\\]+", "_", text)


def dataset_label(dataset: str) -> str:
    """A dataset as file names and the progress show it: a name as it is, an .npz file by its stem."""
    return kinds.kind_of(dataset).label


def distinguishing_options(specs: list[RunSpec]) -> dict[str, list[str]]:
    """model -> the option keys whose values differ between its specs (a key one lacks differs)."""
    options: dict[str, list[dict]] = {}
    for spec in specs:
        options.setdefault(spec.model, []).append(spec.model_options)
    return {model: sorted(key for key in set().union(*values)
                          if len({json.dumps(v.get(key), sort_keys=True) for v in values}) > 1)
            for model, values in options.items()}


def plan(specs: list[RunSpec], results: Path) -> dict[str, RunFiles]:
    """run_id -> RunFiles of each spec, its options in the name where the model's runs, these and
    the ones recorded in ``results``, differ in them; a name whose log is another run's gets the
    run id appended. Makes the logs folder, so that runs on this machine write into it. The
    paths are absolute: a joblib worker's current folder may be another."""
    results = Results(Path(results).resolve())
    results.prepare()
    recorded = [record.spec for record in results.records()[0]]
    keys = distinguishing_options([*specs, *recorded])
    planned = {}
    for spec in specs:
        options = [f"{key}={_text(spec.model_options.get(key))}" for key in keys[spec.model]]
        label, dataset = " ".join([spec.model, *options]), dataset_label(spec.dataset)
        name = "-".join([spec.model, *options, dataset, f"seed{spec.seed}"])
        files = RunFiles(results, safe_name(name), label, dataset)
        if run_id_of(files.path("log")) not in (None, spec.run_id):
            files = RunFiles(results, safe_name(f"{name}-{spec.run_id}"), label, dataset)
        for kind in Results.KINDS:
            (check_folder if kind == "tensorboard" else check_regular)(files.path(kind))
        planned[spec.run_id] = files
    return planned


# ---------------------------------------------------------------- after a run


def place_files(files: RunFiles, record: store.RunRecord, log_text: str) -> store.RunRecord:
    """Put a finished run's log (unless it is already there, written as it ran) and its
    history CSV into the results folder; return the record naming its files there."""
    log = files.path("log")
    try:
        written = read_regular(log).decode(errors="replace")
    except (OSError, ValueError):  # absent, or not a regular file (replaced whole below)
        written = None
    if written != log_text:
        write_text_atomic(log, log_text)
    kinds = ["log"]
    if record.history:
        epochs = pd.DataFrame(record.history)
        epochs = epochs[["epoch", *(column for column in epochs.columns if column != "epoch")]]
        write_text_atomic(files.path("history"), epochs.to_csv(index=False))
        kinds.append("history")
    asked = {"tensorboard": record.spec.tensorboard, "weights": record.spec.save_weights}
    kinds += [kind for kind, wanted in asked.items() if wanted and files.path(kind).exists()]
    return dataclasses.replace(record, files=files.relative(kinds))


def checkpoint_saved(folder: Path) -> bool:
    """Whether ``folder`` holds a checkpoint to resume from (its commit point, CHECKPOINT_STATE)."""
    return (folder / CHECKPOINT_STATE).is_file()
