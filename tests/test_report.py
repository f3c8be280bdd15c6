"""Tests of ``python -m bench report``: statistics, Table 4 with a verdict per accuracy cell,
the report's claims, one record per seed, time without deltas, findings, figures, bad input.

Three kinds of records: the committed ``tests/fixtures/smoke/runs`` (made once by the real
runner on the smoke profile, synthetic data), the shipped reference run
``results/table4-cpu/runs``, and hand-made ones on fashion_mnist with known accuracies. Every
expected number is computed here from the inputs with numpy and scipy, not with ``bench.analysis.stats``.
"""
import dataclasses
import hashlib
import itertools
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import (
    HANDMADE_TRAIN_IMAGES,
    ROOT,
    SMOKE,
    markdown_rows,
    one_claim,
    run_cli,
    run_record,
    script,
    section,
    write_results,
)
from matplotlib.backends.backend_agg import FigureCanvasAgg
from scipy import stats as scipy_stats

from bench import cli
from bench.analysis import aggregate, verdicts
from bench.analysis.claims import CLAIMS_FILE, load_published
from bench.analysis.stats import summarize
from bench.records.results import Results
from bench.report import figures, report
from bench.spec import Optimizer

results_tables = script("results_tables")
SHIPPED = ("table4-cpu", "paper")  # the reference results the repository ships and its docs cite
PUBLISHED = load_published()
VERDICTS = (verdicts.REPRODUCED, verdicts.DIFFERS, verdicts.CONSISTENT, verdicts.OUTSIDE, verdicts.CANT_TELL,
            verdicts.NO_VERDICT)


def t_interval(values):
    """The 95 % CI of the mean, by scipy: mean ± t * sem."""
    values = np.asarray(values, dtype=float)
    return scipy_stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values))


ACCURACIES = {  # fraction per repeat, on fashion_mnist
    "mlp": [0.86, 0.862, 0.866],  # around the published 86.5, whose estimand is unknown: no verdict
    "fishnet55": [0.95, 0.951, 0.953],  # far above the published best epoch 88.6, but 3 runs: can't tell
    "fishnet77": [0.90],  # n = 1: std and CI NaN, can't tell
}
PARAMS = {"mlp": 2_411_274, "fishnet55": 118_752, "fishnet77": 1_153_306, "mobilenet": 3_239_114}


def seconds(repeat):
    """Training seconds per epoch of a hand-made run: 1.0, 1.5, 2.0, ... by repeat."""
    return 1.0 + 0.5 * repeat


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    """Results with known accuracies, a diverged and a failed FishNet55 run, and MobileNet."""
    records = [run_record(model, accuracy, repeat, params=PARAMS[model], sec_per_epoch=seconds(repeat), profile="notebook")
               for model, values in ACCURACIES.items() for repeat, accuracy in enumerate(values)]
    records += [run_record("fishnet55", 0.0, 3, status="diverged", profile="notebook"),
                run_record("fishnet55", 0.0, 4, status="failed", profile="notebook")]
    records += [run_record("mobilenet", a, r, params=PARAMS["mobilenet"], profile="notebook")
                for r, a in enumerate([0.8, 0.82])]
    results = write_results(tmp_path_factory.mktemp("handmade"), records)
    report.write_report(results, results)
    return results


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke-report")
    text = report.write_report(SMOKE, out)
    return out, text


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    """name -> ``python -m bench report`` on that shipped reference folder, written elsewhere, once."""
    built = {}

    def build(name: str) -> Path:
        if name not in built:
            built[name] = tmp_path_factory.mktemp(name)
            assert cli.main(["report", "--results", str(ROOT / "results" / name), "--out", str(built[name])]) == 0
        return built[name]
    return build


@pytest.fixture(scope="module")
def table4_cpu(rebuilt):
    return rebuilt("table4-cpu")


def tost_p(values, low, high):
    """TOST p by scipy: the larger of the two one-sided t-tests against low and high."""
    return max(scipy_stats.ttest_1samp(values, low, alternative="greater").pvalue,
               scipy_stats.ttest_1samp(values, high, alternative="less").pvalue)


def holm_by_hand(p_values):
    """Holm's adjusted p: sorted, (m - i) p_(i), running maximum, capped at 1; input order."""
    p_values = np.asarray(p_values)
    order, m = np.argsort(p_values), len(p_values)
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1, np.maximum.accumulate((m - np.arange(m)) * p_values[order]))
    return adjusted


def file_digests(folder):
    return {p.relative_to(folder): hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.parent.name != "runs"}


# ---------------------------------------------------------------- statistics


def test_summarize_gives_the_t_interval_and_nan_at_one_value():
    values = [71.0, 74.5, 73.25, 70.0]
    summary = summarize(values)
    assert summary.n == 4
    assert summary.mean == pytest.approx(np.mean(values))
    assert summary.std == pytest.approx(np.std(values, ddof=1))
    assert (summary.ci_low, summary.ci_high) == pytest.approx(t_interval(values))
    one = summarize([72.0])
    assert one.mean == 72.0 and np.isnan(one.std) and np.isnan(one.ci_low)
    assert summarize([]).n == 0 and np.isnan(summarize([]).mean)


def test_summarize_gives_equal_values_the_sign_tests_interval_from_six_values_on():
    five, six = summarize([10.0] * 5), summarize([10.0] * 6)  # coverage 1 - 2 * 0.5^n: 93.75 %, 96.9 %
    assert (five.mean, five.std) == (10.0, 0.0) and np.isnan(five.ci_low) and np.isnan(five.ci_high)
    assert (six.ci_low, six.ci_high) == (10.0, 10.0)


# ---------------------------------------------------------------- the smoke fixture, made by the real runner


def fixture_runs():
    """The fixture records read with json alone, as a DataFrame; time per image from images/s."""
    rows = [json.loads(p.read_text()) for p in sorted((SMOKE / "runs").glob("*.json"))]
    return pd.DataFrame([{"model": r["spec"]["model"], "accuracy": 100 * r["test_accuracy"],
                          "ms_per_image": 1000 / r["images_per_second"], "images_per_second": r["images_per_second"],
                          "params_total": r["params_total"]} for r in rows])


def test_smoke_table_matches_numbers_computed_from_the_json(smoke_report):
    out, _ = smoke_report
    table = pd.read_csv(out / "table4.csv")
    measured = table[table["dataset"] == "synthetic"]
    runs = fixture_runs()
    assert set(measured["model"]) == set(runs["model"]) == set(aggregate.TABLE4_MODELS)
    assert set(measured["metric"]) == {"accuracy_pct", "ms_per_image", "images_per_second", "params_total"}
    for (model, metric), cell in measured.set_index(["model", "metric"]).iterrows():
        values = runs.loc[runs["model"] == model, metric.removesuffix("_pct")].to_numpy(float)
        assert cell["n"] == len(values) == 2
        assert cell["mean"] == pytest.approx(values.mean())
        assert cell["std"] == pytest.approx(values.std(ddof=1))
        if values.std() > 0:
            assert (cell["ci_low"], cell["ci_high"]) == pytest.approx(t_interval(values))
    mlp = runs.loc[runs["model"] == "mlp", "accuracy"]
    assert markdown_rows((out / "report.md").read_text(), "### synthetic")[0]["Accuracy (%)"] == (
        f"{mlp.mean():.2f} ± {mlp.std(ddof=1):.2f}")


