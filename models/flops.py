"""Forward FLOPs per image, counted analytically from a built Keras model's layers.

Conventions (per image, at inference):

- Dense and convolutions: 2 per multiply-add (so 2 * k*k * C_in/groups per output for
  a conv, 2 * k*k per output for a depthwise conv), plus 1 per output for the bias.
- Activations: 1 per element for any non-linear activation (ReLU, ReLU6, sigmoid,
  softmax alike), whether a layer of its own or a layer's `activation`; 0 for linear.
- BatchNormalization: 2 per element (scale and shift once folded for inference).
- Add, Multiply: 1 per output element for each input after the first.
- MaxPooling2D, AveragePooling2D: k*k per output element.
- GlobalAveragePooling2D, GlobalMaxPooling2D: 1 per input element.
- ChannelSqueeze (FishNet): k - 1 additions per output element.
- UpSampling2D (nearest), Reshape, Flatten, Concatenate, ZeroPadding2D, Dropout and
  InputLayer: 0, they only move data.

A layer is counted by the rule of the first class along its class's MRO that has one, so a
subclass that computes the same function another way (the harness's fused batch norm,
``bench.speedups.fused``) is counted as its Keras base. Nested models are counted by
recursing into their layers. A layer of any other type raises, so nothing is silently left
out.
"""

import math

import keras

from models.fishnet import ChannelSqueeze

_FREE = (
    keras.layers.InputLayer,
    keras.layers.Reshape,
    keras.layers.Flatten,
    keras.layers.Concatenate,
    keras.layers.ZeroPadding2D,
    keras.layers.Dropout,
)


def flops(model):
    """Returns the forward FLOPs of one image through `model` (see the module docstring).

    Args:
        model: a built functional or sequential `keras.Model`; nested models are
            counted through their layers.

    Returns:
        An int.

    Raises:
        ValueError: for a layer type without a FLOP rule here.
    """
    return sum(_layer_flops(layer) for layer in model.layers)


def _layer_flops(layer):
    if isinstance(layer, keras.Model):
        return flops(layer)
    rule = _rule(layer)
    if rule is None:
        known = sorted(t.__name__ for t in _RULES)
        raise ValueError(
            f"flops() has no rule for layer {layer.name!r} of type {type(layer).__name__}; "
            f"known types are {known} and nested models. Received: layer={layer.name!r}"
        )
    return rule(layer)


def _rule(layer):
    """The rule of the first class along `layer`'s MRO that has one (a subclass counts as its base), else None."""
    return next((_RULES[cls] for cls in type(layer).__mro__ if cls in _RULES), None)


def _size(shape):
    """Elements per image of a (batch, ...) shape."""
    return math.prod(shape[1:])


def _bias_and_activation(layer):
    outputs = _size(layer.output.shape)
    bias = outputs if layer.use_bias else 0
    return bias + _activation(layer.activation, outputs)


def _activation(fn, elements):
    return 0 if fn is keras.activations.linear else elements


def _dense(layer):
    outputs = _size(layer.output.shape)
    return 2 * layer.input.shape[-1] * outputs + _bias_and_activation(layer)


def _conv(layer):
    kh, kw = layer.kernel_size
    per_output = kh * kw * layer.input.shape[-1] // layer.groups
    return 2 * per_output * _size(layer.output.shape) + _bias_and_activation(layer)


def _depthwise_conv(layer):
    kh, kw = layer.kernel_size
    return 2 * kh * kw * _size(layer.output.shape) + _bias_and_activation(layer)


def _pool(layer):
    ph, pw = layer.pool_size
    return ph * pw * _size(layer.output.shape)


def _merge(layer):
    return (len(layer.input) - 1) * _size(layer.output.shape)


def _upsampling(layer):
    if layer.interpolation != "nearest":
        raise ValueError(
            "flops() counts only nearest-neighbour UpSampling2D. "
            f"Received: interpolation={layer.interpolation!r} in layer {layer.name!r}"
        )
    return 0


_RULES = {
    keras.layers.Dense: _dense,
    keras.layers.Conv2D: _conv,
    keras.layers.DepthwiseConv2D: _depthwise_conv,
    keras.layers.BatchNormalization: lambda layer: 2 * _size(layer.output.shape),
    keras.layers.ReLU: lambda layer: _size(layer.output.shape),
    keras.layers.Softmax: lambda layer: _size(layer.output.shape),
    keras.layers.Activation: lambda layer: _activation(layer.activation, _size(layer.output.shape)),
    keras.layers.Add: _merge,
    keras.layers.Multiply: _merge,
    keras.layers.MaxPooling2D: _pool,
    keras.layers.AveragePooling2D: _pool,
    keras.layers.GlobalAveragePooling2D: lambda layer: _size(layer.input.shape),
    keras.layers.GlobalMaxPooling2D: lambda layer: _size(layer.input.shape),
    keras.layers.UpSampling2D: _upsampling,
    ChannelSqueeze: lambda layer: _size(layer.input.shape) - _size(layer.output.shape),
    **dict.fromkeys(_FREE, lambda layer: 0),
}
