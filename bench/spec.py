"""What decides one training run: ``RunSpec`` and its typed parts, each setting written once.

A profile has the sections ``[run]``, ``[preprocess]``, ``[optimizer]`` and ``[augment]``;
each is a frozen dataclass here (``RunSettings``, ``Preprocess``, ``Optimizer``,
``Augment``) whose fields are the section's keys, with their default, unit and accepted
values written on the field (``setting``). The profile loader, ``--set``, the checks, the
"Write a profile" table and the records all derive from these fields, so a key or a
default cannot drift between them. A value is checked, and ints are widened to float where
a float is due, when a part is made: a bad value fails where the profile is loaded, with
one line naming the key, the value and what is accepted, never inside a worker.

``RunSpec`` is one run: the model and its options, the dataset and the hash of its content,
the three parts above and the run's own numbers. Its JSON form (``to_dict``) is the record's
``spec``, and its hash is the run's identity (``run_id``).
"""
from __future__ import annotations

import collections
import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field

from bench import __version__

SPEC_SCHEMA_VERSION = 4
TABLE4_MODELS = ("mlp", "cnn", "mobilenet", "fishnet55", "fishnet77")  # the report's rows, in its order
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine")
DRAWS = ("image", "batch")
BRIGHTNESS_UNITS = ("full_scale", "pixel")
EVAL_SUBSETS = ("stratified", "first")  # which test images the per-epoch curves use (eval_per_class)
# A recipe names the values of the settings in which the report's code and fishbench's
# corrected training differ (docs/protocol.md, "The two recipes"); a profile or --set that
# gives one of them explicitly overrides the recipe's value, and the record shows the result.
# The fields' own defaults are the corrected recipe's.
RECIPES = {
    "corrected": {("preprocess", "scale_pixels"): True, ("augment", "draws"): "image",
                  ("augment", "brightness_unit"): "full_scale", ("augment", "clip"): True},
    "report": {("preprocess", "scale_pixels"): False,  # imgprocess.make_dataset never divides by 255
               ("augment", "draws"): "batch",  # tf.image ops mapped over whole batches
               ("augment", "brightness_unit"): "pixel",  # random_brightness(img, 0.2) on 0-255 pixels
               ("augment", "clip"): False},  # nothing clips after brightness or contrast
}
# Execution settings change how fast a run goes or what it leaves beside its record, not what
# it computes: they are recorded but left out of its identity, so a resumed run may use other
# threads, a longer timeout, or keep its TensorBoard logs. (The speed-ups, bench.speedups,
# change float32 rounding, not the arithmetic; `--no-speedups` checks that.) Where a registered
# dataset's arrays come from (dataset_code) is execution information too: data_hash identifies them.
EXECUTION_FIELDS = ("threads", "timeout_s", "speedups", "tensorboard", "save_weights", "dataset_code")
# Left out of the JSON form when at this value, so the specs and run ids of runs without them (or
# recorded before the field existed) stay as they were.
OPTIONAL_FIELDS = {"model_code": {}, "dataset_code": {}, "eval_subset": "stratified"}
# What differs between the repeats of one configuration.
REPEAT_FIELDS = ("repeat", "seed")
# Bounds a run can meet: NumPy's seeds (np.random.seed, which keras.utils.set_random_seed calls)
# are below 2**32; an image smaller than MIN_IMAGE_SIZE is no image any model here takes.
SEED_MAX = 2**32 - 1
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 4, 1024
MAX_CLASSES = 1000


def setting(default, doc: str, *, unit: str = "", choices: tuple = (), minimum=None, maximum=None,
            above=None):
    """A field of a settings dataclass: its default, what it means, its unit and its bounds.

    ``minimum``/``maximum`` are inclusive, ``above`` exclusive; ``choices`` lists the accepted
    values. The metadata is what ``check`` enforces and what the profile documentation shows.
    """
    return field(default=default, metadata={"doc": doc, "unit": unit, "choices": choices, "minimum": minimum,
                                            "maximum": maximum, "above": above})


