"""report.html: the report to explore in a browser, beside report.md.

Sortable tables (a click on a header sorts by that column; again, the other way), the accuracy
of every run as a dot (hover: its seed, run id and record file) with its cell's mean and 95 % CI,
and the claims with the report's words folded away. One self-contained file: inline CSS, SVG
written here and a few lines of JavaScript, nothing fetched, so it opens offline.

Pure functions: ``page`` turns what ``bench.report.report`` has aggregated into the page's text.
Nothing here reads a clock: the same records give the same page byte for byte.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import pandas as pd

# The figure, in px: total width, the plot's right margin, a row's height, the axis below.
WIDTH, RIGHT, ROW, AXIS = 760, 24, 28, 40
CHAR = 6.8  # px per character of a 12 px label, to size the label column
JITTER, JITTER_STEPS = 3.0, 3  # px between the dots of a cell, up and down in turns (up to 9 px), so equal values show
MAX_TICKS = 8

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; user-select: none; background: #f4f4f4; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
summary { cursor: pointer; color: #555; }
figure { margin: 1em 0 2em; }
figcaption { color: #555; }
svg text { font: 12px system-ui, sans-serif; fill: #222; }
svg circle:hover { stroke: #000; stroke-width: 2; }
"""

# Sorts a table's body by the clicked column: by each cell's data-sort number where it has one
# (cells without a value last), by its text otherwise.
SCRIPT = """
function compareKeys(a, b) {
  const x = parseFloat(a), y = parseFloat(b);
  if (isNaN(x) !== isNaN(y)) return isNaN(x) ? 1 : -1;
  return isNaN(x) ? a.localeCompare(b) : x - y;
}
for (const table of document.querySelectorAll("table.sortable")) {
  const headers = Array.from(table.tHead.rows[0].cells);
  for (const th of headers) {
    th.addEventListener("click", () => {
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach((other) => other.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const key = (row) => row.cells[th.cellIndex].dataset.sort ?? row.cells[th.cellIndex].textContent;
      const rows = Array.from(table.tBodies[0].rows);
      rows.sort((a, b) => compareKeys(key(a), key(b)) * (ascending ? 1 : -1));
      table.tBodies[0].append(...rows);
    });
  }
}
"""


@dataclass(frozen=True)
class CellLine:
    """One accuracy cell of the cells table: its texts as report.md writes them, with the numbers
    they sort by (NaN: no value) and the row's colour in the figures ('#1f77b4'). ``row`` is the
    row's label, 'MLP (head=dense, profile=paper)': the model's name and the settings that tell
    its rows apart. ``number`` names the cell in the figures (#1, #2...), short whatever the label."""

    number: int
    row: str
    model: str
    settings: str
    dataset: str
    accuracy: str
    mean: float
    ci: str
    ci_low: float
    ci_high: float
    runs: str
    n: int
    verdict: str
    color: str


@dataclass(frozen=True)
class RunPoint:
    """One ok run's final test accuracy (%), the dot of its cell (row, dataset) in the figure."""

    row: str
    dataset: str
    accuracy: float
    seed: int
    run_id: str
    record: str  # its record file, relative to the results folder


# ---------------------------------------------------------------- tables


def cell_number(value: float, digits: int = 2) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def td(text: str, sort: float | None = None) -> str:
    """A cell; with ``sort``, a number cell that sorts by that value (NaN: by none, last)."""
    if sort is None:
        return f"<td>{escape(text)}</td>"
    return f'<td class="number" data-sort="{cell_number(sort, 6)}">{escape(text)}</td>'


