"""Tests of ``python -m bench report``: statistics, Table 4 against the published values,
findings, figures, bad input.

Two kinds of records: the committed ``tests/fixtures/smoke/runs`` (made once by the real
runner on the smoke profile, synthetic data) and hand-made ones on fashion_mnist with known
accuracies. Every expected number is computed here from the inputs with numpy and scipy,
not with ``bench.stats``.
"""
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

import models
from bench import aggregate, cli, report, store
from bench.spec import Augment, Optimizer, Preprocess, RunSpec
from bench.stats import summarize, welch

SMOKE = Path(__file__).parent / "fixtures" / "smoke"
PUBLISHED = aggregate.Published.from_frame(pd.read_csv(report.PUBLISHED_FILE, keep_default_na=False))


def t_interval(values):
    """The 95 % CI of the mean, by scipy: mean ± t * sem."""
    values = np.asarray(values, dtype=float)
    return scipy_stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values))


def run_record(model, accuracy, repeat=0, *, dataset="fashion_mnist", options=None, status="ok",
               params=1000, sec_per_epoch=2.0, profile="handmade", load_at_end=0.5):
    """A record as train.py writes it, with a two-epoch history ending at ``accuracy``."""
    spec = RunSpec(
        profile=profile, model=model, model_options=options or {}, dataset=dataset,
        preprocess=Preprocess(size=56, channels=3), repeat=repeat, seed=repeat,
        epochs=2, batch_size=32, optimizer=Optimizer(), augment=Augment(),
    )
    history = [{"epoch": e, "loss": 2.0 / e, "accuracy": accuracy * e / 2, "val_loss": 2.1 / e,
                "val_accuracy": accuracy * (e + 1) / 3, "train_seconds": sec_per_epoch, "eval_seconds": 0.1}
               for e in (1, 2)]
    measured = dict(test_accuracy=accuracy, test_loss=1.0, history=history, sec_per_epoch=sec_per_epoch,
                    params_total=params, params_trainable=params, input_shape=(56, 56, 3), num_classes=10,
                    model_family=models.family(model))
    return store.RunRecord(
        run_id=spec.run_id, spec=spec, status=status, **(measured if status == "ok" else {}),
        error=None if status == "ok" else "RuntimeError: loss is NaN at epoch 2\ntraceback...",
        environment={"host": "testhost", "cpu_model": "test cpu", "cpu_count": 2, "jobs_at_once": 1,
                     "threads_per_job": 1, "tensorflow": "2.x", "keras": "3.x", "python": "3.11",
                     "load_at_end": load_at_end},
    )


def write_results(folder, records):
    for record in records:
        store.write_record(folder, record)
    return folder


ACCURACIES = {  # fraction per repeat, on fashion_mnist
    "mlp": [0.85, 0.86, 0.87],  # mean 86.0, CI holds the published 86.5: no mark
    "fishnet55": [0.95, 0.951, 0.953],  # far above the published 88.6: marked
    "fishnet77": [0.90],  # n = 1: std and CI NaN
}
PARAMS = {"mlp": 2_411_274, "fishnet55": 118_752, "fishnet77": 1_153_306, "mobilenet": 3_239_114}


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    """Results with known accuracies, a diverged and a failed FishNet55 run, and MobileNet."""
    records = [run_record(model, accuracy, repeat, params=PARAMS[model])
               for model, values in ACCURACIES.items() for repeat, accuracy in enumerate(values)]
    records += [run_record("fishnet55", 0.0, 3, status="diverged"), run_record("fishnet55", 0.0, 4, status="failed")]
    records += [run_record("mobilenet", a, r, params=PARAMS["mobilenet"]) for r, a in enumerate([0.8, 0.82])]
    results = write_results(tmp_path_factory.mktemp("handmade"), records)
    report.write_report(results, results)
    return results


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke-report")
    text = report.write_report(SMOKE, out)
    return out, text


# ---------------------------------------------------------------- statistics


def test_summarize_gives_the_t_interval_and_nan_at_one_value():
    values = [71.0, 74.5, 73.25, 70.0]
    summary = summarize(values)
    assert summary.n == 4
    assert summary.mean == pytest.approx(np.mean(values))
    assert summary.std == pytest.approx(np.std(values, ddof=1))
    assert (summary.ci_low, summary.ci_high) == pytest.approx(t_interval(values))
    one = summarize([72.0])
    assert one.mean == 72.0 and np.isnan(one.std) and np.isnan(one.ci_low) and one.contains(72.0) is None
    assert summarize([]).n == 0 and np.isnan(summarize([]).mean)


