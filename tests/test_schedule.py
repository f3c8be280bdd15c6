"""The runner's order (issue 17): longest expected first, from records when there are any and from
FLOPs otherwise; ties in the profile's order. Records and FLOPs are made up here; nothing trains."""
import dataclasses

import numpy as np
import pytest
from helpers import TINY_TRAIN_IMAGES, write_profile

import models
from bench import config
from bench.data import datasets
from bench.records.phases import INVOCATION_KEY, Phases
from bench.records.results import Results
from bench.records.store import RunRecord
from bench.run import runner, schedule
from bench.spec import Preprocess

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture
def specs(tmp_path):
    """mlp, cnn and mobilenet, 2 repeats of 3 epochs, in the profile's order (repeats outermost)."""
    profile = write_profile(tmp_path / "tiny.toml", {"models": ["mlp", "cnn", "mobilenet"], "repeats": 2})
    return config.load_profile(str(profile)).specs()


def timed(spec, sec_per_epoch: float, total: float, flops_per_image: int | None = None) -> RunRecord:
    """An ok record of the spec's work from an earlier profile (so the spec itself is not recorded)."""
    earlier = dataclasses.replace(spec, profile="earlier")
    return RunRecord(run_id=earlier.run_id, spec=earlier, status="ok", test_accuracy=0.5, sec_per_epoch=sec_per_epoch,
                     images_per_second=TINY_TRAIN_IMAGES / sec_per_epoch, flops_per_image=flops_per_image,
                     phases=Phases(total=total))


def names(specs) -> list[tuple[str, int]]:
    return [(spec.model, spec.repeat) for spec in specs]


def test_runs_start_longest_expected_first_and_equal_ones_in_the_profiles_order(specs):
    mlp, cnn = specs[0], specs[1]
    records = [timed(cnn, 4.0, 14.0, flops_per_image=1_000_000),  # 2 s overhead + 3 x 4 s = 14 s a run
               timed(mlp, 1.0, 5.0)]  # 2 + 3 x 1 = 5 s
    asked = []

    def fake_flops(spec):
        asked.append(spec.model)
        return 2_000_000

    # mobilenet has no record: the records' 2 s overhead + 2 MFLOPs x 100 images x 3 epochs at
    # cnn's 1 / (1 MFLOPs x 25 images/s) = 2 + 24 s
    expected = schedule.expected_seconds(specs, records, fake_flops)
    assert [expected[spec.run_id] for spec in specs[:3]] == [5.0, 14.0, pytest.approx(26.0)]
    assert asked == ["mobilenet", "mobilenet"]
    assert names(schedule.longest_first(specs, records, fake_flops)) == [
        ("mobilenet", 0), ("mobilenet", 1), ("cnn", 0), ("cnn", 1), ("mlp", 0), ("mlp", 1)]


def test_a_model_timed_only_on_other_work_is_priced_at_its_own_seconds_per_flop(specs):
    mlp, cnn, mobilenet = specs[:3]
    other_work = dataclasses.replace(mobilenet, batch_size=mobilenet.batch_size * 2)
    records = [timed(cnn, 1.0, 5.0, flops_per_image=1_000_000),  # cnn: 1 / (1 MFLOPs x 100 images/s) = 10 ns
               timed(mlp, 1.0, 5.0, flops_per_image=1_000_000),  # mlp: 10 ns
               timed(other_work, 4.0, 14.0,  # mobilenet, another batch size:
                     flops_per_image=1_000_000)]  # 40 ns, the median of all three being 10 ns
    # mobilenet has no record of this work: 2 s overhead + 2 MFLOPs x 100 images x 3 epochs x 40 ns
    expected = schedule.expected_seconds([mobilenet], records, lambda spec: 2_000_000)
    assert expected[mobilenet.run_id] == pytest.approx(2.0 + 2e6 * TINY_TRAIN_IMAGES * 3 * 40e-9)


def test_without_records_flops_times_training_images_times_epochs_order_the_runs(specs):
    flops = {"mlp": 300, "cnn": 90, "mobilenet": 200}
    fewer_epochs = [dataclasses.replace(spec, epochs=1) if spec.model == "mlp" else spec for spec in specs]
    expected = schedule.expected_seconds(fewer_epochs, [], lambda spec: flops[spec.model])
    nominal = schedule.NOMINAL_SECONDS_PER_FLOP
    assert [expected[spec.run_id] for spec in fewer_epochs[:3]] == [
        pytest.approx(300 * TINY_TRAIN_IMAGES * 1 * nominal), pytest.approx(90 * TINY_TRAIN_IMAGES * 3 * nominal),
        pytest.approx(200 * TINY_TRAIN_IMAGES * 3 * nominal)]
    assert names(schedule.longest_first(fewer_epochs, [], lambda spec: flops[spec.model])) == [
        ("mobilenet", 0), ("mobilenet", 1), ("mlp", 0), ("mlp", 1), ("cnn", 0), ("cnn", 1)]