class Settings:
    """Base of the settings dataclasses: every field checked, and widened, when made."""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for item in dataclasses.fields(self):
            if "doc" in item.metadata:
                value = check(type(self).SECTION, item, hints[item.name], getattr(self, item.name))
                object.__setattr__(self, item.name, value)

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def check_value(cls, name: str, value):
        """``value`` for key ``name`` of this section, converted; ValueError as ``check``."""
        (item,) = [f for f in dataclasses.fields(cls) if f.name == name]
        return check(cls.SECTION, item, typing.get_type_hints(cls)[name], value)


# ---------------------------------------------------------------- checking one value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def unknown(what: str, name: str, known) -> str:
    """The head of a message refusing an unknown name, up to the accepted ones: "unknown setting
    'nope'; accepted: ", or with a known name close to it (a typo) "unknown setting 'epoch'; did you
    mean 'epochs'? accepted: "."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.8)  # 0.6 offers fishnet99 for resnet9
    return f"{what} {name!r}; " + (f"did you mean {close[0]!r}? " if close else "") + "accepted: "


def accepted(hint, meta) -> str:
    """What a field accepts, in a profile's words: 'an integer >= 1, or absent', 'true or false'."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return f"{accepted(inner, meta)}, or absent"
    if meta["choices"]:
        return "one of " + ", ".join(map(str, meta["choices"]))
    if typing.get_origin(hint) is tuple:
        if typing.get_args(hint)[-1] is Ellipsis:
            return "a list of names (or one comma-separated string)"
        return "[lo, hi], two numbers with lo <= hi" + bounds_text(meta).replace(" >=", ", each >=")
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a table"}[hint]
    return words + bounds_text(meta)


