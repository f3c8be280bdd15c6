"""Tests of ``python -m bench compare A B``: the same cells of two results folders side by side.

A is the committed smoke records; B a copy of them with some accuracies changed, a run left out or
a model missing. Every expected number is computed here from the records with numpy and scipy.
"""
import json
import math

import numpy as np
import pytest
from helpers import SMOKE
from scipy import stats as scipy_stats

from bench import cli
from bench.analysis import compare


def records():
    """(path, record as JSON) of each smoke record."""
    return [(path, json.loads(path.read_text())) for path in sorted((SMOKE / "runs").glob("*.json"))]


def accuracies(model, shift=0.0):
    """The smoke runs' final accuracies of a model, in %, plus ``shift`` pp."""
    return [100 * record["test_accuracy"] + shift for _, record in records() if record["spec"]["model"] == model]


def copy_of_smoke(folder, shift=None, leave_out=()):
    """The smoke records in ``folder``/runs, each model's accuracy raised by ``shift[model]`` pp,
    the models in ``leave_out`` left out."""
    (folder / "runs").mkdir(parents=True)
    for path, record in records():
        model = record["spec"]["model"]
        if model in leave_out:
            continue
        record["test_accuracy"] += (shift or {}).get(model, 0.0) / 100
        (folder / "runs" / path.name).write_text(json.dumps(record))
    return folder


def by_model(lines):
    return {line.model: line for line in lines}


def test_each_cell_gives_b_minus_a_with_welchs_ci_and_each_sides_n(tmp_path):
    b = copy_of_smoke(tmp_path / "b", shift={"mlp": 5.0, "cnn": -3.0})
    lines = by_model(compare.compare_folders(SMOKE, b))
    assert set(lines) == {"mlp", "cnn", "mobilenet", "fishnet55", "fishnet77"}
    for model, shift in (("mlp", 5.0), ("cnn", -3.0), ("fishnet77", 0.0)):
        before, after = accuracies(model), accuracies(model, shift)
        welch = scipy_stats.ttest_ind(after, before, equal_var=False)
        line = lines[model]
        assert (line.n_a, line.n_b, line.dataset) == (len(before), len(after), "synthetic")
        assert line.mean_a == pytest.approx(np.mean(before)) and line.mean_b == pytest.approx(np.mean(after))
        assert line.difference == pytest.approx(shift, abs=1e-5)
        assert (line.ci_low, line.ci_high) == pytest.approx(tuple(welch.confidence_interval(0.95)), abs=1e-5)
        assert line.p_value == pytest.approx(welch.pvalue)


def test_a_cell_in_one_folder_only_shows_n_0_and_no_difference_on_the_other_side(tmp_path):
    b = copy_of_smoke(tmp_path / "b", leave_out={"mobilenet"})
    lines = by_model(compare.compare_folders(b, SMOKE))
    mobilenet = lines["mobilenet"]
    assert (mobilenet.n_a, mobilenet.n_b) == (0, 2) and math.isnan(mobilenet.mean_a)
    assert math.isnan(mobilenet.difference) and math.isnan(mobilenet.ci_low)
    assert mobilenet.mean_b == pytest.approx(np.mean(accuracies("mobilenet")))
    assert [line.model for line in compare.compare_folders(b, SMOKE)][-1] == "mobilenet"  # B's own cells come last


def test_models_keeps_only_their_cells_and_refuses_a_name_neither_folder_ran(tmp_path):
    b = copy_of_smoke(tmp_path / "b")
    assert [line.model for line in compare.compare_folders(SMOKE, b, ["fishnet77", "mlp"])] == ["mlp", "fishnet77"]
    with pytest.raises(ValueError, match="no runs of resnet50 in either folder; models with runs: mlp, cnn"):
        compare.compare_folders(SMOKE, b, ["mlp", "resnet50"])


def test_cells_of_other_settings_are_never_compared(tmp_path):
    b = copy_of_smoke(tmp_path / "b")
    for path in (b / "runs").glob("*.json"):
        record = json.loads(path.read_text())
        record["spec"]["epochs"] += 1
        path.write_text(json.dumps(record))
    lines = compare.compare_folders(SMOKE, b, ["mlp"])
    assert [(line.row, line.n_a, line.n_b) for line in lines] == [("MLP (epochs=2)", 2, 0), ("MLP (epochs=3)", 0, 2)]


def test_the_cli_prints_the_cells_side_by_side_and_bad_input_in_one_line(tmp_path, capsys):
    b = copy_of_smoke(tmp_path / "b", shift={"mlp": 5.0})
    assert cli.main(["compare", str(SMOKE), str(b), "--models", "mlp"]) == 0
    out = capsys.readouterr().out
    mlp = next(line for line in out.splitlines() if line.startswith("MLP"))
    assert f"{np.mean(accuracies('mlp')):.2f}" in mlp and f"{np.mean(accuracies('mlp', 5.0)):.2f}" in mlp
    assert "+5.00 [" in mlp and "B − A (pp) [95 % CI]" in out
    empty = tmp_path / "empty"
    (empty / "runs").mkdir(parents=True)
    assert cli.main(["compare", str(SMOKE), str(empty)]) == cli.EXIT_BAD_INPUT
    assert capsys.readouterr().err == f"error: nothing to compare: {empty / 'runs'} holds no readable record\n"
