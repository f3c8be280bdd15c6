"""Run records: round trips, atomic files, schema upgrades, loading into frames, foreign files."""
import dataclasses
import json
import math
import os
import shutil
import threading
from pathlib import Path

import pytest
from helpers import script, tiny_spec

import models
from bench import config
from bench.data import kinds
from bench.records import store
from bench.records.phases import Phases
from bench.records.store import RunRecord

SHIPPED = Path(__file__).parents[1] / "results" / "table4-cpu"


def full_record() -> RunRecord:
    spec = tiny_spec()
    return RunRecord(
        run_id=spec.run_id, spec=spec, status="diverged", error="loss became nan in epoch 2",
        test_accuracy=0.1, test_loss=math.nan,
        history=[{"epoch": 1, "loss": 2.3, "accuracy": 0.1, "val_loss": 2.2, "val_accuracy": 0.12,
                  "train_seconds": 1.5, "eval_seconds": 0.1},
                 {"epoch": 2, "loss": math.nan, "accuracy": 0.1, "val_loss": math.nan, "val_accuracy": 0.1,
                  "train_seconds": 0.5, "eval_seconds": 0.1}],
        first_epoch_seconds=1.5, sec_per_epoch=0.5, images_per_second=200.0, build_seconds=0.3,
        params_total=1000, params_trainable=990, flops_per_image=2000, input_shape=(32, 32, 3), num_classes=10,
        model_family="baselines",
        phases=Phases(startup=3.2, data=0.4, data_cached=True, build=0.3, first_epoch=1.5, steady_training=0.5,
                      epoch_eval=0.2, run=3.1, write_exit=0.6, total=6.9, spawned_at=1735689600.25),
        environment={"python": "3.11", "threads_per_job": 1, "jobs_at_once": 2, "host": "h", "cpu_model": "c"},
        started_at="2025-01-01T00:00:00+00:00", finished_at="2025-01-01T00:00:09+00:00",
    )


def same(a: RunRecord, b: RunRecord) -> bool:
    """Equal, counting NaN equal to NaN (a diverged run's loss)."""
    return json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)


def test_a_record_survives_to_dict_from_dict_and_a_file_round_trip(tmp_path):
    record = full_record()
    assert same(RunRecord.from_dict(record.to_dict()), record)
    path = store.write_record(tmp_path, record)
    assert path == tmp_path / "runs" / f"{record.run_id}.json"
    assert same(store.read_record(path), record)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_the_store_loads_records_into_a_run_frame_and_an_epoch_frame(tmp_path):
    record = full_record()
    store.write_record(tmp_path, record)
    records, problems = store.load_records(tmp_path)
    runs, history = store.runs_frame(records), store.history_frame(records)
    assert list(runs.columns) == list(store.RUN_COLUMNS) and len(runs) == 1
    assert runs.loc[0, "model"] == record.spec.model and runs.loc[0, "jobs_at_once"] == 2
    assert list(history.columns) == list(store.HISTORY_COLUMNS) and list(history["epoch"]) == [1, 2]


FOREIGN = {
    "truncated.json": '{"run_id": "abc", "spec": {',
    "list.json": "[1, 2, 3]",
    "other_tool.json": '{"benchmarks": {"x": 1}}',
    "future.json": json.dumps({**full_record().to_dict(), "schema_version": 99}),
    "bad_status.json": json.dumps({**full_record().to_dict(), "status": "great"}),
    "bad_spec.json": json.dumps({**full_record().to_dict(), "spec": {"model": "mlp"}}),
    "bad_history.json": json.dumps({**full_record().to_dict(), "history": "none"}),
    "bad_number.json": json.dumps({**full_record().to_dict(), "test_accuracy": "high"}),
    "bad_phases.json": json.dumps({**full_record().to_dict(), "phases": {"total": "long"}}),
    "binary.json": b"\x89PNG\r\n\x1a\n\x00\x00",
    # edited by hand or by another tool
    "model_int.json": json.dumps({**full_record().to_dict(), "spec": {**tiny_spec().to_dict(), "model": 3}}),
    "seed_text.json": json.dumps({**full_record().to_dict(), "spec": {**tiny_spec().to_dict(), "seed": "0"}}),
    "preprocess_text.json": json.dumps({**full_record().to_dict(), "spec": {**tiny_spec().to_dict(), "preprocess": "x"}}),
    "ok_no_accuracy.json": json.dumps({**full_record().to_dict(), "status": "ok", "test_accuracy": None}),
    "run_id_number.json": json.dumps({**full_record().to_dict(), "run_id": 12}),
}


def test_a_corrupt_or_foreign_json_file_is_named_as_a_problem_and_skipped(tmp_path):
    store.write_record(tmp_path, full_record())
    for name, content in FOREIGN.items():
        path = tmp_path / "runs" / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    (tmp_path / "runs" / "folder.json").mkdir()
    records, problems = store.load_records(tmp_path)
    assert [r.run_id for r in records] == [full_record().run_id]
    messages = "\n".join(problems)
    for name in [*FOREIGN, "folder.json"]:
        assert str(tmp_path / "runs" / name) in messages
    assert len(store.runs_frame(records)) == 1 and len(store.history_frame(records)) == 2