def _convert(hint, value):
    """``value`` as ``hint`` (ints widened to float, lists to tuples); raises TypeError if it is not one."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(inner, value)
    if hint is bool and isinstance(value, bool) or hint is str and isinstance(value, str):
        return value
    if hint is dict and isinstance(value, dict):
        return value
    if hint is int and _is_int(value):
        return value
    if hint is float and _is_number(value):
        return float(value)
    if typing.get_origin(hint) is tuple:
        return _convert_tuple(typing.get_args(hint), value)
    raise TypeError


def _convert_tuple(args: tuple, value) -> tuple:
    if args[-1] is Ellipsis:  # names: a list, or one comma-separated string (--set models=mlp,cnn)
        items = [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value
        if isinstance(items, (list, tuple)) and items and all(isinstance(i, str) for i in items):
            return tuple(items)
        raise TypeError
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_is_number, value)) and value[0] <= value[1]:
        return tuple(float(v) for v in value)
    raise TypeError


def check(section: str, item: dataclasses.Field, hint, value):
    """``value`` for the field ``item`` of ``[section]``, converted; ValueError if not accepted.

    A field made without ``setting`` is checked for its type only. A number must be finite; a
    list of names must name each once.
    """
    meta = {"choices": (), "minimum": None, "maximum": None, "above": None, **item.metadata}
    try:
        value = _convert(hint, value)
    except (TypeError, AttributeError):
        raise ValueError(f"{section}.{item.name} must be {accepted(hint, meta)}. "
                         f"Received: {item.name}={value!r}") from None
    numbers = value if isinstance(value, tuple) else (value,)
    if value is not None and not all(_within(meta, v) for v in numbers):
        raise ValueError(f"{section}.{item.name} must be {accepted(hint, meta)}. "
                         f"Received: {item.name}={value!r}")
    names = value if isinstance(value, tuple) and all(isinstance(v, str) for v in value) else ()
    twice = [name for name, count in collections.Counter(names).items() if count > 1]
    if twice:
        raise ValueError(f"{section}.{item.name} names {twice[0]!r} twice; accepted: each name once. "
                         f"Received: {item.name}={','.join(value)}")
    return value


def _within(meta, value) -> bool:
    if meta["choices"] and value not in meta["choices"]:
        return False
    if not _is_number(value):
        return True
    if not math.isfinite(value):
        return False
    return ((meta["minimum"] is None or value >= meta["minimum"]) and (meta["maximum"] is None or value <= meta["maximum"])
            and (meta["above"] is None or value > meta["above"]))


def _number(value) -> str:
    return str(value) if _is_int(value) else f"{value:g}"


def bounds_text(meta) -> str:
    """' >= 1', ' in [0, 1]', ' > 0' for an error message or a table."""
    low, high, above = meta["minimum"], meta["maximum"], meta["above"]
    if low is not None and high is not None:
        return f" in [{_number(low)}, {_number(high)}]"
    return ((f" >= {_number(low)}" if low is not None else "") + (f" > {_number(above)}" if above is not None else "")
            + (f" and <= {_number(high)}" if high is not None else ""))


# ---------------------------------------------------------------- the sections


@dataclass(frozen=True)
class RunSettings(Settings):
    """``[run]``: what runs and how long."""

    SECTION: typing.ClassVar[str] = "run"
    recipe: str = setting("corrected", "the report's training recipe exactly, or fishbench's corrected one: "
                          "sets the defaults of scale_pixels, draws, brightness_unit and clip", choices=tuple(RECIPES))
    models: tuple[str, ...] = setting(TABLE4_MODELS, "registered model names (`bench list`)")
    datasets: tuple[str, ...] = setting(("fashion_mnist_sample",), "dataset names (`bench list`) or paths to .npz files")
    repeats: int = setting(3, "runs per model and dataset; repeat r uses seed + r", minimum=1, maximum=1000)
    epochs: int = setting(2, "passes over the training set", minimum=1, maximum=100_000)
    batch_size: int = setting(32, "training images per step (at most the training set's)", unit="images",
                              minimum=1, maximum=1_000_000)
    seed: int = setting(0, "seed of repeat 0 (initialisation, data order, augmentation); seed + repeats - 1 "
                        f"<= {SEED_MAX} (NumPy's seeds)", minimum=0, maximum=SEED_MAX)
    timeout_s: float = setting(3600.0, "a run is killed and recorded as timeout past this", unit="s", above=0,
                               maximum=30 * 24 * 3600)
    eval_per_class: int | None = setting(
        None, "per-epoch curves on a stratified test subset of this many images per class; "
        "absent: the whole test set (the final accuracy always uses it all)", unit="images", minimum=1)
    eval_subset: str = setting(
        "stratified", "which test images eval_per_class takes: a seeded stratified subset, or the first "
        "eval_per_class x classes images in the file's order (the notebook's first 1,000)", choices=EVAL_SUBSETS)
    imports: tuple[str, ...] | None = setting(
        None, "your own code to import first (`--import`): .py files by path (from the current folder) or "
        "modules by name, that register models with @models.register_model or datasets with "
        "@bench.data.register_dataset")
    tensorboard: bool = setting(False, "also write TensorBoard logs per epoch, in tensorboard/ of the results "
                                "(not part of a run's identity)")
    save_weights: bool = setting(False, "also keep each run's final weights, in weights/ of the results "
                                 "(not part of a run's identity)")

    def __post_init__(self):
        super().__post_init__()
        if self.seed + self.repeats - 1 > SEED_MAX:
            raise ValueError(f"run.seed + run.repeats - 1 must be at most {SEED_MAX} (the last repeat's seed; NumPy's "
                             f"seeds are below 2**32). Received: seed={self.seed}, repeats={self.repeats}")


@dataclass(frozen=True)
class Preprocess(Settings):
    """``[preprocess]``: which images a run sees. With the dataset's name it names the cached arrays."""

    SECTION: typing.ClassVar[str] = "preprocess"
    size: int | None = setting(None, "height = width after a bilinear resize; absent keeps the native size",
                               unit="pixels", minimum=MIN_IMAGE_SIZE, maximum=MAX_IMAGE_SIZE)
    channels: int | None = setting(None, "1 or 3 (grey repeated to RGB); absent keeps the native count",
                                   choices=(1, 3))
    scale_pixels: bool = setting(True, "divide pixels by 255 (false: raw 0-255 values)")
    train_per_class: int | None = setting(None, "a stratified training subset; absent keeps all",
                                          unit="images", minimum=1)
    subset_seed: int = setting(0, "seed of the training subset, the same for every repeat", minimum=0, maximum=SEED_MAX)
    num_classes: int = setting(10, "classes of `synthetic` (the real datasets have their own)", minimum=2,
                               maximum=MAX_CLASSES)
    native_size: int = setting(28, "height = width of `synthetic`", unit="pixels", minimum=MIN_IMAGE_SIZE,
                               maximum=MAX_IMAGE_SIZE)


