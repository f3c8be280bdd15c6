"""The TensorFlow process settings of the harness, for a child's environment; no TensorFlow here.

TensorFlow reads these once, when it starts: a parent puts them into the environment of the
child that will run TensorFlow (the runner's workers, ``bench speed``'s mode processes),
which is why this module must be importable without importing TensorFlow.
"""
from __future__ import annotations

import os

from bench import environment

# TensorFlow runs oneDNN's CPU kernels by default only on CPUs with AVX-512 or AMX, Eigen's
# (slower: docs/speed.md) elsewhere. The speed-ups ask for oneDNN everywhere; a value in the
# user's environment wins.
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"


def tensorflow_env(threads: int | None, *, speedups: bool = True) -> dict:
    """This process's environment for a child that runs TensorFlow, which reads these at start-up.

    Args:
        threads: intra-op threads (inter-op: at most 2); None leaves TensorFlow's choice,
            every core.
        speedups: also the speed-ups' oneDNN setting (``ONEDNN_ENV``); False gives
            TensorFlow's default, as plain Keras runs.
    """
    env = dict(os.environ)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if threads is not None:
        env.update({"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(min(threads, 2)),
                    "OMP_NUM_THREADS": str(threads)})
    if speedups:
        env.setdefault(ONEDNN_ENV, "1")
    return env


def start_tensorflow(env: dict) -> None:
    """Give this process `env` (``tensorflow_env``'s), then import TensorFlow, which reads it.

    The initializer of a spawned process that will run TensorFlow (``bench speed``'s mode
    processes): it runs before anything imports TensorFlow there. The import keeps
    TensorFlow's start-up notices off stderr (``environment.import_tensorflow_quietly``).
    """
    os.environ.update(env)
    environment.import_tensorflow_quietly()
