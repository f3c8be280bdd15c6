"""What ``bench run`` shows and leaves beside each record (issue 15 items 1 and 4): the runs'
files and their names, the events of a log, the campaign's state, lines and ETA.

Nothing trains here: logs are written by hand, as the runner and the worker write them, and
the timings come from hand-made records (``test_plan.fake_record``); ``test_runner`` drives
the real thing.
"""
import dataclasses
import os
import time

import pandas as pd
import pytest
from helpers import fake_record, wait_for, write_profile
from rich.console import Console

from bench import config
from bench.data import datasets
from bench.records import runfiles, store
from bench.records.phases import Phases
from bench.records.results import Results
from bench.run import console, progress, schedule


@pytest.fixture
def specs(tmp_path):
    """mlp and cnn, 2 repeats of 3 epochs: mlp s0, cnn s0, mlp s1, cnn s1."""
    return config.load_profile(str(write_profile(tmp_path / "tiny.toml", {"models": ["mlp", "cnn"]}))).specs()


def write_log(files: runfiles.RunFiles, spec, started: float, epochs: list[dict], begun: int | None = None):
    """A log as a run writes it: the runner's start event, Keras's lines, the worker's epoch events."""
    lines = [runfiles.EVENT_PREFIX + f'{{"event": "start", "run_id": "{spec.run_id}", "time": {started}}}\n']
    for epoch in epochs:
        lines += [f"Epoch {epoch['epoch']}/{spec.epochs}\n",
                  runfiles.event_line("epoch", epochs=spec.epochs, **epoch)]
    if begun:
        lines.append(runfiles.event_line("epoch_begin", epoch=begun, epochs=spec.epochs))
    path = files.path("log")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))


def epoch(n: int, seconds: float = 2.0, accuracy: float = 0.5) -> dict:
    return {"epoch": n, "loss": 1.0 / n, "accuracy": accuracy, "val_loss": 1.1 / n, "val_accuracy": accuracy - 0.1,
            "train_seconds": seconds, "eval_seconds": 0.5}


# ---------------------------------------------------------------- names and events


def test_a_runs_files_are_named_by_model_dataset_and_seed_with_options_where_the_models_runs_differ(tmp_path, canonical_data):
    specs = config.load_profile("table4-cpu").specs()
    files = runfiles.plan(specs, tmp_path)
    names = {files[s.run_id].name for s in specs if s.seed == 0}
    assert {"mlp-fashion_mnist-seed0", "mlp-cifar10-seed0", "fishnet55-head=conv-cifar10-seed0",
            "fishnet55-head=dense-cifar10-seed0", "fishnet55-head=report_conv_softmax-cifar10-seed0",
            "fishnet77-fashion_mnist-seed0"} <= names
    assert len({f.name for f in files.values()}) == len(specs)
    conv = next(s for s in specs if s.model_options.get("head") == "conv" and s.seed == 0)
    assert files[conv.run_id].path("log") == tmp_path / "logs" / "fishnet55-head=conv-cifar10-seed0.log"
    assert files[conv.run_id].path("weights") == tmp_path / "weights" / "fishnet55-head=conv-cifar10-seed0.weights.h5"
    assert files[conv.run_id].label == "fishnet55 head=conv"


def test_a_name_whose_log_is_another_runs_gets_the_run_id(specs, tmp_path):
    spec = specs[0]
    files = runfiles.plan([spec], tmp_path)[spec.run_id]
    write_log(files, spec, time.time(), [])
    assert runfiles.plan([spec], tmp_path)[spec.run_id] == files  # its own log: the same name, written over
    other = spec.__class__.from_dict({**spec.to_dict(), "epochs": 5})  # the same seed with other settings
    assert runfiles.plan([other], tmp_path)[other.run_id].name == f"mlp-synthetic-seed0-{other.run_id}"


def test_options_recorded_in_the_folder_count_too(tmp_path, canonical_data):
    """A later invocation with one variant still names its runs apart from the recorded others."""
    specs = [s for s in config.load_profile("table4-cpu").specs() if s.model == "fishnet55" and s.seed == 0]
    conv, dense = (next(s for s in specs if s.model_options["head"] == head) for head in ("conv", "dense"))
    Results(tmp_path).write(store.RunRecord(run_id=conv.run_id, spec=conv, status="failed", error="killed"))
    assert runfiles.plan([dense], tmp_path)[dense.run_id].name.startswith("fishnet55-head=dense-")


