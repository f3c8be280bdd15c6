"""Profiles: every hyper-parameter of a benchmark as data, merged with CLI overrides into RunSpecs.

A profile is a TOML file with the settings sections of ``bench.spec`` (``[run]``,
``[preprocess]``, ``[optimizer]``, ``[augment]``), plus ``[model_options.<model>]`` and
``[[variants]]`` rows (see ``bench/profiles/*.toml``). Shipped profiles are named by file
stem; a path to a user's ``.toml`` works the same way. Unknown sections or keys and values
of the wrong type or range are refused here, naming the file or flag, the key and what is
accepted, before anything runs.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import tomllib
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench import environment, imports
from bench.data import datasets, kinds
from bench.spec import (
    RECIPES,
    SECTIONS,
    Augment,
    Optimizer,
    Preprocess,
    RunSettings,
    RunSpec,
    accepted,
    unknown,
)

PROFILE_DIR = Path(__file__).parent / "profiles"
TABLES = ("model_options", "variants", "report")  # the sections that are not settings
REPORT_KEYS = ("published", "claims")  # [report]: "table4", "none" or a file (bench.analysis.sources)
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a profile's name: results/<name> stays in results/


@dataclass(frozen=True)
class Variant:
    """A ``[[variants]]`` row: ``model`` again with other ``options``, on ``datasets`` (None: all)."""

    model: str
    options: dict = field(default_factory=dict)
    datasets: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Profile:
    """A resolved profile: each section's settings with overrides applied, and per-model options."""

    name: str
    run: RunSettings
    preprocess: Preprocess
    optimizer: Optimizer
    augment: Augment
    model_options: dict = field(default_factory=dict)  # model name -> options passed to models.build
    variants: tuple[Variant, ...] = ()  # extra rows, e.g. fishnet55 with head="conv"
    masked_batch_size: int | None = None  # a --set batch_size that --batch-size overrode, checked all the same
    report: dict = field(default_factory=dict)  # [report] published and claims, a file's path made absolute

    def entries(self, dataset: str) -> list[tuple[str, dict]]:
        """(model, complete options) to run on ``dataset``: every model, then its variants.

        Options are the model's defaults overridden by the profile's, so every record names
        all of them. A variant runs only where its model is in ``run.models`` (``--models``
        selects variants too) and on its own datasets (all of the profile's when unset).
        """
        import models  # deferred for start-up time: Keras takes seconds

        def options(model, extra):
            return {**models.options(model), **self.model_options.get(model, {}), **extra}

        chosen = self.run.models
        rows = [(model, options(model, {})) for model in chosen]
        rows += [(v.model, options(v.model, v.options)) for v in self.variants
                 if v.model in chosen and dataset in (v.datasets or self.run.datasets)]
        return rows

    def specs(self, threads: int = 1, speedups: bool = True) -> list[RunSpec]:
        """The plan: repeats in the outer loop, then datasets, then models.

        Repeats outermost mean an interrupted benchmark has complete early repeats of every
        model rather than all repeats of the first models. Each dataset is checked, and its
        content hashed into the specs, here (``bench.data.datasets.plan_hash``), before any run
        starts; so are the batch against its training set, its size against this machine's
        memory, and that no two rows are one run (``_check_once``). A ``--set batch_size`` that
        ``--batch-size`` overrode is checked against the training sets too, as every ``--set`` is.
        """
        run = self.run
        named = {dataset: kinds.checked(dataset).canonical for dataset in run.datasets}
        hashes = {dataset: datasets.plan_hash(dataset, self.preprocess, run.eval_per_class) for dataset in named.values()}
        batch_sizes = {run.batch_size, self.masked_batch_size} - {None}
        for dataset in named.values():
            for batch_size in sorted(batch_sizes):
                datasets.check_batch(dataset, self.preprocess, batch_size)
            datasets.check_fits(dataset, self.preprocess)
        code = {model: imports.model_code(model) for model in run.models}  # {} for the shipped models
        data_code = {dataset: imports.dataset_code(dataset) for dataset in named.values()}  # {}: not registered
        specs = [
            RunSpec(profile=self.name, model=model, model_options=model_options, dataset=named[dataset],
                    data_hash=hashes[named[dataset]],
                    preprocess=self.preprocess, recipe=run.recipe, repeat=repeat, seed=run.seed + repeat, epochs=run.epochs,
                    batch_size=run.batch_size, optimizer=self.optimizer, augment=self.augment,
                    eval_per_class=run.eval_per_class, eval_subset=run.eval_subset, threads=threads, timeout_s=run.timeout_s,
                    speedups=speedups, model_code=code[model], dataset_code=data_code[named[dataset]],
                    tensorboard=run.tensorboard, save_weights=run.save_weights)
            for repeat in range(run.repeats)
            for dataset in run.datasets
            for model, model_options in self.entries(dataset)
        ]
        _check_once(specs)
        return specs


