"""The model registry: `register_model`, `build`, `names`, `options`, `describe`, `module`, `family`.

A model is a function `fn(input_shape, num_classes, **options) -> keras.Model`
registered under its own name with `@register_model` (as timm's registry). Its
keyword options and their defaults are read from its signature, so the signature
is the one place where a model's options are written down. Its family is the module
that defines it (as timm's `list_modules`): "baselines" or "fishnet".

Output convention: every model returns logits (no softmax). Train with
`from_logits=True`. The exceptions reproduce the report's code: a model whose output its
loss took as probabilities says so (`from_logits(model)` is False).
"""

import inspect

import natsort

from models import checks

_REGISTRY = {}


def register_model(fn):
    """Registers `fn` under `fn.__name__` and returns it unchanged.

    Raises:
        ValueError: if the name is already registered.
    """
    name = fn.__name__
    _check_signature(fn)
    if name in _REGISTRY:
        raise ValueError(
            f"A model named {name!r} is already registered; model names must be unique. "
            f"Received: name={name!r}"
        )
    _REGISTRY[name] = fn
    return fn


def names():
    """Returns the registered model names in natural order (fishnet99 before fishnet150)."""
    return natsort.natsorted(_REGISTRY)


def options(name):
    """Returns the options model `name` accepts, mapped to its defaults.

    Raises:
        ValueError: if `name` is not registered.
    """
    return _defaults(_lookup(name))


def describe(name):
    """Returns the first line of model `name`'s docstring.

    Raises:
        ValueError: if `name` is not registered.
    """
    return inspect.getdoc(_lookup(name)).splitlines()[0]


def module(name):
    """Returns the name of the module that registers model `name`: "models.fishnet", or a
    user's own ("mynet", for a model registered in mynet.py).

    Raises:
        ValueError: if `name` is not registered.
    """
    return _lookup(name).__module__


def family(name):
    """Returns the family of model `name`: the last part of the module that registers it.

    The report's baselines are "baselines" and the FishNets "fishnet", so a new variant
    joins its family by being defined beside its kin.

    Raises:
        ValueError: if `name` is not registered.
    """
    return module(name).rpartition(".")[2]


def build(name, input_shape, num_classes, **options):
    """Builds registered model `name`: uncompiled, float32, outputs logits.

    Args:
        name: a name from `names()`.
        input_shape: (height, width, channels), channels last.
        num_classes: number of classes, >= 2. The model outputs this many logits
            (except `mobilenet` with `head_classes`, see its docstring).
        **options: the model's options, see `options(name)`. An option given as
            None takes the model's default, so callers can pass unset options through
            (as timm's `create_model` drops None kwargs).

    Returns:
        A `keras.Model` named `name`.

    Raises:
        ValueError: for an unknown name or option, `num_classes` < 2, an invalid option
            value, or an input shape the architecture cannot take. All are raised
            before any layer is created.
    """
    fn = _lookup(name)
    checks.check_int("num_classes", num_classes, 2)
    checks.check_input_shape(input_shape)
    accepted = sorted(_defaults(fn))
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"Unknown option for model {name!r}; it accepts {accepted or 'no options'}. "
            f"Received: {', '.join(f'{k}={options[k]!r}' for k in unknown)}"
        )
    given = {k: v for k, v in options.items() if v is not None}
    return fn(tuple(int(d) for d in input_shape), int(num_classes), **given)


def _defaults(fn):
    parameters = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _check_signature(fn):
    parameters = list(inspect.signature(fn).parameters.values())
    positional = [p.name for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    missing_default = [p.name for p in parameters[2:] if p.default is inspect.Parameter.empty]
    if positional != ["input_shape", "num_classes"] or missing_default or not inspect.getdoc(fn):
        raise TypeError(
            "A registered model must be documented and take (input_shape, num_classes, *, "
            f"option=default, ...). Received: {fn.__name__}{inspect.signature(fn)}"
        )


def _lookup(name):
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model; registered models are {names()}. Received: name={name!r}")
    return _REGISTRY[name]


def from_logits(model):
    """Whether the loss takes `model`'s output as logits (True for every model but a head
    that reproduces the report's loss on probabilities, see models/fishnet.py)."""
    return getattr(model, "from_logits", True)
