"""Plan, resume and dispatch: the RunSpecs of a profile, minus those already recorded, run in parallel.

Each run is one task for joblib (loky processes by default, or a Dask cluster); the task
starts a fresh ``python -m bench.worker`` subprocess with its thread counts set before
TensorFlow starts, its output going into the run's log (``bench.runfiles``: in the results
folder as it trains, where that folder is at hand), waits for it with a timeout, and returns
the record and the log to this process, which writes each record as it arrives and shows
the runs in flight (``bench.progress``). A worker that dies or times out still
yields a record saying so; one that was interrupted yields none, so it runs next time.
Pending runs start longest expected first (``bench.schedule``), so that the jobs finish
together; each record gets the runner's times of its run (``bench.phases``), and the last line
says how busy the jobs were.
Nothing outlives the runner: its loky workers and their bench.worker children exit when it
dies, even by kill -9 (see bench.lifetime). Nothing here knows about tables.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import data, devices, imports, phases, runfiles, store
from bench.environment import JOBS_ENV
from bench.lifetime import EXIT_ORPHANED, RUNNER_ENV, exit_with_parent, process_token
from bench.schedule import longest_first
from bench.spec import RunSpec
from bench.speedups.process import tensorflow_env
from bench.store import RunRecord, now_iso

LOG_TAIL_CHARS = 4000  # of a dead worker's log, kept in its record's error text
BACKENDS = ("loky", "dask")
# Idle loky workers exit after this many seconds instead of joblib's 300 (plus loky's 30 s
# grace); one that ran a task exits at once when the runner dies (see run_in_subprocess).
LOKY_IDLE_SECONDS = 10


@dataclass(frozen=True)
class Dispatch:
    """How runs are spread: jobs at once, TensorFlow threads each, the joblib backend, and the
    GPUs the runs take turns on (``bench.devices``; none: the CPU)."""

    jobs: int
    threads: int
    backend: str = "loky"
    scheduler: str | None = None  # a Dask scheduler address; None starts a LocalCluster
    gpus: tuple[str, ...] = ()  # ids for CUDA_VISIBLE_DEVICES, one run on each at a time

    def __post_init__(self):
        for name in ("jobs", "threads"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1. Received: {name}={value!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}. Received: backend={self.backend!r}")
        if self.scheduler and self.backend != "dask":
            raise ValueError(f"--scheduler needs --backend dask. Received: backend={self.backend!r}")
        if self.backend == "dask" and importlib.util.find_spec("distributed") is None:
            raise ValueError("--backend dask needs Dask: pip install 'dask[distributed]'. Received: backend='dask'")


def default_dispatch(jobs: int | None, threads: int | None, backend: str = "loky", scheduler: str | None = None,
                     gpus: tuple[str, ...] = ()) -> Dispatch:
    """Fill unset jobs and threads: on the CPU, one thread per job and as many jobs as cores;
    with GPUs (``devices.visible_gpus``), one job per GPU and the cores shared among them.

    Two single-threaded runs side by side beat one two-threaded run on small models, whose
    per-op work is too little to split across threads. A Dask cluster elsewhere
    (``scheduler``) has GPUs of its own, not these: its runs are not pinned here.
    """
    cores, gpus = os.cpu_count() or 1, () if scheduler else tuple(gpus)
    valid = lambda n: isinstance(n, int) and n >= 1  # noqa: E731 - an invalid one is refused below
    if gpus:
        jobs = len(gpus) if jobs is None else jobs
        threads = (max(1, cores // jobs) if valid(jobs) else 1) if threads is None else threads
    threads = 1 if threads is None else threads  # not `or`: an explicit 0 is refused, not defaulted
    if jobs is None:
        jobs = max(1, cores // threads) if valid(threads) else 1
    return Dispatch(jobs=jobs, threads=threads, backend=backend, scheduler=scheduler, gpus=gpus)


# ---------------------------------------------------------------- one run, in a joblib task


def _worker_env(spec: RunSpec, jobs: int, runner: str | None, spawned_at: float) -> dict:
    env = {**tensorflow_env(spec.threads, speedups=spec.speedups), JOBS_ENV: str(jobs), RUNNER_ENV: runner or "",
           phases.SPAWNED_ENV: repr(spawned_at)}
    return imports.child_env(env)  # with `python -P`: this installation, never the current folder's packages


# How a worker ends when the benchmark is interrupted (Ctrl-C reaches the whole process
# group; a runner's death ends its workers): not a failure of the run, so no record.
INTERRUPTED_EXITS = (-signal.SIGINT, -signal.SIGTERM, EXIT_ORPHANED)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # the runner's; both stop it the same way


def _death_reason(returncode: int) -> str:
    if returncode < 0:
        return f"worker killed by signal {signal.Signals(-returncode).name}"
    return f"worker exited with status {returncode} without writing a record"


def run_in_subprocess(spec: RunSpec, jobs_at_once: int, runner: str | None = None,
                      files: runfiles.RunFiles | None = None,
                      gpus: tuple[str, ...] = ()) -> tuple[RunSpec, RunRecord | None, str]:
    """Run one spec in a fresh worker process; return (spec, record, log text).

    Runs inside a joblib task (a loky process or a Dask worker). It never raises for a
    run's failure: that is a record. The record is None when the worker was interrupted
    (see INTERRUPTED_EXITS), so the run stays pending. The record's phases get the worker's
    start and its seconds from there to its end (``phases.timed_by_runner``).

    Args:
        spec: the run.
        jobs_at_once: how many runs the benchmark runs side by side (recorded).
        runner: ``bench.lifetime.process_token`` of the runner; the worker exits when that
            process dies, if it runs on the same machine.
        files: where the run's files go; its log is written there as the worker runs when the
            results folder is at hand here, else into a temporary folder (the runner puts it in
            place with the record). None: a temporary log only.
        gpus: the GPUs of the dispatch; the worker holds one of them while it runs
            (``devices.claim``).
    """
    if runner and process_token(os.getppid()) == runner:
        exit_with_parent()  # a loky worker: it would outlive a runner killed with -9
    with tempfile.TemporaryDirectory(prefix="fishbench-run-") as tmp, devices.claim(gpus, jobs_at_once) as device:
        spec_path, out_path, log_path = (Path(tmp) / name for name in ("spec.json", "record.json", "run.log"))
        log_path = files.log_or(log_path) if files else log_path
        store.write_json_atomic(spec_path, spec.to_dict())
        command = [sys.executable, "-P", "-m", "bench.worker", str(spec_path), str(out_path)]
        started = now_iso()
        with open(log_path, "w") as log:
            log.write(runfiles.event_line("start", run_id=spec.run_id))
            log.flush()
            spawned_at, began = time.time(), time.monotonic()
            env = {**_worker_env(spec, jobs_at_once, runner, spawned_at), **(files.worker_env(spec) if files else {}),
                   **device}
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env)
            try:
                returncode = process.wait(timeout=spec.timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                returncode = None
            except BaseException:  # interrupted: take the worker down with us
                process.kill()
                raise
        total = time.monotonic() - began
        log_text = log_path.read_text(errors="replace")
        if returncode == 0 and out_path.exists():
            return spec, phases.timed_by_runner(store.read_record(out_path), spawned_at, total), log_text
        if returncode in INTERRUPTED_EXITS:
            return spec, None, log_text
        if returncode is None:
            status, error = "timeout", f"run exceeded timeout_s={spec.timeout_s:g} and was killed"
        else:
            status, error = "failed", f"{_death_reason(returncode)}; log tail:\n{log_text[-LOG_TAIL_CHARS:]}"
        record = RunRecord(run_id=spec.run_id, spec=spec, status=status, error=error,
                           environment={"threads_per_job": spec.threads, "jobs_at_once": jobs_at_once},
                           started_at=started, finished_at=now_iso())
        return spec, phases.timed_by_runner(record, spawned_at, total), log_text


# ---------------------------------------------------------------- backends


@contextmanager
def backend_context(dispatch: Dispatch):
    """joblib's parallel_config for the dispatch; a Dask client while it is open."""
    from joblib import parallel_config

    if dispatch.backend == "loky":
        with parallel_config(backend="loky", n_jobs=dispatch.jobs, idle_worker_timeout=LOKY_IDLE_SECONDS):
            yield
        return
    from dask.distributed import Client, LocalCluster

    if dispatch.scheduler:
        try:
            client = Client(dispatch.scheduler)
        except OSError as error:
            raise ValueError(f"cannot reach the Dask scheduler ({error}). Received: --scheduler {dispatch.scheduler}") from None
        with client, parallel_config(backend="dask", n_jobs=dispatch.jobs):
            yield client
        return
    with LocalCluster(n_workers=dispatch.jobs, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None, processes=True) as cluster, Client(cluster) as client, \
            parallel_config(backend="dask", n_jobs=dispatch.jobs):
        yield client


