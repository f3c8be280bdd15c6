"""Plan, resume and dispatch: the RunSpecs of a profile, minus those already recorded, run in parallel.

Each run is one task for joblib's loky processes (by default) or for a Dask cluster (docs/cluster.md:
``on_cluster``), at most ``--jobs`` of them given out at once; the task starts a fresh ``python -m bench.run.worker``
subprocess with its thread counts set before TensorFlow starts, its output going into the run's log
(``bench.records.runfiles``: in the results folder as it trains, where that folder is at hand),
waits for it with a timeout, and returns the record and the log to this process, which writes each
record as it arrives and shows the runs in flight (``bench.run.progress``). A worker that dies or
times out still yields a record saying so; one that was interrupted yields none, so it runs next
time, from its checkpoint after its latest epoch (``bench.run.checkpoint``; so does one killed with
SIGKILL after it checkpointed). A loky worker killed under its run makes that run, and only that
one, a failed record when it has no checkpoint: loky then ends the other workers of the broken
pool, and their runs go on in a new pool (``killed_under``). A run Dask gives up on, its workers
having died under it too often, is a failed record too, and the other runs go on (``dask_gave_up``).
Pending runs start longest expected first (``bench.run.schedule``), so that the jobs finish
together; each record gets the runner's times of its run (``bench.records.phases``), and the last
line says how busy the jobs were.

One runner at a time works on a results folder (bench.records.lock). Nothing outlives the runner:
its loky workers and their bench.run.worker children exit when it dies, even by kill -9 (see
bench.lifetime), and what they write outside the results folder is in the runner's
temporary folder, removed on every exit path (bench.run.scratch). Nothing here knows about
tables.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import imports
from bench.data import datasets
from bench.environment import JOBS_ENV
from bench.files import now_iso, open_for_writing, write_json_atomic
from bench.lifetime import (
    EXIT_ORPHANED,
    PARENT_ENV,
    PARENT_POLL_SECONDS,
    RUNNER_ENV,
    WORKER_MODULE,
    exit_with_parent,
    process_token,
    worker_processes,
)
from bench.records import lock, phases, runfiles, store
from bench.records.results import Results
from bench.records.store import RunRecord
from bench.run import devices, progress, scratch
from bench.run.console import echo, hours_minutes_seconds
from bench.run.schedule import longest_first
from bench.spec import RunSpec
from bench.speedups.process import tensorflow_env

LOG_TAIL_CHARS = 4000  # of a dead worker's log, kept in its record's error text
BACKENDS = ("loky", "dask")
# Idle loky workers exit after this many seconds instead of joblib's 300 (plus loky's 30 s
# grace); one that ran a task exits at once when the runner dies (see run_in_subprocess).
LOKY_IDLE_SECONDS = 10
SAMPLE_SECONDS = 1.0  # how often a run counts the runs on its machine (its record's jobs_at_once)
UNBLAMED_BREAKS = 3  # pools broken with no run to blame before the runner gives up
# A running Dask cluster: how long to wait for its scheduler's file (a batch job may start the
# runner beside the scheduler that writes it), and for its first worker to join.
SCHEDULER_FILE_SECONDS = 60
FIRST_WORKER_SECONDS = 60


@dataclass(frozen=True)
class Workers:
    """The workers of a running Dask cluster as the runner found them at its start; each of
    their threads runs one run at a time."""

    count: int
    threads: int

    def __str__(self) -> str:
        return f"{self.count} worker{'s' * (self.count > 1)} with {self.threads} thread{'s' * (self.threads > 1)}"


@dataclass(frozen=True)
class Dispatch:
    """How runs are spread: jobs at once, TensorFlow threads each, the backend (loky or dask), and the
    GPUs the runs take turns on (``bench.run.devices``; none: the CPU).

    On a running Dask cluster (``scheduler`` or ``scheduler_file``), jobs is the most runs given
    to it at once (None: all of them), and ``at_once`` the runs it runs at once: at most its
    workers' threads (``workers``, found by ``run_benchmark``).
    """

    jobs: int | None
    threads: int
    backend: str = "loky"
    scheduler: str | None = None  # a Dask scheduler address; None starts a LocalCluster
    gpus: tuple[str, ...] = ()  # ids for CUDA_VISIBLE_DEVICES, one run on each at a time
    scheduler_file: str | None = None  # or the file a Dask scheduler wrote its address into
    workers: Workers | None = None  # a running cluster's, as found when its runs start

    def __post_init__(self):
        for name in ("jobs", "threads"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1) and not (name == "jobs" and value is None and self.elsewhere):
                raise ValueError(f"{name} must be an integer >= 1. Received: {name}={value!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}. Received: backend={self.backend!r}")
        if self.scheduler and self.scheduler_file:
            raise ValueError(f"give --scheduler or --scheduler-file, not both. Received: --scheduler {self.scheduler} "
                             f"--scheduler-file {self.scheduler_file}")
        if self.elsewhere and self.backend != "dask":
            flag = "--scheduler" if self.scheduler else "--scheduler-file"
            raise ValueError(f"{flag} needs --backend dask. Received: backend={self.backend!r}")
        if self.backend == "dask" and importlib.util.find_spec("distributed") is None:
            raise ValueError("--backend dask needs Dask: pip install 'dask[distributed]'. Received: backend='dask'")

    @property
    def elsewhere(self) -> bool:
        """Whether the runs go to a running Dask cluster, not to processes this runner starts."""
        return bool(self.scheduler or self.scheduler_file)

    @property
    def cluster_flag(self) -> str:
        """The flag that names the running cluster, as typed: '--scheduler tcp://...'."""
        return f"--scheduler {self.scheduler}" if self.scheduler else f"--scheduler-file {self.scheduler_file}"

    @property
    def at_once(self) -> int:
        """Runs at once: jobs, fewer when a running cluster's workers have fewer threads."""
        return min((n for n in (self.jobs, self.workers and self.workers.threads) if n), default=1)