def test_smoke_report_has_every_part(smoke_report):
    out, text = smoke_report
    markdown = (out / "report.md").read_text()
    for heading in ("## Method", "## Accuracy, time and parameters", "### synthetic", "## Findings", "## Figures"):
        assert f"\n{heading}\n" in markdown
    assert "## The report's claims" not in markdown and "## Table 4" not in markdown  # smoke is not a Table 4 profile
    assert "### Fashion-MNIST" not in markdown and "### CIFAR-10" not in markdown  # not run: no table
    assert "runs at once 2" in markdown and "shared the machine" in markdown
    assert len(pd.read_csv(out / "runs.csv")) == len(list((SMOKE / "runs").glob("*.json")))
    assert {"verdicts.csv", "claims.csv", "table4.csv", "runs.csv", "history.csv", "report.md", "report.html"} <= {
        p.name for p in out.iterdir()}
    figures_made = sorted(p.name for p in (out / report.FIGURE_DIR).glob("*.png"))
    assert figures_made == ["accuracy_ci.png", "cost_synthetic.png", "curves_synthetic.png"]
    assert all((out / report.FIGURE_DIR / name).stat().st_size > 10_000 for name in figures_made)
    assert all(f"({report.FIGURE_DIR}/{name})" in markdown for name in figures_made)
    for name in figures_made:  # each also as a PDF, for print
        assert (out / report.FIGURE_DIR / name).with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    assert "FishNet77" in text and "wrote report.md" in text


@pytest.mark.figures
def test_report_is_byte_for_byte_reproducible(smoke_report, tmp_path):
    out, _ = smoke_report
    report.write_report(SMOKE, tmp_path)
    assert file_digests(tmp_path) == file_digests(out)  # report.md, report.html, every CSV and every figure
    assert len(file_digests(out)) == 7 + 3 * 2


def test_parameter_delta_only_at_the_reports_input(smoke_report, handmade):
    smoke, _ = smoke_report  # synthetic 32x32x3 images: the counts are of other models than the report's
    smoke_table = pd.read_csv(smoke / "table4.csv")
    assert "published" not in smoke_table and "difference" not in smoke_table  # none: their columns are left out
    assert "report's count (Δ)" not in (smoke / "report.md").read_text()  # no such column
    ours = pd.read_csv(handmade / "table4.csv").query("metric == 'params_total' and n > 0").set_index("model")
    assert ours.loc["mobilenet", "difference"] == PARAMS["mobilenet"] - 4_253_864  # 56x56x3, 10 classes
    row = {r["Model"]: r for r in markdown_rows((handmade / "report.md").read_text(), "### Fashion-MNIST")}
    mobilenet = row["MobileNet"]
    assert (mobilenet["Parameters"], mobilenet["report's count (Δ)"]) == ("3,239,114", "4,253,864 (-1,014,750)")


# ---------------------------------------------------------------- Table 4: values and verdicts


def test_cells_beside_published_values(handmade):
    table = pd.read_csv(handmade / "table4.csv").set_index(["model", "dataset", "metric"])
    for model, fractions in ACCURACIES.items():
        values = 100 * np.array(fractions)
        cell = table.loc[(model, "fashion_mnist", "accuracy_pct")]
        published = PUBLISHED.value(model, "fashion_mnist", "accuracy")
        assert cell["n"] == len(values)
        assert cell["mean"] == pytest.approx(values.mean())
        assert cell["published"] == published
        assert cell["difference"] == pytest.approx(values.mean() - published)
        if len(values) > 1:
            assert (cell["ci_low"], cell["ci_high"]) == pytest.approx(t_interval(values))
        else:
            assert np.isnan(cell["std"]) and np.isnan(cell["ci_low"])
    assert "cnn" not in set(table.index.get_level_values("model"))  # a published row never run: no line


def test_a_verdict_per_accuracy_cell_by_what_the_published_value_is(handmade):
    """The hand-made runs are of the notebook profile, whose protocol produced the Fashion-MNIST
    column; their per-epoch accuracies are on the whole test set, the report's on its first 1,000."""
    cells = pd.read_csv(handmade / "verdicts.csv", keep_default_na=False, na_values=[""])
    assert list(cells.columns) == [aggregate.VERDICT_UNITS.get(c, c) for c in verdicts.CELL_COLUMNS
                                   if c not in ("margin", "margin_source", "tost_p")]  # no mean judged: none
    line = {model: group.iloc[0] for model, group in cells.groupby("model")}
    mlp = 100 * np.array(ACCURACIES["mlp"])  # the last epoch is the best in these histories
    assert (line["mlp"]["estimand"], line["mlp"]["verdict"]) == ("unknown", verdicts.NO_VERDICT)
    assert line["mlp"]["n_stat"] == 3 and line["mlp"]["rank"] == (mlp < 86.5).sum()
    assert line["mlp"]["basis"].startswith(verdicts.APPROXIMATE)
    extra = verdicts.subset_variance(86.5, None, 1000)
    half = scipy_stats.t.ppf(0.975, 2) * np.sqrt(mlp.var(ddof=1) * (1 + 1 / 3) + extra)
    assert (line["mlp"]["pi_low_pct"], line["mlp"]["pi_high_pct"]) == pytest.approx((mlp.mean() - half, mlp.mean() + half))
    assert (line["fishnet55"]["estimand"], line["fishnet55"]["verdict"]) == ("best_epoch", verdicts.CANT_TELL)
    assert line["fishnet77"]["verdict"] == verdicts.CANT_TELL  # one run
    assert (line["cnn"]["n_planned"], line["cnn"]["verdict"]) == (0, verdicts.CANT_TELL)  # never run
    rows = {r["Model"]: r for r in markdown_rows((handmade / "report.md").read_text(), "### Fashion-MNIST")}
    assert rows["MLP"]["verdict"] == verdicts.NO_VERDICT and rows["FishNet77"]["verdict"] == verdicts.CANT_TELL
    assert rows["MLP"]["95 % CI"] == "[{:.2f}, {:.2f}]".format(*t_interval(mlp))
    assert rows["MLP"]["ours, same statistic [95 % PI], rank"].endswith("2 of 3 below, approx.")
    table4 = section((handmade / "report.md").read_text(), "## Table 4")
    assert "what does this protocol give on average?" in table4 and "have printed the report's value?" in table4


def test_failed_runs_stay_in_n_planned_and_the_cell_says_they_could_change_it(handmade):
    cells = pd.read_csv(handmade / "verdicts.csv", keep_default_na=False, na_values=[""]).set_index("model")
    fish = cells.loc["fishnet55"]
    assert (fish["n_ok"], fish["n_planned"], fish["not_ok"]) == (3, 5, "1 diverged, 1 failed")
    # Two runs imputed at the lowest ok best epoch make 5: enough to place 88.6 outside.
    assert bool(fish["could_change"]) and "lowest ok 95.00: outside" in fish["if_imputed"]
    rows = {r["Model"]: r for r in markdown_rows((handmade / "report.md").read_text(), "### Fashion-MNIST")}
    assert rows["FishNet55"]["ok / planned runs"] == "3/5 (1 diverged, 1 failed)"
    assert rows["FishNet55"]["verdict"] == "can't tell (could change with the runs not ok)"


