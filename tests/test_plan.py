"""``bench plan`` (issue 14): the pending runs per configuration and a time estimate from records.

The records here are written by hand, with known seconds per epoch and start and finish
times, so every number of the estimate is known; nothing trains.
"""
import dataclasses

import pytest
from helpers import fake_record, snapshot, write_profile

from bench import cli, config
from bench.data import datasets
from bench.records.phases import Phases
from bench.records.results import Results
from bench.records.store import RunRecord
from bench.run import plan, schedule
from bench.run.runner import Dispatch


@pytest.fixture
def tiny(tmp_path):
    """A profile of mlp and cnn, 3 repeats of 3 epochs, and its plan."""
    profile = write_profile(tmp_path / "tiny.toml", {"models": ["mlp", "cnn"], "repeats": 3})
    return profile, config.load_profile(str(profile)).specs()


def by_model(specs, model: str) -> list:
    return [spec for spec in specs if spec.model == model]


# ---------------------------------------------------------------- the estimate, piece by piece


def test_a_timing_is_the_median_seconds_per_epoch_and_the_median_overhead_of_the_ok_records(tiny):
    _, specs = tiny
    mlp = by_model(specs, "mlp")  # 3 epochs each
    records = [fake_record(mlp[0], 2.0, 10), fake_record(mlp[1], 4.0, 16), fake_record(mlp[2], 3.0, 20),
               fake_record(mlp[2], 100.0, 1000, status="failed")]  # wall - 3 x s/epoch: 4, 4, 11
    (key, timing), = schedule.timings(records).items()
    assert key == schedule.timing_key(mlp[0])
    assert timing.sec_per_epoch == 3.0 and timing.overhead_s == 4.0
    assert timing.run_seconds(epochs=10) == 34.0
    assert timing.machines == ("Fake CPU A (2 cores; threads per run 1, runs at once 2)",) * 3


def test_the_timing_key_ignores_epochs_seeds_optimizer_and_profile_but_not_model_input_or_batch(tiny):
    _, specs = tiny
    spec = specs[0]
    same = [dataclasses.replace(spec, epochs=20, seed=7, repeat=7, profile="other", threads=4),
            dataclasses.replace(spec, optimizer=dataclasses.replace(spec.optimizer, learning_rate=0.5))]
    other = [dataclasses.replace(spec, model="cnn"), dataclasses.replace(spec, batch_size=64),
             dataclasses.replace(spec, dataset="mnist"),
             dataclasses.replace(spec, preprocess=dataclasses.replace(spec.preprocess, size=16))]
    assert all(schedule.timing_key(s) == schedule.timing_key(spec) for s in same)
    assert all(schedule.timing_key(s) != schedule.timing_key(spec) for s in other)


def test_an_overhead_below_zero_from_whole_second_times_counts_as_zero(tiny):
    _, specs = tiny
    (timing,) = schedule.timings([fake_record(specs[0], 2.0, 5)]).values()  # 5 - 3 x 2 = -1
    assert timing.overhead_s == 0.0


def test_a_work_this_machine_timed_is_estimated_from_its_records_alone_other_work_from_any(tiny, monkeypatch):
    _, specs = tiny
    mlp, cnn = by_model(specs, "mlp"), by_model(specs, "cnn")
    records = [fake_record(mlp[0], 2.0, 10), fake_record(mlp[1], 10.0, 40, cpu="Fake CPU B"),
               fake_record(mlp[2], 10.0, 40, cpu="Fake CPU B"), fake_record(cnn[0], 5.0, 20, cpu="Fake CPU B")]
    monkeypatch.setattr("bench.environment.cpu_info", lambda: {"cpu_model": "Fake CPU A", "cpu_count": 2})
    here = schedule.timings(schedule.timed_here(records, threads=1, jobs=2))
    assert here[schedule.timing_key(mlp[0])].sec_per_epoch == 2.0  # not the median 10.0 of all three
    assert here[schedule.timing_key(cnn[0])].machines == ("Fake CPU B (2 cores; threads per run 1, runs at once 2)",)
    four_jobs = schedule.timings(schedule.timed_here(records, threads=1, jobs=4))  # not this machine's set-up
    assert four_jobs[schedule.timing_key(mlp[0])].sec_per_epoch == 10.0


def test_the_wall_time_packs_runs_in_order_onto_the_first_free_job():
    assert schedule.makespan([5, 3, 3, 1], jobs=2) == 6  # 5 | 3 + 3, then 1 after the 5
    assert schedule.makespan([1, 3, 3, 5], jobs=2) == 8  # 1 + 3 | 3 + 5: the order matters
    assert schedule.makespan([5, 3, 3, 1], jobs=1) == 12
    assert schedule.makespan([5, 3], jobs=8) == 5 and schedule.makespan([], jobs=2) == 0


def test_repeats_print_as_ranges():
    assert plan.repeat_ranges([7, 0, 1, 2, 5, 8]) == "0-2, 5, 7-8"
    assert plan.repeat_ranges([3]) == "3"


