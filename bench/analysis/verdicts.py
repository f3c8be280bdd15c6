"""Verdicts: does each Table 4 accuracy cell reproduce, and does each claim of the report hold?

Pure functions, DataFrames in and out, no I/O (``bench.analysis.claims`` reads the claims and the
published table); statistics from ``bench.analysis.stats`` (scipy). The rules, with their numbers
and why: docs/verdicts.md. Input: a runs frame, one line per run, with the columns of ``RUN_COLUMNS``.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from bench.analysis.claims import ANY_PROTOCOL, TEST_IMAGES, Claim, ClaimsFile, Margins, Published, Row
from bench.analysis.stats import Prediction, difference_of_means, holm, prediction_interval, rank_below, summarize, tost

ALPHA = 0.05
MIN_MARGIN = 1.0  # percentage points: the smallest default margin of a Table 4 cell

REPRODUCED, DIFFERS = "reproduced", "differs"  # the mean estimand
CONSISTENT, OUTSIDE = "consistent", "outside"  # a single-run estimand
NO_VERDICT = "no verdict"  # an unknown estimand, or a setup whose protocol did not produce the value
MIN_RUNS = 4  # runs with the statistic below which a single-run value can't be told (module docstring)
STATISTICS = {"best_epoch": "best_epoch", "last_epoch": "last_epoch", "unknown": "best_epoch"}  # estimand -> runs column
EXACT, APPROXIMATE = "exact", "approximate"  # our per-epoch test images are the published value's, or not
HOLDS, CONTRADICTED = "holds", "contradicted"
CANT_TELL = "can't tell"
TOO_FEW, NO_RUN = "too few ok runs", "no ok run"  # why a comparison could not be judged

# metric -> how a comparison on it is judged (see the module docstring)
RULES = {"accuracy": "welch+holm", "ms_per_image": "ci overlap", "params_total": "exact",
         "flops_per_image": "exact"}  # one for each of claims.METRICS
NEAR_RULE = "tost+holm"
RUN_COLUMNS = ("model", "options", "dataset", "status", "accuracy", "seed", "ms_per_image",
               "params_total", "flops_per_image", "num_classes", "setup")
CELL_COLUMNS = ("setup", "dataset", "model", "options", "n_ok", "n_planned", "not_ok", "mean", "std",
                "ci_low", "ci_high", "published", "difference", "estimand", "test_images", "protocol", "source",
                "statistic", "basis", "n_stat", "stat_mean", "stat_std", "pi_low", "pi_high", "rank",
                "margin", "margin_source", "tost_p", "verdict", "why", "could_change", "if_imputed")
COMPARISON_COLUMNS = ("setup", "claim", "dataset", "metric", "direction", "row", "against", "n_row",
                      "n_against", "mean_row", "mean_against", "difference", "ci_low", "ci_high",
                      "p_raw", "p_holm", "hedges_g", "rule", "verdict", "why", "needs")
CLAIM_COLUMNS = ("setup", "claim", "kind", "section", "quote", "n_comparisons", "n_holds",
                 "n_contradicted", "n_cant_tell", "verdict", "needs", "reading")


# ---------------------------------------------------------------- runs


def _options(value) -> dict:
    return value if isinstance(value, dict) else {}


def _options_key(value) -> str:
    return json.dumps(_options(value), sort_keys=True, default=str)


def _check_runs(runs: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [column for column in columns if column not in runs.columns]
    if missing:
        raise ValueError(f"runs frame lacks columns {', '.join(missing)}; accepted: a frame with "
                         f"{', '.join(columns)}. Received: columns {', '.join(map(str, runs.columns))}")


def _ok(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"] == "ok"]


def _setups(runs: pd.DataFrame) -> list[str]:
    """The setups of the runs, sorted; [""] for no runs, so every claim still reports what it needs."""
    return sorted(set(runs["setup"])) or [""]


# ---------------------------------------------------------------- Table 4 cells


def default_margin(printed: str) -> float:
    """max(1 pp, half a unit of the last printed digit): "86.5" -> max(1, 0.05) = 1.0, "86" -> 1.0."""
    text = printed.strip()
    decimals = len(text.partition(".")[2])
    return max(MIN_MARGIN, 0.5 * 10.0 ** -decimals)


def margin_for(model: str, dataset: str, printed: str, margins: Margins = Margins()) -> tuple[float, str]:
    """The margin of a cell and where it comes from: a "model/dataset" override, the file's
    default, or ``default_margin`` of the published value as printed."""
    key = f"{model}/{dataset}"
    if key in margins.cells:
        return margins.cells[key], f"{margins.source} [margins] {key}"
    if margins.default is not None:
        return margins.default, f"{margins.source} [margins] default"
    return default_margin(printed), f"default: max(1 pp, half the last digit of {printed})"


@dataclass(frozen=True)
class CellVerdict:
    verdict: str
    tost_p: float
    why: str


def judge_cell(values, published: float, margin: float, alpha: float = ALPHA) -> CellVerdict:
    """The verdict of one cell's ok accuracies (%) against the published value (see module doc).

    With fewer than 2 values or a NaN published value: ``can't tell``, TOST p NaN.
    """
    summary = summarize(values)
    if math.isnan(published):
        return CellVerdict(CANT_TELL, math.nan, "no published value")
    if summary.n < 2:
        return CellVerdict(CANT_TELL, math.nan, f"{summary.n} ok run(s), needs 2")
    equivalence = tost(values, published - margin, published + margin)
    p, named = equivalence.p_value, "TOST p" if equivalence.test == "t" else "every run equal: sign-test TOST p"
    if p < alpha:
        return CellVerdict(REPRODUCED, p, f"{named} {p:.3g} < {alpha}: within {published:g} ± {margin:g}")
    low, high = summary.ci_low - margin, summary.ci_high + margin
    if math.isnan(low):
        return CellVerdict(CANT_TELL, p, f"{named} {p:.3g} >= {alpha}; {summary.n} equal runs give no 95 % CI, 6 do")
    if not low <= published <= high:
        return CellVerdict(DIFFERS, p, f"{published:g} outside the CI ± margin [{low:.2f}, {high:.2f}]")
    return CellVerdict(CANT_TELL, p, f"{named} {p:.3g} >= {alpha}, {published:g} inside [{low:.2f}, {high:.2f}]")


def imputed_verdicts(values, n_missing: int, published: float, margin: float, chance: float,
                     alpha: float = ALPHA) -> dict[str, tuple[float, str]]:
    """Scenario -> (imputed value, verdict) of ``judge_cell`` with every missing run at the lowest
    ok accuracy, the highest, and chance (``_imputed``)."""
    return _imputed(values, n_missing, chance, lambda v: judge_cell(v, published, margin, alpha).verdict)


def _imputed(values, n_missing: int, chance: float, judge) -> dict[str, tuple[float, str]]:
    """Scenario -> (imputed value, ``judge`` of the values with every missing run at it): the lowest
    ok value, the highest, and chance; scenarios without a value (no ok run, unknown classes) are left out."""
    values = [float(v) for v in values if not math.isnan(v)]
    scenarios = {"lowest ok": min(values, default=math.nan), "highest ok": max(values, default=math.nan),
                 "chance": chance}
    return {name: (value, judge(values + [value] * n_missing))
            for name, value in scenarios.items() if n_missing and not math.isnan(value)}


@dataclass(frozen=True)
class SingleRunVerdict:
    """Where a published single-run value falls among our runs' values of the same statistic."""

    verdict: str
    why: str
    prediction: Prediction
    rank: float  # our values below the published one, ties half


