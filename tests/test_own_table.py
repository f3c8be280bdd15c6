"""A user's own published table and claims (docs/own-table.md): ``--published`` and ``--claims``
judge the runs with the report's verdicts; a profile that is not Table 4's gets none of Table 4."""
import dataclasses
import math
import re
import tomllib

import pandas as pd
import pytest
from helpers import ROOT, SMOKE, run_record, write_profile, write_results

from bench import cli, config
from bench.analysis import sources
from bench.analysis.claims import load_published
from bench.records import store
from bench.records.results import Results
from bench.report import report

DOC = (ROOT / "docs" / "own-table.md").read_text()
TABLE4_IDS = {claim["id"] for claim in tomllib.loads((ROOT / "bench/assets/claims.toml").read_text())["claims"]}


def doc_file(start: str) -> str:
    """The worked example's file in docs/own-table.md whose code block starts with ``start``."""
    return re.search(rf"^```\w+\n({re.escape(start)}.*?)^```", DOC, re.DOTALL | re.MULTILINE).group(1)


def renamed(record: store.RunRecord, model: str, accuracy: float) -> store.RunRecord:
    """The record as if ``model`` (a user's, not registered here) had run with its spec and reached ``accuracy``."""
    spec = dataclasses.replace(record.spec, model=model)
    return dataclasses.replace(record, spec=spec, run_id=spec.run_id, test_accuracy=accuracy)


@pytest.fixture
def own_files(tmp_path):
    """The worked example's published table and claims file, as the user writes them."""
    table, claims = tmp_path / "my_table.csv", tmp_path / "my_claims.toml"
    table.write_text(doc_file("model,dataset"))
    claims.write_text(doc_file("schema_version"))
    return table, claims


@pytest.fixture
def smoke_with_mynet(tmp_path):
    """The smoke profile's records (made by the real runner) plus a user's model, mynet, with the
    CNN's specs, 15 pp above each CNN run."""
    records = Results(SMOKE).records()[0]
    mynet = [renamed(r, "mynet", r.test_accuracy + 0.15) for r in records if r.spec.model == "cnn"]
    return write_results(tmp_path / "results", records + mynet)


def test_report_judges_a_users_claim_about_a_users_model_against_a_users_table(smoke_with_mynet, own_files, capsys):
    table, claims = own_files
    out = smoke_with_mynet.parent / "report"
    assert cli.main(["report", "--results", str(smoke_with_mynet), "--out", str(out),
                     "--published", str(table), "--claims", str(claims)]) == 0
    judged = pd.read_csv(out / "claims.csv", keep_default_na=False, na_values=[""])
    assert list(judged["claim"]) == ["mynet-beats-cnn"]
    line = judged.iloc[0]
    assert (line["row"], line["against"], line["dataset"], line["n_row"], line["n_against"]) == (
        "mynet", "cnn", "synthetic", 2, 2)
    assert line["difference"] == pytest.approx(15.0, abs=1e-4) and line["hedges_g"] > 0
    assert line["claim_verdict"] in {"holds", "contradicted", "can't tell"} and line["p_holm"] == line["p_raw"]
    markdown = (out / "report.md").read_text()
    assert "| mynet-beats-cnn " in markdown and f"**{line['claim_verdict']}**" in markdown
    assert f"Judged against: published table: {table}; claims: {claims}." in markdown
    assert "\n## Claims\n" in markdown and "The report's claims" not in markdown and "## Table 4" not in markdown
    cells = pd.read_csv(out / "verdicts.csv", keep_default_na=False, na_values=[""]).set_index("model")
    assert cells.loc["mynet", "published_pct"] == 90.0 and cells.loc["mynet", "estimand"] == "mean"
    assert pd.isna(cells.loc["cnn", "published_pct"])  # the user's table has no CNN line
    assert "claim mynet-beats-cnn: " in capsys.readouterr().out


def test_a_claim_holds_when_the_runs_say_so(tmp_path, own_files):
    _, claims = own_files
    records = [run_record("cnn", 0.60 + 0.01 * r, r, dataset="synthetic", profile="smoke") for r in range(5)]
    records += [renamed(run_record("cnn", 0, r, dataset="synthetic", profile="smoke"), "mynet", 0.80 + 0.01 * r)
                for r in range(5)]
    report.write_report(write_results(tmp_path, records), tmp_path, claims=claims)
    judged = pd.read_csv(tmp_path / "claims.csv")
    assert list(judged["claim_verdict"]) == ["holds"] and judged["p_holm"].iloc[0] < 0.05


def test_a_profile_that_is_not_table_4s_gets_no_table_4_claims_nor_published_column(tmp_path):
    report.write_report(SMOKE, tmp_path)
    assert pd.read_csv(tmp_path / "claims.csv").empty
    assert "published" not in pd.read_csv(tmp_path / "table4.csv").columns  # no published table: no column
    markdown = (tmp_path / "report.md").read_text()
    assert "Judged against: published table: none; claims: none." in markdown
    assert "## The report's claims" not in markdown and "What the report's values are" not in markdown
    assert not any(claim_id in markdown for claim_id in TABLE4_IDS)


def test_the_table_4_profiles_name_the_shipped_files_and_the_others_none():
    named = {name: config.report_choice(name) for name in config.profile_names()}
    assert named.pop("smoke") == {}
    assert set(named) == {"notebook", "paper", "paper-corrected", "quick", "table4-cpu"}
    assert all(choice == {"published": "table4", "claims": "table4"} for choice in named.values())