@dataclass(frozen=True)
class Optimizer(Settings):
    """``[optimizer]``: the training step's update."""

    SECTION: typing.ClassVar[str] = "optimizer"
    name: str = setting("sgd", "the optimizer", choices=OPTIMIZERS)
    learning_rate: float = setting(1e-3, "step size (peak of the schedule)", above=0)
    momentum: float = setting(0.9, "SGD's momentum (sgd only)", minimum=0, maximum=1)
    schedule: str = setting("constant", "learning rate over the run; cosine decays to 0 over all steps",
                            choices=SCHEDULES)
    weight_decay: float = setting(0.0, "decoupled weight decay per step (0: none)", minimum=0)


@dataclass(frozen=True)
class Augment(Settings):
    """``[augment]``: random changes to each training batch (never to the test set)."""

    SECTION: typing.ClassVar[str] = "augment"
    flip: bool = setting(False, "random horizontal flip (always drawn per image)")
    brightness: float = setting(0.0, "max brightness delta, in brightness_unit", minimum=0)
    brightness_unit: str = setting("full_scale", "brightness as a fraction of full scale (1 or 255), or in pixel "
                                   "values as tf.image.random_brightness takes it", choices=BRIGHTNESS_UNITS)
    contrast: tuple[float, float] | None = setting(None, "contrast factor range", minimum=0)
    hue: float = setting(0.0, "max hue delta (RGB only)", unit="turns", minimum=0, maximum=0.5)
    saturation: tuple[float, float] | None = setting(None, "saturation factor range (RGB only)", minimum=0)
    draws: str = setting("image", "each random brightness, contrast, hue and saturation value applies to one image, "
                         "or to the whole batch (tf.image's ops on a batch)", choices=DRAWS)
    clip: bool = setting(True, "clip pixels to [0, full scale] after brightness and contrast")

    @property
    def active(self) -> bool:
        """Whether anything random happens to a batch."""
        return bool(self.flip or self.brightness or self.contrast or self.hue or self.saturation)


SECTIONS: dict[str, type[Settings]] = {cls.SECTION: cls for cls in (RunSettings, Preprocess, Optimizer, Augment)}
PARTS = {"preprocess": Preprocess, "optimizer": Optimizer, "augment": Augment}  # the sections a RunSpec holds


# ---------------------------------------------------------------- one run


