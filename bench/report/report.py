"""``python -m bench report``: does Table 4 reproduce? A verdict per accuracy cell and per claim
of the report, with the numbers, findings and figures behind them, from the records alone.

``write_report`` is the only function here that reads or writes; the others turn the aggregates of ``bench.analysis.aggregate`` and the verdicts
of ``bench.analysis.verdicts`` into text. The output depends on the records only (no clock, sorted
throughout), so the same records give the same files byte for byte.
"""
from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from tabulate import tabulate

from bench import config
from bench.analysis import aggregate, sources, verdicts
from bench.analysis.aggregate import dataset_title, display_name
from bench.analysis.claims import (
    ClaimsFile,
    Margins,
    Published,
    load_claims,
    load_published,
    no_claims,
)
from bench.data import kinds
from bench.files import check_folder, safe_name, write_bytes_atomic, write_text_atomic
from bench.records import phases, runfiles, store
from bench.records.results import Results
from bench.report import figures, html, timeshare

FIGURE_DIR = "figures"
PNG_DPI = 200  # the PNGs for screens; each figure is also a PDF beside them, vector, for print
ENVIRONMENT_LINE = (("host", "host"), ("cpu", "CPU"), ("cpu_count", "cores"), ("gpu", "GPU"),
                    ("python", "Python"), ("tensorflow", "TensorFlow"), ("keras", "Keras"), ("onednn", "oneDNN"),
                    ("speedups", "harness speed-ups"), ("threads_per_job", "threads per run"),
                    ("jobs_at_once", "runs at once"))
REPORT_EPOCH_IMAGES = {"fashion_mnist": 60_000, "cifar10": 50_000}  # the report's epochs: whole training sets
ERROR_CHARS = 160  # of a failed run's error text, in the findings
# How a comparison's metric reads in the claims: (name, digits of its difference).
CLAIM_METRICS = {"accuracy": ("accuracy (pp)", 2), "ms_per_image": ("ms / image", 2),
                 "params_total": ("parameters", 0), "flops_per_image": ("FLOPs / image", 0)}


# ---------------------------------------------------------------- numbers as text


def number(value: float, digits: int = 2) -> str:
    return "NaN" if math.isnan(value) else f"{value:.{digits}f}"


def count(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.0f}"


def p_text(value: float) -> str:
    """'0.0123'; '—' where there is no test."""
    return "—" if math.isnan(value) else f"{value:.3g}"


def mean_std(cell) -> str:
    """'88.10 ± 0.40'; '88.10 (n=1)' for one ok run, which has no spread; '—' for none."""
    if cell.n == 1:
        return f"{number(cell.mean)} (n=1)"
    return "—" if cell.n == 0 else f"{number(cell.mean)} ± {number(cell.std)}"


def ci_text(cell) -> str:
    """'[87.10, 89.10]'; '—' without one (fewer than 2 ok runs, or 2 to 5 equal ones)."""
    return "—" if math.isnan(cell.ci_low) else f"[{cell.ci_low:.2f}, {cell.ci_high:.2f}]"


def published_text(cell) -> str:
    """'86.5 (-9.48)': the published value and measured - published; the value alone with no ok
    run to measure; '—' if there is none to compare with (``aggregate.cell``)."""
    if math.isnan(cell.published):
        return "—"
    if cell.metric == "params_total":
        value, difference = count(cell.published), f"{cell.difference:+,.0f}"
    else:
        value, difference = number(cell.published, 1), f"{cell.difference:+.2f}"
    return value if math.isnan(cell.difference) else f"{value} ({difference})"


def runs_text(cell, line) -> str:
    """'3/5 (1 diverged, 1 failed)': ok runs of all planned (every record), the others named."""
    if line is None:
        return f"{cell.n}/{cell.runs}"
    return f"{line.n_ok}/{line.n_planned}" + (f" ({line.not_ok})" if line.not_ok else "")


def verdict_text(line) -> str:
    """The cell's verdict; with runs not ok, whether they could change it ('—': no verdict)."""
    if line is None or math.isnan(line.published):
        return "—"
    if not line.not_ok:
        return line.verdict
    return f"{line.verdict} ({'could change' if line.could_change else 'stands'} with the runs not ok)"


def row_title(label: str) -> str:
    """A verdicts label as the tables write it: 'fishnet55 (head=dense)' -> 'FishNet55 (head=dense)'."""
    model, space, rest = label.partition(" ")
    return display_name(model) + space + rest


# ---------------------------------------------------------------- Table 4


ESTIMAND_WORDS = {"best_epoch": "best epoch of one run", "last_epoch": "last epoch of one run",
                  "mean": "mean of runs", "unknown": "unknown statistic"}
IMAGE_WORDS = {"all": "all 10,000 test images", "first_1000": "the first 1,000 test images", "unknown": "test images unknown"}


def reported_text(accuracy, line) -> str:
    """'88.6 (best epoch of one run; the first 1,000 test images)': the published accuracy and what
    it is; '—' where none stands beside the row."""
    if math.isnan(accuracy.published) or line is None or not isinstance(line.estimand, str):
        return published_text(accuracy)
    return f"{number(accuracy.published, 1)} ({ESTIMAND_WORDS[line.estimand]}; {IMAGE_WORDS[line.test_images]})"


def statistic_text(line) -> str:
    """'86.90 ± 0.40 [85.30, 88.50], 4 of 10 below': our runs' values of the published value's
    statistic, its 95 % prediction interval and the published value's rank; 'approx.' when on
    other test images; '—' without it."""
    if line is None or not isinstance(line.statistic, str) or not line.n_stat:
        return "—"
    interval = "" if math.isnan(line.pi_low) else f" [{line.pi_low:.2f}, {line.pi_high:.2f}]"
    spread = f"{number(line.stat_mean)} ± {number(line.stat_std)}" if line.n_stat > 1 else number(line.stat_mean)
    approximate = ", approx." if line.basis != verdicts.EXACT else ""
    return f"{spread}{interval}, {line.rank:g} of {line.n_stat:.0f} below{approximate}"


