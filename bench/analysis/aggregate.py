"""Records to aggregates: one record per seed, table rows, Table 4 cells beside the published
values, and the runs frame that ``bench.analysis.verdicts`` judges.

Pure functions: records or DataFrames in, DataFrames out; no reading or writing here.

A *row* of Table 4 is one experiment setting of one model: every spec field but the dataset,
the seed, the repeat and the execution settings. A *cell* is a row on one dataset, which is
exactly one ``RunSpec.config_key``, so runs of different profiles or settings are never
averaged together. Cells aggregate the runs whose status is "ok"; the others are counted
(``runs``) and named in the report's findings.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from collections import Counter

import natsort
import pandas as pd

from bench import environment
from bench.analysis import verdicts
from bench.analysis.claims import Published
from bench.analysis.stats import summarize
from bench.records import store
from bench.spec import EXECUTION_FIELDS, REPEAT_FIELDS, TABLE4_MODELS, RunSpec

DISPLAY_NAMES = {"mlp": "MLP", "cnn": "CNN", "mobilenet": "MobileNet"}
DATASET_TITLES = {"fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                  "mnist": "MNIST", "fashion_mnist_sample": "Fashion-MNIST (sample)"}
# Table 4 metrics: run column -> what the table calls it. Time is per training image, which
# means the same on any epoch size; the report's seconds per epoch are context only.
METRICS = {"accuracy": "Accuracy (%)", "ms_per_image": "ms / training image",
           "images_per_second": "training images / s", "params_total": "Parameters"}
REPORT_INPUT = ((56, 56, 3), 10)  # the report's models: 56x56x3 images, 10 classes (its Table 4)
# Spec fields a table row does not depend on: they differ between the cells and repeats of a row
# (the data hash goes with the dataset; the report names runs on other than canonical data).
NOT_ROW_FIELDS = (*EXECUTION_FIELDS, *REPEAT_FIELDS, "dataset", "data_hash")
UNSET = "default"  # how a label shows a setting one row has and another does not (a model option)
ENVIRONMENT_KEYS = ("cpu_count", "python", "tensorflow", "keras", "gpu", "threads_per_job", "git_commit")
ONEDNN_WORDS = {True: "on", False: "off"}  # records older than the setting say nothing
CELL_COLUMNS = ("row", "model", "dataset", "metric", "n", "mean", "std", "ci_low", "ci_high",
                "published", "difference", "runs", "config_key")


# ---------------------------------------------------------------- names and order


def display_name(model: str) -> str:
    """'mlp' -> 'MLP', 'fishnet55' -> 'FishNet55'; other names as they are."""
    return DISPLAY_NAMES.get(model) or re.sub(r"^fishnet", "FishNet", model)


def dataset_title(dataset: str) -> str:
    return DATASET_TITLES.get(dataset, dataset)


NATURAL = natsort.natsort_keygen()  # fishnet99 before fishnet150


def model_order(model: str) -> tuple:
    """Table 4's models first in its order, then the others in natural order (9 before 10)."""
    if model in TABLE4_MODELS:
        return (0, TABLE4_MODELS.index(model))
    return (1, NATURAL(model))


def dataset_order(frame: pd.DataFrame, published: Published) -> list[str]:
    """The datasets with runs: the report's first, in its order, then the others, sorted."""
    run = set(frame["dataset"])
    return [d for d in published.datasets if d in run] + sorted(run - set(published.datasets))


# ---------------------------------------------------------------- one observation per seed


def recency(record: store.RunRecord) -> tuple[str, str, str]:
    """(finished_at, started_at, run_id): larger is newer. The times are ISO 8601 UTC as
    ``bench.files.now_iso`` writes them, so they sort as text; a missing time sorts first."""
    return record.finished_at or "", record.started_at or "", record.run_id


def one_per_seed(records: list[store.RunRecord]) -> tuple[list[store.RunRecord], list[store.RunRecord]]:
    """(kept, set aside): of the records of one configuration (``RunSpec.config_key``) and seed,
    only the newest by ``recency``, whatever its status.

    A version bump changes every run id, so the same command reruns every spec and a folder
    then holds two records of one seed; pooling them would count that seed twice. Both lists
    keep the input order; with one record per configuration and seed nothing is set aside.
    """
    newest = {}
    for index in sorted(range(len(records)), key=lambda i: recency(records[i]), reverse=True):
        newest.setdefault((records[index].spec.config_key, records[index].spec.seed), index)
    kept = set(newest.values())
    return ([r for i, r in enumerate(records) if i in kept], [r for i, r in enumerate(records) if i not in kept])


