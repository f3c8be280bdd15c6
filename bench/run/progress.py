"""What ``bench run`` shows while it works: the runs in flight and the campaign.

On a terminal, a live table (rich) of the runs in flight (model, dataset, seed, epoch k/E,
the latest epoch's training loss and accuracy and test accuracy in %, elapsed time) under a
line for the campaign (runs done of those to run, the ones not ok, elapsed time, ETA), with
a line per finished run scrolling above it. Anywhere else (a pipe, a file, CI, ``| tee``):
plain lines, one as a run's first epoch begins (``start_line``: epoch 1, or the epoch a run
resumed from its checkpoint begins at), one as each epoch of a run ends and one per finished run.

A run's epochs come from its log (``bench.records.runfiles``): the runner writes a start event into
it before the worker starts, and the worker's training appends an event as each epoch
begins and ends. A thread reads the logs of the runs not yet finished every POLL_SECONDS.
A run whose log is not written into this results folder (a Dask worker on another machine
without a shared filesystem) shows only when it finishes.

The ETA weighs each remaining run by its measured cost (``bench.run.plan``'s estimate from the
records of the results folder, updated as runs finish): a run in flight counts its remaining
epochs at its own last epoch's seconds (after epoch 1, which includes tracing, at the
records' steady seconds where there are some) and its final evaluation, less the time since
its last epoch ended (``Campaign._left``), or before its first epoch ends its estimate less its
elapsed time; a run not started, its estimate. They are packed onto the jobs in order
(``schedule.makespan``). A run with no record of its own work is estimated from its FLOPs at the
seconds per FLOP the records measured (``schedule.expected_seconds``, as the runner orders it),
and the ETA says how many were; with no record at all, such runs are left out, and the ETA says
how many.
"""
from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from bench.files import read_regular
from bench.records import runfiles
from bench.records.store import RunRecord
from bench.run import schedule
from bench.run.console import echo, hours_minutes_seconds
from bench.spec import RunSpec

POLL_SECONDS = 1.0
ERROR_CHARS = 300  # of a run's error line on the console; the whole text is in its record and log


@dataclass
class InFlight:
    """A run whose log says it started: its start time, the epoch begun, the last epoch ended,
    and how many of its log's events have been read."""

    spec: RunSpec
    files: runfiles.RunFiles
    started: float
    epoch: int = 0
    epochs: int = 0
    last: dict | None = None
    read: int = 1


def percent(fraction) -> str:
    return "-" if fraction is None else f"{100 * fraction:.2f} %"


def error_line(record: RunRecord) -> str:
    """The last line of a record's error, where a traceback or a worker's log tail says what
    went wrong (e.g. 'ValueError: ...'), cut at ERROR_CHARS; 'no error text' when it has none."""
    lines = [line.strip() for line in (record.error or "").splitlines() if line.strip()]
    return lines[-1][:ERROR_CHARS] if lines else "no error text"


def start_line(run: InFlight, event: dict) -> str:
    """'[start] fishnet55 cifar10 seed 0: epoch 1/30', or for a run resumed from its checkpoint
    '[start] fishnet55 cifar10 seed 0: resumes at epoch 7/30': its first epoch begins (an
    ``epoch_begin`` event); in 80 columns for the Table 4 models on the shipped datasets."""
    begins = f"epoch {event['epoch']}/{event['epochs']}"
    return (f"[start] {run.files.label} {run.files.dataset} seed {run.spec.seed}: "
            + (begins if event["epoch"] == 1 else f"resumes at {begins}"))


def epoch_line(run: InFlight, event: dict) -> str:
    """'[epoch 2/3] fishnet55 fashion_mnist_sample seed 1: test acc 75.30 % (0:01:12)': an epoch's
    end, with the run's time until then; in 80 columns for the Table 4 models on the shipped
    datasets (the training loss and accuracy are in the live table and the run's history)."""
    return (f"[epoch {event['epoch']}/{event['epochs']}] {run.files.label} {run.files.dataset} seed {run.spec.seed}: "
            f"test acc {percent(event['val_accuracy'])} ({hours_minutes_seconds(event['time'] - run.started)})")


