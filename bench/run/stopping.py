"""``bench run --until-ci W --max-repeats N``: more runs for the cells whose accuracy is still uncertain.

A *cell* is one configuration (``RunSpec.config_key``: a model with its options on one
dataset). After the profile's repeats, each cell is judged from the records; it is *open*
while any of these holds:

- it has fewer than 2 ok runs, so no confidence interval yet;
- the 95 % t-interval of its test accuracy (``stats.summarize``, in %) is more than W
  percentage points wide on each side of the mean (half-width > W);
- the report has a value for its model, dataset and options, and the verdict against it
  (``verdicts.verdict_cells``: ``judge_cell`` with ``margin_for``'s margin, margins from the
  claims file) is ``can't tell``; "the report" and its claims are the shipped Table 4 ones, or
  those ``--published`` and ``--claims`` or the profile choose (``bench.analysis.sources``).

Each round runs one more repeat of every open cell that has fewer than N runs (of any
status): repeat r = the cell's highest recorded repeat + 1, with seed = the profile's seed + r
as the profile's own plan has it, through the normal runner; then every cell is judged
again. It stops when no open cell has fewer than N runs. Interrupted, the same command
continues: the profile's runs and every finished run are records.

Stopping when a verdict is reached is sequential testing: the verdict's error rates are
those of a fixed n only approximately. So every record this mode writes names the rule in
its environment (``stopping_rule``), for a report to state it.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench import config
from bench.analysis import aggregate, verdicts
from bench.analysis.claims import Margins, load_claims, load_published
from bench.analysis.sources import TABLE4_SOURCES, Sources
from bench.analysis.stats import summarize
from bench.data import kinds
from bench.records import lock
from bench.records.results import Results
from bench.records.store import RunRecord
from bench.run import runner
from bench.run.console import echo
from bench.run.plan import labels_by_config
from bench.spec import RunSpec

RULE_KEY = "stopping_rule"  # of a record's environment


@dataclass(frozen=True)
class StoppingRule:
    """Run until a cell's 95 % CI half-width is at most ``half_width`` percentage points and its
    verdict is not can't tell, at most ``max_runs`` runs per cell."""

    half_width: float
    max_runs: int

    @property
    def text(self) -> str:
        return (f"until the 95 % CI half-width <= {self.half_width:g} pp and the verdict is not can't tell, "
                f"at most {self.max_runs} runs per cell")


def rule_from_flags(until_ci: float | None, max_repeats: int | None, repeats: int) -> StoppingRule | None:
    """The rule of ``--until-ci`` and ``--max-repeats``; None when neither is given.

    Args:
        until_ci: the CI half-width W (percentage points), or None.
        max_repeats: the most runs per cell N, or None.
        repeats: the profile's repeats, which N may not undercut.

    Raises:
        ValueError: one flag without the other, W <= 0 (or NaN), N below ``repeats``.
    """
    if until_ci is None:
        if max_repeats is not None:
            raise ValueError(f"--max-repeats needs --until-ci W: it caps the runs that --until-ci adds. "
                             f"Received: --max-repeats {max_repeats} without --until-ci")
        return None
    if not until_ci > 0:
        raise ValueError(f"--until-ci takes a 95 % CI half-width > 0, in percentage points. "
                         f"Received: --until-ci {until_ci:g}")
    if max_repeats is None:
        raise ValueError(f"--until-ci needs --max-repeats N, the most runs per cell (at least the profile's "
                         f"repeats, {repeats}). Received: --until-ci {until_ci:g} without --max-repeats")
    if max_repeats < repeats:
        raise ValueError(f"--max-repeats must be >= the profile's repeats ({repeats}): it counts every run of a "
                         f"cell. Received: --max-repeats {max_repeats}")
    return StoppingRule(until_ci, max_repeats)


# ---------------------------------------------------------------- judging the cells


@dataclass(frozen=True)
class Reference:
    """The report's Table 4 values (read with their printed digits) and the margins of its cells."""

    values: pd.DataFrame
    margins: Margins


def load_reference(chosen: Sources = TABLE4_SOURCES, models: Iterable[str] = ()) -> Reference:
    """The chosen published values and the chosen claims file's margins, as the verdicts use them
    (``bench.analysis.sources``: the report's Table 4 by default; none, no value to reach). The
    claims may name the models of the shipped profiles, of the published table and ``models`` (the
    specs being run), known without importing Keras (``config.known_models``)."""
    published = load_published(chosen.file("published"))
    claims = chosen.file("claims")
    known = config.known_models([line.model for line in published.lines], models)
    margins = load_claims(claims, models=known, datasets=kinds.names()).margins if claims else Margins()
    return Reference(published, margins)


@dataclass(frozen=True)
class CellState:
    """One cell, judged: ``open_because`` is empty when the rule is met.

    Attributes:
        spec: a run of the cell, from which its next repeat is made.
        label: 'FishNet55 (head=conv) on cifar10'.
        runs: its recorded runs, of any status.
        next_repeat: its highest recorded repeat + 1.
    """

    spec: RunSpec
    label: str
    runs: int
    next_repeat: int
    open_because: tuple[str, ...]


