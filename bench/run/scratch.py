"""A runner's temporary folder: whatever its runs write outside the results folder, removed on every exit path.

One folder per runner in the temporary directory, ``fishbench-runner-<its token>-XXXX``,
holds a folder per run in flight (the spec, the worker's record and log, and the worker's
own TMPDIR, where TensorFlow writes its autograph files) and Dask's scratch space. Every
file the benchmark leaves is under it, so removing it is the whole cleanup: done when the
runner ends, however it ends, once the workers that could still write into it are gone (a
loky worker killed with SIGKILL never closes what it opened). A runner killed with -9
cannot clean up; the next runner on this machine removes the folders of runners that no
longer exist: only those that hold MARKER, the file each runner writes into its folder as it
makes it, so a folder of the user's that happens to start with PREFIX is never touched.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import psutil

from bench import lifetime

PREFIX = "fishbench-runner-"
RUN_PREFIX = "fishbench-run-"  # a run's folder where the runner's is not at hand (a Dask worker elsewhere)
# A run's folder: its spec, the worker's record and log, the worker's TMPDIR, and the note
# an orphaned worker leaves there (bench.lifetime.exit_with_parent).
SPEC, RECORD, LOG, WORKER_TMP, PARENT_DIED = "spec.json", "record.json", "run.log", "tmp", "parent-died"
END_SECONDS = 10  # to wait for a killed worker to be gone
MARKER = ".made-by-fishbench"  # in a runner's folder: the sweep removes no folder without it


@contextmanager
def runner_folder():
    """This runner's temporary folder, after removing those of runners that died; removed on the way out."""
    sweep()
    token = lifetime.process_token(os.getpid())
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{token.replace(':', '_')}-"))
    try:
        (folder / MARKER).write_text(f"{token}\n")
        yield folder
    finally:
        end_workers(folder)
        shutil.rmtree(folder, ignore_errors=True)


def sweep() -> None:
    """Remove the temporary folders of runners that no longer run (killed with -9): folders,
    not links to one, that hold this program's MARKER."""
    for folder in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        token = folder.name[len(PREFIX):].rpartition("-")[0].replace("_", ":")
        ours = not folder.is_symlink() and (folder / MARKER).is_file() and not (folder / MARKER).is_symlink()
        if ours and not lifetime.alive(token):
            end_workers(folder)
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def run_folder(run_id: str, runner: Path | None):
    """The folder of one run in flight, inside the runner's folder when it is on this machine; removed after.

    A folder already there is a previous attempt's whose process died with no chance to
    remove it (a Dask worker killed under its task, which the scheduler then runs again, here
    or on another worker of the machine): its worker is ended and the folder emptied, so the
    run starts afresh.
    """
    if runner is None or not runner.is_dir():
        with tempfile.TemporaryDirectory(prefix=RUN_PREFIX) as folder:
            (Path(folder) / WORKER_TMP).mkdir()
            yield Path(folder)
        return
    folder = runner / run_id
    if folder.exists():
        end_workers(folder, grace=lifetime.PARENT_POLL_SECONDS + 1)
        shutil.rmtree(folder, ignore_errors=True)
    (folder / WORKER_TMP).mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def end_workers(folder: Path, grace: float = 0.0) -> None:
    """Let the workers whose runs are in ``folder`` end within ``grace`` seconds, then kill the rest."""
    workers = lifetime.worker_processes(under=folder)
    _, alive = psutil.wait_procs(workers, timeout=grace) if grace else ([], workers)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=END_SECONDS)