# ---------------------------------------------------------------- the runs frame


def flatten(mapping: dict, prefix: str = "") -> dict:
    """Nested dicts as one level with 'outer.inner' keys."""
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def row_settings(spec: RunSpec) -> dict:
    """What a table row stands for: the spec but for NOT_ROW_FIELDS, flattened."""
    return flatten({k: v for k, v in spec.to_dict().items() if k not in NOT_ROW_FIELDS})


def settings_key(settings: dict, leave_out: tuple[str, ...] = ()) -> str:
    """The settings as canonical JSON, without the keys that start with any of ``leave_out``."""
    return json.dumps({k: v for k, v in settings.items() if not k.startswith(leave_out)}, sort_keys=True)


def as_text(value) -> str:
    """A setting's value as it reads in a label: strings bare, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def varying_keys(settings: list[dict]) -> list[str]:
    """The keys whose values are not the same in every dict (absent counts as a value)."""
    keys = sorted(set().union(*settings))
    return [k for k in keys if len({json.dumps(s.get(k, UNSET), sort_keys=True) for s in settings}) > 1]


def settings_label(settings: dict, keys: list[str]) -> str:
    """'head=conv, profile=a': the values of ``keys``, model options without their prefix."""
    return ", ".join(f"{k.removeprefix('model_options.')}={as_text(settings.get(k, UNSET))}" for k in keys)


def row_labels(rows: pd.DataFrame) -> dict:
    """row_key -> label: the model's name, plus the settings telling apart its rows.

    A model with one row is 'FishNet55'; with two that differ in the head option,
    'FishNet55 (head=conv)' and 'FishNet55 (head=dense)'. Where the rows are of more than one
    setup, each names its setup as ``setup_labels`` does, 'MLP (profile=paper)', a model that
    ran in one of them too.
    """
    setups = [setup_settings(s) for s in rows["settings"]]
    several = len({settings_key(setup) for setup in setups}) > 1
    naming = dict(zip(rows["row_key"], setup_keys(setups) if several else [[]] * len(setups)))
    labels = {}
    for model, group in rows.groupby("model"):
        options = [k for k in varying_keys(list(group["settings"])) if k.startswith("model_options.")]
        for key, settings in zip(group["row_key"], group["settings"]):
            named = settings_label(settings, sorted(options + naming[key]))
            labels[key] = display_name(model) + (f" ({named})" if named else "")
    return labels


def setup_settings(settings: dict) -> dict:
    """A run's setup: its row settings but the model and its options."""
    return {k: v for k, v in settings.items() if not k.startswith("model")}


def setup_keys(setups: list[dict]) -> list[list[str]]:
    """Per setup, the settings that name it: its profile, and the settings that tell it apart
    from the other setups of that profile; with one profile, those settings alone (the profile
    when it has one setup). Short, so that a label fits in a table; the report's method lists
    each setup's other settings once."""
    of_profile = {}
    for setup in setups:
        of_profile.setdefault(setup.get("profile"), {})[settings_key(setup)] = setup
    keys = []
    for setup in setups:
        within = varying_keys(list(of_profile[setup.get("profile")].values()))
        keys.append(sorted([*within, "profile"]) if len(of_profile) > 1 or not within else within)
    return keys


def setup_labels(settings: list[dict]) -> list[str]:
    """The label of each run's setup ('profile=paper'; 'optimizer.learning_rate=0.01, profile=a'
    when profile a ran with two learning rates and another profile ran too), by ``setup_keys``.

    Runs of one setup differ only in the model and its options: ``bench.analysis.verdicts`` compares
    them, and never runs of two setups.
    """
    setups = [setup_settings(s) for s in settings]
    return [settings_label(setup, keys) for setup, keys in zip(setups, setup_keys(setups))]


