"""``python -m bench speed``: how fast the harness trains and infers, against plain Keras.

For each model and batch size, build and first-call seconds, steady training and inference
images per second, FLOPs and achieved GFLOP/s against a float32 matmul peak (``speed.csv``;
each column: docs/speed.md). Each mode (``bench.speed.modes``) runs in a one-worker
``ProcessPoolExecutor`` of its own, started with the mode's TensorFlow settings
(``bench.speedups.process.tensorflow_env``); this process imports no TensorFlow, and an
exception in a mode's process is raised here as itself (bad input: a ValueError). Their timed
windows alternate (harness, baseline, ...), so a change in the machine's load hits both.
``--profile-ops`` sums a few traced training steps' time per op type (``ops.csv``).
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import pkgutil
import statistics
import types
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from bench.speedups.process import start_tensorflow, tensorflow_env

COLUMNS = ("model", "batch_size", "threads", "mode", "train_img_per_s", "infer_img_per_s", "flops_per_image",
           "gflops", "pct_peak", "build_s", "first_step_s")
OP_COLUMNS = ("model", "batch_size", "threads", "mode", "op_type", "ms_per_step", "pct", "calls_per_step")
WINDOWS = 3  # timed windows per measurement; the median is reported
WARMUP_SECONDS = 1.0  # steady steps run and discarded after the first step (at most seconds / 4)
TRAINING_FLOPS_PER_FORWARD = 3  # forward + input gradient + weight gradient
PROFILE_STEPS = 10  # training steps traced per model and mode by --profile-ops
OPS_SHOWN = 12  # op types printed per model and mode (ops.csv has them all)


# ---------------------------------------------------------------- a mode's process


@dataclass(frozen=True)
class _Named:
    """A function of ``bench.speed.modes`` as ``submit`` sends it to a mode's process: by name.

    A ProcessPoolExecutor pickles the function it runs as its module and name, and its
    worker imports it. Holding the function itself would import bench.speed.modes, and
    TensorFlow with it, into this process; unpickled in a mode's process, this is the
    function itself.
    """

    name: str

    def __reduce__(self):
        return pkgutil.resolve_name, (f"bench.speed.modes:{self.name}",)


# The functions of bench.speed.modes that run in a mode's process, as MODES.prepare etc.
MODES = types.SimpleNamespace(**{name: _Named(name) for name in (
    "start", "build_each", "process_facts", "prepare", "train_window", "infer_window", "evaluate_untimed", "cpu_ms_per_image",
    "op_profile")})


def mode_process(mode: str, threads: int | None) -> ProcessPoolExecutor:
    """A process of `mode`'s own, started with its TensorFlow settings (``tensorflow_env``).

    Spawned, so that a fresh TensorFlow reads them: ``start_tensorflow`` sets them before
    anything imports TensorFlow there. The harness asks for oneDNN, the baseline keeps
    TensorFlow's default.
    """
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=start_tensorflow,
                               initargs=(tensorflow_env(threads, speedups=mode == "harness"),))


def call(process: ProcessPoolExecutor, function: _Named, *args):
    """`function`'s result in `process`; its exception, if it raises, raised here as itself."""
    return process.submit(function, *args).result()


# ---------------------------------------------------------------- measuring


@dataclass
class Measurement:
    """What ``measure`` found: the rows of speed.csv and ops.csv, and how they were taken."""

    rows: list[dict] = field(default_factory=list)  # COLUMNS
    op_rows: list[dict] = field(default_factory=list)  # OP_COLUMNS; empty without profile_steps
    processes: dict[str, dict] = field(default_factory=dict)  # per mode: threads, onednn, peak_gflops
    load_before: float = 0.0  # the machine's 1-minute load average
    load_after: float = 0.0


def timed_rates(processes: dict[str, ProcessPoolExecutor], function: _Named, seconds: float,
                windows: int = WINDOWS) -> dict[str, float]:
    """Median images/s per mode over alternating windows: at least `windows`, at least `seconds` each."""
    rates = {mode: [] for mode in processes}
    spent = {mode: 0.0 for mode in processes}
    window_s = seconds / windows
    while min(map(len, rates.values())) < windows or min(spent.values()) < seconds:
        for mode, process in processes.items():
            images, taken = call(process, function, window_s)
            rates[mode].append(images / taken)
            spent[mode] += taken
    return {mode: statistics.median(r) for mode, r in rates.items()}


