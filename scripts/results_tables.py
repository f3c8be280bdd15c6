"""Write the shipped results' tables into docs/results.md, between their markers.

Every table is made from the CSVs a report writes, read with pandas, never from report.md's
text: results/table4-cpu's accuracy per cell with its verdict (verdicts.csv), its time per
image and parameters (table4.csv) and its claims (claims.csv); results/paper's cells, one line
per profile, model and dataset (verdicts.csv), and the claims those cells can judge
(claims.csv). Run it after ``python -m bench report --results`` on either;
tests/test_report.py checks that docs/results.md holds what it writes.

usage: python scripts/results_tables.py
"""
import re
from pathlib import Path

import pandas as pd

from bench import config
from bench.analysis import verdicts
from bench.analysis.aggregate import (
    CELL_COLUMNS,
    VERDICT_UNITS,
    dataset_title,
    display_name,
    settings_label,
    varying_keys,
)
from bench.spec import TABLE4_MODELS

REPO = Path(__file__).resolve().parent.parent
RESULTS_MD = REPO / "docs" / "results.md"
TABLE4_CPU = REPO / "results" / "table4-cpu"
PAPER = REPO / "results" / "paper"
ACCURACY = ("<!-- accuracy: from results/table4-cpu/verdicts.csv -->", "<!-- end of accuracy -->")
TIME = ("<!-- time and size: from results/table4-cpu/table4.csv -->", "<!-- end of time and size -->")
CLAIMS = ("<!-- claims: from results/table4-cpu/claims.csv -->", "<!-- end of claims -->")
PAPER_CELLS = ("<!-- the report's protocol: from results/paper/verdicts.csv -->",
               "<!-- end of the report's protocol -->")
PAPER_CLAIMS = ("<!-- its claims: from results/paper/claims.csv -->", "<!-- end of its claims -->")
DATASETS = ("fashion_mnist", "cifar10")
# Each CSV's columns: a report leaves out those with no value in any line, read() gives them back.
COLUMNS = {"verdicts.csv": [VERDICT_UNITS.get(c, c) for c in verdicts.CELL_COLUMNS],
           "claims.csv": [*verdicts.COMPARISON_COLUMNS, "claim_verdict"], "table4.csv": list(CELL_COLUMNS)}


def read(folder: Path, name: str) -> pd.DataFrame:
    """A report's CSV, with empty fields as NaN and every other text as it is ("can't tell", "none");
    each of its COLUMNS that the report left out, as NaN."""
    return pd.read_csv(folder / name, keep_default_na=False, na_values=[""]).reindex(columns=COLUMNS[name])


def model_labels(cells: pd.DataFrame) -> list[str]:
    """Each cell's model, named with the options that tell apart that model's cells in ``cells``:
    'CNN (activation=tanh, pool=average)' beside 'CNN (activation=relu, pool=max)', 'MLP' alone."""
    options = [settings(text) if isinstance(text, str) else {} for text in cells["options"]]
    varying = {model: varying_keys([o for o, m in zip(options, cells["model"]) if m == model])
               for model in set(cells["model"])}
    return [display_name(model) + (f" ({named})" if (named := settings_label(o, varying[model])) else "")
            for model, o in zip(cells["model"], options)]


def accuracy_text(cell) -> str:
    """'76.7 ± 2.3 (86.5)': mean ± std over the ok runs, the report's value in brackets; '—' with none."""
    if cell.n_ok == 0:
        return "—"
    text = f"{cell.mean_pct:.1f}" + (f" ± {cell.std_pct:.1f}" if cell.n_ok > 1 else "")
    return text + (f" ({cell.published_pct:.1f})" if pd.notna(cell.published_pct) else "")


def accuracy_lines(cells: pd.DataFrame) -> list[str]:
    """A row per model (and options), in Table 4's order, per dataset: accuracy (the report's
    value), ok runs, verdict ('—' where there is no published value to judge against)."""
    headers = ["Model"] + [f"{dataset_title(d)} {column}" for d in DATASETS for column in ("acc.", "n", "verdict")]
    by_label = {}
    for cell, label in zip(cells.itertuples(), model_labels(cells)):
        verdict = cell.verdict if pd.notna(cell.published_pct) else "—"
        place = TABLE4_MODELS.index(cell.model) if cell.model in TABLE4_MODELS else len(TABLE4_MODELS)
        by_label.setdefault((place, label), {})[cell.dataset] = [accuracy_text(cell), str(cell.n_ok), verdict]
    rows = [[label, *(text for d in DATASETS for text in of_label.get(d, [""] * 3))]
            for (_, label), of_label in sorted(by_label.items())]
    return markdown(headers, rows)


def time_lines(table4: pd.DataFrame) -> list[str]:
    """A row per report row: training ms per image per dataset, then parameters (the report's count)."""
    times = table4[table4["metric"] == "ms_per_image"].pivot(index="row", columns="dataset", values="mean")
    params = table4[table4["metric"] == "params_total"].groupby("row", sort=False)[["mean", "published"]].first()
    rows = []
    for row, (count, published) in params.iterrows():
        ms = [times.at[row, d] if d in times.columns else float("nan") for d in DATASETS]
        rows.append([row, *("" if pd.isna(t) else f"{t:.2f}" if t < 1 else f"{t:.1f}" for t in ms),
                     f"{count:,.0f}" + (f" ({published:,.0f})" if pd.notna(published) else "")])
    return markdown(["Model", *(f"{dataset_title(d)} ms/image" for d in DATASETS), "Parameters"], rows)