@dataclass(frozen=True)
class RunSpec:
    """Everything that decides one training run; every hyper-parameter is explicit.

    Attributes:
        profile: name of the profile the run was planned from.
        model: registered model name; ``model_options`` its builder options (all of them,
            defaults included).
        dataset: dataset name; ``preprocess`` which images of it the run sees.
        data_hash: what the dataset's source held when the run was planned: the SHA-256 of its
            arrays (``bench.data.arrays.content_hash``), or synthetic's generator identity.
        repeat: index of this repeat (0-based); ``seed`` fixes initialisation, data order
            and augmentation.
        epochs, batch_size, eval_per_class, eval_subset: as in ``RunSettings``; ``eval_subset``
            at its default ("stratified") is left out of the JSON form, so the run ids of the
            runs recorded before it are unchanged.
        optimizer, augment: as their sections.
        threads: TensorFlow intra-op threads of the worker (inter-op is 1 or 2, see worker).
        timeout_s: seconds after which the worker is killed and the run recorded as timeout.
        recipe: the recipe the run's settings came from (``RECIPES``); its parts are in
            ``preprocess`` and ``augment``, as overridden.
        speedups: the harness's speed-ups (``bench.speedups``); False trains stock Keras with
            TensorFlow's default settings, to check that the speed-ups change no result.
        model_code: for a model registered outside the ``models`` package (``--import``), its
            module, file and the file's SHA-256 (``bench.imports.model_code``): part of the
            run's identity, since the file decides the model. Empty for the shipped models,
            and then left out of the JSON form, so their specs and run ids are as before.
        dataset_code: for a dataset registered with ``@register_dataset`` (``--import``), its
            module, file and the file's SHA-256 (``bench.imports.dataset_code``), which the
            worker imports before it loads the data. Not part of the run's identity (the data
            hash is); empty, and left out of the JSON form, for any other dataset.
        tensorboard, save_weights: also write TensorBoard logs, keep the final weights
            (``bench.records.runfiles``).
    """

    profile: str
    model: str
    model_options: dict
    dataset: str
    data_hash: str
    preprocess: Preprocess
    repeat: int
    seed: int
    epochs: int
    batch_size: int
    optimizer: Optimizer
    augment: Augment
    eval_per_class: int | None = None
    eval_subset: str = "stratified"
    recipe: str = "corrected"
    threads: int = 1
    timeout_s: float = 3600.0
    speedups: bool = True
    model_code: dict = field(default_factory=dict)
    dataset_code: dict = field(default_factory=dict)
    tensorboard: bool = False
    save_weights: bool = False
    schema_version: int = SPEC_SCHEMA_VERSION

    def __post_init__(self):
        """Check each field's type (the parts check their own values), ints widened to float where
        due: a spec edited by hand fails here, in one line naming the field."""
        hints = typing.get_type_hints(type(self))
        for item in dataclasses.fields(self):
            if item.name not in PARTS:
                object.__setattr__(self, item.name, check("spec", item, hints[item.name], getattr(self, item.name)))

    def to_dict(self) -> dict:
        """The JSON form: parts as objects, ranges as lists; the OPTIONAL_FIELDS only when not
        at their omitted value."""
        mapping = json.loads(json.dumps(dataclasses.asdict(self)))
        return {k: v for k, v in mapping.items() if k not in OPTIONAL_FIELDS or v != OPTIONAL_FIELDS[k]}

    @classmethod
    def from_dict(cls, mapping: dict) -> RunSpec:
        """From ``to_dict``'s form at the current schema version (``bench.records.upgrades`` brings an
        older one up); TypeError or ValueError name what does not fit."""
        if mapping.get("schema_version", SPEC_SCHEMA_VERSION) != SPEC_SCHEMA_VERSION:
            raise ValueError(f"spec schema_version {mapping.get('schema_version')!r} is not the current "
                             f"{SPEC_SCHEMA_VERSION}; bench.records.upgrades.spec upgrades it")
        for key in PARTS:
            if not isinstance(mapping.get(key), dict):
                raise ValueError(f"spec.{key} must be a table. Received: {key}={mapping.get(key)!r}")
        return cls(**{**mapping, **{key: part(**mapping[key]) for key, part in PARTS.items()}})

    @property
    def run_id(self) -> str:
        """Hash of the canonical spec (execution settings left out) and the project version."""
        return _digest(self.to_dict(), drop=EXECUTION_FIELDS, extra={"version": __version__})

    @property
    def config_key(self) -> str:
        """Identity of the configuration: the spec but for seed, repeat and execution settings.

        Runs with equal ``config_key`` are repeats of one experiment and may be averaged.
        """
        return _digest(self.to_dict(), drop=EXECUTION_FIELDS + REPEAT_FIELDS)


def _digest(mapping: dict, drop: tuple[str, ...], extra: dict | None = None) -> str:
    kept = {k: v for k, v in mapping.items() if k not in drop} | (extra or {})
    canonical = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
