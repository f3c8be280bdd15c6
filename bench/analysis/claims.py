"""The report's words as data: its claims (``bench/assets/claims.toml``) and its Table 4
(``bench/assets/table4_published.csv``), read and checked; ``bench.analysis.verdicts`` judges them.
A user's own table and claims are read the same way (docs/own-table.md).

The claims file's schema is written at the top of the file itself. A file that breaks it is
refused in one line naming the file, the claim, the key, what is accepted and what was
received (``load_claims``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

CLAIMS_FILE = Path(__file__).parent.parent / "assets" / "claims.toml"
PUBLISHED_FILE = Path(__file__).parent.parent / "assets" / "table4_published.csv"  # the report's Table 4, tidy
SCHEMA_VERSION = 1
METRICS = ("accuracy", "ms_per_image", "params_total", "flops_per_image")  # what a claim compares
# kind -> (keys it requires beyond COMMON_KEYS, metric it fixes or None)
KINDS = {
    "greater": ("metric", "than"),  # each of rows > each of than
    "less": ("metric", "than"),  # each of rows < each of than
    "fewest": ("metric", "among"),  # the one row < each other row of among
    "near": ("metric", "value", "margin"),  # each of rows within value ± margin (accuracy only)
    "better_and_cheaper": ("than",),  # accuracy greater AND flops_per_image less, per pair
}
COMMON_KEYS = ("id", "kind", "section", "quote", "datasets", "rows")
OPTIONAL_KEYS = ("interpretation",)
ABSENT = object()  # what a missing key "received"
TOP_KEYS = ("schema_version", "margins", "claims")


def option_text(value) -> str:
    """An option's value as text, so "1000" in a CSV matches 1000 in a record."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class Row:
    """A model with the options that name its row; it matches a run whose options include them.
    ``choose`` picks it, or where a setup has no run of it the first of ``instead`` that it has
    (the report's tanh CNN where it ran, fishbench's ReLU CNN elsewhere)."""

    model: str
    options: tuple[tuple[str, Any], ...] = ()  # sorted (key, value) pairs, hashable
    instead: tuple[Row, ...] = ()  # the rows to compare where a setup has no run of this one, in order

    @property
    def label(self) -> str:
        """'mlp', 'fishnet55 (head=dense)'."""
        named = ", ".join(f"{key}={option_text(value)}" for key, value in self.options)
        return self.model + (f" ({named})" if named else "")

    def matches(self, model: str, options: Mapping) -> bool:
        return model == self.model and all(
            key in options and option_text(options[key]) == option_text(value) for key, value in self.options)

    def choose(self, runs: Iterable[tuple[str, Mapping]]) -> Row:
        """This row, or the first of ``instead`` that any of the (model, options) of ``runs`` matches;
        this row when none does."""
        runs = list(runs)
        ran = [row for row in (self, *self.instead) if any(row.matches(model, options) for model, options in runs)]
        return dataclasses.replace(ran[0] if ran else self, instead=())


@dataclass(frozen=True)
class Claim:
    """One claim of the report: its words, where they are, and what would support them.

    ``than`` holds the other rows (for ``fewest``: ``among`` without the row itself);
    ``value`` and ``margin`` (percentage points) are set for ``near`` only.
    """

    id: str
    kind: str
    section: str
    quote: str
    datasets: tuple[str, ...]
    rows: tuple[Row, ...]
    than: tuple[Row, ...] = ()
    metric: str = "accuracy"
    value: float = math.nan
    margin: float = math.nan
    interpretation: str = ""  # how the claim's words are read where they are not a measure (optional key)


@dataclass(frozen=True)
class Margins:
    """Equivalence margins of the Table 4 cells (percentage points) given as data.

    ``cells`` maps "model/dataset" to a margin; ``default`` (None: the rule
    max(1 pp, half the last printed digit)) applies to the other cells.
    """

    default: float | None = None
    cells: Mapping[str, float] = field(default_factory=dict)
    source: str = "claims.toml"


@dataclass(frozen=True)
class ClaimsFile:
    claims: tuple[Claim, ...]
    margins: Margins


