"""Profiles: every hyper-parameter of a benchmark as data, merged with CLI overrides into RunSpecs.

A profile is a TOML file with the sections ``run``, ``data``, ``optimizer``, ``augment`` and
``model_options`` (see ``bench/profiles/*.toml``). Shipped profiles are named by file stem;
a path to a user's ``.toml`` works the same way. Unknown sections or keys are refused,
naming the file, the key and the accepted keys.
"""
from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bench import data, environment
from bench.store import RunSpec

PROFILE_DIR = Path(__file__).parent / "profiles"

# The accepted keys of each section, with their defaults; a profile overrides any of them.
DEFAULTS = {
    "run": {
        "models": ["mlp", "cnn", "mobilenet", "fishnet55", "fishnet77"],  # the rows of Table 4
        "datasets": ["fashion_mnist_sample"],
        "repeats": 3,
        "epochs": 2,
        "batch_size": 32,
        "seed": 0,  # repeat r uses seed + r, the same for every model and dataset
        "timeout_s": 3600.0,  # per run; the worker is killed past it
        "eval_per_class": None,  # per-epoch curves on a stratified test subset; None: the whole test set
    },
    "data": {
        "size": None,  # pixels (height = width); None keeps the native size
        "channels": None,  # 1 or 3; None keeps the native count
        "scale_pixels": True,  # divide by 255; the report's code did not
        "train_per_class": None,  # stratified training subset; None keeps all
        "subset_seed": 0,
        "num_classes": 10,  # synthetic only
        "native_size": 28,  # synthetic only
    },
    "optimizer": {
        "name": "sgd",  # sgd | adam
        "learning_rate": 1e-3,
        "momentum": 0.9,  # sgd only
        "schedule": "constant",  # constant | cosine (over all steps)
        "weight_decay": 0.0,
    },
    "augment": {
        "flip": False,  # random horizontal flip
        "brightness": 0.0,  # max delta, as a fraction of full scale
        "contrast": None,  # [lo, hi] factor
        "hue": 0.0,  # max delta; RGB only
        "saturation": None,  # [lo, hi] factor; RGB only
    },
}
SECTIONS = (*DEFAULTS, "model_options", "variants")
VARIANT_KEYS = ("model", "options", "datasets")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class Profile:
    """A resolved profile: the sections of DEFAULTS with overrides applied, and per-model options."""

    name: str
    run: dict
    data: dict
    optimizer: dict
    augment: dict
    model_options: dict  # model name -> options passed to models.build
    variants: tuple = ()  # extra (model, options, datasets) rows, e.g. fishnet55 with head="conv"

    def entries(self, dataset: str) -> list[tuple[str, dict]]:
        """(model, complete options) to run on ``dataset``: every model, then its variants.

        Options are the model's defaults overridden by the profile's, so every record names
        all of them. A variant runs only where its model is in ``run.models`` (``--models``
        selects variants too) and on its own datasets (all of the profile's when unset).
        """
        import models  # late: imports Keras

        def options(model, extra):
            return {**models.options(model), **self.model_options.get(model, {}), **extra}

        chosen = self.run["models"]
        rows = [(model, options(model, {})) for model in chosen]
        rows += [(v["model"], options(v["model"], v.get("options", {}))) for v in self.variants
                 if v["model"] in chosen and dataset in v.get("datasets", self.run["datasets"])]
        return rows

    def specs(self, threads: int = 1, speedups: bool = True) -> list[RunSpec]:
        """The plan: repeats in the outer loop, then datasets, then models.

        Repeats outermost mean an interrupted benchmark has complete early repeats of every
        model rather than all repeats of the first models.
        """
        run = self.run
        return [
            RunSpec(
                profile=self.name,
                model=model,
                model_options=model_options,
                dataset=dataset,
                preprocess=dict(self.data),
                repeat=repeat,
                seed=run["seed"] + repeat,
                epochs=run["epochs"],
                batch_size=run["batch_size"],
                optimizer=dict(self.optimizer),
                augment=dict(self.augment),
                threads=threads,
                timeout_s=float(run["timeout_s"]),
                eval_per_class=run["eval_per_class"],
                speedups=speedups,
            )
            for repeat in range(run["repeats"])
            for dataset in run["datasets"]
            for model, model_options in self.entries(dataset)
        ]


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


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
        raise ValueError(
            f"Unknown profile; accepted: {', '.join(profile_names())} or a path to a .toml file. "
            f"Received: profile={name_or_path!r}"
        )
    return PROFILE_DIR / f"{name_or_path}.toml"


