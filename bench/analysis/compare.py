"""``python -m bench compare A B``: the same cells of two results folders side by side, B against A.

For asking what a change did: two folders of one profile run before and after a change to a model
or to the harness, say. A cell is a row's settings on one dataset (``aggregate``): every spec field
but the seed, the repeat and the execution settings, so a cell of A is compared only with the cell
of B that has exactly its settings. A cell in only one folder is shown with n = 0 on the other side.

``compare_frames`` is pure; ``compare_folders`` reads the two folders' records and calls it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.analysis import aggregate
from bench.analysis.stats import difference_of_means
from bench.records.results import Results


@dataclass(frozen=True)
class CellComparison:
    """One cell in A and in B: final test accuracy (%) over each side's ok runs.

    Attributes:
        row, model, dataset, setup: the cell; its row's label and its setup name what tells it
            apart among the cells of both folders, as a report of both would
            (``aggregate.row_labels``, ``aggregate.setup_labels``).
        n_a, n_b: ok runs in A, in B (0: the cell is not in that folder, or none of its runs is ok).
        mean_a, mean_b: mean accuracy in A, in B; NaN at n = 0.
        difference: mean_b - mean_a, in percentage points; NaN when a side has no ok run.
        ci_low, ci_high: Welch's 95 % CI of the difference (``stats.difference_of_means``);
            NaN with fewer than 2 ok runs on a side or both sides constant.
        p_value: Welch's two-sided p; NaN when the CI is.
    """

    row: str
    model: str
    dataset: str
    setup: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float


def _accuracies(frame: pd.DataFrame, key: tuple[str, str]) -> pd.Series:
    cell = frame[(frame["row_key"] == key[0]) & (frame["dataset"] == key[1])]
    return aggregate.ok_runs(cell)["accuracy"].astype(float)


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else math.nan


def compare_frames(a: pd.DataFrame, b: pd.DataFrame, models: list[str] | None = None) -> list[CellComparison]:
    """Every cell of A or B (``aggregate.report_frame`` of each), A's cells first in A's order,
    then those only B has, in B's; only the cells of ``models`` (model names) if given.

    Raises:
        ValueError: a name in ``models`` has no run in A nor in B (the models that do are listed).
    """
    if models:
        present = sorted(set(a["model"]) | set(b["model"]), key=aggregate.model_order)
        unknown = [m for m in models if m not in present]
        if unknown:
            raise ValueError(f"no runs of {', '.join(unknown)} in either folder; models with runs: "
                             f"{', '.join(present)}. Received: --models {','.join(models)}")
        a, b = a[a["model"].isin(models)], b[b["model"].isin(models)]
    both = pd.concat([a, b]).drop_duplicates(["row_key", "dataset"])
    rows = aggregate.row_labels(both.drop_duplicates("row_key"))
    lines = []
    for cell, setup in zip(both.itertuples(), aggregate.setup_labels(list(both["settings"]))):
        key = (cell.row_key, cell.dataset)
        first, second = _accuracies(a, key), _accuracies(b, key)
        test = difference_of_means(second, first)
        lines.append(CellComparison(
            row=rows[cell.row_key], model=cell.model, dataset=cell.dataset, setup=setup,
            n_a=len(first), n_b=len(second), mean_a=_mean(first), mean_b=_mean(second),
            difference=test.difference, ci_low=test.ci_low, ci_high=test.ci_high, p_value=test.p_value))
    return lines


def load_frame(results: Path) -> pd.DataFrame:
    """``aggregate.report_frame`` of a folder's records, one per configuration and seed
    (``aggregate.one_per_seed``); files that are not records are left out.

    Raises:
        ValueError: the folder holds no readable record.
    """
    records, _ = Results(results).records()
    if not records:
        raise ValueError(f"nothing to compare: {Results(results).runs} holds no readable record")
    return aggregate.report_frame(aggregate.one_per_seed(records)[0])


def compare_folders(a: Path, b: Path, models: list[str] | None = None) -> list[CellComparison]:
    """``compare_frames`` of the records of the results folders ``a`` and ``b``.

    Raises:
        ValueError: a folder holds no readable record, or ``models`` names a model neither ran.
    """
    return compare_frames(load_frame(a), load_frame(b), models)
