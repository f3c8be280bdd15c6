"""Records to aggregates: table rows, Table 4 cells beside the published values, comparisons.

Pure functions: records or DataFrames in, DataFrames out; no reading or writing here.

A *row* of Table 4 is one experiment setting of one model: every spec field but the dataset,
the seed, the repeat and the execution settings. A *cell* is a row on one dataset, which is
exactly one ``RunSpec.config_key``, so runs of different profiles or settings are never
averaged together. Cells aggregate the runs whose status is "ok"; the others are counted
(``runs``) and named in the report's findings.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
from dataclasses import dataclass

import natsort
import pandas as pd

from bench import store
from bench.spec import EXECUTION_FIELDS, REPEAT_FIELDS, TABLE4_MODELS, RunSpec
from bench.stats import summarize, welch

DISPLAY_NAMES = {"mlp": "MLP", "cnn": "CNN", "mobilenet": "MobileNet"}
DATASET_TITLES = {"fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                  "mnist": "MNIST"}
# Table 4 metrics: run column -> what the table calls it.
METRICS = {"accuracy": "Accuracy (%)", "sec_per_epoch": "Time (s/epoch)", "params_total": "Parameters"}
# Spec fields a table row does not depend on: they differ between the cells and repeats of a row.
NOT_ROW_FIELDS = (*EXECUTION_FIELDS, *REPEAT_FIELDS, "dataset")
UNSET = "default"  # how a label shows a setting one row has and another does not (a model option)
ENVIRONMENT_KEYS = ("cpu_count", "python", "tensorflow", "keras", "gpu", "threads_per_job", "git_commit")
ONEDNN_WORDS = {True: "on", False: "off"}  # records older than the setting say nothing
CELL_COLUMNS = ("row", "model", "dataset", "metric", "n", "mean", "std", "ci_low", "ci_high",
                "published", "difference", "published_outside_ci", "runs", "config_key")
COMPARISON_COLUMNS = ("dataset", "row", "against", "n_row", "n_against",
                      "mean_row", "mean_against", "difference", "p_value")


# ---------------------------------------------------------------- published values


@dataclass(frozen=True)
class Published:
    """The report's Table 4 (Cao, Shang and Zang, Columbia E4040, 2021).

    Attributes:
        values: (model, dataset, metric) -> value; accuracy in %, time in s/epoch; the
            parameter count is keyed with dataset "" (the report gives one per model).
        notes: model -> what the report's parameter count stands for.
        options: model -> {option: value} the report's model had where our registry offers
            others ("head=dense" for the FishNets): a row with other values is not the
            report's model, and no published value stands beside it.
    """

    values: dict
    notes: dict
    options: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "Published":
        """From the tidy file ``bench/assets/table4_published.csv``
        (model, dataset, metric, value, options as "key=value;...", note)."""
        values = {(r.model, r.dataset, r.metric): float(r.value) for r in frame.itertuples()}
        notes = {r.model: r.note for r in frame.itertuples() if r.note}
        options = {r.model: dict(pair.split("=", 1) for pair in r.options.split(";"))
                   for r in frame.itertuples() if r.options}
        return cls(values, notes, options)

    def describes(self, model: str, settings: dict | None) -> bool:
        """Whether a row of ``model`` with these settings (None: unknown) is the report's model."""
        return settings is None or all(
            as_text(settings.get(f"model_options.{key}", value)) == value
            for key, value in self.options.get(model, {}).items())

    def value(self, model: str, dataset: str, metric: str) -> float:
        """The published value, NaN where the report has none."""
        key = (model, "" if metric == "params_total" else dataset, metric)
        return self.values.get(key, math.nan)

    @property
    def datasets(self) -> list[str]:
        """The report's datasets, in its column order."""
        return list(dict.fromkeys(dataset for _, dataset, _ in self.values if dataset))

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(model for model, _, _ in self.values))


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
    """The report's datasets (always, so its values show), then the measured others, sorted."""
    return published.datasets + sorted(set(frame["dataset"]) - set(published.datasets))


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


def row_labels(rows: pd.DataFrame) -> dict:
    """row_key -> label: the model's name, plus the settings telling apart its rows.

    A model with one row is 'FishNet55'; with two that differ in the head option,
    'FishNet55 (head=conv)' and 'FishNet55 (head=dense)'. Model options drop their prefix.
    """
    labels = {}
    for model, group in rows.groupby("model"):
        varying = varying_keys(list(group["settings"]))
        for key, settings in zip(group["row_key"], group["settings"]):
            named = ", ".join(f"{k.removeprefix('model_options.')}={as_text(settings.get(k, UNSET))}"
                              for k in varying)
            labels[key] = display_name(model) + (f" ({named})" if named else "")
    return labels


