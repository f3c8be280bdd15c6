"""What several test files share: made-up specs and records, the tiny profile, report.md's tables.

A plain module (tests/ is on sys.path, as pytest puts it there for conftest.py); no test file
imports from another test file. Fixtures are in conftest.py.
"""
import functools
import importlib.util
import itertools
import json
import math
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest

import models
from bench import config
from bench.data import kinds
from bench.records import store
from bench.records.phases import Phases
from bench.records.results import Results
from bench.records.store import RunRecord
from bench.spec import Augment, Optimizer, Preprocess, RunSpec

ROOT = Path(__file__).parents[1]
SMOKE = Path(__file__).parent / "fixtures" / "smoke"  # records made once by the real runner on the smoke profile

# ---------------------------------------------------------------- specs


@functools.cache
def smoke_spec() -> RunSpec:
    return config.load_profile("smoke").specs()[0]


def tiny_spec(**changes) -> RunSpec:
    """The smoke profile's first spec with ``changes``."""
    return RunSpec.from_dict({**smoke_spec().to_dict(), **changes})


# ---------------------------------------------------------------- the tiny profile, as a file

TINY = {
    "run": {"models": ["mlp"], "datasets": ["synthetic"], "repeats": 2, "epochs": 3, "batch_size": 32, "timeout_s": 300},
    "preprocess": {"native_size": 8, "channels": 1, "train_per_class": 10},
    "optimizer": {"learning_rate": 0.05},  # enough to learn something in 12 steps, not end at chance (learned_nothing)
}
TINY_TRAIN_IMAGES = 100  # train_per_class x 10 classes


def write_profile(path: Path, run: dict | None = None, **sections) -> Path:
    """TINY with ``run`` keys and whole other sections changed, as a TOML file."""
    merged = {"run": {**TINY["run"], **(run or {})}, "preprocess": TINY["preprocess"], "optimizer": TINY["optimizer"],
              **sections}
    path.write_text("".join(
        f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
        for name, values in merged.items()
    ))
    return path


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under a folder, with its modification time and bytes."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- records by hand

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def fake_record(spec, sec_per_epoch: float, wall_seconds: float, cpu: str = "Fake CPU A",
                status: str = "ok") -> RunRecord:
    """A record of ``spec`` that started at START and took ``wall_seconds``."""
    return RunRecord(run_id=spec.run_id, spec=spec, status=status, sec_per_epoch=sec_per_epoch, test_accuracy=0.5,
                     environment={"cpu_model": cpu, "cpu_count": 2, "threads_per_job": 1, "jobs_at_once": 2},
                     started_at=START.isoformat(), finished_at=(START + timedelta(seconds=wall_seconds)).isoformat())


HANDMADE_TRAIN_IMAGES = 2000  # per epoch, in run_record's records


def run_record(model, accuracy, repeat=0, *, dataset="fashion_mnist", options=None, status="ok",
               params=1000, sec_per_epoch=2.0, profile="handmade", load_at_end=0.5, finished_at=None, size=56):
    """A record as train.py writes it, with a two-epoch history ending at ``accuracy``; its spec
    carries every model option, the defaults overridden by ``options``, as a planned spec does."""
    spec = RunSpec(
        profile=profile, model=model, model_options={**models.options(model), **(options or {})}, dataset=dataset,
        data_hash=kinds.kind_of(dataset).recorded_hash(), preprocess=Preprocess(size=size, channels=3), repeat=repeat, seed=repeat,
        epochs=2, batch_size=32, optimizer=Optimizer(), augment=Augment(),
    )
    history = [{"epoch": e, "loss": 2.0 / e, "accuracy": accuracy * e / 2, "val_loss": 2.1 / e,
                "val_accuracy": accuracy * (e + 1) / 3, "train_seconds": sec_per_epoch, "eval_seconds": 0.1}
               for e in (1, 2)]
    measured = dict(test_accuracy=accuracy, test_loss=1.0, history=history, sec_per_epoch=sec_per_epoch,
                    images_per_second=HANDMADE_TRAIN_IMAGES / sec_per_epoch, params_total=params,
                    params_trainable=params, flops_per_image=10 * params)
    return store.RunRecord(
        run_id=spec.run_id, spec=spec, status=status, **(measured if status == "ok" else {}),
        input_shape=(size, size, 3), num_classes=10, model_family=models.family(model),
        error=None if status == "ok" else "RuntimeError: loss is NaN at epoch 2\ntraceback...",
        environment={"host": "testhost", "cpu_model": "test cpu", "cpu_count": 2, "jobs_at_once": 1,
                     "threads_per_job": 1, "tensorflow": "2.x", "keras": "3.x", "python": "3.11",
                     "load_at_end": load_at_end},
        started_at=finished_at, finished_at=finished_at,
    )


