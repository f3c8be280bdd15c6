"""The report's figures as matplotlib ``Figure`` objects (Agg canvas, no pyplot state).

Pure functions: aggregates in, a Figure out; ``bench.report.report`` saves them. Each model keeps
one colour in every figure of every report, by its name; a model's other rows (other options)
are shades of it (``row_colors``).
"""
from __future__ import annotations

import hashlib
import textwrap

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from bench.analysis.aggregate import dataset_title

PANEL = (5.2, 4.0)  # inches per panel
# The accuracy figure's size follows its rows and labels: ROW inches per row (a panel at least
# PANEL[1] high), CHAR inches per character of its longest row label (10 pt text), labels wrapped
# at LABEL_CHARS; LEGEND_LINE inches more per line of a legend below the panels.
ROW, CHAR, LABEL_CHARS, LEGEND_LINE = 0.32, 0.075, 40, 0.25
PUBLISHED_STYLE = dict(marker="x", color="black", markersize=8, linestyle="none", label="report's value")


# The registry's models, each its tab10 colour; other names take one of tab20b by a hash of the name.
MODEL_COLORS = {"mlp": 0, "cnn": 1, "mobilenet": 2, "fishnet55": 3, "fishnet77": 4, "fishnet99": 5,
                "fishnet150": 6, "fishnet201": 8}
SHADES = (0.0, 0.45, -0.35, 0.7, -0.6)  # a model's 2nd, 3rd, ... row: towards white (+) or black (-)


def model_color(model: str) -> tuple[float, float, float]:
    """The colour of a model, the same in every figure and report: fixed for the registry's models,
    from a hash of the name for others."""
    if model in MODEL_COLORS:
        return to_rgb(matplotlib.colormaps["tab10"](MODEL_COLORS[model]))
    palette = matplotlib.colormaps["tab20b"]
    return to_rgb(palette(int(hashlib.sha256(model.encode()).hexdigest(), 16) % palette.N))


def _shade(color: tuple[float, float, float], amount: float) -> tuple[float, ...]:
    target = 1.0 if amount > 0 else 0.0
    return tuple(c + abs(amount) * (target - c) for c in color)


def row_colors(models: dict[str, str]) -> dict:
    """row label -> colour, from ``models`` (row label -> model, in table order): the model's
    colour for its first row, shades of it for the others (SHADES, then repeating)."""
    colors, seen = {}, {}
    for row, model in models.items():
        index = seen[model] = seen.get(model, -1) + 1
        colors[row] = _shade(model_color(model), SHADES[index % len(SHADES)])
    return colors


def _figure(panels: int, title: str, sharey: bool = False) -> tuple[Figure, list]:
    figure = Figure(figsize=(PANEL[0] * panels, PANEL[1]), layout="constrained")
    axes = figure.subplots(1, panels, sharey=sharey, squeeze=False)[0]
    figure.suptitle(title, fontweight="bold")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return figure, list(axes)


def _accuracy_limits(*columns: pd.Series) -> tuple[float, float]:
    """Axis limits around the values, padded, inside 0..100 %: a wide CI is cut at the edge."""
    values = pd.concat(columns).dropna()
    low, high = values.min(), values.max()
    pad = max(2.0, 0.05 * (high - low))
    return max(0.0, low - pad), min(100.0, high + pad)