def test_events_are_read_back_and_a_line_being_written_waits(specs):
    text = runfiles.event_line("epoch_begin", epoch=1, epochs=3) + "Epoch 1/3\n" + runfiles.EVENT_PREFIX + '{"event": "ep'
    (event,) = runfiles.read_events(text)
    assert (event["event"], event["epoch"], event["epochs"]) == ("epoch_begin", 1, 3) and event["time"] > 0


def test_keep_puts_the_log_and_history_beside_the_record_and_the_record_names_them(specs, tmp_path):
    spec = specs[0]
    files = runfiles.plan([spec], tmp_path)[spec.run_id]
    record = store.RunRecord(run_id=spec.run_id, spec=spec, status="ok", history=[epoch(1), epoch(2)])
    kept = runfiles.place_files(files, record, "the worker's output\n")  # a log that could not be streamed here
    assert files.path("log").read_text() == "the worker's output\n"
    assert kept.files == {"log": "logs/mlp-synthetic-seed0.log", "history": "history/mlp-synthetic-seed0.csv"}
    history = pd.read_csv(tmp_path / kept.files["history"])
    assert list(history.columns)[0] == "epoch" and list(history["loss"]) == [1.0, 0.5]
    before = files.path("log").stat().st_mtime_ns
    runfiles.place_files(files, record, "the worker's output\n")  # streamed already: left as it is
    assert files.path("log").stat().st_mtime_ns == before


# ---------------------------------------------------------------- the campaign


def campaign(specs, tmp_path, records=(), jobs=2):
    return progress.Campaign(specs, runfiles.plan(specs, tmp_path), jobs, list(records))


def test_a_run_is_in_flight_once_its_log_starts_and_each_epoch_is_read_once(specs, tmp_path):
    shown = campaign(specs, tmp_path)
    mlp = specs[0]
    write_log(shown.files[mlp.run_id], mlp, time.time() - 5, [epoch(1)], begun=2)
    stale = specs[1]  # a log left by an earlier invocation is not a run in flight
    write_log(shown.files[stale.run_id], stale, time.time() - 3600, [epoch(1)])
    os.utime(shown.files[stale.run_id].path("log"), (time.time() - 3600,) * 2)
    (update,) = shown.poll()
    assert update[0].spec == mlp and update[1]["epoch"] == 1 and shown.poll() == []
    assert list(shown.flight) == [mlp.run_id] and shown.flight[mlp.run_id].epoch == 2  # epoch 2 is running
    line = progress.epoch_line(*update)
    assert line.startswith("[epoch 1/3] mlp synthetic seed 0: test acc 40.00 % (0:00:0")


def test_the_eta_weighs_each_run_by_its_measured_cost(specs, tmp_path):
    """mlp timed by a record (1 s overhead + 3 epochs x 2 s = 7 s), cnn never: untimed."""
    mlp0, cnn0, mlp1, cnn1 = specs
    shown = campaign(specs, tmp_path, [fake_record(mlp0, sec_per_epoch=2.0, wall_seconds=7.0)], jobs=1)
    assert shown.eta(time.time()) == (pytest.approx(14.0), 2, 0)  # mlp0 then mlp1, 7 s each; cnn untimed
    now = time.time()
    write_log(shown.files[mlp0.run_id], mlp0, now - 3, [epoch(1, seconds=6.0)])  # epoch 1: tracing too
    # mlp0 in flight: 2 epochs left at the records' steady 2 s + its 0.5 s of evaluation, then its final
    # evaluation (no record timed one: an epoch's, 0.5 s); mlp1 7 s
    shown.poll()
    assert shown.eta(now) == (pytest.approx(5.5 + 7.0), 2, 0)
    assert shown.eta_text(now) == "ETA 0:00:12+ (2 untimed)"
    write_log(shown.files[mlp0.run_id], mlp0, now - 3, [epoch(1, seconds=6.0), epoch(2, seconds=1.0)])
    shown.poll()  # after a steady epoch of its own: 1 + 0.5 s for the last one, 0.5 s for the final evaluation
    assert shown.eta(now) == (pytest.approx(2.0 + 7.0), 2, 0)
    shown.finish(cnn0, fake_record(cnn0, sec_per_epoch=10.0, wall_seconds=31.0))  # cnn is timed now: 31 s
    assert shown.eta(now) == (pytest.approx(2.0 + 7.0 + 31.0), 0, 0)
    assert shown.eta_text(now) == "ETA 0:00:40"
    two_jobs = campaign(specs, tmp_path, shown.records, jobs=2)
    assert two_jobs.eta(now)[0] == pytest.approx(schedule.makespan([7.0, 31.0, 7.0, 31.0], 2))
    assert shown.summary(now).startswith("1/4 done, 1 running, 0:00:")


