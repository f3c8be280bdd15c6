"""The dataset registry: ``register_dataset``, ``registered_names``, ``registered``, ``function``.

A registered dataset is a function of no arguments that returns the four arrays as
``keras.datasets`` gives them, ``{"x_train", "y_train", "x_test", "y_test"}`` (uint8
images (N, H, W) or (N, H, W, C), integer labels), registered under its own name or
``name=``, as a model is with ``@models.register_model``. It lives in a file of the user's
own, imported with ``--import`` (``bench.imports``); ``bench.data.kinds`` takes its name wherever a
dataset's is accepted and checks its arrays as it checks an .npz file's. The function must
return the same arrays at every call: the plan hashes them, and the worker's load checks
that hash.

Import it as ``from bench.data import register_dataset``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class RealDataset:
    """A dataset with a real source: its Keras loader name, native shape, class count and, for
    the canonical datasets, their training and test images (so a plan need not count them)."""

    keras_name: str
    shape: tuple[int, int, int]
    num_classes: int
    images: tuple[int, int] | None = None  # (train, test)


REAL_DATASETS = {
    "mnist": RealDataset("mnist", (28, 28, 1), 10, (60_000, 10_000)),
    "fashion_mnist": RealDataset("fashion_mnist", (28, 28, 1), 10, (60_000, 10_000)),
    "cifar10": RealDataset("cifar10", (32, 32, 3), 10, (50_000, 10_000)),
    "cifar100": RealDataset("cifar100", (32, 32, 3), 100, (50_000, 10_000)),
}
SYNTHETIC = "synthetic"
SAMPLE = "fashion_mnist_sample"
NAMES = (*REAL_DATASETS, SYNTHETIC, SAMPLE)  # the built-in names; kinds.names() adds the registered ones

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # a name, never a path: it names cache folders too

_REGISTRY: dict[str, Callable[[], dict]] = {}


def register_dataset(fn: Callable[[], dict] | None = None, *, name: str | None = None):
    """Registers ``fn`` under ``name`` (default: ``fn.__name__``) and returns it unchanged;
    ``@register_dataset`` or ``@register_dataset(name="...")``.

    Raises:
        ValueError: the name is taken (a built-in dataset's or a registered one's), or is not
            a name of letters, digits and underscores.
    """
    if fn is None:
        return lambda fn: register_dataset(fn, name=name)
    name = fn.__name__ if name is None else name
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"A dataset's name is letters, digits and underscores, starting with a letter; "
                         f"accepted: e.g. 'my_digits'. Received: name={name!r}")
    if name in NAMES or name in _REGISTRY:
        raise ValueError(f"A dataset named {name!r} is already registered or built in; dataset names must be unique. "
                         f"Received: name={name!r}")
    _REGISTRY[name] = fn
    return fn


def registered_names() -> list[str]:
    """The registered dataset names, in the order they were registered."""
    return list(_REGISTRY)


def registered(name: str) -> bool:
    return name in _REGISTRY


def function(name: str) -> Callable[[], dict]:
    """The function registered as dataset ``name``."""
    return _REGISTRY[name]