def judge_single_run(values, published: float, extra_variance: float = 0.0,
                     minimum: int = MIN_RUNS) -> SingleRunVerdict:
    """``consistent`` when ``published`` lies in the 95 % prediction interval of one new run's
    value (``stats.prediction_interval``, widened by ``extra_variance``, pp²), ``outside`` when
    not, ``can't tell`` with fewer than ``minimum`` values (module docstring)."""
    prediction, rank = prediction_interval(values, extra_variance), rank_below(values, published)
    place = f"{published:g} above {rank:g} of our {prediction.n}"
    if prediction.n < minimum:
        return SingleRunVerdict(CANT_TELL, f"{prediction.n} run(s) with the statistic, needs {minimum}", prediction, rank)
    inside = prediction.low <= published <= prediction.high
    interval = f"the 95 % PI [{prediction.low:.2f}, {prediction.high:.2f}]"
    return SingleRunVerdict(CONSISTENT if inside else OUTSIDE,
                            f"{place}, {'inside' if inside else 'outside'} {interval}", prediction, rank)


def subset_variance(published: float, *images: int | None) -> float:
    """pp²: the binomial variance p(1-p)/m of an accuracy p (%) measured on m test images, summed
    over the sets that are subsets (None: the whole test set, no term). Two 1,000-image subsets
    at 86.5 %: 2 × 1.17 pp²."""
    p = published / 100
    return sum(p * (1 - p) / m for m in images if m) * 1e4


