"""A results folder (``bench.records.results.Results``): the names of its tree, writing a record and
reading it back, iterating its records with older ones upgraded and foreign files named, its sources file."""
import json
import os
import re
import shutil
import threading

import pytest
from helpers import full_record, old_record, same, tiny_spec

from bench.records import store
from bench.records.results import Results


def test_a_results_folder_names_its_records_run_files_checkpoints_lock_and_sources(tmp_path):
    results = Results(str(tmp_path))
    assert results.folder == tmp_path and results.runs == tmp_path / "runs"
    assert results.record_path("0123456789abcdef") == tmp_path / "runs" / "0123456789abcdef.json"
    assert {kind: results.file(kind, "mlp-cifar10-seed0") for kind in Results.KINDS} == {
        "log": tmp_path / "logs" / "mlp-cifar10-seed0.log", "history": tmp_path / "history" / "mlp-cifar10-seed0.csv",
        "tensorboard": tmp_path / "tensorboard" / "mlp-cifar10-seed0",
        "weights": tmp_path / "weights" / "mlp-cifar10-seed0.weights.h5"}
    assert results.checkpoint("0123456789abcdef") == tmp_path / "checkpoints" / "0123456789abcdef"
    assert (results.lock, results.sources) == (tmp_path / ".run.lock", tmp_path / "sources.toml")
    assert [results.source_copy(kind) for kind in ("published", "claims")] == [
        tmp_path / "sources-published.csv", tmp_path / "sources-claims.toml"]


def test_a_record_written_reads_back_the_same_from_its_file_and_from_the_folder(tmp_path):
    record = full_record()
    path = Results(tmp_path).write(record)
    assert path == tmp_path / "runs" / f"{record.run_id}.json"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    assert same(store.read_record(path), record) and same(Results(tmp_path).record(record.run_id), record)
    (read,), problems = Results(tmp_path).records()
    assert same(read, record) and problems == []


def test_a_run_with_no_record_is_refused_naming_the_run_and_the_folder(tmp_path):
    with pytest.raises(ValueError, match=re.escape(f"no record of run 0123456789abcdef in {tmp_path / 'runs'}.")):
        Results(tmp_path).record("0123456789abcdef")


def test_a_folder_without_runs_has_no_records_and_no_problems(tmp_path):
    assert Results(tmp_path / "nothing").records() == ([], [])


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_record_in_the_folder_reads_upgraded_to_the_current_schema(tmp_path, version):
    Results(tmp_path).runs.mkdir()
    Results(tmp_path).record_path("0123456789abcdef").write_text(json.dumps(old_record(version)))
    (record,), problems = Results(tmp_path).records()
    assert record.schema_version == store.SCHEMA_VERSION and record.spec.data_hash and problems == []
    assert record.run_id == record.spec.run_id != "0123456789abcdef"  # the run id of its upgraded spec


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
    Results(tmp_path).write(full_record())
    for name, content in FOREIGN.items():
        path = tmp_path / "runs" / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    (tmp_path / "runs" / "folder.json").mkdir()
    records, problems = Results(tmp_path).records()
    assert [r.run_id for r in records] == [full_record().run_id]
    messages = "\n".join(problems)
    for name in [*FOREIGN, "folder.json"]:
        assert str(tmp_path / "runs" / name) in messages
    assert len(store.runs_frame(records)) == 1 and len(store.history_frame(records)) == 2




def test_a_record_copied_under_another_name_counts_once(tmp_path):
    path = Results(tmp_path).write(full_record())
    shutil.copy(path, path.with_name("copy of it.json"))
    shutil.copy(path, path.with_name("0000.json"))
    records, problems = Results(tmp_path).records()
    assert [r.run_id for r in records] == [full_record().run_id]
    assert sorted(problems) == sorted(f"{path.with_name(name)}: the same record as {path}; counted once"
                                      for name in ("copy of it.json", "0000.json"))


def test_a_fifo_named_json_is_skipped_not_waited_on(tmp_path):
    Results(tmp_path).write(full_record())
    os.mkfifo(tmp_path / "runs" / "pipe.json")
    loaded = []
    reader = threading.Thread(target=lambda: loaded.append(Results(tmp_path).records()), daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert loaded, "records() hung on a FIFO"
    records, problems = loaded[0]
    assert len(records) == 1 and problems == [f"{tmp_path / 'runs' / 'pipe.json'}: a FIFO, not a record file; skipped"]


def test_the_sources_file_is_none_until_kept_and_keeping_the_same_again_writes_nothing(tmp_path):
    results, text, copies = Results(tmp_path), 'published = "table4"\n', {"claims": b"[[claim]]\n"}
    assert results.read_sources() is None
    results.keep_sources(text, copies)
    assert (results.read_sources(), results.source_copy("claims").read_bytes()) == (text, b"[[claim]]\n")
    kept = (results.sources, results.source_copy("claims"))
    for path in kept:
        os.utime(path, ns=(1, 1))
    results.keep_sources(text, copies)
    assert [path.stat().st_mtime_ns for path in kept] == [1, 1]


def test_the_checkpoints_folder_goes_once_empty_and_stays_while_a_run_has_one(tmp_path):
    results = Results(tmp_path)
    for run_id in ("a", "b"):
        results.checkpoint(run_id).mkdir(parents=True)
    results.remove_checkpoint("a")
    results.remove_empty_checkpoints()
    assert [p.name for p in (tmp_path / Results.CHECKPOINTS).iterdir()] == ["b"]
    results.remove_checkpoint("b")
    results.remove_empty_checkpoints()
    assert not (tmp_path / Results.CHECKPOINTS).exists()
    results.remove_empty_checkpoints()  # absent: nothing to do
