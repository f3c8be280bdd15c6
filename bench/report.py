"""``python -m bench report``: Table 4, statistics, findings and figures from the records alone.

``write_report`` is the only function here that reads or writes; the others turn the
aggregates of ``bench.aggregate`` into text. The output depends on the records only (no
clock, sorted throughout), so the same records give the same report.md byte for byte.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from tabulate import tabulate

from bench import aggregate, figures, store
from bench.aggregate import Published, dataset_title

PUBLISHED_FILE = Path(__file__).parent / "assets" / "table4_published.csv"
FIGURE_DIR = "figures"
MARK = "†"  # the published value lies outside our 95 % CI
ENVIRONMENT_LINE = (("host", "host"), ("cpu", "CPU"), ("cpu_count", "cores"), ("gpu", "GPU"),
                    ("python", "Python"), ("tensorflow", "TensorFlow"), ("keras", "Keras"), ("onednn", "oneDNN"),
                    ("speedups", "harness speed-ups"), ("threads_per_job", "threads per run"),
                    ("jobs_at_once", "runs at once"))
PUBLISHED_DIGITS = {"accuracy": 1, "sec_per_epoch": 2}  # as the report printed them
ERROR_CHARS = 160  # of a failed run's error text, in the findings


# ---------------------------------------------------------------- numbers as text


def number(value: float, digits: int = 2) -> str:
    return "NaN" if math.isnan(value) else f"{value:.{digits}f}"


def count(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.0f}"


def measured_text(cell) -> str:
    """'88.10 ± 0.40 (n=3)'; '— (n=0)' for a cell without ok runs."""
    if cell.n == 0:
        return "— (n=0)"
    return f"{number(cell.mean)} ± {number(cell.std)} (n={cell.n})"


def published_text(cell) -> str:
    """'86.5 (+1.60) †': the published value, measured - published, the mark; '—' if none."""
    if math.isnan(cell.published):
        return "—"
    text = number(cell.published, PUBLISHED_DIGITS[cell.metric])
    if cell.n:
        text += f" ({cell.difference:+.2f})"
    return text + (f" {MARK}" if cell.published_outside_ci is True else "")


def parameters_text(row_cells: pd.DataFrame) -> tuple[str, str]:
    """(measured, published) parameter counts of a row; a count per dataset where they differ."""
    measured = row_cells[(row_cells["metric"] == "params_total") & (row_cells["n"] > 0)]
    values = list(dict.fromkeys(measured["mean"]))
    published = row_cells.loc[row_cells["metric"] == "params_total", "published"].iloc[0]
    if len(values) == 1:
        difference = "" if math.isnan(published) else f" ({values[0] - published:+,.0f})"
        return count(values[0]), count(published) + difference
    per_dataset = " / ".join(f"{count(v)} ({dataset_title(d)})" for d, v in zip(measured["dataset"], measured["mean"]))
    return per_dataset or "—", count(published)


# ---------------------------------------------------------------- Table 4


def table4_layout(cells: pd.DataFrame, published: Published) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of Table 4 in the report's layout, measured beside published.

    Per dataset: accuracy and time, each followed by 'report (Δ)' where the report has
    values; then the parameters. Δ = measured mean - published value.
    """
    datasets = list(dict.fromkeys(cells["dataset"]))
    headers = ["Model"]
    for dataset in datasets:
        for metric in ("accuracy", "sec_per_epoch"):
            headers.append(f"{dataset_title(dataset)}\n{aggregate.METRICS[metric]}")
            headers += ["report\n(Δ)"] if dataset in published.datasets else []
    headers += ["Parameters", "report\n(Δ)"]
    rows = []
    for label, row_cells in cells.groupby("row", sort=False):
        line = [label]
        for cell in row_cells[row_cells["metric"] != "params_total"].itertuples():
            line.append(measured_text(cell))
            line += [published_text(cell)] if cell.dataset in published.datasets else []
        rows.append(line + list(parameters_text(row_cells)))
    return headers, rows


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub table; line breaks in headers become spaces."""
    return tabulate(rows, headers=[h.replace("\n", " ") for h in headers], tablefmt="github", disable_numparse=True)


def comparisons_layout(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the comparisons table (``aggregate.comparisons``)."""
    headers = ["Dataset", "Model", "against", "Model acc. (%)", "against acc. (%)", "difference (pp)", "Welch p"]
    rows = [[dataset_title(c.dataset), c.row, c.against, f"{number(c.mean_row)} (n={c.n_row})",
             f"{number(c.mean_against)} (n={c.n_against})", f"{c.difference:+.2f}",
             "NaN" if math.isnan(c.p_value) else f"{c.p_value:.3g}"] for c in table.itertuples()]
    return headers, rows


# ---------------------------------------------------------------- method and findings


def distinct(values) -> str:
    """The distinct values, in order of appearance, joined; None-like ones read 'none'."""
    texts = ["none" if v == "null" or pd.isna(v) else str(v) for v in values]
    return ", ".join(dict.fromkeys(texts))