def images_of(eval_images: str) -> int | None:
    """'stratified_1000' -> 1000, 'first_1000' -> 1000, 'all' or 'unknown' -> None."""
    count = eval_images.rpartition("_")[2]
    return int(count) if count.isdigit() else None


def verdict_cells(runs: pd.DataFrame, published: Published, margins: Margins = Margins(),
                  alpha: float = ALPHA) -> pd.DataFrame:
    """Every accuracy cell of the runs (plus the published cells with no run on a dataset that a
    setup did run), judged against the published value by its estimand (module docstring).

    Args:
        runs: the runs frame (columns: model, options, dataset, status, accuracy, num_classes,
            setup; optionally best_epoch, last_epoch, eval_images, profile, report_input).
        published: the report's Table 4 (``bench.analysis.claims.load_published``).
        margins: overrides from the claims file (the ``mean`` estimand's TOST).

    Returns:
        One line per cell, CELL_COLUMNS: options as JSON text; n_planned counts runs of any
        status and not_ok names the others ("1 diverged"); mean, std, ci_* of the final
        accuracy; published NaN where the report has no value for the row; difference = mean -
        published; the published value's estimand, test_images, protocol and source; for a
        single-run estimand, statistic (the runs column), basis (exact or approximate), n_stat,
        stat_mean, stat_std, pi_low, pi_high and rank; could_change and if_imputed as in the
        module docstring (False and "" when every run is ok).
    """
    _check_runs(runs, ("model", "options", "dataset", "status", "accuracy", "num_classes", "setup"))
    keyed = runs.assign(_options=runs["options"].map(_options_key))
    lines = [_cell_line(setup, dataset, model, group, published, margins, alpha)
             for (setup, dataset, model, _), group in keyed.groupby(["setup", "dataset", "model", "_options"], sort=True)]
    lines += _unrun_cells(keyed, published)
    return pd.DataFrame(_superseded(lines), columns=list(CELL_COLUMNS))


def _cell_line(setup, dataset, model, group, published: Published, margins, alpha) -> dict:
    options = _options(group["options"].iloc[0])
    entry = published.accuracy(model, dataset, options)
    entry = entry if entry and stands_beside(entry, group) else None
    ok = _ok(group)["accuracy"].astype(float).dropna().tolist()
    summary = summarize(ok)
    value = entry.value if entry else math.nan
    return {
        "setup": setup, "dataset": dataset, "model": model, "options": _options_key(options),
        "n_ok": len(ok), "n_planned": len(group), "not_ok": _not_ok(group),
        "mean": summary.mean, "std": summary.std, "ci_low": summary.ci_low, "ci_high": summary.ci_high,
        "published": value, "difference": summary.mean - value, **_judged(group, entry, margins, alpha),
        "_profile": _profile(group),
    }


def _profile(group: pd.DataFrame) -> str | None:
    return str(group["profile"].iloc[0]) if "profile" in group else None


def _described(entry) -> dict:
    return {"estimand": entry.estimand, "test_images": entry.test_images, "protocol": entry.protocol or "none known",
            "source": entry.source}


def other_protocol(entry, profile: str | None) -> str:
    """Why a setup of ``profile`` is not judged against ``entry`` ('' when it is): only the
    protocol that produced a value judges it (None: the runs frame names no profile)."""
    if entry.protocol == ANY_PROTOCOL:
        return ""
    if not entry.protocol:
        return f"no known protocol produced {entry.printed} ({entry.source})"
    if profile is not None and profile != entry.protocol:
        return (f"{entry.printed} came from the {entry.protocol} protocol, not {profile}'s; "
                "shown as context")
    return ""


