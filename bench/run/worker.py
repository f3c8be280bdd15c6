"""``python -m bench.run.worker SPEC.json OUT.json``: one training run in a fresh process.

Its output (the runner makes it the run's log) carries an event line per epoch as it trains,
and ``BENCH_TENSORBOARD_DIR``, ``BENCH_WEIGHTS_FILE`` and ``BENCH_CHECKPOINT_DIR`` in its
environment say where TensorBoard logs, the final weights and the run's checkpoint go, if
anywhere (``bench.records.runfiles``); a run with a checkpoint there resumes from it
(``bench.run.checkpoint``).

The runner starts one worker per run, with TF_NUM_INTRAOP_THREADS and
TF_NUM_INTEROP_THREADS already in its environment so TensorFlow reads them at start-up.
The worker writes its RunRecord to OUT.json (atomically) and exits 0 whatever the run's
status; a missing OUT.json means the worker itself died, and the parent records why. The
record's phases start with the worker's start-up, timed from the Unix time the runner passes
in ``BENCH_SPAWNED_AT`` (``bench.records.phases``); the runner adds the write of OUT.json and the exit.

A worker never outlives the benchmark that started it: it exits when its parent dies, and
when the runner dies. The two differ under loky, whose worker processes (the parents here)
outlive a runner killed with -9; so the runner passes its identity in ``BENCH_RUNNER``, and
its loky workers use ``exit_with_parent`` too (see bench.run.runner.run_in_subprocess). When its
parent dies first, it leaves a note beside OUT.json: the runner records that run failed.

An interrupted worker writes no record, whenever the interrupt comes: SIGINT, SIGTERM and
SIGHUP kill it outright (their default actions), never through a Python exception that
could become a failed run. The runner starts it with SIGINT blocked, so a SIGINT during
Python's start-up waits for the worker to make it fatal.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from bench.files import write_json_atomic
from bench.lifetime import PARENT_ENV, exit_with_parent
from bench.run.scratch import PARENT_DIED
from bench.spec import RunSpec


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.run.worker SPEC.json OUT.json", file=sys.stderr)
        return 2
    # SIGINT at its default kills the worker wherever it is, never a KeyboardInterrupt that a
    # handler could turn into a failed run; also where a shell ignored it (`cmd &`, nohup).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    spec_path, out_path = map(Path, argv)
    exit_with_parent(int(os.environ.get(PARENT_ENV) or 0) or None, note=out_path.with_name(PARENT_DIED))
    from bench import imports  # deferred for start-up time: after the watchdog, Keras takes seconds
    from bench.records import phases, runfiles  # deferred for start-up time: after the watchdog, pandas
    from bench.run import train  # deferred for start-up time: after the watchdog, TensorFlow takes seconds

    spec = RunSpec.from_dict(json.loads(spec_path.read_text()))
    imports.load_code(spec.model_code)  # a user's model and dataset (--import): their files, as planned
    imports.load_code(spec.dataset_code)
    outputs = (os.environ.get(name)
               for name in (runfiles.TENSORBOARD_ENV, runfiles.WEIGHTS_ENV, runfiles.CHECKPOINT_ENV))
    tensorboard, weights, checkpoint = (Path(path) if path else None for path in outputs)
    record = train.run(spec, startup_s=phases.startup_seconds(), tensorboard=tensorboard, weights=weights,
                       checkpoint=checkpoint)
    write_json_atomic(out_path, record.to_dict())
    print(f"worker: {record.status} test_accuracy={record.test_accuracy}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
