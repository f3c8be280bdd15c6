"""The tests run TensorFlow as a run does: with oneDNN's kernels asked for (see bench.speedups.process).

TensorFlow reads the setting when it starts, so it is set here, before any test imports it.
Tests that need TensorFlow's own default start a process without it (bench speed's baseline).
"""
import os

import pytest

from bench.speedups.process import ONEDNN_ENV

os.environ.setdefault(ONEDNN_ENV, "1")


@pytest.fixture
def canonical_data(monkeypatch):
    """Plans that read no real dataset: each real one's source is taken to hold its canonical
    copy (``data.recorded_hash``), as the shared files do; tests/test_data.py reads the real ones."""
    from bench import data

    plan_hash = data.plan_hash
    monkeypatch.setattr(data, "plan_hash", lambda name, *args: (
        data.recorded_hash(name) if name in data.REAL_DATASETS else plan_hash(name, *args)))