def measure_model(processes: dict[str, ProcessPoolExecutor], described: dict[str, dict], name: str, batch_size: int,
                  seconds: float, log=print) -> list[dict]:
    """One model at one batch size in every mode: its rows of speed.csv."""
    started = {}
    for mode, process in processes.items():
        started[mode] = call(process, MODES.prepare, name, batch_size, min(WARMUP_SECONDS, seconds / 4))
        log(f"{name} bs={batch_size} {mode}: build {started[mode]['build_s']:.2f} s, "
            f"first call {started[mode]['first_step_s']:.2f} s ({started[mode]['steps_per_call']} step(s))")
    train_rates = timed_rates(processes, MODES.train_window, seconds)
    for process in processes.values():
        call(process, MODES.evaluate_untimed)  # the first evaluation traces: not timed
    infer_rates = timed_rates(processes, MODES.infer_window, seconds)
    rows = []
    for mode in processes:
        flops = started[mode]["flops_per_image"]
        gflops = TRAINING_FLOPS_PER_FORWARD * flops * train_rates[mode] / 1e9
        rows.append({
            "model": name, "batch_size": batch_size, "threads": described[mode]["threads"], "mode": mode,
            "train_img_per_s": train_rates[mode], "infer_img_per_s": infer_rates[mode], "flops_per_image": flops,
            "gflops": gflops, "pct_peak": 100 * gflops / described[mode]["peak_gflops"],
            "build_s": started[mode]["build_s"], "first_step_s": started[mode]["first_step_s"],
        })
    log(f"{name} bs={batch_size}: " + ", ".join(
        f"{mode} {train_rates[mode]:.1f} img/s training ({call(process, MODES.cpu_ms_per_image):.2f} CPU ms per image)"
        for mode, process in processes.items()))
    return rows


def profile_model(processes: dict[str, ProcessPoolExecutor], described: dict[str, dict], name: str, batch_size: int,
                  steps: int, log=print) -> list[dict]:
    """Op profile of the model each process last prepared: its rows of ops.csv."""
    rows = []
    for mode, process in processes.items():
        ops, wall_s = call(process, MODES.op_profile, steps)
        key = {"model": name, "batch_size": batch_size, "threads": described[mode]["threads"], "mode": mode}
        rows += [{**key, **op} for op in ops]
        log(f"{name} bs={batch_size} {mode}: {1000 * wall_s:.1f} ms per step while traced, "
            f"{sum(op['ms_per_step'] for op in ops):.1f} ms of ops")
    return rows


def measure(model_names: list[str], input_shape=(56, 56, 3), batch_sizes=(32,), threads: int | None = None,
            baseline: bool = False, seconds: float = 20.0, num_classes: int = 10, profile_steps: int = 0,
            log=print) -> Measurement:
    """Time every model and batch size, each mode in its own process.

    Args:
        model_names: registered model names.
        input_shape: (height, width, channels), height == width.
        batch_sizes: images per training step.
        threads: TensorFlow intra-op threads; None keeps TensorFlow's choice (every core).
        baseline: also time the plain-Keras way.
        seconds: timed seconds per measurement (training, then inference), per mode.
        profile_steps: trace this many training steps per model and mode (0: none).
        log: where progress lines go.

    Raises:
        ValueError: an unknown model, a bad shape, thread count or duration (before any timing).
    """
    if seconds <= 0:
        raise ValueError(f"--seconds must be > 0. Received: seconds={seconds}")
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1. Received: threads={threads}")
    height, width, channels = input_shape
    if height != width:
        raise ValueError(f"speed takes square inputs (HxHxC). Received: input={height}x{width}x{channels}")
    found = Measurement(load_before=os.getloadavg()[0])
    modes = ("harness", "baseline") if baseline else ("harness",)
    with contextlib.ExitStack() as stack:
        processes = {mode: stack.enter_context(mode_process(mode, threads)) for mode in modes}
        starting = [process.submit(MODES.start, mode, tuple(input_shape), num_classes)
                    for mode, process in processes.items()]
        for future in starting:  # all started before anything is timed
            future.result()
        call(processes["harness"], MODES.build_each, model_names)
        for mode, process in processes.items():
            found.processes[mode] = described = call(process, MODES.process_facts)
            log(f"{mode} process: {described['threads']} threads, oneDNN {'on' if described['onednn'] else 'off'}, "
                f"float32 matmul peak {described['peak_gflops']:.1f} GFLOP/s; load average {os.getloadavg()[0]:.2f}")
        for batch_size in batch_sizes:
            for name in model_names:
                found.rows += measure_model(processes, found.processes, name, batch_size, seconds, log)
                if profile_steps:
                    found.op_rows += profile_model(processes, found.processes, name, batch_size, profile_steps, log)
    found.load_after = os.getloadavg()[0]
    return found