def _row_legend(figure: Figure, axes: list) -> None:
    """One legend for the figure, below the panels, each label once; the figure grows by its lines."""
    entries = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if not entries:
        return
    columns = max(1, min(len(entries), 100 // max(len(label) for label in entries)))
    figure.legend(entries.values(), entries.keys(), loc="outside lower center", ncols=columns, fontsize="small")
    width, height = figure.get_size_inches()
    figure.set_size_inches(width, height + LEGEND_LINE * -(-len(entries) // columns))


def short_number(value: float) -> str:
    """Tick text: 50000 -> '50k', 2000000 -> '2M', 0.5 -> '0.5'."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def _log_axis(ax, label: str) -> None:
    """A log-scale x axis whose ticks read as plain numbers: 1, 2, 5 per decade over at most
    two decades, one tick per decade over more. Call it after plotting (it reads the limits)."""
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5) if high / low <= 100 else (1,)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: short_number(value)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label)


def _ci_error(cells: pd.DataFrame) -> np.ndarray:
    """Asymmetric error bars from the mean to the CI ends; 0 where the CI is undefined (n = 1)."""
    return np.nan_to_num(np.vstack([cells["mean"] - cells["ci_low"], cells["ci_high"] - cells["mean"]]))


def clipped_ci(cells: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The cells with their CI cut to [0, 100] %, and which ones were cut (a t interval over
    few runs can pass either end; an accuracy cannot)."""
    clipped = cells.assign(ci_low=cells["ci_low"].clip(lower=0.0), ci_high=cells["ci_high"].clip(upper=100.0))
    return clipped, (cells["ci_low"] < 0) | (cells["ci_high"] > 100)


def accuracy_ci_figure(cells: pd.DataFrame, colors: dict) -> Figure:
    """Test accuracy per row, mean with its 95 % CI, one panel per dataset (one above the
    other), published value as x.

    The figure's height follows the rows, its width the longest row label (wrapped at
    LABEL_CHARS); the legend is below the panels, never over a label. A CI is cut at 0 and
    100 % (``clipped_ci``), and the axis label names the rows cut.

    Args:
        cells: Table 4 cells (``aggregate.table4_cells``), accuracy lines with n >= 1 only.
        colors: row label -> colour.
    """
    cells, cut = clipped_ci(cells)
    datasets = list(dict.fromkeys(cells["dataset"]))
    rows = [int((cells["dataset"] == dataset).sum()) for dataset in datasets]
    labels = [textwrap.fill(f"{r} (n={n})", LABEL_CHARS) for r, n in zip(cells["row"], cells["n"])]
    label_inches = CHAR * max(len(line) for label in labels for line in label.splitlines())
    heights = [max(1.4, 0.8 + ROW * n) for n in rows]
    figure = Figure(figsize=(PANEL[0] + label_inches, sum(heights) + 0.6 + LEGEND_LINE * cut.any()),
                    layout="constrained")
    axes = figure.subplots(len(datasets), 1, squeeze=False, height_ratios=heights)[:, 0]
    figure.suptitle("Test accuracy: mean and 95 % CI over runs", fontweight="bold")
    for ax, dataset in zip(axes, datasets):
        here = (cells["dataset"] == dataset).to_numpy()
        shown = cells[here].iloc[::-1]  # first row at the top
        positions, errors = np.arange(len(shown)), _ci_error(shown)
        for y, row, mean in zip(positions, shown["row"], shown["mean"]):
            ax.errorbar(mean, y, xerr=errors[:, [y]], fmt="o", capsize=4, color=colors[row])
        published = shown["published"].notna()
        if published.any():
            ax.plot(shown["published"][published], positions[published.to_numpy()], **PUBLISHED_STYLE)
        ax.set_yticks(positions, [label for label, keep in zip(labels, here) if keep][::-1])
        ax.set_ylim(-0.6, len(shown) - 0.4)
        ax.set_xlim(_accuracy_limits(shown["ci_low"], shown["ci_high"], shown["mean"], shown["published"]))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
        ax.grid(True, alpha=0.3)
        ax.set_title(dataset_title(dataset))
    note = ""
    if cut.any():
        named = "; ".join(f"{r} on {dataset_title(d)}" for r, d in zip(cells["row"][cut], cells["dataset"][cut]))
        note = "\n" + textwrap.fill(f"95 % CIs cut at 0 and 100 %: {named}", int(0.8 * PANEL[0] / CHAR),
                                    break_on_hyphens=False)
    axes[-1].set_xlabel("test accuracy (%)" + note)
    _row_legend(figure, list(axes))
    return figure


def _band(ax, epochs: pd.DataFrame, column: str, color, label: str, linestyle: str = "-") -> None:
    """Mean over runs per epoch as a line, ±1 std as a band (no band where n = 1)."""
    stats = epochs.groupby("epoch")[column].agg(["mean", "std"])
    ax.plot(stats.index, stats["mean"], color=color, linestyle=linestyle, marker="o", markersize=3, label=label)
    spread = stats["std"].fillna(0)
    ax.fill_between(stats.index, stats["mean"] - spread, stats["mean"] + spread, color=color, alpha=0.2)


def _epoch_axis(ax, ylabel: str) -> None:
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def curves_figure(history: pd.DataFrame, dataset: str, colors: dict) -> Figure:
    """Train and test accuracy per epoch of every row on one dataset (the report's Fig. 5 and 6).

    Args:
        history: epochs of ok runs with a ``row`` column and accuracies in %.
        dataset: the dataset shown.
        colors: row label -> colour.
    """
    figure, axes = _figure(2, f"Accuracy per epoch on {dataset_title(dataset)}: mean ± std over runs", sharey=True)
    epochs = history[history["dataset"] == dataset]
    rows = [row for row in colors if row in set(epochs["row"])]
    for ax, column, title in zip(axes, ("accuracy", "val_accuracy"), ("training set", "test set")):
        for row in rows:
            _band(ax, epochs[epochs["row"] == row], column, colors[row], row)
        _epoch_axis(ax, "accuracy (%)")
        ax.set_title(title)
    _row_legend(figure, axes)
    return figure


def heads_figure(history: pd.DataFrame, dataset: str, rows: list[str], colors: dict) -> Figure:
    """Loss and accuracy of FishNet rows that differ in the head (the report's Fig. 3 and 4).

    Solid lines are the training set, dashed the test set; bands are ±1 std over runs.
    """
    figure, axes = _figure(2, f"Head comparison on {dataset_title(dataset)}: mean ± std over runs")
    epochs = history[(history["dataset"] == dataset) & history["row"].isin(rows)]
    # Loss on a log axis: an early test loss can be thousands of times the rest (batch norm's
    # moving statistics are not yet settled) and would flatten every other point.
    panels = (("loss", "val_loss", "cross-entropy loss (nats, log)", "loss", "log"),
              ("accuracy", "val_accuracy", "accuracy (%)", "accuracy", "linear"))
    for ax, (train, test, ylabel, title, scale) in zip(axes, panels):
        for row in rows:
            runs = epochs[epochs["row"] == row]
            _band(ax, runs, train, colors[row], f"{row}, train")
            _band(ax, runs, test, colors[row], f"{row}, test", linestyle="--")
        _epoch_axis(ax, ylabel)
        ax.set_yscale(scale)
        ax.set_title(title)
    _row_legend(figure, axes)
    return figure


def _published_points(ax, cells: pd.DataFrame, metric: str, colors: dict) -> None:
    """The report's (metric, accuracy) of each row as an x in the row's colour, one legend entry."""
    published = cells[[("published", "accuracy"), ("published", metric)]].dropna()
    for row, line in published.iterrows():
        ax.plot(line[("published", metric)], line[("published", "accuracy")],
                **(PUBLISHED_STYLE | {"color": colors[row], "label": "_nolegend_"}))
    if len(published):
        ax.plot([], [], **(PUBLISHED_STYLE | {"label": "report's value (x, in the row's colour)"}))


def cost_figure(cells: pd.DataFrame, dataset: str, colors: dict) -> Figure:
    """Accuracy against parameters and against training milliseconds per image (log x) on one dataset.

    Measured points carry their 95 % CI. The report's values are x marks on the parameters
    panel only: its seconds per epoch are for other epochs on unknown hardware, not a point
    on our time axis.
    """
    figure, axes = _figure(2, f"Accuracy against cost on {dataset_title(dataset)}", sharey=True)
    mine = cells[cells["dataset"] == dataset].pivot(index="row", columns="metric")
    mine = mine.loc[[row for row in colors if row in mine.index]]
    accuracy = mine.xs("accuracy", axis=1, level="metric")
    measured = mine[accuracy["n"] > 0]
    errors = _ci_error(accuracy[accuracy["n"] > 0])
    axis_labels = {"params_total": "parameters (log scale)", "ms_per_image": "training time (ms per image, log scale)"}
    for ax, (metric, xlabel) in zip(axes, axis_labels.items()):
        for index, (row, line) in enumerate(measured.iterrows()):
            ax.errorbar(line[("mean", metric)], line[("mean", "accuracy")], yerr=errors[:, [index]], fmt="o",
                        capsize=4, color=colors[row], label=row)
        if metric == "params_total":
            _published_points(ax, mine, metric, colors)
        _log_axis(ax, xlabel)
        ax.set_ylabel("test accuracy (%)")
    axes[0].set_ylim(_accuracy_limits(accuracy["ci_low"], accuracy["ci_high"], accuracy["mean"], accuracy["published"]))
    _row_legend(figure, axes)
    return figure