def test_an_older_record_is_timed_by_its_start_and_finish_and_a_newer_one_by_the_runner():
    spec = config.load_profile("smoke").specs()[0]  # 2 epochs
    older = RunRecord(run_id="a", spec=spec, status="ok", sec_per_epoch=1.5,
                      started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:00:07+00:00")
    assert schedule.overhead_seconds(older) == 4.0
    assert schedule.overhead_seconds(dataclasses.replace(older, phases=Phases(total=9.5))) == 6.5
    assert schedule.overhead_seconds(dataclasses.replace(older, started_at=None)) is None


@pytest.mark.parametrize("name, per_class, images", [
    ("synthetic", None, 1000), ("synthetic", 7, 70), ("fashion_mnist_sample", None, 6000),
    ("fashion_mnist_sample", 20, 200)])
def test_the_training_set_size_is_known_without_loading_the_data(name, per_class, images):
    spec = config.load_profile("smoke").specs()[0]
    preprocess = dataclasses.replace(spec.preprocess, native_size=8, channels=1, train_per_class=per_class)
    assert datasets.train_size(name, preprocess) == images == len(datasets.load(name, preprocess).y_train)


def test_a_canonical_datasets_images_are_counted_without_reading_it(monkeypatch):
    def no_data(name, preprocess):
        raise AssertionError(f"counting read {name}")
    monkeypatch.setattr(datasets, "inspect", no_data)
    assert [datasets.train_size("cifar10", Preprocess()), datasets.test_size("fashion_mnist", Preprocess())] == [50_000, 10_000]


def test_the_training_set_of_a_dataset_file_is_counted_once_and_remembered(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=rng.integers(0, 255, (30, 8, 8, 1), dtype=np.uint8), y_train=np.arange(30) % 3,
             x_test=rng.integers(0, 255, (9, 8, 8, 1), dtype=np.uint8), y_test=np.arange(9) % 3)
    preprocess = config.load_profile("smoke").specs()[0].preprocess
    assert datasets.train_size(str(path), dataclasses.replace(preprocess, size=None, channels=None)) == 30


def test_forward_flops_are_counted_on_the_model_built_at_the_datas_input(specs):
    spec = specs[0]
    shape, classes = datasets.shape_of(spec.dataset, spec.preprocess)
    assert schedule.forward_flops(spec) == models.flops(models.build("mlp", shape, classes, **spec.model_options))


# ---------------------------------------------------------------- the runner


def test_the_runner_starts_runs_in_that_order_and_ends_with_its_efficiency(specs, tmp_path, monkeypatch):
    results = tmp_path / "results"
    mlp, cnn, mobilenet = specs[:3]
    for record in (timed(mlp, 1.0, 5.0), timed(cnn, 4.0, 14.0), timed(mobilenet, 2.0, 8.0)):
        Results(results).write(record)
    started = []

    # each run 10 s, 12 s after the last
    def fake_run(spec, jobs_at_once, runner_token=None, folder=None, files=None, gpus=()):
        spawned_at = 1000.0 + 12 * len(started)
        started.append((spec.model, spec.repeat))
        made = RunRecord(run_id=spec.run_id, spec=spec, status="ok", test_accuracy=0.5,
                         environment={"jobs_at_once": jobs_at_once})
        return spec, dataclasses.replace(made, phases=Phases(spawned_at=spawned_at, total=10.0)), "log"

    monkeypatch.setattr(runner, "run_in_subprocess", fake_run)
    monkeypatch.setattr(runner, "prepare_data", lambda pending: None)
    lines = []
    written = runner.run_benchmark(specs, results, runner.Dispatch(jobs=1, threads=1), out=lines.append)
    assert started == [("cnn", 0), ("cnn", 1), ("mobilenet", 0), ("mobilenet", 1), ("mlp", 0), ("mlp", 1)]
    assert len({record.environment[INVOCATION_KEY] for record in written}) == 1
    # 6 runs of 10 s on 1 job, from 1000 s to 1070 s
    assert lines[-1] == ("efficiency: 86 % = 0:01:00 of runs / (1 jobs x 0:01:10 from the first run's start to the "
                         "last one's end)")
