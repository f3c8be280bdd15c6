"""One runner per results folder: a lock taken before anything runs, and the folder's write errors in one line.

``bench run`` holds ``<results>/.run.lock`` (``Results.lock``, ``fcntl.flock``) from before it looks for the
pending runs until its last worker has ended, so a run that one runner recorded is never
trained again by another, whatever the timing. A second runner on the same folder does not
wait: it stops with a one-line error naming the holder (pid, host, command, since when),
exit status 2. Waiting would look like a hang for as long as the other benchmark lasts, and
would buy nothing: once the first runner is done the second finds little or nothing left
to run, and while both run they share the CPU, which the timings of neither would admit.
So the user decides: wait, or stop the other one.

The kernel releases the lock when its holder dies, even by kill -9, so a lock file left
behind never blocks; a holder that ends normally removes it. Readers (``bench report``,
``bench plan``) take no lock: a record is written whole or not at all (``bench.records.results``).

Taking the lock is the runner's first write into the folder, so a folder that cannot be
written (a file, a path under a file, no permission, a full disk) is refused here, before
anything runs. The lock file is opened without following a symbolic link (``open_regular``): a
link, FIFO, folder or socket planted at its name is refused in one line, never written through.
"""
from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from bench.files import now_iso, open_regular, read_regular
from bench.records.results import Results

HOLDER_WAIT_SECONDS = 1.0  # for a holder that has the lock but has not written its name yet

_held: dict[Path, list[int]] = {}  # resolved results folder -> [lock file descriptor, nested holds]


class Busy(Exception):
    """Another runner holds the results folder."""


class WriteFailed(Exception):
    """Writing into a held results folder failed (a full disk, say); the records written before stay whole."""


@contextmanager
def hold(results: Path):
    """Hold ``results`` for this process while the block runs; nested holds of one folder are one.

    Raises:
        ValueError: ``results`` is a file, lies under one, or cannot be written; or its lock's
            name holds a link, FIFO, folder or socket (``bench.files.NotARegularFile``).
        Busy: another process holds it (the message names that process).
    """
    new = not results.exists()
    key = _create(results).resolve()
    if key not in _held:
        _held[key] = [_acquire(results), 0]
    _held[key][1] += 1
    try:
        yield
    finally:
        _held[key][1] -= 1
        if not _held[key][1]:
            fd, _ = _held.pop(key)
            Results(key).lock.unlink(missing_ok=True)  # before unlocking: a runner that opened it sees it gone
            os.close(fd)
            if new and not any(key.iterdir()):  # made for nothing (the run stopped before any record)
                key.rmdir()


def _create(results: Path) -> Path:
    """Make the folder, or say in one line why it cannot be a results folder."""
    try:
        results.mkdir(parents=True, exist_ok=True)
        return results
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (results, *results.parents) if p.exists() and not p.is_dir()), results)
        reason = "is a file" if blocker == results else f"lies under a file, {blocker}"
    except OSError as error:
        reason = f"cannot be made ({error.strerror})"
    raise _unusable(results, reason)


def _unusable(results: Path, reason: str) -> ValueError:
    return ValueError(f"--results must be a folder this user can write into; {results} {reason}. "
                      f"Received: --results {results}")


def _acquire(results: Path) -> int:
    """Lock the folder's lock file (``Results.lock``), write this process into it, and return its descriptor."""
    import fcntl  # POSIX only, imported where it locks: `import bench` and --help need none (Windows)

    path = Results(results).lock
    while True:
        try:
            fd = open_regular(path, os.O_RDWR | os.O_CREAT)
        except FileNotFoundError:  # the runner that made it, empty, removed it as it let go (hold)
            _create(results)
            continue
        except OSError as error:
            raise _unusable(results, f"is not writable ({error.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy(f"results folder {results} is in use by another bench run: {_holder(path)}; wait for it "
                       f"to end or stop it, then run this again. Received: --results {results}") from None
        if _same_file(fd, path):  # not a file its last holder removed between our open and our lock
            try:
                os.ftruncate(fd, 0)
                os.write(fd, (json.dumps(_me()) + "\n").encode())
            except OSError as error:
                os.close(fd)
                raise _unusable(results, f"is not writable ({error.strerror})") from None
            return fd
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.lstat(path))
    except FileNotFoundError:
        return False


def _me() -> dict:

    return {"pid": os.getpid(), "host": socket.gethostname(), "command": shlex.join(sys.orig_argv), "since": now_iso()}


def _holder(path: Path) -> str:
    """'pid 123 on host h since 2025-01-01T10:00:00+00:00: python -m bench run ...', from the lock file."""
    deadline = time.monotonic() + HOLDER_WAIT_SECONDS
    while True:
        try:
            holder = json.loads(read_regular(path))
            command = " ".join(holder["command"].split())  # on one line, whatever its arguments hold
            return f"pid {holder['pid']} on host {holder['host']} since {holder['since']}: {command}"
        except (OSError, ValueError, TypeError, KeyError):
            if time.monotonic() > deadline:
                return "a process that has not written its name into the lock file yet"
            time.sleep(0.05)