def _check_once(specs: list[RunSpec]) -> None:
    """Raise ValueError (one line) when two rows of the plan are one run: a [[variants]] row with its
    model's own options or another row's, or one .npz file named by two paths."""
    seen = {}
    for spec in specs:
        if spec.run_id in seen:
            raise ValueError(f"{spec.model} {json.dumps(spec.model_options, sort_keys=True)} on {spec.dataset} seed "
                             f"{spec.seed} is planned twice: a [[variants]] row that repeats its model's options or "
                             f"another row's, or a dataset named twice (one .npz file by two paths); accepted: each "
                             f"run once")
        seen[spec.run_id] = spec


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def known_models(*named: Iterable[str]) -> list[str]:
    """The models the shipped profiles name (``[run] models``, ``[[variants]] model``), then those of
    ``named`` not among them: the names a claims file may use, known without the model registry
    (so without importing Keras)."""
    raws = [read_profile_file(PROFILE_DIR / f"{name}.toml") for name in profile_names()]
    shipped = [model for raw in raws for model in
               (*raw.get("run", {}).get("models", ()), *(variant["model"] for variant in raw.get("variants", ())))]
    return list(dict.fromkeys([*shipped, *(model for models in named for model in models)]))


def profile_path(name_or_path: str) -> Path:
    """A shipped profile by name, or a .toml file by path.

    Raises:
        ValueError: neither a shipped profile nor an existing file.
    """
    if name_or_path.endswith(".toml"):
        path = Path(name_or_path)
        if not path.is_file():
            raise ValueError(f"profile file not found. Received: profile={name_or_path!r}")
        return path
    if name_or_path not in profile_names():
        raise ValueError(f"{unknown('Unknown profile', name_or_path, profile_names())}{', '.join(profile_names())} "
                         f"or a path to a .toml file. Received: profile={name_or_path!r}")
    return PROFILE_DIR / f"{name_or_path}.toml"


def read_profile_file(path: Path) -> dict:
    """Parse a profile's TOML and check its sections, keys and table shapes."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"unreadable profile {path}: {error}") from None
    for section, values in raw.items():
        if section not in (*SECTIONS, *TABLES):
            known = [f"[{s}]" for s in (*SECTIONS, *TABLES)]
            raise ValueError(f"{path}: {unknown('unknown section', f'[{section}]', known)}{', '.join((*SECTIONS, *TABLES))}")
        if section == "variants":
            _check_variants(path, values)
            continue
        if section == "report":
            _check_report(path, values)
            continue
        if not isinstance(values, dict) or section == "model_options" and not all(
                isinstance(options, dict) for options in values.values()):
            raise ValueError(f"{path}: [{section}] must be a table of key = value lines (model_options: "
                             f"one table per model). Received: {section} = {values!r}")
        if section in SECTIONS:
            for key in values:
                if key not in SECTIONS[section].keys():
                    known = [f"{section}.{k}" for k in SECTIONS[section].keys()]
                    raise ValueError(f"{path}: {unknown('unknown key', f'{section}.{key}', known)}"
                                     f"{', '.join(SECTIONS[section].keys())}")
    return raw


def _check_report(path: Path, table) -> None:
    """``[report]``: published and claims, each a string."""
    if not isinstance(table, dict) or set(table) - set(REPORT_KEYS) or not all(isinstance(v, str) for v in table.values()):
        raise ValueError(f"{path}: [report] takes published and claims, each \"table4\", \"none\" or a file's path; "
                         f"accepted: {', '.join(REPORT_KEYS)}. Received: {table!r}")


def report_choice(name_or_path: str) -> dict[str, str]:
    """A profile's ``[report]`` keys (docs/own-table.md), a file's path made absolute from the
    profile's folder; the keys it leaves out are absent."""
    path = profile_path(name_or_path)
    return _report_keys(path, read_profile_file(path))