def old_record(version: int) -> dict:
    """The full record as schema ``version`` wrote it: a spec without data_hash (spec version 2),
    and before version 2 without shape, classes and family; its run id that of the old spec."""
    current = full_record().to_dict()
    spec = {**{k: v for k, v in current["spec"].items() if k != "data_hash"}, "schema_version": 2}
    dropped = ("input_shape", "num_classes", "model_family") if version == 1 else ()
    old = {k: v for k, v in current.items() if k not in dropped}
    return {**old, "schema_version": version, "spec": spec, "run_id": "0123456789abcdef"}


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


@pytest.mark.research
@pytest.mark.usefixtures("canonical_data")
def test_the_shipped_records_upgraded_are_runs_of_the_table4_cpu_plan(canonical_data):
    """They ran on the canonical files; a plan on the canonical files at 10 repeats finds every one:
    the first campaign's 33 (schema 1, upgraded) and the n = 10 campaign's (schema 3)."""
    versions = {json.loads(path.read_text())["schema_version"] for path in store.runs_dir(SHIPPED).glob("*.json")}
    records, problems = store.load_records(SHIPPED)
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
    written = strict(store.write_record(tmp_path, record).read_text())
    assert written["test_loss"] is None and written["history"][1]["loss"] is None
    assert written["status"] == "diverged" and written["error"] == "loss became nan in epoch 2"
    assert store.read_record(store.record_path(tmp_path, record.run_id)).test_loss is None


def test_a_record_written_with_a_bare_nan_still_reads(tmp_path):
    path = store.record_path(tmp_path, full_record().run_id)
    path.parent.mkdir()
    path.write_text(json.dumps({**full_record().to_dict(), "test_loss": math.nan}))
    assert "NaN" in path.read_text()
    assert math.isnan(store.read_record(path).test_loss)


def test_a_record_copied_under_another_name_counts_once(tmp_path):
    path = store.write_record(tmp_path, full_record())
    shutil.copy(path, path.with_name("copy of it.json"))
    shutil.copy(path, path.with_name("0000.json"))
    records, problems = store.load_records(tmp_path)
    assert [r.run_id for r in records] == [full_record().run_id]
    assert sorted(problems) == sorted(f"{path.with_name(name)}: the same record as {path}; counted once"
                                      for name in ("copy of it.json", "0000.json"))


def test_a_fifo_named_json_is_skipped_not_waited_on(tmp_path):
    store.write_record(tmp_path, full_record())
    os.mkfifo(tmp_path / "runs" / "pipe.json")
    loaded = []
    reader = threading.Thread(target=lambda: loaded.append(store.load_records(tmp_path)), daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert loaded, "load_records hung on a FIFO"
    records, problems = loaded[0]
    assert len(records) == 1 and problems == [f"{tmp_path / 'runs' / 'pipe.json'}: a FIFO, not a record file; skipped"]


def test_a_record_written_before_phases_were_timed_reads_with_none():
    older = {k: v for k, v in full_record().to_dict().items() if k != "phases"}
    assert RunRecord.from_dict(older).phases is None


# ---------------------------------------------------------------- a campaign's records into main


def test_sync_copies_finished_records_with_their_files_never_a_run_in_flight(tmp_path, capsys):
    sync_results = script("sync_results")
    source, target = tmp_path / "campaign", tmp_path / "main"
    finished = dataclasses.replace(full_record(), files={"log": "logs/a.log", "history": "history/a.csv",
                                                         "tensorboard": "tensorboard/a"})  # never written
    store.write_record(source, finished)
    (source / "logs").mkdir()
    (source / "history").mkdir()
    (source / "logs" / "a.log").write_text("a finished run's log\n")
    (source / "history" / "a.csv").write_text("epoch,loss\n1,2.3\n")
    (source / "logs" / "b.log").write_text("a run in flight: no record yet\n")
    (store.runs_dir(source) / "broken.json").write_text("{not json")
    assert sync_results.main(str(source), str(target)) == 0
    err = capsys.readouterr().err
    assert f"not copied: {store.runs_dir(source) / 'broken.json'}: " in err
    assert f"{finished.run_id}.json names tensorboard/a, which {source} lacks: the record is copied without it" in err
    assert sorted(str(p.relative_to(target)) for folder in ("history", "logs", "runs") for p in (target / folder).iterdir()
                  ) == ["history/a.csv", "logs/a.log", f"runs/{finished.run_id}.json"]
    assert (target / "runs" / f"{finished.run_id}.json").read_bytes() == store.record_path(source, finished.run_id).read_bytes()
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
    assert store.read_record(store.write_record(tmp_path, at_chance)).learned_nothing
    assert "learned_nothing" not in at_chance.to_dict()  # told from the outcome, so records of any version say it
    assert not dataclasses.replace(at_chance, test_loss=2.0).learned_nothing  # a better loss than a guess: learning
    assert not dataclasses.replace(at_chance, status="failed").learned_nothing


def test_an_older_record_diverged_for_learning_nothing_reads_as_an_ok_run_with_the_flag(tmp_path):
    spec = tiny_spec()
    older = RunRecord(run_id=spec.run_id, spec=spec, status="diverged", test_accuracy=0.1, test_loss=2.3026, num_classes=10,
                      error="learned nothing: test accuracy 0.1000 is chance (at most 1.5/10) with a test loss of "
                            "2.303, no better than a uniform guess's log(10) = 2.303")
    record = store.read_record(store.write_record(tmp_path, older))
    assert (record.status, record.error, record.learned_nothing, record.test_accuracy) == ("ok", None, True, 0.1)
    nan = dataclasses.replace(older, error="loss became nan in epoch 1")
    assert store.read_record(store.write_record(tmp_path, nan)).status == "diverged"  # a NaN loss still diverged