def test_runs_without_records_of_their_work_are_estimated_from_their_flops_at_the_records_rate(specs, tmp_path):
    """The mlp record measures 1 / (1,000 FLOPs x 500 images/s) = 2e-6 s per FLOP and image and an
    overhead of 7 - 3 x 2 = 1 s; a cnn run of 2,000 FLOPs per image is then 1 s + 2,000 x
    training images x 3 epochs x 2e-6 s."""
    mlp0, cnn0, mlp1, cnn1 = specs
    timed = dataclasses.replace(fake_record(mlp0, sec_per_epoch=2.0, wall_seconds=7.0), flops_per_image=1_000,
                                images_per_second=500.0)
    shown = progress.Campaign(specs, runfiles.plan(specs, tmp_path), 1, [timed], flops=lambda spec: 2_000)
    cnn = 1.0 + 2_000 * datasets.train_size(cnn0.dataset, cnn0.preprocess) * cnn0.epochs * 2e-6
    assert shown.eta(time.time()) == (pytest.approx(7.0 + cnn + 7.0 + cnn), 0, 2)
    assert shown.eta_text(time.time()).endswith(" (2 from FLOPs)")
    shown.finish(cnn0, fake_record(cnn0, sec_per_epoch=10.0, wall_seconds=31.0))  # cnn's own record wins
    assert shown.eta(time.time()) == (pytest.approx(7.0 + 7.0 + 31.0), 0, 0)


def test_the_eta_counts_the_final_evaluation_less_the_time_spent_since_the_last_epoch(specs, tmp_path):
    """The mlp record took 3 s in its final evaluation and 1 s writing and exiting: a run counts
    them after its last epoch; whatever time has passed since that epoch ended is already spent."""
    mlp0 = specs[0]
    timed = dataclasses.replace(fake_record(mlp0, sec_per_epoch=2.0, wall_seconds=7.0),
                                phases=Phases(final_eval=3.0, write_exit=1.0))
    shown, now = campaign(specs[:1], tmp_path, [timed], jobs=1), time.time()
    write_log(shown.files[mlp0.run_id], mlp0, now - 10, [epoch(1, seconds=6.0) | {"time": now - 1.5}], begun=2)
    shown.poll()  # epoch 2 of 3 in progress for 1.5 s: 2 x (2 + 0.5) + 4 - 1.5
    assert shown.eta(now) == (pytest.approx(7.5), 0, 0)
    write_log(shown.files[mlp0.run_id], mlp0, now - 10, [epoch(n) | {"time": now - 1.0} for n in (1, 2, 3)])
    shown.poll()  # every epoch ended 1 s ago: the final evaluation's 3 s, then 1 s to write and exit, less 1 s
    assert shown.eta(now) == (pytest.approx(3.0), 0, 0)
    assert shown.eta(now + 10)[0] == 0.0  # past its estimate: never below zero


def test_progress_lines_fit_80_columns_for_the_table4_models_on_the_shipped_sample(tmp_path):
    specs = config.load_profile("quick", {"run.repeats": 3, "run.epochs": 10}).specs()
    shown = campaign(specs, tmp_path, [fake_record(s, sec_per_epoch=7.8, wall_seconds=90.0) for s in specs], jobs=2)
    lines = []
    for spec in specs:
        files = shown.files[spec.run_id]
        run = progress.InFlight(spec, files, time.time() - 4000)
        lines += [progress.start_line(run, {"epoch": begun, "epochs": 10}) for begun in (1, 10)]
        lines.append(progress.epoch_line(run, epoch(10, accuracy=0.781) | {"epochs": 10, "time": time.time()}))
        shown.finish(spec, dataclasses.replace(fake_record(spec, 7.8, 90.0), test_accuracy=0.7910))
        lines.append(shown.finished_line(spec, shown.records[-1], time.time()))
    shown.not_ok.update({"failed": 1, "diverged": 2})
    lines.append(shown.summary(time.time() + 36_000))
    assert len(specs) == 15 and lines[-2].startswith("[15/15] fishnet77 fashion_mnist_sample seed 2: ok 79.1 %")
    assert max(map(len, lines)) <= 80, max(lines, key=len)


def test_eta_without_any_measured_run_is_unknown(specs, tmp_path):
    assert campaign(specs, tmp_path).eta_text(time.time()) == "ETA ?"


