"""``python -m bench.worker SPEC.json OUT.json``: one training run in a fresh process.

The runner starts one worker per run, with TF_NUM_INTRAOP_THREADS and
TF_NUM_INTEROP_THREADS already in its environment so TensorFlow reads them at start-up.
The worker writes its RunRecord to OUT.json (atomically) and exits 0 whatever the run's
status; a missing OUT.json means the worker itself died, and the parent records why.

A worker never outlives the benchmark that started it: it exits when its parent dies, and
when the runner dies. The two differ under loky, whose worker processes (the parents here)
outlive a runner killed with -9; so the runner passes its identity in ``BENCH_RUNNER``, and
its loky workers use ``exit_with_parent`` too (see bench.runner.run_in_subprocess).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

PARENT_POLL_SECONDS = 1.0
RUNNER_ENV = "BENCH_RUNNER"  # process_token() of the runner; set for every worker
EXIT_ORPHANED = 3


def process_token(pid: int) -> str | None:
    """``boot_id:pid:start_time`` of a live process on this machine, else None.

    Unlike a bare pid, the token tells a process from a later one given the same pid, and
    this machine from another (a Dask worker elsewhere); a zombie counts as dead. None also
    where there is no /proc (the worker then watches only its parent).
    """
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after "pid (command name)"
    state, start_time = fields[0], fields[19]
    if state in ("Z", "X"):
        return None
    return f"{boot_id}:{pid}:{start_time}"


_watching = threading.Event()


def exit_with_parent() -> None:
    """End this process when its parent or the runner (``BENCH_RUNNER``) dies; once per process."""
    if _watching.is_set():
        return
    _watching.set()
    parent = os.getppid()
    runner = os.environ.get(RUNNER_ENV) or None
    if runner is not None:
        pid = runner.split(":")[1]
        if not pid.isdigit() or process_token(int(pid)) != runner:
            runner = None  # not on this machine (or no /proc): the parent alone is watched

    def watch():
        while os.getppid() == parent and (runner is None or process_token(int(pid)) == runner):
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.worker SPEC.json OUT.json", file=sys.stderr)
        return 2
    exit_with_parent()
    spec_path, out_path = map(Path, argv)
    from bench import train  # after the watchdog: importing TensorFlow takes seconds
    from bench.spec import RunSpec
    from bench.store import write_json_atomic

    spec = RunSpec.from_dict(json.loads(spec_path.read_text()))
    record = train.run(spec)
    write_json_atomic(out_path, record.to_dict())
    print(f"worker: {record.status} test_accuracy={record.test_accuracy}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
