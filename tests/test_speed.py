"""`bench speed` times each mode in a process of its own and writes its tables.

Nothing here asserts a timing: timings are measured by `python -m bench speed`, not tested.
"""
import math
import pickle
import platform
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import models
from bench import cli
from bench.speed import measure, modes
from bench.speedups.process import ONEDNN_ENV


@pytest.mark.slow
def test_speed_writes_a_row_per_model_batch_size_and_mode(tmp_path, capsys):
    measure.main(model_names=["mlp", "cnn"], input_shape=(8, 8, 3), batch_sizes=[8, 16], threads=None, baseline=True,
               seconds=0.3, profile_ops=False, out=tmp_path)
    table = pd.read_csv(tmp_path / "speed.csv")
    assert list(table.columns) == list(measure.COLUMNS)
    assert len(table) == 2 * 2 * 2
    assert set(table["mode"]) == {"harness", "baseline"}
    assert set(zip(table["model"], table["batch_size"])) == {(m, b) for m in ("mlp", "cnn") for b in (8, 16)}
    numbers = table[["train_img_per_s", "infer_img_per_s", "gflops", "pct_peak", "build_s", "first_step_s"]]
    assert (numbers > 0).all().all() and numbers.map(math.isfinite).all().all()
    assert (table["flops_per_image"] == table["model"].map(
        {m: models.flops(models.build(m, (8, 8, 3), 10)) for m in ("mlp", "cnn")})).all()
    output = capsys.readouterr().out
    assert "train_x" in output and "speed.csv" in output
    assert not (tmp_path / "ops.csv").exists()


@pytest.mark.slow
def test_speed_times_each_mode_in_a_process_of_its_own(monkeypatch):
    monkeypatch.delenv(ONEDNN_ENV, raising=False)
    found = measure.measure(["mlp"], (8, 8, 3), [8], threads=1, baseline=True, seconds=0.2, log=lambda line: None)
    assert [row["mode"] for row in found.rows] == ["harness", "baseline"]
    assert {mode: p["threads"] for mode, p in found.processes.items()} == {"harness": 1, "baseline": 1}
    assert all(p["peak_gflops"] > 0 for p in found.processes.values())
    if platform.machine() == "x86_64":  # oneDNN's kernels exist there; TensorFlow's default depends on the CPU
        assert found.processes["harness"]["onednn"]


@pytest.mark.slow
def test_profile_ops_sums_a_traced_step_per_op_type(tmp_path):
    found = measure.measure(["mlp"], (8, 8, 3), [8], seconds=0.2, profile_steps=2, log=lambda line: None)
    assert found.op_rows and {row["mode"] for row in found.op_rows} == {"harness"}
    assert sum(row["pct"] for row in found.op_rows) == pytest.approx(100)
    assert any("MatMul" in row["op_type"] for row in found.op_rows)  # the MLP's Dense layers
    assert all(row["ms_per_step"] >= 0 and row["calls_per_step"] > 0 for row in found.op_rows)
    path = measure.write_csv(found.op_rows, measure.OP_COLUMNS, tmp_path / "sub" / "ops.csv")
    assert list(pd.read_csv(path).columns) == list(measure.OP_COLUMNS)
    assert "op_type" in measure.ops_tables(found.op_rows)


@pytest.mark.slow
def test_speed_refuses_unknown_models_and_bad_input_before_timing():
    with pytest.raises(ValueError, match="Received: name='resnet'"):
        measure.measure(["resnet"], seconds=0.2, log=lambda line: None)
    with pytest.raises(ValueError, match="square"):
        measure.measure(["mlp"], (8, 10, 3))
    for bad in ({"seconds": 0}, {"threads": 0}):
        with pytest.raises(ValueError, match="Received"):
            measure.measure(["mlp"], (8, 8, 3), **bad)


def test_this_process_sends_throughput_functions_by_name_and_imports_no_tensorflow():
    for name, function in vars(measure.MODES).items():
        assert pickle.loads(pickle.dumps(function)) is getattr(modes, name)  # in a mode's process
    code = ("import pickle, sys; from bench import cli; from bench.speed import measure; pickle.dumps(vars(measure.MODES)); "
            "assert 'tensorflow' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent, check=True)


@pytest.mark.slow
def test_bad_input_found_in_a_mode_process_is_the_one_line_error_of_the_cli(capsys):
    assert cli.main(["speed", "--models", "mlp,resnet", "--input", "8x8x3", "--seconds", "0.2"]) == cli.EXIT_BAD_INPUT
    [line] = capsys.readouterr().err.splitlines()  # the harness's process found it: a ValueError, as itself
    assert line.startswith("error: Unknown model") and line.endswith("Received: name='resnet'")
