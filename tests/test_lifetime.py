"""Process lifetime (bench.lifetime): process tokens, and exit_with_parent with real processes.

Each watching process is a bare Python that imports bench.lifetime (no TensorFlow), so it
starts in well under a second; the deaths are real: SIGKILL, reaped or left a zombie.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench import lifetime

ROOT = Path(__file__).resolve().parents[1]  # the children import this checkout's bench
WATCHER = ("import sys, time; from pathlib import Path; from bench.lifetime import exit_with_parent; "
           "exit_with_parent(); exit_with_parent(); print('watching', flush=True); time.sleep(120)")


def noting(note: Path, parent: int | None = None) -> str:
    """WATCHER that leaves ``note`` when its parent dies, the parent's pid given or not."""
    return WATCHER.replace("exit_with_parent(); exit_with_parent()", f"exit_with_parent({parent}, Path({str(note)!r}))")
SLEEPER = "import time; time.sleep(120)"
DEADLINE = 10 * lifetime.PARENT_POLL_SECONDS + 20  # seconds; the machine is shared


def start(code: str, runner_token: str | None = None, args: list[str] = ()) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if key != lifetime.RUNNER_ENV}
    if runner_token is not None:
        env[lifetime.RUNNER_ENV] = runner_token
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)


def watching(runner_token: str | None = None) -> subprocess.Popen:
    """A process that has called exit_with_parent (twice) and is now asleep."""
    process = start(WATCHER, runner_token)
    assert process.stdout.readline() == "watching\n"
    return process


@pytest.fixture
def processes():
    """Every process a test starts, killed and reaped on the way out."""
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def until_zombie(process: subprocess.Popen) -> None:
    deadline = time.monotonic() + DEADLINE
    while psutil.Process(process.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the process did not end"
        time.sleep(0.05)


# ---------------------------------------------------------------- tokens


def test_a_token_names_one_live_process_and_stays_the_same():
    mine = lifetime.process_token(os.getpid())
    boot, pid, created = mine.split(":")
    assert pid == str(os.getpid()) and float(boot) == psutil.boot_time()
    assert float(created) == psutil.Process().create_time()
    assert lifetime.process_token(os.getpid()) == mine
    assert lifetime.process_token(os.getppid()) not in (None, mine)


@pytest.mark.slow
def test_a_process_that_ended_has_no_token_even_as_a_zombie(processes):
    process = start("pass")
    processes.append(process)
    until_zombie(process)
    assert lifetime.process_token(process.pid) is None  # ended, not yet reaped
    process.wait()
    assert lifetime.process_token(process.pid) is None


# ---------------------------------------------------------------- exit_with_parent


@pytest.mark.slow
def test_exit_with_parent_starts_one_watch_however_often_it_is_called(processes):
    code = WATCHER.replace("time.sleep(120)", "import threading; "
                           "print(sum(t.name == 'parent-watch' for t in threading.enumerate()))")
    process = start(code)
    processes.append(process)
    out, _ = process.communicate(timeout=DEADLINE)
    assert out == "watching\n1\n" and process.returncode == 0


@pytest.mark.slow
def test_a_watching_process_exits_when_its_parent_dies_and_leaves_its_note(processes, tmp_path):
    note = tmp_path / "parent-died"
    parent = start(f"import subprocess, sys; child = subprocess.Popen([sys.executable, '-c', {noting(note)!r}]); "
                   "print(child.pid, flush=True); child.wait()")
    processes.append(parent)
    lines = {parent.stdout.readline(), parent.stdout.readline()}  # the child's pid; "watching" from the child
    (pid,) = lines - {"watching\n"}
    child = psutil.Process(int(pid))
    assert not note.exists()
    parent.kill()
    parent.wait()
    gone, _ = psutil.wait_procs([child], timeout=DEADLINE)  # reaped by init, so no exit status here
    assert gone, "the orphan outlived its parent"
    assert note.read_text() == f"parent {parent.pid} died\n"


@pytest.mark.slow
def test_a_process_whose_parent_died_before_it_watched_exits_at_once_and_leaves_no_note(processes, tmp_path):
    """Given the pid of the parent that started it, a process knows it is already orphaned; its
    run never got under way under that parent (loky breaking a pool kills a worker as it starts
    one), so no note blames it and the runner runs it again."""
    gone = start("pass")
    processes.append(gone)
    gone.wait()
    note = tmp_path / "parent-died"
    child = start(noting(note, gone.pid))
    processes.append(child)
    assert child.wait(timeout=DEADLINE) == lifetime.EXIT_ORPHANED
    assert not note.exists()


@pytest.mark.slow
def test_a_watching_process_leaves_no_note_when_the_runner_dies_before_its_parent(processes, tmp_path):
    runner = start(SLEEPER)
    processes.append(runner)
    note = tmp_path / "parent-died"
    child = start(noting(note), lifetime.process_token(runner.pid))
    processes.append(child)
    assert child.stdout.readline() == "watching\n"
    runner.kill()
    assert child.wait(timeout=DEADLINE) == lifetime.EXIT_ORPHANED
    assert not note.exists()  # its parent, this test, lives: not a joblib worker's death


@pytest.mark.slow
@pytest.mark.parametrize("reaped", [True, False], ids=["reaped", "zombie"])
def test_a_watching_process_exits_orphaned_when_the_runner_dies_though_its_parent_lives(processes, reaped):
    runner = start(SLEEPER)
    processes.append(runner)
    token = lifetime.process_token(runner.pid)
    child = watching(token)
    processes.append(child)
    runner.kill()
    if reaped:
        runner.wait()
    assert child.wait(timeout=DEADLINE) == lifetime.EXIT_ORPHANED


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["another machine", "another process", "malformed", "empty"])
def test_a_runner_token_naming_no_live_local_process_leaves_the_parent_alone_watched(processes, kind):
    runner = start(SLEEPER)
    processes.append(runner)
    boot, pid, created = lifetime.process_token(runner.pid).split(":")
    token = {
        "another machine": f"{float(boot) - 1:.0f}:{pid}:{created}",  # same pid and start, other boot
        "another process": f"{boot}:{pid}:{float(created) - 1!r}",  # an earlier process with this pid
        "malformed": "boot:1:2",
        "empty": "",
    }[kind]
    child = watching(token)
    processes.append(child)
    runner.send_signal(signal.SIGKILL)
    time.sleep(3 * lifetime.PARENT_POLL_SECONDS)
    assert child.poll() is None  # still running: its parent, this test, lives


# ---------------------------------------------------------------- worker processes


@pytest.mark.slow
def test_worker_processes_finds_the_bench_workers_of_one_folder_or_of_all(processes, tmp_path):
    def worker(folder: Path) -> subprocess.Popen:  # a sleeper with a worker's command line
        return start(SLEEPER, None, ["-m", lifetime.WORKER_MODULE, str(folder / "r" / "spec.json"),
                                     str(folder / "r" / "record.json")])

    mine, theirs = worker(tmp_path / "mine"), worker(tmp_path / "theirs")
    processes.extend([mine, theirs, start(SLEEPER)])
    time.sleep(0.5)  # their command lines are read from /proc once they run
    assert {p.pid for p in lifetime.worker_processes(under=tmp_path / "mine")} == {mine.pid}
    assert {mine.pid, theirs.pid} <= {p.pid for p in lifetime.worker_processes()}
    assert lifetime.worker_processes(under=tmp_path / "min") == []  # a folder, not a prefix of a name
