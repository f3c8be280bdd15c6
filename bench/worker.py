"""``python -m bench.worker SPEC.json OUT.json``: one training run in a fresh process.

Its output (the runner makes it the run's log) carries an event line per epoch as it trains,
and ``BENCH_TENSORBOARD_DIR`` and ``BENCH_WEIGHTS_FILE`` in its environment say where
TensorBoard logs and the final weights go, if anywhere (``bench.runfiles``).

The runner starts one worker per run, with TF_NUM_INTRAOP_THREADS and
TF_NUM_INTEROP_THREADS already in its environment so TensorFlow reads them at start-up.
The worker writes its RunRecord to OUT.json (atomically) and exits 0 whatever the run's
status; a missing OUT.json means the worker itself died, and the parent records why. The
record's phases start with the worker's start-up, timed from the Unix time the runner passes
in ``BENCH_SPAWNED_AT`` (``bench.phases``); the runner adds the write of OUT.json and the exit.

A worker never outlives the benchmark that started it: it exits when its parent dies, and
when the runner dies. The two differ under loky, whose worker processes (the parents here)
outlive a runner killed with -9; so the runner passes its identity in ``BENCH_RUNNER``, and
its loky workers use ``exit_with_parent`` too (see bench.runner.run_in_subprocess).
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from bench.lifetime import exit_with_parent


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.worker SPEC.json OUT.json", file=sys.stderr)
        return 2
    # A shell that starts a job in the background (`cmd &`, nohup) has it ignore SIGINT, and
    # children inherit that; the runner stops a worker with SIGINT, so it gets Python's own.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    exit_with_parent()
    spec_path, out_path = map(Path, argv)
    from bench import imports, phases, runfiles, train  # after the watchdog: importing TensorFlow takes seconds
    from bench.spec import RunSpec
    from bench.store import write_json_atomic

    spec = RunSpec.from_dict(json.loads(spec_path.read_text()))
    imports.load_model_code(spec.model_code)  # a user's model (--import): its file, as planned
    outputs = (os.environ.get(name) for name in (runfiles.TENSORBOARD_ENV, runfiles.WEIGHTS_ENV))
    tensorboard, weights = (Path(path) if path else None for path in outputs)
    record = train.run(spec, startup_s=phases.startup_seconds(), tensorboard=tensorboard, weights=weights)
    write_json_atomic(out_path, record.to_dict())
    print(f"worker: {record.status} test_accuracy={record.test_accuracy}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