def test_a_finished_run_prints_its_count_accuracy_in_percent_and_the_eta(specs, tmp_path):
    mlp0, cnn0, *_ = specs
    shown = campaign(specs, tmp_path)
    ok = fake_record(mlp0, sec_per_epoch=1.5, wall_seconds=5.5)
    shown.finish(mlp0, dataclasses.replace(ok, test_accuracy=0.875))
    assert shown.finished_line(mlp0, shown.records[0], time.time()).startswith(
        "[1/4] mlp synthetic seed 0: ok 87.5 % 1.5 s/epoch ETA 0:00:0")
    failed = store.RunRecord(run_id=cnn0.run_id, spec=cnn0, status="failed", error="worker killed")
    shown.finish(cnn0, failed)
    assert "[2/4] cnn synthetic seed 0: failed - - ETA" in shown.finished_line(
        cnn0, failed, time.time())
    assert "(1 failed)" in shown.summary(time.time())
    assert shown.finished_line(cnn0, failed, 0).splitlines()[1] == "    failed: worker killed"
    shown.finish(specs[2], None)
    assert "seed 1: interrupted, not recorded: it runs again next time" in shown.finished_line(specs[2], None, 0)


@pytest.mark.parametrize("error, line", [
    ("ValueError: bad\nTraceback (most recent call last):\n  File x\nValueError: bad\n", "ValueError: bad"),
    ("worker exited with status 1 without writing a record; log tail:\nboom\nMemoryError: out\n\n", "MemoryError: out"),
    (None, "no error text"),
])
def test_the_console_shows_the_last_line_of_a_runs_error(specs, error, line):
    record = store.RunRecord(run_id=specs[0].run_id, spec=specs[0], status="failed", error=error)
    assert progress.error_line(record) == line


def test_plain_lines_where_the_output_is_not_a_terminal(specs, tmp_path):
    shown, lines = campaign(specs, tmp_path), []
    mlp0 = specs[0]
    with progress.shown(shown, lines.append) as finished:
        write_log(shown.files[mlp0.run_id], mlp0, time.time(), [epoch(1), epoch(2), epoch(3)])
        finished(mlp0, fake_record(mlp0, sec_per_epoch=2.0, wall_seconds=7.0))
    assert [line.split(":")[0] for line in lines] == [
        "[epoch 1/3] mlp synthetic seed 0", "[epoch 2/3] mlp synthetic seed 0", "[epoch 3/3] mlp synthetic seed 0",
        "[1/4] mlp synthetic seed 0"]


def test_plain_lines_say_when_a_run_starts_or_resumes_from_its_checkpoint(specs, tmp_path):
    shown, lines = campaign(specs, tmp_path), []
    mlp0, cnn0 = specs[:2]
    with progress.shown(shown, lines.append) as finished:
        write_log(shown.files[mlp0.run_id], mlp0, time.time(), [], begun=1)
        write_log(shown.files[cnn0.run_id], cnn0, time.time(), [], begun=3)  # its checkpoint is after epoch 2
        wait_for(lambda: len(lines) == 2, "the start lines")
        finished(mlp0, fake_record(mlp0, sec_per_epoch=2.0, wall_seconds=7.0))
    assert sorted(lines[:2]) == ["[start] cnn synthetic seed 0: resumes at epoch 3/3",
                                 "[start] mlp synthetic seed 0: epoch 1/3"]
    assert [line.split(":")[0] for line in lines[2:]] == ["[1/4] mlp synthetic seed 0"]  # started once


def test_the_live_table_shows_each_run_in_flight_with_its_epoch(specs, tmp_path):
    shown = campaign(specs, tmp_path)
    mlp0, cnn0 = specs[:2]
    write_log(shown.files[mlp0.run_id], mlp0, time.time() - 75, [epoch(1, accuracy=0.781)], begun=2)
    write_log(shown.files[cnn0.run_id], cnn0, time.time() - 4, [])
    shown.poll()
    console = Console(record=True, width=100)
    console.print(shown.table(time.time()))
    text = console.export_text()
    assert text.splitlines()[0].startswith("0/4 done, 2 running, 0:00:0")
    mlp = next(line for line in text.splitlines() if line.startswith("mlp"))
    assert mlp.split() == ["mlp", "synthetic", "0", "2/3", "1.0000", "78.10", "%", "68.10", "%", "0:01:15"]
    assert next(line for line in text.splitlines() if line.startswith("cnn")).split()[3] == "starting"


def test_hours_are_unbounded():
    assert console.hours_minutes_seconds(26 * 3600 + 61) == "26:01:01"  # a long benchmark's ETA passes a day