def read_profile_file(path: Path) -> dict:
    """Parse a profile's TOML and check its sections and keys against DEFAULTS."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"unreadable profile {path}: {error}") from None
    for section, values in raw.items():
        if section not in SECTIONS:
            raise ValueError(f"{path}: unknown section [{section}]; accepted: {', '.join(SECTIONS)}")
        if section == "model_options":
            continue
        if section == "variants":
            _check_variants(path, values)
            continue
        for key in values:
            if key not in DEFAULTS[section]:
                raise ValueError(
                    f"{path}: unknown key {section}.{key}; accepted: {', '.join(DEFAULTS[section])}"
                )
    return raw


def _check_variants(path: Path, variants) -> None:
    """``[[variants]]`` rows: a list of tables with the keys of VARIANT_KEYS, model required."""
    if not isinstance(variants, list):
        raise ValueError(f"{path}: variants must be an array of tables, written [[variants]]")
    for row in variants:
        unknown = set(row) - set(VARIANT_KEYS)
        if unknown or "model" not in row:
            raise ValueError(f"{path}: a [[variants]] row takes model (required), options and datasets; "
                             f"accepted: {', '.join(VARIANT_KEYS)}. Received: {sorted(row)}")


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
        if section in DEFAULTS and name in DEFAULTS[section]:
            return section, name
    else:
        owners = [s for s in DEFAULTS if key in DEFAULTS[s]]
        if len(owners) == 1:
            return owners[0], key
    accepted = ", ".join(f"{s}.{k}" for s in DEFAULTS for k in DEFAULTS[s])
    raise ValueError(f"unknown setting; accepted: {accepted} (or the bare key). Received: --set {key}")


def load_profile(name_or_path: str, overrides: dict | None = None, settings: list[str] = ()) -> Profile:
    """Resolve a profile: defaults, then the file, then ``--set key=value``, then CLI overrides.

    Args:
        name_or_path: a shipped profile name or a .toml path.
        overrides: CLI flags as ``{"run.epochs": 3, ...}``; None values are dropped first,
            so a flag that was not given never overrides the profile.
        settings: ``key=value`` strings from ``--set``.

    Raises:
        ValueError: unknown profile, section, key or value, with what is accepted.
    """
    path = profile_path(name_or_path)
    resolved = copy.deepcopy(DEFAULTS)
    raw = read_profile_file(path)
    for section in DEFAULTS:
        resolved[section].update(raw.get(section, {}))
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep:
            raise ValueError(f"--set takes key=value. Received: --set {setting!r}")
        section, name = resolve_key(key.strip())
        resolved[section][name] = parse_value(value.strip())
    for key, value in (overrides or {}).items():
        if value is not None:
            section, name = resolve_key(key)
            resolved[section][name] = value
    profile = Profile(name=path.stem, model_options=raw.get("model_options", {}),
                      variants=tuple(raw.get("variants", ())), **resolved)
    validate(profile)
    return profile


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def validate(profile: Profile) -> None:
    """Check every value before anything runs; the message names the value and what is accepted."""
    environment.import_tensorflow_quietly()
    import models  # late: imports Keras, which takes seconds

    run = profile.run
    for key in ("repeats", "epochs", "batch_size"):
        _check(_positive_int(run[key]), f"{key} must be an integer >= 1. Received: {key}={run[key]!r}")
    _check(isinstance(run["seed"], int), f"seed must be an integer. Received: seed={run['seed']!r}")
    _check(
        isinstance(run["timeout_s"], (int, float)) and run["timeout_s"] > 0,
        f"timeout_s must be a positive number of seconds. Received: timeout_s={run['timeout_s']!r}",
    )
    for model in run["models"]:
        _check(model in models.names(), f"Unknown model; accepted: {', '.join(models.names())}. Received: model={model!r}")
    option_sets = [(f"[model_options.{model}]", model, options) for model, options in profile.model_options.items()]
    option_sets += [(f"[[variants]] {v['model']}", v["model"], v.get("options", {})) for v in profile.variants]
    for where, model, options in option_sets:
        _check(model in models.names(), f"{where}: unknown model; accepted: {', '.join(models.names())}")
        accepted = models.options(model)
        for option in options:
            _check(option in accepted, f"{where}: unknown option {option!r}; accepted: {', '.join(accepted)}")
    _check(run["eval_per_class"] is None or _positive_int(run["eval_per_class"]),
           f"eval_per_class must be an integer >= 1, or absent for the whole test set. "
           f"Received: eval_per_class={run['eval_per_class']!r}")
    _check(len(run["datasets"]) > 0, "datasets must name at least one dataset")
    for variant in profile.variants:
        for dataset in variant.get("datasets", []):
            _check(dataset in data.NAMES, f"[[variants]] {variant['model']}: unknown dataset; "
                   f"accepted: {', '.join(data.NAMES)}. Received: dataset={dataset!r}")
    for dataset in run["datasets"]:
        data.DatasetRequest(dataset, **profile.data)  # validates
    _check(profile.optimizer["name"] in OPTIMIZERS,
           f"optimizer.name must be one of {', '.join(OPTIMIZERS)}. Received: name={profile.optimizer['name']!r}")
    _check(profile.optimizer["schedule"] in SCHEDULES,
           f"optimizer.schedule must be one of {', '.join(SCHEDULES)}. Received: schedule={profile.optimizer['schedule']!r}")
    lr = profile.optimizer["learning_rate"]
    _check(isinstance(lr, (int, float)) and lr > 0, f"learning_rate must be > 0. Received: learning_rate={lr!r}")
