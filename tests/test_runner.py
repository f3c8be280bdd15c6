"""The runner (issue 4), driven as a user drives it: ``python -m bench run`` in a subprocess.

Each test writes its own tiny profile into tmp_path (an MLP on 8x8 synthetic images, 100
training images) and uses a private dataset cache, so a run costs a few seconds, most of
them TensorFlow starting in the worker. The faults are real: SIGINT, SIGTERM, SIGHUP and
SIGKILL to the runner, SIGKILL to a worker and to a loky worker, SIGINT to a worker at
once after its start, a second runner on the same folder, a timeout, a diverging learning
rate, corrupt files, a folder that cannot be written, a full disk. Every test runs with a
temporary directory of its module's own, which must be empty after each test: nothing a
benchmark starts may leave a file there, however it ends.
"""
import concurrent.futures
import dataclasses
import errno
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pandas as pd
import psutil
import pytest
from helpers import (
    PATIENCE,
    TINY_TRAIN_IMAGES,
    assert_only_whole_records,
    bench_run,
    bench_workers,
    descendants,
    expected_ids,
    fake_record,
    living,
    progress_lines,
    records,
    run_cli,
    snapshot,
    started,
    wait_for,
    write_profile,
)

from bench import cli, config
from bench.data import cache
from bench.records import runfiles, store
from bench.records.phases import SPAWNED_ENV
from bench.records.results import Results
from bench.records.store import RunRecord
from bench.run import runner, scratch
from bench.spec import RunSpec
from bench.speedups.process import ONEDNN_ENV

# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module", autouse=True)
def runners_cache(tmp_path_factory):
    """A dataset cache of this module's own, inherited by every runner it starts."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(cache.CACHE_DIR_ENV, str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module", autouse=True)
def private_tmp(tmp_path_factory):
    """A temporary directory of this module's own, for the runners it starts and for this process."""
    folder = tmp_path_factory.mktemp("tmp")  # first: pytest's own base folder is not to move into it
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(folder))
        patch.setattr(tempfile, "tempdir", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def leaves_nothing_behind(private_tmp):
    """After each test, nothing is left in the temporary directory."""
    yield
    assert sorted(p.name for p in private_tmp.iterdir()) == []


# ---------------------------------------------------------------- a finished benchmark


def loky_workers(pid: int) -> list[psutil.Process]:
    """The loky worker processes of a runner (``python -m ...popen_loky_posix --process-name LokyProcess-N``)."""
    found = []
    for process in living(descendants(pid)):
        try:
            if any(arg.startswith("LokyProcess-") for arg in process.cmdline()):
                found.append(process)
        except psutil.Error:
            pass
    return found


def run_watching_the_pool(command: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, int]:
    """Run a runner to its end; its outcome, and the most loky workers it had at once."""
    with started(command, cwd) as (process, tree):
        pool = 0
        while process.poll() is None:
            pool = max(pool, len(loky_workers(process.pid)))
            time.sleep(0.1)
        out, err = process.communicate(timeout=PATIENCE)
    return subprocess.CompletedProcess(command, process.returncode, out, err), pool


@pytest.fixture(scope="module")
def finished(runners_cache, tmp_path_factory):
    """The tiny profile run once through the command line, 2 runs, --jobs 16 (so 2 at once)."""
    folder = tmp_path_factory.mktemp("finished")
    profile = write_profile(folder / "tiny.toml")
    command = bench_run(profile, folder / "results", "--jobs", "16")
    done, pool = run_watching_the_pool(command, folder)
    assert done.returncode == 0, done.stderr
    return {"folder": folder, "profile": profile, "results": folder / "results", "command": command, "done": done,
            "pool": pool}


SPEC_FIELDS = ("profile", "model", "model_options", "dataset", "preprocess", "recipe", "repeat", "seed", "epochs",
               "batch_size", "optimizer")
EPOCH_FIELDS = ("loss", "accuracy", "val_loss", "val_accuracy", "train_seconds", "eval_seconds")
ENVIRONMENT_FIELDS = ("python", "tensorflow", "keras", "numpy", "cpu_model", "cpu_flags", "gpu", "device",
                      "threads_per_job", "jobs_at_once", "host", "git_commit")


@pytest.mark.slow
def test_a_run_writes_one_complete_record_per_run(finished):
    results, profile = finished["results"], finished["profile"]
    found = records(results)
    assert set(found) == expected_ids(profile)
    assert sorted(p.name for p in Results(results).runs.iterdir()) == sorted(f"{i}.json" for i in found)
    for run_id, record in found.items():
        spec = record.spec
        assert all(key in spec.to_dict() for key in SPEC_FIELDS)
        assert (spec.profile, spec.model, spec.dataset, spec.epochs) == ("tiny", "mlp", "synthetic", 3)
        assert spec.seed == spec.repeat and spec.preprocess.native_size == 8
        assert record.status == "ok" and record.error is None
        assert 0.0 <= record.test_accuracy <= 1.0 and 0.0 < record.test_loss < 100
        history = record.history
        assert [epoch["epoch"] for epoch in history] == [1, 2, 3]
        assert all(set(EPOCH_FIELDS) <= set(epoch) for epoch in history)
        assert all(epoch["train_seconds"] > 0 and epoch["eval_seconds"] > 0 for epoch in history)
        train_seconds = [epoch["train_seconds"] for epoch in history]
        assert record.test_accuracy == history[-1]["val_accuracy"]  # the final epoch, never the best
        assert record.test_loss == history[-1]["val_loss"]
        assert record.first_epoch_seconds == train_seconds[0]
        assert record.sec_per_epoch == statistics.median(train_seconds[1:])
        assert record.images_per_second == pytest.approx(TINY_TRAIN_IMAGES / record.sec_per_epoch)
        assert record.params_total >= record.params_trainable > 0
        assert record.flops_per_image > 0 and record.build_seconds > 0
        environment = record.environment
        assert all(key in environment for key in ENVIRONMENT_FIELDS)
        # the runs seen at once on the machine: these two, and any other runner's
        assert environment["threads_per_job"] == 1 and environment["jobs_at_once"] >= 2
        assert environment["gpu"] is None and environment["device"] == "CPU"
        assert environment["tensorflow"] and environment["host"]
        started, ended = (datetime.fromisoformat(t) for t in (record.started_at, record.finished_at))
        assert started <= ended
        phases = record.phases  # every phase timed; none is asserted on the clock but their sum
        assert None not in (phases.startup, phases.data, phases.build, phases.epoch_eval, phases.write_exit)
        assert phases.final_eval is None and phases.data_cached  # the runner loaded the data first
        assert phases.first_epoch == train_seconds[0] and phases.steady_training == sum(train_seconds[1:])
        assert phases.startup + phases.run + phases.write_exit == pytest.approx(phases.total)
        assert phases.spawned_at is not None


@pytest.mark.slow
def test_every_recorded_run_keeps_its_worker_log_and_history_under_its_name(finished):
    results = finished["results"]
    for record in records(results).values():
        name = f"mlp-synthetic-seed{record.spec.seed}"
        assert record.files == {"log": f"logs/{name}.log", "history": f"history/{name}.csv"}
        log = (results / record.files["log"]).read_text()
        assert "Epoch 3/3" in log and "worker: ok" in log
        epochs = [e for e in runfiles.read_events(log) if e["event"] == "epoch"]
        assert [{k: e[k] for k in record.history[0]} for e in epochs] == record.history  # the record's epochs
        history = pd.read_csv(results / record.files["history"])
        assert [pytest.approx(epoch) for epoch in history.to_dict("records")] == record.history


@pytest.mark.slow
def test_progress_says_model_dataset_seed_status_accuracy_speed_count_and_eta(finished):
    stdout = finished["done"].stdout  # a pipe, not a terminal: plain lines
    lines = progress_lines(stdout)
    assert len(lines) == 2, stdout
    pattern = (r"\[(?P<count>[12])/2\] mlp +synthetic +seed (?P<seed>[01]): ok +(?P<acc>\d+\.\d) % +"
               r"(?P<speed>\d+\.\d) s/epoch +ETA \d+:\d\d:\d\d")
    matches = [re.match(pattern, line) for line in lines]
    assert all(matches), lines
    assert [m["count"] for m in matches] == ["1", "2"] and {m["seed"] for m in matches} == {"0", "1"}
    assert lines[-1].endswith("ETA 0:00:00")
    assert "plan: 2 runs, 0 already recorded, 2 to run (2 jobs x 1 threads, loky)" in stdout
    epochs = [line for line in stdout.splitlines() if line.startswith("[epoch ")]
    assert sorted(line.split(":")[0] for line in epochs) == sorted(
        f"[epoch {e}/3] mlp synthetic seed {s}" for e in (1, 2, 3) for s in (0, 1))  # one line per epoch
    starts = sorted(line for line in stdout.splitlines() if line.startswith("[start] "))
    assert starts == [f"[start] mlp synthetic seed {s}: epoch 1/3" for s in (0, 1)]  # one as each run's first begins
    efficiency = stdout.splitlines()[-2]  # the runner's last line, before the command's "done"
    assert re.fullmatch(r"efficiency: \d+ % = 0:\d\d:\d\d of runs / \(2 jobs x 0:\d\d:\d\d from the first run's "
                        r"start to the last one's end\)", efficiency), efficiency
    invocations = {record.environment["invocation"] for record in records(finished["results"]).values()}
    assert len(invocations) == 1


@pytest.mark.slow
def test_jobs_are_capped_at_the_runs_to_run(finished):
    """--jobs 16 for 2 runs starts 2 loky workers, not 16."""
    assert "(2 jobs x 1 threads, loky)" in finished["done"].stdout
    assert finished["pool"] == 2


@pytest.mark.slow
def test_two_runners_sharing_the_machine_record_the_runs_they_ran_together(tmp_path):
    profile = write_profile(tmp_path / "tiny.toml", {"repeats": 1})
    commands = [bench_run(profile, tmp_path / name, "--jobs", "1") for name in ("first", "second")]
    with started(commands[0], tmp_path) as (first, _), started(commands[1], tmp_path) as (second, _):
        for process in (first, second):
            process.communicate(timeout=PATIENCE)
            assert process.returncode == 0
    for name in ("first", "second"):
        (record,) = records(tmp_path / name).values()
        assert record.environment["jobs_at_once"] >= 2  # each runner runs 1 at once; the machine ran 2


@pytest.mark.slow
def test_the_store_loads_the_results_into_a_run_frame_and_an_epoch_frame(finished):
    found = Results(finished["results"]).records()[0]
    runs, history = store.runs_frame(found), store.history_frame(found)
    assert len(runs) == 2 and set(runs["status"]) == {"ok"} and runs["config_key"].nunique() == 1
    assert len(history) == 6 and sorted(history["epoch"].unique()) == [1, 2, 3]


@pytest.mark.slow
def test_a_second_identical_invocation_trains_and_writes_nothing(finished):
    before = snapshot(finished["results"])
    again = run_cli(finished["command"], finished["folder"])
    assert again.returncode == 0, again.stderr
    assert "plan: 2 runs, 2 already recorded, 0 to run" in again.stdout
    assert progress_lines(again.stdout) == []
    assert "done: 0 runs this time" in again.stdout
    assert snapshot(finished["results"]) == before


@pytest.mark.slow
def test_a_corrupt_or_foreign_json_in_runs_is_named_in_a_warning_and_never_stops_a_run(finished, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(finished["results"], results)
    strays = {"truncated.json": '{"run_id": "1234", "status": "ok", "spec": {"mod',
              "package.json": '{"name": "left-pad", "version": "1.3.0"}'}
    for name, text in strays.items():
        (results / "runs" / name).write_text(text)
    before = snapshot(results)
    again = run_cli(bench_run(finished["profile"], results, "--jobs", "2"), tmp_path)
    assert again.returncode == 0, again.stderr
    for name in strays:
        assert f"warning: skipping unreadable record {results / 'runs' / name}: " in again.stderr
    assert "2 already recorded, 0 to run" in again.stdout
    assert snapshot(results) == before  # skipped, not deleted, not rerun


@pytest.mark.slow
def test_the_temp_files_of_writes_cut_short_go_at_the_next_start_and_nothing_else_does(finished, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(finished["results"], results)
    run_id = next(iter(records(results)))
    partial = [results / "runs" / f".{run_id}.json.k2j3x9_q.tmp", results / "logs" / f".{run_id}.log.abc123.tmp"]
    foreign = [results / "runs" / "notes.tmp", results / "logs" / "mine.json.tmp", results / ".hidden.json.tmp"]
    for path in partial + foreign:
        path.write_text('{"run_id": "')
    again = run_cli(bench_run(finished["profile"], results, "--jobs", "2"), tmp_path)
    assert again.returncode == 0, again.stderr
    assert [path for path in partial if path.exists()] == []
    assert all(path.exists() for path in foreign)


@pytest.mark.slow
def test_the_dask_backend_on_a_local_cluster_makes_the_same_records_as_loky(finished, tmp_path):
    results = tmp_path / "results"
    done = run_cli(bench_run(finished["profile"], results, "--jobs", "2", "--backend", "dask"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "(2 jobs x 1 threads, dask)" in done.stdout and len(progress_lines(done.stdout)) == 2
    by_dask, by_loky = records(results), records(finished["results"])
    assert set(by_dask) == set(by_loky)
    for run_id, record in by_dask.items():
        assert record.status == "ok" and record.spec == by_loky[run_id].spec
        assert len(record.history) == 3 and record.environment["jobs_at_once"] >= 2
        assert record.params_total == by_loky[run_id].params_total
        # one thread, same seed: the same training, whichever process ran it
        assert record.test_accuracy == by_loky[run_id].test_accuracy
        assert record.history[0]["loss"] == pytest.approx(by_loky[run_id].history[0]["loss"], rel=1e-4)


@pytest.mark.slow
def test_runs_without_speedups_go_to_their_own_folder_and_say_how_they_were_made(tmp_path, monkeypatch):
    monkeypatch.delenv(ONEDNN_ENV, raising=False)
    write_profile(tmp_path / "tiny.toml", {"models": ["mlp"], "repeats": 1})
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--profile", "tiny.toml", "--no-speedups"]) == 0
    [record] = Results(tmp_path / "results" / "tiny-no-speedups").records()[0]
    assert record.status == "ok" and record.spec.speedups is False
    assert record.run_id == config.load_profile("tiny.toml").specs()[0].run_id  # the same experiment
    assert not (tmp_path / "results" / "tiny").exists()


@pytest.mark.slow
def test_the_log_grows_while_the_run_trains(tmp_path):
    """``tail -f results/<profile>/logs/<name>.log`` shows a run's epochs as they end."""
    epochs = 100
    profile = write_profile(tmp_path / "tiny.toml", {"repeats": 1, "epochs": epochs})
    results = tmp_path / "results"
    log = results / "logs" / "mlp-synthetic-seed0.log"
    seen = []
    with started(bench_run(profile, results, "--jobs", "1"), tmp_path) as (process, tree):
        deadline = time.monotonic() + PATIENCE
        while process.poll() is None and time.monotonic() < deadline and not 0 < len(seen) < epochs:
            seen = [e for e in runfiles.read_events(log.read_text()) if e["event"] == "epoch"] if log.exists() else []
            time.sleep(0.02)
        recorded_meanwhile = list(Results(results).runs.glob("*.json")) if Results(results).runs.is_dir() else []
        out, err = process.communicate(timeout=PATIENCE)
    assert process.returncode == 0, err
    assert 0 < len(seen) < epochs and not recorded_meanwhile, "the log had no epoch while the run trained"
    assert len([e for e in runfiles.read_events(log.read_text()) if e["event"] == "epoch"]) == epochs


@pytest.mark.slow
def test_tensorboard_logs_and_final_weights_by_flag_leave_the_run_id_alone(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard", reason="the test extra installs it")
    write_profile(tmp_path / "tiny.toml", {"repeats": 1})
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--profile", "tiny.toml", "--tensorboard", "--save-weights"]) == 0
    results = tmp_path / "results" / "tiny"
    [record] = Results(results).records()[0]
    assert record.status == "ok" and record.spec.tensorboard and record.spec.save_weights
    assert record.run_id == config.load_profile("tiny.toml").specs()[0].run_id  # the same experiment
    assert record.files["weights"] == "weights/mlp-synthetic-seed0.weights.h5"
    assert (results / record.files["weights"]).read_bytes().startswith(b"\x89HDF")
    assert record.files["tensorboard"] == "tensorboard/mlp-synthetic-seed0"
    assert list((results / record.files["tensorboard"]).rglob("events.out.tfevents.*"))


# ---------------------------------------------------------------- bad input


BAD_INPUT = {  # case: (flags, a fragment of the error)
    "unknown model": (["--models", "mlp,resnet9"], "Unknown model 'resnet9'; accepted: cnn, "),
    "unknown dataset": (["--datasets", "imagenet"], "Unknown dataset 'imagenet'; accepted: mnist, "),
    "unknown profile": (["--profile", "huge"], "Unknown profile 'huge'; accepted: "),
    "missing profile file": (["--profile", "nowhere.toml"], "profile file not found"),
    "unreadable profile": (["--profile", "broken.toml"], "unreadable profile"),
    "unknown profile key": (["--profile", "typo.toml"], "unknown key 'run.epoch'; did you mean 'run.epochs'? accepted: recipe, models, "),
    "repeats < 1": (["--repeats", "0"], "repeats must be an integer in [1, 1000]. Received: repeats=0"),
    "jobs < 1": (["--jobs", "0"], "jobs must be an integer >= 1. Received: jobs=0"),
    "negative jobs": (["--jobs", "-2"], "jobs must be an integer >= 1. Received: jobs=-2"),
    "threads < 1": (["--threads", "0"], "threads must be an integer >= 1. Received: threads=0"),
    "epochs < 1": (["--epochs", "0"], "epochs must be an integer in [1, 100000]"),
    "unknown --set key": (["--set", "learning_rat=0.1"], "unknown setting 'learning_rat'; did you mean 'learning_rate'? accepted: "),
    "--set without a value": (["--set", "epochs"], "--set takes key=value"),
    "--scheduler without dask": (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --backend dask"),
    "--scheduler-file without dask": (["--scheduler-file", "s.json"], "--scheduler-file needs --backend dask"),
    "--scheduler and --scheduler-file": (["--backend", "dask", "--scheduler", "tcp://127.0.0.1:1", "--scheduler-file",
                                          "s.json"], "give --scheduler or --scheduler-file, not both"),
    "--until-ci 0": (["--until-ci", "0", "--max-repeats", "4"],
                     "--until-ci takes a 95 % CI half-width > 0, in percentage points. Received: --until-ci 0"),
    "--until-ci < 0": (["--until-ci", "-1", "--max-repeats", "4"], "half-width > 0, in percentage points. "
                       "Received: --until-ci -1"),
    "--until-ci without --max-repeats": (["--until-ci", "2"], "--until-ci needs --max-repeats N, the most runs "
                                         "per cell (at least the profile's repeats, 2)"),
    "--max-repeats below the repeats": (["--until-ci", "2", "--max-repeats", "1"], "--max-repeats must be >= the "
                                        "profile's repeats (2): it counts every run of a cell. Received: --max-repeats 1"),
    "--max-repeats without --until-ci": (["--max-repeats", "4"], "--max-repeats needs --until-ci W"),
}


def bad_input_folder(tmp_path: Path) -> Path:
    write_profile(tmp_path / "tiny.toml")
    (tmp_path / "broken.toml").write_text("[run\nmodels = [")
    (tmp_path / "typo.toml").write_text("[run]\nepoch = 3\n")
    return tmp_path


@pytest.mark.parametrize("flags, message", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_a_one_line_error_exit_2_and_nothing_written(tmp_path, monkeypatch, capsys, flags, message):
    folder = bad_input_folder(tmp_path)
    before = snapshot(folder)
    monkeypatch.chdir(folder)
    status = cli.main(["run", "--profile", "tiny.toml", "--results", "results", *flags])
    out, err = capsys.readouterr()
    assert status == cli.EXIT_BAD_INPUT == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert out == ""
    assert snapshot(folder) == before  # no results folder, nothing at all


@pytest.mark.parametrize("flags", [["--jobs", "0"], ["--repeats", "0"], ["--until-ci", "0", "--max-repeats", "4"]],
                         ids=["jobs 0", "repeats 0", "until-ci 0"])
@pytest.mark.slow
def test_bad_input_through_the_command_line_is_one_line_on_stderr_and_status_2(tmp_path, flags):
    folder = bad_input_folder(tmp_path)
    before = snapshot(folder)
    done = run_cli(bench_run(folder / "tiny.toml", folder / "results", *flags), folder)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error: "), done.stderr
    assert snapshot(folder) == before


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this user cannot write into; for root, who can write anywhere, one in sysfs."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return folder
    if Path("/sys/kernel").is_dir():
        return Path("/sys/kernel")
    pytest.skip("no folder this user cannot write into")


@pytest.mark.parametrize("case", ["a file", "under a file", "not writable"])
def test_a_results_folder_that_cannot_be_written_is_a_one_line_error_exit_2_before_anything_runs(
        tmp_path, monkeypatch, capsys, case):
    folder = bad_input_folder(tmp_path)
    (folder / "file").write_text("not a folder")
    results, reason = {
        "a file": (folder / "file", "is a file"),
        "under a file": (folder / "file" / "results", f"lies under a file, {folder / 'file'}"),
        "not writable": (unwritable_folder(folder), "is not writable (Permission denied)"),
    }[case]
    before = snapshot(folder)
    monkeypatch.setattr(runner, "prepare_data", lambda pending: pytest.fail("it ran"))
    monkeypatch.chdir(folder)
    status = cli.main(["run", "--profile", "tiny.toml", "--results", str(results)])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err == (f"error: --results must be a folder this user can write into; {results} {reason}. "
                   f"Received: --results {results}\n")
    assert snapshot(folder) == before


@pytest.mark.slow
def test_a_full_disk_while_writing_a_record_is_a_one_line_error_exit_1_and_leaves_whole_records(
        tmp_path, monkeypatch, capsys):
    """The disk fills up while the second record is written: the first stays, nothing half-written."""
    write_profile(tmp_path / "tiny.toml")
    dump, writes = json.dump, []

    def full_disk(payload, file, **options):
        if "status" in payload:  # a record, written into runs/ (a spec has no status)
            writes.append(payload["run_id"])
            if len(writes) == 2:
                file.write('{"run_id": "')
                raise OSError(errno.ENOSPC, "No space left on device")
        dump(payload, file, **options)

    monkeypatch.setattr(json, "dump", full_disk)
    monkeypatch.chdir(tmp_path)
    status = cli.main(["run", "--profile", "tiny.toml", "--results", "results", "--jobs", "1"])
    out, err = capsys.readouterr()
    assert status == cli.EXIT_FAILED == 1
    runs = Results("results").runs
    assert err == (f"error: cannot write the record of run {writes[1]} into {runs} (No space left on device); the "
                   "records written before it are kept: make room, then run the same command again\n")
    assert sorted(p.name for p in runs.iterdir()) == [f"{writes[0]}.json"]
    assert_only_whole_records(Path("results"))

    monkeypatch.setattr(json, "dump", dump)
    assert cli.main(["run", "--profile", "tiny.toml", "--results", "results", "--jobs", "1"]) == 0
    assert "2 runs, 1 already recorded, 1 to run" in capsys.readouterr().out


# ---------------------------------------------------------------- --until-ci


def campaign(tmp_path: Path, width: str, max_repeats: int, run: dict) -> tuple[list[str], subprocess.CompletedProcess]:
    """``bench run --until-ci`` of the tiny profile with ``run`` changed; its command and outcome."""
    profile = write_profile(tmp_path / "tiny.toml", run)
    command = bench_run(profile, tmp_path / "results", "--jobs", "2", "--until-ci", width,
                        "--max-repeats", str(max_repeats))
    done = run_cli(command, tmp_path)
    assert done.returncode == 0, done.stderr
    return command, done


@pytest.mark.slow
def test_until_ci_adds_rounds_of_runs_until_the_target_is_met(tmp_path):
    # one run has no CI; two have one far narrower than 1000 pp
    _, done = campaign(tmp_path, "1000", 4, {"repeats": 1})
    found = records(tmp_path / "results")
    assert sorted((r.spec.repeat, r.spec.seed) for r in found.values()) == [(0, 0), (1, 1)]
    rule = "until the 95 % CI half-width <= 1000 pp and the verdict is not can't tell, at most 4 runs per cell"
    assert all(r.status == "ok" and r.environment["stopping_rule"] == rule for r in found.values())
    lines = [line for line in done.stdout.splitlines() if not line.startswith(("[", "plan:", "efficiency:"))]
    assert lines == [f"stopping rule: {rule}",
                     "after the runs recorded so far: 1 of 1 cells open",
                     "  MLP on synthetic (1 runs): 1 ok run(s), no CI yet",
                     "round 1: one more run of 1 open cells",
                     "after round 1: 0 of 1 cells open",
                     "stopped: every cell meets the rule",
                     f"done: 2 runs this time, 0 not ok; records in {tmp_path / 'results' / 'runs'}"]


@pytest.mark.slow
def test_until_ci_stops_at_max_repeats_with_exactly_that_many_runs_per_cell_and_resumes_to_nothing(tmp_path):
    command, done = campaign(tmp_path, "1e-9", 3, {"repeats": 2, "datasets": ["synthetic", "fashion_mnist_sample"]})
    found = records(tmp_path / "results").values()
    cells = {}
    for record in found:
        assert record.status == "ok"
        cells.setdefault(record.spec.dataset, []).append((record.spec.repeat, record.spec.seed))
    assert {dataset: sorted(runs) for dataset, runs in cells.items()} == {
        "synthetic": [(0, 0), (1, 1), (2, 2)], "fashion_mnist_sample": [(0, 0), (1, 1), (2, 2)]}
    assert "round 1: one more run of 2 open cells" in done.stdout and "round 2" not in done.stdout
    assert "  MLP on synthetic (3 runs, the most allowed): CI half-width " in done.stdout
    assert done.stdout.splitlines()[-2] == "stopped: 2 cells still open at 3 runs, the most allowed"

    before = snapshot(tmp_path / "results")
    again = run_cli(command, tmp_path)
    assert again.returncode == 0, again.stderr
    assert progress_lines(again.stdout) == [] and "round 1" not in again.stdout
    assert snapshot(tmp_path / "results") == before


# ---------------------------------------------------------------- faults


@contextmanager
def midway(tmp_path: Path, wrapper: tuple[str, ...] = ()):
    """A runner of the tiny profile with 3 runs, 2 at once, once a run is recorded and another is in flight.

    Yields the runner's Popen, the processes under it, and the command that started it
    (``wrapper`` first: nohup, say, which then runs the runner in its own process).
    """
    results = tmp_path / "results"
    command = bench_run(write_profile(tmp_path / "tiny.toml", {"repeats": 3}), results, "--jobs", "2")
    with started([*wrapper, *command], tmp_path) as (process, tree):
        wait_for(lambda: Results(results).runs.is_dir() and any(Results(results).runs.glob("*.json"))
                 and bench_workers(process.pid), "a finished record and a run in flight")
        tree.extend(descendants(process.pid))
        yield process, tree, command


@contextmanager
def hangup_at_default():
    """SIGHUP at its default action in this process, so the processes started meanwhile inherit it:
    these tests are of a terminal's runner, and a suite started under nohup ignores SIGHUP,
    which its children would inherit and, as nohup asks, keep (tested apart, with nohup)."""
    before = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, before)


def assert_the_next_invocation_runs_exactly_the_missing_ones(tmp_path: Path, command: list[str]) -> None:
    results = tmp_path / "results"
    assert_only_whole_records(results, cut_short=True)
    kept = {name: content for name, content in snapshot(results).items() if name.startswith("runs/")}
    recorded = len(records(results))
    assert 1 <= recorded < 3

    again = run_cli(command, tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"plan: 3 runs, {recorded} already recorded, {3 - recorded} to run" in again.stdout
    assert len(progress_lines(again.stdout)) == 3 - recorded
    final = records(results)
    assert set(final) == expected_ids(tmp_path / "tiny.toml") and all(r.status == "ok" for r in final.values())
    assert_only_whole_records(results)
    assert {k: v for k, v in snapshot(results).items() if k in kept} == kept  # finished records untouched


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_stops_in_flight_runs_keeps_finished_ones_and_the_next_invocation_runs_the_rest(tmp_path, signum):
    """SIGHUP is the terminal closing. Each leaves nothing in the temporary directory, though
    loky kills its workers with SIGKILL (``leaves_nothing_behind``)."""
    with hangup_at_default(), midway(tmp_path) as (process, tree, command):
        process.send_signal(signum)
        out, err = process.communicate(timeout=PATIENCE)
        assert process.returncode == cli.EXIT_INTERRUPTED, err
        assert "interrupted: finished records are kept" in err
        wait_for(lambda: not living(tree), "the loky workers and their bench.run.worker children to end", timeout=30)
    assert len(progress_lines(out)) == len(records(tmp_path / "results"))
    assert_the_next_invocation_runs_exactly_the_missing_ones(tmp_path, command)


@pytest.mark.slow
def test_a_runner_started_with_nohup_runs_on_through_a_hangup(tmp_path):
    with midway(tmp_path, wrapper=("nohup",)) as (process, tree, command):
        process.send_signal(signal.SIGHUP)
        out, err = process.communicate(timeout=PATIENCE)
    assert process.returncode == 0, err
    assert len(progress_lines(out)) == 3
    assert all(r.status == "ok" for r in records(tmp_path / "results").values())


@pytest.mark.slow
def test_kill_9_of_the_runner_leaves_no_orphan_and_the_next_invocation_finishes_the_rest(tmp_path):
    """The runner's temporary folder stays until the next runner on this machine removes it."""
    with midway(tmp_path) as (process, tree, command):
        process.kill()
        process.wait()
        # loky workers and their bench.run.worker children watch the runner: they end within seconds
        wait_for(lambda: not living(tree), "the orphaned loky workers and bench.run.worker to exit", timeout=20)
    assert_the_next_invocation_runs_exactly_the_missing_ones(tmp_path, command)


KILLED = {  # whose SIGKILL: the start of the victim's error
    "bench.run.worker": "worker killed by signal SIGKILL; log tail:",
    "its loky worker": "the joblib worker running it died (exit codes {SIGKILL(-9)}); log tail:",
}


@pytest.fixture(scope="module", params=KILLED, ids=KILLED)
def worker_killed(request, runners_cache, tmp_path_factory):
    """The tiny profile with one of its two workers, or the loky worker that runs it, killed with
    SIGKILL mid-run: once the run has begun its first epoch, before it ends and checkpoints (a
    run killed after a checkpoint resumes instead: tests/test_resume.py). The first epoch is
    10,000 steps of one image, long enough to kill it in. Killing a loky worker breaks loky's
    pool, and loky kills the other worker with it, or as it starts its run."""
    folder = tmp_path_factory.mktemp("worker-killed")
    profile = write_profile(folder / "tiny.toml", {"epochs": 2, "batch_size": 1}, optimizer={"learning_rate": 0.001},
                            preprocess={"native_size": 8, "channels": 1, "train_per_class": 1000})
    results = folder / "results"
    command = bench_run(profile, results, "--jobs", "2")
    with started(command, folder) as (process, tree):
        worker = wait_for(lambda: bench_workers(process.pid), "a bench.run.worker process")[0]
        victim = RunSpec.from_dict(json.loads(Path(worker.cmdline()[-2]).read_text()))
        log = results / "logs" / f"mlp-synthetic-seed{victim.seed}.log"
        wait_for(lambda: log.exists() and any(e["event"] == "epoch_begin" for e in runfiles.read_events(log.read_text())),
                 "the victim's first epoch to begin")
        (worker if request.param == "bench.run.worker" else worker.parent()).kill()
        out, err = process.communicate(timeout=PATIENCE)
    assert process.returncode == cli.EXIT_FAILED, err  # a run not ok: status 1, every record written
    return {"folder": folder, "profile": profile, "results": results, "command": command,
            "victim": victim.run_id, "stdout": out, "error": KILLED[request.param]}


@pytest.mark.slow
def test_kill_9_of_a_worker_records_its_run_failed_with_the_reason_and_the_others_go_on(worker_killed):
    """Only the killed run is failed: the other is ok, finished or, when the kill broke loky's
    pool under it, run again in a new pool; either way one progress line each."""
    found, victim = records(worker_killed["results"]), worker_killed["victim"]
    assert set(found) == expected_ids(worker_killed["profile"])
    assert found[victim].status == "failed"
    assert found[victim].error.startswith(worker_killed["error"])
    assert found[victim].spec.model == "mlp" and found[victim].started_at and found[victim].finished_at
    assert found[victim].phases.spawned_at and found[victim].phases.total > 0  # its time counts in the efficiency
    log = (worker_killed["results"] / found[victim].files["log"]).read_text()
    assert log.startswith(runfiles.EVENT_PREFIX + '{"event": "start"')  # as far as it got, kept
    (other,) = set(found) - {victim}
    assert found[other].status == "ok"
    assert "done: 2 runs this time, 1 not ok" in worker_killed["stdout"]
    assert len(progress_lines(worker_killed["stdout"])) == 2
    assert any(": failed " in line for line in progress_lines(worker_killed["stdout"]))
    assert re.search(r"^    failed: \S", worker_killed["stdout"], re.M)  # the last line of its error, on the console


@pytest.mark.slow
def test_failed_runs_are_kept_and_rerun_only_with_retry_failed(worker_killed):
    results, command, victim = worker_killed["results"], worker_killed["command"], worker_killed["victim"]
    before = snapshot(results)
    again = run_cli(command, worker_killed["folder"])
    assert again.returncode == 0 and "2 already recorded, 0 to run" in again.stdout
    assert snapshot(results) == before

    retried = run_cli([*command, "--retry-failed"], worker_killed["folder"])
    assert retried.returncode == 0, retried.stderr
    assert "plan: 2 runs, 1 already recorded, 1 to run" in retried.stdout
    found = records(results)
    assert found[victim].status == "ok"
    rerun = {f"runs/{victim}.json", *found[victim].files.values()}  # the record and the files it names
    unchanged = {k: v for k, v in before.items() if k not in rerun}
    assert {k: v for k, v in snapshot(results).items() if k in unchanged} == unchanged


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_worker_ended_by_an_interrupt_is_not_recorded_so_it_runs_again(tmp_path, signum):
    """Ctrl-C in a terminal reaches every worker too: an interrupted run is pending, not failed.

    The caller handles SIGINT, as a runner always does (run_benchmark), so that the worker
    starts with SIGINT at its default even when this suite runs with SIGINT ignored.
    """
    spec = config.load_profile(str(write_profile(tmp_path / "tiny.toml"))).specs()[0]
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with hangup_at_default(), concurrent.futures.ThreadPoolExecutor(1) as pool:
            outcome = pool.submit(runner.run_in_subprocess, spec, 1)
            (worker,) = wait_for(lambda: bench_workers(os.getpid()), "the worker to start")
            worker.send_signal(signum)
            returned, record, log = outcome.result(timeout=PATIENCE)
    finally:
        signal.signal(signal.SIGINT, before)
    assert returned == spec and record is None


@pytest.mark.slow
def test_a_runner_started_with_sigint_ignored_still_has_its_workers_stop_on_sigint(tmp_path):
    """A shell starts background jobs with SIGINT ignored (`cmd &`, nohup), and children
    inherit that: the runner's workers must still stop on SIGINT, their run not recorded."""
    profile = write_profile(tmp_path / "tiny.toml", {"repeats": 1})
    started = subprocess.Popen(bench_run(profile, tmp_path / "results", "--jobs", "1"), cwd=tmp_path, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    (worker,) = wait_for(lambda: bench_workers(started.pid), "the worker to start")
    worker.send_signal(signal.SIGINT)
    out, err = started.communicate(timeout=PATIENCE)
    assert started.returncode == 0, err
    assert "interrupted, not recorded" in out and not records(tmp_path / "results")


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0, 0.005, 0.01, 0.015, 0.02, 0.05, 0.2])
def test_a_worker_interrupted_at_any_moment_of_its_start_is_not_recorded(tmp_path, monkeypatch, delay):
    """Even while Python starts (``site``, imports): no KeyboardInterrupt traceback, no failed record."""
    spec = config.load_profile(str(write_profile(tmp_path / "tiny.toml"))).specs()[0]
    popen = subprocess.Popen

    def interrupted_after_delay(*args, **kwargs):
        process = popen(*args, **kwargs)
        threading.Timer(delay, process.send_signal, [signal.SIGINT]).start()
        return process

    monkeypatch.setattr(subprocess, "Popen", interrupted_after_delay)
    returned, record, log = runner.run_in_subprocess(spec, 1)
    assert returned == spec and record is None, record.error


def run_in_process(tmp_path: Path, run: dict | None = None, **sections) -> tuple[list[RunRecord], list[str]]:
    """One run of a tiny profile through runner.run_benchmark, jobs=1 (no loky), worker in a subprocess."""
    profile = config.load_profile(str(write_profile(tmp_path / "tiny.toml", {"repeats": 1, **(run or {})}, **sections)))
    lines = []
    written = runner.run_benchmark(profile.specs(), tmp_path / "results", runner.Dispatch(jobs=1, threads=1),
                                   out=lines.append)
    assert [r.run_id for r in written] == list(records(tmp_path / "results"))
    return written, lines


@pytest.mark.slow
def test_a_diverging_run_is_recorded_diverged(tmp_path):
    (record,), lines = run_in_process(tmp_path, optimizer={"name": "sgd", "learning_rate": 1e30})
    assert record.status == "diverged" and "loss became" in record.error
    assert 1 <= len(record.history) < 3  # stopped at the first non-finite loss
    assert "diverged" in lines[-2] and lines[-1].startswith("efficiency: ")


@pytest.mark.slow
def test_a_run_past_its_timeout_is_killed_and_recorded_timeout(tmp_path):
    (record,), lines = run_in_process(tmp_path, {"timeout_s": 0.5})
    assert record.status == "timeout" and "timeout_s=0.5" in record.error
    assert record.test_accuracy is None and record.history == []
    assert (tmp_path / "results" / record.files["log"]).exists()
    assert "seed 0: timeout - -" in lines[-2]  # no accuracy, no speed: the run wrote no record
    timed = {key for key, value in dataclasses.asdict(record.phases).items() if value is not None}
    assert timed == {"spawned_at", "total"}  # only the runner's times: the worker wrote no record


# ---------------------------------------------------------------- one runner per results folder

# Imported at the start of every Python process given PYTHONPATH with it: a worker notes its spec.
WORKER_COUNTER = """import os, sys
if "bench.run.worker" in sys.orig_argv:  # python -P -m bench.run.worker SPEC.json OUT.json
    with open(os.environ["FISHBENCH_TEST_STARTS"], "a") as starts:
        starts.write(sys.orig_argv[-2] + "\\n")
"""


@pytest.mark.slow
@pytest.mark.parametrize("second_after", [0, 0.5, 2, "a record"], ids=lambda a: f"second after {a}")
def test_two_runners_on_one_folder_train_every_run_exactly_once(tmp_path, monkeypatch, second_after):
    """The second runner, whichever it is, stops at once naming the first; every run starts once."""
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(WORKER_COUNTER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "hook"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("FISHBENCH_TEST_STARTS", str(tmp_path / "starts"))
    profile, results = write_profile(tmp_path / "tiny.toml", {"repeats": 4}), tmp_path / "results"
    command = bench_run(profile, results, "--jobs", "2")
    with started(command, tmp_path) as (first, _):
        if second_after == "a record":
            wait_for(lambda: list(Results(results).runs.glob("*.json")), "the first record")
        else:
            time.sleep(second_after)
        with started(command, tmp_path) as (second, _):
            outcomes = {process: process.communicate(timeout=PATIENCE) for process in (first, second)}
    assert sorted(process.returncode for process in outcomes) == [0, 2]
    (winner,) = (process for process in outcomes if process.returncode == 0)
    (loser,) = set(outcomes) - {winner}
    out, err = outcomes[loser]
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"error: results folder {results} is in use by another bench run: pid {winner.pid} on host "
                          f"{socket.gethostname()} since 20")
    assert f"python -m bench run --profile {profile} " in err
    assert len(progress_lines(outcomes[winner][0])) == 4
    trained = [Path(line).parent.name for line in (tmp_path / "starts").read_text().splitlines()]
    assert sorted(trained) == sorted(expected_ids(profile))  # each run's worker started once
    assert {r.status for r in records(results).values()} == {"ok"}
    assert not Results(results).lock.exists()


# ---------------------------------------------------------------- pieces


def test_each_worker_gets_its_thread_counts_the_runner_identity_and_a_tmpdir_before_tensorflow_starts(monkeypatch):
    monkeypatch.delenv(ONEDNN_ENV, raising=False)
    spec = config.load_profile("smoke").specs(threads=3)[0]
    env = runner._worker_env(spec, jobs=2, runner="boot:1:2", folder=Path("/scratch/run"), spawned_at=1735689600.125)
    assert (env["TF_NUM_INTRAOP_THREADS"], env["TF_NUM_INTEROP_THREADS"], env["OMP_NUM_THREADS"]) == ("3", "2", "3")
    assert env[runner.JOBS_ENV] == "2" and env[runner.RUNNER_ENV] == "boot:1:2"
    assert env[runner.PARENT_ENV] == str(os.getpid()) and env["TMPDIR"] == "/scratch/run/tmp"  # goes with the run
    assert env[ONEDNN_ENV] == "1"  # the harness's kernels, on every CPU
    assert env[SPAWNED_ENV] == "1735689600.125"  # the start-up is timed from it
    stock = dataclasses.replace(spec, speedups=False)
    env = runner._worker_env(stock, jobs=2, runner=None, folder=Path("/scratch/run"), spawned_at=0.0)
    assert ONEDNN_ENV not in env  # TensorFlow's default


def test_unset_jobs_fill_the_cores_and_explicit_zero_is_refused():
    cores = os.cpu_count()
    assert runner.default_dispatch(None, None) == runner.Dispatch(jobs=cores, threads=1)
    assert runner.default_dispatch(None, cores).jobs == 1
    for jobs, threads in ((0, None), (None, 0), (-1, 1)):
        with pytest.raises(ValueError, match="must be an integer >= 1"):
            runner.default_dispatch(jobs, threads)


def test_sigint_stops_the_runner_even_when_started_with_sigint_ignored(tmp_path, monkeypatch):
    """A shell starts background jobs with SIGINT ignored; the runner still stops on it."""
    specs = config.load_profile(str(write_profile(tmp_path / "tiny.toml"))).specs()
    monkeypatch.setattr(runner, "prepare_data", lambda pending: os.kill(os.getpid(), signal.SIGINT))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with pytest.raises(KeyboardInterrupt):
            runner.run_benchmark(specs, tmp_path / "results", runner.default_dispatch(1, 1), out=lambda line: None)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # restored on the way out
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_signal_while_a_run_is_recorded_stops_the_runner_once_its_record_and_line_are_out(tmp_path, monkeypatch):
    """The interrupt waits for the run being settled: a recorded run always has its progress line."""
    specs = config.load_profile(str(write_profile(tmp_path / "tiny.toml"))).specs()
    said, write_run = [], runner.write_run

    def signal_then_write(*args):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the first run is being settled
        return write_run(*args)

    monkeypatch.setattr(runner, "prepare_data", lambda pending: None)
    monkeypatch.setattr(runner, "run_in_subprocess", lambda spec, *args: (spec, fake_record(spec, 1.0, 3.0), "log\n"))
    monkeypatch.setattr(runner, "write_run", signal_then_write)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        runner.run_benchmark(specs, tmp_path / "results", runner.default_dispatch(1, 1), out=said.append)
    assert len(records(tmp_path / "results")) == 1
    assert len(progress_lines("\n".join(said) + "\n")) == 1


def test_an_interrupt_held_during_a_block_that_fails_leaves_the_blocks_own_error():
    interrupts = runner.Interrupts()
    with pytest.raises(ValueError), interrupts.held():
        interrupts.handle(signal.SIGINT, None)
        raise ValueError("the block's own")
    assert interrupts.pending is None and not interrupts.holding  # nothing left for a later block
    with interrupts.held():
        pass


def test_after_a_broken_pool_only_the_run_whose_worker_left_the_note_is_failed_and_the_others_stay_to_do(tmp_path):
    """runner.killed_under keeps the runner's promise when loky breaks its pool: the run whose
    joblib worker died (its orphaned bench.run.worker left ``scratch.PARENT_DIED``) is recorded
    failed with its log; the runs loky ended with the pool (no note) get no record, so
    _dispatch runs them again in a new pool, and every run's folder goes."""
    specs = config.load_profile(str(write_profile(tmp_path / "tiny.toml", {"repeats": 3}))).specs()
    folder, files = tmp_path / "runner", runfiles.plan(specs, tmp_path / "results")
    for spec in specs:
        (folder / spec.run_id).mkdir(parents=True)
        (folder / spec.run_id / scratch.SPEC).write_text("{}")
        files[spec.run_id].path("log").write_text(f"log of {spec.run_id}\n")
    victim = specs[1]
    (folder / victim.run_id / scratch.PARENT_DIED).write_text("parent 1234 died\n")
    error = BrokenProcessPool("A process in the executor was terminated abruptly. The exit codes of the workers are "
                              "{SIGKILL(-9)}")
    (found,) = runner.killed_under(specs, folder, files, error, jobs_at_once=3)
    spec, record, log = found
    assert spec == victim and record.run_id == victim.run_id and record.status == "failed"
    assert record.error == (f"the joblib worker running it died (exit codes {{SIGKILL(-9)}}); log tail:\n"
                            f"log of {victim.run_id}\n")
    assert log == f"log of {victim.run_id}\n" and record.phases.spawned_at is not None
    assert list(folder.iterdir()) == []


def test_a_written_record_removes_its_runs_checkpoint_and_no_other(tmp_path):
    specs = config.load_profile(str(write_profile(tmp_path / "tiny.toml"))).specs()
    results = tmp_path / "results"
    files = runfiles.plan(specs, results)
    for spec in specs:
        Results(results).checkpoint(spec.run_id).mkdir(parents=True)
        (Results(results).checkpoint(spec.run_id) / runfiles.CHECKPOINT_STATE).write_text("{}")
    first, second = specs
    runner.write_run(results, files[first.run_id], fake_record(first, 1.0, 3.0), "log\n", None)
    assert [p.name for p in (results / Results.CHECKPOINTS).iterdir()] == [second.run_id]  # in flight: kept
    assert set(records(results)) == {first.run_id}


@pytest.mark.slow
def test_finished_runs_leave_no_checkpoints_folder(finished):
    assert not (finished["results"] / Results.CHECKPOINTS).exists()