def test_table_text_and_missing_cells(handmade):
    markdown = (handmade / "report.md").read_text()
    rows = {r["Model"]: r for r in markdown_rows(markdown, "### Fashion-MNIST")}
    fish = 100 * np.array(ACCURACIES["fishnet55"])
    assert rows["FishNet55"]["Accuracy (%)"] == f"{fish.mean():.2f} ± {fish.std(ddof=1):.2f}"
    assert rows["FishNet55"]["report's value (what it is)"] == "88.6 (best epoch of one run; the first 1,000 test images)"
    assert (rows["FishNet77"]["Accuracy (%)"], rows["FishNet77"]["95 % CI"]) == ("90.00 (n=1)", "—")  # one run
    assert "CNN" not in rows  # a published row never run
    assert "†" not in markdown and "NaN" not in section(markdown, "## Table 4")


def test_time_columns_carry_no_delta(handmade):
    table = pd.read_csv(handmade / "table4.csv").set_index(["model", "dataset", "metric"])
    ms = np.array([1000 * seconds(r) / HANDMADE_TRAIN_IMAGES for r in range(3)])
    cell = table.loc[("mlp", "fashion_mnist", "ms_per_image")]
    assert cell["mean"] == pytest.approx(ms.mean()) and cell["std"] == pytest.approx(ms.std(ddof=1))
    assert table.loc[("mlp", "fashion_mnist", "images_per_second"), "mean"] == pytest.approx((1000 / ms).mean())
    timing = table[table.index.get_level_values("metric").isin(["ms_per_image", "images_per_second"])]
    assert timing["published"].isna().all() and timing["difference"].isna().all()
    rows = {r["Model"]: r for r in markdown_rows((handmade / "report.md").read_text(), "### Fashion-MNIST")}
    assert rows["MLP"]["ms / image"] == f"{ms.mean():.2f} ± {ms.std(ddof=1):.2f}"
    assert rows["MLP"]["report's s/epoch (60,000 images)"] == "1.30"  # context: no Δ, no mark
    assert rows["FishNet55"]["report's s/epoch (60,000 images)"] == "11.36"


def accuracy_cells(rows: list[str], datasets_: tuple[str, ...] = ("fashion_mnist", "cifar10"), low: float = 40.0,
                   high: float = 80.0) -> pd.DataFrame:
    return pd.DataFrame([dict(row=row, dataset=dataset, n=2, mean=(low + high) / 2, ci_low=low, ci_high=high,
                              published=70.0) for dataset in datasets_ for row in rows])


def test_the_accuracy_figure_grows_with_its_rows_and_labels_and_keeps_them_inside():
    short = ["MLP", "CNN"]
    long = short + [f"FishNet55 (head=conv, stem=official, bridge=official, bn_momentum=0.{i})" for i in range(8)]
    colors = figures.row_colors({row: "fishnet55" for row in long})
    small, big = (figures.accuracy_ci_figure(accuracy_cells(rows), colors) for rows in (short, long))
    (small_w, small_h), (big_w, big_h) = small.get_size_inches(), big.get_size_inches()
    assert big_h > small_h + 8 * figures.ROW and big_w > small_w + 1.0
    canvas = FigureCanvasAgg(big)
    canvas.draw()  # lays it out
    renderer = canvas.get_renderer()
    frame = big.bbox
    for ax in big.axes:
        labels = [label.get_window_extent(renderer) for label in ax.get_yticklabels()]
        assert all(frame.x0 <= box.x0 and box.x1 <= frame.x1 for box in labels)  # not cut at the edge
        assert all(a.y1 <= b.y0 or b.y1 <= a.y0 for a, b in itertools.combinations(labels, 2))  # none overlap
        assert ax.get_window_extent(renderer).width > 0.4 * frame.width  # the panel is no sliver
    legend = big.legends[0].get_window_extent(renderer)
    assert all(not legend.overlaps(label.get_window_extent(renderer)) for ax in big.axes for label in ax.get_yticklabels())


def test_a_ci_past_100_or_below_0_is_cut_there_and_the_figure_says_so():
    cells = pd.concat([accuracy_cells(["MLP"], ("cifar10",)), accuracy_cells(["CNN"], ("cifar10",), -20, 120)])
    figure = figures.accuracy_ci_figure(cells, figures.row_colors({"MLP": "mlp", "CNN": "cnn"}))
    (ax,) = figure.axes
    ends = np.concatenate([segment[:, 0] for bars in ax.collections for segment in bars.get_segments()])
    assert ends.min() == 0.0 and ends.max() == 100.0 and ax.get_xlim()[1] <= 100.0
    assert "95 % CIs cut at 0 and 100 %: CNN on CIFAR-10" in ax.get_xlabel()
    assert "cut" not in figures.accuracy_ci_figure(cells.iloc[:1], figures.row_colors({"MLP": "mlp"})).axes[0].get_xlabel()


def test_cost_figure_puts_no_published_time_on_our_axis(handmade):
    frame = aggregate.report_frame(Results(handmade).records()[0])
    cells = aggregate.table4_cells(frame, PUBLISHED)
    colors = figures.row_colors(dict(zip(cells["row"], cells["model"])))
    parameters, time = figures.cost_figure(cells, "fashion_mnist", colors).axes
    def marks(ax):  # the report's points: x markers (the legend's entry has no data)
        return [line for line in ax.get_lines() if line.get_marker() == "x" and len(line.get_xdata())]

    assert len(marks(parameters)) == 4  # the report's value of each model run here (not CNN)
    assert marks(time) == [] and "ms per image" in time.get_xlabel()


def test_report_epoch_sizes_cover_the_published_datasets():
    assert list(report.REPORT_EPOCH_IMAGES) == PUBLISHED.datasets


def test_runs_csv_has_a_column_per_setting_and_no_json(smoke_report, handmade):
    out, _ = smoke_report
    runs = pd.read_csv(out / "runs.csv")
    records = {r.run_id: r for r in Results(SMOKE).records()[0]}
    assert set(runs["run_id"]) == set(records)
    assert {"preprocess.native_size", "optimizer.learning_rate", "augment.flip", "environment.host",
            "test_accuracy_pct", "params_total"} <= set(runs.columns)
    texts = runs.select_dtypes(["object", "string"]).stack().astype(str)
    assert not texts.str.contains(r"^[\[{]").any()  # no JSON object or list in a cell
    line = runs.set_index("run_id").loc[next(iter(records))]
    record = records[line.name]
    assert line["augment.contrast"] == " ".join(map(str, record.spec.augment.contrast))  # a range: "0.5 1.5"
    assert line["optimizer.learning_rate"] == record.spec.optimizer.learning_rate
    assert line["test_accuracy_pct"] == pytest.approx(100 * record.test_accuracy)
    options = pd.read_csv(handmade / "runs.csv").groupby("model")["model_options.head"].first()
    assert options["fishnet55"] == "dense" and pd.isna(options["mlp"])  # a model's own options only


def test_history_csv_is_long_run_epoch_metric_value(smoke_report):
    out, _ = smoke_report
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == ["run_id", "row", "dataset", "seed", "epoch", "metric", "value"]
    records = Results(SMOKE).records()[0]
    assert len(history) == sum(len(r.history) for r in records) * 6  # six metrics per epoch
    record = records[0]
    for epoch in record.history:
        lines = history[(history["run_id"] == record.run_id) & (history["epoch"] == epoch["epoch"])]
        in_percent = {f"{k}_pct": 100 * v for k, v in epoch.items() if k in ("accuracy", "val_accuracy")}
        assert dict(zip(lines["metric"], lines["value"])) == pytest.approx(
            {k: v for k, v in epoch.items() if k not in ("epoch", "accuracy", "val_accuracy")} | in_percent)