def _judged(group: pd.DataFrame, entry, margins: Margins, alpha: float) -> dict:
    """The verdict columns of a cell with runs (module docstring)."""
    if entry is None:
        return {"verdict": CANT_TELL, "why": "no published value", "could_change": False, "if_imputed": ""}
    columns = _described(entry) | _statistic(group, entry)
    if why := other_protocol(entry, _profile(group)):
        return columns | {"verdict": NO_VERDICT, "why": why, "could_change": False, "if_imputed": ""}
    if entry.estimand == "unknown":
        return columns | {"verdict": NO_VERDICT, "why": f"what {entry.printed} is is unknown ({entry.note})",
                          "could_change": False, "if_imputed": ""}
    if entry.estimand == "mean":
        return columns | _judged_mean(group, entry, margins, alpha)
    return columns | _judged_single_run(group, entry)


def _chance(group: pd.DataFrame) -> float:
    classes = pd.to_numeric(group["num_classes"], errors="coerce").dropna()
    return 100.0 / float(classes.iloc[0]) if len(classes) else math.nan


def _judged_mean(group: pd.DataFrame, entry, margins: Margins, alpha: float) -> dict:
    ok = _ok(group)["accuracy"].astype(float).dropna().tolist()
    margin, source = margin_for(entry.model, entry.dataset, entry.printed, margins)
    verdict = judge_cell(ok, entry.value, margin, alpha)
    imputed = imputed_verdicts(ok, len(group) - len(ok), entry.value, margin, _chance(group), alpha)
    return {"margin": margin, "margin_source": source, "tost_p": verdict.tost_p, "verdict": verdict.verdict,
            "why": verdict.why, **_imputed_columns(imputed, verdict.verdict)}


def _statistic(group: pd.DataFrame, entry) -> dict:
    """Our runs' values of the published value's statistic (for ``unknown``, the best epoch, as
    numbers): mean, std, prediction interval, the published value's rank, and on which test
    images (basis: exact, or approximate with the interval widened by ``subset_variance``)."""
    column = STATISTICS.get(entry.estimand)
    if column is None or column not in group:
        return {}
    values = _ok(group)[column].astype(float).dropna().to_numpy()
    ours = str(group["eval_images"].iloc[0]) if "eval_images" in group else entry.test_images
    extra = 0.0 if ours == entry.test_images else subset_variance(entry.value, images_of(ours),
                                                                   TEST_IMAGES.get(entry.test_images))
    judged = judge_single_run(values, entry.value, extra)
    basis = EXACT if ours == entry.test_images else f"{APPROXIMATE}: {ours} for {entry.test_images}, PI + {extra:.2f} pp²"
    return {"statistic": column, "basis": basis, "n_stat": judged.prediction.n, "stat_mean": judged.prediction.mean,
            "stat_std": judged.prediction.std, "pi_low": judged.prediction.low, "pi_high": judged.prediction.high,
            "rank": judged.rank, "_extra": extra, "_single": judged}


def _judged_single_run(group: pd.DataFrame, entry) -> dict:
    statistic = _statistic(group, entry)
    if not statistic:
        return {"verdict": CANT_TELL, "why": f"the runs hold no per-epoch accuracies for {entry.estimand}",
                "could_change": False, "if_imputed": ""}
    judged, extra = statistic["_single"], statistic["_extra"]
    values = _ok(group)[statistic["statistic"]].astype(float).dropna().tolist()
    imputed = _imputed(values, len(group) - len(values), _chance(group),
                       lambda v: judge_single_run(v, entry.value, extra).verdict)
    return {"verdict": judged.verdict, "why": judged.why, **_imputed_columns(imputed, judged.verdict)}


def _imputed_columns(imputed: dict, verdict: str) -> dict:
    return {"could_change": any(v != verdict for _, v in imputed.values()),
            "if_imputed": "; ".join(f"{name} {x:.2f}: {v}" for name, (x, v) in imputed.items())}