# ---------------------------------------------------------------- the benchmark


def echo(line: str) -> None:
    """Print a line at once, also when stdout is a pipe or a file (``| tee``, nohup)."""
    print(line, flush=True)


def hours_minutes_seconds(seconds: float) -> str:
    """``H:MM:SS``, hours unbounded (a long benchmark's ETA passes a day)."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def pending_specs(specs: list[RunSpec], results: Path, retry_failed: bool) -> list[RunSpec]:
    """The specs with no settled record, in the order the runner starts them: longest expected
    first, as the records time them (``schedule.longest_first``).

    Settled are ok and diverged; failed and timeout too unless retried. A file in ``runs/``
    that is not a record is named in a warning."""
    records, problems = store.load_records(results)
    for problem in problems:
        warnings.warn(f"skipping unreadable record {problem}", stacklevel=2)
    settled = {"ok", "diverged"} | (set() if retry_failed else {"failed", "timeout"})
    done = {r.run_id for r in records if r.status in settled}
    return longest_first([spec for spec in specs if spec.run_id not in done], records)


def plan_line(specs: list[RunSpec], pending: list[RunSpec], dispatch: Dispatch, results: Path) -> str:
    """'plan: 6 runs, 2 already recorded, 4 to run (2 jobs x 1 threads, loky) -> results/x/runs';
    with GPUs, '(2 jobs x 4 threads, loky, on GPUs 0, 1)'."""
    gpus = f", on GPU{'s' * (len(dispatch.gpus) > 1)} {', '.join(dispatch.gpus)}" if dispatch.gpus else ""
    return (f"plan: {len(specs)} runs, {len(specs) - len(pending)} already recorded, {len(pending)} to run "
            f"({dispatch.jobs} jobs x {dispatch.threads} threads, {dispatch.backend}{gpus}) -> {store.runs_dir(results)}")


def prepare_data(specs: list[RunSpec]) -> None:
    """Load (and so cache) every dataset once here, so workers only memory-map the cache."""
    for name, preprocess in sorted({(s.dataset, s.preprocess) for s in specs}, key=repr):
        data.load(name, preprocess)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def efficiency_line(records: list[RunRecord]) -> str:
    """'efficiency: 81 % = 0:03:10 of runs / (2 jobs x 0:01:57 ...)': of the records of one invocation."""
    (busy,) = phases.efficiencies(records)
    return (f"efficiency: {100 * busy.share:.0f} % = {hours_minutes_seconds(busy.run_seconds)} of runs / "
            f"({busy.jobs} jobs x {hours_minutes_seconds(busy.wall_seconds)} from the first run's start to the last "
            f"one's end)")


def run_benchmark(specs: list[RunSpec], results: Path, dispatch: Dispatch, retry_failed: bool = False,
                  out=echo, environment: dict | None = None) -> list[RunRecord]:
    """Run every spec without a settled record, longest expected first, and write each record
    as it arrives; the last line says how busy the jobs were (``efficiency_line``).

    Each record's environment gets this invocation's id (``phases.INVOCATION_KEY``: its start
    and the runner's pid) and the keys of ``environment`` (``bench.stopping``: the stopping
    rule that asked for the run).

    SIGTERM and SIGINT stop it the same way: in-flight workers are killed, finished records
    stay, and the same command later runs exactly the missing ones. SIGINT is handled here
    even when the shell started the runner in the background with SIGINT ignored. A run's log
    and history are in place before its record, which names them, so a recorded run always
    has its log.

    Returns:
        The records written by this invocation.
    """
    pending = pending_specs(specs, results, retry_failed)
    out(plan_line(specs, pending, dispatch, results))
    if not pending:
        return []
    written, stamp = [], {phases.INVOCATION_KEY: f"{now_iso()} pid {os.getpid()}", **(environment or {})}
    previous = {signum: signal.signal(signum, _raise_interrupt) for signum in STOP_SIGNALS}
    try:
        from joblib import Parallel, delayed

        from bench import progress  # late: it imports bench.plan, which imports this module

        prepare_data(pending)
        files, runner = runfiles.plan(pending, results), process_token(os.getpid())
        campaign = progress.Campaign(pending, files, dispatch.jobs, store.load_records(results)[0])
        with backend_context(dispatch), progress.shown(campaign, out) as finished:
            tasks = (delayed(run_in_subprocess)(spec, dispatch.jobs, runner, files[spec.run_id], dispatch.gpus)
                     for spec in pending)
            for spec, record, log_text in Parallel(return_as="generator_unordered")(tasks):
                if record is not None:
                    record = dataclasses.replace(record, environment={**record.environment, **stamp})
                    record = runfiles.keep(files[spec.run_id], record, log_text)
                    store.write_record(results, record)
                    written.append(record)
                finished(spec, record)
        if written:
            out(efficiency_line(written))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return written