def full_record() -> RunRecord:
    """A diverged record with every field set (NaN losses, phases, an environment)."""
    spec = tiny_spec()
    return RunRecord(
        run_id=spec.run_id, spec=spec, status="diverged", error="loss became nan in epoch 2",
        test_accuracy=0.1, test_loss=math.nan,
        history=[{"epoch": 1, "loss": 2.3, "accuracy": 0.1, "val_loss": 2.2, "val_accuracy": 0.12,
                  "train_seconds": 1.5, "eval_seconds": 0.1},
                 {"epoch": 2, "loss": math.nan, "accuracy": 0.1, "val_loss": math.nan, "val_accuracy": 0.1,
                  "train_seconds": 0.5, "eval_seconds": 0.1}],
        first_epoch_seconds=1.5, sec_per_epoch=0.5, images_per_second=200.0, build_seconds=0.3,
        params_total=1000, params_trainable=990, flops_per_image=2000, input_shape=(32, 32, 3), num_classes=10,
        model_family="baselines",
        phases=Phases(startup=3.2, data=0.4, data_cached=True, build=0.3, first_epoch=1.5, steady_training=0.5,
                      epoch_eval=0.2, run=3.1, write_exit=0.6, total=6.9, spawned_at=1735689600.25),
        environment={"python": "3.11", "threads_per_job": 1, "jobs_at_once": 2, "host": "h", "cpu_model": "c"},
        started_at="2025-01-01T00:00:00+00:00", finished_at="2025-01-01T00:00:09+00:00",
    )


def same(a: RunRecord, b: RunRecord) -> bool:
    """Equal, counting NaN equal to NaN (a diverged run's loss)."""
    return json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)




def old_record(version: int) -> dict:
    """The full record as schema ``version`` wrote it: a spec without data_hash (spec version 2),
    and before version 2 without shape, classes and family; its run id that of the old spec."""
    current = full_record().to_dict()
    spec = {**{k: v for k, v in current["spec"].items() if k != "data_hash"}, "schema_version": 2}
    dropped = ("input_shape", "num_classes", "model_family") if version == 1 else ()
    old = {k: v for k, v in current.items() if k not in dropped}
    return {**old, "schema_version": version, "spec": spec, "run_id": "0123456789abcdef"}


def write_results(folder, records):
    for record in records:
        Results(folder).write(record)
    return folder


# ---------------------------------------------------------------- report.md and scripts/


def markdown_rows(markdown, heading):
    """The first table under ``heading`` in report.md: a dict per row, keyed by column header."""
    lines = markdown.split(f"\n{heading}\n", 1)[1].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = list(itertools.takewhile(lambda line: line.startswith("|"), lines[first:]))
    cells = [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in table]
    return [dict(zip(cells[0], row)) for row in cells[2:]]


def section(markdown, heading):
    """The text of a report.md section, from its heading to the next heading of any level."""
    return re.split(r"\n#{2,3} ", markdown.split(f"\n{heading}\n", 1)[1])[0]


def script(name: str):
    """scripts/<name>.py as a module (the scripts folder is not a package; tests run from anywhere)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- runners in real processes

PATIENCE = 300  # seconds a runner may take to reach a state; generous, the machine is shared


def bench_run(profile: Path, results: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "bench", "run", "--profile", str(profile), "--results", str(results), *flags]


def run_cli(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=PATIENCE)


def expected_ids(profile: Path) -> set[str]:
    return {spec.run_id for spec in config.load_profile(str(profile)).specs()}


def records(results: Path) -> dict[str, RunRecord]:
    return {r.run_id: r for r in Results(results).records()[0]}


def progress_lines(stdout: str) -> list[str]:
    """The lines of finished runs ('[2/3] ...'), not those of epochs ('[epoch 1/3] ...')."""
    return [line for line in stdout.splitlines() if re.match(r"\[\d+/\d+\] ", line)]


def assert_only_whole_records(results: Path, cut_short: bool = False) -> None:
    """Every record in runs/ is whole; the one other thing allowed, after a kill -9 (``cut_short``),
    is the temp file of a write that it cut short, which is not a record (``.<run_id>.json.*.tmp``)."""
    for path in Results(results).runs.iterdir():
        if cut_short and re.fullmatch(r"\.[0-9a-f]{16}\.json\..+\.tmp", path.name):
            continue
        assert re.fullmatch(r"[0-9a-f]{16}\.json", path.name), f"stray file {path.name}"
        assert store.read_record(path).run_id == path.stem  # raises on half a record


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def living(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


def bench_workers(pid: int) -> list[psutil.Process]:
    """The ``python -m bench.run.worker`` processes under a runner (under its loky workers, too)."""
    found = []
    for process in living(descendants(pid)):
        try:
            if "bench.run.worker" in process.cmdline():
                found.append(process)
        except psutil.Error:
            pass
    return found


def wait_for(condition, what: str, timeout: float = PATIENCE):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"gave up after {timeout:g} s waiting for {what}")


@contextmanager
def started(command: list[str], cwd: Path):
    """A runner started in the background; whatever it left running is killed on the way out."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tree = []
    try:
        yield process, tree
    finally:
        tree.extend(descendants(process.pid))
        if process.poll() is None:
            process.kill()
        process.communicate()
        for leftover in living(tree):
            leftover.kill()


def one_claim(model: str, dataset: str = "cifar10", margins: str = "") -> str:
    """A claims file of one claim, ``{model}`` more accurate than the MLP on ``dataset``, after a
    ``[margins]`` table of ``margins`` (TOML lines) where given."""
    return ("schema_version = 1\n" + (f"[margins]\n{margins}\n" if margins else "")
            + f"""[[claims]]
id = "{model}-beats-mlp"
kind = "greater"
section = "IV.B"
quote = "the report's words"
metric = "accuracy"
datasets = ["{dataset}"]
rows = [{{ model = "{model}" }}]
than = [{{ model = "mlp" }}]
""")