@dataclass(frozen=True)
class PublishedValue:
    """One value of the report's Table 4 and what it is (docs/protocol.md, "Where the report's
    numbers come from").

    Attributes:
        model, dataset, metric: the cell; dataset "" for the parameter count (one per model).
        printed: the value as printed (its digits set a cell's default margin); ``value`` as a float.
        options: the model options of the report's model where the registry offers others
            ({"head": "dense"}): a row with other values is not the report's model.
        estimand: for an accuracy, which statistic it is (ESTIMANDS): the best or the last
            epoch's test accuracy of one run, a mean of several runs, or unknown; "" otherwise.
        test_images: the test images it was measured on (TEST_IMAGES): "all" 10,000, the
            "first_1000", or "unknown".
        protocol: the profile that reproduces the protocol that produced it ("notebook",
            "paper"), "" when none is known; only a setup of that profile is judged against it, and
            only at the report's input; "any" (ANY_PROTOCOL): every setup, at any input.
        source: where it was read (a notebook cell, a history file) or "no code or log".
        note: what else the source says (the best and last epochs, the parameter count's input).
    """

    model: str
    dataset: str
    metric: str
    printed: str
    options: Mapping[str, str] = field(default_factory=dict)
    estimand: str = ""
    test_images: str = ""
    protocol: str = ""
    source: str = ""
    note: str = ""

    @property
    def value(self) -> float:
        return float(self.printed)

    @property
    def row(self) -> Row:
        return Row(self.model, tuple(sorted(self.options.items())))


@dataclass(frozen=True)
class Published:
    """The report's Table 4 (Cao, Shang and Zang, Columbia E4040, 2021), one ``PublishedValue`` a line."""

    lines: tuple[PublishedValue, ...]

    def line(self, model: str, dataset: str, metric: str) -> PublishedValue | None:
        key = (model, "" if metric == "params_total" else dataset, metric)
        return next((line for line in self.lines if (line.model, line.dataset, line.metric) == key), None)

    def value(self, model: str, dataset: str, metric: str) -> float:
        """The published value, NaN where the report has none."""
        line = self.line(model, dataset, metric)
        return line.value if line else math.nan

    def accuracy(self, model: str, dataset: str, options: Mapping) -> PublishedValue | None:
        """The published accuracy of the report's model on the dataset, if a row with these model
        options is it."""
        line = self.line(model, dataset, "accuracy")
        return line if line and line.row.matches(model, options) else None

    def describes(self, model: str, settings: Mapping) -> bool:
        """Whether a row of ``model`` with these settings ("model_options.head" keys) is the report's model."""
        options = {key.removeprefix("model_options."): value for key, value in settings.items()
                   if key.startswith("model_options.")}
        return all(line.row.matches(model, options) for line in self.lines if line.model == model)

    @property
    def notes(self) -> dict[str, str]:
        """model -> what the report's parameter count stands for."""
        return {line.model: line.note for line in self.lines if line.metric == "params_total" and line.note}

    @property
    def datasets(self) -> list[str]:
        """The report's datasets, in its column order."""
        return list(dict.fromkeys(line.dataset for line in self.lines if line.dataset))


ESTIMANDS = ("best_epoch", "last_epoch", "mean", "unknown")
TEST_IMAGES = {"all": None, "first_1000": 1000, "unknown": None}  # -> how many images, None for all or unknown
PUBLISHED_KEYS = {"estimand": ESTIMANDS, "test_images": tuple(TEST_IMAGES)}  # checked on accuracy lines
ANY_PROTOCOL = "any"  # a published value that every setup is judged against, whatever its profile and input
# A published file's columns: these are required; the others may be left out, taking these values
# (a user's own table: docs/own-table.md).
PUBLISHED_REQUIRED = ("model", "dataset", "metric", "value")
PUBLISHED_DEFAULTS = {"options": "", "estimand": "mean", "test_images": "all", "protocol": ANY_PROTOCOL,
                      "source": "", "note": ""}


def load_published(path: str | Path | None = PUBLISHED_FILE) -> Published:
    """The published table (model, dataset, metric, value, options as "key=value;...", estimand,
    test_images, protocol, source, note), each value kept as its printed text; None: no table.
    A column left out takes its PUBLISHED_DEFAULTS value on every line.

    Raises:
        ValueError: one line naming the file (and line): unreadable, a required column missing,
            an unknown column, a value that is not a number, or an accuracy line whose estimand or
            test_images is not one of the accepted.
    """
    if path is None:
        return Published(())
    path = Path(path)
    try:
        frame = pd.read_csv(path, keep_default_na=False, dtype=str)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path.name}: not a readable CSV file: {' '.join(str(error).split())}") from None
    accepted = (*PUBLISHED_REQUIRED, *PUBLISHED_DEFAULTS)
    _check_keys(path.name, dict.fromkeys(frame.columns), accepted, required=PUBLISHED_REQUIRED)
    frame = frame.assign(**{k: v for k, v in PUBLISHED_DEFAULTS.items() if k not in frame.columns})
    return Published(tuple(_published_line(f"{path.name} line {number}", line)
                           for number, line in enumerate(frame.to_dict("records"), 2)))