LEARNED_NOTHING_MARK = "‡"


def learned_nothing_counts(frame: pd.DataFrame) -> dict[tuple[str, str], int]:
    """(row, dataset) -> how many of its ok runs learned nothing (``store.RunRecord.learned_nothing``)."""
    flagged = frame[(frame["status"] == "ok") & frame["learned_nothing"]]
    return flagged.groupby(["row", "dataset"], sort=False).size().to_dict()


def learned_nothing_lines(cells: pd.DataFrame, flagged: dict, dataset: str) -> list[str]:
    """'‡ MLP: 5 of 5 ok runs learned nothing ...', under a dataset's Table 4, for its marked rows."""
    ok_runs = {c.row: c.n for c in cells[(cells["dataset"] == dataset) & (cells["metric"] == "accuracy")].itertuples()}
    return [f"{LEARNED_NOTHING_MARK} {label}: {k} of {ok_runs[label]} ok runs learned nothing (they ended at chance "
            "with a test loss no better than a uniform guess's, log(classes)); counted in the cell, as what this "
            "model does under this protocol." for (label, on), k in flagged.items() if on == dataset]


def table4_layout(cells: pd.DataFrame, lines: dict, published: Published,
                  dataset: str, flagged: dict) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of Table 4 on one dataset.

    Accuracy: our final-epoch mean ± std, marked ‡ where ``flagged`` ((row, dataset) -> count,
    ``learned_nothing_counts``) has ok runs that learned nothing, 95 % CI, ok/planned runs; where a row's runs stand
    beside the report's (``verdicts.at_report_input``) its value with what it is, our runs'
    values of the same statistic with the prediction interval and the value's rank, and the
    verdict (``lines``: (row, dataset) -> verdict line). Time: ours per image; the report's
    seconds per epoch beside it as context only, with no Δ. Parameters: ours, and the report's
    with Δ. The report's columns are left out on a dataset where no row stands beside it.
    """
    cells = cells[cells["dataset"] == dataset]
    reported = bool(cells["published"].notna().any())
    headers = ["Model", "Accuracy (%)", "95 % CI", "ok / planned runs"]
    headers += ["report's value (what it is)", "ours, same statistic [95 % PI], rank", "verdict"] if reported else []
    headers += ["ms / image", "images / s"]
    epoch = f" ({REPORT_EPOCH_IMAGES[dataset]:,} images)" if dataset in REPORT_EPOCH_IMAGES else ""
    headers += [f"report's s/epoch{epoch}"] if reported else []
    headers += ["Parameters"] + (["report's count (Δ)"] if reported else [])
    rows = []
    for label, row_cells in cells.groupby("row", sort=False):
        cell = {c.metric: c for c in row_cells.itertuples()}
        accuracy, line = cell["accuracy"], lines.get((label, dataset))
        mark = f" {LEARNED_NOTHING_MARK}" if flagged.get((label, dataset)) else ""
        row = [label, mean_std(accuracy) + mark, ci_text(accuracy), runs_text(accuracy, line)]
        row += [reported_text(accuracy, line), statistic_text(line), verdict_text(line)] if reported else []
        row += [mean_std(cell["ms_per_image"]), count(cell["images_per_second"].mean)]
        seconds = published.value(accuracy.model, dataset, "sec_per_epoch")
        row += ["—" if math.isnan(accuracy.published) else number(seconds)] if reported else []
        row += [count(cell["params_total"].mean)] + ([published_text(cell["params_total"])] if reported else [])
        rows.append(row)
    return headers, rows


def published_layout(published: Published) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of what each published accuracy is (``claims.PublishedValue``)."""
    headers = ["Model", "Dataset", "Value", "Estimand", "Test images", "Protocol (profile)", "Source", "Note"]
    rows = [[row_title(line.row.label), dataset_title(line.dataset), line.printed, line.estimand,
             IMAGE_WORDS[line.test_images], line.protocol or "none known", line.source, line.note or "—"]
            for line in published.lines if line.metric == "accuracy"]
    return headers, rows


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub table; '|' in a cell is escaped."""
    rows = [[text.replace("|", "\\|") for text in row] for row in rows]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def margin_text(cells: pd.DataFrame, margins: Margins) -> str:
    """The margins the cells' verdicts used (``verdicts.verdict_cells``) and where they come from."""
    judged = cells.loc[cells["published"].notna(), "margin"].value_counts().sort_index()
    used = ", ".join(f"±{margin:g} pp in {n} cell{'s' * (n > 1)}" for margin, n in judged.items()) or "none"
    overrides = [] if margins.default is None else [f"default = {margins.default:g}"]
    overrides += [f'"{cell}" = {value:g}' for cell, value in sorted(margins.cells.items())]
    rule = ("the rule of bench/analysis/verdicts.py, max(1 pp, half a unit of the published value's last printed digit): "
            "at least 1 pp, and never less than the rounding of the printed value")
    why = (f"{margins.source} sets no [margins], so every cell takes {rule}" if not overrides else
           f"{margins.source} [margins] sets {', '.join(overrides)}"
           + ("" if margins.default is not None else f", and the other cells take {rule}"))
    return f"Margin of a mean's TOST: {used}, because {why}. Each cell's margin and its source are in verdicts.csv."