def csv_tables(folder) -> dict[str, pd.DataFrame]:
    """Every CSV of a report, empty fields as NaN and every other text as it is."""
    return {path.name: pd.read_csv(path, keep_default_na=False, na_values=[""]) for path in sorted(folder.glob("*.csv"))}


def accuracies(table: pd.DataFrame) -> dict[str, pd.Series]:
    """name -> values of every accuracy (not a spread, interval or difference) in a CSV: the columns
    named with a percent unit, and in a table with a metric column, an accuracy metric's values."""
    found = {c: table[c] for c in table.columns if c.endswith("_pct") and not c.startswith(("std", "ci_", "pi_", "stat_std"))}
    if "metric" in table:
        values = [c for c in ("value", "mean", "mean_row", "mean_against") if c in table]
        found |= {metric: table.loc[table["metric"] == metric, values].stack() for metric in set(table["metric"])
                  if "accuracy" in metric}
    return found


def check_report_csvs(folder) -> None:
    tables = csv_tables(folder)
    assert set(tables) == {"table4.csv", "verdicts.csv", "claims.csv", "runs.csv", "history.csv"}
    for name, table in tables.items():
        no_value = table.isna().all() & (len(table) > 0)  # a table of no lines (no claims) keeps its header
        assert not no_value.any(), f"{name}: a column with no value {list(table.columns[no_value])}"
        texts = table.select_dtypes(["object", "string"]).stack().astype(str)
        json_like = texts[texts.str.match(r"[\[{]")]
        assert json_like.empty, f"{name}: JSON in a cell: {list(json_like)[:1]}"
        named = [*table.columns, *table.get("metric", [])]
        assert all(n.endswith("_pct") for n in named if "accuracy" in n), f"{name}: an accuracy without its unit"
        if "metric" not in table:  # a bare mean or published value would say nothing of its unit
            assert not {"mean", "std", "published", "difference"} & set(table.columns), name
        found = accuracies(table)
        assert found or name == "claims.csv" and "metric" in table, f"{name}: no accuracy"
        for column, values in found.items():
            values = values.dropna()
            assert values.between(0, 100).all(), f"{name}: {column} outside [0, 100]"
            assert not len(values) or values.max() > 1, f"{name}: {column} reads as a fraction, not %"


def test_every_csv_names_accuracy_in_percent_holds_no_json_and_no_empty_column(smoke_report, handmade):
    check_report_csvs(smoke_report[0])
    check_report_csvs(handmade)


@pytest.mark.slow
@pytest.mark.research
@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_csvs_name_accuracy_in_percent_and_hold_no_json_and_no_empty_column(name):
    check_report_csvs(ROOT / "results" / name)


