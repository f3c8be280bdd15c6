"""One runner per results folder (bench.records.lock), with real processes holding the lock.

Each holder is a bare Python that imports bench.records.lock (no TensorFlow), so it starts in well
under a second; its death is real: it ends, or is killed with SIGKILL.
"""
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bench.records import lock
from bench.records.results import Results

ROOT = Path(__file__).resolve().parents[1]  # the holders import this checkout's bench
HOLDER = ("import sys, time; from pathlib import Path; from bench.records import lock\n"
          "with lock.hold(Path(sys.argv[1])):\n"
          "    print('holding', flush=True); time.sleep(120)\n")


@pytest.fixture
def holder(tmp_path):
    """A process holding tmp_path/results, killed and reaped on the way out."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "results")], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "holding\n"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


@pytest.mark.slow
def test_a_second_holder_is_refused_with_the_pid_host_command_and_start_of_the_first(tmp_path, holder):
    with pytest.raises(lock.Busy) as refused:
        with lock.hold(tmp_path / "results"):
            pytest.fail("held twice")
    message = str(refused.value)
    assert message.startswith(f"results folder {tmp_path / 'results'} is in use by another bench run: "
                              f"pid {holder.pid} on host {socket.gethostname()} since 20")
    assert "python -c 'import sys, time; from pathlib import Path; from bench.records import lock with lock.hold(" in message
    assert message.endswith(f"Received: --results {tmp_path / 'results'}") and "\n" not in message


@pytest.mark.slow
def test_the_lock_is_free_again_when_its_holder_is_killed_with_9(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert Results(tmp_path / "results").lock.exists()  # left behind, and harmless
    with lock.hold(tmp_path / "results"):
        assert f'"pid": {os.getpid()}' in Results(tmp_path / "results").lock.read_text()
    assert not Results(tmp_path / "results").lock.exists()


def test_holds_nest_in_one_process_and_the_last_one_out_removes_the_lock_file(tmp_path):
    results = tmp_path / "results"
    with lock.hold(results):
        with lock.hold(results):
            pass
        assert Results(results).lock.exists()  # still held by the outer hold
        probe = subprocess.run([sys.executable, "-c", HOLDER, str(results)], cwd=ROOT, capture_output=True,
                               text=True, timeout=60)
        assert probe.returncode == 1 and "lock.Busy: results folder" in probe.stderr
    assert not Results(results).lock.exists()


@pytest.mark.parametrize("case", ["a file", "under a file"])
def test_a_results_folder_that_is_a_file_or_lies_under_one_is_refused(tmp_path, case):
    (tmp_path / "file").write_text("")
    results = tmp_path / "file" if case == "a file" else tmp_path / "file" / "deeper" / "results"
    reason = "is a file" if case == "a file" else f"lies under a file, {tmp_path / 'file'}"
    with pytest.raises(ValueError, match=f"^--results must be a folder this user can write into; {results} "
                                         f"{reason}. Received: --results {results}$"):
        with lock.hold(results):
            pytest.fail("held")


def test_a_folder_removed_between_its_making_and_the_lock_is_made_again(tmp_path, monkeypatch):
    """The runner that made a folder removes it, still empty, as it lets go: another that saw
    it a moment before then finds it gone, and makes it again."""
    create, removed = lock._create, []

    def made_then_removed_once(results):
        made = create(results)
        if not removed:
            removed.append(made.rmdir())
        return made

    monkeypatch.setattr(lock, "_create", made_then_removed_once)
    with lock.hold(tmp_path / "results"):
        assert Results(tmp_path / "results").lock.is_file()
