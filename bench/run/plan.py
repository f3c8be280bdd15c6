"""``python -m bench plan``: the runs ``bench run`` would start, and how long they would take.

Nothing is trained or written. The runs are the runner's own plan minus what is already
recorded (``runner.pending_specs``). The time comes from records already present, in the
results folder and in any other folder given (``--estimate-from``):

- seconds per epoch: the median ``sec_per_epoch`` of the ok records that time the same work
  (``schedule.timing_key``: model and options, dataset, preprocessing, batch size, augmentation);
- overhead per run: the median of (wall time - epochs x sec_per_epoch) over the same records:
  the worker's start-up and exit, loading the data, building, the first epoch's tracing,
  per-epoch and final evaluation (``schedule.overhead_seconds``; records written before the
  runner timed whole runs give ``train.run`` alone, without the worker's start-up and exit).
  The runner's loading of the datasets before the first run is not in it.

A run is then estimated at overhead + epochs x seconds per epoch (``schedule.Timing``). A run
with no record of its work is estimated from its model's records of other work (any protocol)
at their seconds per training and per evaluated image, scaled by its images and epochs
(``schedule.ImageSeconds``), else from its model's FLOPs at the records' median seconds per
FLOP, plus their median overhead (``schedule.estimates``); each row's last column says which
(the records of its work, ``per image``, or ``from FLOPs``), and the text says how many runs
were estimated each way. The
wall time packs the runs in the order the runner starts them (longest expected first, from the
results folder's own records: ``runner.pending_specs``), each onto the first free job, as
joblib hands them out. Timings hold for the machine that measured them: where this machine
(its CPU, with the plan's threads and jobs) timed a work, only its records count
(``schedule.timed_here``), and the text names the machines whose records it used.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
from tabulate import tabulate

from bench.analysis import aggregate
from bench.records.results import Results
from bench.records.store import RunRecord
from bench.run import schedule
from bench.run.console import hours_minutes_seconds
from bench.run.runner import Dispatch, pending_specs, plan_line
from bench.run.schedule import FROM_FLOPS, PER_IMAGE, Estimate, Timing, timing_key, timings
from bench.spec import RunSpec

NO_RECORD = "no record to estimate from"
UNTIMED_SOURCES = {  # how runs with no record of their work are estimated, as the text says it
    PER_IMAGE: ", at their model's median seconds per training and per evaluated image in its records of other "
               "work (any protocol), scaled by their images and epochs, and those records' median overhead",
    FROM_FLOPS: " or their model's, at their model's median seconds per FLOP on other work (every record's for a "
                "model with none) and the records' median overhead: a rough guess until one run of each is recorded",
}


# ---------------------------------------------------------------- labels


def labels_by_config(specs: list[RunSpec]) -> dict[str, str]:
    """config_key -> the report's row label ('FishNet55 (head=conv)'; ``aggregate.row_labels``)."""
    settings = {spec.config_key: aggregate.row_settings(spec) for spec in specs}
    keys = {config_key: aggregate.settings_key(values) for config_key, values in settings.items()}
    rows = pd.DataFrame({"model": [spec.model for spec in specs], "settings": [settings[s.config_key] for s in specs],
                         "row_key": [keys[s.config_key] for s in specs]}).drop_duplicates("row_key")
    labels = aggregate.row_labels(rows)
    return {config_key: labels[key] for config_key, key in keys.items()}


def repeat_ranges(repeats: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2, 5, 7-8'."""
    spans = []
    for repeat in sorted(repeats):
        if spans and repeat == spans[-1][1] + 1:
            spans[-1][1] = repeat
        else:
            spans.append([repeat, repeat])
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in spans)


# ---------------------------------------------------------------- records


def read_records(folders: list[Path]) -> tuple[list[RunRecord], list[str]]:
    """The records of the folders, each run once, and a text per folder saying how many it gave
    ('results/x (33 records, 1 unreadable file skipped)').

    Raises:
        ValueError: a folder that does not exist.
    """
    found, sources = {}, []
    for folder in folders:
        if not folder.is_dir():
            raise ValueError(f"--estimate-from takes a results folder that exists. Received: --estimate-from {folder}")
        records, problems = Results(folder).records()
        found.update((record.run_id, record) for record in records)
        skipped = f", {len(problems)} unreadable file(s) skipped" if problems else ""
        sources.append(f"{folder} ({len(records)} records{skipped})")
    return list(found.values()), sources


# ---------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class Cell:
    """The pending runs of one configuration (model + options, dataset) and their timing."""

    label: str
    dataset: str
    specs: tuple[RunSpec, ...]
    timing: Timing | None
    untimed: tuple[Estimate, ...] | None = None  # each run's, without a timing (``schedule.untimed_estimates``)

    def seconds(self) -> list[float] | None:
        if self.timing is not None:
            return [self.timing.run_seconds(spec.epochs) for spec in self.specs]
        return None if self.untimed is None else [estimate.seconds for estimate in self.untimed]

    def source(self) -> str | None:
        """Where the untimed estimates come from (PER_IMAGE or FROM_FLOPS); None with a timing or none."""
        return self.untimed[0].source if self.untimed else None