def test_report_md_says_each_setup_and_each_claims_words_once_and_keeps_its_tables_narrow(tmp_path):
    """Two profiles, one run at two learning rates: a row is named by its profile and what tells it
    apart within it, not by every setting; the claims' words are listed once, not in every row."""
    records = [with_learning_rate(run_record("mlp", 0.5 + 0.01 * r, r, profile=profile), rate)
               for profile, rate in (("a", 0.01), ("a", 0.1), ("b", 0.1)) for r in (0, 1)]
    report.write_report(write_results(tmp_path, records), tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    rows = [row["Model"] for row in markdown_rows(markdown, "### Fashion-MNIST")]
    assert rows == ["MLP (optimizer.learning_rate=0.01, profile=a)", "MLP (optimizer.learning_rate=0.1, profile=a)",
                    "MLP (profile=b)"]
    quotes = {claim["quote"] for claim in tomllib.loads(CLAIMS_FILE.read_text())["claims"]}
    assert all(markdown.count(quote) == 1 for quote in quotes)
    assert "The report's words" not in section(markdown, "## The report's claims")
    widest = max(len(line) for line in markdown.splitlines() if line.startswith("|"))
    assert widest <= 400, widest  # the paper's report had 2,184: every setting and the words in each row


# ---------------------------------------------------------------- the first report a user sees


QUICK_PARAMS = {"mlp": 1_707_274, "cnn": 1_204_494, "mobilenet": 3_239_114, "fishnet55": 65_952,
                "fishnet77": 1_066_186}  # at 32x32x3, the quick profile's input


def quick_like(folder, dataset="fashion_mnist_sample", repeats=3):
    """What ``./run_bench.sh`` records: the five Table 4 models on the embedded sample at 32x32x3."""
    records = [run_record(model, 0.7 + 0.01 * repeat, repeat, dataset=dataset, size=32, params=params,
                          sec_per_epoch=seconds(repeat), profile="quick")
               for model, params in QUICK_PARAMS.items() for repeat in range(repeats)]
    return write_results(folder, records)


def test_the_default_runs_terminal_table_fits_120_columns_with_only_what_was_run(tmp_path):
    text = report.write_report(quick_like(tmp_path), tmp_path)
    table = text.split("\nclaim ", 1)[0]
    assert table.splitlines()[0] == "Fashion-MNIST (sample)"  # a title, and the only dataset run
    assert max(map(len, table.splitlines())) <= 120, table
    assert "n=0" not in text and "0/0" not in text and "NaN" not in text
    assert "Fashion-MNIST\n" not in text and "CIFAR-10" not in table
    assert [line.split()[0] for line in table.splitlines()[3:8]] == ["MLP", "CNN", "MobileNet", "FishNet55",
                                                                     "FishNet77"]
    claims = [line for line in text.splitlines() if line.startswith("claim")]  # none judged: one line, not eleven
    assert len(claims) == 1 and re.fullmatch(r"claim verdicts: all \d+ can't tell for too few ok runs \(.*\)", claims[0])


def test_the_reports_values_stand_only_beside_runs_at_its_input(tmp_path):
    """Fashion-MNIST at 32x32: the report's dataset, but not its models' input; nothing published beside it."""
    quick_like(tmp_path, dataset="fashion_mnist")
    text = report.write_report(tmp_path, tmp_path)
    table = pd.read_csv(tmp_path / "table4.csv")
    assert "published" not in table and "difference" not in table  # no line has one
    assert "report" not in text.split("\nclaim ", 1)[0]  # no report's columns, no Δ of another input's counts
    cells = pd.read_csv(tmp_path / "verdicts.csv", keep_default_na=False, na_values=[""])
    assert "published_pct" not in cells and (cells["verdict"] == verdicts.CANT_TELL).all()


def test_times_come_from_the_machine_most_of_a_cells_runs_ran_on_never_an_average_over_cpus(tmp_path):
    """3 CNN runs on an AVX-512 EPYC at 2 s an epoch, 2 on an AVX2 EPYC (the same CPU model name) at
    4 s: the time is the first machine's alone, every run's accuracy counts."""
    def on(record, flags):
        return dataclasses.replace(record, environment={**record.environment, "cpu_model": "AMD EPYC",
                                                        "cpu_flags": flags})
    records = [on(run_record("cnn", 0.8, repeat, sec_per_epoch=2.0), ["avx2", "avx512f"]) for repeat in range(3)]
    records += [on(run_record("cnn", 0.9, repeat, sec_per_epoch=4.0), ["avx2"]) for repeat in (3, 4)]
    report.write_report(write_results(tmp_path / "results", records), tmp_path)
    cells = pd.read_csv(tmp_path / "table4.csv").set_index("metric")
    assert cells.loc["ms_per_image", "n"] == 3 and cells.loc["ms_per_image", "mean"] == pytest.approx(1000 * 2.0 / HANDMADE_TRAIN_IMAGES)
    assert cells.loc["accuracy_pct", "n"] == 5 and cells.loc["accuracy_pct", "mean"] == pytest.approx(84.0)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert sorted(runs["machine"].str.split(" [(]").str[0]) == ["AMD EPYC, AVX-512"] * 3 + ["AMD EPYC, AVX2"] * 2
    assert list(runs["timed"]) == [name.startswith("AMD EPYC, AVX-512") for name in runs["machine"]]
    assert "the times of 2 ok runs timed otherwise are left out" in (tmp_path / "report.md").read_text()


def test_a_one_run_cell_reads_n_1_without_nan(tmp_path):
    text = report.write_report(quick_like(tmp_path, repeats=1), tmp_path)
    rows = {r["Model"]: r for r in markdown_rows((tmp_path / "report.md").read_text(), "### Fashion-MNIST (sample)")}
    assert rows["FishNet55"]["Accuracy (%)"] == "70.00 (n=1)" and rows["FishNet55"]["95 % CI"] == "—"
    assert rows["FishNet55"]["ms / image"] == f"{1000 / HANDMADE_TRAIN_IMAGES:.2f} (n=1)"
    assert "NaN" not in text and len(rows) == 5


def test_a_model_keeps_its_colour_whatever_else_the_report_holds():
    alone = figures.row_colors({"FishNet55": "fishnet55"})
    table4 = figures.row_colors({"MLP": "mlp", "CNN": "cnn", "FishNet55 (head=conv)": "fishnet55",
                                 "FishNet55 (head=dense)": "fishnet55", "my_net": "my_net"})
    assert alone["FishNet55"] == table4["FishNet55 (head=conv)"] == figures.model_color("fishnet55")
    assert table4["FishNet55 (head=dense)"] != table4["FishNet55 (head=conv)"]  # a shade of the same model
    assert len(set(table4.values())) == 5
    assert figures.row_colors({"x": "my_net"})["x"] == table4["my_net"]  # a model outside the registry, by name


# ---------------------------------------------------------------- the report's claims


def test_claims_with_raw_and_holm_p(handmade):
    claims = pd.read_csv(handmade / "claims.csv", keep_default_na=False, na_values=[""])
    assert list(claims.columns) == [*verdicts.COMPARISON_COLUMNS, "claim_verdict"]
    assert set(claims["metric"]) <= {"accuracy_pct", "ms_per_image", "params_total", "flops_per_image"}
    fish, mlp = 100 * np.array(ACCURACIES["fishnet55"]), 100 * np.array(ACCURACIES["mlp"])
    mobilenet = np.array([80.0, 82.0])
    # The Fashion-MNIST family: the distinct accuracy pairs of the claims with 2 ok runs a side.
    family = {pair: scipy_stats.ttest_ind(*pair_values, equal_var=False).pvalue for pair, pair_values in {
        ("fishnet55 (head=dense)", "mlp"): (fish, mlp), ("fishnet55 (head=dense)", "mobilenet"): (fish, mobilenet),
        ("mobilenet", "mlp"): (mobilenet, mlp)}.items()}
    holm = dict(zip(family, holm_by_hand(list(family.values()))))
    tested = claims[(claims["dataset"] == "fashion_mnist") & (claims["rule"] == "welch+holm") & claims["needs"].isna()]
    assert set(tested["metric"]) == {"accuracy_pct"}
    assert set(zip(tested["row"], tested["against"])) == set(family)
    for line in tested.itertuples():
        assert line.p_raw == pytest.approx(family[line.row, line.against])
        assert line.p_holm == pytest.approx(holm[line.row, line.against])
    line = tested[tested["claim"] == "fishnet55-more-accurate-than-baselines"].iloc[0]
    assert line["difference"] == pytest.approx(fish.mean() - mlp.mean())
    needs = claims.loc[(claims["against"] == "cnn") & (claims["dataset"] == "fashion_mnist"), "needs"]
    assert needs.str.contains("needs ok runs of cnn on fashion_mnist").all()
    markdown = (handmade / "report.md").read_text()
    comparison = next(r for r in markdown_rows(markdown, "### Comparisons")
                      if r["Claim"] == "fishnet55-more-accurate-than-baselines" and r["against"] == "MLP")
    assert (comparison["p"], comparison["Holm p"]) == (f"{line['p_raw']:.3g}", f"{line['p_holm']:.3g}")


@pytest.mark.parametrize("model, dataset, name", [("resnet50", "cifar10", "resnet50"),
                                                   ("fishnet55", "imagenet", "imagenet")])
def test_claims_file_naming_an_unknown_name_is_refused_and_nothing_written(tmp_path, model, dataset, name):
    claims = tmp_path / "claims.toml"
    claims.write_text(one_claim(model, dataset))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError) as error:
        report.write_report(SMOKE, out, claims=claims)
    message = str(error.value)
    assert "\n" not in message and f"'{model}-beats-mlp'" in message and "Received: " in message and repr(name) in message
    assert not list(out.iterdir())  # nothing written


@pytest.mark.slow
def test_a_report_with_claims_does_not_import_keras(tmp_path):
    """The claims' model names are checked against those known without the model registry."""
    shutil.copytree(SMOKE / "runs", tmp_path / "runs")  # the choice of --claims is kept beside the records
    code = ("import sys; from bench import cli; "
            f"code = cli.main(['report', '--results', {str(tmp_path)!r}, "
            f"'--claims', {str(CLAIMS_FILE)!r}]); "
            "print(code, sorted({'keras', 'tensorflow', 'models'} & set(sys.modules)))")
    done = run_cli([sys.executable, "-c", code], cwd=ROOT)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "0 []", done.stderr
    assert len(pd.read_csv(tmp_path / "claims.csv")) > 0  # the claims were judged


@pytest.mark.slow
@pytest.mark.research
def test_reference_run_gives_a_verdict_for_every_accuracy_cell(table4_cpu):
    """5 models x 2 datasets and FishNet55's conv head on CIFAR-10 with at least the first campaign's
    3 runs each; the other heads of the n = 10 campaign with as many as it has recorded."""
    cells = pd.read_csv(table4_cpu / "verdicts.csv", keep_default_na=False, na_values=[""])
    assert 11 <= len(cells) <= 13 and set(cells["verdict"]) <= set(VERDICTS)
    first = cells["published_pct"].notna() | cells["model"].eq("cnn") | cells["options"].str.contains("head=conv", regex=False)
    assert first.sum() == 11 and (cells.loc[first, "n_ok"] >= 3).all()
    assert (cells["n_ok"] >= 1).all() and (cells["n_ok"] <= cells["n_planned"]).all() and (cells["n_planned"] <= 10).all()
    # the relu CNN is not the report's (tanh) CNN: 8 published values stand beside table4-cpu's rows,
    # none from its protocol, so none is judged
    assert cells["published_pct"].notna().sum() == 8
    assert (cells.loc[cells["published_pct"].notna(), "verdict"] == verdicts.NO_VERDICT).all()
    markdown = (table4_cpu / "report.md").read_text()
    assert "profile=table4-cpu (630 steps: 10 epochs of ⌈2,000 / 32⌉ = 63)" in markdown and "no like-for-like verdict" in markdown
    shown = [row for heading in ("### Fashion-MNIST", "### CIFAR-10") for row in markdown_rows(markdown, heading)
             if row["Accuracy (%)"] != "—"]
    assert len(shown) == len(cells) and all(row["verdict"] in (*VERDICTS, "—") for row in shown)  # —: no published value
    assert all(row["95 % CI"].startswith("[") for row in shown if "(n=1)" not in row["Accuracy (%)"])
    assert "†" not in markdown