def test_welch_matches_scipy_and_is_nan_without_variance():
    a, b = [90.1, 91.0, 89.7, 90.6], [86.0, 87.5, 85.9]
    expected = scipy_stats.ttest_ind(a, b, equal_var=False)
    result = welch(a, b)
    assert result.difference == pytest.approx(np.mean(a) - np.mean(b))
    assert result.p_value == pytest.approx(expected.pvalue)
    assert np.isnan(welch([1.0], b).p_value)
    assert np.isnan(welch([10.0, 10.0], [10.0, 10.0]).p_value)


# ---------------------------------------------------------------- the smoke fixture, made by the real runner


def fixture_runs():
    """The fixture records read with json alone, as a DataFrame."""
    rows = [json.loads(p.read_text()) for p in sorted((SMOKE / "runs").glob("*.json"))]
    return pd.DataFrame([{"model": r["spec"]["model"], "accuracy": 100 * r["test_accuracy"],
                          "sec_per_epoch": r["sec_per_epoch"], "params_total": r["params_total"]} for r in rows])


def test_smoke_table_matches_numbers_computed_from_the_json(smoke_report):
    out, _ = smoke_report
    table = pd.read_csv(out / "table4.csv")
    measured = table[table["dataset"] == "synthetic"]
    runs = fixture_runs()
    assert set(measured["model"]) == set(runs["model"]) == set(aggregate.TABLE4_MODELS)
    for (model, metric), cell in measured.set_index(["model", "metric"]).iterrows():
        values = runs.loc[runs["model"] == model, metric].to_numpy(float)
        assert cell["n"] == len(values) == 2
        assert cell["mean"] == pytest.approx(values.mean())
        assert cell["std"] == pytest.approx(values.std(ddof=1))
        if values.std() > 0:
            assert (cell["ci_low"], cell["ci_high"]) == pytest.approx(t_interval(values))
    mlp = runs.loc[runs["model"] == "mlp", "accuracy"]
    assert f"{mlp.mean():.2f} ± {mlp.std(ddof=1):.2f} (n=2)" in (out / "report.md").read_text()


def test_smoke_report_has_every_part(smoke_report):
    out, text = smoke_report
    markdown = (out / "report.md").read_text()
    for heading in ("## Method", "## Table 4", "## The report's comparisons", "## Findings", "## Figures"):
        assert heading in markdown
    assert "runs at once 2" in markdown and "shared the machine" in markdown
    assert "— (n=0)" in markdown  # Fashion-MNIST and CIFAR-10 were not run
    assert len(pd.read_csv(out / "runs.csv")) == len(list((SMOKE / "runs").glob("*.json")))
    figures = sorted(p.name for p in (out / report.FIGURE_DIR).glob("*.png"))
    assert figures == ["accuracy_ci.png", "cost_synthetic.png", "curves_synthetic.png"]
    assert all((out / report.FIGURE_DIR / name).stat().st_size > 10_000 for name in figures)
    assert all(f"({report.FIGURE_DIR}/{name})" in markdown for name in figures)
    assert "FishNet77" in text and "wrote report.md" in text