def _published_line(source: str, line: Mapping) -> PublishedValue:
    options = dict(pair.split("=", 1) for pair in line["options"].split(";") if pair)
    value = PublishedValue(line["model"], line["dataset"], line["metric"], line["value"].strip(), options,
                           line["estimand"], line["test_images"], line["protocol"], line["source"], line["note"])
    try:
        float(value.printed)
    except ValueError:
        _refuse(source, "value must be a number", ["e.g. 86.5"], value.printed, key="value")
    if value.metric == "accuracy":
        for key, accepted in PUBLISHED_KEYS.items():
            if getattr(value, key) not in accepted:
                _refuse(f"{source}: {value.model}/{value.dataset}", f"unknown {key}", accepted, getattr(value, key), key=key)
    return value


def no_claims() -> ClaimsFile:
    """What a report judges when it has no claims file: no claim, the default margins."""
    return ClaimsFile((), Margins(source="no claims file"))


def load_claims(path: str | Path = CLAIMS_FILE, *, models: Iterable[str], datasets: Iterable[str]) -> ClaimsFile:
    """Read and validate a claims file (TOML; schema in ``bench/assets/claims.toml``).

    Args:
        path: the file; default the shipped ``bench/assets/claims.toml``.
        models, datasets: the accepted names (the model registry's and ``bench.data.kinds.NAMES``).

    Raises:
        ValueError: one line naming the file, the claim, the key, the accepted values and
            what was received; also for a file that is not valid TOML.
    """
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path.name}: not valid TOML: {error}") from None
    return parse_claims(document, models=models, datasets=datasets, source=path.name)


def parse_claims(document: Mapping, *, models: Iterable[str], datasets: Iterable[str],
                 source: str = "claims.toml") -> ClaimsFile:
    """``load_claims`` on an already parsed TOML document (``tomllib.loads``)."""
    names = {"model": tuple(models), "dataset": tuple(datasets)}
    _check_keys(source, document, TOP_KEYS, required=("schema_version", "claims"))
    if document["schema_version"] != SCHEMA_VERSION:
        _refuse(source, "unsupported schema_version", [str(SCHEMA_VERSION)], document["schema_version"])
    tables = document["claims"]
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        _refuse(source, "claims must be an array of tables ([[claims]])", ["[[claims]]"], type(tables).__name__)
    claims = tuple(_parse_claim(source, index, table, names) for index, table in enumerate(tables))
    ids = [claim.id for claim in claims]
    for repeated in sorted({i for i in ids if ids.count(i) > 1}):
        _refuse(source, f"claim id {repeated!r} is used twice", ["unique ids"], repeated)
    return ClaimsFile(claims, _parse_margins(source, document.get("margins", {}), names))


def _parse_claim(source: str, index: int, table: Mapping, names: Mapping) -> Claim:
    claim_id = table.get("id")
    where = f"{source}: claim {claim_id!r}" if isinstance(claim_id, str) else f"{source}: claims[{index}]"
    kind = table.get("kind")
    if kind not in KINDS:
        _refuse(where, "unknown kind", KINDS, kind, key="kind")
    _check_keys(where, table, COMMON_KEYS + KINDS[kind] + OPTIONAL_KEYS, required=COMMON_KEYS + KINDS[kind])
    for key in ("id", "section", "quote", *[k for k in OPTIONAL_KEYS if k in table]):
        _expect(where, key, table[key], str, "a string")
    datasets = tuple(_names(where, "datasets", table["datasets"], names["dataset"]))
    rows = _rows(where, "rows", table["rows"], names["model"])
    others = _rows(where, "than" if "than" in table else "among", table.get("than", table.get("among")),
                   names["model"]) if kind != "near" else ()
    claim = Claim(table["id"], kind, table["section"], table["quote"], datasets, rows, others,
                  interpretation=table.get("interpretation", ""))
    return _kind_fields(where, claim, table)