@pytest.mark.slow
@pytest.mark.research
def test_reference_run_judges_every_claim_with_raw_and_holm_p(table4_cpu):
    claims = pd.read_csv(table4_cpu / "claims.csv", keep_default_na=False, na_values=[""])
    ids = [claim["id"] for claim in tomllib.loads(CLAIMS_FILE.read_text())["claims"]]
    markdown = (table4_cpu / "report.md").read_text()
    assert [row["Claim"] for row in markdown_rows(markdown, "## The report's claims")] == ids
    tested = claims[claims["rule"].isin(["welch+holm", "tost+holm"])]
    evaluable = tested[tested["needs"].isna()]
    assert len(evaluable) and evaluable["p_raw"].notna().all() and evaluable["p_holm"].notna().all()
    assert (evaluable["p_holm"] >= evaluable["p_raw"]).all()
    missing = claims[claims["needs"].notna()]
    assert set(missing["claim"]) == {"fishnet77-more-accurate-than-fishnet55-on-cifar100"}  # no CIFAR-100 run
    row = next(r for r in markdown_rows(markdown, "## The report's claims") if r["Claim"] in set(missing["claim"]))
    assert row["Needs"] == "ok runs of fishnet77 (head=dense), fishnet55 (head=dense) on cifar100"


@pytest.mark.slow
@pytest.mark.research
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_results_are_tracked_by_git_and_their_report_and_csvs_rebuild_byte_for_byte(rebuilt, name):
    folder = ROOT / "results" / name
    ignored = subprocess.run(["git", "check-ignore", "--quiet", f"results/{name}/runs/any.json"], cwd=ROOT)
    assert ignored.returncode == 1, f"git ignores results/{name}/: its records would never be committed"
    made, shipped = file_digests(rebuilt(name)), file_digests(folder)
    figures = {path for path in made if path.parts[0] == report.FIGURE_DIR}
    assert figures <= set(shipped), f"results/{name} lacks figures its report makes: {sorted(figures - set(shipped))}"
    # The text (report.md, report.html) and CSVs byte for byte; not the figures' bytes, whose last digits differ between
    # CPUs (AVX2 and AVX-512 round a coordinate differently): they are drawn from these CSVs.
    text = {path: digest for path, digest in made.items() if path not in figures}
    assert text == {path: digest for path, digest in shipped.items() if path in text}, (
        f"results/{name}'s report is not what its runs give: run python -m bench report --results results/{name}")


@pytest.mark.slow
@pytest.mark.research
@pytest.mark.parametrize("page", ["README.md", "docs/results.md"])
def test_the_docs_cite_only_shipped_results(page):
    cited = set(re.findall(r"\((?:\.\./)?results/([\w-]+)/", (ROOT / page).read_text()))
    assert cited and cited <= set(SHIPPED)


@pytest.mark.slow
@pytest.mark.research
def test_results_md_holds_the_tables_made_from_the_shipped_csvs():
    """What scripts/results_tables.py writes from results/*/verdicts.csv, table4.csv and claims.csv is
    what docs/results.md holds (the CSVs themselves are checked against the records above)."""
    page = results_tables.RESULTS_MD.read_text()
    for markers, lines in results_tables.expected().items():
        assert results_tables.quoted(page, markers) == lines, (
            f"docs/results.md's table after {markers[0]!r} differs from the CSVs: run python scripts/results_tables.py")


def test_the_results_tables_name_a_models_variants_by_the_options_that_tell_them_apart(tmp_path):
    records = [run_record("cnn", acc, r, options=options)
               for acc, options in ((0.87, {}), (0.85, {"activation": "tanh", "pool": "average"})) for r in (0, 1)]
    records += [run_record("mlp", 0.85, r) for r in (0, 1)]
    report.write_report(write_results(tmp_path, records), tmp_path)
    lines = results_tables.paper_cells_lines(results_tables.read(tmp_path, "verdicts.csv"))
    models = sorted(line.split(" | ")[1] for line in lines[2:])
    assert models == ["CNN (activation=relu, pool=max)", "CNN (activation=tanh, pool=average)", "MLP"]


# ---------------------------------------------------------------- one observation per seed


OLD, NEW = "2026-01-01T10:00:00+00:00", "2026-02-01T10:00:00+00:00"


@pytest.mark.parametrize("first, second, kept", [
    ((OLD, "aaaa"), (NEW, "bbbb"), 1),  # the later finished_at
    ((NEW, "aaaa"), (OLD, "bbbb"), 0),  # whatever the order and the ids
    ((NEW, "aaaa"), (NEW, "bbbb"), 1),  # equal times: the larger run_id, for a stable choice
])
def test_one_record_per_configuration_and_seed(first, second, kept):
    pair = [dataclasses.replace(run_record("mlp", 0.5 + 0.1 * i, 0, finished_at=when), run_id=run_id)
            for i, (when, run_id) in enumerate((first, second))]  # one seed from two versions
    other_seed = run_record("mlp", 0.7, 1, finished_at=OLD)
    kept_records, set_aside = aggregate.one_per_seed([pair[0], other_seed, pair[1]])
    assert kept_records == [r for r in (pair[0], other_seed, pair[1]) if r is not pair[1 - kept]]
    assert set_aside == [pair[1 - kept]]


def test_report_counts_a_seed_once_and_says_what_it_set_aside(tmp_path):
    old = dataclasses.replace(run_record("mlp", 0.5, 0, finished_at=OLD), run_id="0ld0000000000000")
    new, other = run_record("mlp", 0.7, 0, finished_at=NEW), run_record("mlp", 0.9, 1, finished_at=NEW)
    report.write_report(write_results(tmp_path, [old, new, other]), tmp_path)
    accuracy = pd.read_csv(tmp_path / "table4.csv").query("metric == 'accuracy_pct' and n > 0").iloc[0]
    assert (accuracy["n"], accuracy["runs"], accuracy["mean"]) == (2, 2, pytest.approx(80.0))
    assert list(pd.read_csv(tmp_path / "runs.csv")["run_id"]) == [new.run_id, other.run_id]
    method = section((tmp_path / "report.md").read_text(), "## Method")
    assert "1 older record set aside" in method and "one seed is one observation" in method


def test_a_record_copied_under_another_name_is_one_observation(tmp_path):
    records = [run_record("mlp", accuracy, repeat) for repeat, accuracy in enumerate((0.8, 0.82, 0.84))]
    runs = Results(write_results(tmp_path, records)).runs
    shutil.copy(runs / f"{records[0].run_id}.json", runs / "copy.json")
    text = report.write_report(tmp_path, tmp_path)
    accuracy = pd.read_csv(tmp_path / "table4.csv").query("metric == 'accuracy_pct' and n > 0").iloc[0]
    assert (accuracy["n"], accuracy["runs"]) == (3, 3) and len(pd.read_csv(tmp_path / "runs.csv")) == 3
    assert f"{runs / 'copy.json'}: the same record as {runs / records[0].run_id}.json; counted once" in text


HAND_EDITED = {  # a record's spec or fields as a hand or another tool left them
    "model_int.json": {"spec": {"model": 3}},
    "seed_text.json": {"spec": {"seed": "1"}},
    "preprocess_list.json": {"spec": {"preprocess": [56, 3]}},
    "ok_without_accuracy.json": {"test_accuracy": None},
}