# ---------------------------------------------------------------- the tables


def ratios(rows: list[dict]) -> list[dict]:
    """Harness over baseline, per model and batch size, for rows that have both modes."""
    by_key = {(r["model"], r["batch_size"], r["mode"]): r for r in rows}
    out = []
    for (name, batch, mode), harness in by_key.items():
        base = by_key.get((name, batch, "baseline"))
        if mode == "harness" and base is not None:
            out.append({
                "model": name, "batch_size": batch, "threads": harness["threads"],
                "train_x": harness["train_img_per_s"] / base["train_img_per_s"],
                "infer_x": harness["infer_img_per_s"] / base["infer_img_per_s"],
                "build+first_s": harness["build_s"] + harness["first_step_s"],
                "baseline build+first_s": base["build_s"] + base["first_step_s"],
            })
    return out


def write_csv(rows: list[dict], columns: tuple[str, ...], path: Path) -> Path:
    """`rows` as CSV at `path` (its folder created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False, float_format="%.6g")
    return path


def ops_tables(op_rows: list[dict], shown: int = OPS_SHOWN) -> str:
    """The op profile as one small table per model, batch size and mode: the costliest op types."""
    tables = []
    frame = pd.DataFrame(op_rows, columns=list(OP_COLUMNS))
    for (name, batch, mode), ops in frame.groupby(["model", "batch_size", "mode"], sort=False):
        top = ops.head(shown)[["op_type", "ms_per_step", "pct", "calls_per_step"]]
        tables.append(f"{name} bs={batch} {mode}, op time per training step:\n"
                      + tabulate(top, headers="keys", showindex=False, tablefmt="github", floatfmt=".1f"))
    return "\n\n".join(tables)


def main(*, model_names: list[str], input_shape: tuple[int, int, int], batch_sizes: list[int],
         threads: int | None, baseline: bool, seconds: float, profile_ops: bool, out: Path) -> None:
    """The ``speed`` subcommand: measure, print the tables, write speed.csv (and ops.csv) into `out`.

    The arguments are ``measure``'s; ``profile_ops`` traces ``PROFILE_STEPS`` steps per model and mode.
    """
    found = measure(model_names, input_shape, batch_sizes, threads, baseline, seconds,
                    profile_steps=PROFILE_STEPS if profile_ops else 0)
    print()
    print(tabulate(found.rows, headers="keys", tablefmt="github",
                   floatfmt=("", "", "", "", ".1f", ".1f", "", ".1f", ".1f", ".2f", ".2f")))
    if baseline:
        print()
        print(tabulate(ratios(found.rows), headers="keys", floatfmt=".2f", tablefmt="github"))
    if found.op_rows:
        print()
        print(ops_tables(found.op_rows))
    print()
    for mode, described in found.processes.items():
        print(f"{mode}: {described['threads']} threads, oneDNN {'on' if described['onednn'] else 'off'}, "
              f"matmul peak {described['peak_gflops']:.1f} GFLOP/s")
    print(f"load average {found.load_before:.2f} before, {found.load_after:.2f} after (1 min)")
    print(f"wrote {write_csv(found.rows, COLUMNS, out / 'speed.csv')}")
    if found.op_rows:
        print(f"wrote {write_csv(found.op_rows, OP_COLUMNS, out / 'ops.csv')}")
