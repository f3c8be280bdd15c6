"""GPUs (issue 15 item 5): one job per GPU, each worker pinned to its own with memory growth on,
the device in the record. This machine has no GPU: the device lists are made up."""
import os
import threading
import time

import pytest
from helpers import write_profile

from bench import config, environment
from bench.run import devices, runner


def test_the_gpus_are_numbered_as_cuda_visible_devices_names_them():
    assert devices.gpu_ids(2, None) == ("0", "1")
    assert devices.gpu_ids(2, "3,5") == ("3", "5")  # TensorFlow's GPU:0 and GPU:1 are the machine's 3 and 5
    assert devices.gpu_ids(0, "") == devices.gpu_ids(0, None) == ()  # hidden, or none: the CPU


def test_with_gpus_jobs_default_to_one_per_gpu_and_the_cores_are_shared():
    cores = os.cpu_count()
    dispatch = runner.default_dispatch(None, None, gpus=("0", "1"))
    assert (dispatch.jobs, dispatch.threads, dispatch.gpus) == (2, max(1, cores // 2), ("0", "1"))
    assert runner.default_dispatch(4, None, gpus=("0", "1")).jobs == 4  # asked for: two runs per GPU
    threads = min(3, cores)
    assert runner.default_dispatch(None, threads, gpus=("7",)) == runner.Dispatch(jobs=1, threads=threads, gpus=("7",))
    assert runner.default_dispatch(None, None, gpus=()) == runner.default_dispatch(None, None)  # the CPU, as before
    remote = runner.default_dispatch(None, None, "dask", "tcp://127.0.0.1:8786", gpus=("0", "1"))
    assert remote.gpus == () and remote.jobs is None  # a cluster elsewhere has GPUs and cores of its own
    with pytest.raises(ValueError, match="jobs must be an integer >= 1"):
        runner.default_dispatch(0, None, gpus=("0",))


def test_the_plan_line_names_the_gpus():
    dispatch = runner.Dispatch(jobs=2, threads=4, gpus=("0", "1"))
    assert "(2 jobs x 4 threads, loky, on GPUs 0, 1)" in runner.plan_line([], [], dispatch, "results")


def test_each_run_holds_its_own_gpu_with_memory_growth(tmp_path):
    gpus = ("0", "1")
    with devices.claim(gpus, 2, tmp_path) as first, devices.claim(gpus, 2, tmp_path) as second:
        assert first == {"CUDA_VISIBLE_DEVICES": "0", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
        assert second == {"CUDA_VISIBLE_DEVICES": "1", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    with devices.claim(gpus, 2, tmp_path) as again:  # released when its run ended
        assert again["CUDA_VISIBLE_DEVICES"] == "0"
    with devices.claim((), 2, tmp_path) as none:
        assert none == {}  # no GPU: the worker's environment is untouched


def test_more_jobs_than_gpus_share_them_evenly(tmp_path):
    with devices.claim(("0", "1"), 4, tmp_path) as a, devices.claim(("0", "1"), 4, tmp_path) as b, \
            devices.claim(("0", "1"), 4, tmp_path) as c:
        assert [env["CUDA_VISIBLE_DEVICES"] for env in (a, b, c)] == ["0", "1", "0"]


@pytest.mark.slow
def test_a_run_waits_while_every_gpu_is_held(tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "WAIT_SECONDS", 0.05)
    got = []

    def second_run():
        with devices.claim(("0",), 1, tmp_path) as env:
            got.append((time.monotonic(), env["CUDA_VISIBLE_DEVICES"]))

    with devices.claim(("0",), 1, tmp_path):
        waiting = threading.Thread(target=second_run)
        waiting.start()
        time.sleep(0.3)
        assert got == []  # the only GPU is held
        released = time.monotonic()
    waiting.join(timeout=5)
    assert got and got[0][0] >= released and got[0][1] == "0"


def test_the_record_names_the_device(monkeypatch):
    details = {"gpu": {"device_name": "NVIDIA A100-SXM4-40GB"}}.get
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert environment.device_name(["gpu"], details) == "GPU 1 (NVIDIA A100-SXM4-40GB)"
    assert environment.device_name([], details) == "CPU"


def test_the_worker_is_started_on_its_gpu(tmp_path, monkeypatch):
    """run_in_subprocess puts the claimed GPU into the worker's environment."""
    started = {}

    class Worker:
        pid = -1  # no process: the runner counts the workers running beside it by pid

        def __init__(self, command, env, **kwargs):
            started.update(env)

        def wait(self, timeout):
            return 1

        def kill(self):
            pass

    spec = config.load_profile(str(write_profile(tmp_path / "tiny.toml"))).specs()[0]
    monkeypatch.setattr(devices, "LOCK_DIR", tmp_path / "locks")
    monkeypatch.setattr(runner.subprocess, "Popen", Worker)
    with devices.claim(("4", "6"), 2, tmp_path / "locks"):  # another run holds GPU 4
        _, record, _ = runner.run_in_subprocess(spec, 2, gpus=("4", "6"))
    assert record.status == "failed"  # the stand-in worker wrote no record
    assert (started["CUDA_VISIBLE_DEVICES"], started["TF_FORCE_GPU_ALLOW_GROWTH"]) == ("6", "true")
