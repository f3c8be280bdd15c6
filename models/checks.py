"""Argument checks shared by the model builders.

Each check raises `ValueError` with a one-line message that says what is accepted
and ends with "Received: <arg>=<value>" (the Keras applications convention). The
builders call them before creating any layer.
"""

import numbers
import operator


def is_int(value):
    """Returns True for Python and NumPy integers, False for bools and everything else."""
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def check_int(arg, value, minimum):
    """Raises unless `value` is an integer >= `minimum`."""
    if not is_int(value) or value < minimum:
        raise ValueError(f"`{arg}` must be an integer >= {minimum}. Received: {arg}={value!r}")


def check_choice(arg, value, choices):
    """Raises unless `value` is one of `choices`."""
    if value not in choices:
        accepted = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{arg}` must be one of {accepted}. Received: {arg}={value!r}")


def check_fraction(arg, value):
    """Raises unless `value` is a real number in [0, 1)."""
    if not _is_real(value) or not 0 <= value < 1:
        raise ValueError(f"`{arg}` must be a number in [0, 1). Received: {arg}={value!r}")


def check_positive(arg, value):
    """Raises unless `value` is a real number > 0."""
    if not _is_real(value) or not value > 0:
        raise ValueError(f"`{arg}` must be a number > 0. Received: {arg}={value!r}")


def check_input_shape(input_shape):
    """Raises unless `input_shape` is (height, width, channels) of positive integers."""
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 3
        or not all(is_int(d) and d > 0 for d in input_shape)
    ):
        raise ValueError(
            "`input_shape` must be (height, width, channels) with positive integers "
            f"(channels last). Received: input_shape={input_shape!r}"
        )


def check_spatial_size(model, input_shape, *, multiple=1, minimum=1, condition=""):
    """Raises unless height and width are multiples of `multiple` and >= `minimum`.

    Args:
        model: model name, used in the message.
        input_shape: (height, width, channels), already checked by `check_input_shape`.
        multiple: height and width must be divisible by this.
        minimum: height and width must be at least this.
        condition: text naming the options the rule depends on, e.g. "with stem='concise'".
    """
    height, width = input_shape[0], input_shape[1]
    if all(d % multiple == 0 and d >= minimum for d in (height, width)):
        return
    rule = f"multiples of {multiple}" if multiple > 1 else f"at least {minimum}"
    examples = ", ".join(str(max(minimum, multiple) * n) for n in (1, 2, 3))
    where = f" {condition}" if condition else ""
    raise ValueError(
        f"`{model}`{where} needs an input height and width that are {rule} "
        f"(e.g. {examples}). Received: input_shape={tuple(input_shape)!r}"
    )


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
