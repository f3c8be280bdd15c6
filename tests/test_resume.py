"""Runs that outlive their process (issue 30): a run interrupted after an epoch resumes from its
checkpoint and ends as if it never stopped, driven as a user drives it (``python -m bench run``).

The profile is an MLP on 32x32 synthetic images, 10,000 training images at batch 16: epochs of
a second or two, long enough to catch a run between its first and second checkpoint. A model
with batch norm, dropout and augmentation resumes bit for bit too (``train.run`` in this process).
"""
import dataclasses
import json
import shutil
import signal
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import (
    bench_run,
    bench_workers,
    records,
    run_cli,
    started,
    wait_for,
    write_profile,
)

from bench import config
from bench.data import cache
from bench.records import runfiles
from bench.records.results import Results
from bench.run import train

pytestmark = pytest.mark.slow
RUN = {"repeats": 1, "batch_size": 16}
SECTIONS = {"preprocess": {"native_size": 32, "channels": 3, "train_per_class": 1000}}
SAME = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")  # of each epoch; not its seconds


def profile(folder: Path) -> Path:
    return write_profile(folder / "resume.toml", RUN, **SECTIONS)


def weights(path: Path) -> dict[str, np.ndarray]:
    """Every array of a .weights.h5 file."""
    found = {}
    with h5py.File(path) as file:
        file.visititems(lambda name, item: found.update({name: np.asarray(item[()])})
                        if isinstance(item, h5py.Dataset) else None)
    return found


def measured(results: Path) -> dict:
    """The one record's test accuracy and loss, and each epoch's losses and accuracies."""
    (record,) = records(results).values()
    assert record.status == "ok", record.error
    return {"test_accuracy": record.test_accuracy, "test_loss": record.test_loss,
            "history": [{key: epoch[key] for key in SAME} for epoch in record.history]}


def checkpoints(results: Path) -> list[str]:
    folder = results / Results.CHECKPOINTS
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The run, never stopped, with --save-weights (which keeps its checkpoint)."""
    folder = tmp_path_factory.mktemp("whole")
    results = folder / "results"
    done = run_cli(bench_run(profile(folder), results, "--save-weights"), folder)
    assert done.returncode == 0, done.stderr
    (record,) = records(results).values()
    assert [s["epochs"] for s in record.segments] == [[1, 3]]
    assert checkpoints(results) == [record.run_id]  # kept with --save-weights
    return {"measured": measured(results), "weights": weights(results / record.files["weights"]),
            "checkpoint": Results(results).checkpoint(record.run_id)}


def stop_after_epoch_1(command: list[str], folder: Path, victim: str) -> str:
    """Start the run, freeze its worker as its first checkpoint appears, then end it: SIGTERM to
    the runner or SIGKILL to the worker. Returns the runner's stdout."""
    results = Path(command[command.index("--results") + 1])
    with started(command, folder) as (process, _tree):
        state = wait_for(lambda: next(results.glob("checkpoints/*/state.json"), None), "the first checkpoint")
        (worker,) = bench_workers(process.pid)
        worker.suspend()
        assert json.loads(state.read_text())["epoch"] == 1, "the run outran the test: make its epochs longer"
        if victim == "runner":
            process.send_signal(signal.SIGTERM)
            worker.resume()  # to die of the runner's end
        else:
            worker.kill()
        out, _ = process.communicate(timeout=300)
    assert not records(results), "an interrupted run is not recorded"
    return out


