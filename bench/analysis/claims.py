"""The report's words as data: its claims (``bench/assets/claims.toml``) and its Table 4
(``bench/assets/table4_published.csv``), read and checked; ``bench.analysis.verdicts`` judges them.

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
ABSENT = object()  # what a missing key "received"
TOP_KEYS = ("schema_version", "margins", "claims")


def option_text(value) -> str:
    """An option's value as text, so "1000" in a CSV matches 1000 in a record."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class Row:
    """A model with the options that name its row; it matches a run whose options include them."""

    model: str
    options: tuple[tuple[str, Any], ...] = ()  # sorted (key, value) pairs, hashable

    @property
    def label(self) -> str:
        """'mlp', 'fishnet55 (head=dense)'."""
        named = ", ".join(f"{key}={option_text(value)}" for key, value in self.options)
        return self.model + (f" ({named})" if named else "")

    def matches(self, model: str, options: Mapping) -> bool:
        return model == self.model and all(
            key in options and option_text(options[key]) == option_text(value) for key, value in self.options)


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


def load_published(path: str | Path = PUBLISHED_FILE) -> pd.DataFrame:
    """The published values (model, dataset, metric, value, ...) with each value as its printed
    text, whose digits set a cell's default margin (``verdicts.default_margin``)."""
    return pd.read_csv(path, keep_default_na=False, dtype={"value": str})


def load_claims(path: str | Path = CLAIMS_FILE, *, models: Iterable[str], datasets: Iterable[str]) -> ClaimsFile:
    """Read and validate a claims file (TOML; schema in ``bench/assets/claims.toml``).

    Args:
        path: the file; default the shipped ``bench/assets/claims.toml``.
        models, datasets: the accepted names (the model registry's and ``bench.data.datasets.NAMES``).

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
    _check_keys(where, table, COMMON_KEYS + KINDS[kind], required=COMMON_KEYS + KINDS[kind])
    for key in ("id", "section", "quote"):
        _expect(where, key, table[key], str, "a string")
    datasets = tuple(_names(where, "datasets", table["datasets"], names["dataset"]))
    rows = _rows(where, "rows", table["rows"], names["model"])
    others = _rows(where, "than" if "than" in table else "among", table.get("than", table.get("among")),
                   names["model"]) if kind != "near" else ()
    claim = Claim(table["id"], kind, table["section"], table["quote"], datasets, rows, others)
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
    scalar = (str, int, float, bool)
    if not isinstance(options, dict) or not all(isinstance(v, scalar) for v in options.values()):
        _refuse(where, f"options in {key} must be a table of scalars", ["{head = \"dense\"}"], options, key="options")
    return Row(table["model"], tuple(sorted(options.items())))


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
