"""The speed-ups of a training run's model and ``fit``: what ``train.build_model`` hands a model to.

``compile_with_speedups`` compiles a built model as ``model.compile`` would, with:

- batch normalization as one fused op (``fuse_batch_norm``; same weights);
- the SGD momentum update as one op per variable (``MomentumSGD``);
- several steps per Keras call for small models (``steps_per_execution``);
- the model's, the optimizer's and the metrics' variables created before the first ``fit``,
  so Keras traces its train step once instead of twice (a ``tf.function`` that creates
  variables on its first call is traced again without them; ``create_variables``).

``TrainingGraphSettings``, passed to ``fit`` as a callback, turns grappler off for training
steps. The layers and the optimizer are subclasses of Keras's that compute the same
function with fewer ops; the models keep their graph, weights and parameter counts.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import models
from bench.speedups.fused import fuse_batch_norm

# Training FLOPs per Keras call: a small model runs several steps per call (steps_per_execution)
# so that Keras's per-step Python work (about 3 ms) stays small next to the step itself.
FLOPS_PER_EXECUTION = 8e9  # ~0.1 s on a 2-core CPU; at batch 32: MLP 16 steps, CNN 7, the others 1
MAX_STEPS_PER_EXECUTION = 16


def compile_with_speedups(model: keras.Model, batch_size: int, **compile_args) -> None:
    """``model.compile(**compile_args)`` with the speed-ups (see the module docstring), ready to trace once.

    Args:
        model: a built `keras.Model`, not yet compiled; its batch norm layers are switched in place.
        batch_size: training images per step, which decides the steps per Keras call.
        compile_args: the arguments of ``keras.Model.compile``, with the ``optimizer`` object
            (a ``keras.optimizers.SGD`` becomes a ``MomentumSGD`` in place) and without
            ``steps_per_execution``.
    """
    fuse_batch_norm(model)
    if type(compile_args["optimizer"]) is keras.optimizers.SGD:
        compile_args["optimizer"].__class__ = MomentumSGD  # adds no state, as the fused batch norm
    model.compile(**compile_args, steps_per_execution=steps_per_execution(models.flops(model), batch_size))
    create_variables(model)


class MomentumSGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD` whose momentum update is one TensorFlow op per variable.

    Keras computes ``m = momentum * m - lr * g; w += m`` with five ops per variable;
    ``ResourceApplyKerasMomentum`` is that same update in one kernel, which halves the
    memory passes of the large Dense layers and the Python work of tracing. Weight decay,
    clipping and the learning-rate schedule stay Keras's. Nesterov, sparse gradients and
    distribution strategies fall back to Keras's own update.
    """

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if (self.momentum == 0 or self.nesterov or tf.distribute.has_strategy()
                or any(isinstance(g, tf.IndexedSlices) for g in grads)):
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        for grad, variable in zip(grads, trainable_variables):
            accumulator = self.momentums[self._get_variable_index(variable)]
            tf.raw_ops.ResourceApplyKerasMomentum(
                var=variable.handle,
                accum=accumulator.handle,
                lr=tf.cast(learning_rate, variable.dtype),
                grad=tf.cast(grad, variable.dtype),
                momentum=tf.cast(self.momentum, variable.dtype),
                use_locking=False,
                use_nesterov=False,
            )


def steps_per_execution(flops_per_image: int, batch_size: int) -> int:
    """Training steps per Keras call: enough for FLOPS_PER_EXECUTION, 1 to MAX_STEPS_PER_EXECUTION.

    Several steps per call run as one traced loop; the batches, their order and the updates
    are the same as one step per call.
    """
    step_flops = 3 * flops_per_image * batch_size  # forward, input gradient, weight gradient
    return max(1, min(MAX_STEPS_PER_EXECUTION, int(FLOPS_PER_EXECUTION // max(step_flops, 1))))


def create_variables(model: keras.Model) -> None:
    """Create the loss, metric and optimizer variables of a compiled model, outside any trace.

    Keras creates them inside the first traced train step, which makes ``tf.function``
    trace the step a second time. Here they are made eagerly: the loss and the metrics of
    one dummy prediction (then reset) and the optimizer's slots. No forward pass is run.
    """
    labels = np.zeros((1,), "int64")
    logits = np.zeros((1, model.outputs[0].shape[-1]), "float32")
    model.compute_loss(y=labels, y_pred=logits)
    model.compute_metrics(None, labels, logits)
    model.reset_metrics()
    model.optimizer.build(model.trainable_variables)


class TrainingGraphSettings(keras.callbacks.Callback):
    """Grappler off while ``fit`` runs training steps, TensorFlow's default while it evaluates.

    Grappler, TensorFlow's graph optimizer, costs 1-1.5 s of a FishNet's first training step
    (a train step of 4,000-9,000 nodes) and buys nothing after it: on a CPU, oneDNN's
    kernels come from another pass (the MKL layout pass, which stays on), and grappler's one
    rewrite that matters, batch norm fused with the ReLU after it, sends oneDNN's training
    kernels to a slow generic path for the 2-12 channel layers of FishNet55. Evaluation is
    the other way round (the fused inference kernel is the fast one), so grappler is back on
    for it. The setting is process-wide and read by each call of a traced function, so the
    callback flips it around the two phases; as a context manager around ``fit`` it also
    restores it when ``fit`` raises.
    """

    def __init__(self):
        super().__init__()
        self._before = None

    def _set(self, disabled: bool) -> None:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": disabled})

    def on_train_begin(self, logs=None):
        self._before = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
        self._set(True)

    def on_test_begin(self, logs=None):
        if self._before is not None:
            self._set(self._before)

    def on_test_end(self, logs=None):
        if self._before is not None:
            self._set(True)

    def on_train_end(self, logs=None):
        self.restore()

    def restore(self) -> None:
        if self._before is not None:
            self._set(self._before)
            self._before = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.restore()