def _superseded(lines: list[dict]) -> list[dict]:
    """Approximate single-run verdicts left out where a setup of the same profile judges the same
    row exactly with at least MIN_RUNS runs: those alone answer, never pooled with the others."""
    exact = {(line["_profile"], line["dataset"], line["model"], line["options"]): line["setup"] for line in lines
             if line.get("basis") == EXACT and line.get("n_stat", 0) >= MIN_RUNS}
    for line in lines:
        key = (line["_profile"], line["dataset"], line["model"], line["options"])
        if str(line.get("basis", "")).startswith(APPROXIMATE) and key in exact and line["verdict"] != NO_VERDICT:
            line |= {"verdict": NO_VERDICT, "why": f"{exact[key]} judges it on the exact test images",
                     "could_change": False, "if_imputed": ""}
    return [{k: v for k, v in line.items() if not k.startswith("_")} for line in lines]


def stands_beside(entry, group: pd.DataFrame) -> bool:
    """Whether a published value stands beside the runs of a cell: any protocol's does, the
    others only at the report's input (``at_report_input``)."""
    return entry.protocol == ANY_PROTOCOL or at_report_input(group)


def at_report_input(group: pd.DataFrame) -> bool:
    """Whether the runs of a cell had the report's input, where the runs frame says (an optional
    ``report_input`` column): its ok runs, or all its runs when none is ok (ten diverged runs
    still ran the report's cell); one at least, all at it. The report's value is of that input."""
    if "report_input" not in group:
        return True
    ok = _ok(group)
    runs = ok if len(ok) else group
    return bool(len(runs)) and bool(runs["report_input"].all())


def _not_ok(group: pd.DataFrame) -> str:
    counts = group.loc[group["status"] != "ok", "status"].value_counts().sort_index()
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def _unrun_cells(keyed: pd.DataFrame, published: Published) -> list[dict]:
    """Published accuracies with no run in a setup that ran their dataset and whose protocol
    produced them: n = 0, can't tell."""
    lines = []
    for (setup, dataset), group in keyed.groupby(["setup", "dataset"], sort=True):
        if "report_input" in group and not group["report_input"].any():
            continue  # a setup at another input than the report's: its published cells are not its own
        for entry in published.lines:
            if (entry.metric != "accuracy" or entry.dataset != dataset
                    or any(entry.row.matches(m, _options(o)) for m, o in zip(group["model"], group["options"]))):
                continue
            if other_protocol(entry, _profile(group)):
                continue  # not this setup's to reproduce
            lines.append({"setup": setup, "dataset": dataset, "model": entry.model,
                          "options": _options_key(dict(entry.options)), "n_ok": 0, "n_planned": 0, "not_ok": "",
                          "published": entry.value, **_described(entry), "verdict": CANT_TELL,
                          "why": "no run of the report's row", "could_change": False, "if_imputed": "",
                          "_profile": _profile(group)})
    return lines


# ---------------------------------------------------------------- claims: what to compare


@dataclass(frozen=True)
class Planned:
    """One comparison a claim asks for: ``row`` against ``against`` (or against ``value`` ±
    ``margin`` when direction is "near") on ``metric`` and ``dataset``."""

    claim: str
    dataset: str
    metric: str
    direction: str  # "greater" | "less" | "near"
    row: Row
    against: Row | None = None
    value: float = math.nan
    margin: float = math.nan


def planned(claim: Claim) -> list[Planned]:
    """The comparisons of a claim, per dataset (``better_and_cheaper``: accuracy greater and
    flops_per_image less, per pair of rows)."""
    plans = []
    for dataset in claim.datasets:
        for row in claim.rows:
            if claim.kind == "near":
                plans.append(Planned(claim.id, dataset, claim.metric, "near", row, None, claim.value, claim.margin))
            for other in claim.than:
                if claim.kind == "better_and_cheaper":
                    plans += [Planned(claim.id, dataset, "accuracy", "greater", row, other),
                              Planned(claim.id, dataset, "flops_per_image", "less", row, other)]
                elif claim.kind != "near":
                    direction = "less" if claim.kind == "fewest" else claim.kind
                    plans.append(Planned(claim.id, dataset, claim.metric, direction, row, other))
    return plans


def chosen(plan: Planned, runs: pd.DataFrame) -> Planned:
    """The plan with each row as ``Row.choose`` picks it among the runs (of any status) of one
    setup on the plan's dataset: the report's variant where the setup ran it."""
    on_dataset = runs[runs["dataset"] == plan.dataset]
    ran = list(zip(on_dataset["model"], on_dataset["options"].map(_options)))
    return dataclasses.replace(plan, row=plan.row.choose(ran), against=plan.against.choose(ran) if plan.against else None)


