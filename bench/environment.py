"""What a record says about how it was made: versions, CPU, GPU, threads, host, commit.

This module reports the environment; the TensorFlow settings a run's process is started
with (threads, oneDNN) are the speed-ups' (``bench.speedups.process``).
"""
from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from functools import cache
from pathlib import Path

CUDA_ENV = "CUDA_VISIBLE_DEVICES"  # the GPUs a process may see; bench.run.devices pins each worker to one
VECTOR_UNITS = (("avx512f", "AVX-512"), ("avx2", "AVX2"))  # the widest first: "AMD EPYC" names CPUs of both


JOBS_ENV = "BENCH_JOBS_AT_ONCE"  # set by the runner for each worker
REPO = Path(__file__).resolve().parent.parent
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


@cache
def cpu_info() -> dict:
    """CPU model name, logical cores, and the SIMD flags that decide TensorFlow's kernels."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return {"cpu_model": model, "cpu_count": os.cpu_count(), "cpu_flags": [f for f in CPU_FLAGS if f in flags]}


@cache
def git_commit() -> str | None:
    """HEAD of the checkout the code runs from, with '+dirty' when it has uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def onednn_enabled() -> bool:
    """Whether TensorFlow runs oneDNN's kernels in this process (imports TensorFlow)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def load_average() -> float | None:
    """The machine's 1-minute load average (runnable processes), None where the OS has none.

    Recorded at a run's start and end, so a timing taken on a busy machine says so.
    """
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def worker_environment(threads_per_job: int) -> dict:
    """The environment of a worker; imports TensorFlow, so call it where TF is loaded anyway.
    ``device`` names what it ran on ('CPU', 'GPU 1 (NVIDIA ...)': ``device_name``)."""
    import keras
    import numpy
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        **cpu_info(),
        "gpu": [d.name for d in gpus] or None,
        "device": device_name(gpus, tf.config.experimental.get_device_details),
        "onednn": onednn_enabled(),
        "threads_per_job": threads_per_job,
        "jobs_at_once": int(os.environ.get(JOBS_ENV, "1")),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "load_at_start": load_average(),
    }


@contextmanager
def quiet_stderr():
    """File descriptor 2 kept off the terminal while the block runs; what was written is
    replayed if the block raises.

    TensorFlow's C++ code writes straight to file descriptor 2, whatever TF_CPP_MIN_LOG_LEVEL
    says: absl's "All log messages before absl::InitializeLog()" warning and a oneDNN notice
    when it loads, CUDA's complaints when a build with GPU support looks for GPUs on a machine
    without any. In a command whose bad input should end in a one-line error they are noise.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with the notices its C++ code prints while loading kept off stderr
    (``quiet_stderr``), and let it look for GPUs there too: a build with CUDA says "failed call
    to cuInit" on a machine without a GPU driver when it first looks, whichever command that is."""
    if "tensorflow" in sys.modules:
        return
    with quiet_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")


def device_name(gpus: list, details) -> str:
    """What a worker ran on, for its record: 'GPU 1 (NVIDIA A100-SXM4-40GB)', or 'CPU'.

    Args:
        gpus: TensorFlow's physical GPU devices in the worker.
        details: ``tf.config.experimental.get_device_details``.
    """
    if not gpus:
        return "CPU"
    names = ", ".join(dict.fromkeys(details(gpu).get("device_name", "unknown") for gpu in gpus))
    return f"GPU {os.environ.get(CUDA_ENV) or ', '.join(str(i) for i in range(len(gpus)))} ({names})"


def machine(environment: dict) -> str:
    """Where a record was timed, from its environment (``worker_environment``'s keys): 'AMD EPYC, AVX-512
    (2 cores; threads per run 1, runs at once 2)'; the vector unit when the record lists the
    CPU's flags (one CPU model name may cover both)."""
    flags = set(environment.get("cpu_flags") or ())
    unit = next((f", {name}" for flag, name in VECTOR_UNITS if flag in flags), "")
    return (f"{environment.get('cpu_model') or 'unknown CPU'}{unit} ({environment.get('cpu_count', '?')} cores; "
            f"threads per run {environment.get('threads_per_job', '?')}, "
            f"runs at once {environment.get('jobs_at_once', '?')})")
