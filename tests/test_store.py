"""Run records: round trips, schema upgrades, strict JSON, loading into frames, a campaign's records synced."""
import dataclasses
import json
import math
from pathlib import Path

import pytest
from helpers import full_record, old_record, same, script, tiny_spec

import models
from bench import config
from bench.data import kinds
from bench.records import store
from bench.records.results import Results
from bench.records.store import RunRecord

SHIPPED = Path(__file__).parents[1] / "results" / "table4-cpu"


def test_a_record_survives_to_dict_and_from_dict():
    record = full_record()
    assert same(RunRecord.from_dict(record.to_dict()), record)


def test_the_store_loads_records_into_a_run_frame_and_an_epoch_frame(tmp_path):
    record = full_record()
    Results(tmp_path).write(record)
    records, problems = Results(tmp_path).records()
    runs, history = store.runs_frame(records), store.history_frame(records)
    assert list(runs.columns) == list(store.RUN_COLUMNS) and len(runs) == 1
    assert runs.loc[0, "model"] == record.spec.model and runs.loc[0, "jobs_at_once"] == 2
    assert list(history.columns) == list(store.HISTORY_COLUMNS) and list(history["epoch"]) == [1, 2]


def test_a_version_1_record_reads_as_the_current_version_with_its_shape_classes_and_family():
    upgraded = RunRecord.from_dict(old_record(1))
    spec = upgraded.spec
    assert upgraded.schema_version == store.SCHEMA_VERSION == 4
    assert upgraded.input_shape == (spec.preprocess.native_size, spec.preprocess.native_size, 3)
    assert upgraded.num_classes == spec.preprocess.num_classes and upgraded.model_family == models.family(spec.model)


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_record_gets_its_datas_hash_and_the_run_id_of_its_upgraded_spec(version):
    upgraded = RunRecord.from_dict(old_record(version))
    assert upgraded.spec.data_hash == kinds.SYNTHETIC_BEFORE_HASHES  # the generator of its day, not today's
    then = dataclasses.replace(full_record().spec, data_hash=kinds.SYNTHETIC_BEFORE_HASHES)
    assert upgraded.run_id == upgraded.spec.run_id == then.run_id
    assert same(upgraded, dataclasses.replace(full_record(), run_id=then.run_id, spec=then))


@pytest.mark.slow
@pytest.mark.research
@pytest.mark.usefixtures("canonical_data")
def test_the_shipped_records_upgraded_are_runs_of_the_table4_cpu_plan(canonical_data):
    """They ran on the canonical files; a plan on the canonical files at 10 repeats finds every one:
    the first campaign's 33 (schema 1, upgraded) and the n = 10 campaign's (schema 3)."""
    versions = {json.loads(path.read_text())["schema_version"] for path in Results(SHIPPED).runs.glob("*.json")}
    records, problems = Results(SHIPPED).records()
    plan = {spec.run_id for spec in config.load_profile("table4-cpu", overrides={"run.repeats": 10}).specs()}
    assert versions <= {1, 3} and not problems and 33 <= len(records) <= len(plan)
    assert {r.spec.data_hash for r in records} == {kinds.CANONICAL_HASHES[d] for d in ("fashion_mnist", "cifar10")}
    assert {r.run_id for r in records} <= plan


# ---------------------------------------------------------------- strict JSON, one observation per run


def strict(text: str):
    """JSON as a strict parser reads it: NaN and Infinity are not JSON."""
    return json.loads(text, parse_constant=lambda word: pytest.fail(f"not strict JSON: {word}"))


def test_a_diverged_record_is_strict_json_with_null_for_nan_and_the_status_saying_why(tmp_path):
    record = dataclasses.replace(full_record(), test_loss=math.inf)
    written = strict(Results(tmp_path).write(record).read_text())
    assert written["test_loss"] is None and written["history"][1]["loss"] is None
    assert written["status"] == "diverged" and written["error"] == "loss became nan in epoch 2"
    assert store.read_record(Results(tmp_path).record_path(record.run_id)).test_loss is None