def steps_text(settings: dict, num_classes) -> str:
    """'630 steps: 10 epochs of ⌈2,000 / 32⌉ = 63' for a run on a training subset; '30 epochs of the
    whole training set' otherwise."""
    epochs, batch, per_class = settings.get("epochs"), settings.get("batch_size"), settings.get("preprocess.train_per_class")
    if per_class is None or not num_classes:
        return f"{epochs} epochs of the whole training set"
    images = per_class * int(num_classes)
    steps = -(-images // batch)
    return f"{epochs * steps:,} steps: {epochs} epochs of ⌈{images:,} / {batch}⌉ = {steps}"


def protocol_text(frame: pd.DataFrame, verdict_cells: pd.DataFrame) -> list[str]:
    """A line per setup whose protocol produced none of the published values beside it: no
    like-for-like verdict (``verdicts.other_protocol``)."""
    lines = []
    beside = verdict_cells[verdict_cells["published"].notna()]
    for setup, group in beside.groupby("setup", sort=True):
        runs = frame[frame["setup"] == setup].iloc[0]
        if runs["profile"] in set(group["protocol"]):
            continue
        lines.append(f"{setup} ({steps_text(runs['settings'], runs['num_classes'])}): none of the report's values "
                     "beside it came from its protocol, so it gives no like-for-like verdict; they stand beside it "
                     "as context only.")
    return lines


TABLE4_INTRO = (
    "Per dataset and model, two questions. *Accuracy* and *95 % CI* answer \"what does this protocol give on "
    "average?\": test accuracy after the last epoch on all 10,000 test images, mean ± std over the ok runs, with "
    "its 95 % CI. *ours, same statistic [95 % PI], rank* and *verdict* answer \"could one run of this protocol "
    "have printed the report's value?\": most of the report's values are one run's best epoch on its test data "
    "(the next section says which), so each is placed among our runs' values of that statistic, on the same test "
    "images: mean ± std, the 95 % prediction interval of one new run, mean ± t·s·√(1+1/n), and how many of our "
    "runs lie below the report's value. *consistent*: inside the interval; *outside*: beyond it; *can't tell*: "
    f"fewer than {verdicts.MIN_RUNS} runs (bench/analysis/verdicts.py says why). *approx.*: our per-epoch "
    "accuracies are on other test images than the report's (a stratified 1,000 for its first 1,000), and the "
    "interval is widened by the binomial variance of each 1,000-image subset; such a cell is never pooled with "
    "runs on the exact images. A value that is a mean of runs would be judged by our mean instead (*reproduced* "
    "or *differs*, two one-sided t-tests within a margin); an unknown statistic gets our numbers and *no verdict*. "
    "A value is judged only by the setup whose protocol produced it (its profile); other setups show it as "
    "context, *no verdict*. *ok / planned runs*: planned counts every record, failed, diverged and timed-out runs "
    "included, and names the ones not ok; with runs not ok, the verdict is recomputed with each of them at the "
    "cell's lowest ok value, its highest, and chance, and the cell says whether that *could change* it. The "
    "report's values stand only where our ok runs had its input (56x56x3, 10 classes). '—': no ok run, no CI, or "
    "no published value to compare with.")


PUBLISHED_INTRO = ("Read from its code and logs (bench/assets/table4_published.csv; cited in docs/protocol.md). The "
                   "protocol is the profile that reproduces the one that produced the value.")
OWN_PUBLISHED_INTRO = ("As the published table named above says (docs/own-table.md). The protocol is the profile "
                       "whose runs a value is judged against; *any*: every setup's, at any input.")


def table4_text(cells: pd.DataFrame, lines: dict, published: Published, margins: Margins,
                verdict_cells: pd.DataFrame, frame: pd.DataFrame, flagged: dict, table4: bool = True) -> list[str]:
    """The Table 4 section: how to read it, what the report's values are (``table4``: the shipped
    table's, else a user's), which setups give no like-for-like verdict, a table per dataset
    (``flagged``: ``learned_nothing_counts``)."""
    epochs = " and ".join(f"{n:,} {dataset_title(d)} images" for d, n in REPORT_EPOCH_IMAGES.items())
    parts = [
        TABLE4_INTRO,
        "",
        "*Time* is ours only, per training image (see Method), which means the same whatever the epoch's "
        f"size. The report's seconds per epoch are for its whole epochs ({epochs}) on hardware it does not "
        "name: context, with no Δ. *Parameters*: Keras total, and the report's count where our runs had its input "
        "(56x56x3, 10 classes). 95 % CIs and prediction intervals of every cell are in verdicts.csv. "
        + margin_text(verdict_cells, margins),
    ]
    if published.lines:
        parts += ["", "### What the report's values are", "", PUBLISHED_INTRO if table4 else OWN_PUBLISHED_INTRO,
                  "", markdown_table(*published_layout(published))]
    unjudged = protocol_text(frame, verdict_cells)
    parts += ["", *[f"- {line}" for line in unjudged]] if unjudged else []
    for dataset in dict.fromkeys(cells["dataset"]):
        table = markdown_table(*table4_layout(cells, lines, published, dataset, flagged))
        notes = learned_nothing_lines(cells, flagged, dataset)
        parts += ["", f"### {dataset_title(dataset)}", "", table] + (["", *notes] if notes else [])
    return parts


# ---------------------------------------------------------------- claims


def with_setup(frame: pd.DataFrame, headers: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """The headers and rows with the setup first, when the frame has more than one."""
    if frame["setup"].nunique() < 2:
        return headers, rows
    return ["Setup", *headers], [[setup, *row] for setup, row in zip(frame["setup"], rows)]


def claims_layout(claims: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the claims' verdicts (``verdicts.claim_verdicts``); their words and
    how they are read are in ``claim_words``, once per claim."""
    headers = ["Claim", "Verdict", "holds / contradicted / can't tell", "Needs"]
    rows = [[c.claim, f"**{c.verdict}**", f"{c.n_holds} / {c.n_contradicted} / {c.n_cant_tell}", needs_text(c.needs)]
            for c in claims.itertuples()]
    return with_setup(claims, headers, rows)


NEEDS_RUNS = re.compile(r"needs ok runs of (.+) on (\S+)")


def needs_text(needs: str) -> str:
    """A claim's needs (``verdicts.claim_verdicts``), the rows without any ok run gathered by dataset:
    'ok runs of mlp, cnn on cifar10; needs 3 ok runs of ... (has 1)'; '—' for none."""
    missing, others = {}, []
    for need in filter(None, needs.split("; ")):
        if match := NEEDS_RUNS.fullmatch(need):
            missing.setdefault(match[2], []).append(match[1])
        else:
            others.append(need)
    parts = [f"ok runs of {', '.join(rows)} on {dataset}" for dataset, rows in missing.items()] + others
    return "; ".join(parts) or "—"


def claim_words(claims: pd.DataFrame) -> list[str]:
    """A line per passage of the report: the claims read from it, where it is, its words, and how
    they are read where that needs saying."""
    once = claims.drop_duplicates("claim")
    passages = {}
    for claim in once.itertuples():
        passages.setdefault((claim.quote, claim.section), []).append(claim)
    lines = []
    for (quote, section), read in passages.items():
        readings = "".join(f" Read as: {c.reading}." for c in read if c.reading)
        lines.append(f"- {', '.join(c.claim for c in read)} ({section}): \"{quote}\"{readings}")
    return lines


def difference_text(line) -> str:
    """'+6.09 [+2.10, +10.08]': the difference with its 95 % CI, in the metric's unit."""
    digits = CLAIM_METRICS[line.metric][1]
    if math.isnan(line.difference):
        return "—"
    text = f"{line.difference:+,.{digits}f}"
    return text if math.isnan(line.ci_low) else f"{text} [{line.ci_low:+,.{digits}f}, {line.ci_high:+,.{digits}f}]"


def comparisons_layout(comparisons: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the claims' comparisons (``verdicts.claim_comparisons``)."""
    headers = ["Claim", "Dataset", "Metric", "Row", "against", "Difference (95 % CI)", "p", "Holm p",
               "Hedges' g", "Verdict"]
    rows = [[c.claim, dataset_title(c.dataset), CLAIM_METRICS[c.metric][0], row_title(c.row), row_title(c.against),
             difference_text(c), p_text(c.p_raw), p_text(c.p_holm),
             "—" if math.isnan(c.hedges_g) else f"{c.hedges_g:+.2f}", c.verdict] for c in comparisons.itertuples()]
    return with_setup(comparisons, headers, rows)


CLAIMS_INTRO = (
    "The report's claims, as data ({file}: its words and where they are), each judged on "
    "every dataset it names. *holds* when all its comparisons hold, *contradicted* when any is contradicted, "
    "*can't tell* otherwise; *Needs*: the runs a comparison lacks. A CNN is the report's (tanh, average pooling) "
    "where a setup ran it, fishbench's (ReLU, max pooling) elsewhere. Under the table, once each: the report's "
    "words, where it says them, and *Read as*: how a claim's words are read where they name no measure, and for "
    "a claim on several datasets the family-wise error of its *contradicted* (each dataset is its own Holm family).")
COMPARISONS_INTRO = (
    "Difference = row − against, with its 95 % CI. Accuracy (pp): Welch's t-test, two-sided p, Holm-adjusted "
    "within the family of all accuracy comparisons of one dataset (a pair compared by two claims counts once), "
    "Hedges' g; *holds* when the Holm p < 0.05 in the claimed direction, *contradicted* when < 0.05 the other "
    "way; a *near* claim is a TOST against value ± margin, in the same family. Time (ms / image) comes from a "
    "shared machine, so it is measured, not tested: it holds when the rows' 95 % CIs do not overlap in the "
    "claimed direction (Welch's p for information, no Holm p). Parameters and FLOPs are exact: every run of "
    "the row against every run of the other. All of it, with the reasons, is in claims.csv.")


def claims_text(judged: verdicts.Verdicts, file: str, table4: bool = True) -> list[str]:
    """The claims section: the verdict per claim (of ``file``: the report's with ``table4``, else a
    user's), then every comparison behind them."""
    intro = CLAIMS_INTRO.format(file=file)
    title, words = ("The report's claims", "the report says them") if table4 else ("Claims", "they are said")
    intro = intro if table4 else intro.replace("The report's claims", "The claims", 1)
    return [f"## {title}", "", intro, "", markdown_table(*claims_layout(judged.claims)), "",
            f"Their words, and where {words}:", "", *claim_words(judged.claims), "",
            "### Comparisons", "", COMPARISONS_INTRO, "", markdown_table(*comparisons_layout(judged.comparisons))]


# ---------------------------------------------------------------- method and findings


def distinct(values) -> str:
    """The distinct values, in order of appearance, joined; None-like ones read 'none'."""
    texts = ["none" if v == "null" or pd.isna(v) else str(v) for v in values]
    return ", ".join(dict.fromkeys(texts))


def shared_settings(frame: pd.DataFrame) -> str:
    """'key=value' for every row setting all runs share (the others are in the row labels)."""
    settings = list(frame.drop_duplicates("row_key")["settings"])
    shared = [k for k in sorted(settings[0]) if k != "model" and k not in aggregate.varying_keys(settings)]
    return ", ".join(f"{k}={aggregate.as_text(settings[0][k])}" for k in shared)


def setups_text(frame: pd.DataFrame) -> str:
    """' Setups, judged apart: profile=a (lr=0.01); profile=b (lr=0.1).' when the setups' labels
    leave out settings that tell them apart (``aggregate.setup_keys``); '' otherwise."""
    setups = frame.drop_duplicates("setup")
    settings = [aggregate.setup_settings(s) for s in setups["settings"]]
    varying = aggregate.varying_keys(settings)
    unnamed = [[k for k in varying if k not in named] for named in aggregate.setup_keys(settings)]
    if not any(unnamed):
        return ""
    described = [label + (f" ({aggregate.settings_label(s, keys)})" if keys else "")
                 for label, s, keys in zip(setups["setup"], settings, unnamed)]
    return f" Setups, judged apart: {'; '.join(described)}."


def machine_sharing(frame: pd.DataFrame) -> str:
    """A sentence when the timings come from a shared machine: other runs, or other load."""
    jobs, load = frame["jobs_at_once"].fillna(1).max(), frame["load_at_end"].astype(float).max()
    cores = pd.to_numeric(frame["cpu_count"], errors="coerce").max()
    parts = [f"up to {jobs:g} runs at once"] if jobs > 1 else []
    if load > cores:
        parts.append(f"a 1-minute load average of up to {load:.1f} on {cores:g} cores at a run's end")
    return f" Timings come from runs that shared the machine: {'; '.join(parts)}." if parts else ""


def set_aside_text(set_aside: int) -> str:
    """What became of the records of a seed that has a newer one (``aggregate.one_per_seed``)."""
    if not set_aside:
        return "One record per configuration and seed: none set aside."
    return (f"{set_aside} older record{'s' * (set_aside > 1)} set aside (not in the tables, nor in runs.csv): "
            "each repeats a configuration and seed that has a newer record, as a rerun after a version bump "
            "does, and one seed is one observation, so only the newest counts (latest finished_at, then "
            "started_at, then run_id).")


def method_lines(frame: pd.DataFrame, cells: pd.DataFrame, set_aside: int) -> list[str]:
    """The method in a few lines: records, n, data, settings, measures, environment."""
    ok = aggregate.ok_runs(frame)
    sizes = cells.loc[(cells["metric"] == "accuracy") & (cells["n"] > 0), "n"]
    n = f"{sizes.min()} to {sizes.max()}" if sizes.nunique() > 1 else str(sizes.max() if len(sizes) else 0)
    inputs = dict(zip(frame["dataset"], frame["inputs"]))
    environment = "; ".join(f"{name} {distinct(frame[key])}" for key, name in ENVIRONMENT_LINE)
    return [
        f"Records: {len(frame)} runs ({len(ok)} ok) of profile(s) {distinct(frame['profile'])}; "
        f"n = {n} ok runs per cell (seeds {distinct(sorted(frame['seed']))}). {set_aside_text(set_aside)}",
        "Data: " + "; ".join(f"{d} ({inputs[d] or 'input not known'})" for d in sorted(inputs)) + ".",
        f"Settings of every run: {shared_settings(frame)}." + setups_text(frame),
        "Accuracy: final-epoch test accuracy (%), mean ± sample std (ddof=1) over the ok runs of one "
        "configuration (every spec field but seed and repeat); 95 % CI = mean ± t(0.975, n-1)·std/√n; "
        "at n = 1 std and CI are NaN. Time: training milliseconds per image = 1000 / images per second, "
        "a run's images per second being its training images over the median of its steady epochs "
        "(epoch 1, with tracing, left out); then mean ± std over runs. Parameters: Keras total.",
        f"Environment: {environment}; code {distinct(frame['git_commit'])}." + machine_sharing(frame),
        timing_machines(frame),
    ]


def timing_machines(frame: pd.DataFrame) -> str:
    """Which machines the times come from, and how many ok runs' times were left out for having
    been timed otherwise than most of their cell's (``aggregate.timed_on_one_machine``)."""
    ok = aggregate.ok_runs(frame)
    left_out = int((~ok["timed"]).sum())
    text = ("Times: from each row and dataset's runs on the machine, and with the threads per run and runs at "
            f"once, that most of them had ({distinct(ok.loc[ok['timed'], 'machine'])})")
    if not left_out:
        return text + "; never averaged over machines."
    return (text + f"; the times of {left_out} ok run{'s' * (left_out > 1)} timed otherwise are left out "
            "(their accuracies count), so that no time is averaged over CPUs or over a machine's load; "
            "runs.csv has each run's machine.")


def parameter_findings(frame: pd.DataFrame, cells: pd.DataFrame, published: Published) -> list[str]:
    """Where a parameter count measured at the report's input differs from the published one:
    by how much and why."""
    params = cells[(cells["metric"] == "params_total") & cells["difference"].notna()]
    params = params[params["difference"] != 0]
    inputs_of = dict(zip(zip(frame["row"], frame["dataset"]), frame["inputs"]))
    lines = []
    for (row, value), group in params.groupby(["row", "mean"], sort=False):
        model, reference = group["model"].iloc[0], group["published"].iloc[0]
        inputs = distinct(inputs_of[row, d] for d in group["dataset"])
        lines.append(f"{row} on {', '.join(map(dataset_title, group['dataset']))}: {count(value)} parameters "
                     f"against the report's {count(reference)} ({value - reference:+,.0f}, "
                     f"{100 * (value / reference - 1):+.1f} %), measured at {inputs}; "
                     f"the report's count: {published.notes.get(model, 'no known cause')}.")
    return lines


def status_findings(frame: pd.DataFrame) -> list[str]:
    """How many runs of each cell diverged, failed or timed out, with seeds and the first error."""
    lines = []
    for (row, dataset), runs in frame.groupby(["row", "dataset"], sort=False):
        bad = runs[runs["status"] != "ok"]
        if bad.empty:
            continue
        parts = []
        for status, group in bad.groupby("status"):
            seeds = ("seed " if len(group) == 1 else "seeds ") + ", ".join(map(str, sorted(group["seed"])))
            error = str(group["error"].iloc[0] or "").strip().splitlines() or [""]
            parts.append(f"{len(group)} {status} ({seeds})" + (f": {error[0][:ERROR_CHARS]}" if error[0] else ""))
        lines.append(f"{row} on {dataset_title(dataset)}: {len(bad)} of {len(runs)} runs not ok, "
                     f"left out of the table: " + "; ".join(parts) + ".")
    if not lines:
        lines.append(f"All {len(frame)} runs finished ok: none diverged, failed or timed out.")
    return lines


def data_findings(frame: pd.DataFrame) -> list[str]:
    """A line per dataset with runs on other bytes than its canonical copy (``kinds.CANONICAL_HASHES``),
    which its cells count with the others."""
    lines = []
    for dataset, runs in frame.groupby("dataset", sort=False):
        canonical = kinds.CANONICAL_HASHES.get(dataset)
        other = runs[runs["data_hash"] != canonical]
        if canonical is not None and len(other):
            lines.append(f"{dataset_title(dataset)}: {len(other)} of {len(runs)} runs on other data than the "
                         f"canonical copy (content sha256 {distinct(sorted(other['data_hash']))}), counted in its "
                         "cells with the others.")
    return lines


# ---------------------------------------------------------------- where the time went


def time_text(frame: pd.DataFrame, kept: list[store.RunRecord], records: list[store.RunRecord]) -> list[str]:
    """The section "Where the time went" (``bench.report.timeshare``): the phases of the kept records
    (``frame`` is theirs) per row and dataset, and the efficiency of every invocation in ``records``."""
    parts = ["## Where the time went", ""]
    sums = timeshare.phase_sums(frame, kept)
    if sums.empty:
        return parts + [timeshare.NONE_TIMED]
    parts += [timeshare.INTRO + timeshare.left_out(len(frame) - int(sums["runs"].iloc[-1])), "",
              markdown_table(*timeshare.sums_layout(sums))]
    efficiencies = phases.efficiencies(records)
    if efficiencies:
        parts += ["", timeshare.EFFICIENCY_INTRO, "", markdown_table(*timeshare.efficiency_layout(efficiencies))]
    return parts


# ---------------------------------------------------------------- assembling


def epoch_frame(records: list[store.RunRecord], frame: pd.DataFrame) -> pd.DataFrame:
    """Epochs of the ok runs with their row label; accuracies in %."""
    history = store.history_frame(records).merge(aggregate.ok_runs(frame)[["run_id", "row"]], on="run_id")
    return history.assign(accuracy=history["accuracy"] * 100, val_accuracy=history["val_accuracy"] * 100)


def report_figures(frame: pd.DataFrame, history: pd.DataFrame, cells: pd.DataFrame) -> dict[str, Figure]:
    """File name -> Figure: accuracy with CI, curves and cost per dataset, head comparisons."""
    colors = figures.row_colors(dict(zip(cells["row"], cells["model"])))
    measured = cells[cells["n"] > 0]
    datasets = list(dict.fromkeys(measured["dataset"]))
    made = {}
    if datasets:
        made["accuracy_ci.png"] = figures.accuracy_ci_figure(measured[measured["metric"] == "accuracy"], colors)
    for dataset in datasets:
        made[figure_name("curves", dataset)] = figures.curves_figure(history, dataset, colors)
        made[figure_name("cost", dataset)] = figures.cost_figure(cells, dataset, colors)
    for index, (model, dataset, rows) in enumerate(aggregate.head_groups(frame), 1):
        made[figure_name(f"heads_{index}_{model}", dataset)] = figures.heads_figure(history, dataset, rows, colors)
    return made


def figure_name(kind: str, dataset: str) -> str:
    """'curves_cifar10.png': a figure's file name, a dataset given by its path ('/data/my.npz') by its stem
    (as its runs' files are named), made one safe file name whatever a record's model or dataset holds."""
    return safe_name(f"{kind}_{runfiles.dataset_label(dataset)}") + ".png"


def markdown(frame: pd.DataFrame, cells: pd.DataFrame, published: Published, judged: verdicts.Verdicts,
             by_cell: dict, flagged: dict, margins: Margins, set_aside: int, figure_names: list[str],
             skipped: list[str], time_parts: list[str], chosen: sources.Sources) -> str:
    """report.md: method, Table 4 with its verdicts (``by_cell``: (row, dataset) -> verdict
    line; ``flagged``: ``learned_nothing_counts``), the claims (none without a claims file),
    findings, where the time went (``time_parts``: ``time_text``), figures. ``chosen``: the published table and claims it used."""
    table4 = chosen == sources.TABLE4_SOURCES
    parts = ["# fishbench report", ""] + ([] if table4 else [f"Judged against: {chosen.text}.", ""]) + ["## Method", ""]
    parts += [f"- {line}" for line in method_lines(frame, cells, set_aside)]
    table4_published, table4_claims = chosen.published == sources.TABLE4, chosen.claims == sources.TABLE4
    title = "Table 4" if table4_published else "Accuracy, time and parameters"
    parts += ["", f"## {title}", ""] + table4_text(cells, by_cell, published, margins, judged.cells, frame,
                                                    flagged, table4_published)
    claims_file = f"bench/assets/{sources.KINDS['claims'].name}" if table4_claims else chosen.claims
    parts += [""] + claims_text(judged, claims_file, table4_claims) if len(judged.claims) else []
    findings = parameter_findings(frame, cells, published) + data_findings(frame) + status_findings(frame)
    findings += [f"Record file skipped: {message}" for message in skipped]
    parts += ["", "## Findings", ""] + [f"- {line}" for line in findings]
    parts += [""] + time_parts
    figure_lines = [f"![{name}]({FIGURE_DIR}/{name})" for name in figure_names] or ["None: no run finished ok."]
    parts += ["", "## Figures", ""] + figure_lines
    return "\n".join(parts) + "\n"


@dataclass(frozen=True)
class Report:
    """What ``write_report`` writes: report.md's and report.html's text, CSV tables and figures by
    file name, and the text for the terminal."""

    markdown: str
    html: str
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Figure]
    terminal: str


def make_report(records: list[store.RunRecord], skipped: list[str], published: Published,
                claims: ClaimsFile, chosen: sources.Sources = sources.TABLE4_SOURCES) -> Report:
    """The report of these records (one per configuration and seed kept) against the published
    table (``load_published``) and the claims, read from ``chosen``'s files."""
    kept, set_aside = aggregate.one_per_seed(records)
    frame = aggregate.report_frame(kept)
    cells = aggregate.table4_cells(frame, published)
    judged = verdicts.evaluate(aggregate.verdict_runs(frame), published, claims)
    by_cell = {(line.row, line.dataset): line for line in aggregate.with_rows(judged.cells, frame).itertuples()}
    made = report_figures(frame, epoch_frame(kept, frame), cells)
    flagged = learned_nothing_counts(frame)
    text = markdown(frame, cells, published, judged, by_cell, flagged, claims.margins, len(set_aside), list(made), skipped,
                    time_text(frame, kept, records), chosen)
    tables = {"table4.csv": aggregate.table4_table(cells), "verdicts.csv": aggregate.verdicts_table(judged.cells),
              "claims.csv": aggregate.claims_table(judged),
              "runs.csv": aggregate.runs_table(kept, frame), "history.csv": aggregate.history_table(kept, frame)}
    page = html_page(frame, cells, by_cell, flagged, judged)
    return Report(text, page, tables, made,
                  terminal(cells, published, judged, by_cell, flagged, len(set_aside), skipped))


def row_settings_text(label: str, model: str) -> str:
    """'head=dense, profile=paper' of 'FishNet55 (head=dense, profile=paper)'; '' of 'FishNet55'."""
    return label.removeprefix(display_name(model)).strip().removeprefix("(").removesuffix(")")


def html_page(frame: pd.DataFrame, cells: pd.DataFrame, by_cell: dict, flagged: dict,
              judged: verdicts.Verdicts) -> str:
    """report.html (``bench.report.html``): the accuracy cells as report.md writes them (``flagged``:
    ``learned_nothing_counts``), every ok run's final accuracy, the claims."""
    colors = {row: to_hex(color) for row, color in figures.row_colors(dict(zip(cells["row"], cells["model"]))).items()}
    accuracy = cells[cells["metric"] == "accuracy"]
    mark = lambda c: f" {LEARNED_NOTHING_MARK}" if flagged.get((c.row, c.dataset)) else ""  # noqa: E731
    lines = [html.CellLine(number=index, row=c.row, model=display_name(c.model),
                           settings=row_settings_text(c.row, c.model), dataset=dataset_title(c.dataset),
                           accuracy=mean_std(c) + mark(c), mean=c.mean, ci=ci_text(c),
                           ci_low=c.ci_low, ci_high=c.ci_high, runs=runs_text(c, by_cell.get((c.row, c.dataset))),
                           n=c.n, verdict=verdict_text(by_cell.get((c.row, c.dataset))), color=colors[c.row])
             for index, c in enumerate(accuracy.itertuples(), 1)]
    ok = aggregate.ok_runs(frame)
    ok = ok[ok["accuracy"].notna()]
    points = [html.RunPoint(row=r.row, dataset=dataset_title(r.dataset), accuracy=r.accuracy, seed=r.seed,
                            run_id=r.run_id, record=str(Results(Path()).record_path(r.run_id))) for r in ok.itertuples()]
    summary = (f"{len(frame)} runs ({len(ok)} ok) of profile(s) {distinct(frame['profile'])}, "
               f"one record per configuration and seed."
               + (f" {LEARNED_NOTHING_MARK}: a cell with ok runs that learned nothing (they ended at chance with a "
                  "test loss no better than a uniform guess's)." if flagged else ""))
    return html.page("fishbench report", summary, lines, points, judged.claims)


def terminal(cells: pd.DataFrame, published: Published, judged: verdicts.Verdicts, by_cell: dict, flagged: dict,
             set_aside: int, skipped: list[str]) -> str:
    """The terminal text: Table 4 per dataset (``flagged`` as ``table4_layout``'s), each claim's
    verdict, what was set aside or skipped."""
    lines = []
    for dataset in dict.fromkeys(cells["dataset"]):
        headers, rows = table4_layout(cells, by_cell, published, dataset, flagged)
        notes = learned_nothing_lines(cells, flagged, dataset)
        lines += [dataset_title(dataset), tabulate(rows, headers=headers, disable_numparse=True), *notes, ""]
    lines += claim_lines(judged)
    lines += [set_aside_text(set_aside)] if set_aside else []
    lines += [f"skipped record file {message}" for message in skipped]
    return "\n".join(lines)


def claim_lines(judged: verdicts.Verdicts) -> list[str]:
    """A line per claim with its verdict; the claims none of whose comparisons had enough ok runs
    (the profile ran other datasets or models) in one line."""
    starved = judged.comparisons.groupby(["setup", "claim"], sort=False)["why"].agg(
        lambda why: why.isin([verdicts.TOO_FEW, verdicts.NO_RUN]).all())
    several_setups = judged.claims["setup"].nunique() > 1
    lines = [f"claim {c.claim}: {c.verdict}" + (f" ({c.setup})" if several_setups else "")
             for c in judged.claims.itertuples() if not starved.get((c.setup, c.claim), False)]
    if n := int(starved.sum()):
        lines.append(f"claim verdicts: {'all ' * (not lines)}{n} can't tell for too few ok runs "
                     "(report.md lists what each needs)")
    return lines


def result_folders(root: Path) -> list[Path]:
    """The folders of ``root`` that hold records (``root/<profile>``), and root itself if it does.

    Raises:
        ValueError: there is none.
    """
    candidates = [root, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []
    folders = [folder for folder in candidates if Results(folder).runs.is_dir()]
    if not folders:
        raise ValueError(f"nothing to report: no folder with runs/ in {root}/; run `python -m bench run` first")
    return folders


def write_reports(root: Path) -> str:
    """Write the report of each results folder in ``root`` (``result_folders``) into it; return
    their terminal texts. A folder that cannot be reported is skipped with a warning saying why,
    and the others are still written.

    Raises:
        ValueError: no folder could be reported (each named, with why).
    """
    texts, skipped = [], []
    for folder in result_folders(root):
        try:
            texts.append(write_report(folder, folder))
        except ValueError as error:
            warnings.warn(f"skipped {folder}: {error}", stacklevel=2)
            skipped.append(f"{folder}: {error}")
    if not texts:
        raise ValueError(f"no folder in {root}/ could be reported: {'; '.join(skipped)}")
    return "\n".join(texts)


def csv_text(table: pd.DataFrame) -> str:
    """A table as CSV, without its columns that hold no value (none, NaN or '') in any line; a
    table of no lines keeps its header, so it still reads as a table with no rows."""
    empty = (table.isna() | table.eq("")).all() & (len(table) > 0)
    return table.loc[:, ~empty].to_csv(index=False)


def figure_bytes(figure: Figure, form: str, **options) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format=form, **options)
    return buffer.getvalue()


def write_report(results: str | Path, out: str | Path, published: str | Path | None = None,
                 claims: str | Path | None = None) -> str:
    """Read the records of ``results``, the published table and the claims they are judged
    against, write the report into ``out``, return the terminal text.

    ``published`` and ``claims`` (the flags: "table4", "none" or a file; None: not given) replace
    the folder's own choice (``bench.analysis.sources``); given, they are kept in ``results``,
    the records' folder, whatever ``out`` is (sources.toml, with copies of the files), for the
    next report of it.

    Writes report.md, report.html, table4.csv, verdicts.csv, claims.csv, runs.csv, history.csv and
    figures/*.png and *.pdf; nothing when it raises. Each file is written whole and never through
    a link (``bench.files``), its name safe whatever the records hold (``figure_name``).

    Raises:
        ValueError: ``results/runs`` is missing or holds no readable record, or the published
            table or claims file is missing or not valid (one line, ``load_published``, ``load_claims``).
    """
    results, out = Path(results), Path(out)
    records, skipped = Results(results).records()
    if not records:
        where = Results(results).runs
        state = ("does not exist" if not where.is_dir() else
                 f"holds no readable record ({'; '.join(skipped)})" if skipped else "is empty")
        raise ValueError(f"nothing to report: {where} {state}; run `python -m bench run` first")
    given = {"published": published and str(published), "claims": claims and str(claims)}
    chosen = sources.choose(given, sources.read_kept(results), profile_sources(records))
    table = load_published(chosen.file("published"))
    made = make_report(records, skipped, table, claims_of(chosen, records, table), chosen)
    check_folder(out / FIGURE_DIR)
    if published or claims:
        sources.keep(results, chosen)
    for name, figure in made.figures.items():
        write_bytes_atomic(out / FIGURE_DIR / name, figure_bytes(figure, "png", dpi=PNG_DPI))
        write_bytes_atomic((out / FIGURE_DIR / name).with_suffix(".pdf"),
                           figure_bytes(figure, "pdf", metadata={"CreationDate": None}))
    write_text_atomic(out / "report.md", made.markdown)
    write_text_atomic(out / "report.html", made.html)
    for name, table in made.tables.items():
        write_text_atomic(out / name, csv_text(table))
    return (made.terminal + f"\nwrote report.md, report.html, {', '.join(made.tables)} and {len(made.figures)} figures "
            f"(PNG and PDF) to {out}")


def profile_sources(records: list[store.RunRecord]) -> list[sources.Sources | None]:
    """The ``[report]`` choice of each profile of the records; None for one that is not shipped."""
    names = dict.fromkeys(record.spec.profile for record in records)
    return [sources.Sources(**config.report_choice(name)) if name in config.profile_names() else None
            for name in names]


def claims_of(chosen: sources.Sources, records: list[store.RunRecord], published: Published) -> ClaimsFile:
    """The chosen claims file, checked against the models of the shipped profiles, the published table
    and the records (``config.known_models``: no Keras, and a user's model need not be imported to be
    named), and the built-in datasets and the records'; none without one."""
    path = chosen.file("claims")
    if path is None:
        return no_claims()
    return load_claims(path, models=config.known_models([line.model for line in published.lines],
                                                        sorted({r.spec.model for r in records})),
                       datasets=[*kinds.NAMES, *sorted({r.spec.dataset for r in records} - set(kinds.NAMES))])