def test_the_next_report_finds_the_files_the_flags_chose_even_after_they_changed(smoke_with_mynet, own_files):
    table, claims = own_files
    report.write_report(smoke_with_mynet, smoke_with_mynet, published=table, claims=claims)
    first = (smoke_with_mynet / "claims.csv").read_text()
    claims.write_text("not a claims file")
    table.unlink()
    report.write_report(smoke_with_mynet, smoke_with_mynet)
    assert (smoke_with_mynet / "claims.csv").read_text() == first
    assert sources.read_kept(smoke_with_mynet) == sources.Sources(
        str(smoke_with_mynet / "sources-published.csv"), str(smoke_with_mynet / "sources-claims.toml"))
    report.write_report(smoke_with_mynet, smoke_with_mynet, claims="none")
    assert pd.read_csv(smoke_with_mynet / "claims.csv").empty


def test_the_choice_is_kept_in_the_results_folder_and_found_there_whatever_the_out_folder(smoke_with_mynet, own_files):
    table, claims = own_files
    first, later = smoke_with_mynet.parent / "first", smoke_with_mynet.parent / "later"
    assert cli.main(["report", "--results", str(smoke_with_mynet), "--out", str(first),
                     "--published", str(table), "--claims", str(claims)]) == 0
    assert not (first / Results.SOURCES).exists()
    assert sources.read_kept(smoke_with_mynet) == sources.Sources(
        str(smoke_with_mynet / "sources-published.csv"), str(smoke_with_mynet / "sources-claims.toml"))
    assert cli.main(["report", "--results", str(smoke_with_mynet), "--out", str(later)]) == 0
    for name in ("claims.csv", "verdicts.csv"):
        assert (later / name).read_text() == (first / name).read_text()


def test_records_of_an_unknown_profile_keeping_no_choice_are_judged_against_table_4_as_before(tmp_path):
    report.write_report(write_results(tmp_path, [run_record("mlp", 0.8, r) for r in range(2)]), tmp_path)
    assert set(pd.read_csv(tmp_path / "claims.csv")["claim"]) == TABLE4_IDS
    markdown = (tmp_path / "report.md").read_text()
    assert "Judged against" not in markdown and "(bench/assets/claims.toml: its words" in markdown


@pytest.mark.parametrize(("text", "message"), [
    ("model,dataset,value\nmynet,synthetic,90\n",
     ("my_table.csv: missing key 'metric'; accepted: model, dataset, metric, value, options, estimand, "
      "test_images, protocol, source, note. Received: no metric")),
    ("model,dataset,metric,value,colour\nmynet,synthetic,accuracy,90,red\n",
     ("my_table.csv: unknown key; accepted: model, dataset, metric, value, options, estimand, test_images, "
      "protocol, source, note. Received: 'colour'")),
    ("model,dataset,metric,value\nmynet,synthetic,accuracy,ninety\n",
     "my_table.csv line 2: value must be a number; accepted: e.g. 86.5. Received: value='ninety'"),
    ("model,dataset,metric,value,estimand\nmynet,synthetic,accuracy,90,average\n",
     ("my_table.csv line 2: mynet/synthetic: unknown estimand; accepted: best_epoch, last_epoch, mean, unknown. "
      "Received: estimand='average'")),
])
def test_a_bad_published_file_is_refused_in_one_line_naming_file_line_and_key(tmp_path, text, message):
    (tmp_path / "my_table.csv").write_text(text)
    with pytest.raises(ValueError) as error:
        load_published(tmp_path / "my_table.csv")
    assert str(error.value) == message


def test_a_missing_file_or_a_bad_report_key_is_refused_before_anything_runs(tmp_path, capsys):
    assert cli.main(["report", "--results", str(SMOKE), "--out", str(tmp_path), "--claims", "nowhere.toml"]) == 2
    assert capsys.readouterr().err == ("error: --claims: no such file; accepted: table4, none or the path of a claims "
                                       "file (docs/own-table.md). Received: 'nowhere.toml'\n")
    assert not (tmp_path / "report.md").exists()
    profile = write_profile(tmp_path / "mine.toml", report={"published": 4})
    with pytest.raises(ValueError, match=r"mine.toml: \[report\] takes published and claims"):
        config.load_profile(str(profile))


def test_a_users_profile_names_its_files_relative_to_itself(tmp_path, own_files):
    table, _ = own_files
    profile = write_profile(tmp_path / "mine.toml", report={"published": table.name, "claims": "none"})
    assert config.load_profile(str(profile)).report == {"published": str(table), "claims": "none"}


def test_until_ci_judges_a_cell_against_the_chosen_table(own_files):
    from bench.run import stopping

    table, _ = own_files
    reference = stopping.load_reference(sources.Sources(published=str(table)))
    assert reference.values.value("mynet", "synthetic", "accuracy") == 90.0
    assert reference.margins.default is None and not reference.margins.cells
    assert math.isnan(stopping.load_reference(sources.Sources()).values.value("cnn", "cifar10", "accuracy"))


def test_records_of_profiles_that_choose_differently_need_the_flags(tmp_path):
    records = [run_record("mlp", 0.8, 0, profile="smoke"), run_record("mlp", 0.8, 0, profile="quick")]
    with pytest.raises(ValueError, match=r"^the records' profiles name different published and claims files .*"
                                         r"accepted: choose with --published and --claims$"):
        report.write_report(write_results(tmp_path, records), tmp_path)
    report.write_report(tmp_path, tmp_path, published="none", claims="table4")
    assert set(pd.read_csv(tmp_path / "claims.csv")["claim"]) == TABLE4_IDS