# ---------------------------------------------------------------- bench plan


def test_bench_plan_lists_the_pending_runs_and_estimates_their_time_from_the_records(tiny, tmp_path, monkeypatch,
                                                                                      capsys):
    profile, specs = tiny
    mlp = by_model(specs, "mlp")
    Results(tmp_path / "results").write(fake_record(mlp[0], 2.0, 10))  # recorded: overhead 4 s
    Results(tmp_path / "other").write(fake_record(mlp[1], 4.0, 16, cpu="Fake CPU B"))  # times, not recorded
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)

    status = cli.main(["plan", "--profile", "tiny.toml", "--results", "results", "--estimate-from", "other",
                       "--jobs", "2"])
    out, err = capsys.readouterr()
    assert status == 0 and err == ""
    assert snapshot(tmp_path) == before  # nothing written
    lines = out.splitlines()
    assert lines[0] == ("plan: 6 runs, 1 already recorded, 5 to run (2 jobs x 1 threads, loky) -> results/runs; "
                        "nothing is trained or written")
    # mlp: median 3 s/epoch x 3 epochs + 4 s = 13 s a run, 2 runs; cnn has no record, and its
    # FLOPs x 100 images x 3 epochs at 1 GFLOP/s put it after the mlp runs in the runner's order
    assert [line.split() for line in lines if line.startswith(("MLP", "CNN"))] == [
        ["MLP", "synthetic", "2", "1-2", "3", "3.00", "4.0", "0:00:13", "0:00:26", "2"],
        ["CNN", "synthetic", "3", "0-2", "3", "—", "—", "—", "no", "record", "to", "estimate", "from", "0"],
    ]
    assert "records read for the estimate: results (1 records), other (1 records)" in out
    # in the runner's order the two mlp runs (repeats 1 and 2) go side by side on 2 jobs
    assert "estimate: 0:00:26 of runs; with 2 jobs at once about 0:00:13 of wall time" in out
    assert "not in the estimate: 3 runs of 1 configuration(s) with no record to estimate from" in out
    assert ("timings measured on Fake CPU A (2 cores; threads per run 1, runs at once 2): 1 records; "
            "Fake CPU B (2 cores; threads per run 1, runs at once 2): 1 records.") in out


def test_runs_without_records_of_their_work_are_estimated_from_their_flops_and_said_so(tiny, tmp_path):
    """The mlp record: 3 s/epoch over 3 epochs and 13 s in all (4 s overhead), at 1,000 FLOPs per image
    and images / 3 s, so 3 s / (1,000 x images) per FLOP and image; a cnn run of 2,000 FLOPs per
    image is then 4 s + 2,000 x images x 3 epochs x that = 4 + 18 = 22 s."""
    _, specs = tiny
    mlp, cnn = by_model(specs, "mlp"), by_model(specs, "cnn")
    images = datasets.train_size(cnn[0].dataset, cnn[0].preprocess)
    rated = dataclasses.replace(fake_record(mlp[0], 3.0, 13), flops_per_image=1_000, images_per_second=images / 3.0)
    Results(tmp_path / "results").write(rated)
    text = plan.plan_text(specs, tmp_path / "results", Dispatch(jobs=1, threads=1), flops=lambda spec: 2_000)
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith(("MLP", "CNN"))}
    assert rows["CNN"][-6:] == ["—", "—", "0:00:22", "0:01:06", "from", "FLOPs"]
    assert "from FLOPs: 3 runs of 1 configuration(s) with no record of their work" in text
    assert "not in the estimate" not in text
    assert "estimate: 0:01:32 of runs" in text  # 2 mlp runs of 13 s and 3 cnn runs of 22 s


def other_protocol(spec) -> RunRecord:
    """The model of ``spec`` on other work (batch 64, 5 epochs, evaluated each epoch on 2 images
    per class, then on the whole test set apart): 100 training images / 2 s = 0.02 s each; each
    epoch's 20 evaluated images in 0.2 s (epoch 1's 1 s traces) = 0.01 s each; a run of 20 s is
    5 x 2 s of training, 1.8 s of evaluations per epoch, a final evaluation of 1.2 s, and 7 s besides."""
    work = dataclasses.replace(spec, batch_size=64, epochs=5, eval_per_class=2, profile="other")
    history = [{"epoch": n, "train_seconds": 2.0, "eval_seconds": 1.0 if n == 1 else 0.2} for n in range(1, 6)]
    return dataclasses.replace(fake_record(work, 2.0, 20), images_per_second=50.0, input_shape=(8, 8, 1),
                               num_classes=10, history=history, phases=Phases(final_eval=1.2), flops_per_image=1_000)


