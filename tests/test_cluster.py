"""A running Dask cluster (issues 31 and 32): real ``dask scheduler`` and ``dask worker`` processes,
as a user starts them by hand or a SLURM job with a scheduler file (docs/cluster.md). ``--jobs``
is the most runs at once on it; a worker killed with SIGKILL while it runs a task has its run run
again on the other worker, from its checkpoint when it has one; every run is recorded."""
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from helpers import bench_workers, wait_for, write_profile

from bench import config
from bench.data import cache
from bench.lifetime import WORKER_MODULE
from bench.records.results import Results

ROOT = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).with_name("dask")  # the CLI the distributed package installs beside this Python
PATIENCE = 600  # seconds; the machine is shared

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not DASK.exists(), reason=f"no dask command beside {sys.executable}")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def running_a_run(worker: subprocess.Popen) -> bool:
    try:
        return any(WORKER_MODULE in " ".join(child.cmdline()) for child in psutil.Process(worker.pid).children())
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def env(tmp_path):
    """The environment of every process here: this checkout, a private cache and a shared TMPDIR."""
    (tmp_path / "tmp").mkdir()
    return {**os.environ, "PYTHONPATH": str(ROOT), cache.CACHE_DIR_ENV: str(tmp_path / "cache"),
            "TMPDIR": str(tmp_path / "tmp")}


