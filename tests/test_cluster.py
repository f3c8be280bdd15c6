"""A Dask cluster that loses a worker (issues 31 and 32): real ``dask scheduler`` and ``dask worker``
processes, as a user starts them by hand (README, "On a cluster"), one killed with SIGKILL while it
runs a task. The run it had is run again on the other worker, and every run is recorded."""
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from helpers import wait_for, write_profile

from bench import config
from bench.data import cache
from bench.lifetime import WORKER_MODULE
from bench.records import store

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
def cluster(env, tmp_path):
    """A scheduler and two single-threaded workers without nannies (a killed worker stays dead)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    common = {"env": env, "cwd": tmp_path, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], **common)
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


def test_a_run_whose_dask_worker_is_killed_runs_again_on_the_other_and_every_run_is_recorded(cluster, env, tmp_path):
    address, workers = cluster
    profile, results = write_profile(tmp_path / "tiny.toml", {"repeats": 4}), tmp_path / "results"
    runner = subprocess.Popen([sys.executable, "-m", "bench", "run", "--profile", str(profile), "--results",
                               str(results), "--backend", "dask", "--scheduler", address, "--jobs", "2"],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        victim = wait_for(lambda: next((w for w in workers if running_a_run(w)), None), "a worker running a run")
        victim.send_signal(signal.SIGKILL)
        stdout, stderr = runner.communicate(timeout=PATIENCE)
    finally:
        runner.kill()
    assert "Traceback" not in stdout + stderr, stdout + stderr
    recorded = {r.run_id: r for r in store.load_records(results)[0]}
    assert set(recorded) == {spec.run_id for spec in config.load_profile(str(profile)).specs()}
    bad = {r.run_id: r.error for r in recorded.values() if r.status != "ok"}
    assert all(error for error in bad.values()), bad  # a run not ok says why
    assert runner.returncode == (1 if bad else 0), stdout + stderr
    assert len(bad) <= 1, bad  # at most the lost one; Dask runs it again on the other worker
    assert not list((tmp_path / "tmp").glob("fishbench-runner-*")), "the runner's folder was left"
