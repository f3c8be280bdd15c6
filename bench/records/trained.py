"""A trained model back from its record: the run's model, built as the run built it, with the
final weights the run saved (``save_weights = true``, ``--save-weights``), and its test set as
the model saw it.

    >>> from bench.records import trained
    >>> model = trained.load_model("results/smoke", run_id)
    >>> images, labels = trained.test_set("results/smoke", run_id)
    >>> model.evaluate(images, labels)  # the record's test_loss and test_accuracy

The weights file is plain Keras (``keras.Model.load_weights`` into ``models.build``'s model of
the record's spec), so the same works without this module; it only saves finding the pieces.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

import models
from bench import imports
from bench.data import datasets
from bench.records.results import Results


def load_model(results: str | Path, run_id: str) -> keras.Model:
    """The run's model with its saved final weights, compiled with its loss and accuracy metric.

    A model of the user's own file is imported as the run imported it (the file must be unchanged).

    Raises:
        ValueError: no such record, or a run that saved no weights (run it with ``--save-weights``).
    """
    record = Results(results).record(run_id)
    if "weights" not in record.files:
        raise ValueError(f"run {run_id} kept no weights; run it with --save-weights (run.save_weights = true). "
                         f"Received: run_id={run_id!r}")
    spec = record.spec
    imports.load_code(spec.model_code)
    model = models.build(spec.model, tuple(record.input_shape), record.num_classes, **spec.model_options)
    model.load_weights(Path(results) / record.files["weights"])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=models.from_logits(model)),
                  metrics=["accuracy"])
    return model


def test_set(results: str | Path, run_id: str) -> tuple[np.ndarray, np.ndarray]:
    """The run's whole test set as its model takes it: float32 images, divided by 255 when the
    spec scales pixels, and the labels."""
    spec = Results(results).record(run_id).spec
    dataset = datasets.load(spec.dataset, spec.preprocess, spec.data_hash)
    images = np.asarray(dataset.x_test, dtype=np.float32)
    return (images / 255.0 if spec.preprocess.scale_pixels else images), np.asarray(dataset.y_test)