def shared_settings(frame: pd.DataFrame) -> str:
    """'key=value' for every row setting all runs share (the others are in the row labels)."""
    settings = list(frame.drop_duplicates("row_key")["settings"])
    shared = [k for k in sorted(settings[0]) if k != "model" and k not in aggregate.varying_keys(settings)]
    return ", ".join(f"{k}={aggregate.as_text(settings[0][k])}" for k in shared)


def machine_sharing(frame: pd.DataFrame) -> str:
    """A sentence when the timings come from a shared machine: other runs, or other load."""
    jobs, load = frame["jobs_at_once"].fillna(1).max(), frame["load_at_end"].astype(float).max()
    cores = pd.to_numeric(frame["cpu_count"], errors="coerce").max()
    parts = [f"up to {jobs:g} runs at once"] if jobs > 1 else []
    if load > cores:
        parts.append(f"a 1-minute load average of up to {load:.1f} on {cores:g} cores at a run's end")
    return f" Timings come from runs that shared the machine: {'; '.join(parts)}." if parts else ""


def method_lines(frame: pd.DataFrame, cells: pd.DataFrame) -> list[str]:
    """The method in a few lines: records, n, data, settings, measures, environment."""
    ok = aggregate.ok_runs(frame)
    sizes = cells.loc[(cells["metric"] == "accuracy") & (cells["n"] > 0), "n"]
    n = f"{sizes.min()} to {sizes.max()}" if sizes.nunique() > 1 else str(sizes.max() if len(sizes) else 0)
    inputs = dict(zip(frame["dataset"], frame["inputs"]))
    environment = "; ".join(f"{name} {distinct(frame[key])}" for key, name in ENVIRONMENT_LINE)
    return [
        f"Records: {len(frame)} runs ({len(ok)} ok) of profile(s) {distinct(frame['profile'])}; "
        f"n = {n} ok runs per cell (seeds {distinct(sorted(frame['seed']))}).",
        "Data: " + "; ".join(f"{d} ({inputs[d] or 'input not known'})" for d in sorted(inputs)) + ".",
        f"Settings of every run: {shared_settings(frame)}.",
        "Accuracy: final-epoch test accuracy (%), mean ± sample std (ddof=1) over the ok runs of one "
        "configuration (every spec field but seed and repeat); 95 % CI = mean ± t(0.975, n-1)·std/√n; "
        "at n = 1 std and CI are NaN. Time: training seconds per epoch, the median of each run's "
        "steady epochs (epoch 1 with tracing left out), then mean ± std over runs. Parameters: Keras total.",
        f"Environment: {environment}; code {distinct(frame['git_commit'])}." + machine_sharing(frame),
    ]


def parameter_findings(frame: pd.DataFrame, cells: pd.DataFrame, published: Published) -> list[str]:
    """Where a measured parameter count differs from the published one: by how much and why."""
    params = cells[(cells["metric"] == "params_total") & (cells["n"] > 0) & cells["published"].notna()]
    params = params[params["mean"] != params["published"]]
    inputs_of = dict(zip(zip(frame["row"], frame["dataset"]), frame["inputs"]))
    lines = []
    for (row, value), group in params.groupby(["row", "mean"], sort=False):
        model, reference = group["model"].iloc[0], group["published"].iloc[0]
        inputs = distinct(inputs_of[row, d] for d in group["dataset"])
        lines.append(f"{row} on {', '.join(map(dataset_title, group['dataset']))}: {count(value)} parameters "
                     f"against the report's {count(reference)} ({value - reference:+,.0f}, "
                     f"{100 * (value / reference - 1):+.1f} %), measured at {inputs}; "
                     f"the report's count: {published.notes.get(model, 'no known cause')}.")
    return lines


def status_findings(frame: pd.DataFrame) -> list[str]:
    """How many runs of each cell diverged, failed or timed out, with seeds and the first error."""
    lines = []
    for (row, dataset), runs in frame.groupby(["row", "dataset"], sort=False):
        bad = runs[runs["status"] != "ok"]
        if bad.empty:
            continue
        parts = []
        for status, group in bad.groupby("status"):
            seeds = ("seed " if len(group) == 1 else "seeds ") + ", ".join(map(str, sorted(group["seed"])))
            error = str(group["error"].iloc[0] or "").strip().splitlines() or [""]
            parts.append(f"{len(group)} {status} ({seeds})" + (f": {error[0][:ERROR_CHARS]}" if error[0] else ""))
        lines.append(f"{row} on {dataset_title(dataset)}: {len(bad)} of {len(runs)} runs not ok, "
                     f"left out of the table: " + "; ".join(parts) + ".")
    if not lines:
        lines.append(f"All {len(frame)} runs finished ok: none diverged, failed or timed out.")
    return lines


# ---------------------------------------------------------------- assembling


def epoch_frame(records: list[store.RunRecord], frame: pd.DataFrame) -> pd.DataFrame:
    """Epochs of the ok runs with their row label; accuracies in %."""
    history = store.history_frame(records).merge(aggregate.ok_runs(frame)[["run_id", "row"]], on="run_id")
    return history.assign(accuracy=history["accuracy"] * 100, val_accuracy=history["val_accuracy"] * 100)