def default_dispatch(jobs: int | None, threads: int | None, backend: str = "loky", scheduler: str | None = None,
                     gpus: tuple[str, ...] = (), scheduler_file: str | None = None) -> Dispatch:
    """Fill unset jobs and threads: on the CPU, one thread per job and as many jobs as cores;
    with GPUs (``devices.visible_gpus``), one job per GPU and the cores shared among them.

    Two single-threaded runs side by side beat one two-threaded run on small models, whose
    per-op work is too little to split across threads. A Dask cluster elsewhere
    (``scheduler`` or ``scheduler_file``) has GPUs and cores of its own, not these: its runs are
    not pinned here, unset jobs stay unset (as many as its workers' threads), and only without
    one are threads refused beyond this machine's cores.
    """
    elsewhere = bool(scheduler or scheduler_file)
    cores, gpus = os.cpu_count() or 1, () if elsewhere else tuple(gpus)
    if threads is not None and not elsewhere and threads > cores:  # a cluster's workers have cores of their own
        raise ValueError(f"--threads must be at most this machine's {cores} cores. Received: --threads {threads}")
    valid = lambda n: isinstance(n, int) and n >= 1  # noqa: E731 - an invalid one is refused below
    if gpus:
        jobs = len(gpus) if jobs is None else jobs
        threads = (max(1, cores // jobs) if valid(jobs) else 1) if threads is None else threads
    threads = 1 if threads is None else threads  # not `or`: an explicit 0 is refused, not defaulted
    if jobs is None and not elsewhere:
        jobs = max(1, cores // threads) if valid(threads) else 1
    return Dispatch(jobs=jobs, threads=threads, backend=backend, scheduler=scheduler, gpus=gpus,
                    scheduler_file=scheduler_file)


def fitted(dispatch: Dispatch, runs: int) -> Dispatch:
    """The dispatch for ``runs`` runs: jobs at most these (unset on a running cluster: all of
    them), and a running cluster's workers as found now (``cluster_workers``)."""
    if dispatch.elsewhere and runs:
        with connected(dispatch) as client:
            workers = cluster_workers(client, dispatch)
        return dataclasses.replace(dispatch, jobs=min(dispatch.jobs or runs, runs), workers=workers)
    return dataclasses.replace(dispatch, jobs=max(1, min(dispatch.jobs or 1, runs)))


# ---------------------------------------------------------------- one run, in a loky or Dask task


def _worker_env(spec: RunSpec, jobs: int, runner: str | None, folder: Path, spawned_at: float) -> dict:
    env = {**tensorflow_env(spec.threads, speedups=spec.speedups), JOBS_ENV: str(jobs), RUNNER_ENV: runner or "",
           PARENT_ENV: str(os.getpid()), "TMPDIR": str(folder / scratch.WORKER_TMP), phases.SPAWNED_ENV: repr(spawned_at)}
    return imports.child_env(env)  # with `python -P`: this installation, never the current folder's packages


# How a worker ends when the benchmark is interrupted (Ctrl-C reaches the whole process
# group, a closed terminal hangs it up; a runner's death ends its workers): not a failure
# of the run, so no record.
INTERRUPTED_EXITS = (-signal.SIGINT, -signal.SIGTERM, -signal.SIGHUP, EXIT_ORPHANED)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # the runner's; all stop it the same way


def _death_reason(returncode: int) -> str:
    if returncode < 0:
        return f"worker killed by signal {signal.Signals(-returncode).name}"
    return f"worker exited with status {returncode} without writing a record"


def failure(spec: RunSpec, status: str, error: str, started: str | None, jobs_at_once: int) -> RunRecord:
    """The record of a run whose worker wrote none."""
    return RunRecord(run_id=spec.run_id, spec=spec, status=status, error=error,
                     environment={"threads_per_job": spec.threads, "jobs_at_once": jobs_at_once},
                     started_at=started, finished_at=now_iso())


def iso_time(timestamp: float) -> str:
    """A Unix time as a record's times are written (``now_iso``)."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def run_in_subprocess(spec: RunSpec, jobs_at_once: int, runner: str | None = None, folder: Path | None = None,
                      files: runfiles.RunFiles | None = None,
                      gpus: tuple[str, ...] = ()) -> tuple[RunSpec, RunRecord | None, str]:
    """Run one spec in a fresh worker process; return (spec, record, log text).

    Runs inside a task of a loky process or a Dask worker. It never raises for a
    run's failure: that is a record. The record is None when the worker was interrupted
    (see INTERRUPTED_EXITS), so the run stays pending. The record's ``jobs_at_once`` is the
    most runs seen on this machine while it ran, of any runner, itself included; its phases
    get the worker's start and its seconds from there to its end (``phases.timed_by_runner``).

    Args:
        spec: the run.
        jobs_at_once: how many runs this runner runs side by side (for the worker).
        runner: ``bench.lifetime.process_token`` of the runner; the worker exits when that
            process dies, if it runs on the same machine.
        folder: the runner's temporary folder (``bench.run.scratch``); the run's own folder goes
            into it when this process is on the runner's machine.
        files: where the run's files go; its log is written there as the worker runs when the
            results folder is at hand here, else into the run's folder (the runner puts it in
            place with the record). None: the run's folder only.
        gpus: the GPUs of the dispatch; the worker holds one of them while it runs
            (``devices.claim``).
    """
    if runner and process_token(os.getppid()) == runner:
        exit_with_parent()  # a loky worker: it would outlive a runner killed with -9
    with scratch.run_folder(spec.run_id, folder) as run, devices.claim(gpus, jobs_at_once) as device:
        spec_path, out_path, log_path = (run / name for name in (scratch.SPEC, scratch.RECORD, scratch.LOG))
        log_path = files.log_or(log_path) if files else log_path
        write_json_atomic(spec_path, spec.to_dict())
        command = [sys.executable, "-P", "-m", WORKER_MODULE, str(spec_path), str(out_path)]
        started = now_iso()
        with open_for_writing(log_path) as log:
            log.write(runfiles.event_line("start", run_id=spec.run_id))
            log.flush()
            spawned_at, began = time.time(), time.monotonic()
            env = {**_worker_env(spec, jobs_at_once, runner, run, spawned_at),
                   **(files.worker_env(spec) if files else {}), **device}
            returncode, at_once = _run_worker(command, log, env, spec.timeout_s)
        total = time.monotonic() - began
        log_text = log_path.read_text(errors="replace")
        if returncode == 0 and out_path.exists():
            record = store.read_record(out_path)
            record = dataclasses.replace(record, environment={**record.environment, "jobs_at_once": at_once})
            return spec, phases.timed_by_runner(record, spawned_at, total), log_text
        if returncode in INTERRUPTED_EXITS or (returncode == -signal.SIGKILL and resumable(spec, files)):
            return spec, None, log_text
        if returncode is None:
            status, error = "timeout", f"run exceeded timeout_s={spec.timeout_s:g} and was killed"
        else:
            status, error = "failed", f"{_death_reason(returncode)}; log tail:\n{log_text[-LOG_TAIL_CHARS:]}"
        return spec, phases.timed_by_runner(failure(spec, status, error, started, at_once), spawned_at, total), log_text


def resumable(spec: RunSpec, files: runfiles.RunFiles | None) -> bool:
    """Whether the run left a checkpoint to resume from: then a worker killed under it (SIGKILL,
    or its loky worker's death) is not a failure, the run is pending, as after an interrupt."""
    return files is not None and runfiles.checkpoint_saved(files.checkpoint(spec.run_id))


def _run_worker(command: list[str], log, env: dict, timeout_s: float) -> tuple[int | None, int]:
    """Start a worker and wait for it, killing it at the timeout or when interrupted.

    Returns:
        Its exit status (None: killed at the timeout), and the most workers seen running at
        once on this machine meanwhile, counted every SAMPLE_SECONDS.
    """
    with _sigint_blocked():  # until the worker is ready to die of it (bench.run.worker)
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    deadline, at_once = time.monotonic() + timeout_s, 1
    try:
        while True:
            at_once = max(at_once, 1 + sum(worker.pid != process.pid for worker in worker_processes()))
            try:
                return process.wait(timeout=min(SAMPLE_SECONDS, max(deadline - time.monotonic(), 0))), at_once
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    process.kill()
                    process.wait()
                    return None, at_once
    except BaseException:  # interrupted: take the worker down with us
        process.kill()
        raise


@contextmanager
def _sigint_blocked():
    """SIGINT held back in this thread, and so in a child started meanwhile, which unblocks it.

    A worker's Python would turn a SIGINT during its start-up (``site``, its imports) into a
    KeyboardInterrupt traceback and exit 1, a failure; blocked, the signal waits until the
    worker makes it fatal, and the worker dies of it at any moment (bench.run.worker).
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def killed_under(specs: list[RunSpec], folder: Path, files: dict, error: BrokenProcessPool,
                 jobs_at_once: int) -> list[tuple[RunSpec, RunRecord, str]]:
    """After a joblib worker died: the runs it was running, as failed records with their logs.

    The promise: only the run whose joblib worker died under it is recorded failed; every
    other run in flight is rerun. loky breaks the pool and kills its other workers, each
    after its bench.run.worker; the bench.run.worker under the dead one is orphaned and
    writes ``scratch.PARENT_DIED`` into its run's folder before it exits (bench.lifetime),
    which one that loky killed, or that started as loky killed its parent, never does. Once
    they are all gone, a run with that note is the dead worker's; the other runs' folders
    go, and they stay to do.
    """
    scratch.end_workers(folder, grace=2 * PARENT_POLL_SECONDS + 1)
    codes = re.search(r"exit codes of the workers are (\{.*?\})", str(error))
    cause = f"the joblib worker running it died (exit codes {codes[1] if codes else 'unknown'})"
    found = []
    for spec in specs:
        run = folder / spec.run_id
        if (run / scratch.PARENT_DIED).exists() and not resumable(spec, files[spec.run_id]):
            log_path = files[spec.run_id].log_or(run / scratch.LOG)  # where run_in_subprocess wrote it
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
            spawned_at = (run / scratch.SPEC).stat().st_mtime  # written just before the worker started
            record = failure(spec, "failed", f"{cause}; log tail:\n{log[-LOG_TAIL_CHARS:]}", iso_time(spawned_at),
                             jobs_at_once)
            found.append((spec, phases.timed_by_runner(record, spawned_at, time.time() - spawned_at), log))
        shutil.rmtree(run, ignore_errors=True)
    return found


# ---------------------------------------------------------------- backends


@contextmanager
def backend_context(dispatch: Dispatch, folder: Path):
    """A Dask client of the dispatch's cluster while it is open; for loky, joblib's
    parallel_config, yielding None.

    A LocalCluster (its scheduler and workers) keeps its scratch space in ``folder``, the
    runner's temporary folder.
    """
    from joblib import parallel_config

    if dispatch.backend == "loky":
        with parallel_config(backend="loky", n_jobs=dispatch.jobs, idle_worker_timeout=LOKY_IDLE_SECONDS):
            yield None
        return
    import dask
    from dask.distributed import Client, LocalCluster

    if dispatch.elsewhere:
        with connected(dispatch) as client:
            yield client
        return
    with dask.config.set({"temporary-directory": str(folder)}), \
            LocalCluster(n_workers=dispatch.jobs, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                         processes=True) as cluster, Client(cluster) as client:
        yield client


def scheduler_address(dispatch: Dispatch) -> str:
    """The running cluster's scheduler address: ``scheduler``, or the one its scheduler wrote into
    ``scheduler_file``, waiting SCHEDULER_FILE_SECONDS for that file to appear.

    Raises:
        ValueError: the file does not appear, or holds no address.
    """
    if dispatch.scheduler:
        return dispatch.scheduler
    path, deadline = Path(dispatch.scheduler_file), time.monotonic() + SCHEDULER_FILE_SECONDS
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(1)
    try:
        return json.loads(path.read_text())["address"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"--scheduler-file must name the file a Dask scheduler wrote (dask scheduler --scheduler-file "
                         f"FILE); none readable after {SCHEDULER_FILE_SECONDS} s ({error!r}). Received: "
                         f"{dispatch.cluster_flag}") from None


@contextmanager
def connected(dispatch: Dispatch):
    """A Dask client of the running cluster the dispatch names, closed on the way out.

    Raises:
        ValueError: its scheduler cannot be reached (or found: ``scheduler_address``).
    """
    from dask.distributed import Client  # deferred for start-up time: Dask only for its backend

    address = scheduler_address(dispatch)
    try:
        client = Client(address)
    except OSError as error:
        raise ValueError(f"cannot reach the Dask scheduler at {address} ({error}). Received: "
                         f"{dispatch.cluster_flag}") from None
    with client:
        yield client


def cluster_workers(client, dispatch: Dispatch) -> Workers:
    """The cluster's workers and their threads now, once one has joined.

    Raises:
        ValueError: none joined within FIRST_WORKER_SECONDS.
    """
    try:
        client.wait_for_workers(1, timeout=FIRST_WORKER_SECONDS)
    except TimeoutError:
        raise ValueError(f"no Dask worker joined the scheduler at {client.scheduler.address} within "
                         f"{FIRST_WORKER_SECONDS} s; start workers (docs/cluster.md). Received: "
                         f"{dispatch.cluster_flag}") from None
    threads = client.nthreads()
    return Workers(count=len(threads), threads=sum(threads.values()))


# ---------------------------------------------------------------- the benchmark


def pending_specs(specs: list[RunSpec], results: Path, retry_failed: bool) -> list[RunSpec]:
    """The specs with no settled record, in the order the runner starts them: longest expected
    first, as the records time them (``schedule.longest_first``).

    Settled are ok and diverged; failed and timeout too unless retried. A file in ``runs/``
    that is not a record is named in a warning."""
    records, problems = Results(results).records()
    for problem in problems:
        warnings.warn(f"skipping unreadable record {problem}", stacklevel=2)
    settled = {"ok", "diverged"} | (set() if retry_failed else {"failed", "timeout"})
    done = {r.run_id for r in records if r.status in settled}
    return longest_first([spec for spec in specs if spec.run_id not in done], records)


def plan_line(specs: list[RunSpec], pending: list[RunSpec], dispatch: Dispatch, results: Path) -> str:
    """'plan: 6 runs, 2 already recorded, 4 to run (2 jobs x 1 threads, loky) -> results/x/runs';
    with GPUs, '(2 jobs x 4 threads, loky, on GPUs 0, 1)'; on a running Dask cluster, its
    workers: '(3 jobs x 1 threads, dask, on 2 workers with 3 threads; up to 4 as workers join)'."""
    gpus = f", on GPU{'s' * (len(dispatch.gpus) > 1)} {', '.join(dispatch.gpus)}" if dispatch.gpus else ""
    workers = f", on {dispatch.workers}" if dispatch.workers else ""
    more = f"; up to {dispatch.jobs} as workers join" if dispatch.jobs and dispatch.jobs > dispatch.at_once else ""
    return (f"plan: {len(specs)} runs, {len(specs) - len(pending)} already recorded, {len(pending)} to run "
            f"({dispatch.at_once} jobs x {dispatch.threads} threads, {dispatch.backend}{gpus}{workers}{more}) -> "
            f"{Results(results).runs}")


def prepare_data(specs: list[RunSpec]) -> None:
    """Load (and so cache) every dataset once here, so workers only memory-map the cache."""
    for name, preprocess in sorted({(s.dataset, s.preprocess) for s in specs}, key=repr):
        datasets.load(name, preprocess)


def remove_partial_writes(results: Path) -> None:
    """Remove what writes cut short by a kill -9 left in runs/ and logs/ (``bench.records.store``'s
    ``.<name>.XXXX.tmp``); only the lock's holder may, since another runner's could be live."""
    for pattern in ("runs/.*.json.*.tmp", "logs/.*.log.*.tmp"):
        for path in results.glob(pattern):
            path.unlink(missing_ok=True)


@dataclass
class Interrupts:
    """How STOP_SIGNALS stop the runner (``stopped_by_signals``): a KeyboardInterrupt at once or,
    inside ``held()``, as the block ends, so that a run's record and its line go out together."""

    holding: bool = False
    pending: int | None = None

    def handle(self, signum, frame):
        if not self.holding:
            raise KeyboardInterrupt(signal.Signals(signum).name)
        self.pending = self.pending or signum

    @contextmanager
    def held(self):
        self.holding = True
        try:
            yield
        finally:  # a block that raises stops the runner with its own error
            self.holding, signum, self.pending = False, self.pending, None
        if signum:
            raise KeyboardInterrupt(signal.Signals(signum).name)


INTERRUPTS = Interrupts()


def efficiency_line(records: list[RunRecord]) -> str:
    """'efficiency: 81 % = 0:03:10 of runs / (2 jobs x 0:01:57 ...)': of the records of one invocation."""
    (busy,) = phases.efficiencies(records)
    return (f"efficiency: {100 * busy.share:.0f} % = {hours_minutes_seconds(busy.run_seconds)} of runs / "
            f"({busy.jobs} jobs x {hours_minutes_seconds(busy.wall_seconds)} from the first run's start to the last "
            f"one's end)")


@contextmanager
def stopped_by_signals():
    """STOP_SIGNALS raise KeyboardInterrupt while the block runs (``INTERRUPTS``), SIGINT even where a shell
    ignored it, SIGHUP not where it is ignored (nohup: it should run on)."""
    signums = [s for s in STOP_SIGNALS if s != signal.SIGHUP or signal.getsignal(s) is not signal.SIG_IGN]
    previous = {signum: signal.signal(signum, INTERRUPTS.handle) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_benchmark(specs: list[RunSpec], results: Path, dispatch: Dispatch, retry_failed: bool = False,
                  out=echo, environment: dict | None = None) -> list[RunRecord]:
    """Run every spec without a settled record, longest expected first, and write each record
    as it arrives; the last line says how busy the jobs were (``efficiency_line``).

    Each record's environment gets this invocation's id (``phases.INVOCATION_KEY``: its start
    and the runner's pid) and the keys of ``environment`` (``bench.run.stopping``: the stopping
    rule that asked for the run). Jobs are capped at the runs to run; on a running Dask cluster,
    the runs at once are counted on its workers (``fitted``), in the plan line and the efficiency.

    It holds the results folder (``bench.records.lock``) from before it reads the records until its
    last worker has ended, and writes the records of runs recorded by none before. SIGTERM,
    SIGINT and SIGHUP stop it the same way: in-flight workers are killed, finished records
    stay, and the same command later runs exactly the missing ones. SIGINT is handled here
    even when the shell started the runner in the background with SIGINT ignored. A run's log
    and history are in place before its record, which names them, so a recorded run always
    has its log.

    Returns:
        The records written by this invocation.

    Raises:
        ValueError: the results folder cannot be written; lock.Busy: another runner holds it;
        lock.WriteFailed: a record could not be written (the ones before it are whole).
    """
    with stopped_by_signals(), lock.hold(results):
        remove_partial_writes(results)
        pending = pending_specs(specs, results, retry_failed)
        dispatch = fitted(dispatch, len(pending))
        out(plan_line(specs, pending, dispatch, results))
        if not pending:
            return []
        prepare_data(pending)
        stamp = {phases.INVOCATION_KEY: f"{now_iso()} pid {os.getpid()}", phases.JOBS_KEY: dispatch.at_once,
                 **(environment or {})}
        files = runfiles.plan(pending, results)
        campaign = progress.Campaign(pending, files, dispatch.at_once, Results(results).records()[0])
        with scratch.runner_folder() as folder, progress.shown(campaign, out) as finished:
            written = _dispatch(pending, results, dispatch, folder, files, finished, stamp)
        Results(results).remove_empty_checkpoints()
        if written:
            out(efficiency_line(written))
        return written


def _dispatch(pending: list[RunSpec], results: Path, dispatch: Dispatch, folder: Path, files: dict,
              finished, environment: dict | None) -> list[RunRecord]:
    """Run the specs through joblib's loky processes or on a Dask cluster (``on_cluster``), calling
    ``finished(spec, record)`` as each ends (record None: interrupted); when a killed loky worker
    breaks the pool, record its run failed and run the others in a new pool."""
    from joblib import Parallel, delayed

    written, todo, runner, unblamed = [], list(pending), process_token(os.getpid()), 0

    def settle(spec: RunSpec, record: RunRecord | None, log_text: str) -> None:
        with INTERRUPTS.held():
            todo.remove(spec)
            if record is not None:
                written.append(write_run(results, files[spec.run_id], record, log_text, environment))
            finished(spec, written[-1] if record is not None else None)

    while todo:
        try:
            with backend_context(dispatch, folder) as client:
                if client is not None:
                    outcomes = on_cluster(client, list(todo), dispatch, runner, folder, files)
                else:
                    tasks = [delayed(run_in_subprocess)(spec, dispatch.at_once, runner, folder, files[spec.run_id],
                                                        dispatch.gpus) for spec in todo]
                    outcomes = Parallel(return_as="generator_unordered", pre_dispatch=dispatch.jobs,
                                        batch_size=1)(tasks)
                for outcome in outcomes:
                    settle(*outcome)
        except BrokenProcessPool as error:
            killed = killed_under(todo, folder, files, error, dispatch.at_once)
            unblamed += not killed
            if unblamed >= UNBLAMED_BREAKS:
                raise
            for outcome in killed:
                settle(*outcome)
    return written


def on_cluster(client, specs: list[RunSpec], dispatch: Dispatch, runner: str, folder: Path,
               files: dict) -> Iterator[tuple[RunSpec, RunRecord | None, str]]:
    """The outcomes of the specs' runs on a Dask cluster, as each ends, at most ``dispatch.jobs``
    given out at once (a cluster would take as many as it has threads).

    Each run is a task of its own, so a run Dask gives up on (``dask_gave_up``) is that run's
    failed record and the others go on; joblib's Dask backend would end them all.
    """
    from distributed import KilledWorker, as_completed  # deferred for start-up time: Dask only for its backend

    waiting, given, ended = iter(specs), {}, as_completed()

    def give() -> None:
        spec = next(waiting, None)
        if spec is not None:
            future = client.submit(run_in_subprocess, spec, dispatch.at_once, runner, folder, files[spec.run_id],
                                   dispatch.gpus, pure=False)
            given[future] = spec, time.time()
            ended.add(future)

    for _ in range(dispatch.jobs):
        give()
    for future in ended:
        spec, given_at = given.pop(future)
        give()
        try:
            outcome = future.result()
        except KilledWorker as error:
            outcome = dask_gave_up(spec, error, files[spec.run_id], folder, given_at, dispatch.at_once)
        yield outcome


def dask_gave_up(spec: RunSpec, error, files: runfiles.RunFiles, folder: Path, given_at: float,
                 jobs_at_once: int) -> tuple[RunSpec, RunRecord, str]:
    """The failed record, with its log, of a run whose Dask workers died under it more often than
    the scheduler allows (``error``, Dask's KilledWorker); its times run from when it was given
    to the cluster."""
    log_path = files.log_or(folder / spec.run_id / scratch.LOG)  # where run_in_subprocess wrote it, if here
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    cause = (f"the Dask workers running it died {error.allowed_failures + 1} times (KilledWorker; "
             f"distributed.scheduler.allowed-failures = {error.allowed_failures}), the last one "
             f"{error.last_worker.address}")
    record = failure(spec, "failed", f"{cause}; log tail:\n{log[-LOG_TAIL_CHARS:]}", iso_time(given_at), jobs_at_once)
    return spec, phases.timed_by_runner(record, given_at, time.time() - given_at), log


def write_run(results: Path, files: runfiles.RunFiles, record: RunRecord, log_text: str,
              environment: dict | None) -> RunRecord:
    """Put a run's log and history in place (``runfiles.place_files``), then write its record, which
    names them, then remove its checkpoint (kept with --save-weights); a failed write stops the
    runner in one line."""
    if environment:
        record = dataclasses.replace(record, environment={**record.environment, **environment})
    try:
        record = runfiles.place_files(files, record, log_text)
        Results(results).write(record)
        if not record.spec.save_weights:
            Results(results).remove_checkpoint(record.run_id)
    except OSError as error:
        raise lock.WriteFailed(f"cannot write the record of run {record.run_id} into {Results(results).runs} "
                               f"({error.strerror or error}); the records written before it are kept: make room, "
                               f"then run the same command again") from None
    return record
