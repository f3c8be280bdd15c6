"""Where a run's time goes (issue 17): the worker's start-up, the runner's times, and how busy an
invocation kept its jobs, on hand-made numbers (the phases of a real run: test_train.py)."""
import dataclasses
import math

import pytest
from helpers import tiny_spec

from bench.records import phases
from bench.records.phases import INVOCATION_KEY, JOBS_KEY, Phases
from bench.records.store import RunRecord


def test_the_start_up_is_the_time_since_the_runner_started_the_worker():
    assert phases.startup_seconds({phases.SPAWNED_ENV: "1000.25"}, now=lambda: 1003.0) == 2.75
    assert phases.startup_seconds({}, now=lambda: 1003.0) is None  # a worker started by hand


def record(status="ok", worker=None, environment=None) -> RunRecord:
    spec = tiny_spec()
    return RunRecord(run_id=spec.run_id, spec=spec, status=status, phases=worker, environment=environment or {})


def test_the_runner_adds_the_start_the_total_and_the_write_and_exit():
    worker = Phases(startup=2.0, data=1.0, build=3.0, run=10.0)
    timed = phases.timed_by_runner(record(worker=worker), spawned_at=5000.0, total=12.5)
    assert timed.phases == dataclasses.replace(worker, spawned_at=5000.0, total=12.5, write_exit=0.5)


def test_a_run_whose_worker_wrote_no_record_has_only_the_runners_times():
    assert phases.timed_by_runner(record("timeout"), 5000.0, 300.0).phases == Phases(spawned_at=5000.0, total=300.0)
    started_by_hand = Phases(run=10.0)  # no start-up known: no write & exit either
    assert phases.timed_by_runner(record(worker=started_by_hand), 5000.0, 12.0).phases.write_exit is None


def timed_run(spawned_at: float, total: float, invocation: str | None, jobs: int = 2) -> RunRecord:
    environment = {JOBS_KEY: jobs, **({INVOCATION_KEY: invocation} if invocation else {})}
    return record(worker=Phases(spawned_at=spawned_at, total=total), environment=environment)


def test_the_efficiency_of_an_invocation_is_its_run_time_over_jobs_times_its_wall_time():
    runs = [timed_run(100.0, 10.0, "b"), timed_run(100.0, 6.0, "b"), timed_run(106.0, 4.0, "b"),  # both busy
            timed_run(10.0, 8.0, "a", jobs=1), timed_run(20.0, 10.0, "a", jobs=1),  # 2 s idle between
            timed_run(0.0, 50.0, None), record()]  # no invocation, no phases: left out
    first, second = phases.efficiencies(runs)
    assert first == phases.Efficiency("a", jobs=1, runs=2, run_seconds=18.0, wall_seconds=20.0)
    assert second == phases.Efficiency("b", jobs=2, runs=3, run_seconds=20.0, wall_seconds=10.0)
    assert (first.share, second.share) == (0.9, 1.0)
    assert math.isnan(phases.Efficiency("c", 1, 1, 0.0, 0.0).share)


@pytest.mark.parametrize("mapping, message", [
    ([1, 2], "phases is [1, 2], not an object or null"),
    ({"startup": "2 s"}, "phases.startup is '2 s', not a number or null"),
    ({"total": True}, "phases.total is True, not a number or null"),
    ({"data_cached": 1}, "phases.data_cached is 1, not true, false or null"),
])
def test_phases_of_the_wrong_type_are_refused_naming_the_key(mapping, message):
    with pytest.raises(ValueError) as error:
        Phases.from_dict(mapping)
    assert str(error.value) == message