def test_records_edited_by_hand_are_skipped_by_name_and_the_rest_reported(tmp_path):
    good = run_record("mlp", 0.8, 0)
    write_results(tmp_path, [good])
    for name, changes in HAND_EDITED.items():
        written = run_record("mlp", 0.9, 1).to_dict()
        edited = {**written, **changes, "spec": {**written["spec"], **changes.get("spec", {})}}
        (Results(tmp_path).runs / name).write_text(json.dumps(edited))
    text = report.write_report(tmp_path, tmp_path)
    assert list(pd.read_csv(tmp_path / "runs.csv")["run_id"]) == [good.run_id]
    findings = section((tmp_path / "report.md").read_text(), "## Findings")
    for name in HAND_EDITED:
        assert f"skipped record file {Results(tmp_path).runs / name}: " in text
        assert f"Record file skipped: {Results(tmp_path).runs / name}: " in findings


def test_runs_on_other_than_the_canonical_data_are_named_in_the_findings(tmp_path):
    other = dataclasses.replace(run_record("mlp", 0.8, 1), spec=dataclasses.replace(run_record("mlp", 0.8, 1).spec,
                                                                                     data_hash="f" * 64))
    report.write_report(write_results(tmp_path, [run_record("mlp", 0.8, 0), other]), tmp_path)
    findings = section((tmp_path / "report.md").read_text(), "## Findings")
    assert (f"Fashion-MNIST: 1 of 2 runs on other data than the canonical copy (content sha256 {'f' * 64}), "
            "counted in its cells with the others.") in findings


# ---------------------------------------------------------------- findings and labels


def test_findings_explain_parameter_counts_and_bad_runs(handmade):
    findings = (handmade / "report.md").read_text().split("## Findings")[1]
    assert "FishNet77 on Fashion-MNIST: 1,153,306 parameters against the report's 2,317,636 (-1,164,330" in findings
    assert "100-class" in findings
    assert "MobileNet on Fashion-MNIST: 3,239,114 parameters against the report's 4,253,864 (-1,014,750" in findings
    assert "1000-class" in findings
    assert "MLP on" not in findings and "FishNet55 on Fashion-MNIST: 1" not in findings  # counts equal
    assert "FishNet55 on Fashion-MNIST: 2 of 5 runs not ok" in findings
    assert "1 diverged (seed 3)" in findings and "1 failed (seed 4): RuntimeError: loss is NaN" in findings


@pytest.mark.figures
def test_head_pair_gives_the_fig3_fig4_figure_and_labelled_rows(tmp_path):
    records = [run_record("fishnet55", accuracy, repeat, options={"head": head})
               for head, accuracy in (("conv", 0.3), ("dense", 0.8)) for repeat in (0, 1)]
    report.write_report(write_results(tmp_path, records), tmp_path)
    figure = tmp_path / report.FIGURE_DIR / "heads_1_fishnet55_fashion_mnist.png"
    assert figure.stat().st_size > 10_000
    markdown = (tmp_path / "report.md").read_text()
    assert "| FishNet55 (head=conv) " in markdown and "| FishNet55 (head=dense) " in markdown
    table = pd.read_csv(tmp_path / "table4.csv").set_index(["row", "metric"])
    published = table.loc[(table["dataset"] == "fashion_mnist").to_numpy(), "published"]
    assert published[("FishNet55 (head=dense)", "accuracy_pct")] == 88.6  # the report's model
    assert published[["FishNet55 (head=conv)"]].isna().all()  # not the report's model: nothing beside it


def test_profiles_are_never_averaged_together(tmp_path):
    records = [run_record("mlp", 0.5, 0, profile="a"), run_record("mlp", 0.9, 0, profile="b")]
    report.write_report(write_results(tmp_path, records), tmp_path)
    table = pd.read_csv(tmp_path / "table4.csv")
    accuracy = table[(table["metric"] == "accuracy_pct") & (table["n"] > 0)].set_index("row")["mean"]
    assert accuracy.to_dict() == pytest.approx({"MLP (profile=a)": 50.0, "MLP (profile=b)": 90.0})
    cells = pd.read_csv(tmp_path / "verdicts.csv")
    assert sorted(cells.loc[cells["model"] == "mlp", "setup"]) == ["profile=a", "profile=b"]


def with_learning_rate(record, learning_rate):
    spec = dataclasses.replace(record.spec, optimizer=Optimizer(learning_rate=learning_rate))
    return dataclasses.replace(record, spec=spec, run_id=spec.run_id)


@pytest.mark.parametrize("runs, setups, sentence", [
    # two profiles, each one setup: named by the profile, the setting that tells them apart said once
    ((("a", 0.01), ("b", 0.1)), ["profile=a", "profile=b"],
     "Setups, judged apart: profile=a (optimizer.learning_rate=0.01); profile=b (optimizer.learning_rate=0.1)."),
    # one profile run at two learning rates: the profile no longer decides, the setting names them
    ((("a", 0.01), ("a", 0.1)), ["optimizer.learning_rate=0.01", "optimizer.learning_rate=0.1"], None),
    ((("a", 0.01), ("a", 0.1), ("b", 0.1)), ["optimizer.learning_rate=0.01, profile=a",
                                             "optimizer.learning_rate=0.1, profile=a", "profile=b"],
     ("Setups, judged apart: optimizer.learning_rate=0.01, profile=a; optimizer.learning_rate=0.1, profile=a; "
      "profile=b (optimizer.learning_rate=0.1).")),
])
def test_setups_are_named_by_their_profile_when_it_decides_them_and_say_what_tells_them_apart(
        tmp_path, runs, setups, sentence):
    records = [with_learning_rate(run_record("mlp", 0.5 + 0.1 * i, 0, profile=profile), learning_rate)
               for i, (profile, learning_rate) in enumerate(runs)]
    report.write_report(write_results(tmp_path, records), tmp_path)
    cells = pd.read_csv(tmp_path / "verdicts.csv")
    assert sorted(cells.loc[cells["model"] == "mlp", "setup"]) == setups
    assert sorted(set(pd.read_csv(tmp_path / "table4.csv")["row"])) == [f"MLP ({setup})" for setup in setups]
    method = section((tmp_path / "report.md").read_text(), "## Method")
    assert (sentence in method) if sentence else ("judged apart" not in method)


def test_a_model_run_in_one_setup_of_several_is_named_by_it_and_shows_its_own_runs(tmp_path):
    # the CNN ran in setup b only; setup a has the report's CNN cell unrun, which must not stand in for it
    records = [with_learning_rate(run_record("mlp", 0.5 + 0.1 * r, r, profile="a"), 0.01) for r in (0, 1)]
    records += [with_learning_rate(run_record(model, 0.8 + 0.01 * r, r, profile="b"), 0.1)
                for model in ("mlp", "cnn") for r in (0, 1, 2)]
    report.write_report(write_results(tmp_path, records), tmp_path)
    rows = set(pd.read_csv(tmp_path / "table4.csv")["row"])
    assert rows == {"MLP (profile=a)", "MLP (profile=b)", "CNN (profile=b)"}
    fashion = section((tmp_path / "report.md").read_text(), "### Fashion-MNIST")
    cnn = next(line for line in fashion.splitlines() if line.startswith("| CNN"))
    assert "| CNN (profile=b) " in cnn and "| 3/3 " in cnn


