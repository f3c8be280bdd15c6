"""A run's checkpoint after every epoch, and its resumption: Keras's ``BackupAndRestore``, with
everything else a run needs to go on as if it never stopped.

The folder (``bench.records.results.Results.checkpoint``: ``<results>/checkpoints/<run_id>/``) holds

    epoch-<n>.weights.h5   the model's weights and the optimizer's slots and step count after
                           epoch n (``keras.Model.save_weights``)
    state.json             the commit point, written atomically after the weights: the spec, the
                           epochs done, the weights' file, the history so far, the phase seconds
                           of the earlier segments, the segments, and the state of every
                           ``keras.random.SeedGenerator`` of the model (dropout and the like)

so a kill at any moment leaves either the previous epoch's state or this one's, never a mix.
The data order and the augmentation draws come from tf.data seed generators that advance once
per epoch, as each epoch makes its iterator of the training pipeline (``train.make_inputs``; one
per epoch, as ``fit`` is given its steps per epoch); a resumed run makes and drops one iterator
per epoch done, so that epoch n + 1 draws what it would have drawn. So a resumed run ends with
the weights, history and test accuracy of one that never stopped, bit for bit on a CPU
(measured with one thread per run, without ``enable_op_determinism``: an uninterrupted run
repeats itself exactly). A tf.data iterator checkpoint would hold the iterator Keras makes
inside ``fit`` and, with it, the pipeline's cache of the training images.

A checkpoint whose spec is another run's (another ``run_id``), or that cannot be read or loaded,
or whose folder, or a file in it, is a symbolic link, FIFO, folder or socket (never read or
written through: a link's target outside the results folder keeps its bytes), is set aside (renamed ``<run_id>.unusable``, replacing an earlier one) with a one-line warning on
stderr, and the run starts from epoch 1 with the model as it was built.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import keras

from bench.files import check_folder, check_regular, now_iso, read_regular, write_json_atomic
from bench.records.runfiles import CHECKPOINT_STATE, checkpoint_saved
from bench.spec import RunSpec

SET_ASIDE = ".unusable"


@dataclass
class Progress:
    """What a run carries across segments, besides the model: the epochs' history, the phase
    seconds of the segments before this one, and the segments (``train.segment``)."""

    history: list[dict] = field(default_factory=list)
    earlier_seconds: dict[str, float] = field(default_factory=dict)
    segments: list[dict] = field(default_factory=list)

    def seconds(self, current: dict[str, float]) -> dict[str, float]:
        """Phase seconds of every segment so far: the earlier ones' and ``current``, summed."""
        return {name: self.earlier_seconds.get(name, 0.0) + current.get(name, 0.0)
                for name in {*self.earlier_seconds, *current}}


def seed_generators(model: keras.Model) -> list[keras.random.SeedGenerator]:
    """The model's seed generators, in the order of Keras's walk of its nested layers: the same
    for every build of the same model, unlike their names, which count the generators made
    in the process so far."""
    return [generator for layer in model._flatten_layers()  # Keras's own walk of nested layers
            for generator in getattr(layer, "_seed_generators", ())]


