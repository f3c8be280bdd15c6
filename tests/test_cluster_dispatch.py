"""How runs are spread over a running Dask cluster (issue 31): ``--jobs`` is the most runs it is
given at once, the plan line counts its workers' threads, not this machine's cores, and
``--scheduler-file`` finds its scheduler as SLURM and dask-jobqueue hand it over. The cluster
here is one in this process (threads, no processes); tests/test_cluster.py runs real ones."""
import json

import pytest

from bench.run import runner

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
dask = pytest.importorskip("dask")


@pytest.fixture(scope="module")
def address():
    """A scheduler and two workers of one thread each, in this process."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                                  dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def test_on_a_running_cluster_unset_jobs_stay_unset_and_are_all_its_workers_threads(address):
    dispatch = runner.default_dispatch(None, None, "dask", address)
    assert dispatch.jobs is None and dispatch.threads == 1
    fitted = runner.fitted(dispatch, runs=5)
    assert fitted.workers == runner.Workers(count=2, threads=2)
    assert (fitted.jobs, fitted.at_once) == (5, 2)  # all five given out, two run at once
    assert "(2 jobs x 1 threads, dask, on 2 workers with 2 threads; up to 5 as workers join)" in runner.plan_line(
        [], [], fitted, "results")


def test_jobs_on_a_running_cluster_are_the_most_runs_at_once(address):
    fitted = runner.fitted(runner.default_dispatch(1, None, "dask", address), runs=5)
    assert (fitted.jobs, fitted.at_once) == (1, 1)
    assert "(1 jobs x 1 threads, dask, on 2 workers with 2 threads)" in runner.plan_line([], [], fitted, "results")


def test_more_jobs_than_the_workers_threads_run_as_workers_join_and_the_plan_line_says_so(address):
    fitted = runner.fitted(runner.default_dispatch(4, None, "dask", address), runs=5)
    assert (fitted.jobs, fitted.at_once) == (4, 2)
    assert "(2 jobs x 1 threads, dask, on 2 workers with 2 threads; up to 4 as workers join)" in runner.plan_line(
        [], [], fitted, "results")


def test_jobs_are_capped_at_the_runs_to_run_and_no_runs_need_no_cluster():
    nowhere = runner.default_dispatch(None, None, "dask", "tcp://127.0.0.1:1")  # never contacted: nothing to run
    assert runner.fitted(nowhere, runs=0).at_once == 1


def test_a_scheduler_file_gives_the_address_its_scheduler_wrote(address, tmp_path):
    (tmp_path / "scheduler.json").write_text(json.dumps({"type": "Scheduler", "address": address}))
    dispatch = runner.default_dispatch(None, None, "dask", scheduler_file=str(tmp_path / "scheduler.json"))
    assert runner.scheduler_address(dispatch) == address
    assert runner.fitted(dispatch, runs=3).workers == runner.Workers(count=2, threads=2)


@pytest.mark.parametrize("content", [None, "not json", json.dumps({"type": "Scheduler"})],
                         ids=["absent", "not JSON", "no address"])
def test_a_scheduler_file_without_an_address_is_one_line_naming_it(tmp_path, monkeypatch, content):
    monkeypatch.setattr(runner, "SCHEDULER_FILE_SECONDS", 0)
    path = tmp_path / "scheduler.json"
    if content is not None:
        path.write_text(content)
    dispatch = runner.default_dispatch(None, None, "dask", scheduler_file=str(path))
    with pytest.raises(ValueError, match=f"--scheduler-file must name the file a Dask scheduler wrote .*"
                                         f"Received: --scheduler-file {path}$") as error:
        runner.fitted(dispatch, runs=1)
    assert "\n" not in str(error.value)


def test_a_scheduler_with_no_worker_is_one_line_saying_to_start_some(monkeypatch):
    monkeypatch.setattr(runner, "FIRST_WORKER_SECONDS", 0.5)
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1",
                                  dashboard_address=":0") as empty:
        dispatch = runner.default_dispatch(None, None, "dask", empty.scheduler_address)
        with pytest.raises(ValueError, match="no Dask worker joined the scheduler at .* within 0.5 s; start workers"):
            runner.fitted(dispatch, runs=1)


def test_an_unreachable_scheduler_is_one_line_naming_it():
    dispatch = runner.default_dispatch(None, None, "dask", "tcp://127.0.0.1:1")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), pytest.raises(ValueError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:1 .*Received: "
                                         "--scheduler tcp://127.0.0.1:1$"):
        runner.fitted(dispatch, runs=1)