def verdict_lines(records: list[RunRecord], published: Reference) -> dict[str, dict]:
    """config_key -> the cell's line of ``verdicts.verdict_cells`` (its verdict, published value, margin)."""
    if not records:
        return {}
    frame = pd.DataFrame({
        "model": [r.spec.model for r in records], "options": [r.spec.model_options for r in records],
        "dataset": [r.spec.dataset for r in records], "status": [r.status for r in records],
        "accuracy": [math.nan if r.test_accuracy is None else 100 * r.test_accuracy for r in records],
        "num_classes": [r.num_classes for r in records], "setup": [r.spec.config_key for r in records],
        "profile": [r.spec.profile for r in records], **aggregate.epoch_statistics(records),
    })
    lines = verdicts.verdict_cells(frame, published.values, published.margins)
    return {line["setup"]: line for line in lines[lines["n_planned"] > 0].to_dict("records")}


def open_because(accuracies: list[float], line: dict | None, rule: StoppingRule) -> tuple[str, ...]:
    """Why a cell with these ok accuracies (%) and verdict line is open; empty when it is not."""
    summary = summarize(accuracies)
    if summary.n < 2:
        return (f"{summary.n} ok run(s), no CI yet",)
    if math.isnan(summary.ci_low):
        return (f"{summary.n} equal runs, no CI before 6",)
    reasons = []
    half_width = (summary.ci_high - summary.ci_low) / 2
    if half_width > rule.half_width:
        reasons.append(f"CI half-width {half_width:.2f} pp > {rule.half_width:g} pp")
    if line is not None and not math.isnan(line["published"]) and line["verdict"] == verdicts.CANT_TELL:
        margin = "" if math.isnan(line["margin"]) else f" ± {line['margin']:g}"
        reasons.append(f"can't tell against the report's {line['published']:g}{margin} ({line['why']})")
    return tuple(reasons)


def judge(cells: dict[str, RunSpec], records: list[RunRecord], rule: StoppingRule, published: Reference,
          labels: dict[str, str]) -> list[CellState]:
    """Every cell (config_key -> a spec of it) judged from the records of the results folder."""
    mine = [r for r in records if r.spec.config_key in cells]
    lines = verdict_lines(mine, published)
    states = []
    for key, spec in cells.items():
        runs = [r for r in mine if r.spec.config_key == key]
        accuracies = [100 * r.test_accuracy for r in runs if r.status == "ok" and r.test_accuracy is not None]
        states.append(CellState(spec, f"{labels[key]} on {spec.dataset}", len(runs),
                                max((r.spec.repeat for r in runs), default=-1) + 1,
                                open_because(accuracies, lines.get(key), rule)))
    return states


def next_run(spec: RunSpec, repeat: int) -> RunSpec:
    """The cell's run of ``repeat``, seeded as the profile's plan seeds it (seed of repeat 0 + repeat)."""
    return dataclasses.replace(spec, repeat=repeat, seed=spec.seed - spec.repeat + repeat)


def status_lines(states: list[CellState], rule: StoppingRule, after: str) -> list[str]:
    """'after round 2: 1 of 3 cells open' and a line per open cell saying why."""
    still = [s for s in states if s.open_because]
    lines = [f"after {after}: {len(still)} of {len(states)} cells open"]
    for state in still:
        capped = ", the most allowed" if state.runs >= rule.max_runs else ""
        lines.append(f"  {state.label} ({state.runs} runs{capped}): {'; '.join(state.open_because)}")
    return lines


# ---------------------------------------------------------------- the campaign


def run_until(specs: list[RunSpec], results: Path, dispatch: runner.Dispatch, rule: StoppingRule,
              retry_failed: bool = False, out=echo, chosen: Sources = TABLE4_SOURCES) -> list[RunRecord]:
    """The profile's runs, then rounds of one more run per open cell until the rule stops them;
    ``chosen``: the published table (and the claims' margins) a cell's verdict is against.

    Returns:
        The records written by this invocation, each with the rule in its environment.
    """
    with runner.stopped_by_signals(), lock.hold(results):  # one hold for all rounds: no runner between them
        return _rounds(specs, results, dispatch, rule, retry_failed, out, chosen)


def _rounds(specs: list[RunSpec], results: Path, dispatch: runner.Dispatch, rule: StoppingRule,
            retry_failed: bool, out, chosen: Sources) -> list[RunRecord]:
    stamp = {RULE_KEY: rule.text}
    out(f"stopping rule: {rule.text}")
    written = runner.run_benchmark(specs, results, dispatch, retry_failed, out, environment=stamp)
    cells, labels, published = {s.config_key: s for s in specs}, labels_by_config(specs), load_reference(chosen, [spec.model for spec in specs])
    for round_number in itertools.count(1):
        states = judge(cells, Results(results).records()[0], rule, published, labels)
        after = f"round {round_number - 1}" if round_number > 1 else "the runs recorded so far"
        for line in status_lines(states, rule, after):
            out(line)
        todo = [next_run(s.spec, s.next_repeat) for s in states if s.open_because and s.runs < rule.max_runs]
        if not todo:
            still = sum(bool(s.open_because) for s in states)
            out(f"stopped: {still} cells still open at {rule.max_runs} runs, the most allowed" if still
                else "stopped: every cell meets the rule")
            return written
        out(f"round {round_number}: one more run of {len(todo)} open cells")
        new = runner.run_benchmark(todo, results, dispatch, retry_failed, out, environment=stamp)
        if not new:
            out(f"stopped: round {round_number} recorded no run (its workers were interrupted); "
                f"the same command continues")
            return written
        written += new
