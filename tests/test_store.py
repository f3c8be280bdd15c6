"""Run records: round trips, atomic files, schema upgrades, loading into frames, foreign files."""
import json
import math


import models
from bench import store
from bench.store import RunRecord
from test_spec import tiny_spec


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
        model_family="baselines", environment={"python": "3.11", "threads_per_job": 1, "jobs_at_once": 2, "host": "h", "cpu_model": "c"},
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
    "binary.json": b"\x89PNG\r\n\x1a\n\x00\x00",
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


def test_a_version_1_record_reads_as_version_2_with_its_shape_classes_and_family():
    current = full_record().to_dict()
    old = {k: v for k, v in current.items() if k not in ("input_shape", "num_classes", "model_family")}
    upgraded = RunRecord.from_dict({**old, "schema_version": 1})
    spec = upgraded.spec
    assert upgraded.schema_version == store.SCHEMA_VERSION == 2
    assert upgraded.input_shape == (spec.preprocess.native_size, spec.preprocess.native_size, 3)
    assert upgraded.num_classes == spec.preprocess.num_classes and upgraded.model_family == models.family(spec.model)
