"""The report's "Where the time went" (issue 17): phases summed per row and dataset with their
shares, and each invocation's efficiency, on hand-made records with known phases."""
import dataclasses

import pytest
from helpers import markdown_rows, run_record, section, write_results

from bench.records.phases import INVOCATION_KEY, JOBS_KEY, Phases
from bench.report import report

HEADING = "## Where the time went"


def with_phases(record, phases: Phases, invocation: str = "2026-03-01T10:00:00+00:00 pid 42"):
    environment = {**record.environment, JOBS_KEY: 2, INVOCATION_KEY: invocation}
    return dataclasses.replace(record, phases=phases, environment=environment)


MLP = Phases(startup=2.0, data=1.0, data_cached=False, build=1.0, first_epoch=3.0, steady_training=2.0,
             epoch_eval=0.5, run=8.0, write_exit=0.5, total=10.5, spawned_at=100.0)  # 0.5 s other in the run
FISHNET = Phases(startup=2.0, data=1.0, data_cached=True, build=4.0, first_epoch=10.0, steady_training=20.0,
                 epoch_eval=2.0, final_eval=1.0, run=39.0, write_exit=1.0, total=42.0, spawned_at=110.5)


@pytest.fixture(scope="module")
def timed_report(tmp_path_factory):
    """Two MLP runs side by side and a FishNet55 run after them, on 2 jobs; one older MLP record."""
    records = [with_phases(run_record("mlp", 0.86, 0), MLP),
               with_phases(run_record("mlp", 0.86, 1), dataclasses.replace(MLP, data_cached=True)),
               with_phases(run_record("fishnet55", 0.9, 0), FISHNET),
               run_record("mlp", 0.86, 2)]  # written before phases were timed
    results = write_results(tmp_path_factory.mktemp("timed"), records)
    report.write_report(results, results)
    return (results / "report.md").read_text()


def test_the_phases_are_summed_per_row_and_dataset_with_their_share_of_the_wall_time(timed_report):
    rows = markdown_rows(timed_report, HEADING)
    assert [list(row.values()) for row in rows] == [
        ["MLP", "Fashion-MNIST", "2", "1 / 2", "21.0 s", "4.0 s (19 %)", "2.0 s (10 %)", "2.0 s (10 %)",
         "6.0 s (29 %)", "4.0 s (19 %)", "1.0 s (5 %)", "—", "1.0 s (5 %)", "1.0 s (5 %)"],
        ["FishNet55", "Fashion-MNIST", "1", "1 / 1", "42.0 s", "2.0 s (5 %)", "1.0 s (2 %)", "4.0 s (10 %)",
         "10.0 s (24 %)", "20.0 s (48 %)", "2.0 s (5 %)", "1.0 s (2 %)", "1.0 s (2 %)", "1.0 s (2 %)"],
        ["all", "", "3", "2 / 3", "63.0 s", "6.0 s (10 %)", "3.0 s (5 %)", "6.0 s (10 %)", "16.0 s (25 %)",
         "24.0 s (38 %)", "3.0 s (5 %)", "1.0 s (2 %)", "2.0 s (3 %)", "2.0 s (3 %)"],
    ]
    assert list(rows[0]) == ["Model", "Dataset", "runs", "cache hits", "total wall", "start-up", "data", "build",
                             "first epoch", "steady training", "per-epoch eval", "final eval", "write & exit",
                             "other"]
    assert "1 record written before phases were timed left out." in section(timed_report, HEADING)
    # "—": no MLP run evaluated apart after its last epoch


def test_the_efficiency_of_an_invocation_is_its_run_time_over_jobs_times_its_wall_time(timed_report):
    efficiency = section(timed_report, HEADING).split("How busy the runner kept its jobs", 1)[1]
    # from 100 s to 152.5 s on 2 jobs: 63 s of runs / (2 x 52.5 s)
    assert markdown_rows("\n" + efficiency, efficiency.splitlines()[0]) == [
        {"Invocation": "2026-03-01T10:00:00+00:00 pid 42", "jobs": "2", "runs": "3", "run time": "63.0 s",
         "wall": "52.5 s", "efficiency": "60 %"},
        {"Invocation": "all", "jobs": "", "runs": "3", "run time": "63.0 s", "wall": "", "efficiency": "60 %"},
    ]


def test_records_written_before_phases_were_timed_say_so(tmp_path):
    untimed = [dataclasses.replace(run_record("mlp", 0.8 + 0.01 * r, r), phases=None) for r in range(2)]
    report.write_report(write_results(tmp_path, untimed), tmp_path)
    assert section((tmp_path / "report.md").read_text(), HEADING).strip() == (
        "No record here timed its phases: all were written before fishbench timed them.")
