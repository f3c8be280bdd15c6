"""The tests run TensorFlow as a run does: with oneDNN's kernels asked for (see bench.speedups.process).

TensorFlow reads the setting when it starts, so it is set here, before any test imports it.
Tests that need TensorFlow's own default start a process without it (bench speed's baseline).
"""
import os

from bench.speedups.process import ONEDNN_ENV

os.environ.setdefault(ONEDNN_ENV, "1")