@pytest.fixture
def cluster(env, tmp_path, request):
    """A scheduler and two single-threaded workers without nannies (a killed worker stays dead);
    the scheduler's environment gets the test's parameter, a dict, when it has one."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    common = {"env": env, "cwd": tmp_path, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], **{**common, "env": {**env, **getattr(request, "param", {})}})
    workers = []
    try:
        wait_for(lambda: reachable(port), "the scheduler")
        workers = [subprocess.Popen([str(DASK), "worker", address, "--no-nanny", "--nthreads", "1",
                                     "--no-dashboard", "--name", f"w{i}"], **common) for i in range(2)]
        yield address, workers
    finally:
        for process in [*workers, scheduler]:
            process.kill()
            process.wait()


@pytest.fixture
def filed_cluster(env, tmp_path):
    """A scheduler that writes its address into a file and two single-threaded workers that read it
    there, as an sbatch script starts them; yields the file once both workers have joined."""
    from dask.distributed import Client

    path = tmp_path / "scheduler.json"
    common = {"env": env, "cwd": tmp_path, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                   "--scheduler-file", str(path)], **common)]
    try:
        processes += [subprocess.Popen([str(DASK), "worker", "--scheduler-file", str(path), "--nthreads", "1",
                                        "--no-dashboard", "--name", f"w{i}"], **common) for i in range(2)]
        with Client(scheduler_file=str(path)) as client:
            client.wait_for_workers(2, timeout=PATIENCE)
        yield path
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_with_a_scheduler_file_and_one_job_the_cluster_runs_one_run_at_a_time_counted_on_its_workers(
        filed_cluster, env, tmp_path):
    profile, results = write_profile(tmp_path / "tiny.toml", {"repeats": 3}), tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--profile", str(profile), "--results", str(results),
                           "--backend", "dask", "--scheduler-file", str(filed_cluster), "--jobs", "1"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=PATIENCE, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"(1 jobs x 1 threads, dask, on 2 workers with 2 threads) -> {results / 'runs'}" in done.stdout
    (efficiency,) = [line for line in done.stdout.splitlines() if line.startswith("efficiency: ")]
    assert "(1 jobs x " in efficiency
    recorded = Results(results).records()[0]
    assert {r.status for r in recorded} == {"ok"} and len(recorded) == 3
    spans = sorted((r.phases.spawned_at, r.phases.spawned_at + r.phases.total) for r in recorded)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans)), spans  # never two at once


def test_a_run_whose_dask_worker_is_killed_after_a_checkpoint_resumes_on_the_other_from_it(cluster, env, tmp_path):
    address, workers = cluster
    profile = write_profile(tmp_path / "resume.toml", {"repeats": 1, "batch_size": 16},
                            preprocess={"native_size": 32, "channels": 3, "train_per_class": 1000})  # epochs of seconds
    results = tmp_path / "results"
    runner = subprocess.Popen([sys.executable, "-m", "bench", "run", "--profile", str(profile), "--results",
                               str(results), "--backend", "dask", "--scheduler", address],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        state = wait_for(lambda: next(results.glob("checkpoints/*/state.json"), None), "the first checkpoint")
        victim = next(w for w in workers if running_a_run(w))
        (run,) = bench_workers(victim.pid)
        run.suspend()
        assert json.loads(state.read_text())["epoch"] == 1, "the run outran the test: make its epochs longer"
        victim.kill()
        run.kill()
        stdout, stderr = runner.communicate(timeout=PATIENCE)
    finally:
        runner.kill()
    assert runner.returncode == 0, stdout + stderr
    (record,) = Results(results).records()[0]
    assert record.status == "ok"
    assert [s["epochs"] for s in record.segments] == [[1, 1], [2, 3]]  # epoch 2 on, on the other worker


def run_killing_a_worker(cluster, env, tmp_path, profile: Path, results: Path, *flags: str):
    """``fishbench run`` on the cluster, its first worker seen running a run killed with SIGKILL;
    returns the ended runner, its stdout and its stderr."""
    address, workers = cluster
    runner = subprocess.Popen([sys.executable, "-m", "bench", "run", "--profile", str(profile), "--results",
                               str(results), "--backend", "dask", "--scheduler", address, *flags],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        victim = wait_for(lambda: next((w for w in workers if running_a_run(w)), None), "a worker running a run")
        victim.send_signal(signal.SIGKILL)
        stdout, stderr = runner.communicate(timeout=PATIENCE)
    finally:
        runner.kill()
    return runner, stdout, stderr


def test_a_run_whose_dask_worker_is_killed_runs_again_on_the_other_and_every_run_is_recorded(cluster, env, tmp_path):
    profile, results = write_profile(tmp_path / "tiny.toml", {"repeats": 4}), tmp_path / "results"
    runner, stdout, stderr = run_killing_a_worker(cluster, env, tmp_path, profile, results, "--jobs", "2")
    assert "Traceback" not in stdout + stderr, stdout + stderr
    recorded = {r.run_id: r for r in Results(results).records()[0]}
    assert set(recorded) == {spec.run_id for spec in config.load_profile(str(profile)).specs()}
    bad = {r.run_id: r.error for r in recorded.values() if r.status != "ok"}
    assert all(error for error in bad.values()), bad  # a run not ok says why
    assert runner.returncode == (1 if bad else 0), stdout + stderr
    assert len(bad) <= 1, bad  # at most the lost one; Dask runs it again on the other worker
    assert not list((tmp_path / "tmp").glob("fishbench-runner-*")), "the runner's folder was left"


@pytest.mark.parametrize("cluster", [{"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}], indirect=True)
def test_a_run_dask_gives_up_on_is_a_failed_record_naming_killed_worker_and_the_other_run_goes_on(
        cluster, env, tmp_path):  # the scheduler gives up on a run at its first dead worker
    profile, results = write_profile(tmp_path / "tiny.toml", {"repeats": 2}), tmp_path / "results"
    runner, stdout, stderr = run_killing_a_worker(cluster, env, tmp_path, profile, results, "--jobs", "1")
    assert runner.returncode == 1, stdout + stderr
    assert "Traceback" not in stdout + stderr, stdout + stderr
    recorded = Results(results).records()[0]
    assert sorted(r.status for r in recorded) == ["failed", "ok"], [(r.status, r.error) for r in recorded]
    (lost,) = [r for r in recorded if r.status == "failed"]
    assert "KilledWorker" in lost.error and "distributed.scheduler.allowed-failures = 0" in lost.error, lost.error
