"""Copy the reference reports' tables into README.md, between their markers.

The README quotes results/table4-cpu: Table 4 in short (accuracy with the report's value, n,
verdict, ms per image per dataset; parameters) from table4.csv and verdicts.csv, and the
claims table of report.md as it is; and results/paper, the cells run at the report's
protocol (a line per profile, model and dataset, from verdicts.csv) and the claims those cells
can judge (claims.csv). Run it after ``python -m bench report --results`` on either;
tests/test_report.py checks that the README holds what it writes.

usage: python scripts/readme_tables.py
"""
import json
from pathlib import Path

import pandas as pd

from bench.analysis.aggregate import display_name, settings_label, varying_keys
from bench.report.report import ci_text

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "results" / "table4-cpu"
PAPER = REPO / "results" / "paper"
TABLE4 = ("<!-- table 4: from results/table4-cpu/table4.csv and verdicts.csv -->", "<!-- end of table 4 -->")
CLAIMS = ("<!-- claims table: copied from results/table4-cpu/report.md -->", "<!-- end of the claims table -->")
PAPER_CELLS = ("<!-- the report's protocol: from results/paper/verdicts.csv -->", "<!-- end of the report's protocol -->")
PAPER_CLAIMS = ("<!-- its claims: from results/paper/claims.csv -->", "<!-- end of its claims -->")
DATASETS = ("fashion_mnist", "cifar10")
DATASET_NAMES = {"fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}


def table4_lines(cells: pd.DataFrame, verdicts: pd.DataFrame) -> list[str]:
    """Table 4 in short, a row per report row: per dataset accuracy (mean ± std, the report's value
    in brackets), n, verdict, ms per image; then parameters (the report's count in brackets)."""
    lines = ["| Model | Fashion-MNIST acc. | n | verdict | ms/image | CIFAR-10 acc. | n | verdict | ms/image | Parameters |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in dict.fromkeys(cells["row"]):
        of_row = cells[cells["row"] == row]
        per_dataset = [text for dataset in DATASETS for text in _dataset_cells(of_row, verdicts, dataset)]
        lines.append("| " + " | ".join([row, *per_dataset, _parameters(of_row)]) + " |")
    return lines


def _dataset_cells(of_row: pd.DataFrame, verdicts: pd.DataFrame, dataset: str) -> list[str]:
    metric = {m: line for m, line in of_row[of_row["dataset"] == dataset].set_index("metric").iterrows()}
    if "accuracy" not in metric:
        return [""] * 4
    accuracy, ms = metric["accuracy"], metric["ms_per_image"]["mean"]
    text = f"{accuracy['mean']:.1f}" + (f" ± {accuracy['std']:.1f}" if accuracy["n"] > 1 else "")
    if pd.notna(accuracy["published"]):
        text += f" ({accuracy['published']:.1f})"
    judged = verdicts[(verdicts["dataset"] == dataset) & (verdicts["model"] == accuracy["model"])
                      & ((verdicts["mean"] - accuracy["mean"]).abs() < 1e-9) & verdicts["published"].notna()]
    verdict = judged["verdict"].iloc[0] if len(judged) else "—"
    time = "—" if pd.isna(ms) else f"{ms:.2f}" if ms < 1 else f"{ms:.1f}"
    return [text, str(int(accuracy["n"])), verdict, time]


def _parameters(of_row: pd.DataFrame) -> str:
    params = of_row[of_row["metric"] == "params_total"].iloc[0]
    return f"{params['mean']:,.0f}" + (f" ({params['published']:,.0f})" if pd.notna(params["published"]) else "")


def claims_lines(report: str) -> list[str]:
    """The claims table of report.md, as it is."""
    after = report.split("\n## The report's claims\n", 1)[1].splitlines()
    first = next(i for i, line in enumerate(after) if line.startswith("|"))
    table = []
    for line in after[first:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return table


def profile(setup: str) -> str:
    """'profile=paper' -> '`paper`': the profile that names the setup."""
    return f"`{setup.removeprefix('profile=')}`"


def paper_cells_lines(verdicts: pd.DataFrame) -> list[str]:
    """A line per profile, model and dataset that has runs (any status): ok runs of all, accuracy, CI,
    the report's value, verdict."""
    lines = ["| Profile | Model | Dataset | ok runs | test accuracy (%) | 95 % CI | the report's | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    run = verdicts[verdicts["n_planned"] > 0]
    for cell, model in zip(run.itertuples(), model_labels(run)):
        published = "—" if pd.isna(cell.published) else f"{cell.published:.1f}"
        runs = f"{cell.n_ok} of {cell.n_planned}" + (f" ({cell.not_ok})" if isinstance(cell.not_ok, str) else "")
        accuracy = "—" if cell.n_ok == 0 else f"{cell.mean:.2f} ± {cell.std:.2f}"
        lines.append(f"| {profile(cell.setup)} | {model} | {DATASET_NAMES[cell.dataset]} "
                     f"| {runs} | {accuracy} "
                     f"| {ci_text(cell)} | {published} | **{cell.verdict}** ({cell.why}) |")
    return lines


def model_labels(cells: pd.DataFrame) -> list[str]:
    """Each cell's model, named with the options that tell apart that model's cells in ``cells``:
    'CNN (activation=tanh, pool=average)' beside 'CNN (activation=relu, pool=max)', 'MLP' alone."""
    options = [json.loads(text) for text in cells["options"]]
    varying = {model: varying_keys([o for o, m in zip(options, cells["model"]) if m == model])
               for model in set(cells["model"])}
    return [display_name(model) + (f" ({named})" if (named := settings_label(o, varying[model])) else "")
            for model, o in zip(cells["model"], options)]


def paper_claims_lines(claims: pd.DataFrame) -> list[str]:
    """A line per claim and profile that the recorded cells can judge (no comparison needs runs)."""
    lines = ["| Claim | Profile | verdict |", "|---|---|---|"]
    for (setup, claim), comparisons in claims.groupby(["setup", "claim"], sort=False):
        if comparisons["needs"].isna().all():
            lines.append(f"| {claim} | {profile(setup)} | **{comparisons['claim_verdict'].iloc[0]}** |")
    return lines


def quoted(readme: str, markers: tuple[str, str]) -> list[str]:
    """The lines between a pair of markers."""
    return readme.split(markers[0], 1)[1].split(markers[1], 1)[0].strip("\n").splitlines()


def with_quote(readme: str, markers: tuple[str, str], lines: list[str]) -> str:
    head, rest = readme.split(markers[0], 1)
    return head + markers[0] + "\n" + "\n".join(lines) + "\n" + markers[1] + rest.split(markers[1], 1)[1]


def read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name, keep_default_na=False, na_values=[""])


def expected(reference: Path = REFERENCE, paper: Path = PAPER) -> dict[tuple[str, str], list[str]]:
    """markers -> the lines the README should quote, from the reference reports' files."""
    return {TABLE4: table4_lines(pd.read_csv(reference / "table4.csv"), read(reference, "verdicts.csv")),
            CLAIMS: claims_lines((reference / "report.md").read_text()),
            PAPER_CELLS: paper_cells_lines(read(paper, "verdicts.csv")),
            PAPER_CLAIMS: paper_claims_lines(read(paper, "claims.csv"))}


def main() -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    for markers, lines in expected().items():
        text = with_quote(text, markers, lines)
    readme.write_text(text)


if __name__ == "__main__":
    main()
