"""GPUs: when TensorFlow sees some, one run per GPU at a time, each worker pinned to its own.

``bench run`` then defaults to as many jobs as GPUs, the machine's cores shared among them as
TensorFlow threads (``runner.default_dispatch``). Each worker is started with
``CUDA_VISIBLE_DEVICES`` naming one GPU, which TensorFlow then sees as its only one, and
``TF_FORCE_GPU_ALLOW_GROWTH=true``, so it takes the GPU's memory as it needs it rather than
all of it at start. A run holds its GPU through a lock file per GPU and slot in LOCK_DIR
(``fcntl.flock``, released when the run's task ends, however it ends), so two runs never
share a GPU, also across runners on one machine; with more jobs than GPUs (``--jobs``), each
GPU takes its share of them. The record names the device it ran on (``bench.environment.device_name``).

Nothing here imports TensorFlow but ``visible_gpus`` and ``device_name``'s caller. Where
TensorFlow sees no GPU, nothing here applies; ``CUDA_VISIBLE_DEVICES=`` (empty) hides them.
A Dask cluster elsewhere (``--scheduler``) has its own GPUs: start one Dask worker per GPU
there, each with its ``CUDA_VISIBLE_DEVICES``.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench import environment
from bench.environment import CUDA_ENV

GROWTH_ENV = "TF_FORCE_GPU_ALLOW_GROWTH"
LOCK_DIR = Path(tempfile.gettempdir()) / "fishbench-gpus"
WAIT_SECONDS = 1.0  # between looks for a free GPU, when other runs hold them all


def gpu_ids(count: int, visible: str | None) -> tuple[str, ...]:
    """The ids that pin a worker to each of the ``count`` GPUs TensorFlow sees: the entries of
    ``CUDA_VISIBLE_DEVICES`` (``visible``) in order where it is set, as TensorFlow numbers
    only those, else 0 to count - 1."""
    entries = [entry.strip() for entry in (visible or "").split(",") if entry.strip()]
    return tuple(entries[:count]) if visible is not None else tuple(str(i) for i in range(count))


def visible_gpus() -> tuple[str, ...]:
    """The GPUs TensorFlow sees in this process, as ``gpu_ids`` (imports TensorFlow; what CUDA
    says while it looks stays off stderr)."""
    environment.import_tensorflow_quietly()
    import tensorflow as tf

    with environment.quiet_stderr():
        count = len(tf.config.list_physical_devices("GPU"))
    return gpu_ids(count, os.environ.get(CUDA_ENV))


@contextmanager
def claim(gpus: tuple[str, ...], jobs: int, lock_dir: Path | None = None):
    """Hold a GPU for one run; yield the worker's environment for it ({} without GPUs).

    Each GPU has ceil(jobs / GPUs) slots; the first free one is taken, slot by slot across
    the GPUs so that they fill evenly. When other runs hold every slot, it waits for one.
    The locks are in ``lock_dir`` (None: LOCK_DIR).
    """
    if not gpus:
        yield {}
        return
    import fcntl  # Linux and macOS: the GPU builds of TensorFlow are Linux's

    lock_dir = lock_dir or LOCK_DIR
    lock_dir.mkdir(parents=True, exist_ok=True)
    slots = [(gpu, slot) for slot in range(math.ceil(jobs / len(gpus))) for gpu in gpus]
    while True:
        for gpu, slot in slots:
            lock = open(lock_dir / f"gpu{gpu}-slot{slot}.lock", "w")  # noqa: SIM115 - held while the run runs
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            with lock:
                yield {CUDA_ENV: gpu, GROWTH_ENV: "true"}
            return
        time.sleep(WAIT_SECONDS)