# ---------------------------------------------------------------- claims: one comparison


@dataclass(frozen=True)
class Side:
    """The ok values of one row on one dataset, the key of the runs matched, what is missing."""

    values: np.ndarray
    key: str
    needs: str


def _side(ok: pd.DataFrame, row: Row, dataset: str, metric: str, at_least: int) -> Side:
    matched = np.array([row.matches(m, _options(o)) for m, o in zip(ok["model"], ok["options"])], dtype=bool)
    runs = ok[(ok["dataset"] == dataset).to_numpy() & matched]
    keys = sorted(set(runs["options"].map(_options_key)))
    if len(keys) > 1:
        return Side(np.array([]), "", f"{row.label} on {dataset} matches {len(keys)} option sets: name the options")
    values = pd.to_numeric(runs[metric], errors="coerce").dropna().to_numpy(dtype=float)
    needs = ("" if values.size >= at_least else f"needs ok runs of {row.label} on {dataset}" if values.size == 0
             else f"needs {at_least} ok runs of {row.label} on {dataset} (has {values.size})")
    return Side(values, f"{row.model} {keys[0] if keys else ''}", needs)


def compare(ok: pd.DataFrame, plan: Planned) -> dict:
    """One comparison on the ok runs of one setup: a line of COMPARISON_COLUMNS without setup
    and p_holm, plus ``_hypothesis`` (what Holm counts once) and ``_margin`` (near). Tested
    rules leave the verdict to ``judge_tested``, after the Holm adjustment."""
    rule = NEAR_RULE if plan.direction == "near" else RULES[plan.metric]
    at_least = 1 if rule == "exact" else 2
    row = _side(ok, plan.row, plan.dataset, plan.metric, at_least)
    line = {"claim": plan.claim, "dataset": plan.dataset, "metric": plan.metric, "direction": plan.direction,
            "row": plan.row.label, "n_row": row.values.size, "mean_row": _mean(row.values), "rule": rule,
            "_margin": plan.margin}
    if plan.direction == "near":
        return {**line, **_near(row, plan)}
    against = _side(ok, plan.against, plan.dataset, plan.metric, at_least)
    line |= {"against": plan.against.label, "n_against": against.values.size, "mean_against": _mean(against.values),
             "needs": "; ".join(n for n in (row.needs, against.needs) if n)}
    return {**line, **{"welch+holm": _tested, "ci overlap": _measured, "exact": _exact}[rule](row, against, plan)}


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def _welch_columns(row: Side, against: Side) -> dict:
    result = difference_of_means(row.values, against.values)
    return {"difference": result.difference, "ci_low": result.ci_low, "ci_high": result.ci_high,
            "p_raw": result.p_value, "hedges_g": result.hedges_g}


def _tested(row: Side, against: Side, plan: Planned) -> dict:
    hypothesis = " vs ".join(sorted([row.key, against.key])) if not (row.needs or against.needs) else ""
    return {**_welch_columns(row, against), "_hypothesis": hypothesis}


def _near(row: Side, plan: Planned) -> dict:
    summary = summarize(row.values)
    p = tost(row.values, plan.value - plan.margin, plan.value + plan.margin).p_value
    return {"against": f"{plan.value:g} ± {plan.margin:g}", "n_against": 0, "mean_against": plan.value,
            "difference": summary.mean - plan.value, "ci_low": summary.ci_low - plan.value,
            "ci_high": summary.ci_high - plan.value, "p_raw": p, "hedges_g": math.nan, "needs": row.needs,
            "_hypothesis": f"{row.key} near {plan.value:g} ± {plan.margin:g}" if not row.needs else ""}