def test_report_is_byte_for_byte_reproducible(smoke_report, tmp_path):
    out, _ = smoke_report
    report.write_report(SMOKE, tmp_path)
    for name in ("report.md", "table4.csv", "runs.csv"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


# ---------------------------------------------------------------- published values, findings


def test_cells_beside_published_values(handmade):
    table = pd.read_csv(handmade / "table4.csv").set_index(["model", "dataset", "metric"])
    for model, fractions in ACCURACIES.items():
        values = 100 * np.array(fractions)
        cell = table.loc[(model, "fashion_mnist", "accuracy")]
        published = PUBLISHED.value(model, "fashion_mnist", "accuracy")
        assert cell["n"] == len(values)
        assert cell["mean"] == pytest.approx(values.mean())
        assert cell["published"] == published
        assert cell["difference"] == pytest.approx(values.mean() - published)
        if len(values) > 1:
            low, high = t_interval(values)
            assert (cell["ci_low"], cell["ci_high"]) == pytest.approx((low, high))
            assert bool(cell["published_outside_ci"]) == (not low <= published <= high)
        else:
            assert np.isnan(cell["std"]) and pd.isna(cell["published_outside_ci"])
    assert table.loc[("cnn", "fashion_mnist", "accuracy"), "n"] == 0  # a published row never run


def test_table_text_marks_and_missing_cells(handmade):
    markdown = (handmade / "report.md").read_text()
    fish = 100 * np.array(ACCURACIES["fishnet55"])
    assert f"{fish.mean():.2f} ± {fish.std(ddof=1):.2f} (n=3)" in markdown
    assert f"88.6 ({fish.mean() - 88.6:+.2f}) {report.MARK}" in markdown  # outside the CI
    mlp_line = next(line for line in markdown.splitlines() if line.startswith("| MLP"))
    assert "| 86.5 (-0.50) " in mlp_line and f"86.5 (-0.50) {report.MARK}" not in mlp_line  # inside the CI
    assert "90.00 ± NaN (n=1)" in markdown  # FishNet77, one run
    cnn_line = next(line for line in markdown.splitlines() if line.startswith("| CNN"))
    assert cnn_line.count("— (n=0)") == 4


def test_welch_comparisons_in_the_report(handmade):
    frame = aggregate.report_frame(store.load_records(handmade)[0])
    table = aggregate.comparisons(frame, PUBLISHED).set_index(["row", "against"])
    fish, mlp = 100 * np.array(ACCURACIES["fishnet55"]), 100 * np.array(ACCURACIES["mlp"])
    line = table.loc[("FishNet55", "MLP")]
    assert line["difference"] == pytest.approx(fish.mean() - mlp.mean())
    assert line["p_value"] == pytest.approx(scipy_stats.ttest_ind(fish, mlp, equal_var=False).pvalue)
    assert np.isnan(table.loc[("FishNet77", "MLP"), "p_value"])  # n = 1
    assert f"{line['p_value']:.3g}" in (handmade / "report.md").read_text()


def test_comparisons_are_the_report_claims_and_no_others(tmp_path):
    records = [run_record(model, 0.5 + 0.01 * repeat, repeat, options=options)
               for model, options in (("mlp", None), ("cnn", None), ("fishnet55", {"head": "conv"}),
                                      ("fishnet55", None), ("fishnet77", None))
               for repeat in (0, 1)]
    frame = aggregate.report_frame(records)
    pairs = list(zip(*(aggregate.comparisons(frame, PUBLISHED)[key] for key in ("row", "against"))))
    assert pairs == [
        ("FishNet77", "FishNet55 (head=default)"),
        ("FishNet77", "CNN"), ("FishNet77", "MLP"),
        ("FishNet55 (head=default)", "FishNet55 (head=conv)"),
        ("FishNet55 (head=default)", "CNN"), ("FishNet55 (head=default)", "MLP"),
        ("FishNet55 (head=conv)", "CNN"), ("FishNet55 (head=conv)", "MLP"),
    ]  # never two baselines, nor FishNets differing in both model and options


def test_findings_explain_parameter_counts_and_bad_runs(handmade):
    findings = (handmade / "report.md").read_text().split("## Findings")[1]
    assert "FishNet77 on Fashion-MNIST: 1,153,306 parameters against the report's 2,317,636 (-1,164,330" in findings
    assert "100-class" in findings
    assert "MobileNet on Fashion-MNIST: 3,239,114 parameters against the report's 4,253,864 (-1,014,750" in findings
    assert "1000-class" in findings
    assert "MLP on" not in findings and "FishNet55 on Fashion-MNIST: 1" not in findings  # counts equal
    assert "FishNet55 on Fashion-MNIST: 2 of 5 runs not ok" in findings
    assert "1 diverged (seed 3)" in findings and "1 failed (seed 4): RuntimeError: loss is NaN" in findings


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
    assert published[("FishNet55 (head=dense)", "accuracy")] == 88.6  # the report's model
    assert published[["FishNet55 (head=conv)"]].isna().all()  # not the report's model: nothing beside it


def test_profiles_are_never_averaged_together(tmp_path):
    records = [run_record("mlp", 0.5, 0, profile="a"), run_record("mlp", 0.9, 0, profile="b")]
    report.write_report(write_results(tmp_path, records), tmp_path)
    table = pd.read_csv(tmp_path / "table4.csv")
    accuracy = table[(table["metric"] == "accuracy") & (table["n"] > 0)].set_index("row")["mean"]
    assert accuracy.to_dict() == pytest.approx({"MLP (profile=a)": 50.0, "MLP (profile=b)": 90.0})


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
    from bench import runner

    def recorded(specs, results, dispatch, retry_failed):  # stands in for training: the smoke records
        shutil.copytree(SMOKE / "runs", store.runs_dir(results))
        return store.load_records(results)[0]

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "run_benchmark", recorded)
    assert cli.main(["run", "--profile", "smoke", "--report"]) == 0
    assert "records in results/smoke/runs" in capsys.readouterr().out
    assert (tmp_path / "results" / "smoke" / "report.md").is_file()