def cells(pending: list[RunSpec], records: list[RunRecord], labels: dict[str, str],
          flops: Callable[[RunSpec], int] = schedule.forward_flops) -> list[Cell]:
    """The pending runs grouped by configuration (labels: ``labels_by_config``), in the order the
    runner first starts one, each timed by the records of its work, or else from its model's
    seconds per image or its FLOPs (``schedule.untimed_estimates``; ``flops``: forward FLOPs per
    image of a spec's model)."""
    groups, known = {}, timings(records)
    for spec in pending:
        groups.setdefault(spec.config_key, []).append(spec)
    guessed = schedule.untimed_estimates(pending, records, flops)
    return [Cell(labels[key], specs[0].dataset, tuple(specs), known.get(timing_key(specs[0])),
                 tuple(guessed[s.run_id] for s in specs) if specs[0].run_id in guessed else None)
            for key, specs in groups.items()]


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _table(planned: list[Cell]) -> str:
    rows = []
    for cell in planned:
        timing, seconds = cell.timing, cell.seconds()
        source = len(timing.machines) if timing else cell.source()
        estimate = ([hours_minutes_seconds(seconds[0]), hours_minutes_seconds(sum(seconds)), source]
                    if seconds else ["—", NO_RECORD, 0])
        rows.append([cell.label, cell.dataset, len(cell.specs), repeat_ranges([s.repeat for s in cell.specs]),
                     cell.specs[0].epochs, _number(timing and timing.sec_per_epoch, 2),
                     _number(timing and timing.overhead_s, 1), *estimate])
    headers = ("row", "dataset", "runs", "repeats", "epochs", "s/epoch", "overhead s", "per run", "all runs",
               "records")
    return tabulate(rows, headers=headers, disable_numparse=True, colalign=("left", "left", *["right"] * 8))


def _totals(pending: list[RunSpec], planned: list[Cell], dispatch: Dispatch) -> list[str]:
    seconds = {spec.run_id: run for cell in planned for spec, run in zip(cell.specs, cell.seconds() or [])}
    in_order = [seconds[spec.run_id] for spec in pending if spec.run_id in seconds]  # the runner's order
    if not in_order:
        return [f"estimate: none, every run has {NO_RECORD}"]
    lines = [f"estimate: {hours_minutes_seconds(sum(in_order))} of runs; with {dispatch.jobs} jobs at once about "
             f"{hours_minutes_seconds(schedule.makespan(in_order, dispatch.jobs))} of wall time (each run started, in the "
             f"runner's order, longest expected first, on the first free job)"]
    for source, how in UNTIMED_SOURCES.items():
        group = [cell for cell in planned if cell.timing is None and cell.source() == source]
        if group:
            lines.append(f"{source}: {sum(len(c.specs) for c in group)} runs of {len(group)} configuration(s) "
                         f"with no record of their work{how}")
    untimed = [cell for cell in planned if cell.seconds() is None]
    if untimed:
        lines.append(f"not in the estimate: {sum(len(c.specs) for c in untimed)} runs of {len(untimed)} "
                     f"configuration(s) with {NO_RECORD}")
    machines = Counter(m for cell in planned if cell.timing for m in cell.timing.machines)
    if machines:
        lines.append("timings measured on " + "; ".join(f"{m}: {n} records" for m, n in sorted(machines.items()))
                     + ". CPUs differ between machines: on another CPU the times differ.")
    return lines


def plan_text(specs: list[RunSpec], results: Path, dispatch: Dispatch, retry_failed: bool = False,
              estimate_from: list[Path] = (), flops: Callable[[RunSpec], int] = schedule.forward_flops) -> str:
    """The text of ``bench plan``: the pending runs per configuration, with the estimate.

    Args:
        specs: the plan, as ``bench run`` makes it.
        results: the results folder ``bench run`` would write into (read only).
        dispatch: the jobs and threads ``bench run`` would use.
        retry_failed: as ``bench run --retry-failed``.
        estimate_from: other results folders whose records also time runs.
        flops: forward FLOPs per image of a spec's model, for runs no record times (tests pass a fake one).

    Raises:
        ValueError: an ``estimate_from`` folder that does not exist.
    """
    pending = pending_specs(specs, results, retry_failed)
    folders = {path.resolve(): path for path in reversed(([results] if results.is_dir() else []) + list(estimate_from))}
    records, sources = read_records(list(reversed(folders.values())))  # each folder once, named as given
    timed = schedule.timed_here(records, dispatch.threads, dispatch.jobs)
    planned = cells(pending, timed, labels_by_config(specs), flops)
    lines = [plan_line(specs, pending, dispatch, results) + "; nothing is trained or written"]
    if not pending:
        return "\n".join(lines)
    lines += ["", _table(planned), ""]
    lines.append("records read for the estimate: " + (", ".join(sources) or "none"))
    return "\n".join(lines + _totals(pending, planned, dispatch))