def _report_keys(path: Path, raw: dict) -> dict[str, str]:
    return {key: value if value in ("table4", "none") else str((path.parent / value).resolve())
            for key, value in raw.get("report", {}).items()}


VARIANT_KEYS = ("model", "options", "datasets")


def _check_variants(path: Path, variants) -> None:
    """``[[variants]]`` rows: a list of tables with the keys of VARIANT_KEYS, model required."""
    if not isinstance(variants, list) or not all(isinstance(row, dict) for row in variants):
        raise ValueError(f"{path}: variants must be an array of tables, written [[variants]]")
    for row in variants:
        unknown = set(row) - set(VARIANT_KEYS)
        if unknown or "model" not in row:
            raise ValueError(f"{path}: a [[variants]] row takes model (required), options and datasets; "
                             f"accepted: {', '.join(VARIANT_KEYS)}. Received: {sorted(row)}")
        if not isinstance(row.get("options", {}), dict) or not isinstance(row.get("datasets", []), list):
            raise ValueError(f"{path}: a [[variants]] row's options is a table and its datasets a list. "
                             f"Received: {row!r}")


def parse_value(text: str):
    """A --set value as TOML (numbers, booleans, lists, quoted strings), else a bare string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def resolve_key(key: str) -> tuple[str, str]:
    """``section.key`` or a bare key that names one section's key, as (section, key).

    Raises:
        ValueError: the key is unknown, listing every accepted key.
    """
    section, _, name = key.rpartition(".")
    if section:
        if section in SECTIONS and name in SECTIONS[section].keys():
            return section, name
    else:
        owners = [s for s, cls in SECTIONS.items() if key in cls.keys()]
        if len(owners) == 1:
            return owners[0], key
    keys = [f"{s}.{k}" for s, cls in SECTIONS.items() for k in cls.keys()]
    bare = [k for cls in SECTIONS.values() for k in cls.keys()]
    raise ValueError(f"{unknown('unknown setting', key, keys if section else bare)}{', '.join(keys)} (or the bare key), "
                     f"or model_options.MODEL.OPTION. Received: --set {key}")


def model_option(key: str) -> tuple[str, str]:
    """'model_options.fishnet55.head' (a --set key, as the profile's [model_options.fishnet55] head)
    as (model, option); the names are checked with the profile's (``validate``).

    Raises:
        ValueError: the key is not model_options.MODEL.OPTION.
    """
    parts = key.split(".")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"a model's option is set as model_options.MODEL.OPTION=VALUE, e.g. "
                         f"model_options.fishnet55.head=conv. Received: --set {key}")
    return parts[1], parts[2]


def load_profile(name_or_path: str, overrides: dict | None = None, settings: list[str] = ()) -> Profile:
    """Resolve a profile: defaults, then the file, then ``--set key=value``, then CLI overrides.

    Args:
        name_or_path: a shipped profile name or a .toml path.
        overrides: CLI flags as ``{"run.epochs": 3, ...}``; None values are dropped first,
            so a flag that was not given never overrides the profile.
        settings: ``key=value`` strings from ``--set``; ``model_options.MODEL.OPTION=VALUE`` sets a
            model's option, as the profile's ``[model_options.MODEL]`` table does.

    Raises:
        ValueError: unknown profile, section, key or value, with what is accepted.
    """
    path = profile_path(name_or_path)
    if not FOLDER_NAME.fullmatch(path.stem):
        raise ValueError(f"a profile's name (its file name without .toml) names its results folder; accepted: letters, "
                         f"digits, '.', '_', '-', starting with a letter or digit. Received: profile={name_or_path!r}")
    raw = read_profile_file(path)
    given = {section: dict(raw.get(section, {})) for section in SECTIONS}
    model_options = {model: dict(options) for model, options in raw.get("model_options", {}).items()}
    named = {}  # models, datasets and batch_size given by --set: checked even when a flag overrides them
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep:
            raise ValueError(f"--set takes key=value. Received: --set {setting!r}")
        if key.startswith("model_options."):
            model, option = model_option(key.strip())
            model_options.setdefault(model, {})[option] = parse_value(value.strip())  # checked by validate
            continue
        section, name = resolve_key(key.strip())
        given[section][name] = SECTIONS[section].check_value(name, parse_value(value.strip()))  # even if a flag wins
        if (section, name) in (("run", "models"), ("run", "datasets"), ("run", "batch_size")):
            named[name] = given[section][name]
    for key, value in (overrides or {}).items():
        if value is not None:
            section, name = resolve_key(key)
            given[section][name] = value
    run = RunSettings(**given["run"])  # the recipe checked first: it fills in the others
    for (section, key), value in RECIPES[run.recipe].items():
        given[section].setdefault(key, value)
    parts = {section: cls(**given[section]) for section, cls in SECTIONS.items()}
    variants = tuple(Variant(row["model"], row.get("options", {}), tuple(row["datasets"]) if "datasets" in row else None)
                     for row in raw.get("variants", ()))
    masked = named.get("batch_size") if named.get("batch_size") != parts["run"].batch_size else None
    profile = Profile(name=path.stem, model_options=model_options, variants=variants,
                      masked_batch_size=masked, report=_report_keys(path, raw), **parts)
    validate(profile)
    check_names(named.get("models", ()), named.get("datasets", ()))
    return profile


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def validate(profile: Profile) -> None:
    """Import the user's code (``run.imports``), then check what the settings' own types
    cannot: model names and options, dataset names, and that TensorBoard is installed when its
    logs are asked for.

    Each part checked its values when it was made (``bench.spec``).
    """
    _check(not profile.run.tensorboard or importlib.util.find_spec("tensorboard") is not None,
           "run.tensorboard (--tensorboard) needs TensorBoard: pip install -e '.[tensorboard]'. "
           "Received: tensorboard=true")
    environment.import_tensorflow_quietly()
    import models  # deferred for start-up time: Keras takes seconds

    try:
        imports.import_all(profile.run.imports)  # the user's models and datasets, registered before their names are checked
    except ValueError as error:
        raise ValueError(f"{error} in run.imports") from None
    check_names(profile.run.models, profile.run.datasets)
    option_sets = [(f"[model_options.{model}]", model, options) for model, options in profile.model_options.items()]
    option_sets += [(f"[[variants]] {v.model}", v.model, v.options) for v in profile.variants]
    for where, model, options in option_sets:
        _check(model in models.names(), f"{where}: {unknown('unknown model', model, models.names())}"
               f"{', '.join(models.names())}")
        accepted = models.options(model)
        for option, value in options.items():
            _check(option in accepted, f"{where}: {unknown('unknown option', option, accepted)}"
                   f"{', '.join(accepted) or f'none, {model} takes no options'}")
            _check(_recordable(value), f"{where}: option {option} must be a finite number, a string, true or false, "
                   f"or a list or table of them, as a record holds it. Received: {option}={value!r}")
    for variant in profile.variants:
        for dataset in variant.datasets or ():
            _check(dataset in kinds.names(), f"[[variants]] {variant.model}: "
                   f"{unknown('unknown dataset', dataset, kinds.names())}{', '.join(kinds.names())}")


def _recordable(value) -> bool:
    """Whether a record's strict JSON holds ``value`` (no inf or NaN, no TOML date)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def check_names(model_names, dataset_names) -> None:
    """Raise ValueError (one line, naming run.models or run.datasets) for a model or dataset that
    is not known (after ``validate``'s imports)."""
    import models  # deferred for start-up time: Keras takes seconds

    for model in model_names:
        _check(model in models.names(), f"{unknown('Unknown model', model, models.names())}{', '.join(models.names())}. "
               f"Received: model={model!r} in run.models")
    for dataset in dataset_names:
        try:
            kinds.checked(dataset)
        except ValueError as error:
            raise ValueError(f"{error} in run.datasets") from None


# ---------------------------------------------------------------- the profile keys page


def _toml(value) -> str:
    return "absent" if value is None else f"`{json.dumps(value)}`"


def settings_table() -> str:
    """Every profile key as a Markdown table: its default, unit, accepted values and meaning.

    Written from the fields of ``bench.spec`` alone; docs/profiles.md holds a
    copy that tests/test_newcomer.py compares with this.
    """
    lines = ["| key | default | unit | accepts | meaning |", "|---|---|---|---|---|"]
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for item in dataclasses.fields(cls):
            meta = item.metadata
            lines.append(f"| `{section}.{item.name}` | {_toml(item.default)} | {meta['unit'] or '—'} "
                         f"| {accepted(hints[item.name], meta)} | {meta['doc']} |")
    return "\n".join(lines)