def settings(setup: str) -> dict[str, str]:
    """A setup's label as its settings: 'profile=paper, recipe=report' -> {'profile': 'paper', ...}
    (a value may hold ', ' inside brackets; a key never does)."""
    return dict(pair.split("=", 1) for pair in re.split(r", (?=[\w.]+=)", setup))


def profile_labels(setups) -> dict[str, str]:
    """setup -> '`paper`', with the settings that tell it apart from the other setups of its
    profile where there are several: '`paper` (preprocess.scale_pixels=true)'."""
    parsed = {setup: settings(setup) for setup in dict.fromkeys(setups)}
    labels = {}
    for setup, mine in parsed.items():
        siblings = [other for other in parsed.values() if other["profile"] == mine["profile"] and other != mine]
        differ = [f"{key}={value}" for key, value in mine.items()
                  if key != "profile" and any(other.get(key) != value for other in siblings)]
        labels[setup] = f"`{mine['profile']}`" + (f" ({', '.join(differ)})" if differ else "")
    return labels


def planned_runs() -> dict[str, int]:
    """profile name -> the runs per cell it plans (``repeats``), for every shipped profile."""
    return {name: config.load_profile(name).run.repeats for name in config.profile_names()}


def paper_cells_lines(cells: pd.DataFrame) -> list[str]:
    """A line per profile, model and dataset that has runs (any status): ok, recorded and planned runs
    (the profile's repeats), accuracy, CI, the report's value, verdict."""
    run, planned = cells[cells["n_planned"] > 0], planned_runs()
    labels = profile_labels(run["setup"])
    rows = []
    for cell, model in zip(run.itertuples(), model_labels(run)):
        runs = f"{cell.n_ok} / {cell.n_planned} / {planned.get(settings(cell.setup)['profile'], '?')}"
        rows.append([labels[cell.setup], model, dataset_title(cell.dataset),
                     runs + (f" ({cell.not_ok})" if isinstance(cell.not_ok, str) else ""),
                     "—" if cell.n_ok == 0 else f"{cell.mean_pct:.2f} ± {cell.std_pct:.2f}", ci_text(cell),
                     "—" if pd.isna(cell.published_pct) else f"{cell.published_pct:.1f}",
                     f"**{cell.verdict}** ({cell.why})"])
    return markdown(["Profile", "Model", "Dataset", "ok / recorded / planned runs", "test accuracy (%)", "95 % CI",
                     "the report's", "verdict"], rows)


def ci_text(cell) -> str:
    """'[87.10, 89.10]'; '—' without one."""
    return "—" if pd.isna(cell.ci_low_pct) else f"[{cell.ci_low_pct:.2f}, {cell.ci_high_pct:.2f}]"


def claims_lines(claims: pd.DataFrame, judged_only: bool = False) -> list[str]:
    """A line per claim (and profile, where there are several): its verdict, how many of its comparisons
    hold, are contradicted, can't tell, and the runs they need; ``judged_only``: the claims none of
    whose comparisons needs runs."""
    several, labels = claims["setup"].nunique() > 1, profile_labels(claims["setup"])
    rows = []
    for (setup, claim), comparisons in claims.groupby(["setup", "claim"], sort=False):
        needs = "; ".join(dict.fromkeys(comparisons["needs"].dropna()))
        if judged_only and needs:
            continue
        counts = " / ".join(str((comparisons["verdict"] == v).sum()) for v in ("holds", "contradicted", "can't tell"))
        verdict = f"**{comparisons['claim_verdict'].iloc[0]}**"
        rows.append([claim, *([labels[setup]] if several else []), verdict, counts, *([] if judged_only else
                                                                                       [needs or "—"])])
    headers = ["Claim", *(["Profile"] if several else []), "verdict", "holds / contradicted / can't tell",
               *([] if judged_only else ["needs"])]
    return markdown(headers, rows)


def markdown(headers: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers),
            *("| " + " | ".join(row) + " |" for row in rows)]


def quoted(text: str, markers: tuple[str, str]) -> list[str]:
    """The lines between a pair of markers."""
    return text.split(markers[0], 1)[1].split(markers[1], 1)[0].strip("\n").splitlines()


def with_quote(text: str, markers: tuple[str, str], lines: list[str]) -> str:
    head, rest = text.split(markers[0], 1)
    return head + markers[0] + "\n" + "\n".join(lines) + "\n" + markers[1] + rest.split(markers[1], 1)[1]


def expected(table4_cpu: Path = TABLE4_CPU, paper: Path = PAPER) -> dict[tuple[str, str], list[str]]:
    """markers -> the lines docs/results.md should hold, from the shipped results' CSVs."""
    return {ACCURACY: accuracy_lines(read(table4_cpu, "verdicts.csv")),
            TIME: time_lines(read(table4_cpu, "table4.csv")),
            CLAIMS: claims_lines(read(table4_cpu, "claims.csv")),
            PAPER_CELLS: paper_cells_lines(read(paper, "verdicts.csv")),
            PAPER_CLAIMS: claims_lines(read(paper, "claims.csv"), judged_only=True)}


def main() -> None:
    text = RESULTS_MD.read_text()
    for markers, lines in expected().items():
        text = with_quote(text, markers, lines)
    RESULTS_MD.write_text(text)


if __name__ == "__main__":
    main()