def test_a_row_never_run_does_not_stand_in_for_a_row_of_the_same_model_that_ran(tmp_path):
    # FishNet55 ran with the conv head only; the report's dense-head cell is unrun
    records = [run_record("fishnet55", 0.6 + 0.01 * r, r, dataset="cifar10", options={"head": "conv"}) for r in (0, 1, 2)]
    report.write_report(write_results(tmp_path, records), tmp_path)
    cifar = section((tmp_path / "report.md").read_text(), "### CIFAR-10")
    fishnet = next(line for line in cifar.splitlines() if line.startswith("| FishNet55"))
    assert "| 3/3 " in fishnet


def test_a_row_whose_every_run_diverged_stands_beside_the_reports_value_without_a_difference(tmp_path):
    report_cnn = {"activation": "tanh", "pool": "average"}
    records = [run_record("cnn", 0.1, r, dataset="cifar10", status="diverged", options=report_cnn) for r in (0, 1)]
    report.write_report(write_results(tmp_path, records), tmp_path)
    cifar = section((tmp_path / "report.md").read_text(), "### CIFAR-10")
    cnn = next(line for line in cifar.splitlines() if line.startswith("| CNN"))
    assert "| 0/2 (2 diverged) " in cnn and "| 37.3 " in cnn and "nan" not in cnn


def test_runs_that_learned_nothing_count_in_their_table4_cell_with_a_mark_and_a_note(tmp_path):
    records = [dataclasses.replace(run_record("mlp", 0.1, r, dataset="cifar10"), test_loss=2.3026, num_classes=10)
               for r in (0, 1)] + [run_record("cnn", 0.5, r, dataset="cifar10") for r in (0, 1)]
    report.write_report(write_results(tmp_path, records), tmp_path)
    cifar = section((tmp_path / "report.md").read_text(), "### CIFAR-10")
    mlp = next(line for line in cifar.splitlines() if line.startswith("| MLP"))
    cnn = next(line for line in cifar.splitlines() if line.startswith("| CNN"))
    assert "| 10.00 ± 0.00 ‡ |" in mlp and "| 2/2 " in mlp and "‡" not in cnn
    assert "‡ MLP: 2 of 2 ok runs learned nothing (they ended at chance" in cifar


@pytest.mark.parametrize("loads, sentence", [
    ((0.4, 1.9), None),  # one run at a time on an otherwise idle 2-core machine
    ((0.4, 3.25), "Timings come from runs that shared the machine: a 1-minute load average of up to 3.2 "
                  "on 2 cores at a run's end."),
])
def test_method_says_when_timings_come_from_a_busy_machine(tmp_path, loads, sentence):
    records = [run_record("mlp", 0.8, repeat, load_at_end=load) for repeat, load in enumerate(loads)]
    report.write_report(write_results(tmp_path, records), tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    if sentence is None:
        assert "shared the machine" not in markdown
    else:
        assert sentence in markdown


@pytest.mark.parametrize("onednn, speedups, words", [
    (True, True, "oneDNN on; harness speed-ups on;"),
    (False, False, "oneDNN off; harness speed-ups off;"),  # a --no-speedups run
    (None, True, "oneDNN not recorded; harness speed-ups on;"),  # a record older than the setting
])
def test_method_says_how_the_runs_were_computed(tmp_path, onednn, speedups, words):
    record = run_record("mlp", 0.8)
    record = dataclasses.replace(record, spec=dataclasses.replace(record.spec, speedups=speedups))
    if onednn is not None:
        record = dataclasses.replace(record, environment={**record.environment, "onednn": onednn})
    report.write_report(write_results(tmp_path, [record]), tmp_path)
    assert words in (tmp_path / "report.md").read_text()


# ---------------------------------------------------------------- bad input


def test_report_with_no_ok_run_still_writes_the_findings(tmp_path):
    records = [run_record("fishnet77", 0.0, r, status="timeout") for r in (0, 1)]
    text = report.write_report(write_results(tmp_path, records), tmp_path)
    assert "FishNet77" in text
    assert "FishNet77 on Fashion-MNIST: 2 of 2 runs not ok, left out of the table: 2 timeout (seeds 0, 1)" in (
        tmp_path / "report.md").read_text()
    assert not list((tmp_path / report.FIGURE_DIR).glob("*.png"))


def test_corrupt_record_is_named_and_the_rest_reported(tmp_path):
    shutil.copytree(SMOKE / "runs", tmp_path / "runs")
    (tmp_path / "runs" / "broken.json").write_text("{not json")
    text = report.write_report(tmp_path, tmp_path)
    assert "broken.json" in text
    assert "broken.json" in (tmp_path / "report.md").read_text()
    assert len(pd.read_csv(tmp_path / "runs.csv")) == len(list((SMOKE / "runs").glob("*.json")))


@pytest.mark.parametrize("state", ["does not exist", "is empty"])
def test_cli_on_missing_or_empty_results_says_so_in_one_line(tmp_path, capsys, state):
    if state == "is empty":
        (tmp_path / "runs").mkdir()
    status = cli.main(["report", "--results", str(tmp_path)])
    error = capsys.readouterr().err
    assert status == cli.EXIT_BAD_INPUT
    assert error.startswith("error: nothing to report") and state in error and error.count("\n") == 1


def test_cli_without_results_reports_every_profile_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for profile in ("quick", "table4-cpu"):
        shutil.copytree(SMOKE / "runs", tmp_path / "results" / profile / "runs")
    (tmp_path / "results" / "notes").mkdir()  # a folder without runs/ is not a results folder
    assert cli.main(["report"]) == 0
    assert sorted(p.parent.name for p in (tmp_path / "results").glob("*/report.md")) == ["quick", "table4-cpu"]


def test_cli_without_results_goes_on_past_a_folder_it_cannot_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for profile in ("a", "b", "c"):
        shutil.copytree(SMOKE / "runs", tmp_path / "results" / profile / "runs")
    for path in (tmp_path / "results" / "b" / "runs").iterdir():
        path.write_text("{not json")
    with pytest.warns(UserWarning) as caught:
        assert cli.main(["report"]) == 0
    assert sorted(p.parent.name for p in (tmp_path / "results").glob("*/report.md")) == ["a", "c"]
    assert [str(w.message).split(" (")[0] for w in caught] == [
        "skipped results/b: nothing to report: results/b/runs holds no readable record"]
    assert "wrote report.md" in capsys.readouterr().out


@pytest.mark.parametrize("argv, text", [
    (["report"], "nothing to report: no folder with runs/ in results/"),
    (["report", "--out", "elsewhere"], "--out needs --results"),
])
def test_cli_report_refuses_in_one_line(tmp_path, monkeypatch, capsys, argv, text):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == cli.EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert error.startswith("error: ") and text in error and error.count("\n") == 1
    assert not list(tmp_path.iterdir())  # nothing written


def test_run_writes_into_the_profiles_folder_and_reports_there(tmp_path, monkeypatch, capsys):
    from bench.run import runner

    def recorded(specs, results, dispatch, retry_failed):  # stands in for training: the smoke records
        shutil.copytree(SMOKE / "runs", Results(results).runs)
        return Results(results).records()[0]

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "run_benchmark", recorded)
    assert cli.main(["run", "--profile", "smoke", "--report"]) == 0
    assert "records in results/smoke/runs" in capsys.readouterr().out
    assert (tmp_path / "results" / "smoke" / "report.md").is_file()
