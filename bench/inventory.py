"""What ``bench list`` shows: datasets and where they load from, models with their counts."""
from __future__ import annotations

from tabulate import tabulate

from bench.data import kinds


def datasets_table() -> str:
    rows = []
    for name in kinds.names():
        try:
            where = kinds.kind_of(name).where()
        except Exception as error:  # noqa: BLE001 - a listing shows why, it does not stop
            where = f"unavailable: {error}"
        rows.append((name, where))
    return tabulate(rows, headers=("dataset", "loads from"))


def _counts(name: str, input_shape: tuple[int, int, int], num_classes: int) -> tuple:
    import models  # deferred for start-up time: Keras takes seconds

    try:
        model = models.build(name, input_shape, num_classes)
    except ValueError as error:
        return ("—", "—", "—", str(error).split(". Received")[0])
    trainable = models.count_trainable(model)
    return (f"{model.count_params():,}", f"{trainable:,}", f"{models.flops(model) / 1e6:,.1f}", "")


def models_table(input_shape: tuple[int, int, int], num_classes: int) -> str:
    """Every registered model, its options with defaults, and its counts at one input."""
    import models  # deferred for start-up time: Keras takes seconds

    rows = []
    for name in models.names():
        options = ", ".join(f"{k}={v!r}" for k, v in models.options(name).items()) or "—"
        rows.append((name, options, *_counts(name, input_shape, num_classes)))
    shape = "x".join(map(str, input_shape))
    headers = ("model", "options (defaults)", "params", "trainable", "MFLOPs/image", "note")
    return f"models at {shape}, {num_classes} classes:\n" + tabulate(rows, headers=headers, disable_numparse=True)
