"""The tests run TensorFlow as a run does: with oneDNN's kernels asked for (see bench.speedups.process).

TensorFlow reads the setting when it starts, so it is set here, before any test imports it.
Tests that need TensorFlow's own default start a process without it (bench speed's baseline).
"""
import os
import sys

import pytest

from bench.data import cache
from bench.speedups.process import ONEDNN_ENV

os.environ.setdefault(ONEDNN_ENV, "1")


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """A dataset cache of this test's own (``BENCH_CACHE_DIR``): no test sees another's cached data."""
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))


@pytest.fixture
def canonical_data(monkeypatch):
    """Plans that read no real dataset: each real one's source is taken to hold its canonical
    copy (``Kind.recorded_hash``), as the shared files do; tests/test_data.py reads the real ones."""
    from bench.data import datasets, kinds

    plan_hash = datasets.plan_hash
    monkeypatch.setattr(datasets, "plan_hash", lambda name, *args: (
        kinds.kind_of(name).recorded_hash() if name in kinds.REAL_DATASETS else plan_hash(name, *args)))


@pytest.fixture(autouse=True)
def figures_drawn_where_looked_at(request, monkeypatch):
    """Drawing a report's figures (PNG and PDF) is most of the time a report takes, so a test that
    does not look at them (no ``figures`` mark) gets an empty file for each; the reports of
    fixtures wider than a test, and of fishbench in a subprocess, draw theirs."""
    report = sys.modules.get("bench.report.report")  # imported by the tests that write reports
    if report is not None and request.node.get_closest_marker("figures") is None:
        monkeypatch.setattr(report, "figure_bytes", lambda figure, form, **options: b"")
