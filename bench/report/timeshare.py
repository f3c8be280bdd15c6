"""The report's "Where the time went": the runs' phases (``bench.records.phases``) summed per row and
dataset, and how busy each invocation of the runner kept its jobs.

Pure functions: records and the report's runs frame in, DataFrames and table layouts out;
``report.time_text`` puts them in report.md.
"""
from __future__ import annotations

import math

import pandas as pd

from bench.records import phases as run_phases
from bench.analysis.aggregate import dataset_title

# The phases that add up to a run's total, in the order they happen, as the table names them.
PHASE_TITLES = {"startup": "start-up", "data": "data", "build": "build", "first_epoch": "first epoch",
                "steady_training": "steady training", "epoch_eval": "per-epoch eval", "final_eval": "final eval",
                "write_exit": "write & exit", "other": "other"}
TIMED = tuple(key for key in PHASE_TITLES if key != "other")
SUM_COLUMNS = ("row", "dataset", "runs", "cached", "total", *PHASE_TITLES)
ALL = "all"

INTRO = (
    "Each phase of a run, in seconds summed over the runs of a row and dataset, and its share of their *total "
    "wall* time, from the runner starting the worker to the worker's end. *start-up*: Python, TensorFlow and the "
    "harness importing in the worker; *data*: loading the dataset (from the cache in *cache hits* of the runs) "
    "and making the input pipelines; *build*: building and compiling the model; *first epoch*: training epoch 1, "
    "with tracing; *steady training*: the other epochs; *per-epoch eval* and *final eval*: the evaluations after "
    "each epoch and on the whole test set after the last one, when the per-epoch one is on a subset; *write & "
    "exit*: the worker writing its record and exiting; *other*: the rest, inside the run (seeding, describing the "
    "environment, Keras setting up fit, counting FLOPs) and all of a run whose worker wrote no record (it died "
    "or timed out).")
EFFICIENCY_INTRO = (
    "How busy the runner kept its jobs, per invocation (one `bench run`, or one round of `--until-ci`; the "
    "runner writes the invocation into each record it writes, and every record here counts, set aside or not): "
    "*run time* = the runs' total wall times summed; *wall* = from the invocation's first run starting to its "
    "last one ending; *efficiency* = run time / (jobs × wall), 100 % when every job ran a run all that time. "
    "*all*: the run times summed over the jobs × wall summed.")
NONE_TIMED = "No record here timed its phases: all were written before fishbench timed them."


def left_out(untimed: int) -> str:
    """' 3 records written before phases were timed left out.'; '' for none."""
    return f" {untimed} record{'s' * (untimed > 1)} written before phases were timed left out." if untimed else ""


def phase_frame(records: list) -> pd.DataFrame:
    """One row per record whose phases have a total: run_id, data_cached, total and each phase
    of TIMED (NaN where the run did not reach it)."""
    rows = [{"run_id": record.run_id, "data_cached": record.phases.data_cached,
             **{key: getattr(record.phases, key) for key in ("total", *TIMED)}}
            for record in records if record.phases and record.phases.total is not None]
    frame = pd.DataFrame(rows, columns=["run_id", "data_cached", "total", *TIMED])
    return frame.astype({key: float for key in ("total", *TIMED)})


def phase_sums(frame: pd.DataFrame, records: list) -> pd.DataFrame:
    """SUM_COLUMNS per row and dataset (``frame``: the report's runs, in its order), then ALL:
    runs with phases, cached = those whose data came from the cache, each phase's seconds summed
    (NaN where no run had it), and other = total - the timed phases."""
    timed = frame[["run_id", "row", "dataset"]].merge(phase_frame(records), on="run_id")
    timed = timed.assign(cached=timed["data_cached"].eq(True), runs=1)
    columns = ["runs", "cached", "total", *TIMED]
    sums = timed.groupby(["row", "dataset"], sort=False)[columns].sum(min_count=1).reset_index()
    if not sums.empty:
        sums.loc[len(sums)] = {"row": ALL, "dataset": "", **sums[columns].sum(min_count=1)}
    sums["other"] = sums["total"] - sums[list(TIMED)].sum(axis=1)
    return sums[list(SUM_COLUMNS)]


def _seconds(value: float) -> str:
    return f"{value:,.1f} s"


def _share(value: float, total: float) -> str:
    """'12.5 s (31 %)'; '—' for a phase no run had."""
    return "—" if math.isnan(value) else f"{_seconds(value)} ({100 * value / total:.0f} %)"


def sums_layout(sums: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the phase table: each phase as 'seconds (share of the total)'."""
    headers = ["Model", "Dataset", "runs", "cache hits", "total wall", *PHASE_TITLES.values()]
    rows = [[line.row, dataset_title(line.dataset), str(line.runs), f"{line.cached} / {line.runs}",
             _seconds(line.total), *(_share(getattr(line, key), line.total) for key in PHASE_TITLES)]
            for line in sums.itertuples()]
    return headers, rows


def efficiency_layout(efficiencies: list[run_phases.Efficiency]) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the efficiency table, one row per invocation and ALL."""
    headers = ["Invocation", "jobs", "runs", "run time", "wall", "efficiency"]
    rows = [[e.invocation, str(e.jobs), str(e.runs), _seconds(e.run_seconds), _seconds(e.wall_seconds),
             f"{100 * e.share:.0f} %"] for e in efficiencies]
    busy = sum(e.run_seconds for e in efficiencies) / sum(e.jobs * e.wall_seconds for e in efficiencies)
    rows.append([ALL, "", str(sum(e.runs for e in efficiencies)), _seconds(sum(e.run_seconds for e in efficiencies)),
                 "", f"{100 * busy:.0f} %"])
    return headers, rows
