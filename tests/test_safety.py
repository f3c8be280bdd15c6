"""Adversarial inputs, one test per class of failure (docs/reliability.md lists which holds what):
nothing is written outside the results folder, a crafted record or file is refused in one line,
data identity cannot go stale, settings and data a run cannot meet are refused before it."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
import typing
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, SMOKE, tiny_spec

import models
from bench import cli, config
from bench.data import cache, datasets
from bench.files import NotARegularFile, safe_name
from bench.records import lock, runfiles, store
from bench.records.results import Results
from bench.report import report
from bench.run import checkpoint, runner, scratch
from bench.spec import SECTIONS, Preprocess

SENTINEL_BYTES = b"the user's own file\n"


@pytest.fixture
def sentinel(tmp_path) -> Path:
    """A file outside the results folder whose bytes must not change."""
    path = tmp_path / "outside" / "sentinel.txt"
    path.parent.mkdir()
    path.write_bytes(SENTINEL_BYTES)
    yield path
    assert path.read_bytes() == SENTINEL_BYTES, "a byte outside the results folder changed"


def _plant(kind: str, at: Path, sentinel: Path) -> None:
    at.parent.mkdir(parents=True, exist_ok=True)
    if kind == "link":
        at.symlink_to(sentinel)
    elif kind == "dangling link":
        at.symlink_to(sentinel.parent / "created-through-a-link")
    elif kind == "fifo":
        os.mkfifo(at)
    else:
        at.mkdir()


PLANTED = ["link", "dangling link", "fifo", "folder"]


@pytest.mark.parametrize("kind", PLANTED)
def test_a_lock_name_that_is_not_a_file_is_refused_in_one_line_and_never_written_through(tmp_path, sentinel, kind):
    results = tmp_path / "results"
    _plant(kind, Results(results).lock, sentinel)
    with pytest.raises(NotARegularFile, match=f"{Results.LOCK} is a .*, not a regular file") as refused, \
            lock.hold(results):
        pass
    assert "\n" not in str(refused.value)
    assert not (sentinel.parent / "created-through-a-link").exists()


@pytest.mark.parametrize("kind", PLANTED)
def test_a_log_name_that_is_not_a_file_is_refused_before_any_run(tmp_path, sentinel, kind):
    results, spec = tmp_path / "results", tiny_spec()
    name = runfiles.plan([spec], results)[spec.run_id].path("log")
    _plant(kind, name, sentinel)
    with pytest.raises(NotARegularFile, match="not a regular file"):
        runfiles.plan([spec], results)
    assert not (sentinel.parent / "created-through-a-link").exists()


@pytest.mark.parametrize("folder", ["runs", "logs", "history", "checkpoints"])
def test_a_folder_of_the_runs_that_is_a_file_or_a_link_is_refused_before_any_run(tmp_path, sentinel, folder):
    results = tmp_path / "results"
    results.mkdir()
    (results / folder).symlink_to(sentinel.parent, target_is_directory=True)
    with pytest.raises(NotARegularFile, match=f"{folder} is a symbolic link, not a folder"):
        runfiles.plan([tiny_spec()], results)


CUT_SHORT = {"list": ["list"], "plan": ["plan", "--profile", "smoke"], "report": ["report", "--results", str(SMOKE)]}


@pytest.mark.slow
@pytest.mark.parametrize("command", CUT_SHORT)
def test_output_into_a_pipe_its_reader_closed_ends_quietly_with_the_sigpipe_status(tmp_path, command):
    arguments = CUT_SHORT[command] + (["--out", str(tmp_path)] if command == "report" else [])
    process = subprocess.Popen([sys.executable, "-m", "bench", *arguments], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # `| head -0`: the reader is gone before the first line
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == cli.EXIT_BROKEN_PIPE and "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_a_full_disk_while_writing_the_lock_is_refused_in_one_line(tmp_path, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(ValueError, match=r"can write into; .* is not writable \(No space left on device\)") \
            as refused, lock.hold(tmp_path / "results"):
        pytest.fail("the block ran on a full disk")
    assert "\n" not in str(refused.value)


def test_a_full_disk_while_writing_a_record_stops_the_runner_in_one_line_leaving_no_part_of_it(tmp_path, monkeypatch):
    results, spec = tmp_path / "results", tiny_spec()
    files = runfiles.plan([spec], results)[spec.run_id]
    record = store.RunRecord(run_id=spec.run_id, spec=spec, status="failed", error="boom")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(lock.WriteFailed, match=f"cannot write the record of run {spec.run_id} .*No space left on "
                       "device.*make room, then run the same command again") as stopped:
        runner.write_run(results, files, record, "the log\n", None)
    assert "\n" not in str(stopped.value)
    assert [path for path in results.rglob("*") if path.is_file()] == []  # no record, no temp file


LONG = "x" * 300  # bytes: past the 255 a file system takes in one name
TOO_LONG = {
    "run --results": ["run", "--profile", "smoke", "--results", "{tmp}/" + LONG],
    "plan --results": ["plan", "--profile", "smoke", "--results", "{tmp}/" + LONG + "/results"],
    "plan --estimate-from": ["plan", "--profile", "smoke", "--results", "{tmp}/r", "--estimate-from", "{tmp}/" + LONG],
    "report --results": ["report", "--results", "{tmp}/" + LONG],
    "report --out": ["report", "--results", str(SMOKE), "--out", "{tmp}/" + LONG],
}


@pytest.mark.parametrize("command", TOO_LONG)
def test_a_folder_name_longer_than_a_file_system_takes_is_refused_in_one_line(capsys, tmp_path, command):
    arguments = [argument.replace("{tmp}", str(tmp_path)) for argument in TOO_LONG[command]]
    assert cli.main(arguments) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    flag = command.split()[1]
    assert err.startswith(f"error: {flag} holds a name of 300 bytes, xxx") and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())  # nothing made


def _checkpoint(results: Path) -> checkpoint.RunCheckpoint:
    spec = tiny_spec()
    saving = checkpoint.RunCheckpoint(Results(results).checkpoint(spec.run_id), spec, checkpoint.Progress(), {})
    model = models.build(spec.model, (8, 8, 1), 10)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    saving.set_model(model)
    return saving


@pytest.mark.parametrize("planted", ["the folder", "state.json", "a weights file", "a partial weights file"])
def test_a_checkpoint_with_a_link_planted_in_it_is_set_aside_with_a_warning_never_read_or_written_through(
        tmp_path, sentinel, capsys, planted):
    saving = _checkpoint(tmp_path / "results")
    names = {"state.json": runfiles.CHECKPOINT_STATE, "a weights file": "epoch-1.weights.h5",
             "a partial weights file": "partial-epoch-1.weights.h5"}
    if planted == "the folder":  # to the folder outside
        saving.folder.parent.mkdir(parents=True)
        saving.folder.symlink_to(sentinel.parent, target_is_directory=True)
    else:
        saving.folder.mkdir(parents=True)
        _plant("link", saving.folder / names[planted], sentinel)
    assert saving.restore(saving.model, train_data=None) == 0
    warning = capsys.readouterr().err
    assert warning.startswith(f"warning: checkpoint {saving.folder} set aside") and "symbolic link" in warning
    assert warning.count("\n") == 1 and not saving.folder.exists()
    saving._current_epoch = 1
    saving._save_model()  # the next epoch's checkpoint, in a folder of its own
    assert not saving.folder.is_symlink() and (saving.folder / "epoch-1.weights.h5").read_bytes().startswith(b"\x89HDF")
    assert sorted(path.name for path in sentinel.parent.iterdir()) == ["sentinel.txt"]


def test_a_checkpoint_folder_linked_away_while_the_run_trains_fails_the_run_writing_nothing_through_it(
        tmp_path, sentinel):
    saving = _checkpoint(tmp_path / "results")
    saving.folder.parent.mkdir(parents=True)
    saving.folder.symlink_to(sentinel.parent, target_is_directory=True)
    saving._current_epoch = 1
    with pytest.raises(NotARegularFile, match="is a symbolic link, not a folder"):
        saving._save_model()
    assert sorted(path.name for path in sentinel.parent.iterdir()) == ["sentinel.txt"]


HOSTILE = ["x/" + "../" * 12 + "tmp/owned", "../../etc/passwd", "..", ".hidden", "a\x00b\nc\x1b[31m", "é" * 300,
           "/home/me/data/my.npz", "C:\\Users\\me"]


@pytest.mark.parametrize("text", HOSTILE)
def test_every_name_built_from_a_record_or_a_setting_stays_in_its_folder(tmp_path, text):
    folder = tmp_path / "figures"
    for name in (safe_name(text), report.figure_name(f"heads_1_{text}", text)):
        assert (folder / name).resolve().parent == folder.resolve() and not name.startswith(".")
        assert len(name.encode()) <= 255 and not any(ord(c) < 32 for c in name) and ".." not in name
    spec = tiny_spec(model=text, dataset=text)
    files = runfiles.plan([spec], tmp_path / "results")[spec.run_id]
    assert all(files.path(kind).parent.parent == (tmp_path / "results").resolve() for kind in Results.KINDS)


def test_a_dataset_given_by_its_npz_path_names_its_files_and_progress_by_its_stem(tmp_path):
    spec = tiny_spec(dataset="/home/me/data/my.npz")
    files = runfiles.plan([spec], tmp_path / "results")[spec.run_id]
    assert files.path("log").name == f"{spec.model}-my-seed{spec.seed}.log" and files.dataset == "my"
    assert files.log_or(tmp_path / "elsewhere") == files.path("log")  # written where the progress reads it


def _record_text(**changes) -> str:
    spec = tiny_spec()
    record = store.RunRecord(run_id=spec.run_id, spec=spec, status="failed", error="boom")
    mapping = record.to_dict()
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = mapping
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    return json.dumps(mapping)


CRAFTED = {
    "deeply nested": lambda: "[" * 100_000 + "]" * 100_000,
    "cpu_flags a number": lambda: _record_text(**{"environment.cpu_flags": 5}),
    "started_at a number": lambda: _record_text(started_at=5),
    "cpu_model a list": lambda: _record_text(**{"environment.cpu_model": ["x"]}),
}


@pytest.mark.parametrize("crafted", CRAFTED)
def test_a_crafted_record_is_skipped_with_a_reason_and_the_others_kept(tmp_path, crafted):
    good = store.RunRecord(run_id="a" * 16, spec=tiny_spec(), status="failed", error="boom")
    Results(tmp_path).write(good)
    (Results(tmp_path).runs / "crafted.json").write_text(CRAFTED[crafted]())
    records, problems = Results(tmp_path).records()
    assert [record.run_id for record in records] == [good.run_id]
    (problem,) = problems
    assert problem.startswith(str(Results(tmp_path).runs / "crafted.json")) and "\n" not in problem


def test_the_scratch_sweep_removes_only_the_folders_this_program_made(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    users = tmp_path / f"{scratch.PREFIX}my-own-notes"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    dead = tmp_path / f"{scratch.PREFIX}1_1-abcd"  # a runner that no longer runs, as its marker says
    dead.mkdir()
    (dead / scratch.MARKER).write_text("1:1\n")
    scratch.sweep()
    assert (users / "notes.txt").read_text() == "mine" and not dead.exists()


def _npz(path: Path, **changes) -> Path:
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (12, 8, 8), np.uint8), "y_train": np.arange(12) % 3,
              "x_test": rng.integers(0, 256, (6, 8, 8), np.uint8), "y_test": np.arange(6) % 3}
    np.savez(path, **{**arrays, **changes})
    return path


def test_a_file_replaced_by_cp_p_with_its_size_and_mtime_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    original = _npz(tmp_path / "my.npz")
    first = datasets.plan_hash(str(original), Preprocess())
    other = _npz(tmp_path / "other.npz", y_train=(np.arange(12) + 1) % 3)  # other labels, the same size
    before = original.stat()
    os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
    subprocess.run(["cp", "-p", str(other), str(original)], check=True)
    after = original.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert datasets.plan_hash(str(original), Preprocess()) != first  # not the remembered hash of the old bytes


BAD_DATA = {
    "label past the classes": (dict(y_test=np.array([0, 1, 2, 0, 7, 2])), r"y_test\[4\] is 7, outside \[0, 3\)"),
    "negative label": (dict(y_train=np.arange(12) % 3 - 1), r"y_train\[0\] is -1, outside \[0, 2\)"),
    "huge label": (dict(y_train=np.array([0, 1, 2] * 3 + [0, 1, 2**62])), r"y_train\[11\] is 4611686018427387904"),
    "constant images": (dict(x_train=np.zeros((12, 8, 8), np.uint8)), "x_train holds one value, 0, in every pixel"),
    "one-pixel images": (dict(x_train=np.ones((12, 1, 1), np.uint8), x_test=np.ones((6, 1, 1), np.uint8)),
                         "x_train holds 1x1 images of 1 channels; accepted: at least 4x4"),
    "two channels": (dict(x_train=np.ones((12, 8, 8, 2), np.uint8), x_test=np.ones((6, 8, 8, 2), np.uint8)),
                     "x_train holds 8x8 images of 2 channels"),
    "one class": (dict(y_train=np.zeros(12, int), y_test=np.zeros(6, int)), "y_train holds one class"),
}


@pytest.mark.parametrize("bad", BAD_DATA)
def test_data_a_run_cannot_learn_from_is_refused_in_one_line_naming_the_file_and_index(tmp_path, monkeypatch, bad):
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    changes, message = BAD_DATA[bad]
    path = _npz(tmp_path / "bad.npz", **changes)
    with pytest.raises(datasets.BadData, match=f"file: {path}: {message}") as refused:
        datasets.plan_hash(str(path), Preprocess())
    assert "\n" not in str(refused.value)


BAD_SETTINGS = {
    "models twice": ({}, ["models=mlp,,mlp"], "run.models names 'mlp' twice; accepted: each name once"),
    "datasets twice": ({"run.datasets": ["synthetic", "synthetic"]}, [], "run.datasets names 'synthetic' twice"),
    "negative seed": ({}, ["seed=-1"], r"run.seed must be an integer in \[0, 4294967295\]"),
    "seed past NumPy's": ({}, ["seed=9223372036854775807"], r"run.seed must be an integer in \[0, 4294967295\]"),
    "last repeat's seed": ({}, ["seed=4294967295", "repeats=2"], r"run.seed \+ run.repeats - 1 must be at most"),
    "epochs past bounds": ({}, ["epochs=99999999999999999999"], r"run.epochs must be an integer in \[1, 100000\]"),
    "epochs an expression": ({}, ["epochs=2**64"], "run.epochs must be an integer"),
    "a one-pixel image": ({}, ["native_size=1"], r"preprocess.native_size must be an integer in \[4, 1024\]"),
    "a memory bomb": ({}, ["native_size=20000"], r"preprocess.native_size must be an integer in \[4, 1024\]"),
    "an infinite rate": ({}, ["learning_rate=inf"], "optimizer.learning_rate must be a number > 0"),
    "a bad --set a flag masks": ({"run.epochs": 1}, ["epochs=abc"], "run.epochs must be an integer"),
    "an unknown model a flag masks": ({"run.models": ["mlp"]}, ["models=resnet"], "Unknown model 'resnet';.*model='resnet'"),
}


@pytest.mark.parametrize("bad", BAD_SETTINGS)
def test_a_setting_no_run_can_meet_is_refused_in_one_line_before_anything_trains(bad):
    overrides, settings, message = BAD_SETTINGS[bad]
    with pytest.raises(ValueError, match=message) as refused:
        config.load_profile("smoke", overrides, settings).specs()
    assert "\n" not in str(refused.value)


BAD_VALUES = ["inf", "nan", "-inf", "1e999", "[]", "{}", '"x"', "true"]
EVERY_SETTING = [(section, key, bad) for section, cls in SECTIONS.items() for key in cls.keys() for bad in BAD_VALUES
                 if not (typing.get_type_hints(cls)[key] is bool and bad == "true")]  # the one good value here


@pytest.mark.parametrize("section, key, bad", EVERY_SETTING)
def test_every_setting_refuses_a_bad_value_in_one_line_naming_the_setting_in_the_users_terms(capsys, section, key, bad):
    assert cli.main(["plan", "--profile", "smoke", "--set", f"{key}={bad}"]) == cli.EXIT_BAD_INPUT
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1, err
    assert f"{section}.{key}" in err and "Received: " in err and "JSON" not in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["inf", "nan", "1979-05-27"])
def test_a_model_option_no_record_can_hold_is_refused_in_one_line_before_anything_trains(tmp_path, value):
    profile = tmp_path / "options.toml"
    profile.write_text(f'[run]\nmodels = ["cnn"]\ndatasets = ["synthetic"]\n\n[model_options.cnn]\npool = {value}\n')
    with pytest.raises(ValueError, match=r"\[model_options.cnn\]: option pool must be a finite number, a string") \
            as refused:
        config.load_profile(str(profile))
    assert "\n" not in str(refused.value) and "JSON" not in str(refused.value)


def test_a_plan_that_holds_one_run_twice_or_a_batch_past_the_training_set_is_refused(tmp_path):
    profile = tmp_path / "twice.toml"
    profile.write_text('[run]\nmodels = ["mlp"]\ndatasets = ["synthetic"]\n\n[[variants]]\nmodel = "mlp"\n')
    with pytest.raises(ValueError, match="is planned twice"):
        config.load_profile(str(profile)).specs()
    with pytest.raises(ValueError, match="run.batch_size must be at most the .* training images of synthetic"):
        config.load_profile("smoke", {"run.batch_size": 100_000}).specs()


def test_a_set_batch_size_past_the_training_set_is_refused_even_when_the_batch_size_flag_wins():
    with pytest.raises(ValueError, match="run.batch_size must be at most the .* training images of synthetic. "
                       "Received: batch_size=100000"):
        config.load_profile("smoke", {"run.batch_size": 10}, ["batch_size=100000"]).specs()
    assert {spec.batch_size for spec in config.load_profile("smoke", {"run.batch_size": 10}, ["batch_size=20"]).specs()} \
        == {10}