class RunCheckpoint(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` for one run: saved as the module docstring says after every epoch,
    restored by ``restore`` before ``fit`` (which then starts at ``model._initial_epoch``, as
    Keras's callback sets it). Never deletes the folder: the runner does, once the record is
    written (``bench.run.runner.write_run``).

    Args:
        folder: the checkpoint's folder.
        spec: the run.
        progress: the run's history, earlier phase seconds and segments, saved with each epoch
            and filled in by ``restore``; the caller's object, updated as the run goes.
        phase_seconds: the current segment's phase seconds so far (``Stopwatch.seconds``).
    """

    def __init__(self, folder: Path, spec: RunSpec, progress: Progress, phase_seconds: dict[str, float]):
        super().__init__(str(folder), delete_checkpoint=False)
        self.folder, self.spec, self.progress, self.phase_seconds = Path(folder), spec, progress, phase_seconds

    # -------------------------------------------------------- restore

    def restore(self, model: keras.Model, train_data) -> int:
        """Load the checkpoint into ``model`` and ``progress``, advance ``train_data``'s seed
        generators past the epochs done; return the epochs done (0: none, or set aside)."""
        try:
            self._check_files()
        except ValueError as error:  # bench.files.NotARegularFile
            self._set_aside(str(error))
            return 0
        if not checkpoint_saved(self.folder):
            return 0
        variables = [*model.variables, *model.optimizer.variables]
        before = [variable.numpy() for variable in variables]
        try:
            state = json.loads(read_regular(self.folder / CHECKPOINT_STATE))
            self._check(state)
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(str(self.folder / state["weights"]))
            generators, states = seed_generators(model), state["seed_generators"]
            if len(generators) != len(states):
                raise ValueError(f"it has {len(states)} seed generators' states, the model {len(generators)}")
            for generator, value in zip(generators, states):
                generator.state.assign(value)
            epochs = int(state["epoch"])
        except Exception as error:  # noqa: BLE001 - any unusable checkpoint: start afresh, never crash
            for variable, value in zip(variables, before):
                variable.assign(value)
            self._set_aside(f"{type(error).__name__}: {error}")
            return 0
        self.progress.history[:] = state["history"]
        self.progress.earlier_seconds.update(state["phase_seconds"])
        self.progress.segments[:] = state["segments"]
        for _ in range(epochs):
            iter(train_data)  # each new iterator draws the next epoch's order and augmentation seeds
        model._initial_epoch = self._current_epoch = epochs
        return epochs

    def _check_files(self) -> None:
        """Raise NotARegularFile if the folder, or anything in it, is not what ``_save_model`` writes
        (a folder of regular files): a link planted there would be read or written through."""
        check_folder(self.folder)
        for entry in self.folder.iterdir() if self.folder.exists() else ():
            check_regular(entry)

    def _check(self, state: dict) -> None:
        stored = RunSpec.from_dict(state["spec"]).run_id
        if stored != self.spec.run_id:
            raise ValueError(f"it is run {stored}'s, not this run's")
        if not 0 < int(state["epoch"]) < self.spec.epochs or len(state["history"]) != int(state["epoch"]):
            raise ValueError(f"epoch {state['epoch']} with {len(state['history'])} epochs of history "
                             f"does not fit a run of {self.spec.epochs} epochs")

    def _set_aside(self, reason: str) -> None:
        aside = self.folder.with_name(self.folder.name + SET_ASIDE)
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(self.folder, aside)
        print(f"warning: checkpoint {self.folder} set aside as {aside.name} ({reason.splitlines()[0]}); "
              "the run starts again from epoch 1", file=sys.stderr, flush=True)

    def _load_model(self):
        """Keras's restore at the start of ``fit``: done by ``restore`` before it."""

    # -------------------------------------------------------- save

    def on_epoch_end(self, epoch, logs=None):
        segment = self.progress.segments[-1]
        segment.update(finished_at=now_iso(), epochs=[segment["epochs"][0], epoch + 1])
        if epoch + 1 < self.spec.epochs and not self.model.stop_training:  # the last one ends the run
            super().on_epoch_end(epoch, logs)

    def _save_model(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        check_folder(self.folder)  # not a link planted since restore: then the run fails, writing nothing through it
        epoch = self._current_epoch
        weights = f"epoch-{epoch}.weights.h5"
        partial = self.folder / f"partial-{weights}"
        partial.unlink(missing_ok=True)  # h5py would write through a link here; a new file cannot
        self.model.save_weights(str(partial), overwrite=True)
        os.replace(partial, self.folder / weights)
        write_json_atomic(self.folder / CHECKPOINT_STATE, {
            "run_id": self.spec.run_id, "spec": self.spec.to_dict(), "epoch": epoch, "weights": weights,
            "history": self.progress.history, "phase_seconds": self.progress.seconds(self.phase_seconds),
            "segments": self.progress.segments,
            "seed_generators": [generator.state.numpy().tolist() for generator in seed_generators(self.model)],
        })
        for old in self.folder.glob("epoch-*.weights.h5"):
            if old.name != weights:
                old.unlink()