def report_frame(records: list[store.RunRecord]) -> pd.DataFrame:
    """``store.runs_frame`` plus what the report needs.

    Added columns: accuracy (test accuracy in %), ms_per_image (training milliseconds per
    image, 1000 / images_per_second), settings (row_settings), row_key (them as text), row
    (the row's label), setup (``setup_labels``), the environment keys of ENVIRONMENT_KEYS,
    onednn (on, off, or not recorded), speedups (on, or off for ``--no-speedups`` runs),
    eval_images (``eval_images``), best_epoch and last_epoch (``epoch_accuracy``, %),
    inputs ('56x56x3 input, 10 classes'), num_classes, learned_nothing (the record's flag), report_input (the run's input
    shape and class count are the report's, REPORT_INPUT), machine (``bench.environment.machine``) and
    timed (``timed_on_one_machine``: the time columns are NaN where it is False). Sorted by
    model order, row, dataset and repeat.
    """
    frame = store.runs_frame(records)
    frame["accuracy"] = frame["test_accuracy"].astype(float) * 100
    frame["ms_per_image"] = 1000 / frame["images_per_second"].astype(float)
    frame["machine"] = [environment.machine(r.environment) for r in records]
    frame["settings"] = [row_settings(r.spec) for r in records]
    frame["row_key"] = frame["settings"].map(settings_key)
    for key in ENVIRONMENT_KEYS:
        frame[key] = [as_text(r.environment.get(key)) for r in records]
    frame["onednn"] = [ONEDNN_WORDS.get(r.environment.get("onednn"), "not recorded") for r in records]
    frame["speedups"] = ["on" if r.spec.speedups else "off" for r in records]
    frame["inputs"] = [input_description(r.input_shape, r.num_classes) for r in records]
    frame["num_classes"] = [r.num_classes for r in records]
    frame["learned_nothing"] = [r.learned_nothing for r in records]
    frame = frame.assign(**epoch_statistics(records))
    frame["report_input"] = [(r.input_shape, r.num_classes) == REPORT_INPUT for r in records]
    rows = frame.drop_duplicates("row_key")
    frame["row"] = frame["row_key"].map(row_labels(rows))
    frame["setup"] = setup_labels(list(frame["settings"]))
    frame["timed"] = timed_on_one_machine(frame)
    frame.loc[~frame["timed"], ["ms_per_image", "images_per_second"]] = math.nan
    order = frame["model"].map(model_order)
    return (frame.assign(_order=order)
            .sort_values(["_order", "row", "dataset", "repeat", "run_id"], kind="stable")
            .drop(columns="_order").reset_index(drop=True))


def eval_images(spec: RunSpec, num_classes: int | None) -> str:
    """The test images of a run's per-epoch accuracies, as the published table names them: "all",
    "first_1000" (``eval_subset = "first"``), "stratified_1000"; "unknown" without a class count."""
    if spec.eval_per_class is None:
        return "all"
    return f"{spec.eval_subset}_{spec.eval_per_class * num_classes}" if num_classes else "unknown"


def epoch_statistics(records: list[store.RunRecord]) -> dict[str, list]:
    """Per run, what a single-run published value is judged by: the test images of its per-epoch
    accuracies (eval_images), and its best and last epoch's accuracy (best_epoch, last_epoch, %)."""
    return {"eval_images": [eval_images(r.spec, r.num_classes) for r in records],
            "best_epoch": [epoch_accuracy(r, max) for r in records],
            "last_epoch": [epoch_accuracy(r, lambda values: values[-1]) for r in records]}


def epoch_accuracy(record: store.RunRecord, pick) -> float:
    """``pick`` (max: the best epoch; the last) of a run's per-epoch test accuracies, in %; NaN
    without any."""
    values = [epoch["val_accuracy"] for epoch in record.history if not math.isnan(epoch.get("val_accuracy", math.nan))]
    return 100 * pick(values) if values else math.nan


def timed_on_one_machine(frame: pd.DataFrame) -> pd.Series:
    """Whether a run's time counts: it ran on the machine, with the threads per run and runs at
    once, that most of its row and dataset's ok runs had (``bench.environment.machine``; a tie goes to the
    name first in order). A time is never averaged over CPUs, nor over runs that shared the
    machine with more runs: the others' times are left out, their accuracies kept."""
    ok = frame[frame["status"] == "ok"]
    counts = ok.groupby(["row_key", "dataset"])["machine"].agg(lambda m: Counter(m))
    chosen = {key: min(c, key=lambda name: (-c[name], name)) for key, c in counts.items()}
    return pd.Series([chosen.get((key, dataset)) == machine for key, dataset, machine
                      in zip(frame["row_key"], frame["dataset"], frame["machine"])], index=frame.index)


