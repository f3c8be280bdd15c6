"""``python -m bench.worker SPEC.json OUT.json``: one training run in a fresh process.

The runner starts one worker per run, with TF_NUM_INTRAOP_THREADS and
TF_NUM_INTEROP_THREADS already in its environment so TensorFlow reads them at start-up.
The worker writes its RunRecord to OUT.json (atomically) and exits 0 whatever the run's
status; a missing OUT.json means the worker itself died, and the parent records why.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

PARENT_POLL_SECONDS = 1.0


def exit_with_parent() -> None:
    """End this process when its parent dies, so no orphan trains on after an interrupt."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(3)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.worker SPEC.json OUT.json", file=sys.stderr)
        return 2
    exit_with_parent()
    spec_path, out_path = map(Path, argv)
    from bench import train  # after the watchdog: importing TensorFlow takes seconds
    from bench.store import RunSpec, write_json_atomic

    spec = RunSpec.from_dict(json.loads(spec_path.read_text()))
    record = train.run(spec)
    write_json_atomic(out_path, record.to_dict())
    print(f"worker: {record.status} test_accuracy={record.test_accuracy}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