def report_frame(records: list[store.RunRecord]) -> pd.DataFrame:
    """``store.runs_frame`` plus what the report needs.

    Added columns: accuracy (test accuracy in %), settings (row_settings), row_key (them as
    text), row (the row's label), the environment keys of ENVIRONMENT_KEYS, onednn (on,
    off, or not recorded), speedups (on, or off for ``--no-speedups`` runs), family (the
    model's, from the registry) and inputs ('56x56x3 input, 10 classes').
    Sorted by model order, row, dataset and repeat.
    """
    frame = store.runs_frame(records)
    frame["accuracy"] = frame["test_accuracy"].astype(float) * 100
    frame["settings"] = [row_settings(r.spec) for r in records]
    frame["row_key"] = frame["settings"].map(settings_key)
    for key in ENVIRONMENT_KEYS:
        frame[key] = [as_text(r.environment.get(key)) for r in records]
    frame["onednn"] = [ONEDNN_WORDS.get(r.environment.get("onednn"), "not recorded") for r in records]
    frame["speedups"] = ["on" if r.spec.speedups else "off" for r in records]
    frame["family"] = [r.model_family for r in records]
    frame["inputs"] = [input_description(r.input_shape, r.num_classes) for r in records]
    rows = frame.drop_duplicates("row_key")
    frame["row"] = frame["row_key"].map(row_labels(rows))
    order = frame["model"].map(model_order)
    return (frame.assign(_order=order)
            .sort_values(["_order", "row", "dataset", "repeat", "run_id"], kind="stable")
            .drop(columns="_order").reset_index(drop=True))


def ok_runs(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"]


# ---------------------------------------------------------------- Table 4


def table_rows(frame: pd.DataFrame, published: Published) -> list[tuple[str, str]]:
    """(label, model) of every row: the measured ones, then published models not measured."""
    measured = list(dict.fromkeys(zip(frame["row"], frame["model"])))
    missing = [(display_name(m), m) for m in published.models if m not in set(frame["model"])]
    return sorted(measured + missing, key=lambda row: (model_order(row[1]), row[0]))


def cell(runs: pd.DataFrame, model: str, dataset: str, metric: str, published: Published,
         settings: dict | None) -> dict:
    """One metric of one row (of these settings; None for a published row never run) on one
    dataset, over its ok runs, beside the published value if the row is the report's model."""
    summary = summarize(ok_runs(runs)[metric].astype(float))
    value = published.value(model, dataset, metric) if published.describes(model, settings) else math.nan
    inside = summary.contains(value) if not math.isnan(value) else None
    return {
        "model": model, "dataset": dataset, "metric": metric, **dataclasses.asdict(summary),
        "published": value, "difference": summary.mean - value,
        "published_outside_ci": None if inside is None else not inside,
        "runs": len(runs), "config_key": ",".join(sorted(set(runs["config_key"]))),
    }


def table4_cells(frame: pd.DataFrame, published: Published) -> pd.DataFrame:
    """Tidy Table 4: one line per row, dataset and metric (CELL_COLUMNS); missing cells have n = 0."""
    settings = dict(zip(frame["row"], frame["settings"]))
    lines = []
    for label, model in table_rows(frame, published):
        for dataset in dataset_order(frame, published):
            runs = frame[(frame["row"] == label) & (frame["dataset"] == dataset)]
            lines.extend({"row": label, **cell(runs, model, dataset, metric, published, settings.get(label))}
                         for metric in METRICS)
    return pd.DataFrame(lines, columns=list(CELL_COLUMNS))


# ---------------------------------------------------------------- the report's comparisons


def model_options_key(settings: dict) -> str:
    return json.dumps({k: v for k, v in settings.items() if k.startswith("model_options.")}, sort_keys=True)


def compared(later: pd.Series, earlier: pd.Series) -> bool:
    """Whether the report compares these rows: a FishNet against a baseline, a bigger FishNet
    against a smaller one with the same options, or one FishNet with other options (its head)."""
    if later["family"] != "fishnet":
        return False
    if earlier["family"] == "baselines":
        return True
    return (later["model"] == earlier["model"]) != (later["options"] == earlier["options"])


def comparisons(frame: pd.DataFrame, published: Published) -> pd.DataFrame:
    """Per dataset, the pairs of rows of one setup that ``compared`` accepts: their accuracy.

    A pair is (row, against), ``row`` the later in table order; difference = mean accuracy
    of row - of against (percentage points), with Welch's two-sided p-value
    (``stats.welch``); only ok runs count.
    """
    # Rows of one setup differ only in the model and its options; only those are compared.
    ok = ok_runs(frame).assign(setup=lambda f: f["settings"].map(lambda s: settings_key(s, ("model",))),
                               options=lambda f: f["settings"].map(model_options_key))
    lines = []
    for dataset in dataset_order(frame, published):
        runs = ok[ok["dataset"] == dataset]
        rows = runs.drop_duplicates("row").set_index("row")
        accuracy = {row: group["accuracy"] for row, group in runs.groupby("row", sort=False)}
        for row, against in itertools.combinations(reversed(list(rows.index)), 2):
            if rows.loc[row, "setup"] != rows.loc[against, "setup"] or not compared(rows.loc[row], rows.loc[against]):
                continue
            ours, theirs = accuracy[row], accuracy[against]
            result = welch(ours, theirs)
            lines.append((dataset, row, against, len(ours), len(theirs), ours.mean(), theirs.mean(),
                          result.difference, result.p_value))
    return pd.DataFrame(lines, columns=list(COMPARISON_COLUMNS))


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


# ---------------------------------------------------------------- inputs, for the findings


def input_description(input_shape: tuple[int, int, int] | None, num_classes: int | None) -> str | None:
    """'32x32x3 input, 10 classes' for a run's record; None for a run that never built its model."""
    if input_shape is None:
        return None
    return f"{'x'.join(map(str, input_shape))} input, {num_classes} classes"