def table(name: str, headers: Sequence[str], rows: Sequence[str]) -> str:
    """A sortable table of ``rows`` (each '<tr>...</tr>'), its id ``name``."""
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    return (f'<table class="sortable" id="{name}"><thead><tr>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody></table>")


def cells_table(cells: Sequence[CellLine]) -> str:
    """The cells table: number, model (its settings folded), dataset, accuracy, 95 % CI, ok /
    planned runs, verdict."""
    headers = ["#", "Model", "Dataset", "Accuracy (%)", "95 % CI", "ok / planned runs", "Verdict"]
    rows = [f'<tr data-cell="{escape(c.row)} | {escape(c.dataset)}">' + td(f"#{c.number}", c.number)
            + (folded(c.model, c.settings, "settings") if c.settings else td(c.model)) + td(c.dataset)
            + td(c.accuracy, c.mean) + td(c.ci, c.ci_low) + td(c.runs, c.n) + td(c.verdict) + "</tr>"
            for c in cells]
    return table("cells", headers, rows)


def folded(shown: str, text: str | None, summary: str = "") -> str:
    """A cell that shows ``shown`` and ``text`` folded: it opens on a click on ``summary`` (on
    ``shown`` without one); '—' without text."""
    if not text or (isinstance(text, float) and math.isnan(text)):
        return td("—")
    if not summary:
        return f"<td><details><summary>{escape(shown)}</summary>{escape(text)}</details></td>"
    return f"<td>{escape(shown)} <details><summary>{escape(summary)}</summary>{escape(text)}</details></td>"


def setup_summary(setup: str) -> str:
    """'profile=paper' of a setup's label ('lr=0.1, profile=paper'), to show with the rest folded."""
    return next((part for part in setup.split(", ") if part.startswith("profile=")), "setup")


def claims_html(claims: pd.DataFrame) -> str:
    """The claims table (``verdicts.CLAIM_COLUMNS``): the runs a claim needs and the report's words
    folded in each row, the setup first when there are several."""
    several = claims["setup"].nunique() > 1
    headers = ["Setup"] * several + ["Claim", "Where", "Verdict", "holds / contradicted / can't tell", "Needs",
                                     "The report's words"]
    rows = []
    for c in claims.itertuples():
        rows.append("<tr>" + (folded(setup_summary(c.setup), c.setup) if several else "")
                    + td(c.claim) + td(c.section) + td(c.verdict)
                    + td(f"{c.n_holds} / {c.n_contradicted} / {c.n_cant_tell}", c.n_holds)
                    + folded("runs it needs", c.needs) + folded("quote", c.quote) + "</tr>")
    return table("claims", headers, rows)


# ---------------------------------------------------------------- figures


def ticks(low: float, high: float) -> list[float]:
    """Round values from ``low`` to ``high``, at most MAX_TICKS, 1, 2 or 5 times a power of ten apart."""
    span = max(high - low, 1e-9)
    for step in (base * 10.0 ** power for power in range(math.floor(math.log10(span)) - 1, 4) for base in (1, 2, 5)):
        if span / step <= MAX_TICKS:
            return [k * step for k in range(math.ceil(low / step), math.floor(high / step) + 1)]
    return [low, high]


def accuracy_range(cells: Sequence[CellLine], points: Sequence[RunPoint]) -> tuple[float, float]:
    """The axis's accuracies: every dot and CI, padded by 5 % of their span (at least 0.5 pp), within [0, 100]."""
    values = [p.accuracy for p in points] + [v for c in cells for v in (c.ci_low, c.ci_high) if not math.isnan(v)]
    low, high = min(values), max(values)
    pad = max(0.05 * (high - low), 0.5)
    return max(low - pad, 0.0), min(high + pad, 100.0)


def dataset_figure(dataset: str, cells: Sequence[CellLine], points: Sequence[RunPoint]) -> str:
    """An SVG of one dataset: a line per cell (labelled '#3 MLP', as the cells table numbers it;
    hover: its whole label), a dot per ok run, the mean as a bar, the 95 % CI as a line."""
    labels = {c.row: f"#{c.number} {c.model}" for c in cells}
    label_width = min(16 + CHAR * max(map(len, labels.values())), WIDTH / 3)
    low, high = accuracy_range(cells, points)
    plot = WIDTH - label_width - RIGHT
    height = ROW * len(cells) + AXIS

    def x(value: float) -> str:  # a CI beyond the axis is cut at its end; its title gives it whole
        return f"{label_width + plot * (min(max(value, low), high) - low) / (high - low):.1f}"

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
              f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(dataset)}: accuracy of every run">')]
    for index, cell in enumerate(cells):
        middle = ROW * index + ROW / 2
        parts.append(f'<text x="{label_width - 8:.1f}" y="{middle + 4:.1f}" text-anchor="end">'
                     f"{escape(labels[cell.row])}<title>{escape(cell.row)}</title></text>")
        parts.append(f'<line x1="{label_width}" x2="{WIDTH - RIGHT}" y1="{middle:.1f}" y2="{middle:.1f}" '
                     'stroke="#eee"/>')
        if not math.isnan(cell.ci_low):
            parts.append(f'<line x1="{x(cell.ci_low)}" x2="{x(cell.ci_high)}" y1="{middle:.1f}" y2="{middle:.1f}" '
                         f'stroke="#555" stroke-width="2"><title>95 % CI {escape(cell.ci)}</title></line>')
        for order, point in enumerate(p for p in points if p.row == cell.row):
            offset = JITTER * (((order + 1) // 2 - 1) % JITTER_STEPS + 1) * (1 if order % 2 else -1) if order else 0.0
            parts.append(f'<circle cx="{x(point.accuracy)}" cy="{middle + offset:.1f}" r="4" fill="{cell.color}" '
                         f'fill-opacity="0.8" stroke="#fff" stroke-width="0.5"><title>seed {point.seed}, run '
                         f'{escape(point.run_id)} ({escape(point.record)}): {point.accuracy:.2f} %</title></circle>')
        if not math.isnan(cell.mean):
            parts.append(f'<line x1="{x(cell.mean)}" x2="{x(cell.mean)}" y1="{middle - 10:.1f}" y2="{middle + 10:.1f}" '
                         f'stroke="#000" stroke-width="2"><title>mean {escape(cell.accuracy)}</title></line>')
    axis = ROW * len(cells) + 4
    parts.append(f'<line x1="{label_width}" x2="{WIDTH - RIGHT}" y1="{axis}" y2="{axis}" stroke="#222"/>')
    for tick in ticks(low, high):
        parts.append(f'<line x1="{x(tick)}" x2="{x(tick)}" y1="{axis}" y2="{axis + 4}" stroke="#222"/>'
                     f'<text x="{x(tick)}" y="{axis + 16}" text-anchor="middle">{tick:g}</text>')
    parts.append(f'<text x="{label_width + plot / 2:.1f}" y="{axis + 32}" text-anchor="middle">'
                 "test accuracy after the last epoch (%)</text></svg>")
    return "\n".join(parts)


def figures_section(cells: Sequence[CellLine], points: Sequence[RunPoint]) -> list[str]:
    """A figure per dataset with ok runs, in the cells' order."""
    parts = []
    for dataset in dict.fromkeys(c.dataset for c in cells):
        mine = [p for p in points if p.dataset == dataset]
        if mine:
            shown = [c for c in cells if c.dataset == dataset and c.n > 0]
            parts += [f"<h3>{escape(dataset)}</h3>", "<figure>", dataset_figure(dataset, shown, mine), "</figure>"]
    return parts or ["<p>None: no run finished ok.</p>"]


# ---------------------------------------------------------------- the page


def page(title: str, summary: str, cells: Sequence[CellLine], points: Sequence[RunPoint], claims: pd.DataFrame) -> str:
    """report.html's text: the cells table, a figure of every run per dataset, the claims table.

    Args:
        title: the page's title and heading.
        summary: a sentence under the heading (what the records are).
        cells: the accuracy cells, in the report's order.
        points: every ok run's final accuracy, the dots of the figures.
        claims: the claims' verdicts (``verdicts.CLAIM_COLUMNS``).
    """
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             f"<h1>{escape(title)}</h1>",
             (f"<p>{escape(summary)} report.md beside this page has the method, the comparisons behind the claims "
              "and the findings. Click a column's header to sort by it.</p>"),
             "<h2>Cells</h2>", cells_table(cells),
             "<h2>Every run</h2>",
             ("<p>Each dot is one ok run's test accuracy after its last epoch (hover over it for its seed, run id "
              "and record file); the black bar is the cell's mean, the grey line its 95 % CI.</p>"),
             *figures_section(cells, points),
             "<h2>The report's claims</h2>", claims_html(claims) if len(claims) else "<p>None.</p>",
             f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"