@pytest.mark.parametrize("victim", ["runner", "worker"], ids=["SIGTERM-runner", "SIGKILL-worker"])
def test_a_run_stopped_after_epoch_1_resumes_at_epoch_2_and_ends_as_if_it_never_stopped(whole, tmp_path, victim):
    command = bench_run(profile(tmp_path), tmp_path / "results", "--save-weights")
    stop_after_epoch_1(command, tmp_path, victim)

    again = run_cli(command, tmp_path)
    assert again.returncode == 0, again.stderr
    (record,) = records(tmp_path / "results").values()
    log = (tmp_path / "results" / record.files["log"]).read_text()
    begun = [event["epoch"] for event in runfiles.read_events(log) if event["event"] == "epoch_begin"]
    assert begun == [2, 3]  # the log is the last segment's
    assert [s["epochs"] for s in record.segments] == [[1, 1], [2, 3]]
    assert all(s["machine"] and s["host"] and s["started_at"] <= s["finished_at"] for s in record.segments)
    assert record.started_at == record.segments[0]["started_at"]
    assert measured(tmp_path / "results") == whole["measured"]  # bit for bit
    resumed = weights(tmp_path / "results" / record.files["weights"])
    assert resumed.keys() == whole["weights"].keys()
    for name, values in resumed.items():
        assert np.array_equal(values, whole["weights"][name]), name


@pytest.mark.parametrize("damage", ["unreadable", "another run's"])
def test_an_unusable_checkpoint_is_set_aside_with_one_warning_and_the_run_starts_again(whole, tmp_path, damage):
    """And the finished run leaves no checkpoint of its own (without --save-weights)."""
    results, own = tmp_path / "results", profile(tmp_path)
    (run_id,) = {spec.run_id for spec in config.load_profile(str(own)).specs()}
    folder = Results(results).checkpoint(run_id)
    shutil.copytree(whole["checkpoint"], folder)  # the same run's, after its epoch 2
    state = json.loads((folder / "state.json").read_text())
    if damage == "unreadable":
        (folder / state["weights"]).write_bytes(b"not HDF5")
    else:
        state["spec"]["seed"] = 7
        (folder / "state.json").write_text(json.dumps(state))

    done = run_cli(bench_run(own, results), tmp_path)
    assert done.returncode == 0, done.stderr
    (record,) = records(results).values()
    log = (results / record.files["log"]).read_text()
    warnings = [line for line in log.splitlines() if line.startswith("warning: ")]  # not TensorFlow's
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: checkpoint {folder} set aside as {run_id}.unusable")
    assert warnings[0].endswith("the run starts again from epoch 1")
    assert [s["epochs"] for s in record.segments] == [[1, 3]]
    assert measured(results) == whole["measured"]  # started again: bit for bit
    assert checkpoints(results) == [f"{run_id}.unusable"]  # set aside; the finished run's own is gone


def test_a_model_with_batch_norm_dropout_and_augmentation_resumed_after_epoch_2_ends_bit_for_bit_equal(
        tmp_path, monkeypatch):
    """MobileNet under the smoke profile (flip, brightness, contrast, hue, saturation), both runs
    in one process: its dropout's seed generators are named by a count of the process's, and
    the checkpoint finds them all the same."""
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    (spec,) = config.load_profile("smoke", overrides={"run.models": ["mobilenet"], "run.repeats": 1}).specs()
    spec = dataclasses.replace(spec, epochs=3)
    folder = tmp_path / "checkpoint"
    whole = train.run(spec, checkpoint=folder, weights=tmp_path / "whole.weights.h5")
    assert json.loads((folder / "state.json").read_text())["epoch"] == 2  # the last epoch saves none

    resumed = train.run(spec, checkpoint=folder, weights=tmp_path / "resumed.weights.h5")

    assert [s["epochs"] for s in resumed.segments] == [[1, 2], [3, 3]]
    assert (resumed.test_accuracy, resumed.test_loss) == (whole.test_accuracy, whole.test_loss)
    assert [{key: e[key] for key in SAME} for e in resumed.history] == [{key: e[key] for key in SAME}
                                                                       for e in whole.history]
    ours, theirs = weights(tmp_path / "resumed.weights.h5"), weights(tmp_path / "whole.weights.h5")
    assert ours.keys() == theirs.keys()
    assert all(np.array_equal(values, theirs[name]) for name, values in ours.items())