def report_figures(frame: pd.DataFrame, history: pd.DataFrame, cells: pd.DataFrame) -> dict[str, Figure]:
    """File name -> Figure: accuracy with CI, curves and cost per dataset, head comparisons."""
    colors = figures.row_colors(list(dict.fromkeys(cells["row"])))
    measured = cells[cells["n"] > 0]
    datasets = list(dict.fromkeys(measured["dataset"]))
    made = {}
    if datasets:
        made["accuracy_ci.png"] = figures.accuracy_ci_figure(measured[measured["metric"] == "accuracy"], colors)
    for dataset in datasets:
        made[f"curves_{dataset}.png"] = figures.curves_figure(history, dataset, colors)
        made[f"cost_{dataset}.png"] = figures.cost_figure(cells, dataset, colors)
    for index, (model, dataset, rows) in enumerate(aggregate.head_groups(frame), 1):
        made[f"heads_{index}_{model}_{dataset}.png"] = figures.heads_figure(history, dataset, rows, colors)
    return made


def markdown(frame: pd.DataFrame, cells: pd.DataFrame, published: Published, comparison: pd.DataFrame,
             figure_names: list[str], skipped: list[str]) -> str:
    """report.md: method, Table 4, statistics, findings, figures."""
    parts = ["# fishbench report", "", "## Method", ""]
    parts += [f"- {line}" for line in method_lines(frame, cells)]
    parts += ["", "## Table 4", "",
              f"Each cell: mean ± std (n ok runs). *report (Δ)*: the report's value and measured − published; "
              f"{MARK}: the published value lies outside our 95 % CI. '—': no ok run (n=0) or no published value. "
              "95 % CIs are in table4.csv.", ""]
    parts.append(markdown_table(*table4_layout(cells, published)))
    parts += ["", "## The report's comparisons", "",
              "Test accuracy per dataset, between rows of the same settings: each FishNet against each baseline, "
              "FishNet77 against FishNet55, and a FishNet against itself with other options (its head). "
              "Difference = row − against in percentage points, p from Welch's t-test (two-sided; NaN with "
              "fewer than 2 runs or no variance).", ""]
    parts.append(markdown_table(*comparisons_layout(comparison)) if len(comparison) else "No pairs to compare.")
    findings = parameter_findings(frame, cells, published) + status_findings(frame)
    findings += [f"Unreadable record skipped: {message}" for message in skipped]
    parts += ["", "## Findings", ""] + [f"- {line}" for line in findings]
    figure_lines = [f"![{name}]({FIGURE_DIR}/{name})" for name in figure_names] or ["None: no run finished ok."]
    parts += ["", "## Figures", ""] + figure_lines
    return "\n".join(parts) + "\n"


def result_folders(root: Path) -> list[Path]:
    """The folders of ``root`` that hold records (``root/<profile>``), and root itself if it does.

    Raises:
        ValueError: there is none.
    """
    candidates = [root, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []
    folders = [folder for folder in candidates if store.runs_dir(folder).is_dir()]
    if not folders:
        raise ValueError(f"nothing to report: no folder with runs/ in {root}/; run `python -m bench run` first")
    return folders


def write_report(results: str | Path, out: str | Path) -> str:
    """Read the records of ``results``, write the report into ``out``, return the terminal text.

    Writes report.md, table4.csv, runs.csv and figures/*.png.

    Raises:
        ValueError: ``results/runs`` is missing or holds no readable record.
    """
    results, out = Path(results), Path(out)
    records, skipped = store.load_records(results)
    if not records:
        where = store.runs_dir(results)
        state = ("does not exist" if not where.is_dir() else
                 f"holds no readable record ({'; '.join(skipped)})" if skipped else "is empty")
        raise ValueError(f"nothing to report: {where} {state}; run `python -m bench run` first")
    published = Published.from_frame(pd.read_csv(PUBLISHED_FILE, keep_default_na=False))
    frame = aggregate.report_frame(records)
    cells = aggregate.table4_cells(frame, published)
    comparison = aggregate.comparisons(frame, published)
    made = report_figures(frame, epoch_frame(records, frame), cells)
    (out / FIGURE_DIR).mkdir(parents=True, exist_ok=True)
    for name, figure in made.items():
        figure.savefig(out / FIGURE_DIR / name, dpi=100)
    (out / "report.md").write_text(markdown(frame, cells, published, comparison, list(made), skipped))
    cells.to_csv(out / "table4.csv", index=False)
    frame[["row", *store.RUN_COLUMNS]].to_csv(out / "runs.csv", index=False)
    headers, rows = table4_layout(cells, published)
    lines = [tabulate(rows, headers=headers, disable_numparse=True)]
    lines += [f"skipped unreadable record {message}" for message in skipped]
    lines.append(f"wrote report.md, table4.csv, runs.csv and {len(made)} figures to {out}")
    return "\n".join(lines)