def ok_runs(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"]


# ---------------------------------------------------------------- Table 4


def table_rows(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(label, model) of every row with runs, in model order."""
    return sorted(dict.fromkeys(zip(frame["row"], frame["model"])), key=lambda row: (model_order(row[1]), row[0]))


def cell(runs: pd.DataFrame, model: str, dataset: str, metric: str, published: Published, settings: dict) -> dict:
    """One metric of one row (of these settings) on one dataset, over its ok runs, beside the
    published value if the row is the report's model and its runs are at the report's input
    (``verdicts.stands_beside``); NaN if not.

    difference = mean - published.
    """
    ok = ok_runs(runs)
    summary = summarize(ok[metric].astype(float))
    line = published.line(model, dataset, metric)
    shown = line is not None and published.describes(model, settings) and verdicts.stands_beside(line, runs)
    value = line.value if shown else math.nan
    return {
        "model": model, "dataset": dataset, "metric": metric, **dataclasses.asdict(summary),
        "published": value, "difference": summary.mean - value,
        "runs": len(runs), "config_key": ",".join(sorted(set(runs["config_key"]))),
    }


def table4_cells(frame: pd.DataFrame, published: Published) -> pd.DataFrame:
    """Tidy Table 4: one line per row, dataset and metric (CELL_COLUMNS), for each row and
    dataset with runs (``runs`` counts those of every status; n only the ok ones)."""
    settings = dict(zip(frame["row"], frame["settings"]))
    lines = []
    for label, model in table_rows(frame):
        for dataset in dataset_order(frame, published):
            runs = frame[(frame["row"] == label) & (frame["dataset"] == dataset)]
            if len(runs):
                lines.extend({"row": label, **cell(runs, model, dataset, metric, published, settings[label])}
                             for metric in METRICS)
    return pd.DataFrame(lines, columns=list(CELL_COLUMNS))


# ---------------------------------------------------------------- verdicts


def verdict_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs frame ``bench.analysis.verdicts`` judges (its RUN_COLUMNS, options as a dict), plus row,
    report_input (a cell whose runs are not at the report's input, ``verdicts.at_report_input``,
    is not judged against it), profile, and the per-epoch statistics with their test images."""
    extra = ["row", "report_input", "profile", "best_epoch", "last_epoch", "eval_images"]
    return frame.assign(options=frame["model_options"].map(json.loads))[[*verdicts.RUN_COLUMNS, *extra]]


def with_rows(lines: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """The verdict lines (``verdicts.verdict_cells``) of the Table 4 rows that ran, with their
    row: a row is one setup, model and set of options. A published row never run has none."""
    rows = dict(zip(zip(frame["setup"], frame["model"], frame["model_options"]), frame["row"]))
    row = pd.Series([rows.get(key) for key in zip(lines["setup"], lines["model"], lines["options"])], index=lines.index)
    return lines.assign(row=row)[row.notna()]


def head_groups(frame: pd.DataFrame) -> list[tuple[str, str, list[str]]]:
    """(model, dataset, row labels) of FishNet rows that differ only in the head option (Fig. 3, 4)."""
    runs = ok_runs(frame)
    runs = runs.loc[runs["settings"].map(lambda s: "model_options.head" in s).astype(bool)]
    rest = runs["settings"].map(lambda s: settings_key(s, ("model_options.head",)))
    groups = []
    for (dataset, _), group in runs.groupby([runs["dataset"], rest], sort=False):
        labels = list(dict.fromkeys(group["row"]))
        if len(labels) > 1:
            groups.append((group["model"].iloc[0], dataset, labels))
    return groups


# ---------------------------------------------------------------- the report's CSVs

# Every CSV names a quantity's unit: accuracy in % everywhere, a difference of accuracies in
# percentage points. Where a table has a metric column (table4.csv, claims.csv, history.csv), the
# metric's name carries it and the values are in it.
METRIC_UNITS = {"accuracy": "accuracy_pct", "val_accuracy": "val_accuracy_pct"}
VERDICT_UNITS = {"mean": "mean_pct", "std": "std_pct", "ci_low": "ci_low_pct", "ci_high": "ci_high_pct",
                 "published": "published_pct", "difference": "difference_pp", "stat_mean": "stat_mean_pct",
                 "stat_std": "stat_std_pct", "pi_low": "pi_low_pct", "pi_high": "pi_high_pct", "margin": "margin_pp"}


def csv_value(value):
    """A value as one CSV cell, never JSON: a list as its items separated by spaces ([0.5, 1.5] ->
    '0.5 1.5'), a dict as 'key=value, ...', a list of dicts (a run's segments) separated by '; ';
    the rest as it is."""
    if isinstance(value, dict):
        return ", ".join(f"{key}={csv_value(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return ("; " if any(isinstance(item, dict) for item in value) else " ").join(map(str, map(csv_value, value)))
    return value


def options_text(options: str) -> str:
    """A model's options (JSON text, as ``verdicts`` holds them) as 'activation=tanh, pool=average'."""
    options = json.loads(options)
    return settings_label(options, sorted(options))


def table4_table(cells: pd.DataFrame) -> pd.DataFrame:
    """table4.csv: the cells (``table4_cells``), accuracy named accuracy_pct."""
    return cells.replace({"metric": METRIC_UNITS})


def verdicts_table(lines: pd.DataFrame) -> pd.DataFrame:
    """verdicts.csv: the verdict lines (``verdicts.verdict_cells``), options as 'key=value' text and
    each accuracy column named with its unit (VERDICT_UNITS)."""
    return lines.assign(options=lines["options"].map(options_text)).rename(columns=VERDICT_UNITS)


def claims_table(judged: verdicts.Verdicts) -> pd.DataFrame:
    """claims.csv: every comparison (``verdicts.COMPARISON_COLUMNS``) with its claim's verdict
    (claim_verdict), accuracy named accuracy_pct."""
    verdict = judged.claims[["setup", "claim", "verdict"]].rename(columns={"verdict": "claim_verdict"})
    tidy = judged.comparisons.merge(verdict, on=["setup", "claim"], how="left", validate="many_to_one")
    return tidy.replace({"metric": METRIC_UNITS})


def runs_table(records: list[store.RunRecord], frame: pd.DataFrame) -> pd.DataFrame:
    """runs.csv: a line per run of ``frame`` (``report_frame``), in its order, and a column per
    setting and measure: row, run_id, config_key, the spec's fields (its parts and the model's
    options as 'preprocess.size', 'model_options.head'), the record's outcome and measures
    (test_accuracy_pct in %), its files ('files.log'), its environment ('environment.host'), its
    machine and whether its time counts ('timed', ``timed_on_one_machine``). Lists per
    ``csv_value``; the per-epoch history is in ``history_table``."""
    lines = {}
    for record in records:
        fields = record.to_dict()
        spec, env = fields.pop("spec"), fields.pop("environment")
        del fields["history"], spec["schema_version"]
        lines[record.run_id] = {"run_id": record.run_id, "config_key": record.spec.config_key, **flatten(spec),
                                **flatten(fields), **flatten(env, "environment.")}
    table = pd.DataFrame([lines[run_id] for run_id in frame["run_id"]]).map(csv_value)
    table["test_accuracy"] = table["test_accuracy"].astype(float) * 100
    table = table.rename(columns={"test_accuracy": "test_accuracy_pct"})
    table.insert(0, "row", list(frame["row"]))
    return table.assign(machine=list(frame["machine"]), timed=list(frame["timed"]))


def history_table(records: list[store.RunRecord], frame: pd.DataFrame) -> pd.DataFrame:
    """history.csv, long: a line per run, epoch and metric (run_id, row, dataset, seed, epoch,
    metric, value), the runs in ``frame``'s order; accuracies in % (accuracy_pct,
    val_accuracy_pct), the other metrics as the records hold them (seconds)."""
    history = store.history_frame(records)
    metrics = [c for c in history.columns if c not in ("run_id", "config_key", "model", "dataset", "repeat", "epoch")]
    history[list(METRIC_UNITS)] = history[list(METRIC_UNITS)] * 100
    long = history.melt(id_vars=["run_id", "epoch"], value_vars=metrics, var_name="metric", value_name="value")
    runs = frame[["run_id", "row", "dataset", "seed"]].assign(_order=range(len(frame)))
    long = long.merge(runs, on="run_id").assign(_metric=lambda t: t["metric"].map(metrics.index))
    return (long.sort_values(["_order", "epoch", "_metric"], kind="stable").replace({"metric": METRIC_UNITS})
            [["run_id", "row", "dataset", "seed", "epoch", "metric", "value"]].reset_index(drop=True))


# ---------------------------------------------------------------- inputs, for the findings


def input_description(input_shape: tuple[int, int, int] | None, num_classes: int | None) -> str | None:
    """'32x32x3 input, 10 classes' for a run's record; None for a run that never built its model."""
    if input_shape is None:
        return None
    return f"{'x'.join(map(str, input_shape))} input, {num_classes} classes"