def _kind_fields(where: str, claim: Claim, table: Mapping) -> Claim:
    """The claim with its kind's metric, value and margin checked and set."""
    metric = table.get("metric", "accuracy")
    accepted = ["accuracy"] if claim.kind == "near" else list(METRICS)
    if metric not in accepted:
        _refuse(where, "unknown metric", accepted, metric, key="metric")
    if claim.kind == "fewest":
        if len(claim.rows) != 1:
            _refuse(where, "fewest names exactly one row", ["rows = [one row]"], len(claim.rows), key="rows")
        others = tuple(row for row in claim.than if row != claim.rows[0])
        if not others:
            _refuse(where, "among names no row but the claimed one", ["rows other than rows[0]"], [], key="among")
        return dataclasses.replace(claim, metric=metric, than=others)
    if claim.kind == "near":
        value = _number(where, "value", table["value"])
        margin = _number(where, "margin", table["margin"], positive=True)
        return dataclasses.replace(claim, metric=metric, value=value, margin=margin)
    return dataclasses.replace(claim, metric=metric)


def _rows(where: str, key: str, value, models: Sequence[str]) -> tuple[Row, ...]:
    """Rows from an array of {model = "...", options = {...}} tables."""
    if not isinstance(value, list) or not value or not all(isinstance(item, dict) for item in value):
        _refuse(where, f"{key} must be a non-empty array of {{model = ..., options = {{...}}}}",
                ["[{model = \"mlp\"}, ...]"], value, key=key)
    return tuple(_row(where, key, item, models) for item in value)


def _row(where: str, key: str, table: Mapping, models: Sequence[str]) -> Row:
    _check_keys(f"{where}: {key}", table, ("model", "options"), required=("model",))
    if table["model"] not in models:
        _refuse(where, f"unknown model in {key}", models, table["model"], key="model")
    options = table.get("options", {})
    choices = options if isinstance(options, list) and options else [options]
    scalar = (str, int, float, bool)
    for choice in choices:
        if not isinstance(choice, dict) or not all(isinstance(v, scalar) for v in choice.values()):
            _refuse(where, f"options in {key} must be a table of scalars, or an array of them",
                    ["{head = \"dense\"}", "[{activation = \"tanh\"}, {activation = \"relu\"}]"], options, key="options")
    first, *rest = [Row(table["model"], tuple(sorted(choice.items()))) for choice in choices]
    return dataclasses.replace(first, instead=tuple(rest))


def _parse_margins(source: str, table, names: Mapping) -> Margins:
    where = f"{source}: [margins]"
    if not isinstance(table, dict):
        _refuse(where, "margins must be a table", ["[margins]"], table)
    margins = {key: _number(where, key, value, positive=True) for key, value in table.items()}
    for key in margins:
        model, _, dataset = key.partition("/")
        if key != "default" and (model not in names["model"] or dataset not in names["dataset"]):
            accepted = ["default", f"model/dataset with a model in {' '.join(names['model'])}"
                        f" and a dataset in {' '.join(names['dataset'])}"]
            _refuse(where, "unknown cell", accepted, key)
    default = margins.pop("default", None)
    return Margins(default, margins, source)


def _names(where: str, key: str, value, accepted: Sequence[str]) -> list[str]:
    if not isinstance(value, list) or not value:
        _refuse(where, f"{key} must be a non-empty array", accepted, value, key=key)
    for name in value:
        if name not in accepted:
            _refuse(where, f"unknown {key.rstrip('s')}", accepted, name, key=key)
    return value


def _number(where: str, key: str, value, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (positive and not value > 0):
        _refuse(where, f"{key} must be a {'positive ' if positive else ''}number", ["e.g. 1.0"], value, key=key)
    return float(value)


def _expect(where: str, key: str, value, kind: type, description: str) -> None:
    if not isinstance(value, kind):
        _refuse(where, f"{key} must be {description}", [description], value, key=key)


def _check_keys(where: str, table: Mapping, accepted: Sequence[str], required: Sequence[str]) -> None:
    for key in table:
        if key not in accepted:
            _refuse(where, "unknown key", accepted, key)
    for key in required:
        if key not in table:
            _refuse(where, f"missing key {key!r}", accepted, ABSENT, key=key)


def _refuse(where: str, what: str, accepted: Iterable, received, key: str | None = None):
    """Raise the one-line ValueError of the style guide: what, accepted values, 'Received: ...'."""
    shown = f"no {key}" if received is ABSENT else f"{key}={received!r}" if key else repr(received)
    raise ValueError(" ".join(f"{where}: {what}; accepted: {', '.join(map(str, accepted))}. "
                              f"Received: {shown}".split()))
