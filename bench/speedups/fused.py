"""Batch normalization as one fused TensorFlow op: one of the harness's speed-ups.

Keras 3's `BatchNormalization` is, on the TensorFlow backend, a dozen elementwise ops per layer
forward and more backward; `FusedBatchNormalization` computes the same function with
TensorFlow's `FusedBatchNormV3` (oneDNN's batch normalization on CPUs), one op each way.

It is a subclass that changes `call` only: the same weights (gamma, beta, moving_mean,
moving_variance) with the same names, shapes and initialisers, the same config, and the
same moving-statistics update as Keras's (the biased batch variance; `FusedBatchNormV3`
returns the unbiased one, which is converted back). Layers it cannot serve (renorm,
synchronized, a mask, an axis other than the last, a non-4D input, another backend)
fall back to Keras's own code.

`fuse_batch_norm(model)` switches every eligible layer of a built model in place, so a
model keeps its graph, layer names, initial weights and parameter counts; the plain
Keras model and the fused one are the same model computed two ways.

oneDNN's kernel sums in another order than Keras's ops, so results agree to float32 rounding
per layer, not bit for bit (what that does to a run: docs/speed.md, "The speed-ups").
"""

from contextlib import contextmanager

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="fishbench")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed with one `FusedBatchNormV3` op.

    Accepts exactly the arguments of `keras.layers.BatchNormalization` and has the same
    weights. Numerically equal to it up to float32 rounding (see tests/test_speedups.py).
    """

    def _fusable(self, inputs, mask):
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and self.scale
            and self.center
            and inputs.dtype == "float32"
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        if training and self.trainable:
            outputs, mean, unbiased_variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs,
                scale=self.gamma.value,
                offset=self.beta.value,
                mean=tf.constant([], tf.float32),
                variance=tf.constant([], tf.float32),
                epsilon=self.epsilon,
                exponential_avg_factor=1.0,
                data_format="NHWC",
                is_training=True,
            )
            # FusedBatchNormV3 normalizes with the biased variance but returns the unbiased
            # one (times n / (n - 1)); Keras averages the biased one into its moving variance.
            count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
            variance = unbiased_variance * (tf.maximum(count, 2.0) - 1.0) / count
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
            return outputs
        outputs, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs,
            scale=self.gamma.value,
            offset=self.beta.value,
            mean=self.moving_mean.value,
            variance=self.moving_variance.value,
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=False,
        )
        return outputs


def fuse_batch_norm(model):
    """Makes every `keras.layers.BatchNormalization` of a built `model` a fused one, in place.

    Only the class of each layer changes (to `FusedBatchNormalization`, which adds no
    state), so the model's graph, layer names, weights and parameter counts stay as they
    are; a model rebuilt with `keras.models.clone_model` would draw new initial weights.
    Layers of nested models are switched too.

    Args:
        model: a built `keras.Model`, not yet compiled or traced.

    Returns:
        The number of layers switched.
    """
    switched = 0
    for layer in _layers(model):
        if type(layer) is keras.layers.BatchNormalization:
            layer.__class__ = FusedBatchNormalization
            switched += 1
    return switched


@contextmanager
def stock_batch_norm(model):
    """Every `FusedBatchNormalization` of `model` a `keras.layers.BatchNormalization` while the
    block runs, then fused again.

    For saving: Keras 3 names the weights in a `.weights.h5` file by layer class, so weights
    saved from fused layers load only into fused layers; saved in the block, they load into the
    model `models.build` gives anyone (`keras.Model.load_weights`).
    """
    fused = [layer for layer in _layers(model) if type(layer) is FusedBatchNormalization]
    for layer in fused:
        layer.__class__ = keras.layers.BatchNormalization
    try:
        yield model
    finally:
        for layer in fused:
            layer.__class__ = FusedBatchNormalization


def _layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
