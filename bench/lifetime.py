"""Process lifetime: which process is which, and ending this one when its parent or the runner dies.

A benchmark's processes must not outlive it. The runner passes its identity, a token, to
every worker in ``BENCH_RUNNER``; a worker (and a loky worker of the runner, whose process
outlives a runner killed with -9) calls ``exit_with_parent`` and exits with EXIT_ORPHANED
once its parent or the runner is gone. The runner reads that exit as an interruption.
``worker_processes`` finds the workers on this machine: how many run at once, and which
ones still write into a runner's temporary folder.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil

PARENT_POLL_SECONDS = 1.0
RUNNER_ENV = "BENCH_RUNNER"  # process_token() of the runner; set for every worker
PARENT_ENV = "BENCH_PARENT"  # pid of the process that started the worker; set for every worker
WORKER_MODULE = "bench.run.worker"  # run as ``python -m bench.run.worker SPEC.json OUT.json``
EXIT_ORPHANED = 3
_ENDED = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def process_token(pid: int) -> str | None:
    """``boot_time:pid:create_time`` of a live process on this machine, else None.

    Unlike a bare pid, the token tells a process from a later one given the same pid, and
    this machine from another (a Dask worker elsewhere): psutil's boot time stands in for
    the machine, since a process elsewhere would need the same pid, creation time and boot
    second. A zombie counts as dead. Both times follow the system clock, so a token made
    before the clock was stepped no longer matches: it then reads as another machine's.
    """
    try:
        return _token(psutil.Process(pid))
    except psutil.Error:
        return None


_watching = threading.Event()


def exit_with_parent(parent: int | None = None, note: Path | None = None) -> None:
    """End this process when its parent or the runner (``BENCH_RUNNER``) dies; once per process.

    A runner token that names no live process here (another machine's) is ignored: the
    parent alone is watched.

    Args:
        parent: the pid of the process that started this one, if known; None takes the
            parent of the moment, which is already init's when the parent died first.
        note: a file to write when it is the parent that died while this process watched
            it, before exiting: how the runner tells a run whose joblib worker was killed
            under it from the others. A process whose parent was already gone when it
            started watching leaves none: its run never got under way there (loky, breaking
            a pool, kills each worker's children and then the worker, and a child started
            meanwhile finds its parent dead), so the runner runs it again.
    """
    if _watching.is_set():
        return
    _watching.set()
    parent = parent or os.getppid()
    runner = _find(os.environ.get(RUNNER_ENV) or "")

    def watch():
        watched = os.getppid() == parent
        while os.getppid() == parent and (runner is None or _alive(runner)):
            time.sleep(PARENT_POLL_SECONDS)
        if note and watched and os.getppid() != parent:
            note.write_text(f"parent {parent} died\n")
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def worker_processes(under: Path | None = None) -> list[psutil.Process]:
    """The live ``python -m bench.run.worker`` processes on this machine, of every runner.

    Args:
        under: only those whose spec file lies in this folder (one runner's temporary folder).
    """
    prefix = str(under) + os.sep if under else ""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        command = process.info["cmdline"] or []
        if (process.info["status"] not in _ENDED and _runs_module(command, WORKER_MODULE)
                and any(arg.startswith(prefix) for arg in command[-2:])):
            found.append(process)
    return found


def _runs_module(command: list[str], module: str) -> bool:
    return any(flag == "-m" and name == module for flag, name in zip(command, command[1:]))


def _token(process: psutil.Process) -> str | None:
    if process.status() in _ENDED:
        return None
    return f"{psutil.boot_time():.0f}:{process.pid}:{process.create_time()!r}"


def alive(token: str) -> bool:
    """Whether ``token`` names a live process on this machine."""
    return _find(token) is not None


def _find(token: str) -> psutil.Process | None:
    """The live process on this machine that ``token`` names, else None."""
    pid = token.split(":")[1] if token.count(":") == 2 else ""
    if not pid.isdigit():
        return None
    try:
        process = psutil.Process(int(pid))
        return process if _token(process) == token else None
    except psutil.Error:
        return None


def _alive(process: psutil.Process) -> bool:
    """Whether ``process`` still runs: not reaped, not a zombie, its pid not taken by another.

    psutil knows a process by its pid and its start in ticks since boot, so a change of the
    system clock is no death.
    """
    try:
        return process.is_running() and process.status() not in _ENDED
    except psutil.Error:
        return False