def test_a_record_written_with_a_bare_nan_still_reads(tmp_path):
    path = Results(tmp_path).record_path(full_record().run_id)
    path.parent.mkdir()
    path.write_text(json.dumps({**full_record().to_dict(), "test_loss": math.nan}))
    assert "NaN" in path.read_text()
    assert math.isnan(store.read_record(path).test_loss)


def test_a_record_written_before_phases_were_timed_reads_with_none():
    older = {k: v for k, v in full_record().to_dict().items() if k != "phases"}
    assert RunRecord.from_dict(older).phases is None


# ---------------------------------------------------------------- a campaign's records into main


def test_sync_copies_finished_records_with_their_files_never_a_run_in_flight(tmp_path, capsys):
    sync_results = script("sync_results")
    source, target = tmp_path / "campaign", tmp_path / "main"
    finished = dataclasses.replace(full_record(), files={"log": "logs/a.log", "history": "history/a.csv",
                                                         "tensorboard": "tensorboard/a"})  # never written
    Results(source).write(finished)
    (source / "logs").mkdir()
    (source / "history").mkdir()
    (source / "logs" / "a.log").write_text("a finished run's log\n")
    (source / "history" / "a.csv").write_text("epoch,loss\n1,2.3\n")
    (source / "logs" / "b.log").write_text("a run in flight: no record yet\n")
    (Results(source).runs / "broken.json").write_text("{not json")
    assert sync_results.main(str(source), str(target)) == 0
    err = capsys.readouterr().err
    assert f"not copied: {Results(source).runs / 'broken.json'}: " in err
    assert f"{finished.run_id}.json names tensorboard/a, which {source} lacks: the record is copied without it" in err
    assert sorted(str(p.relative_to(target)) for folder in ("history", "logs", "runs") for p in (target / folder).iterdir()
                  ) == ["history/a.csv", "logs/a.log", f"runs/{finished.run_id}.json"]
    assert (target / "runs" / f"{finished.run_id}.json").read_bytes() == Results(source).record_path(finished.run_id).read_bytes()
    assert (target / "report.md").exists()
    assert sync_results.copy_finished(source, target) == []  # a second sync copies nothing


def test_sync_refuses_a_folder_with_no_runs_in_one_line(tmp_path, capsys):
    assert script("sync_results").main(str(tmp_path / "nowhere"), str(tmp_path / "main")) == 2
    assert capsys.readouterr().err == (f"sync_results: {tmp_path / 'nowhere'} has no runs/ folder; "
                                       "accepted: a results folder that bench run wrote\n")
    assert not (tmp_path / "main").exists()


def test_an_ok_run_at_chance_with_a_uniform_guess_loss_learned_nothing_by_its_outcome_alone(tmp_path):
    spec = tiny_spec()
    at_chance = RunRecord(run_id=spec.run_id, spec=spec, status="ok", test_accuracy=0.1, test_loss=2.3026, num_classes=10)
    assert store.read_record(Results(tmp_path).write(at_chance)).learned_nothing
    assert "learned_nothing" not in at_chance.to_dict()  # told from the outcome, so records of any version say it
    assert not dataclasses.replace(at_chance, test_loss=2.0).learned_nothing  # a better loss than a guess: learning
    assert not dataclasses.replace(at_chance, status="failed").learned_nothing


def test_an_older_record_diverged_for_learning_nothing_reads_as_an_ok_run_with_the_flag(tmp_path):
    spec = tiny_spec()
    older = RunRecord(run_id=spec.run_id, spec=spec, status="diverged", test_accuracy=0.1, test_loss=2.3026, num_classes=10,
                      error="learned nothing: test accuracy 0.1000 is chance (at most 1.5/10) with a test loss of "
                            "2.303, no better than a uniform guess's log(10) = 2.303")
    record = store.read_record(Results(tmp_path).write(older))
    assert (record.status, record.error, record.learned_nothing, record.test_accuracy) == ("ok", None, True, 0.1)
    nan = dataclasses.replace(older, error="loss became nan in epoch 1")
    assert store.read_record(Results(tmp_path).write(nan)).status == "diverged"  # a NaN loss still diverged