def _measured(row: Side, against: Side, plan: Planned) -> dict:
    """Time: the two rows' 95 % t-intervals, apart or overlapping."""
    columns = _welch_columns(row, against)
    if row.needs or against.needs:
        return {**columns, "verdict": CANT_TELL, "why": TOO_FEW}
    first, second = summarize(row.values), summarize(against.values)
    above, below = first.ci_low > second.ci_high, first.ci_high < second.ci_low
    apart = above if plan.direction == "greater" else below
    opposite = below if plan.direction == "greater" else above
    verdict = HOLDS if apart else CONTRADICTED if opposite else CANT_TELL
    state = "do not overlap" if apart or opposite else "overlap"
    why = (f"CIs [{first.ci_low:.3g}, {first.ci_high:.3g}] and [{second.ci_low:.3g}, {second.ci_high:.3g}] {state}")
    return {**columns, "verdict": verdict, "why": why}


def _exact(row: Side, against: Side, plan: Planned) -> dict:
    """Parameters, FLOPs: every value of one row against every value of the other."""
    columns = {"difference": _mean(row.values) - _mean(against.values), "ci_low": math.nan, "ci_high": math.nan,
               "p_raw": math.nan, "hedges_g": math.nan}
    if row.needs or against.needs:
        return {**columns, "verdict": CANT_TELL, "why": NO_RUN}
    sign = 1 if plan.direction == "greater" else -1
    holds = (sign * row.values[:, None] > sign * against.values[None, :]).all()
    never = (sign * row.values[:, None] <= sign * against.values[None, :]).all()
    verdict = HOLDS if holds else CONTRADICTED if never else CANT_TELL
    relation = {HOLDS: ">" if sign > 0 else "<", CONTRADICTED: "<=" if sign > 0 else ">=", CANT_TELL: "~"}[verdict]
    return {**columns, "verdict": verdict,
            "why": f"{_value_text(row.values)} {relation} {_value_text(against.values)}"}


def _value_text(values: np.ndarray) -> str:
    low, high = values.min(), values.max()
    return f"{low:,.0f}" if low == high else f"{low:,.0f}..{high:,.0f}"


# ---------------------------------------------------------------- claims: Holm and verdicts


def holm_in_families(comparisons: pd.DataFrame) -> pd.Series:
    """Holm-adjusted p of the tested (accuracy) lines, within each (setup, dataset) family of
    distinct hypotheses (``_hypothesis``: a pair or a near claim counted once); NaN elsewhere."""
    adjusted = pd.Series(math.nan, index=comparisons.index)
    tested = comparisons[comparisons["_hypothesis"].map(lambda h: isinstance(h, str) and h != "").astype(bool)]
    for _, family in tested.groupby(["setup", "dataset"]):
        distinct = family.drop_duplicates("_hypothesis")
        by_hypothesis = dict(zip(distinct["_hypothesis"], holm(distinct["p_raw"])))
        adjusted[family.index] = family["_hypothesis"].map(by_hypothesis)
    return adjusted


def judge_tested(line: Mapping, alpha: float = ALPHA) -> tuple[str, str]:
    """(verdict, why) of a tested line from its Holm-adjusted p (module docstring)."""
    p = line["p_holm"]
    if line["needs"]:
        return CANT_TELL, TOO_FEW
    if math.isnan(p):
        return CANT_TELL, "no variance: the test is undefined"
    if line["direction"] == "near":
        return _judge_near(line, p, alpha)
    if p >= alpha:
        return CANT_TELL, f"Holm p {p:.3g} >= {alpha}"
    claimed = line["difference"] > 0 if line["direction"] == "greater" else line["difference"] < 0
    side = "in" if claimed else "against"
    return (HOLDS if claimed else CONTRADICTED), f"Holm p {p:.3g} < {alpha}, difference {line['difference']:+.2f} {side} the claimed direction"


def _judge_near(line: Mapping, p: float, alpha: float) -> tuple[str, str]:
    margin = line["_margin"]
    if p < alpha:
        return HOLDS, f"Holm TOST p {p:.3g} < {alpha}"
    low, high = line["ci_low"] - margin, line["ci_high"] + margin
    if math.isnan(low):
        return CANT_TELL, f"Holm TOST p {p:.3g} >= {alpha}; {line['n_row']} equal runs give no 95 % CI, 6 do"
    if low > 0 or high < 0:
        return CONTRADICTED, f"value outside the CI ± margin (difference CI ± margin [{low:+.2f}, {high:+.2f}])"
    return CANT_TELL, f"Holm TOST p {p:.3g} >= {alpha}, value inside the CI ± margin"