def test_a_run_of_other_work_is_priced_from_its_models_seconds_per_training_and_evaluated_image(tiny):
    """tiny's mlp: 100 training and 100 test images, 3 epochs, evaluated on the whole test set."""
    _, specs = tiny
    mlp = by_model(specs, "mlp")[0]
    assert schedule.timing_key(mlp) != schedule.timing_key(other_protocol(mlp).spec)
    (rates,) = schedule.image_seconds([other_protocol(mlp)]).values()
    assert (rates.train_s, rates.eval_s, rates.overhead_s) == pytest.approx((0.02, 0.01, 7.0))
    (estimate,) = schedule.estimates([mlp], [other_protocol(mlp)], flops=lambda spec: 1 / 0).values()
    assert estimate.source == schedule.PER_IMAGE
    assert estimate.seconds == pytest.approx(7 + 3 * (100 * 0.02 + 100 * 0.01))  # 16 s
    subset = dataclasses.replace(mlp, eval_per_class=2)  # 20 images each epoch, then 100 apart
    assert schedule.expected_seconds([subset], [other_protocol(mlp)])[subset.run_id] == pytest.approx(
        7 + 3 * (100 * 0.02 + 20 * 0.01) + 100 * 0.01)
    bigger = dataclasses.replace(mlp, preprocess=dataclasses.replace(mlp.preprocess, native_size=16))
    assert schedule.estimates([bigger], [other_protocol(mlp)], flops=lambda spec: 1_000)[bigger.run_id].source == (
        schedule.FROM_FLOPS)  # another input shape: another model's cost


def test_bench_plan_says_which_runs_it_priced_per_image_and_which_from_flops(tiny, tmp_path):
    """The mlp from its own records of other work (16 s a run, above); the cnn, with no record
    of its model, from FLOPs: 10 s of overhead + 2,000 FLOPs x 100 images x 3 epochs at the
    mlp's 2 s / (1,000 x 100) per FLOP and image = 22 s."""
    _, specs = tiny
    Results(tmp_path / "results").write(other_protocol(by_model(specs, "mlp")[0]))
    text = plan.plan_text(specs, tmp_path / "results", Dispatch(jobs=1, threads=1), flops=lambda spec: 2_000)
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith(("MLP", "CNN"))}
    assert rows["MLP"][-6:] == ["—", "—", "0:00:16", "0:00:48", "per", "image"]
    assert rows["CNN"][-6:] == ["—", "—", "0:00:22", "0:01:06", "from", "FLOPs"]
    assert ("per image: 3 runs of 1 configuration(s) with no record of their work, at their model's median "
            "seconds per training and per evaluated image") in text
    assert "from FLOPs: 3 runs of 1 configuration(s) with no record of their work or their model's" in text


def test_bench_plan_packs_the_runs_longest_expected_first_as_the_runner_starts_them(tiny, tmp_path, monkeypatch,
                                                                                     capsys):
    profile, specs = tiny  # in the profile's order: mlp, cnn, mlp, cnn, mlp, cnn
    earlier = [dataclasses.replace(spec, profile="earlier") for spec in specs[:2]]  # times the work, not the runs
    Results(tmp_path / "results").write(fake_record(earlier[0], 0.5, 2))  # mlp: 0.5 + 3 x 0.5 = 2 s a run
    Results(tmp_path / "results").write(fake_record(earlier[1], 2.0, 8))  # cnn: 2 + 3 x 2 = 8 s a run
    monkeypatch.chdir(tmp_path)
    assert cli.main(["plan", "--profile", "tiny.toml", "--results", "results", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines() if line.startswith(("MLP", "CNN"))] == ["CNN", "MLP"]
    # cnn 8 | cnn 8, cnn 8 | mlp 2 + 2 + 2 = 16 s; the profile's order would take 18 s
    assert "estimate: 0:00:30 of runs; with 2 jobs at once about 0:00:16 of wall time" in out
    assert schedule.makespan([2, 8, 2, 8, 2, 8], jobs=2) == 18


def test_bench_plan_with_everything_recorded_says_so(tiny, tmp_path, monkeypatch, capsys):
    profile, specs = tiny
    for spec in specs:
        Results(tmp_path / "results").write(fake_record(spec, 1.0, 5))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["plan", "--profile", "tiny.toml", "--results", "results", "--jobs", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "plan: 6 runs, 6 already recorded, 0 to run (1 jobs x 1 threads, loky) -> results/runs; "
        "nothing is trained or written"]


def test_bench_plan_takes_the_arguments_of_bench_run(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["plan", "--profile", "tiny.toml", "--models", "cnn", "--repeats", "2", "--epochs", "5",
                     "--set", "batch_size=16", "--no-speedups", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("plan: 2 runs, 0 already recorded, 2 to run (1 jobs x 1 threads, loky) -> "
                          "results/tiny-no-speedups/runs")
    assert "estimate: none, every run has no record to estimate from" in out
    assert not (tmp_path / "results").exists()


def test_bench_plan_refuses_a_missing_estimate_folder_in_one_line_exit_2(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    status = cli.main(["plan", "--profile", "tiny.toml", "--estimate-from", "nowhere"])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err == "error: --estimate-from takes a results folder that exists. Received: --estimate-from nowhere\n"
    assert snapshot(tmp_path) == before