@dataclass
class Campaign:
    """The state of one ``bench run`` invocation: runs to run, in flight, done; and the ETA.

    Thread-safe: the runner's thread reports finished runs while the watcher's reads the logs.

    Attributes:
        pending: the runs to run, in the runner's order.
        files: run_id -> its files (``runfiles.plan``).
        jobs: runs at once.
        records: the records the estimate comes from; each finished run's is added.
        started: when the campaign started (seconds since the epoch).
        flops: forward FLOPs per image of a spec's model, for runs without records of their
            work (``schedule.forward_flops``, which the runner has called already to order them).
    """

    pending: list[RunSpec]
    files: dict[str, runfiles.RunFiles]
    jobs: int
    records: list[RunRecord]
    started: float = field(default_factory=time.time)
    flight: dict[str, InFlight] = field(default_factory=dict)
    done: set = field(default_factory=set)
    not_ok: Counter = field(default_factory=Counter)
    flops: Callable[[RunSpec], int] = schedule.forward_flops

    def __post_init__(self):
        self.lock = threading.Lock()
        self._estimate()

    def _estimate(self) -> None:
        """The timings of the records, and each other pending run's expected seconds from its
        model's seconds per image, or from FLOPs when the records measured their seconds per FLOP
        (else none; ``schedule.untimed_estimates``); this machine's records where it has timed a
        work (``schedule.timed_here``)."""
        threads = self.pending[0].threads if self.pending else 1
        records = schedule.timed_here(self.records, threads, self.jobs)
        self.timings = schedule.timings(records)
        self.untimed = schedule.untimed_estimates(self.pending, records, self.flops)

    # ---------------------------------------------------------------- what happens

    def poll(self) -> list[tuple[InFlight, dict]]:
        """Read the logs of the runs not finished; return the events not read before that the plain
        lines show, with their run: a run's first epoch's begin, and each epoch's end."""
        with self.lock:
            todo = [spec for spec in self.pending if spec.run_id not in self.done]
        return [update for spec in todo for update in self._read(spec)]

    def _read(self, spec: RunSpec) -> list[tuple[InFlight, dict]]:
        """Read one run's log: in flight once it has this invocation's start event."""
        log = self.files[spec.run_id].path("log")
        try:
            if log.stat().st_mtime < self.started - 1:
                return []  # a log of an earlier invocation
            events = runfiles.read_events(read_regular(log).decode(errors="replace"))
        except (OSError, ValueError):  # absent, or not a regular file
            return []
        if not events or events[0].get("run_id") != spec.run_id:
            return []
        updates = []
        with self.lock:
            if spec.run_id in self.done:
                return []
            run = self.flight.setdefault(spec.run_id, InFlight(spec, self.files[spec.run_id], events[0]["time"]))
            for event in events[run.read:]:
                first = not run.epoch
                run.epoch, run.epochs = event["epoch"], event["epochs"]
                if event["event"] == "epoch":
                    run.last = event
                if event["event"] == "epoch" or first:
                    updates.append((run, event))
            run.read = len(events)
        return updates

    def finish(self, spec: RunSpec, record: RunRecord | None) -> list[tuple[InFlight, dict]]:
        """A run ended: with its record, or None when it was interrupted. Returns the events its
        log holds that were not read before (as ``poll``)."""
        updates = self._read(spec)
        with self.lock:
            self.done.add(spec.run_id)
            self.flight.pop(spec.run_id, None)
            if record is not None and record.status != "ok":
                self.not_ok[record.status] += 1
            if record is not None and record.status == "ok":
                self.records.append(record)
                self._estimate()
        return updates

    # ---------------------------------------------------------------- what it looks like

    def eta(self, now: float) -> tuple[float | None, int, int]:
        """(seconds of wall time left, None if no remaining run can be estimated; how many runs
        cannot be; how many were estimated from their FLOPs)."""
        with self.lock:
            flying = list(self.flight.values())
            waiting = [s for s in self.pending if s.run_id not in self.done and s.run_id not in self.flight]
            timings, untimed = self.timings, self.untimed

        def expected(spec: RunSpec) -> tuple[float | None, str]:
            timing = timings.get(schedule.timing_key(spec))
            if timing:
                return timing.run_seconds(spec.epochs), "records"
            if spec.run_id not in untimed:
                return None, "none"
            estimate = untimed[spec.run_id]
            return estimate.seconds, "flops" if estimate.source == schedule.FROM_FLOPS else "image"

        seconds, sources = [], Counter()
        for run in flying:
            timing = timings.get(schedule.timing_key(run.spec))
            if run.last:
                seconds.append(self._left(run, timing, now))
                continue
            total, source = expected(run.spec)
            sources[source] += 1
            if total is not None:
                seconds.append(max(0.0, total - (now - run.started)))
        for total, source in map(expected, waiting):
            sources[source] += 1
            if total is not None:
                seconds.append(total)
        left = schedule.makespan(seconds, self.jobs) if seconds or not sources["none"] else None
        return left, sources["none"], sources["flops"]

    @staticmethod
    def _left(run: InFlight, timing: schedule.Timing | None, now: float) -> float:
        """Seconds a run with an epoch ended still needs: its remaining epochs, each at its last
        one's training and evaluation (after epoch 1, which includes tracing, at the records'
        steady seconds where there are some), then its final evaluation (the records' where they
        timed it, else one epoch's evaluation); less the time since its last epoch ended, spent
        on the epoch in progress or the final evaluation."""
        last = run.last
        train = last["train_seconds"] if last["epoch"] > 1 or not timing else timing.sec_per_epoch
        final = timing.final_s if timing and timing.final_s is not None else last["eval_seconds"]
        epochs = (run.spec.epochs - last["epoch"]) * (train + last["eval_seconds"])
        return max(0.0, epochs + final - max(0.0, now - last["time"]))

    def eta_text(self, now: float, why: bool = True) -> str:
        """'ETA 0:04:12'; 'ETA 0:04:12 (3 from FLOPs)'; 'ETA 0:04:12+ (3 untimed)' (runs with
        nothing to time them by); 'ETA ?' with nothing to go on. ``why=False`` leaves out the
        part in brackets."""
        seconds, untimed, from_flops = self.eta(now)
        if seconds is None:
            return "ETA ?"
        text = f"ETA {hours_minutes_seconds(seconds)}" + "+" * bool(untimed)
        if not why:
            return text
        if untimed:
            return f"{text} ({untimed} untimed)"
        return text + (f" ({from_flops} from FLOPs)" if from_flops else "")

    def summary(self, now: float) -> str:
        """'4/15 done (1 failed), 2 running, 0:02:10 elapsed, ETA 0:05:12': the live status line,
        in 80 columns."""
        with self.lock:
            done, running, not_ok = len(self.done), len(self.flight), dict(self.not_ok)
        bad = ", ".join(f"{n} {status}" for status, n in sorted(not_ok.items()))
        return (f"{done}/{len(self.pending)} done" + (f" ({bad})" if bad else "") + f", {running} running, "
                f"{hours_minutes_seconds(now - self.started)} elapsed, {self.eta_text(now)}")

    def finished_line(self, spec: RunSpec, record: RunRecord | None, now: float) -> str:
        """'[3/15] fishnet55 fashion_mnist_sample seed 1: ok 79.1 % 7.8 s/epoch ETA 0:04:12' (in 80
        columns for the Table 4 models on the shipped datasets); a run not ok gets a second line,
        the last line of its error (``error_line``)."""
        with self.lock:
            done = len(self.done)
        if record is None:
            outcome = "interrupted, not recorded: it runs again next time"
        else:
            speed = "-" if record.sec_per_epoch is None else f"{record.sec_per_epoch:.1f} s/epoch"
            accuracy = "-" if record.test_accuracy is None else f"{100 * record.test_accuracy:.1f} %"
            nothing = " (learned nothing)" if record.learned_nothing else ""
            outcome = f"{record.status} {accuracy}{nothing} {speed}"
        files = self.files[spec.run_id]
        line = f"[{done}/{len(self.pending)}] {files.label} {files.dataset} seed {spec.seed}: {outcome} {self.eta_text(now, why=False)}"
        return line + (f"\n    {record.status}: {error_line(record)}" if record and record.status != "ok" else "")

    def table(self, now: float):
        """The rich renderable: the campaign's line over a table of the runs in flight."""
        from rich.console import Group
        from rich.table import Table

        table = Table(box=None, header_style="bold", pad_edge=False)
        for name, justify in (("model", "left"), ("dataset", "left"), ("seed", "right"), ("epoch", "right"),
                              ("loss", "right"), ("acc", "right"), ("test acc", "right"), ("elapsed", "right")):
            table.add_column(name, justify=justify)
        with self.lock:
            flying = sorted(self.flight.values(), key=lambda run: run.started)
        for run in flying:
            last = run.last or {}
            epoch = f"{run.epoch}/{run.epochs}" if run.epoch else "starting"
            table.add_row(run.files.label, run.files.dataset, str(run.spec.seed), epoch,
                          f"{last['loss']:.4f}" if last else "-", percent(last.get("accuracy")),
                          percent(last.get("val_accuracy")), hours_minutes_seconds(now - run.started))
        return Group(self.summary(now), table)