def claim_comparisons(runs: pd.DataFrame, claims: Sequence[Claim], alpha: float = ALPHA) -> pd.DataFrame:
    """Every comparison of every claim in every setup of the runs, judged.

    Returns:
        One line per comparison, COMPARISON_COLUMNS: row and against are row labels (against
        is "value ± margin" for near); difference = mean_row - mean_against (for near, mean -
        value) with Welch's 95 % CI (near: the row's t-interval minus value; exact: NaN);
        p_raw is Welch's two-sided p (near: TOST p; exact: NaN); p_holm as in
        ``holm_in_families``; hedges_g of row - against; rule names how the line is judged;
        needs names the missing runs ("" when none).
    """
    _check_runs(runs, RUN_COLUMNS)
    lines = []
    for setup in _setups(runs):
        setup_runs = runs[runs["setup"] == setup]
        ok = _ok(setup_runs)
        lines += [{"setup": setup, **compare(ok, chosen(plan, setup_runs))} for claim in claims for plan in planned(claim)]
    frame = pd.DataFrame(lines, columns=[*COMPARISON_COLUMNS, "_hypothesis", "_margin"])
    frame["p_holm"] = holm_in_families(frame)
    judged = [judge_tested(line, alpha) if line["rule"] in (RULES["accuracy"], NEAR_RULE)
              else (line["verdict"], line["why"]) for line in frame.to_dict("records")]
    frame["verdict"] = [verdict for verdict, _ in judged]
    frame["why"] = [why for _, why in judged]
    return frame.drop(columns=["_hypothesis", "_margin"])


def claim_verdicts(comparisons: pd.DataFrame, claims: Sequence[Claim], alpha: float = ALPHA) -> pd.DataFrame:
    """One line per claim and setup, CLAIM_COLUMNS: contradicted if any comparison is, holds if
    all hold, else can't tell; needs joins the comparisons' needs; reading as ``reading``."""
    by_id = {claim.id: claim for claim in claims}
    lines = []
    for (setup, claim_id), group in comparisons.groupby(["setup", "claim"], sort=False):
        verdicts, claim = list(group["verdict"]), by_id[claim_id]
        verdict = CONTRADICTED if CONTRADICTED in verdicts else HOLDS if set(verdicts) == {HOLDS} else CANT_TELL
        needs = "; ".join(dict.fromkeys(need for n in group["needs"] if n for need in n.split("; ")))
        lines.append((setup, claim_id, claim.kind, claim.section, claim.quote, len(group), verdicts.count(HOLDS),
                      verdicts.count(CONTRADICTED), verdicts.count(CANT_TELL), verdict, needs, reading(claim, alpha)))
    return pd.DataFrame(lines, columns=list(CLAIM_COLUMNS))


def reading(claim: Claim, alpha: float = ALPHA) -> str:
    """How to read a claim's verdict: its interpretation (claims.toml), and for a tested claim on
    several datasets the family-wise error of its ``contradicted``: Holm holds it at alpha within
    each dataset, so across k datasets it is up to k × alpha (Bonferroni's bound), not corrected."""
    parts = [claim.interpretation] if claim.interpretation else []
    tested = claim.kind in ("near", "better_and_cheaper") or claim.metric == "accuracy"
    if tested and len(claim.datasets) > 1:
        k = len(claim.datasets)
        parts.append(f"'contradicted' has a family-wise error up to {k} × {alpha:g} = {k * alpha:.2g} "
                     f"({k} datasets, each its own Holm family)")
    return "; ".join(parts)


@dataclass(frozen=True)
class Verdicts:
    """What ``evaluate`` returns: CELL_COLUMNS, COMPARISON_COLUMNS and CLAIM_COLUMNS frames."""

    cells: pd.DataFrame
    comparisons: pd.DataFrame
    claims: pd.DataFrame


def evaluate(runs: pd.DataFrame, published: pd.DataFrame, claims: ClaimsFile, alpha: float = ALPHA) -> Verdicts:
    """Table 4 cell verdicts and claim verdicts of the runs, in one call."""
    comparisons = claim_comparisons(runs, claims.claims, alpha)
    return Verdicts(verdict_cells(runs, published, claims.margins, alpha), comparisons,
                    claim_verdicts(comparisons, claims.claims, alpha))