# ---------------------------------------------------------------- showing it


def on_terminal(out) -> bool:
    """Whether the output is the runner's own stdout and a terminal (not a pipe, a file, or TERM=dumb)."""
    from rich.console import Console

    console = Console()
    return out is echo and sys.stdout.isatty() and console.is_terminal and not console.is_dumb_terminal


@contextmanager
def shown(campaign: Campaign, out=echo):
    """Show the campaign while the block runs: a live table on a terminal, else plain lines
    through ``out``. Yields a function to call with (spec, record or None) as each run ends."""
    stop, lock, live = threading.Event(), threading.Lock(), None
    if on_terminal(out):
        from rich.live import Live

        live = Live(get_renderable=lambda: campaign.table(time.time()), refresh_per_second=2, transient=True)

    def write(line: str) -> None:
        with lock:
            if live:
                live.console.print(line, markup=False, highlight=False, soft_wrap=True)
            else:
                out(line)

    def epochs(updates: list[tuple[InFlight, dict]]) -> None:
        for run, event in updates if live is None else ():  # the live table shows the latest
            write((epoch_line if event["event"] == "epoch" else start_line)(run, event))

    def watch():
        while not stop.wait(POLL_SECONDS):
            epochs(campaign.poll())

    def finished(spec: RunSpec, record: RunRecord | None) -> None:
        epochs(campaign.finish(spec, record))
        write(campaign.finished_line(spec, record, time.time()))

    watcher = threading.Thread(target=watch, daemon=True, name="progress")
    if live:
        live.start()
    watcher.start()
    try:
        yield finished
    finally:
        stop.set()
        watcher.join()
        if live:
            live.stop()
